//! The engine's side of salvage (see [`crate::salvage`]): the marks taken before each call
//! that may panic, and turning an engine whose state is still the identity into a
//! [`PassThrough`] with the bytes the failed call had not used. It lives beside the engine
//! because it reads the engine's private state.

use super::*;

impl Engine {
    /// The mark of one input side, to take before each call that may fail (cheap: no copy).
    pub fn input_mark(&self, side: Side) -> InputMark {
        match side {
            Side::App => InputMark {
                partial: self.app_in.len(),
                framed: self.app_stream_offset,
            },
            Side::Server(s) => self
                .servers
                .get(s)
                .and_then(|x| x.as_ref())
                .map(|srv| InputMark {
                    partial: srv.inbuf.len(),
                    framed: srv.framed,
                })
                .unwrap_or_default(),
        }
    }

    /// Why this engine cannot be replaced by a [`PassThrough`], or `None` if it can.
    pub fn salvage_obstacle(&self) -> Option<String> {
        let Some(p) = self.primary else {
            return Some("detached (no server)".into());
        };
        let Some(srv) = self.servers.get(p).and_then(|x| x.as_ref()) else {
            return Some("the primary server is gone".into());
        };
        if srv.maps.is_some() {
            return Some("moved from its original server (translation maps in use)".into());
        }
        if !srv.is_synced() {
            return Some("not yet synchronised".into());
        }
        if self.server_ids().len() != 1 {
            return Some("replicas or pending servers exist".into());
        }
        if self.paused || self.group_hold.is_some() || !self.queue.is_empty() {
            return Some("app requests are held".into());
        }
        if self.internal.is_some() {
            return Some("an internal client is active".into());
        }
        if srv.shm.is_some() {
            return Some("MIT-SHM is converted".into());
        }
        if !srv.held.is_empty() {
            return Some("events are held".into());
        }
        if srv.last_segment_internal() {
            return Some("internal requests are still being answered".into());
        }
        None
    }

    /// After a failed call that cannot be salvaged (see [`Engine::salvage`]): put the bytes
    /// it had not consumed back into the engine's buffer for that side, so framing stays
    /// aligned. Returns how many bytes of an earlier partial message were lost (normally 0).
    pub fn recover_input(&mut self, failed: &FailedCall<'_>) -> usize {
        match failed.side {
            Side::App => {
                let (v, lost) =
                    crate::salvage::leftover(failed, &self.app_in, self.app_stream_offset);
                self.app_in = v;
                lost
            }
            Side::Server(s) => match self.servers.get_mut(s).and_then(|x| x.as_mut()) {
                Some(srv) => {
                    let (v, lost) = crate::salvage::leftover(failed, &srv.inbuf, srv.framed);
                    srv.inbuf = v;
                    lost
                }
                None => 0,
            },
        }
    }

    /// Replace a failed engine by a [`PassThrough`] carrying over every queued byte and the
    /// unconsumed input of `failed` (the call that panicked, if any). Returns the pass-through
    /// and how many bytes of an earlier partial message were lost (normally 0), or why it is
    /// not possible (see [`Engine::salvage_obstacle`]); the engine is unusable afterwards
    /// either way.
    pub fn salvage(
        &mut self,
        failed: Option<FailedCall<'_>>,
    ) -> Result<(PassThrough, usize), String> {
        if let Some(why) = self.salvage_obstacle() {
            return Err(why);
        }
        let p = self.primary.unwrap_or_default();
        let app_seq = self.app_seq;
        let order = self.order;
        let mut app_in = std::mem::take(&mut self.app_in);
        let app_out = std::mem::take(&mut self.app_out);
        let app_framed = self.app_stream_offset;
        let Some(srv) = self.servers.get_mut(p).and_then(|x| x.as_mut()) else {
            return Err("the primary server is gone".into());
        };
        let mut server_in = std::mem::take(&mut srv.inbuf);
        let mut lost = 0;
        match failed {
            Some(
                f @ FailedCall {
                    side: Side::App, ..
                },
            ) => {
                let (v, l) = crate::salvage::leftover(&f, &app_in, app_framed);
                app_in = v;
                lost = l;
            }
            Some(
                f @ FailedCall {
                    side: Side::Server(s),
                    ..
                },
            ) if s == p => {
                let (v, l) = crate::salvage::leftover(&f, &server_in, srv.framed);
                server_in = v;
                lost = l;
            }
            _ => {}
        }
        let delta = srv.sent.wrapping_sub(app_seq) as u16;
        let mut pt = PassThrough::new(order, p, delta);
        pt.server_out = std::mem::take(&mut srv.out);
        pt.app_out = app_out;
        // The partial request goes first, then whatever the app writes next.
        pt.server_out.extend_from_slice(&app_in);
        pt.server_input(&server_in);
        pt.bytes_from_server = 0;
        Ok((pt, lost))
    }
}
