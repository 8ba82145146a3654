//! Surviving the primary's X server, and the guard. In: a replica's replies and errors (kept
//! in the app's view until the primary has delivered its own), the app's requests (to tell a
//! lean replica's window drawing from the rest), and the caller's word that the primary is
//! dead. Out: [`Engine::promote`] makes a replica the primary — what the dead primary still
//! owed the app comes from the replica's keep, once and in order, and what it had already
//! told the app is not told again; [`Engine::set_lean`] makes a replica a *guard* that gets
//! NoOperation for drawing into the app's windows.

use super::*;

/// Most replies a replica keeps for a primary that may die before it answers (see
/// `Server::unanswered`); beyond it the oldest go (the primary is then far ahead of or far
/// behind the replica, and a promotion would not be exact anyway).
const UNANSWERED_MAX: usize = 4096;

/// Whether core request `req` only draws into one of `windows` (no reply, no state but pixels).
pub(super) fn is_window_drawing(req: &[u8], order: ByteOrder, windows: &HashSet<u32>) -> bool {
    if windows.is_empty() {
        return false;
    }
    // BIG-REQUESTS form: a zero length field, then 4 more bytes of length.
    let big = if req.len() >= 4 && order.u16(req, 2) == 0 {
        4
    } else {
        0
    };
    let at = match req[0] {
        61 | 64..=72 | 74..=77 => 4, // ClearArea, Poly*, FillPoly, PutImage, *Text*
        62 | 63 => 8,                // CopyArea, CopyPlane: the destination
        _ => return false,
    } + big;
    req.len() >= at + 4 && windows.contains(&order.u32(req, at))
}

impl Server {
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
        let mut n = 0;
        for (seq, msg) in std::mem::take(&mut srv.unanswered) {
            if seq > last {
                self.last_reply = seq;
                self.stats.to_app_messages += 1;
                self.app_out.extend_from_slice(&msg);
                n += 1;
            }
        }
        self.primary = Some(to);
        Ok(n)
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
    /// (core drawing, PutImage, ClearArea, CopyArea/CopyPlane into a window) reach it as
    /// NoOperation. For a guard, which nobody looks at: should it become the primary, the
    /// app repaints on the Expose events of the next attach. `windows` are the app's windows
    /// (app-view IDs) made before now (they replace any known before); later CreateWindow
    /// requests are tracked. A window the app made between the capture `windows` come from
    /// and this call is drawn into in full (no harm, only work).
    pub fn set_lean(
        &mut self,
        s: ServerId,
        windows: impl IntoIterator<Item = u32>,
    ) -> Result<(), EngineError> {
        let srv = self
            .servers
            .get_mut(s)
            .and_then(|x| x.as_mut())
            .filter(|x| matches!(x.role, Role::Replica { .. }))
            .ok_or(EngineError::NoServer(s))?;
        srv.lean = true;
        // Replaced, not extended: while no server was lean nothing was tracked, and a stale
        // ID reused for a pixmap would have its drawing dropped.
        self.app_windows = windows.into_iter().collect();
        Ok(())
    }

    /// Keep [`Engine::app_windows`] current: CreateWindow adds, DestroyWindow and a
    /// CreatePixmap reusing the ID remove.
    pub(super) fn track_windows(&mut self, req: &[u8]) {
        const CREATE_WINDOW: u8 = 1;
        const DESTROY_WINDOW: u8 = 4;
        const CREATE_PIXMAP: u8 = 53;
        if req.len() < 12 || !self.servers.iter().flatten().any(|s| s.lean) {
            return;
        }
        let o = self.order;
        match req[0] {
            CREATE_WINDOW => {
                self.app_windows.insert(o.u32(req, 4));
            }
            DESTROY_WINDOW => {
                self.app_windows.remove(&o.u32(req, 4));
            }
            CREATE_PIXMAP => {
                self.app_windows.remove(&o.u32(req, 4));
            }
            _ => {}
        }
    }
}
