//! The multiplexer. Bytes from the application, from guimux's own internal client (used to
//! capture and regenerate the window session on the same connection), and from one or more X
//! servers flow in; framed, translated bytes for each destination flow out through per-peer
//! output buffers that the caller drains. Sequence numbers are tracked per server as segments of
//! constant offset, so requests guimux injects stay invisible to the application.
//!
//! Life cycle: `Engine::premeditated` (sees the setup handshake) or `Engine::hijacked` (joins a
//! live connection and synchronises with a sentinel request) → `pause` → internal client
//! (capture) → `remove_server` (detached; app requests queue) → `add_server` → internal client
//! (regenerate) → `activate` with maps (queued requests replay through translation).
//!
//! `engine/promote.rs`: a replica made primary when the primary's server dies, and lean guards;
//! `engine/salvage.rs`: the engine's side of panic containment; `engine/tests.rs`: unit tests.

use crate::fields::ByteOrder;
use crate::framing::{self, FrameError};
use crate::salvage::{FailedCall, InputMark, PassThrough, Side};
use crate::shmconv::{self, Conv, ImageFormats, SegmentMemory};
use crate::tables;
use crate::translate::{self, Maps, ReplyAux};
use std::collections::{HashMap, HashSet, VecDeque};
use std::os::fd::OwnedFd;

/// Index of a server connection inside the engine.
pub type ServerId = usize;

/// Errors that end the application's connection (the caller closes it and logs the message).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The application sent bytes that are not X requests.
    #[error("malformed request stream from the application: {0}")]
    AppFraming(FrameError),
    /// The internal client sent bytes that are not X requests.
    #[error("malformed request stream from the internal client: {0}")]
    InternalFraming(FrameError),
    /// The server sent an unparsable setup reply.
    #[error("server {server}: bad setup reply: {why}")]
    BadSetup {
        /// Server index.
        server: ServerId,
        /// What was wrong.
        why: String,
    },
    /// No such server.
    #[error("no server connection {0}")]
    NoServer(ServerId),
    /// The sentinel error never showed up in the first bytes of the server stream.
    #[error("server {0}: synchronisation failed: sentinel error not found in the first {1} bytes")]
    SyncFailed(ServerId, usize),
    /// MIT-SHM conversion asked for, but nobody gave guimux access to the segments.
    #[error("MIT-SHM conversion needs access to the application's memory (none was given)")]
    NoSegmentMemory,
}

/// Who sent a request that went to a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    App,
    Internal,
}

/// A run of requests on one server from one origin with a constant sequence offset:
/// `client_seq = server_seq - delta`.
#[derive(Clone, Copy, Debug)]
struct Segment {
    start: u64,
    origin: Origin,
    delta: i64,
    /// App-view sequence number of the last app request before this segment (used for events
    /// that arrive while internal requests run).
    app_before: u64,
}

/// A request (in translated mode) whose reply needs the request's identity to be translated.
#[derive(Clone, Debug)]
struct Pending {
    seq: u64,
    table: usize,
    opcode: u8,
    aux: ReplyAux,
    /// When Some, this request was substituted because the server cannot serve it; its error
    /// is rewritten to this one.
    substituted: Option<Subst>,
    /// When Some, this request stands for an MIT-SHM request guimux converted (see
    /// [`shmconv`]): its errors name the app's request, its reply is rewritten.
    shm: Option<ShmPending>,
    /// guimux's own request on the app's behalf (refreshing an ShmCreatePixmap pixmap): its
    /// errors are not the app's.
    silent: bool,
}

/// The error an application request gets instead of being served.
#[derive(Clone, Copy, Debug)]
struct Subst {
    code: u8,
    value: u32,
    major: u8,
    minor: u16,
}

/// A server request standing for a converted MIT-SHM request.
#[derive(Clone, Debug)]
struct ShmPending {
    major: u8,
    minor: u8,
    conv: Option<Conv>,
}

/// How guimux serves MIT-SHM on a server that cannot share memory with the application.
#[derive(Clone, Debug)]
pub struct ShmTarget {
    /// The application's MIT-SHM placement: (major opcode, first event, first error).
    pub app_place: (u8, u8, u8),
    /// Image layout the application computes (its original server's setup).
    pub app: ImageFormats,
    /// Image layout of this server.
    pub server: ImageFormats,
    /// Owner (uid, gid) reported by ShmQueryVersion.
    pub owner: (u16, u16),
}

impl ShmTarget {
    /// The conversion context for this server, on a connection of byte order `order`.
    fn ctx(&self, order: ByteOrder) -> shmconv::Ctx<'_> {
        shmconv::Ctx {
            order,
            major: self.app_place.0,
            first_event: self.app_place.1,
            first_error: self.app_place.2,
            app: &self.app,
            server: &self.server,
            owner: self.owner,
        }
    }
}

/// The application's segments and descriptors, for MIT-SHM conversion.
#[derive(Debug)]
struct ShmState {
    mem: Box<dyn SegmentMemory>,
    /// Descriptors the application sent while its primary converts (ShmAttachFd's).
    app_fds: VecDeque<OwnedFd>,
    /// Descriptors for the application (ShmCreateSegment replies).
    fds_to_app: Vec<OwnedFd>,
    /// Descriptors of segments guimux created, until their reply goes out.
    created: HashMap<u32, OwnedFd>,
    /// Pixmaps the app made with ShmCreatePixmap on a server that could not share memory:
    /// they mirror a segment region, uploaded again before each use.
    pixmaps: HashMap<u32, shmconv::PixmapSrc>,
}

/// Role of a server connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Role {
    /// Being set up (regeneration); receives only internal requests; its events are held.
    Pending,
    /// The primary: gets app requests, its replies, errors and events go to the app.
    Primary,
    /// A replica: gets app requests; replies and errors are discarded; input events reach the
    /// app unless view-only.
    Replica {
        /// Drop input events from this server.
        view_only: bool,
    },
}

#[derive(Debug)]
enum Sync {
    /// Framing known from the first byte (premeditated, or a server guimux connected to).
    Synced,
    /// Premeditated: waiting for the setup reply.
    AwaitSetupReply,
    /// Hijacked: scanning for the sentinel error.
    Sentinel {
        id: u32,
        scanned: usize,
        app_sent: u64,
    },
}

/// One server connection.
#[derive(Debug)]
struct Server {
    inbuf: Vec<u8>,
    out: Vec<u8>,
    sent: u64,
    segments: VecDeque<Segment>,
    pending: VecDeque<Pending>,
    maps: Option<Maps>,
    role: Role,
    sync: Sync,
    held: Vec<Vec<u8>>,
    /// App-view seq of the last app request this server is known to have processed.
    app_done: u64,
    /// App-view seq of the last app request sent to this server.
    app_sent: u64,
    /// MIT-SHM requests are converted for this server (it cannot share memory).
    shm: Option<ShmTarget>,
    /// Bytes of whole messages handled from this server's stream (see [`InputMark`]).
    framed: u64,
    /// Highest sequence number seen from this server (widened).
    seen: u64,
    /// A replica's replies and errors to app requests, already in the app's view and
    /// numbering, that the primary may not have delivered yet: `(app seq, message)`. Should
    /// the primary die, the replica is promoted and these answer the requests that were in
    /// flight (see [`Engine::promote`]). Trimmed as the primary delivers its own.
    unanswered: VecDeque<(u64, Vec<u8>)>,
    /// Set on a replica promoted to primary: (app-view seq the dead primary had processed,
    /// app-view seq of the last reply it delivered). Events numbered before the first and
    /// replies up to the second were the dead primary's to deliver.
    promoted_after: Option<(u64, u64)>,
    /// A *lean* replica (a guard, see [`Engine::set_lean`]): drawing into the app's windows
    /// and pure queries reach it as NoOperation.
    lean: bool,
    /// A lean replica's pure queries that reached it as NoOperation, in the app's view, until
    /// the primary has answered them: `(app seq, request)`. Should the primary die first, the
    /// promoted replica asks them then (see [`Engine::promote`]).
    reask: VecDeque<(u64, Vec<u8>)>,
    /// A lean replica's record of the batch of app requests being dispatched (see
    /// `ephemeral.rs`): where each starts in `out`, and what it does.
    batch: Option<Vec<ephemeral::Entry>>,
}

impl Server {
    fn new(role: Role, sync: Sync) -> Self {
        Self {
            inbuf: Vec::new(),
            out: Vec::new(),
            sent: 0,
            segments: VecDeque::new(),
            pending: VecDeque::new(),
            maps: None,
            role,
            sync,
            held: Vec::new(),
            app_done: 0,
            app_sent: 0,
            shm: None,
            framed: 0,
            seen: 0,
            unanswered: VecDeque::new(),
            promoted_after: None,
            lean: false,
            reask: VecDeque::new(),
            batch: None,
        }
    }

    fn is_synced(&self) -> bool {
        matches!(self.sync, Sync::Synced)
    }

    /// Whether the newest sequence segment is the internal client's.
    fn last_segment_internal(&self) -> bool {
        self.segments
            .back()
            .is_some_and(|s| s.origin == Origin::Internal)
    }

    /// Widen a 16-bit sequence number from this server to 64 bits.
    fn widen(&self, seq16: u16) -> u64 {
        let behind = (self.sent as u16).wrapping_sub(seq16) as u64;
        self.sent.saturating_sub(behind)
    }

    /// Segment containing server seq `s`; drops segments wholly before it.
    fn segment_for(&mut self, s: u64) -> Option<Segment> {
        while self.segments.len() > 1 && self.segments[1].start <= s {
            self.segments.pop_front();
        }
        self.segments.front().copied().filter(|seg| seg.start <= s)
    }

    /// Send app request `bytes` (numbered `app_seq` in the app's view), already in this
    /// server's terms, whose table and opcode are `table`, `opcode`: its reply, if it has one,
    /// is expected with `aux`.
    fn send_app_request(
        &mut self,
        app_seq: u64,
        bytes: &[u8],
        table: usize,
        opcode: u8,
        aux: ReplyAux,
    ) {
        self.push_request(Origin::App, app_seq, app_seq - 1);
        if tables::request_has_reply(table, opcode).unwrap_or(false) {
            self.pending.push_back(Pending {
                seq: self.sent,
                table,
                opcode,
                aux,
                substituted: None,
                shm: None,
                silent: false,
            });
        }
        self.out.extend_from_slice(bytes);
    }

    /// Send, for app request `app_seq`, a request that fails, its error rewritten to `subst`
    /// for the app (the app gets an error in order instead of waiting forever).
    fn send_substitute(&mut self, order: ByteOrder, app_seq: u64, subst: Subst) {
        self.push_request(Origin::App, app_seq, app_seq - 1);
        self.pending.push_back(Pending {
            seq: self.sent,
            table: 0,
            opcode: 14,
            aux: ReplyAux::None,
            substituted: Some(subst),
            shm: None,
            silent: false,
        });
        self.out
            .extend_from_slice(&failing_request(order, SUBSTITUTE_ID));
    }

    fn push_request(&mut self, origin: Origin, client_seq: u64, app_before: u64) {
        self.sent += 1;
        if origin == Origin::App {
            self.app_sent = client_seq;
        }
        let delta = self.sent as i64 - client_seq as i64;
        match self.segments.back() {
            Some(seg) if seg.origin == origin && seg.delta == delta => {}
            _ => self.segments.push_back(Segment {
                start: self.sent,
                origin,
                delta,
                app_before,
            }),
        }
    }
}

/// The internal client: guimux's own x11rb connection multiplexed onto one server.
#[derive(Debug)]
struct Internal {
    server: ServerId,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    seq: u64,
    /// Server sequence number of its last request.
    last_sent: u64,
}

/// Counters for status reports and benchmarks.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// Requests framed from the app.
    pub app_requests: u64,
    /// Requests from the app delivered to the primary server.
    pub delivered: u64,
    /// Bytes of app requests currently queued (detached / paused).
    pub queued_bytes: u64,
    /// Requests currently queued.
    pub queued_requests: u64,
    /// Server messages sent to the app.
    pub to_app_messages: u64,
    /// Events dropped by policy (view-only replicas) or because the app cannot know them.
    pub dropped_events: u64,
    /// Requests replaced by a failing request because the server lacks their extension.
    pub substituted: u64,
    /// Messages the tables could not translate (passed unchanged, logged).
    pub untranslated: u64,
    /// MIT-SHM requests converted to core requests (the primary cannot share memory).
    #[serde(default)]
    pub shm_converted: u64,
    /// Bytes received from the app.
    pub bytes_from_app: u64,
    /// Bytes received from all servers.
    pub bytes_from_servers: u64,
    /// Requests a lean guard got as NoOperation because they only served a pixmap made and
    /// freed within one batch (see `engine/ephemeral.rs`).
    #[serde(default)]
    pub elided: u64,
}

/// Snapshot of the engine's state for `guievict status`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Status {
    /// Whether app requests are being held.
    pub paused: bool,
    /// Number of server connections and their roles.
    pub servers: Vec<(ServerId, Role)>,
    /// Whether the engine has synchronised with the live stream.
    pub synced: bool,
    /// Counters.
    pub stats: Stats,
}

/// The engine. See the module documentation.
#[derive(Debug)]
pub struct Engine {
    order: ByteOrder,
    app_in: Vec<u8>,
    app_out: Vec<u8>,
    /// Handshake phase of a premeditated connection: the setup request is still to come.
    app_setup_pending: bool,
    /// Offset added to the app's request count once a hijacked stream is synchronised.
    app_seq: u64,
    app_stream_offset: u64,
    servers: Vec<Option<Server>>,
    primary: Option<ServerId>,
    internal: Option<Internal>,
    paused: bool,
    /// Held for an operation on several processes at once (see [`Engine::group_hold`]): app
    /// requests queue as while paused, until [`Engine::group_release`] with the same token.
    group_hold: Option<u64>,
    queue: VecDeque<(u64, Vec<u8>)>,
    stats: Stats,
    /// Raw setup reply of the primary (premeditated mode), for the app's view.
    setup_reply: Option<Vec<u8>>,
    log: Vec<String>,
    /// App-view seq of the last request the previous primary processed (kept across detach).
    detached_app_done: u64,
    /// MIT-SHM conversion support (see [`Engine::set_segment_memory`]).
    shm: Option<ShmState>,
    /// Image layout of the app's original server (how it lays out MIT-SHM images).
    app_formats: Option<ImageFormats>,
    /// App-view seq of the last reply or error the app received (a primary's).
    last_reply: u64,
    /// The app's windows and the pictures on them (app-view IDs), as far as lean replicas need
    /// to know them: those of the session they were made from, and every CreateWindow and
    /// CreatePicture since (see [`Engine::set_lean`]).
    lean_view: promote::LeanView,
    /// After a promotion that had to ask the new primary again (see [`Engine::promote`]):
    /// messages for the app wait here until those answers are in, then go in order.
    reorder: Option<promote::Reorder>,
    /// Log a line per message (debugging aid: `GUIEVICT_TRACE=1`).
    pub trace: bool,
}

/// A failing request used as a sentinel and as a substitute: GetGeometry on an ID no client
/// can own (client index bits all ones).
fn failing_request(order: ByteOrder, id: u32) -> Vec<u8> {
    let mut r = vec![14u8, 0, 0, 0, 0, 0, 0, 0];
    order.put_u16(&mut r, 2, 2);
    order.put_u32(&mut r, 4, id);
    r
}

/// The ID used by substitute requests.
const SUBSTITUTE_ID: u32 = 0x1fff_fff0;

impl Engine {
    /// An engine that sees the connection from its first byte (`guievict run`): server 0 is
    /// the primary, to which the setup request will be forwarded.
    pub fn premeditated() -> Self {
        let mut e = Self::empty(ByteOrder::Little);
        e.app_setup_pending = true;
        e.servers
            .push(Some(Server::new(Role::Primary, Sync::AwaitSetupReply)));
        e.primary = Some(0);
        e
    }

    /// An engine interposed on a live connection at a request boundary (the hijack's safe
    /// point). It immediately queues a sentinel request to server 0 (a GetGeometry on
    /// `sentinel_id`, an ID no client owns) and forwards server bytes untouched until the
    /// sentinel's error, from which it knows message boundaries and sequence numbers.
    pub fn hijacked(order: ByteOrder, sentinel_id: u32) -> Self {
        let mut e = Self::empty(order);
        let mut s = Server::new(
            Role::Primary,
            Sync::Sentinel {
                id: sentinel_id,
                scanned: 0,
                app_sent: 0,
            },
        );
        s.out = failing_request(order, sentinel_id);
        e.servers.push(Some(s));
        e.primary = Some(0);
        e
    }

    fn empty(order: ByteOrder) -> Self {
        Self {
            order,
            app_in: Vec::new(),
            app_out: Vec::new(),
            app_setup_pending: false,
            app_seq: 0,
            app_stream_offset: 0,
            servers: Vec::new(),
            primary: None,
            internal: None,
            paused: false,
            group_hold: None,
            queue: VecDeque::new(),
            stats: Stats::default(),
            setup_reply: None,
            log: Vec::new(),
            detached_app_done: 0,
            shm: None,
            app_formats: None,
            last_reply: 0,
            lean_view: promote::LeanView::default(),
            reorder: None,
            trace: false,
        }
    }

    /// Byte order of the app's connection.
    pub fn order(&self) -> ByteOrder {
        self.order
    }

    /// Whether server 0's stream has been synchronised (always true once setup is done).
    pub fn synced(&self) -> bool {
        self.servers
            .iter()
            .flatten()
            .all(|s| matches!(s.sync, Sync::Synced))
    }

    /// Log lines produced since the last call (warnings about untranslatable messages etc.).
    pub fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }

    /// The raw setup reply the app received (premeditated mode only).
    pub fn setup_reply(&self) -> Option<&[u8]> {
        self.setup_reply.as_deref()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.queued_requests = self.queue.len() as u64;
        s.queued_bytes = self.queue.iter().map(|(_, r)| r.len() as u64).sum();
        s
    }

    /// Status snapshot.
    pub fn status(&self) -> Status {
        Status {
            paused: self.paused || self.group_hold.is_some(),
            servers: self
                .servers
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.as_ref().map(|s| (i, s.role)))
                .collect(),
            synced: self.synced(),
            stats: self.stats(),
        }
    }

    /// Bytes waiting to be written to the app. The caller drains what it wrote.
    pub fn app_output(&mut self) -> &mut Vec<u8> {
        &mut self.app_out
    }

    /// Bytes waiting to be written to server `s`.
    pub fn server_output(&mut self, s: ServerId) -> Option<&mut Vec<u8>> {
        self.servers.get_mut(s)?.as_mut().map(|s| &mut s.out)
    }

    /// Bytes waiting to be written to the internal client.
    pub fn internal_output(&mut self) -> Option<&mut Vec<u8>> {
        self.internal.as_mut().map(|i| &mut i.out)
    }

    /// Server connections that exist.
    pub fn server_ids(&self) -> Vec<ServerId> {
        self.servers
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|_| i))
            .collect()
    }

    /// The primary server, if attached.
    pub fn primary(&self) -> Option<ServerId> {
        self.primary
    }

    /// Whether app requests are being held.
    pub fn is_paused(&self) -> bool {
        self.paused || self.group_hold.is_some()
    }

    /// Bytes of app requests held in the queue.
    pub fn queued_bytes(&self) -> usize {
        self.queue.iter().map(|(_, r)| r.len()).sum()
    }

    // ---------------------------------------------------------------- detach / attach

    /// Hold app requests (queue them) from now on.
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Forward app requests again (replaying the queue) if a primary exists and no group hold
    /// is in force.
    pub fn resume(&mut self) {
        self.paused = false;
        if self.primary.is_some() && self.group_hold.is_none() {
            while let Some((seq, req)) = self.queue.pop_front() {
                self.dispatch_app_request(seq, &req);
            }
        }
    }

    /// Hold the app's requests for an operation on several processes of one application (a
    /// browser and its GPU process moved together): they queue, whatever `pause`/`resume` the
    /// operation on this process does, until [`Engine::group_release`]. Without it, one
    /// process would go on drawing into another's windows while those are being moved (on the
    /// old server after they were destroyed there, or on the new one before their IDs are
    /// known), and the X errors would lose its frames. `token` names this hold.
    pub fn group_hold(&mut self, token: u64) {
        self.group_hold = Some(token);
    }

    /// End the group hold named `token` (any hold when `None`) and forward the queued requests
    /// if the engine is otherwise running. Returns whether a hold ended.
    pub fn group_release(&mut self, token: Option<u64>) -> bool {
        match (self.group_hold, token) {
            (Some(h), Some(t)) if h != t => false,
            (None, _) => false,
            _ => {
                self.group_hold = None;
                if !self.paused {
                    self.resume();
                }
                true
            }
        }
    }

    /// Drop server `s` (detach, or a replica that died). Unsent bytes to it are discarded; if
    /// it was the primary, app requests queue until another server is activated.
    pub fn remove_server(&mut self, s: ServerId) {
        if self.primary == Some(s) {
            if let Some(srv) = self.servers.get(s).and_then(|x| x.as_ref()) {
                self.detached_app_done = srv.app_done.max(srv.app_sent);
            }
        }
        if let Some(slot) = self.servers.get_mut(s) {
            *slot = None;
        }
        if self.primary == Some(s) {
            self.primary = None;
        }
        if self.internal.as_ref().is_some_and(|i| i.server == s) {
            self.internal = None;
        }
    }

    /// Add a server connection whose setup guimux has already completed. It starts as
    /// `Role::Pending`: only the internal client talks to it until [`Engine::activate`].
    pub fn add_server(&mut self) -> ServerId {
        let mut srv = Server::new(Role::Pending, Sync::Synced);
        srv.segments.clear();
        self.servers.push(Some(srv));
        self.servers.len() - 1
    }

    /// Make server `s` the primary or a replica, with the maps that translate the app's view
    /// to it (`None` = identity). Held events are delivered. Queued app requests replay when
    /// the caller resumes (see [`Engine::resume`]).
    pub fn activate(
        &mut self,
        s: ServerId,
        role: Role,
        maps: Option<Maps>,
    ) -> Result<(), EngineError> {
        let order = self.order;
        let app_done = self.app_done_global();
        let srv = self
            .servers
            .get_mut(s)
            .and_then(|x| x.as_mut())
            .ok_or(EngineError::NoServer(s))?;
        srv.maps = maps;
        srv.role = role;
        // Pixmaps mirroring a segment are plain pixmaps on a server that converts MIT-SHM too:
        // refresh them before use. A server that shares memory got them made with
        // ShmCreatePixmap again (winsession regenerates shared pixmaps shared).
        if let (Some(st), Some(m), true) = (self.shm.as_ref(), srv.maps.as_mut(), srv.shm.is_some())
        {
            for pid in st.pixmaps.keys() {
                m.xids.watch(*pid);
            }
        }
        if role == Role::Primary {
            srv.app_done = app_done.max(srv.app_done);
            // Internal requests sent while the server was pending (a move's target connected
            // before the source was let go) numbered their events as the primary of the
            // time had seen done — possibly less than what the app had sent it and got
            // processed (`app_done_global` counts the primary's answers only). The held events
            // go out numbered `app_done` below; an event of such a segment arriving later
            // must not go back behind them (Xlib aborts: "Unknown sequence number").
            let done = srv.app_done;
            for seg in srv.segments.iter_mut() {
                if seg.origin == Origin::Internal {
                    seg.app_before = seg.app_before.max(done);
                }
            }
        }
        let held = std::mem::take(&mut srv.held);
        if role == Role::Primary {
            if let Some(old) = self.primary.filter(|p| *p != s) {
                if let Some(o) = self.servers.get_mut(old).and_then(|x| x.as_mut()) {
                    o.role = Role::Replica { view_only: false };
                }
            }
            self.primary = Some(s);
            let srv = self.servers[s].as_mut().ok_or(EngineError::NoServer(s))?;
            let seq = srv.app_done;
            for mut ev in held {
                if server_side::is_regeneration_echo(ev[0]) {
                    self.stats.dropped_events += 1;
                    continue;
                }
                let keep = match srv.maps.as_mut() {
                    Some(m) => translate::event_to_app(&mut ev, order, m).unwrap_or(true),
                    None => true,
                };
                if keep {
                    if ev[0] & 0x7f != 11 {
                        order.put_u16(&mut ev, 2, seq as u16);
                    }
                    if self.trace {
                        self.log
                            .push(format!("debug: held event {} to app, seq {seq}", ev[0]));
                    }
                    self.app_out.extend_from_slice(&ev);
                }
            }
        }
        Ok(())
    }

    /// The maps of server `s` (None: identity, or no such server).
    pub fn maps_of(&self, s: ServerId) -> Option<&Maps> {
        self.servers.get(s)?.as_ref()?.maps.as_ref()
    }

    /// Deliver an event of guievict's own to the app (e.g. a MappingNotify after a move to a
    /// server with another keymap), numbered as the last request the app knows processed.
    pub fn inject_event(&mut self, mut ev: [u8; 32]) {
        if ev[0] & 0x7f != 11 {
            let seq = self.app_done_global();
            self.order.put_u16(&mut ev, 2, seq as u16);
        }
        self.app_out.extend_from_slice(&ev);
    }

    /// Teach server `s`'s translation the IDs of resources that belong to the app's *other* X
    /// connections (another connection of this process, or another process of the same
    /// application moved with it): `(app-view ID, ID on this server)`. An app that draws with
    /// one connection into a window of another (a browser's GPU process into the browser's
    /// windows, a video player's GL connection into its toolkit's window) would otherwise
    /// send the old server's ID. Pairs whose either side this map already knows, or that fall
    /// in this connection's own range, are left alone. Returns how many were added.
    pub fn add_foreign_xids(&mut self, s: ServerId, pairs: &[(u32, u32)]) -> usize {
        let Some(m) = self
            .servers
            .get_mut(s)
            .and_then(|x| x.as_mut())
            .and_then(|srv| srv.maps.as_mut())
        else {
            return 0;
        };
        let mut n = 0;
        for &(app, server) in pairs {
            if app <= 1
                || m.xids.is_app_own(app)
                || m.xids.is_server_own(server)
                || m.xids.lookup(app).is_some()
                || m.xids.pairs().any(|(_, sv)| sv == server)
            {
                continue;
            }
            m.xids.insert(app, server);
            n += 1;
        }
        n
    }

    /// Change the role of a replica (e.g. its input policy).
    pub fn set_role(&mut self, s: ServerId, role: Role) -> Result<(), EngineError> {
        let srv = self
            .servers
            .get_mut(s)
            .and_then(|x| x.as_mut())
            .ok_or(EngineError::NoServer(s))?;
        srv.role = role;
        Ok(())
    }

    /// The app-view sequence number of the last request the app sent.
    pub fn app_seq(&self) -> u64 {
        self.app_seq
    }
}

mod app_side;
mod ephemeral;
mod internal;
mod promote;
mod salvage;
mod server_side;
mod shm_setup;

#[cfg(test)]
mod tests;
