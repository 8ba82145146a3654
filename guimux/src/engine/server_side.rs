//! The server side of the engine. In: the bytes each X server sends. A hijacked primary is
//! first synchronised (the sentinel error gives message boundaries and sequence numbers);
//! then each message is framed, its sequence number widened and mapped through the server's
//! segments to the app's numbering (or the internal client's), matched with its pending
//! request, translated to the app's view and given to the app — a replica's replies are kept
//! for a promotion instead, its events dropped unless they are input of an interactive one,
//! and events that only echo a regeneration are not told. Out: the app's output buffer.

use super::*;

impl Engine {
    /// Feed bytes from server `s`.
    pub fn server_input(&mut self, s: ServerId, data: &[u8]) -> Result<(), EngineError> {
        self.stats.bytes_from_servers += data.len() as u64;
        let order = self.order;
        {
            let srv = self
                .servers
                .get_mut(s)
                .and_then(|x| x.as_mut())
                .ok_or(EngineError::NoServer(s))?;
            srv.inbuf.extend_from_slice(data);
        }
        self.server_sync_phase(s)?;
        let synced = self.servers[s]
            .as_ref()
            .is_some_and(|srv| matches!(srv.sync, Sync::Synced));
        if !synced {
            return Ok(());
        }
        // Messages are handled in place in the input buffer: no per-message allocation.
        let mut input = match self.servers[s].as_mut() {
            Some(srv) => std::mem::take(&mut srv.inbuf),
            None => return Err(EngineError::NoServer(s)),
        };
        let mut pos = 0;
        while let Some(len) = framing::server_message_len(&input[pos..], order) {
            self.server_message(s, &mut input[pos..pos + len]);
            pos += len;
            if let Some(srv) = self.servers[s].as_mut() {
                srv.framed += len as u64;
            }
        }
        input.drain(..pos);
        if let Some(srv) = self.servers[s].as_mut() {
            srv.inbuf = input;
        }
        Ok(())
    }

    /// Handle the setup reply (premeditated) or the sentinel scan (hijacked).
    pub(super) fn server_sync_phase(&mut self, s: ServerId) -> Result<(), EngineError> {
        let order = self.order;
        let is_primary = self.primary == Some(s);
        let srv = self.servers[s].as_mut().ok_or(EngineError::NoServer(s))?;
        match srv.sync {
            Sync::Synced => Ok(()),
            Sync::AwaitSetupReply => {
                let Some(len) = framing::setup_reply_len(&srv.inbuf, order) else {
                    return Ok(());
                };
                let reply: Vec<u8> = srv.inbuf.drain(..len).collect();
                if reply[0] != 1 {
                    // Failed or Authenticate: pass to the app; the connection will end.
                    self.app_out.extend_from_slice(&reply);
                    return Ok(());
                }
                srv.sync = Sync::Synced;
                srv.segments.push_back(Segment {
                    start: 1,
                    origin: Origin::App,
                    delta: 0,
                    app_before: 0,
                });
                if is_primary {
                    self.app_out.extend_from_slice(&reply);
                }
                self.setup_reply = Some(reply);
                Ok(())
            }
            Sync::Sentinel {
                id,
                ref mut scanned,
                app_sent,
            } => {
                let buf = &srv.inbuf;
                let mut found = None;
                let mut i = 0;
                while i + 32 <= buf.len() {
                    let m = &buf[i..i + 32];
                    if m[0] == 0 && m[1] == 9 && order.u32(m, 4) == id && m[10] == 14 {
                        found = Some(i);
                        break;
                    }
                    i += 1;
                }
                match found {
                    None => {
                        // Everything but a possible partial sentinel at the end goes to the app.
                        let keep = buf.len().min(31);
                        let give = buf.len() - keep;
                        *scanned += give;
                        let scanned_now = *scanned;
                        self.app_out.extend_from_slice(&srv.inbuf[..give]);
                        srv.inbuf.drain(..give);
                        if scanned_now > 64 * 1024 * 1024 {
                            return Err(EngineError::SyncFailed(s, scanned_now));
                        }
                        Ok(())
                    }
                    Some(at) => {
                        self.app_out.extend_from_slice(&srv.inbuf[..at]);
                        let seq16 = order.u16(&srv.inbuf, at + 2);
                        srv.inbuf.drain(..at + 32);
                        // Put the 64-bit numbering where 16-bit values widen without wrapping.
                        let sentinel = 0x1_0000 + u64::from(seq16);
                        let app_before_sentinel = sentinel - 1;
                        srv.sent = sentinel + app_sent;
                        srv.app_done = app_before_sentinel;
                        srv.app_sent = app_before_sentinel + app_sent;
                        srv.segments.push_back(Segment {
                            start: sentinel + 1,
                            origin: Origin::App,
                            delta: 1,
                            app_before: app_before_sentinel,
                        });
                        srv.sync = Sync::Synced;
                        // The app's own count so far was relative; make it absolute.
                        self.app_seq += app_before_sentinel;
                        for (seq, _) in self.queue.iter_mut() {
                            *seq += app_before_sentinel;
                        }
                        Ok(())
                    }
                }
            }
        }
    }

    /// One complete message from server `s`.
    pub(super) fn server_message(&mut self, s: ServerId, msg: &mut [u8]) {
        let order = self.order;
        let global_done = self.app_done_global();
        let is_primary = self.primary == Some(s);
        let Some(srv) = self.servers[s].as_mut() else {
            return;
        };
        let kind = msg[0] & 0x7f;
        if self.trace {
            self.log.push(format!(
                "debug: server {s} message kind {} byte1 {} seq {} len {}",
                msg[0],
                msg[1],
                order.u16(msg, 2),
                msg.len()
            ));
        }
        let has_seq = kind != 11; // KeymapNotify has no sequence number
        let full = if has_seq {
            srv.widen(order.u16(msg, 2))
        } else {
            srv.sent
        };
        srv.seen = srv.seen.max(full);
        let seg = srv.segment_for(full);
        let (origin, client_seq, app_view_seq) = match seg {
            Some(seg) => {
                let cs = (full as i64 - seg.delta).max(0) as u64;
                match seg.origin {
                    Origin::App => {
                        srv.app_done = srv.app_done.max(cs);
                        (Origin::App, cs, cs)
                    }
                    Origin::Internal => (Origin::Internal, cs, seg.app_before),
                }
            }
            None => (Origin::App, srv.app_done, srv.app_done),
        };
        // Replies and errors: find the pending record.
        let pending = if kind <= 1 {
            while srv.pending.front().is_some_and(|p| p.seq < full) {
                srv.pending.pop_front();
            }
            match srv.pending.front() {
                Some(p) if p.seq == full => {
                    let p = p.clone();
                    // Multi-reply requests (ListFontsWithInfo) stay until their last reply.
                    let last = !(kind == 1 && p.table == 0 && p.opcode == 50 && msg[1] != 0);
                    if last {
                        srv.pending.pop_front();
                    }
                    Some(p)
                }
                _ => None,
            }
        } else {
            None
        };
        if kind <= 1 && pending.as_ref().is_some_and(|p| p.silent) {
            return; // guimux's own refresh of a pixmap: not the app's business
        }
        if kind <= 1 && origin == Origin::Internal {
            if let Some(int) = self.internal.as_mut().filter(|i| i.server == s) {
                order.put_u16(msg, 2, client_seq as u16);
                int.out.extend_from_slice(msg);
            }
            return;
        }
        let role = srv.role;
        // A replica's replies and errors are not the app's, but are kept (in the app's view)
        // until the primary has delivered its own: they answer the app should the primary die.
        let keep_for_promotion = kind <= 1 && matches!(role, Role::Replica { .. });
        if kind <= 1 && role == Role::Pending {
            return;
        }
        if keep_for_promotion && pending.as_ref().is_some_and(|p| p.shm.is_some()) {
            return; // converted MIT-SHM replies carry state (descriptors): not replayable
        }
        if srv.told_by_dead_primary(kind, client_seq, app_view_seq) {
            return;
        }
        if kind > 1 {
            // Events.
            match role {
                Role::Pending => {
                    srv.held.push(msg.to_vec());
                    return;
                }
                Role::Replica { view_only } => {
                    if view_only || !is_input_event(kind) {
                        self.stats.dropped_events += 1;
                        return;
                    }
                }
                Role::Primary => {}
            }
        }
        let app_seq = if kind > 1 {
            if is_primary {
                // A promoted primary that was asked again (see `Engine::promote`) numbers
                // what follows those questions after them: the app has seen later numbers.
                match srv.promoted_after {
                    Some(_) => app_view_seq.max(srv.app_done),
                    None => app_view_seq,
                }
            } else {
                global_done
            }
        } else {
            client_seq
        };
        if kind == 1 && srv.shm.is_some() && self.shm.is_some() {
            if let Some(sp) = pending.as_ref().and_then(|p| p.shm.clone()) {
                self.shm_reply_to_app(s, &sp, msg, client_seq);
                return;
            }
        }
        if let Some(maps) = srv.maps.as_mut() {
            let p = pending.as_ref();
            if !to_app_view(
                msg,
                kind,
                order,
                maps,
                p,
                full,
                &mut self.log,
                &mut self.stats,
            ) {
                return;
            }
        }
        if has_seq {
            order.put_u16(msg, 2, app_seq as u16);
        }
        if keep_for_promotion {
            srv.keep_unanswered(self.last_reply, client_seq, msg);
            return;
        }
        if kind <= 1 {
            self.last_reply = self.last_reply.max(client_seq);
        }
        if self.trace {
            self.log.push(format!(
                "debug: to app from server {s}: kind {kind} seq {app_seq} (client {client_seq})"
            ));
        }
        self.tell_app(kind, app_seq, msg);
    }

    /// The reply to a converted MIT-SHM request (`sp`) from server `s`, rewritten as the reply
    /// the app's own request expects (segment contents written, descriptors passed on) and
    /// given to the app.
    fn shm_reply_to_app(&mut self, s: ServerId, sp: &ShmPending, msg: &[u8], client_seq: u64) {
        let order = self.order;
        let Some(srv) = self.servers[s].as_mut() else {
            return;
        };
        if let (Some(t), Some(st)) = (srv.shm.as_ref(), self.shm.as_mut()) {
            let Some(conv) = sp.conv.as_ref() else {
                return; // no reply expected: nothing for the app
            };
            let ctx = t.ctx(order);
            let mut out = match shmconv::reply(&ctx, conv, msg, st.mem.as_mut()) {
                Ok(out) => out,
                Err((code, why)) => {
                    self.log
                        .push(format!("MIT-SHM request {} failed: {why}", sp.minor));
                    let mut e = [0u8; 32];
                    e[1] = code;
                    order.put_u16(&mut e, 8, u16::from(sp.minor));
                    e[10] = sp.major;
                    e
                }
            };
            if let Conv::CreateSegment { seg } = conv {
                if out[0] == 1 {
                    match st.created.remove(seg) {
                        Some(fd) => st.fds_to_app.push(fd),
                        None => out[1] = 0,
                    }
                }
            }
            order.put_u16(&mut out, 2, client_seq as u16);
            self.last_reply = client_seq;
            self.tell_app(1, client_seq, &out);
        }
    }
}

/// Core input events that a replica may contribute: KeyPress..MotionNotify.
pub(super) fn is_input_event(code: u8) -> bool {
    (2..=6).contains(&code)
}

/// Whether an event a server sent while the session was being regenerated on it only echoes
/// what regeneration did (CreateWindow, MapWindow, ChangeProperty, …) about state the app already
/// has: the app's windows were mapped, configured and given their properties long ago, and
/// telling it again breaks toolkits that count such events (GTK3 thaws toplevel updates on each
/// MapNotify: `gdk_window_thaw_toplevel_updates` assertion after every attach). Expose,
/// visibility, focus and input events are the new server's news and pass; so does anything
/// another client sent (SendEvent, bit 7).
pub(super) fn is_regeneration_echo(code: u8) -> bool {
    matches!(
        code,
        16 // CreateNotify
        | 17 // DestroyNotify
        | 18 // UnmapNotify
        | 19 // MapNotify
        | 21 // ReparentNotify
        | 22 // ConfigureNotify
        | 24 // GravityNotify
        | 26 // CirculateNotify
        | 28 // PropertyNotify
        | 32 // ColormapNotify
    )
}

/// Translate server message `msg` (`kind`: error, reply, event; server seq `full`) to the app's
/// view with `maps`; `pending` is the request it answers. False: the app must not see it.
#[allow(clippy::too_many_arguments)]
fn to_app_view(
    msg: &mut [u8],
    kind: u8,
    order: ByteOrder,
    maps: &mut Maps,
    pending: Option<&Pending>,
    full: u64,
    log: &mut Vec<String>,
    stats: &mut Stats,
) -> bool {
    let ok = match kind {
        0 => {
            if let Some(x) = pending.and_then(|p| p.substituted) {
                msg[1] = x.code;
                order.put_u32(msg, 4, x.value);
                order.put_u16(msg, 8, x.minor);
                msg[10] = x.major;
            } else if let Some(sp) = pending.and_then(|p| p.shm.as_ref()) {
                // An error of a request standing for the app's MIT-SHM request.
                translate::error_to_app(msg, order, maps);
                order.put_u16(msg, 8, u16::from(sp.minor));
                msg[10] = sp.major;
            } else {
                translate::error_to_app(msg, order, maps);
                log.push(format!(
                    "debug: X error {} (value {:#x}) for request {}.{} reaches the app",
                    msg[1],
                    order.u32(msg, 4),
                    msg[10],
                    order.u16(msg, 8)
                ));
            }
            true
        }
        1 => match pending {
            Some(p) => match translate::reply_to_app(msg, order, maps, p.table, p.opcode, &p.aux) {
                Ok(()) => true,
                Err(e) => {
                    stats.untranslated += 1;
                    log.push(format!(
                        "reply to request {}:{} passed untranslated: {e}",
                        p.table, p.opcode
                    ));
                    true
                }
            },
            None => {
                stats.untranslated += 1;
                log.push(format!("reply with sequence {full} matches no request"));
                true
            }
        },
        _ => match translate::event_to_app(msg, order, maps) {
            Ok(keep) => {
                if !keep {
                    stats.dropped_events += 1;
                }
                keep
            }
            Err(e) => {
                stats.untranslated += 1;
                log.push(format!("event {} passed untranslated: {e}", msg[0]));
                true
            }
        },
    };
    ok
}
