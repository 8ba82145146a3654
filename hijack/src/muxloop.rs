//! The guimux I/O loop for one application X connection. Bytes (and `SCM_RIGHTS` descriptors)
//! flow between the application's socket, any number of X server sockets and guimux's internal
//! client socket; a [`guimux::Engine`] decides what goes where. Commands from the control
//! thread (pause, add a server, start the internal client, activate with maps, …) arrive over a
//! channel with an eventfd wake-up and are applied between polls, so the engine is only ever
//! touched by this thread.
//!
//! A panic while the engine handles a message or a command is contained here: it is logged,
//! and if the connection is still on its original server with identity maps the engine is
//! replaced by a [`guimux::salvage::PassThrough`] (bytes unchanged, sequence numbers shifted),
//! otherwise the engine goes on with the failed call's unconsumed bytes put back. After
//! [`MAX_PANICS`] the loop stops relaying but keeps the application's socket open, so the
//! process lives on. Either way the connection is *degraded* ([`MuxHandle::degraded`], shown by
//! `guievict status`) and refuses detach/attach/move.

use crate::ffi::{self, FcntlInt};
use guimux::salvage::{FailedCall, PassThrough, Side};
use guimux::{Engine, Maps, Role, ServerId};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, SockaddrStorage};
use std::collections::HashMap;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Outgoing bytes for one peer above which the opposite side stops being read (back-pressure).
pub const BOUND: usize = 16 << 20;
/// Queued app bytes (detached) above which the app stops being read: it then blocks in its own
/// write, nothing is dropped.
pub const QUEUE_BOUND: usize = 64 << 20;
const CHUNK: usize = 256 * 1024;
/// Panics after which a loop that could not fall back to pass-through stops relaying.
pub const MAX_PANICS: u32 = 8;
/// Longest wait for the loop to answer a command (it never blocks, so this only guards against
/// a loop that is gone or wedged).
pub const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Longest time the internal client's server may leave it without an answer while it has
/// requests outstanding; then its socket is closed and the operation fails (see
/// [`MuxHandle::internal_timed_out`]).
pub const INTERNAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

type EngineFn = Box<dyn FnOnce(&mut Engine) + Send>;

/// A command for the loop.
enum Cmd {
    /// Run a closure on the engine.
    Engine(EngineFn),
    /// A new server connection (setup already done): returns its id.
    AddServer(OwnedFd, Sender<ServerId>),
    /// Close and forget a server connection.
    RemoveServer(ServerId, Sender<()>),
    /// Start the internal client on a server, talking over `fd`.
    StartInternal(ServerId, OwnedFd, Sender<Result<(), String>>),
    /// Stop the internal client.
    StopInternal(Sender<()>),
    /// Test hook: panic while handling the next message (see `control::Request::TestFault`).
    PanicNext,
}

/// Why the loop ended.
#[derive(Clone, Debug)]
pub enum Ended {
    /// The application closed its connection.
    AppClosed,
    /// The primary server closed the connection.
    ServerClosed(ServerId),
    /// An unrecoverable engine or I/O error.
    Error(String),
}

/// Handle to a running loop; cloneable, usable from any thread.
#[derive(Clone)]
pub struct MuxHandle {
    tx: Sender<Cmd>,
    wake: Arc<EventFd>,
    done: Arc<std::sync::Mutex<Option<Ended>>>,
    shared: Arc<Shared>,
}

/// State the loop publishes for other threads.
#[derive(Debug, Default)]
struct Shared {
    /// Set once a panic was contained: what happened and how the connection goes on.
    degraded: std::sync::Mutex<Option<String>>,
    /// Set when the internal client was cut off because its server did not answer.
    internal_timeout: std::sync::Mutex<Option<String>>,
    /// Replicas promoted because the primary's server died: (dead primary, new primary), not
    /// yet taken by the controller (see [`MuxHandle::take_promotions`]).
    promotions: std::sync::Mutex<Vec<(ServerId, ServerId)>>,
    /// Extension placements learned on a server connection (at its attach or a capture from
    /// it), so that a later capture from it asks none (one round trip less on a link).
    extensions: std::sync::Mutex<HashMap<ServerId, crate::viewconn::KnownExtensions>>,
}

impl std::fmt::Debug for MuxHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MuxHandle").finish_non_exhaustive()
    }
}

/// The loop has ended; commands cannot be served.
#[derive(Clone, Debug, thiserror::Error)]
#[error("the connection's relay has ended: {0:?}")]
pub struct LoopGone(pub Option<Ended>);

impl MuxHandle {
    fn send(&self, c: Cmd) -> Result<(), LoopGone> {
        self.tx.send(c).map_err(|_| self.gone())?;
        self.wake.write(1).map_err(|_| self.gone())?;
        Ok(())
    }

    fn gone(&self) -> LoopGone {
        if let Some(d) = self.degraded() {
            return LoopGone(Some(Ended::Error(format!("degraded: {d}"))));
        }
        LoopGone(self.done.lock().ok().and_then(|d| d.clone()))
    }

    fn recv<T>(&self, rrx: &Receiver<T>) -> Result<T, LoopGone> {
        rrx.recv_timeout(COMMAND_TIMEOUT).map_err(|e| match e {
            std::sync::mpsc::RecvTimeoutError::Timeout => LoopGone(Some(Ended::Error(format!(
                "the relay did not answer within {} s",
                COMMAND_TIMEOUT.as_secs()
            )))),
            std::sync::mpsc::RecvTimeoutError::Disconnected => self.gone(),
        })
    }

    /// Like [`MuxHandle::with_engine`] with a shorter limit (status must answer quickly).
    pub fn with_engine_within<T: Send + 'static>(
        &self,
        limit: std::time::Duration,
        f: impl FnOnce(&mut Engine) -> T + Send + 'static,
    ) -> Option<T> {
        let (rtx, rrx) = channel();
        self.send(Cmd::Engine(Box::new(move |e| {
            let _ = rtx.send(f(e));
        })))
        .ok()?;
        rrx.recv_timeout(limit).ok()
    }

    /// Why this connection is degraded (a contained panic), if it is.
    pub fn degraded(&self) -> Option<String> {
        lock(&self.shared.degraded).clone()
    }

    /// Why the internal client was last cut off (its server did not answer), if it was; reading
    /// clears it.
    pub fn internal_timed_out(&self) -> Option<String> {
        lock(&self.shared.internal_timeout).take()
    }

    /// Replicas this loop made the primary since the last call, because the primary's X server
    /// died: `(dead primary, new primary)` (reading clears them).
    pub fn take_promotions(&self) -> Vec<(ServerId, ServerId)> {
        std::mem::take(&mut *lock(&self.shared.promotions))
    }

    /// Test hook: make the loop panic while handling its next message.
    pub fn panic_next(&self) -> Result<(), LoopGone> {
        self.send(Cmd::PanicNext)
    }

    /// Run `f` on the engine inside the loop and return its result.
    pub fn with_engine<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Engine) -> T + Send + 'static,
    ) -> Result<T, LoopGone> {
        let (rtx, rrx) = channel();
        self.send(Cmd::Engine(Box::new(move |e| {
            let _ = rtx.send(f(e));
        })))?;
        self.recv(&rrx)
    }

    /// Hand the loop a new server connection (setup completed); returns its id (role Pending).
    pub fn add_server(&self, fd: OwnedFd) -> Result<ServerId, LoopGone> {
        let (rtx, rrx) = channel();
        self.send(Cmd::AddServer(fd, rtx))?;
        self.recv(&rrx)
    }

    /// Remember the extension placements of server `s` (see [`MuxHandle::known_extensions`]).
    pub fn remember_extensions(&self, s: ServerId, known: crate::viewconn::KnownExtensions) {
        lock(&self.shared.extensions).insert(s, known);
    }

    /// The extension placements of server `s` learned by an earlier internal client, if any
    /// (placements do not change while the connection lives).
    pub fn known_extensions(&self, s: ServerId) -> Option<crate::viewconn::KnownExtensions> {
        lock(&self.shared.extensions).get(&s).cloned()
    }

    /// Close a server connection.
    pub fn remove_server(&self, s: ServerId) -> Result<(), LoopGone> {
        lock(&self.shared.extensions).remove(&s);
        let (rtx, rrx) = channel();
        self.send(Cmd::RemoveServer(s, rtx))?;
        self.recv(&rrx)
    }

    /// Start the internal client on server `s`; returns the socket to speak X on (numbered
    /// from request 1, no setup handshake).
    pub fn start_internal(&self, s: ServerId) -> Result<std::os::unix::net::UnixStream, LoopGone> {
        let (mine, theirs) = std::os::unix::net::UnixStream::pair()
            .map_err(|e| LoopGone(Some(Ended::Error(format!("socketpair: {e}")))))?;
        let (rtx, rrx) = channel();
        self.send(Cmd::StartInternal(s, theirs.into(), rtx))?;
        self.recv(&rrx)?
            .map_err(|e| LoopGone(Some(Ended::Error(e))))?;
        Ok(mine)
    }

    /// Stop the internal client.
    pub fn stop_internal(&self) -> Result<(), LoopGone> {
        let (rtx, rrx) = channel();
        self.send(Cmd::StopInternal(rtx))?;
        self.recv(&rrx)
    }

    /// Make `s` the primary (or a replica) with the given maps.
    pub fn activate(&self, s: ServerId, role: Role, maps: Option<Maps>) -> Result<(), String> {
        self.with_engine(move |e| e.activate(s, role, maps).map_err(|e| e.to_string()))
            .map_err(|e| e.to_string())?
    }

    /// Why the loop ended, if it has.
    pub fn ended(&self) -> Option<Ended> {
        self.done.lock().ok().and_then(|d| d.clone())
    }
}

/// Lock a mutex whose data stays meaningful even if a holder panicked (plain values).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The text of a panic payload.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

struct Peer {
    fd: OwnedFd,
    fds_out: Vec<OwnedFd>,
    /// The server's listening address (servers only), to tell a dead server from one that
    /// closed this connection ([`server_alive`]).
    addr: Option<SockaddrStorage>,
}

/// The address a connected socket's peer listens on.
fn peer_addr(fd: &OwnedFd) -> Option<SockaddrStorage> {
    nix::sys::socket::getpeername::<SockaddrStorage>(fd.as_raw_fd()).ok()
}

/// Whether an X server still answers at `addr` (a connection that ended while its server lives
/// was closed by the server: KillClient, xkill). A fresh connection sends a connection setup
/// request and waits up to [`PROBE_TIMEOUT`] for the first byte of any answer (success, failure
/// or authenticate: all mean alive). A listening socket of a server being killed can still
/// accept for a moment (the kernel closes a dying process's descriptors one by one), so
/// acceptance alone proves nothing: EOF or a reset after it means dead. An unknown address
/// counts as alive (the app then ends as it would without guievict); no answer in time counts
/// as dead (the app is kept: losing it would be the worse mistake).
fn server_alive(addr: Option<&SockaddrStorage>) -> bool {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType};
    let Some(addr) = addr else {
        return true;
    };
    let family = if addr.as_unix_addr().is_some() {
        AddressFamily::Unix
    } else if addr.as_sockaddr_in().is_some() {
        AddressFamily::Inet
    } else if addr.as_sockaddr_in6().is_some() {
        AddressFamily::Inet6
    } else {
        return true;
    };
    let Ok(fd) = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    ) else {
        return true;
    };
    let deadline = std::time::Instant::now() + PROBE_TIMEOUT;
    let wait = |events: libc::c_short| -> bool {
        let mut p = [libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        }];
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            match ffi::poll(&mut p, left.as_millis().max(1) as i32) {
                Ok(1) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    };
    match connect(fd.as_raw_fd(), addr) {
        Ok(()) => {}
        Err(nix::errno::Errno::EINPROGRESS) | Err(nix::errno::Errno::EAGAIN) => {
            if !wait(libc::POLLOUT)
                || !nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::SocketError)
                    .is_ok_and(|e| e == 0)
            {
                return false;
            }
        }
        Err(_) => return false,
    }
    // Connection setup, little-endian, protocol 11.0, no authorization.
    let setup = [b'l', 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    if nix::unistd::write(&fd, &setup).ok() != Some(setup.len()) {
        return false;
    }
    let mut first = [0u8; 1];
    loop {
        if !wait(libc::POLLIN) {
            return false;
        }
        match nix::unistd::read(fd.as_raw_fd(), &mut first) {
            Ok(1) => return true,
            Ok(_) => return false,
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// How long [`server_alive`] waits for a server to accept and answer a connection setup.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(2000);

/// Start the loop on its own thread (all signals blocked in it).
pub fn spawn(
    engine: Engine,
    app: OwnedFd,
    server0: Option<OwnedFd>,
) -> std::io::Result<(MuxHandle, JoinHandle<Ended>)> {
    let wake = Arc::new(EventFd::from_flags(
        EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK,
    )?);
    let (tx, rx) = channel();
    let done = Arc::new(std::sync::Mutex::new(None));
    let shared = Arc::new(Shared::default());
    let handle = MuxHandle {
        tx,
        wake: wake.clone(),
        done: done.clone(),
        shared: shared.clone(),
    };
    for fd in std::iter::once(&app).chain(server0.as_ref()) {
        set_nonblocking(fd.as_fd())?;
    }
    let th = std::thread::Builder::new()
        .name("guimux".into())
        .spawn(move || {
            let _old = ffi::block_all_signals();
            // Experiment (issue 16): a short scheduler slice for this thread. Off by default:
            // two loaded benchmark runs showed no difference beyond the noise.
            let slice_us: u64 = std::env::var("GUIEVICT_SLICE_US")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if slice_us > 0 {
                if let Err(e) = ffi::short_slice(std::time::Duration::from_micros(slice_us)) {
                    tracing::debug!("no short time slice for the guimux thread: {e}");
                }
            }
            let mut engine = engine;
            engine.trace = std::env::var_os("GUIEVICT_TRACE").is_some();
            let mut l = Loop {
                engine,
                last_activity: std::time::Instant::now(),
                spin: crate::spin::Spin::default(),
                rbuf: vec![0u8; CHUNK],
                app: Peer {
                    fd: app,
                    fds_out: Vec::new(),
                    addr: None,
                },
                servers: HashMap::new(),
                internal: None,
                internal_server: None,
                wake,
                rx,
                shared,
                mode: Mode::Engine,
                panics: 0,
                panic_next: false,
                internal_waiting: None,
            };
            if let Some(fd) = server0 {
                let addr = peer_addr(&fd);
                l.servers.insert(
                    0,
                    Peer {
                        fd,
                        fds_out: Vec::new(),
                        addr,
                    },
                );
            }
            let ended = l.run();
            tracing::info!(?ended, "guimux loop ended");
            if let Ok(mut d) = done.lock() {
                *d = Some(ended.clone());
            }
            ended
        })?;
    Ok((handle, th))
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> std::io::Result<()> {
    let fl = ffi::fcntl_int(fd, FcntlInt::GetFl, 0)?;
    ffi::fcntl_int(fd, FcntlInt::SetFl, fl | libc::O_NONBLOCK)?;
    Ok(())
}

struct Loop {
    engine: Engine,
    /// When the loop last handled something (see [`crate::spin`]).
    last_activity: std::time::Instant,
    /// Whether to look for more traffic before sleeping.
    spin: crate::spin::Spin,
    /// Read buffer shared by every peer.
    rbuf: Vec<u8>,
    app: Peer,
    servers: HashMap<ServerId, Peer>,
    internal: Option<Peer>,
    /// Server the internal client talks to (its descriptors, e.g. ShmAttachFd, go there).
    internal_server: Option<ServerId>,
    wake: Arc<EventFd>,
    rx: Receiver<Cmd>,
    shared: Arc<Shared>,
    mode: Mode,
    /// Panics contained so far.
    panics: u32,
    /// Test hook armed: panic while handling the next message.
    panic_next: bool,
    /// Since when the internal client has had requests out with no byte back from its server.
    internal_waiting: Option<std::time::Instant>,
}

/// How the loop relays.
enum Mode {
    /// Through the engine (normal).
    Engine,
    /// After a contained panic, without the engine.
    PassThrough(PassThrough),
    /// After too many panics: nothing is relayed, the app's socket stays open.
    Stopped,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Who {
    Wake,
    App,
    Server(ServerId),
    Internal,
}

enum ReadResult {
    /// `n` bytes were read into the loop's buffer, with these descriptors.
    Data(usize, Vec<OwnedFd>),
    Eof,
    WouldBlock,
}

/// Read what is available into `buf` (reused across reads: no allocation, no zeroing per
/// message — this is on every round trip's path).
fn read_some(fd: RawFd, buf: &mut [u8]) -> std::io::Result<ReadResult> {
    let mut cmsg = nix::cmsg_space!([RawFd; 32]);
    match ffi::recv_with_fds(fd, buf, &mut cmsg, MsgFlags::MSG_CMSG_CLOEXEC) {
        Ok((n, fds)) => {
            if n == 0 {
                return Ok(ReadResult::Eof);
            }
            Ok(ReadResult::Data(n, fds))
        }
        Err(nix::errno::Errno::EAGAIN) => Ok(ReadResult::WouldBlock),
        Err(nix::errno::Errno::EINTR) => Ok(ReadResult::WouldBlock),
        Err(nix::errno::Errno::ENOTSOCK) => {
            // A pipe or other non-socket (should not happen for X): plain read.
            match nix::unistd::read(fd, buf) {
                Ok(0) => Ok(ReadResult::Eof),
                Ok(n) => Ok(ReadResult::Data(n, Vec::new())),
                Err(nix::errno::Errno::EAGAIN) => Ok(ReadResult::WouldBlock),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Write as much of `buf` as the socket takes; descriptors ride with the first byte.
fn write_some(peer: &mut Peer, buf: &[u8]) -> std::io::Result<usize> {
    if buf.is_empty() {
        return Ok(0);
    }
    let fd = peer.fd.as_raw_fd();
    let raw: Vec<RawFd> = peer.fds_out.iter().map(|f| f.as_raw_fd()).collect();
    let cmsgs = if raw.is_empty() {
        vec![]
    } else {
        vec![ControlMessage::ScmRights(&raw)]
    };
    let iov = [IoSlice::new(buf)];
    match sendmsg::<()>(fd, &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
        Ok(n) => {
            if n > 0 {
                peer.fds_out.clear();
            }
            Ok(n)
        }
        Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => Ok(0),
        Err(nix::errno::Errno::ENOTSOCK) => match nix::unistd::write(peer.fd.as_fd(), buf) {
            Ok(n) => Ok(n),
            Err(nix::errno::Errno::EAGAIN) => Ok(0),
            Err(e) => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}

impl Loop {
    fn run(&mut self) -> Ended {
        loop {
            match self.mode {
                Mode::Engine => {}
                Mode::PassThrough(_) => return self.run_passthrough(),
                Mode::Stopped => return self.run_stopped(),
            }
            self.log_engine();
            if let Some(end) = self.flush_all() {
                return end;
            }
            let mut who = Vec::new();
            let mut pfds = Vec::new();
            let mut add = |w: Who, fd: RawFd, events: i16| {
                who.push(w);
                pfds.push(libc::pollfd {
                    fd,
                    events,
                    revents: 0,
                });
            };
            add(Who::Wake, self.wake.as_fd().as_raw_fd(), libc::POLLIN);
            let app_out_len = self.engine.app_output().len();
            let paused_full = self.engine.queued_bytes() > QUEUE_BOUND;
            let servers_full = self.servers.keys().any(|s| {
                self.engine
                    .server_output(*s)
                    .is_some_and(|o| o.len() > BOUND)
            });
            let mut ev = 0;
            if !paused_full && !servers_full {
                ev |= libc::POLLIN;
            }
            if app_out_len > 0 {
                ev |= libc::POLLOUT;
            }
            add(Who::App, self.app.fd.as_raw_fd(), ev);
            for (sid, p) in &self.servers {
                let mut ev = 0;
                if app_out_len <= BOUND {
                    ev |= libc::POLLIN;
                }
                if self
                    .engine
                    .server_output(*sid)
                    .is_some_and(|o| !o.is_empty())
                {
                    ev |= libc::POLLOUT;
                }
                add(Who::Server(*sid), p.fd.as_raw_fd(), ev);
            }
            if let Some(p) = &self.internal {
                let mut ev = libc::POLLIN;
                if self.engine.internal_output().is_some_and(|o| !o.is_empty()) {
                    ev |= libc::POLLOUT;
                }
                add(Who::Internal, p.fd.as_raw_fd(), ev);
            }
            // Right after traffic, look again for a few microseconds before sleeping (see
            // crate::spin: not on a machine too busy for it). An idle connection sleeps.
            let mut ready = 0;
            let now = std::time::Instant::now();
            if let Some(spin_until) = self.spin.deadline(self.last_activity, now) {
                while std::time::Instant::now() < spin_until {
                    match ffi::poll(&mut pfds, 0) {
                        Ok(0) => std::hint::spin_loop(),
                        Ok(n) => {
                            ready = n;
                            break;
                        }
                        Err(_) => break,
                    }
                }
                self.spin.looked(ready > 0, std::time::Instant::now());
            }
            if ready == 0 {
                // Sleep until traffic, or until the internal client's server is overdue.
                let timeout = match self.internal_waiting {
                    Some(since) => {
                        let left = INTERNAL_TIMEOUT.saturating_sub(since.elapsed());
                        left.as_millis().clamp(1, i32::MAX as u128) as i32
                    }
                    None => -1,
                };
                match ffi::poll(&mut pfds, timeout) {
                    Ok(0) => {
                        self.check_internal_overdue();
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if e.kind() != std::io::ErrorKind::Interrupted {
                            return Ended::Error(format!("poll: {e}"));
                        }
                        continue;
                    }
                }
            }
            self.last_activity = std::time::Instant::now();
            for (i, p) in pfds.iter().enumerate() {
                if p.revents == 0 {
                    continue;
                }
                let readable = p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0;
                match who[i] {
                    Who::Wake => {
                        let _ = self.wake.read();
                        self.commands();
                    }
                    Who::App if readable && p.events & libc::POLLIN != 0 => {
                        if let Some(end) = self.read_app() {
                            return end;
                        }
                    }
                    Who::Server(s) if readable && p.events & libc::POLLIN != 0 => {
                        if let Some(end) = self.read_server(s) {
                            return end;
                        }
                    }
                    Who::Internal if readable => self.read_internal(),
                    _ => {}
                }
                if !matches!(self.mode, Mode::Engine) {
                    // A contained panic changed how this connection is relayed.
                    break;
                }
            }
            self.check_internal_overdue();
        }
    }

    /// Cut the internal client off when its server has left requests unanswered for
    /// [`INTERNAL_TIMEOUT`]: the operation using it then fails instead of waiting for ever.
    fn check_internal_overdue(&mut self) {
        if self.internal.is_none() || !self.engine.internal_outstanding() {
            self.internal_waiting = None;
            return;
        }
        let since = *self
            .internal_waiting
            .get_or_insert_with(std::time::Instant::now);
        if since.elapsed() < INTERNAL_TIMEOUT {
            return;
        }
        let why = format!(
            "the X server did not answer guievict's requests for {} s (stopped or hung?)",
            INTERNAL_TIMEOUT.as_secs()
        );
        tracing::error!(server = ?self.internal_server, "{why}");
        *lock(&self.shared.internal_timeout) = Some(why);
        self.engine.stop_internal();
        self.internal = None;
        self.internal_waiting = None;
    }

    /// Record a contained panic and decide how the connection goes on.
    fn contained_panic(&mut self, what: &str, msg: String, failed: Option<FailedCall<'_>>) {
        self.panics += 1;
        tracing::error!(
            panics = self.panics,
            "guimux panicked while handling {what}: {msg}"
        );
        // A guard is guievict's, not the user's: when it is all that stands between the app
        // and passing bytes through on its original server, it goes (the app lives on
        // unguarded, said in the state below).
        let guards = self.engine.lean_replicas();
        let only_guards = !guards.is_empty()
            && self.engine.server_ids().len() == guards.len() + 1
            && self.engine.salvage_obstacle().as_deref()
                == Some("replicas or pending servers exist");
        if only_guards {
            for s in &guards {
                self.engine.remove_server(*s);
                if let Some(p) = self.servers.remove(s) {
                    crate::interpose::unmark_own(p.fd.as_raw_fd());
                }
            }
        }
        let state = match self.engine.salvage(failed) {
            Ok((pt, lost)) => {
                if lost > 0 {
                    tracing::warn!(lost, "bytes of a partial message lost in the salvage");
                }
                self.mode = Mode::PassThrough(pt);
                self.internal = None;
                format!(
                    "guimux panicked while handling {what} ({msg}); passing bytes through unchanged to the original server{}",
                    if only_guards { " (its guard dropped: it no longer outlives its X server)" } else { "" }
                )
            }
            Err(why) => {
                if let Some(f) = failed {
                    let lost = self.engine.recover_input(&f);
                    if lost > 0 {
                        tracing::warn!(lost, "bytes of a partial message lost after the panic");
                    }
                }
                if self.panics >= MAX_PANICS {
                    self.mode = Mode::Stopped;
                    format!(
                        "guimux panicked {} times, last while handling {what} ({msg}); relaying stopped, the application's connection is held open",
                        self.panics
                    )
                } else {
                    format!(
                        "guimux panicked while handling {what} ({msg}); no pass-through fallback ({why}), relaying on"
                    )
                }
            }
        };
        tracing::error!("{state}");
        *lock(&self.shared.degraded) = Some(state);
    }

    /// Feed `n` bytes of the read buffer to the engine for `side`, containing a panic.
    fn feed(&mut self, side: Side, n: usize) -> Option<Result<(), guimux::EngineError>> {
        let mark = self.engine.input_mark(side);
        let fault = std::mem::take(&mut self.panic_next);
        let mut entered = false;
        let engine = &mut self.engine;
        let d = &self.rbuf[..n];
        let r = catch_unwind(AssertUnwindSafe(|| {
            if fault {
                panic!("guievict test fault: engine panic requested");
            }
            entered = true;
            match side {
                Side::App => engine.app_input(d),
                Side::Server(s) => engine.server_input(s, d),
            }
        }));
        match r {
            Ok(r) => Some(r),
            Err(p) => {
                let data = self.rbuf[..n].to_vec();
                let what = match side {
                    Side::App => "application bytes".to_string(),
                    Side::Server(s) => format!("bytes from server {s}"),
                };
                let call = FailedCall {
                    side,
                    mark,
                    data: &data,
                    entered,
                };
                self.contained_panic(&what, panic_message(&*p), Some(call));
                None
            }
        }
    }

    fn log_engine(&mut self) {
        for line in self.engine.take_log() {
            match line.strip_prefix("debug: ") {
                Some(l) => tracing::debug!("{l}"),
                None => tracing::warn!("{line}"),
            }
        }
    }

    fn commands(&mut self) {
        while let Ok(c) = self.rx.try_recv() {
            if !matches!(self.mode, Mode::Engine) {
                self.command_degraded(c);
                continue;
            }
            match c {
                Cmd::Engine(f) => {
                    let engine = &mut self.engine;
                    if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(engine))) {
                        // The caller's reply channel is dropped with the closure: it gets
                        // an error naming the degraded state.
                        self.contained_panic("a control command", panic_message(&*p), None);
                    }
                }
                Cmd::PanicNext => self.panic_next = true,
                Cmd::AddServer(fd, reply) => {
                    let _ = set_nonblocking(fd.as_fd());
                    // Never mistaken for one of the app's own X connections by a later scan.
                    crate::interpose::mark_own(fd.as_raw_fd());
                    let id = self.engine.add_server();
                    let addr = peer_addr(&fd);
                    self.servers.insert(
                        id,
                        Peer {
                            fd,
                            fds_out: Vec::new(),
                            addr,
                        },
                    );
                    let _ = reply.send(id);
                }
                Cmd::RemoveServer(s, reply) => {
                    if let (Some(p), Some(out)) =
                        (self.servers.get_mut(&s), self.engine.server_output(s))
                    {
                        // Best effort: what is queued for it (nothing of the app's) is written.
                        let _ = write_some(p, out);
                    }
                    self.engine.remove_server(s);
                    if let Some(p) = self.servers.remove(&s) {
                        crate::interpose::unmark_own(p.fd.as_raw_fd());
                    }
                    let _ = reply.send(());
                }
                Cmd::StartInternal(s, fd, reply) => {
                    let r = set_nonblocking(fd.as_fd())
                        .map_err(|e| e.to_string())
                        .and_then(|_| self.engine.start_internal(s).map_err(|e| e.to_string()));
                    if r.is_ok() {
                        self.internal = Some(Peer {
                            fd,
                            fds_out: Vec::new(),
                            addr: None,
                        });
                        self.internal_server = Some(s);
                        self.internal_waiting = None;
                        let _ = lock(&self.shared.internal_timeout).take();
                    }
                    let _ = reply.send(r);
                }
                Cmd::StopInternal(reply) => {
                    self.engine.stop_internal();
                    self.internal = None;
                    let _ = reply.send(());
                }
            }
        }
    }

    /// A command while degraded: nothing that needs the engine is carried out.
    fn command_degraded(&mut self, c: Cmd) {
        match c {
            // Dropping the closure drops its reply channel: the caller gets the degraded error.
            Cmd::Engine(_) | Cmd::AddServer(..) | Cmd::PanicNext => {}
            Cmd::RemoveServer(s, reply) => {
                if !matches!(&self.mode, Mode::PassThrough(pt) if pt.server() == s) {
                    if let Some(p) = self.servers.remove(&s) {
                        crate::interpose::unmark_own(p.fd.as_raw_fd());
                    }
                }
                let _ = reply.send(());
            }
            Cmd::StartInternal(_, _, reply) => {
                let _ = reply.send(Err(lock(&self.shared.degraded)
                    .clone()
                    .unwrap_or_else(|| "degraded".into())));
            }
            Cmd::StopInternal(reply) => {
                let _ = reply.send(());
            }
        }
    }

    fn read_app(&mut self) -> Option<Ended> {
        match read_some(self.app.fd.as_raw_fd(), &mut self.rbuf) {
            Ok(ReadResult::Data(n, fds)) => {
                if !fds.is_empty() {
                    if self.engine.primary_converts_shm() {
                        // The primary cannot share memory: guimux serves ShmAttachFd itself.
                        self.engine.push_app_fds(fds);
                    } else {
                        if self.engine.any_converts_shm() {
                            // A replica cannot share memory: guimux needs its own copies.
                            let copies = fds.iter().filter_map(|f| f.try_clone().ok()).collect();
                            self.engine.push_app_fds(copies);
                        }
                        if let Some(p) =
                            self.engine.primary().and_then(|p| self.servers.get_mut(&p))
                        {
                            p.fds_out.extend(fds);
                        }
                    }
                }
                if let Some(Err(e)) = self.feed(Side::App, n) {
                    tracing::error!("closing the application's X connection: {e}");
                    return Some(Ended::Error(e.to_string()));
                }
                None
            }
            Ok(ReadResult::WouldBlock) => None,
            Ok(ReadResult::Eof) => Some(Ended::AppClosed),
            Err(e) => Some(Ended::Error(format!("reading from the app: {e}"))),
        }
    }

    fn read_server(&mut self, s: ServerId) -> Option<Ended> {
        let p = self.servers.get(&s)?;
        let is_primary = self.engine.primary() == Some(s);
        match read_some(p.fd.as_raw_fd(), &mut self.rbuf) {
            Ok(ReadResult::Data(n, fds)) => {
                if is_primary && !fds.is_empty() {
                    self.app.fds_out.extend(fds);
                }
                if self.internal_server == Some(s) && self.internal_waiting.is_some() {
                    // Its server is alive: the overdue clock starts again.
                    self.internal_waiting = Some(std::time::Instant::now());
                }
                if let Some(Err(e)) = self.feed(Side::Server(s), n) {
                    tracing::error!("server {s}: {e}");
                    return self.server_gone(s, is_primary);
                }
                None
            }
            Ok(ReadResult::WouldBlock) => None,
            Ok(ReadResult::Eof) | Err(_) => self.server_gone(s, is_primary),
        }
    }

    fn server_gone(&mut self, s: ServerId, is_primary: bool) -> Option<Ended> {
        tracing::warn!(server = s, is_primary, "X server connection closed");
        let peer = self.servers.remove(&s);
        if let Some(p) = &peer {
            crate::interpose::unmark_own(p.fd.as_raw_fd());
        }
        if self.internal_server == Some(s) {
            self.internal = None;
            self.internal_server = None;
        }
        if is_primary {
            if let Some(to) = self.takeover(s, peer.as_ref().and_then(|p| p.addr.as_ref())) {
                lock(&self.shared.promotions).push((s, to));
                return None;
            }
        }
        self.engine.remove_server(s);
        if is_primary {
            // As without guievict: the app learns that its server is gone.
            let _ = self.flush_all();
            return Some(Ended::ServerClosed(s));
        }
        None
    }

    /// The primary's connection ended. If its server is dead (not merely done with this
    /// client: KillClient still ends the app, as the user asked) and a replica lives, the
    /// replica becomes the primary — an interactive one first, else a view-only one (the
    /// guard). Returns the new primary.
    fn takeover(&mut self, dead: ServerId, addr: Option<&SockaddrStorage>) -> Option<ServerId> {
        let replicas = self.engine.replicas();
        if replicas.is_empty() {
            return None;
        }
        if server_alive(addr) {
            tracing::warn!(
                server = dead,
                "the X server closed the application's connection but still answers (KillClient): the application's connection ends"
            );
            return None;
        }
        let to = replicas
            .iter()
            .find(|(_, r)| *r == Role::Replica { view_only: false })
            .or(replicas.first())
            .map(|(s, _)| *s)?;
        match self.engine.promote(dead, to) {
            Ok(n) => {
                tracing::warn!(
                    dead,
                    to,
                    answers = n,
                    "the primary X server died: a replica is the primary now"
                );
                Some(to)
            }
            Err(e) => {
                tracing::error!("promoting server {to}: {e}");
                None
            }
        }
    }

    fn read_internal(&mut self) {
        let Some(p) = &self.internal else {
            return;
        };
        match read_some(p.fd.as_raw_fd(), &mut self.rbuf) {
            Ok(ReadResult::Data(n, fds)) => {
                // Descriptors travel with the internal client's requests to its server.
                if let Some(p) = self.internal_server.and_then(|s| self.servers.get_mut(&s)) {
                    p.fds_out.extend(fds);
                }
                let engine = &mut self.engine;
                let d = &self.rbuf[..n];
                match catch_unwind(AssertUnwindSafe(|| engine.internal_input(d))) {
                    Ok(Ok(())) => {
                        if self.internal_waiting.is_none() {
                            self.internal_waiting = Some(std::time::Instant::now());
                        }
                    }
                    Ok(Err(e)) => {
                        tracing::error!("internal client: {e}");
                        self.engine.stop_internal();
                        self.internal = None;
                    }
                    Err(p) => {
                        self.internal = None;
                        self.contained_panic(
                            "the internal client's requests",
                            panic_message(&*p),
                            None,
                        );
                        self.engine.stop_internal();
                    }
                }
            }
            Ok(ReadResult::WouldBlock) => {}
            Ok(ReadResult::Eof) | Err(_) => {
                self.engine.stop_internal();
                self.internal = None;
            }
        }
    }

    /// Write what each peer can take now.
    fn flush_all(&mut self) -> Option<Ended> {
        // Descriptors guimux hands the app (converted ShmCreateSegment) ride with its bytes.
        let fds = self.engine.take_fds_for_app();
        self.app.fds_out.extend(fds);
        let out = self.engine.app_output();
        if !out.is_empty() {
            match write_some(&mut self.app, out) {
                Ok(n) => {
                    out.drain(..n);
                }
                Err(e) => return Some(Ended::Error(format!("writing to the app: {e}"))),
            }
        }
        let mut dead = Vec::new();
        for (sid, p) in self.servers.iter_mut() {
            if let Some(out) = self.engine.server_output(*sid) {
                if out.is_empty() {
                    continue;
                }
                match write_some(p, out) {
                    Ok(n) => {
                        out.drain(..n);
                    }
                    Err(_) => dead.push(*sid),
                }
            }
        }
        for s in dead {
            let primary = self.engine.primary() == Some(s);
            if let Some(end) = self.server_gone(s, primary) {
                return Some(end);
            }
        }
        if let (Some(p), Some(out)) = (self.internal.as_mut(), self.engine.internal_output()) {
            if !out.is_empty() {
                if let Ok(n) = write_some(p, out) {
                    out.drain(..n);
                }
            }
        }
        None
    }

    /// Relay without the engine (after a contained panic): app and original server only.
    fn run_passthrough(&mut self) -> Ended {
        let Mode::PassThrough(pt) = std::mem::replace(&mut self.mode, Mode::Stopped) else {
            return self.run_stopped();
        };
        let mut pt = pt;
        let sid = pt.server();
        // Other servers (replicas, pending ones) are closed; so is the internal client.
        self.internal = None;
        let others: Vec<ServerId> = self.servers.keys().copied().filter(|s| *s != sid).collect();
        for s in others {
            if let Some(p) = self.servers.remove(&s) {
                crate::interpose::unmark_own(p.fd.as_raw_fd());
            }
        }
        let Some(mut server) = self.servers.remove(&sid) else {
            return Ended::ServerClosed(sid);
        };
        loop {
            // Write what each side can take.
            let out = pt.app_output();
            if !out.is_empty() {
                match write_some(&mut self.app, out) {
                    Ok(n) => {
                        out.drain(..n);
                    }
                    Err(e) => return Ended::Error(format!("writing to the app: {e}")),
                }
            }
            let out = pt.server_output();
            if !out.is_empty() {
                match write_some(&mut server, out) {
                    Ok(n) => {
                        out.drain(..n);
                    }
                    Err(_) => return Ended::ServerClosed(sid),
                }
            }
            let app_out = pt.app_output().len();
            let srv_out = pt.server_output().len();
            let mut pfds = [
                libc::pollfd {
                    fd: self.wake.as_fd().as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.app.fd.as_raw_fd(),
                    events: if srv_out <= BOUND { libc::POLLIN } else { 0 }
                        | if app_out > 0 { libc::POLLOUT } else { 0 },
                    revents: 0,
                },
                libc::pollfd {
                    fd: server.fd.as_raw_fd(),
                    events: if app_out <= BOUND { libc::POLLIN } else { 0 }
                        | if srv_out > 0 { libc::POLLOUT } else { 0 },
                    revents: 0,
                },
            ];
            match ffi::poll(&mut pfds, -1) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Ended::Error(format!("poll: {e}")),
            }
            let readable = |p: &libc::pollfd| {
                p.events & libc::POLLIN != 0
                    && p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
            };
            if pfds[0].revents != 0 {
                let _ = self.wake.read();
                while let Ok(c) = self.rx.try_recv() {
                    self.command_degraded(c);
                }
            }
            if readable(&pfds[1]) {
                match read_some(self.app.fd.as_raw_fd(), &mut self.rbuf) {
                    Ok(ReadResult::Data(n, fds)) => {
                        server.fds_out.extend(fds);
                        pt.app_input(&self.rbuf[..n]);
                    }
                    Ok(ReadResult::WouldBlock) => {}
                    Ok(ReadResult::Eof) => return Ended::AppClosed,
                    Err(e) => return Ended::Error(format!("reading from the app: {e}")),
                }
            }
            if readable(&pfds[2]) {
                match read_some(server.fd.as_raw_fd(), &mut self.rbuf) {
                    Ok(ReadResult::Data(n, fds)) => {
                        self.app.fds_out.extend(fds);
                        pt.server_input(&self.rbuf[..n]);
                    }
                    Ok(ReadResult::WouldBlock) => {}
                    Ok(ReadResult::Eof) | Err(_) => {
                        let out = pt.app_output();
                        if let Ok(n) = write_some(&mut self.app, out) {
                            out.drain(..n);
                        }
                        return Ended::ServerClosed(sid);
                    }
                }
            }
        }
    }

    /// Relay nothing, keep the application's socket open (after [`MAX_PANICS`]): the process
    /// lives on; the loop ends only when the application closes its end.
    fn run_stopped(&mut self) -> Ended {
        loop {
            let mut pfds = [
                libc::pollfd {
                    fd: self.wake.as_fd().as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.app.fd.as_raw_fd(),
                    events: 0,
                    revents: 0,
                },
            ];
            match ffi::poll(&mut pfds, -1) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Ended::Error(format!("poll: {e}")),
            }
            if pfds[0].revents != 0 {
                let _ = self.wake.read();
                while let Ok(c) = self.rx.try_recv() {
                    self.command_degraded(c);
                }
            }
            if pfds[1].revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                return Ended::AppClosed;
            }
        }
    }
}
