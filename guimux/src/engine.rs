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
    /// reaches it as NoOperation.
    lean: bool,
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
    /// The app's windows (app-view IDs) as far as lean replicas need to know them: those of
    /// the session they were made from, and every CreateWindow since (see
    /// [`Engine::set_lean`]).
    app_windows: HashSet<u32>,
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
            app_windows: HashSet::new(),
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

    // ---------------------------------------------------------------- app side

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
        let result = self.app_requests(&input, &mut pos);
        self.app_in = input;
        self.app_in.drain(..pos);
        result
    }

    fn app_requests(&mut self, input: &[u8], pos: &mut usize) -> Result<(), EngineError> {
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
    fn shm_major(&self) -> Option<u8> {
        self.servers
            .iter()
            .flatten()
            .find_map(|s| s.shm.as_ref().map(|t| t.app_place.0))
    }

    /// Apply the segment-table effect of an app MIT-SHM request once (not per server).
    fn shm_effect(&mut self, req: &[u8], before: bool) {
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
    fn dispatch_app_request(&mut self, app_seq: u64, req: &[u8]) {
        let order = self.order;
        let shm_req = req[0] >= 128 && self.shm_major() == Some(req[0]);
        if shm_req {
            self.shm_effect(req, true);
        }
        self.track_windows(req);
        let window_drawing = promote::is_window_drawing(req, order, &self.app_windows);
        for sid in 0..self.servers.len() {
            let Some(srv) = self.servers[sid]
                .as_mut()
                .filter(|s| matches!(s.role, Role::Primary | Role::Replica { .. }))
            else {
                continue;
            };
            if let Sync::Sentinel { app_sent, .. } = &mut srv.sync {
                *app_sent += 1;
                srv.out.extend_from_slice(req);
                continue;
            }
            let app_before = app_seq - 1;
            if srv.lean && window_drawing {
                // Pixels of a window are not state: an attach exposes and the app repaints.
                // NoOperation keeps the numbering.
                srv.push_request(Origin::App, app_seq, app_before);
                let mut noop = [127u8, 0, 0, 0];
                order.put_u16(&mut noop, 2, 1);
                srv.out.extend_from_slice(&noop);
                continue;
            }
            if let (true, Some(t), Some(maps), Some(st)) = (
                shm_req,
                srv.shm.as_ref(),
                srv.maps.as_mut(),
                self.shm.as_ref(),
            ) {
                let ctx = shmconv::Ctx {
                    order,
                    major: t.app_place.0,
                    first_event: t.app_place.1,
                    first_error: t.app_place.2,
                    app: &t.app,
                    server: &t.server,
                    owner: t.owner,
                };
                let scratch = maps.xids.server_base | maps.xids.server_mask;
                let outs = shmconv::convert(
                    &ctx,
                    req,
                    st.mem.as_ref(),
                    &mut |id| maps.xids.to_server(id),
                    scratch,
                );
                for o in outs {
                    srv.push_request(Origin::App, app_seq, app_before);
                    match o {
                        shmconv::Out::Request { bytes, conv } => {
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
                        shmconv::Out::Error { code, value } => {
                            srv.pending.push_back(Pending {
                                seq: srv.sent,
                                table: 0,
                                opcode: 14,
                                aux: ReplyAux::None,
                                substituted: Some(Subst {
                                    code,
                                    value,
                                    major: req[0],
                                    minor: u16::from(req[1]),
                                }),
                                shm: None,
                                silent: false,
                            });
                            srv.out
                                .extend_from_slice(&failing_request(order, SUBSTITUTE_ID));
                        }
                    }
                }
                if srv.role == Role::Primary {
                    self.stats.delivered += 1;
                    self.stats.shm_converted += 1;
                }
                continue;
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
                        srv.push_request(Origin::App, app_seq, app_before);
                        if tables::request_has_reply(t.table, t.opcode).unwrap_or(false) {
                            srv.pending.push_back(Pending {
                                seq: srv.sent,
                                table: t.table,
                                opcode: t.opcode,
                                aux: t.aux,
                                substituted: None,
                                shm: None,
                                silent: false,
                            });
                        }
                        if self.trace {
                            let n = bytes.len().min(24);
                            self.log
                                .push(format!("debug:   -> server {sid}: {:02x?}", &bytes[..n]));
                        }
                        srv.out.extend_from_slice(&bytes);
                    }
                    Err(e) => {
                        // The server cannot serve it: substitute a request that fails, so the
                        // app gets an error in order instead of waiting forever.
                        self.stats.substituted += 1;
                        self.log.push(format!(
                            "request major {major} minor {minor} cannot go to server {sid}: {e}; the app receives BadImplementation"
                        ));
                        srv.push_request(Origin::App, app_seq, app_before);
                        srv.pending.push_back(Pending {
                            seq: srv.sent,
                            table: 0,
                            opcode: 14,
                            aux: ReplyAux::None,
                            substituted: Some(Subst {
                                code: 17, // BadImplementation
                                value: 0,
                                major,
                                minor: u16::from(minor),
                            }),
                            shm: None,
                            silent: false,
                        });
                        srv.out
                            .extend_from_slice(&failing_request(order, SUBSTITUTE_ID));
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
    fn track_shm_pixmap(&mut self, req: &[u8]) {
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

    // ---------------------------------------------------------------- internal client

    /// Start multiplexing an internal client onto server `s`. Its requests are numbered from 1
    /// (as a fresh x11rb connection created with `for_connected_stream` expects).
    pub fn start_internal(&mut self, s: ServerId) -> Result<(), EngineError> {
        if self.servers.get(s).and_then(|x| x.as_ref()).is_none() {
            return Err(EngineError::NoServer(s));
        }
        self.internal = Some(Internal {
            server: s,
            inbuf: Vec::new(),
            out: Vec::new(),
            seq: 0,
            last_sent: 0,
        });
        Ok(())
    }

    /// Whether the internal client has requests its server has not yet processed (no message
    /// numbered at or after its last request has come back).
    pub fn internal_outstanding(&self) -> bool {
        let Some(int) = self.internal.as_ref() else {
            return false;
        };
        self.servers
            .get(int.server)
            .and_then(|x| x.as_ref())
            .is_some_and(|srv| int.last_sent > srv.seen)
    }

    /// Stop the internal client (its unfinished request bytes are discarded).
    pub fn stop_internal(&mut self) {
        self.internal = None;
    }

    /// Feed bytes from the internal client.
    pub fn internal_input(&mut self, data: &[u8]) -> Result<(), EngineError> {
        let Some(server) = self.internal.as_ref().map(|i| i.server) else {
            return Ok(());
        };
        let app_before = self.app_seq_done_on(server);
        let mut pos = 0;
        let order = self.order;
        let Some(int) = self.internal.as_mut() else {
            return Ok(());
        };
        int.inbuf.extend_from_slice(data);
        let Some(srv) = self.servers.get_mut(int.server).and_then(|s| s.as_mut()) else {
            return Err(EngineError::NoServer(int.server));
        };
        while let Some((len, _)) = framing::request_len(&int.inbuf[pos..], order, 0)
            .map_err(EngineError::InternalFraming)?
        {
            int.seq += 1;
            srv.push_request(Origin::Internal, int.seq, app_before);
            int.last_sent = srv.sent;
            srv.out.extend_from_slice(&int.inbuf[pos..pos + len]);
            pos += len;
        }
        int.inbuf.drain(..pos);
        Ok(())
    }

    /// App-view seq to report in events caused while internal requests run on `s`: every app
    /// request sent before them is processed by then.
    fn app_seq_done_on(&self, s: ServerId) -> u64 {
        self.servers
            .get(s)
            .and_then(|x| x.as_ref())
            .map(|x| x.app_done.max(x.app_sent))
            .unwrap_or(0)
            .max(self.app_done_global())
    }

    fn app_done_global(&self) -> u64 {
        self.primary
            .and_then(|p| self.servers.get(p))
            .and_then(|x| x.as_ref())
            .map(|x| x.app_done)
            .unwrap_or(self.detached_app_done)
    }

    // ---------------------------------------------------------------- server side

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
    fn server_sync_phase(&mut self, s: ServerId) -> Result<(), EngineError> {
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
    fn server_message(&mut self, s: ServerId, msg: &mut [u8]) {
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
                app_view_seq
            } else {
                global_done
            }
        } else {
            client_seq
        };
        if kind == 1 {
            if let (Some(sp), Some(t), Some(st)) = (
                pending.as_ref().and_then(|p| p.shm.as_ref()),
                srv.shm.as_ref(),
                self.shm.as_mut(),
            ) {
                let Some(conv) = sp.conv.as_ref() else {
                    return; // no reply expected: nothing for the app
                };
                let ctx = shmconv::Ctx {
                    order,
                    major: t.app_place.0,
                    first_event: t.app_place.1,
                    first_error: t.app_place.2,
                    app: &t.app,
                    server: &t.server,
                    owner: t.owner,
                };
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
                self.stats.to_app_messages += 1;
                self.app_out.extend_from_slice(&out);
                return;
            }
        }
        if let Some(maps) = srv.maps.as_mut() {
            let ok = match kind {
                0 => {
                    if let Some(x) = pending.as_ref().and_then(|p| p.substituted) {
                        msg[1] = x.code;
                        order.put_u32(msg, 4, x.value);
                        order.put_u16(msg, 8, x.minor);
                        msg[10] = x.major;
                    } else if let Some(sp) = pending.as_ref().and_then(|p| p.shm.as_ref()) {
                        // An error of a request standing for the app's MIT-SHM request.
                        translate::error_to_app(msg, order, maps);
                        order.put_u16(msg, 8, u16::from(sp.minor));
                        msg[10] = sp.major;
                    } else {
                        translate::error_to_app(msg, order, maps);
                        self.log.push(format!(
                            "debug: X error {} (value {:#x}) for request {}.{} reaches the app",
                            msg[1],
                            order.u32(msg, 4),
                            msg[10],
                            order.u16(msg, 8)
                        ));
                    }
                    true
                }
                1 => match &pending {
                    Some(p) => {
                        match translate::reply_to_app(msg, order, maps, p.table, p.opcode, &p.aux) {
                            Ok(()) => true,
                            Err(e) => {
                                self.stats.untranslated += 1;
                                self.log.push(format!(
                                    "reply to request {}:{} passed untranslated: {e}",
                                    p.table, p.opcode
                                ));
                                true
                            }
                        }
                    }
                    None => {
                        self.stats.untranslated += 1;
                        self.log
                            .push(format!("reply with sequence {full} matches no request"));
                        true
                    }
                },
                _ => match translate::event_to_app(msg, order, maps) {
                    Ok(keep) => {
                        if !keep {
                            self.stats.dropped_events += 1;
                        }
                        keep
                    }
                    Err(e) => {
                        self.stats.untranslated += 1;
                        self.log
                            .push(format!("event {} passed untranslated: {e}", msg[0]));
                        true
                    }
                },
            };
            if !ok {
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
            self.last_reply = client_seq;
        }
        if self.trace {
            self.log.push(format!(
                "debug: to app from server {s}: kind {kind} seq {app_seq} (client {client_seq})"
            ));
        }
        self.stats.to_app_messages += 1;
        self.app_out.extend_from_slice(msg);
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
                if is_regeneration_echo(ev[0]) {
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

    // ---------------------------------------------------------------- MIT-SHM conversion

    /// Give guimux access to the memory behind the app's MIT-SHM segments (the hosting
    /// process's; see [`shmconv`]). Needed before any server converts MIT-SHM.
    pub fn set_segment_memory(&mut self, mem: Box<dyn SegmentMemory>) {
        self.shm = Some(ShmState {
            mem,
            app_fds: VecDeque::new(),
            fds_to_app: Vec::new(),
            created: HashMap::new(),
            pixmaps: HashMap::new(),
        });
    }

    /// Pixmaps the app made with ShmCreatePixmap that a converting server holds as plain
    /// pixmaps mirroring their segment (app IDs), e.g. to make them shared again on a server
    /// that shares memory.
    pub fn converted_shm_pixmaps(&self) -> Vec<(u32, shmconv::PixmapSrc)> {
        let mut v: Vec<_> = self
            .shm
            .as_ref()
            .map(|s| s.pixmaps.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default();
        v.sort_by_key(|x| x.0);
        v
    }

    /// The segment memory, e.g. to register segments captured before a move.
    pub fn segment_memory(&mut self) -> Option<&mut (dyn SegmentMemory + 'static)> {
        self.shm.as_mut().map(|s| s.mem.as_mut())
    }

    /// Convert the app's MIT-SHM requests to core requests for server `s` (`Some`), or send
    /// them as they are (`None`). Fails without segment memory.
    pub fn set_shm_conversion(
        &mut self,
        s: ServerId,
        target: Option<ShmTarget>,
    ) -> Result<(), EngineError> {
        if target.is_some() && self.shm.is_none() {
            return Err(EngineError::NoSegmentMemory);
        }
        let srv = self
            .servers
            .get_mut(s)
            .and_then(|x| x.as_mut())
            .ok_or(EngineError::NoServer(s))?;
        srv.shm = target;
        Ok(())
    }

    /// Remember the image layout of the app's original server (first capture only).
    pub fn remember_app_image_formats(&mut self, f: ImageFormats) {
        self.app_formats.get_or_insert(f);
    }

    /// The image layout of the app's original server, once known.
    pub fn app_image_formats(&self) -> Option<ImageFormats> {
        self.app_formats.clone()
    }

    /// Whether some server (primary or replica) gets MIT-SHM converted: the app's
    /// descriptors must then reach guimux too (see [`Engine::push_app_fds`]).
    pub fn any_converts_shm(&self) -> bool {
        self.shm_major().is_some()
    }

    /// Descriptors the app sent while some server converts MIT-SHM (guimux's alone when the
    /// primary converts; copies when only a replica does): an ShmAttachFd takes the oldest.
    pub fn push_app_fds(&mut self, fds: Vec<OwnedFd>) {
        if let Some(st) = self.shm.as_mut() {
            st.app_fds.extend(fds);
            // Descriptors no request claimed (an extension guimux does not convert) must not
            // pile up.
            while st.app_fds.len() > 64 {
                st.app_fds.pop_front();
            }
        }
    }

    /// Descriptors to send to the app with the bytes now in [`Engine::app_output`].
    pub fn take_fds_for_app(&mut self) -> Vec<OwnedFd> {
        self.shm
            .as_mut()
            .map(|s| std::mem::take(&mut s.fds_to_app))
            .unwrap_or_default()
    }
}

/// Before an app request that uses pixmaps mirroring a segment (`hits`, app view), upload
/// their current contents to server `srv` (silently: errors are guimux's). FreePixmap ends the
/// mirroring.
fn refresh_pixmaps(
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

/// Core input events that a replica may contribute: KeyPress..MotionNotify.
fn is_input_event(code: u8) -> bool {
    (2..=6).contains(&code)
}

/// Whether an event a server sent while the session was being regenerated on it only echoes
/// what regeneration did (CreateWindow, MapWindow, ChangeProperty, …) about state the app already
/// has: the app's windows were mapped, configured and given their properties long ago, and
/// telling it again breaks toolkits that count such events (GTK3 thaws toplevel updates on each
/// MapNotify: `gdk_window_thaw_toplevel_updates` assertion after every attach). Expose,
/// visibility, focus and input events are the new server's news and pass; so does anything
/// another client sent (SendEvent, bit 7).
fn is_regeneration_echo(code: u8) -> bool {
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

mod promote;
mod salvage;

#[cfg(test)]
mod tests;
