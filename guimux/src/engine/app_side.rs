//! The app side of the engine. In: the bytes the application writes. They are framed into
//! requests, numbered in the app's view, queued while paused or held, else sent to every
//! attached server — translated into each server's IDs, atoms and opcodes, converted when a
//! server cannot share the app's MIT-SHM memory, replaced by NoOperation on a lean guard
//! where they only draw or ask, or by a failing request where the server cannot serve
//! them. Out: each server's output buffer, and the pending-reply records the server side
//! matches answers with.

use super::*;

impl Engine {
    /// Feed bytes the app wrote. Complete requests are forwarded (or queued while paused);
    /// a partial request stays buffered.
    pub fn app_input(&mut self, data: &[u8]) -> Result<(), EngineError> {
        self.stats.bytes_from_app += data.len() as u64;
        self.app_in.extend_from_slice(data);
        let mut pos = 0;
        if self.app_setup_pending {
            match framing::setup_request_len(&self.app_in).map_err(EngineError::AppFraming)? {
                None => return Ok(()),
                Some((len, order)) => {
                    self.order = order;
                    self.app_setup_pending = false;
                    let req = self.app_in[..len].to_vec();
                    if let Some(p) = self.primary.and_then(|p| self.servers[p].as_mut()) {
                        p.out.extend_from_slice(&req);
                    }
                    pos = len;
                }
            }
        }
        // Requests are dispatched straight from the input buffer: no per-request allocation
        // on the pass-through path.
        let input = std::mem::take(&mut self.app_in);
        self.begin_lean_batch();
        let result = self.app_requests(&input, &mut pos);
        self.end_lean_batch();
        self.app_in = input;
        self.app_in.drain(..pos);
        result
    }

    pub(super) fn app_requests(
        &mut self,
        input: &[u8],
        pos: &mut usize,
    ) -> Result<(), EngineError> {
        loop {
            let buf = &input[*pos..];
            let Some((len, _hdr)) = framing::request_len(buf, self.order, self.app_stream_offset)
                .map_err(EngineError::AppFraming)?
            else {
                return Ok(());
            };
            let req = &buf[..len];
            *pos += len;
            self.app_stream_offset += len as u64;
            self.app_seq += 1;
            self.stats.app_requests += 1;
            if self.trace {
                self.log.push(format!(
                    "debug: app request seq {} major {} minor {} len {}",
                    self.app_seq,
                    req[0],
                    req[1],
                    req.len()
                ));
            }
            if self.paused || self.group_hold.is_some() || self.primary.is_none() {
                self.queue.push_back((self.app_seq, req.to_vec()));
            } else {
                self.dispatch_app_request(self.app_seq, req);
            }
        }
    }

    /// The app-view MIT-SHM major opcode when some server converts MIT-SHM.
    pub(super) fn shm_major(&self) -> Option<u8> {
        self.servers
            .iter()
            .flatten()
            .find_map(|s| s.shm.as_ref().map(|t| t.app_place.0))
    }

    /// Apply the segment-table effect of an app MIT-SHM request once (not per server).
    pub(super) fn shm_effect(&mut self, req: &[u8], before: bool) {
        let primary_converts = self.primary_converts_shm();
        let any_converts = self.shm_major().is_some();
        let Some(st) = self.shm.as_mut() else {
            return;
        };
        let Some(eff) = shmconv::effect(req, self.order) else {
            return;
        };
        let r = match (eff, before) {
            (
                shmconv::Effect::AttachSysv {
                    seg,
                    shmid,
                    read_only,
                },
                true,
            ) => st.mem.attach_sysv(seg, shmid, read_only),
            (shmconv::Effect::AttachFd { seg, read_only }, true) if any_converts => {
                match st.app_fds.pop_front() {
                    Some(fd) => st.mem.attach_fd(seg, fd, read_only),
                    None => Err("ShmAttachFd came without a descriptor".into()),
                }
            }
            (
                shmconv::Effect::Create {
                    seg,
                    size,
                    read_only,
                },
                true,
            ) if primary_converts => st.mem.create(seg, size, read_only).map(|fd| {
                st.created.insert(seg, fd);
            }),
            (shmconv::Effect::Detach { seg }, false) => {
                st.mem.detach(seg);
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = r {
            self.log.push(format!("MIT-SHM request {}: {e}", req[1]));
        }
    }

    /// Whether the primary server gets MIT-SHM converted (descriptors the app sends are then
    /// guimux's: see [`Engine::push_app_fds`]).
    pub fn primary_converts_shm(&self) -> bool {
        self.primary
            .and_then(|p| self.servers.get(p))
            .and_then(|x| x.as_ref())
            .is_some_and(|s| s.shm.is_some())
    }

    /// Send one app request (app-view bytes) to every attached server.
    pub(super) fn dispatch_app_request(&mut self, app_seq: u64, req: &[u8]) {
        let order = self.order;
        let shm_req = req[0] >= 128 && self.shm_major() == Some(req[0]);
        if shm_req {
            self.shm_effect(req, true);
        }
        self.track_windows(req);
        let window_drawing = self.lean_view.is_window_drawing(req, order);
        let pure_query = promote::is_pure_query(req);
        let answered = self.last_reply;
        let touch = if self.servers.iter().flatten().any(|s| s.batch.is_some()) {
            ephemeral::touch(req, order, self.lean_view.render_major())
        } else {
            ephemeral::Touch::Other
        };
        for sid in 0..self.servers.len() {
            let Some(srv) = self.servers[sid]
                .as_mut()
                .filter(|s| matches!(s.role, Role::Primary | Role::Replica { .. }))
            else {
                continue;
            };
            if let Some(b) = srv.batch.as_mut() {
                b.push((srv.out.len(), touch));
            }
            if let Sync::Sentinel { app_sent, .. } = &mut srv.sync {
                *app_sent += 1;
                srv.out.extend_from_slice(req);
                continue;
            }
            let app_before = app_seq - 1;
            if srv.lean && (window_drawing || pure_query) {
                // Pixels of a window are not state: an attach exposes and the app repaints.
                // A pure query changes nothing: the primary answers it, and should the
                // primary die first, the promoted guard is asked then. NoOperation keeps the
                // numbering (and costs the guard no reply to read).
                if pure_query {
                    srv.keep_reask(answered, app_seq, req);
                }
                srv.push_request(Origin::App, app_seq, app_before);
                let mut noop = [127u8, 0, 0, 0];
                order.put_u16(&mut noop, 2, 1);
                srv.out.extend_from_slice(&noop);
                continue;
            }
            if shm_req && srv.shm.is_some() && srv.maps.is_some() {
                if let Some(st) = self.shm.as_ref() {
                    send_converted_shm(srv, st, order, req, app_seq, app_before);
                    if srv.role == Role::Primary {
                        self.stats.delivered += 1;
                        self.stats.shm_converted += 1;
                    }
                    continue;
                }
            }
            if let Some(maps) = srv.maps.as_mut() {
                let mut bytes = req.to_vec();
                let major = bytes[0];
                let minor = bytes[1];
                match translate::request_to_server(&mut bytes, order, maps) {
                    Ok(t) => {
                        if maps.xids.watching() {
                            let hits = maps.xids.take_hits();
                            if !hits.is_empty() {
                                let ctx_formats = srv
                                    .shm
                                    .as_ref()
                                    .map(|x| (x.app.clone(), x.server.clone()))
                                    .or_else(|| self.app_formats.clone().map(|f| (f.clone(), f)));
                                refresh_pixmaps(
                                    srv,
                                    &hits,
                                    major,
                                    self.shm.as_mut(),
                                    ctx_formats,
                                    order,
                                    app_seq,
                                );
                            }
                        }
                        if let Some(e) = t.walk_error {
                            // Passed with only its opcode rewritten; say so: the picture may
                            // be wrong.
                            self.stats.untranslated += 1;
                            self.log.push(format!(
                                "request major {major} minor {minor} passed untranslated: {e}"
                            ));
                        }
                        if self.trace {
                            let n = bytes.len().min(24);
                            self.log
                                .push(format!("debug:   -> server {sid}: {:02x?}", &bytes[..n]));
                        }
                        srv.send_app_request(app_seq, &bytes, t.table, t.opcode, t.aux);
                    }
                    Err(e) => {
                        // The server cannot serve it: substitute a request that fails, so the
                        // app gets an error in order instead of waiting forever.
                        self.stats.substituted += 1;
                        self.log.push(format!(
                            "request major {major} minor {minor} cannot go to server {sid}: {e}; the app receives BadImplementation"
                        ));
                        srv.send_substitute(
                            order,
                            app_seq,
                            Subst {
                                code: 17, // BadImplementation
                                value: 0,
                                major,
                                minor: u16::from(minor),
                            },
                        );
                    }
                }
            } else {
                srv.push_request(Origin::App, app_seq, app_before);
                srv.out.extend_from_slice(req);
            }
            if srv.role == Role::Primary {
                self.stats.delivered += 1;
            }
        }
        if shm_req {
            self.shm_effect(req, false);
            self.track_shm_pixmap(req);
        }
        // A freed pixmap mirrors nothing any more, also where no server watched it.
        const FREE_PIXMAP: u8 = 54;
        if req[0] == FREE_PIXMAP && req.len() >= 8 {
            if let Some(st) = self.shm.as_mut().filter(|st| !st.pixmaps.is_empty()) {
                st.pixmaps.remove(&order.u32(req, 4));
            }
        }
    }

    /// A converted ShmCreatePixmap: remember what it mirrors, and watch its uses on the servers
    /// that converted it.
    pub(super) fn track_shm_pixmap(&mut self, req: &[u8]) {
        let Some((pid, src)) = shmconv::pixmap_source(req, self.order) else {
            return;
        };
        let Some(st) = self.shm.as_mut() else {
            return;
        };
        let mut tracked = false;
        for srv in self.servers.iter_mut().flatten() {
            if let (Some(_), Some(m)) = (srv.shm.as_ref(), srv.maps.as_mut()) {
                m.xids.watch(pid);
                tracked = true;
            }
        }
        if tracked {
            st.pixmaps.insert(pid, src);
        }
    }
}

/// Before an app request that uses pixmaps mirroring a segment (`hits`, app view), upload
/// their current contents to server `srv` (silently: errors are guimux's). FreePixmap ends the
/// mirroring.
pub(super) fn refresh_pixmaps(
    srv: &mut Server,
    hits: &[u32],
    major: u8,
    shm: Option<&mut ShmState>,
    formats: Option<(ImageFormats, ImageFormats)>,
    order: ByteOrder,
    app_seq: u64,
) {
    const FREE_PIXMAP: u8 = 54;
    let (Some(st), Some((app, server)), Some(maps)) = (shm, formats, srv.maps.as_mut()) else {
        return;
    };
    if major == FREE_PIXMAP {
        for id in hits {
            maps.xids.unwatch(*id);
            st.pixmaps.remove(id);
        }
        return;
    }
    let ctx = shmconv::Ctx {
        order,
        major: 0,
        first_event: 0,
        first_error: 0,
        app: &app,
        server: &server,
        owner: (0, 0),
    };
    let scratch = maps.xids.server_base | maps.xids.server_mask;
    let mut seen = Vec::new();
    for id in hits {
        if seen.contains(id) {
            continue;
        }
        seen.push(*id);
        let (Some(src), Some(spid)) = (
            st.pixmaps.get(id),
            srv.maps.as_ref().and_then(|m| m.xids.lookup(*id)),
        ) else {
            continue;
        };
        // A segment already detached: the pixmap keeps its last contents.
        let Ok(outs) = shmconv::refresh(&ctx, st.mem.as_ref(), src, spid, scratch) else {
            continue;
        };
        for o in outs {
            if let shmconv::Out::Request { bytes, .. } = o {
                srv.push_request(Origin::App, app_seq, app_seq - 1);
                srv.pending.push_back(Pending {
                    seq: srv.sent,
                    table: 0,
                    opcode: bytes[0],
                    aux: ReplyAux::None,
                    substituted: None,
                    shm: None,
                    silent: true,
                });
                srv.out.extend_from_slice(&bytes);
            }
        }
    }
}

/// Send app MIT-SHM request `req` (app seq `app_seq`) to `srv`, which cannot share the app's
/// memory: as the core requests [`shmconv::convert`] makes of it (reading the segment in
/// `st`), each with the pending record that rewrites its answer, or a failing request whose
/// error names the app's request.
fn send_converted_shm(
    srv: &mut Server,
    st: &ShmState,
    order: ByteOrder,
    req: &[u8],
    app_seq: u64,
    app_before: u64,
) {
    let (Some(t), Some(maps)) = (srv.shm.as_ref(), srv.maps.as_mut()) else {
        return;
    };
    let ctx = t.ctx(order);
    let scratch = maps.xids.server_base | maps.xids.server_mask;
    let outs = shmconv::convert(
        &ctx,
        req,
        st.mem.as_ref(),
        &mut |id| maps.xids.to_server(id),
        scratch,
    );
    for o in outs {
        match o {
            shmconv::Out::Request { bytes, conv } => {
                srv.push_request(Origin::App, app_seq, app_before);
                srv.pending.push_back(Pending {
                    seq: srv.sent,
                    table: 0,
                    opcode: bytes[0],
                    aux: ReplyAux::None,
                    substituted: None,
                    silent: false,
                    shm: Some(ShmPending {
                        major: req[0],
                        minor: req[1],
                        conv,
                    }),
                });
                srv.out.extend_from_slice(&bytes);
            }
            shmconv::Out::Error { code, value } => srv.send_substitute(
                order,
                app_seq,
                Subst {
                    code,
                    value,
                    major: req[0],
                    minor: u16::from(req[1]),
                },
            ),
        }
    }
}
