//! Surviving the primary's X server, and the guard. In: a replica's replies and errors (kept
//! in the app's view until the primary has delivered its own), the app's requests (to tell a
//! lean replica's window drawing from the rest), and the caller's word that the primary is
//! dead. Out: [`Engine::promote`] makes a replica the primary — what the dead primary still
//! owed the app comes from the replica's keep, once and in order, and what it had already
//! told the app is not told again; [`Engine::set_lean`] makes a replica a *guard* that gets
//! NoOperation for drawing into the app's windows and for pure queries. The pure queries the
//! dead primary had not answered are asked of the promoted guard then, and what the app is
//! told waits in a [`Reorder`] until their answers are in, so the app hears everything in
//! order.

use super::*;

/// Most replies a replica keeps for a primary that may die before it answers (see
/// `Server::unanswered`); beyond it the oldest go (the primary is then far ahead of or far
/// behind the replica, and a promotion would not be exact anyway).
const UNANSWERED_MAX: usize = 4096;

/// What a lean replica needs to tell drawing into the app's windows from the rest: the app's
/// windows and the RENDER pictures made on them (app-view IDs), and RENDER's app-view major.
#[derive(Debug, Default)]
pub(super) struct LeanView {
    windows: HashSet<u32>,
    pictures: HashSet<u32>,
    render_major: Option<u8>,
}

impl LeanView {
    /// RENDER's app-view major opcode, when known.
    pub(super) fn render_major(&self) -> Option<u8> {
        self.render_major
    }

    /// Whether `req` only draws into one of the app's windows (no reply, no state but
    /// pixels): core drawing, PutImage, ClearArea, CopyArea/CopyPlane into a window, and
    /// RENDER's drawing requests whose destination is a picture on a window.
    pub(super) fn is_window_drawing(&self, req: &[u8], order: ByteOrder) -> bool {
        if self.windows.is_empty() || req.len() < 4 {
            return false;
        }
        // BIG-REQUESTS form: a zero length field, then 4 more bytes of length.
        let big = if order.u16(req, 2) == 0 { 4 } else { 0 };
        let (at, set) = match req[0] {
            61 | 64..=72 | 74..=77 => (4, &self.windows), // ClearArea, Poly*, FillPoly, PutImage, *Text*
            62 | 63 => (8, &self.windows),                // CopyArea, CopyPlane: the destination
            m if Some(m) == self.render_major => match req[1] {
                8 => (16, &self.pictures),                 // Composite
                10..=13 | 23..=25 => (12, &self.pictures), // Trapezoids … TriFan, CompositeGlyphs*
                26 => (8, &self.pictures),                 // FillRectangles
                _ => return false,
            },
            _ => return false,
        };
        let at = at + big;
        req.len() >= at + 4 && set.contains(&order.u32(req, at))
    }

    /// Keep the view current: CreateWindow adds a window, DestroyWindow and a CreatePixmap
    /// reusing the ID remove it; RENDER CreatePicture on a window adds a picture, FreePicture
    /// removes it.
    fn track(&mut self, req: &[u8], order: ByteOrder) {
        const CREATE_WINDOW: u8 = 1;
        const DESTROY_WINDOW: u8 = 4;
        const CREATE_PIXMAP: u8 = 53;
        const CREATE_PICTURE: u8 = 4;
        const FREE_PICTURE: u8 = 7;
        if req.len() < 8 {
            return;
        }
        match req[0] {
            CREATE_WINDOW if req.len() >= 12 => {
                self.windows.insert(order.u32(req, 4));
            }
            DESTROY_WINDOW | CREATE_PIXMAP => {
                self.windows.remove(&order.u32(req, 4));
            }
            m if Some(m) == self.render_major => match req[1] {
                CREATE_PICTURE if req.len() >= 12 && self.windows.contains(&order.u32(req, 8)) => {
                    self.pictures.insert(order.u32(req, 4));
                }
                FREE_PICTURE => {
                    self.pictures.remove(&order.u32(req, 4));
                }
                _ => {}
            },
            _ => {}
        }
    }
}

/// Whether core request `req` only asks (a reply, and no state changes on the server): a lean
/// replica need not be asked while the primary lives. ListFontsWithInfo (several replies) and
/// GetProperty with `delete` are not.
pub(super) fn is_pure_query(req: &[u8]) -> bool {
    match req[0] {
        // GetWindowAttributes, GetGeometry, QueryTree, GetAtomName, ListProperties,
        // GetSelectionOwner, QueryPointer, GetMotionEvents, TranslateCoordinates,
        // GetInputFocus, QueryKeymap, QueryFont, QueryTextExtents, ListFonts, GetFontPath,
        // GetImage, ListInstalledColormaps, QueryColors, LookupColor, QueryBestSize,
        // QueryExtension, ListExtensions, GetKeyboardMapping, GetKeyboardControl,
        // GetPointerControl, GetScreenSaver, ListHosts, GetPointerMapping, GetModifierMapping.
        3
        | 14
        | 15
        | 17
        | 21
        | 23
        | 38..=40
        | 43
        | 44
        | 47..=49
        | 52
        | 73
        | 83
        | 91
        | 92
        | 97..=99
        | 101
        | 103
        | 106
        | 108
        | 110
        | 117
        | 119 => true,
        20 => req.len() > 1 && req[1] == 0, // GetProperty without delete
        _ => false,
    }
}

/// Messages for the app held after a promotion until the promoted primary has answered the
/// questions the dead one left open (see [`Engine::promote`]).
#[derive(Debug, Default)]
pub(super) struct Reorder {
    /// App seqs of the questions asked again, not answered yet.
    waiting: std::collections::BTreeSet<u64>,
    /// `(app seq, events after replies, message)`.
    held: Vec<(u64, bool, Vec<u8>)>,
}

impl Server {
    /// Keep a lean replica's pure query `req` (app numbering `seq`) that it got as
    /// NoOperation, until the primary has answered it (up to `answered`).
    pub(super) fn keep_reask(&mut self, answered: u64, seq: u64, req: &[u8]) {
        let q = &mut self.reask;
        while q.front().is_some_and(|(s, _)| *s <= answered) || q.len() >= UNANSWERED_MAX {
            q.pop_front();
        }
        q.push_back((seq, req.to_vec()));
    }

    /// Keep a replica's reply or error `msg` (app numbering `client_seq`) for a promotion;
    /// what the primary has delivered (up to `delivered`) and, beyond [`UNANSWERED_MAX`], the
    /// oldest go.
    pub(super) fn keep_unanswered(&mut self, delivered: u64, client_seq: u64, msg: &[u8]) {
        let q = &mut self.unanswered;
        while q.front().is_some_and(|(s, _)| *s <= delivered) || q.len() >= UNANSWERED_MAX {
            q.pop_front();
        }
        if client_seq > delivered {
            q.push_back((client_seq, msg.to_vec()));
        }
    }

    /// On a replica promoted to primary: whether a message of `kind` (reply or error: app
    /// numbering `client_seq`; event: app-view `app_view_seq`) was the dead primary's to
    /// deliver, so is not told again.
    pub(super) fn told_by_dead_primary(
        &self,
        kind: u8,
        client_seq: u64,
        app_view_seq: u64,
    ) -> bool {
        let Some((done, answered)) = self.promoted_after else {
            return false;
        };
        if kind <= 1 {
            client_seq <= answered
        } else {
            app_view_seq < done
        }
    }
}

impl Engine {
    /// The primary `dead` is gone (its server died): replica `to` becomes the primary. Replies
    /// and errors the replica gave to requests the dead primary had not answered go to the app
    /// now, in order and in the app's numbering; later ones follow as the replica sends them.
    /// The replica's events become the app's (input too, also from a view-only replica).
    /// Returns how many answers were delivered from the replica's keep.
    pub fn promote(&mut self, dead: ServerId, to: ServerId) -> Result<usize, EngineError> {
        if !self
            .servers
            .get(to)
            .and_then(|x| x.as_ref())
            .is_some_and(|s| matches!(s.role, Role::Replica { .. }) && s.is_synced())
        {
            return Err(EngineError::NoServer(to));
        }
        let (done, sent) = self
            .servers
            .get(dead)
            .and_then(|x| x.as_ref())
            .map(|s| (s.app_done, s.app_sent))
            .unwrap_or((self.detached_app_done, self.detached_app_done));
        if self.primary == Some(dead) {
            self.remove_server(dead);
        }
        let last = self.last_reply;
        let srv = self.servers[to].as_mut().ok_or(EngineError::NoServer(to))?;
        srv.role = Role::Primary;
        srv.lean = false;
        srv.promoted_after = Some((done, last));
        // Numbering goes on from where the app is: an idle replica has seen no app request
        // since it was made, and its own counts start at zero.
        srv.app_done = srv.app_done.max(done);
        srv.app_sent = srv.app_sent.max(sent);
        // Pure queries the guard got as NoOperation that the dead primary did not answer: ask
        // them now. Their answers come after everything the guard already said, so what the
        // app is told waits until they are in.
        let reask: Vec<(u64, Vec<u8>)> = std::mem::take(&mut srv.reask)
            .into_iter()
            .filter(|(seq, _)| *seq > last)
            .collect();
        let kept = std::mem::take(&mut srv.unanswered);
        self.primary = Some(to);
        if !reask.is_empty() {
            self.reorder = Some(Reorder::default());
            self.ask_again(to, reask);
        }
        let mut n = 0;
        for (seq, msg) in kept {
            if seq > last {
                self.last_reply = seq;
                self.tell_app(msg[0] & 0x7f, seq, &msg);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Send `reask` (app-view pure queries with their app seqs, oldest first) to the promoted
    /// primary `to`, each answered under its own app seq; the app hears nothing until all are
    /// answered (see [`Engine::tell_app`]).
    fn ask_again(&mut self, to: ServerId, reask: Vec<(u64, Vec<u8>)>) {
        let order = self.order;
        let Some(srv) = self.servers[to].as_mut() else {
            return;
        };
        let sent_before = srv.app_sent;
        for (seq, req) in reask {
            let mut bytes = req.clone();
            // Without maps (the server numbers as the app does) the request goes as it is.
            let t = srv
                .maps
                .as_mut()
                .map(|maps| translate::request_to_server(&mut bytes, order, maps));
            match t {
                None => {
                    srv.push_request(Origin::App, seq, seq - 1);
                    srv.out.extend_from_slice(&bytes);
                }
                Some(Ok(t)) => srv.send_app_request(seq, &bytes, t.table, t.opcode, t.aux),
                Some(Err(e)) => {
                    self.log.push(format!(
                        "asking the promoted server again: request {} cannot go: {e}",
                        req[0]
                    ));
                    srv.send_substitute(
                        order,
                        seq,
                        Subst {
                            code: 17, // BadImplementation
                            value: 0,
                            major: req[0],
                            minor: u16::from(req[1]),
                        },
                    );
                }
            }
            if let Some(r) = self.reorder.as_mut() {
                r.waiting.insert(seq);
            }
        }
        srv.app_sent = srv.app_sent.max(sent_before);
        // Whatever it says after these questions comes after every app request it got
        // before them: events then carry a number the app has reached.
        srv.app_done = srv.app_done.max(sent_before);
        self.log.push(format!(
            "promotion: asked the new primary {} question(s) the dead one left open",
            self.reorder.as_ref().map_or(0, |r| r.waiting.len())
        ));
    }

    /// Give the app one message (`kind` 0 error, 1 reply, else event; numbered `seq` in the
    /// app's view) — or, after a promotion that asked again, hold it until every answer is in
    /// and then give all held ones in the app's order.
    pub(super) fn tell_app(&mut self, kind: u8, seq: u64, msg: &[u8]) {
        let Some(r) = self.reorder.as_mut() else {
            self.stats.to_app_messages += 1;
            self.app_out.extend_from_slice(msg);
            return;
        };
        if kind <= 1 {
            r.waiting.remove(&seq);
        }
        r.held.push((seq, kind > 1, msg.to_vec()));
        if !r.waiting.is_empty() {
            return;
        }
        let mut held = std::mem::take(&mut r.held);
        self.reorder = None;
        held.sort_by_key(|(seq, event, _)| (*seq, *event));
        for (_, _, m) in held {
            self.stats.to_app_messages += 1;
            self.app_out.extend_from_slice(&m);
        }
    }

    /// The lean replicas (guards).
    pub fn lean_replicas(&self) -> Vec<ServerId> {
        self.servers
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().filter(|s| s.lean).map(|_| i))
            .collect()
    }

    /// The replicas, with their roles, that could take over from the primary.
    pub fn replicas(&self) -> Vec<(ServerId, Role)> {
        self.servers
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.as_ref()
                    .filter(|s| matches!(s.role, Role::Replica { .. }) && s.is_synced())
                    .map(|s| (i, s.role))
            })
            .collect()
    }

    /// Make replica `s` *lean*: requests that only draw into one of the app's windows
    /// (core drawing, PutImage, ClearArea, CopyArea/CopyPlane into a window, RENDER drawing
    /// into a picture on a window) and pure queries reach it as NoOperation. For a guard,
    /// which nobody looks at: should it become the primary, the app repaints on the Expose
    /// events of the next attach, and the open queries are asked then. `windows` are the
    /// app's windows and `pictures` the RENDER pictures on them (app-view IDs) made before now
    /// (they replace any known before); later CreateWindow and CreatePicture requests are
    /// tracked. A window the app made between the capture they come from and this call is
    /// drawn into in full (no harm, only work).
    pub fn set_lean(
        &mut self,
        s: ServerId,
        windows: impl IntoIterator<Item = u32>,
        pictures: impl IntoIterator<Item = u32>,
    ) -> Result<(), EngineError> {
        let srv = self
            .servers
            .get_mut(s)
            .and_then(|x| x.as_mut())
            .filter(|x| matches!(x.role, Role::Replica { .. }))
            .ok_or(EngineError::NoServer(s))?;
        srv.lean = true;
        let render_major = srv
            .maps
            .as_ref()
            .and_then(|m| m.exts.by_name("RENDER"))
            .and_then(|e| e.app)
            .map(|p| p.major);
        // Replaced, not extended: while no server was lean nothing was tracked, and a stale
        // ID reused for a pixmap would have its drawing dropped.
        self.lean_view = LeanView {
            windows: windows.into_iter().collect(),
            pictures: pictures.into_iter().collect(),
            render_major,
        };
        Ok(())
    }

    /// Keep [`Engine::lean_view`] current while some replica is lean.
    pub(super) fn track_windows(&mut self, req: &[u8]) {
        if self.servers.iter().flatten().any(|s| s.lean) {
            self.lean_view.track(req, self.order);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_drawing_into_a_window_picture_is_window_drawing() {
        let o = ByteOrder::Little;
        let mut v = LeanView {
            windows: [0x200001].into_iter().collect(),
            pictures: HashSet::new(),
            render_major: Some(139),
        };
        let req = |minor: u8, words: &[u32]| {
            let mut r = vec![139, minor, 0, 0];
            for w in words {
                r.extend_from_slice(&w.to_le_bytes());
            }
            let n = (r.len() / 4) as u16;
            r[2..4].copy_from_slice(&n.to_le_bytes());
            r
        };
        // CreatePicture 0x200005 on the window, 0x200006 on a pixmap.
        v.track(&req(4, &[0x200005, 0x200001, 0x25, 0]), o);
        v.track(&req(4, &[0x200006, 0x200002, 0x25, 0]), o);
        // FillRectangles (dst at 8), Composite (dst at 16), CompositeGlyphs8 (dst at 12).
        assert!(v.is_window_drawing(&req(26, &[3, 0x200005, 0, 0]), o));
        assert!(!v.is_window_drawing(&req(26, &[3, 0x200006, 0, 0]), o));
        assert!(v.is_window_drawing(&req(8, &[3, 0x200006, 0, 0x200005, 0, 0, 0]), o));
        assert!(!v.is_window_drawing(&req(8, &[3, 0x200005, 0, 0x200006, 0, 0, 0]), o));
        assert!(v.is_window_drawing(&req(23, &[3, 0x200006, 0x200005, 0, 0x7, 0]), o));
        // CreateGlyphSet-like state requests never are; a freed picture no longer counts.
        assert!(!v.is_window_drawing(&req(17, &[0x200008, 0x25]), o));
        v.track(&req(7, &[0x200005]), o);
        assert!(!v.is_window_drawing(&req(26, &[3, 0x200005, 0, 0]), o));
        // Pure queries: GetInputFocus yes, InternAtom and GetProperty with delete no.
        assert!(is_pure_query(&[43, 0, 1, 0]));
        assert!(!is_pure_query(&[16, 0, 3, 0]));
        assert!(is_pure_query(&[20, 0, 6, 0]));
        assert!(!is_pure_query(&[20, 1, 6, 0]));
    }
}
