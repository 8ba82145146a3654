//! The relay thread: bytes and passed file descriptors flow from the application's end of the
//! socketpair to the real X server socket and back. What happens to them in between is decided
//! by a [`Pump`] per connection ([`PassThrough`] forwards them unchanged; guimux plugs in here).
//! The relay owns the I/O: one `poll` loop over every interposed connection, `SCM_RIGHTS`
//! forwarding both ways, back-pressure (a side is not read while the other side's outgoing queue
//! is over the bound, so the app blocks instead of anything being dropped) and end-of-stream
//! handling. All signals are blocked in the thread.

use crate::control::ConnectionStatus;
use crate::ffi;
use crate::interpose::{self, Swapped};
use crate::xfd::{self, XPeer};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use std::collections::VecDeque;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Default bound on one direction's outgoing queue before the other side stops being read.
pub const DEFAULT_QUEUE_BOUND: usize = 8 << 20;
/// Size of one read.
const READ_CHUNK: usize = 64 * 1024;
/// Most descriptors accepted with one read.
const MAX_FDS_PER_READ: usize = 32;

/// Bytes (and the descriptors that travel with their first byte) queued for one side.
#[derive(Debug, Default)]
pub struct Chunk {
    data: Vec<u8>,
    fds: Vec<OwnedFd>,
    sent: usize,
}

/// What a [`Pump`] wants sent, collected during one callback and applied by the relay after it.
#[derive(Debug, Default)]
pub struct Output {
    to_app: Vec<Chunk>,
    to_server: Vec<Chunk>,
    server_change: Option<ServerChange>,
}

#[derive(Debug)]
enum ServerChange {
    Close,
    Replace(OwnedFd),
}

impl Output {
    /// Queue bytes for the application; `fds` are passed with the first of them.
    pub fn to_app(&mut self, data: &[u8], fds: Vec<OwnedFd>) {
        push(&mut self.to_app, data, fds);
    }
    /// Queue bytes for the X server; `fds` are passed with the first of them.
    pub fn to_server(&mut self, data: &[u8], fds: Vec<OwnedFd>) {
        push(&mut self.to_server, data, fds);
    }
    /// Close the server connection once what is queued for it has been written (detach).
    pub fn close_server(&mut self) {
        self.server_change = Some(ServerChange::Close);
    }
    /// Use `fd` as the server connection from now on (attach); the old one, if any, is closed.
    /// Bytes still queued for the server go to the new one.
    pub fn replace_server(&mut self, fd: OwnedFd) {
        self.server_change = Some(ServerChange::Replace(fd));
    }
}

fn push(q: &mut Vec<Chunk>, data: &[u8], fds: Vec<OwnedFd>) {
    if data.is_empty() {
        // Descriptors need at least one byte to ride on: attach them to the next data.
        if !fds.is_empty() {
            q.push(Chunk {
                data: Vec::new(),
                fds,
                sent: 0,
            });
        }
        return;
    }
    if let Some(last) = q.last_mut() {
        if fds.is_empty() && (last.fds.is_empty() || !last.data.is_empty()) {
            last.data.extend_from_slice(data);
            return;
        }
        if last.data.is_empty() {
            last.data.extend_from_slice(data);
            last.fds.extend(fds);
            return;
        }
    }
    q.push(Chunk {
        data: data.to_vec(),
        fds,
        sent: 0,
    });
}

/// What to do with the application when the server side ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerEof {
    /// Close the application's end too (what a direct connection would do).
    CloseApp,
    /// Keep the application connected (the pump holds it, e.g. as detached).
    KeepApp,
}

/// The byte processing of one interposed connection. Called on the relay thread only.
#[allow(clippy::wrong_self_convention)] // `from_app`/`from_server` name the direction, not a conversion
pub trait Pump: Send {
    /// Bytes (and descriptors) the application sent towards the server.
    fn from_app(&mut self, data: &[u8], fds: Vec<OwnedFd>, out: &mut Output);
    /// Bytes (and descriptors) the server sent towards the application.
    fn from_server(&mut self, data: &[u8], fds: Vec<OwnedFd>, out: &mut Output);
    /// The relay was woken through [`RelayHandle::wake`] (e.g. a control command is waiting).
    fn on_wake(&mut self, _out: &mut Output) {}
    /// The server connection ended (EOF or error) while the application is still connected.
    fn server_eof(&mut self, _out: &mut Output) -> ServerEof {
        ServerEof::CloseApp
    }
}

/// Forwards everything unchanged.
#[derive(Debug, Default, Clone, Copy)]
pub struct PassThrough;

impl Pump for PassThrough {
    fn from_app(&mut self, data: &[u8], fds: Vec<OwnedFd>, out: &mut Output) {
        out.to_server(data, fds);
    }
    fn from_server(&mut self, data: &[u8], fds: Vec<OwnedFd>, out: &mut Output) {
        out.to_app(data, fds);
    }
}

/// What a pump factory knows about a new connection.
#[derive(Debug, Clone)]
pub struct ConnMeta {
    /// The application's descriptor number.
    pub app_fd: RawFd,
    /// The X server it was connected to, when known.
    pub peer: Option<XPeer>,
}

/// Makes the pump of each new connection.
pub type PumpFactory = Box<dyn Fn(&ConnMeta) -> Box<dyn Pump> + Send>;

/// Counters of one connection, shared with the control thread.
#[derive(Debug, Default)]
struct Stats {
    from_app: AtomicU64,
    from_server: AtomicU64,
    queued_to_app: AtomicU64,
    queued_to_server: AtomicU64,
    fds_passed: AtomicU64,
    server_connected: AtomicBool,
}

/// What the relay publishes of a connection for status queries.
type Published = (RawFd, Option<XPeer>, Arc<Stats>);

#[derive(Debug)]
struct Shared {
    stop: AtomicBool,
    pending: Mutex<Vec<(Swapped, Option<XPeer>)>>,
    conns: Mutex<Vec<Published>>,
}

/// Handle to the relay thread, usable from any thread.
#[derive(Debug, Clone)]
pub struct RelayHandle {
    wake: Arc<EventFd>,
    shared: Arc<Shared>,
}

impl RelayHandle {
    /// Wake the relay: it adopts newly interposed connections and calls [`Pump::on_wake`].
    pub fn wake(&self) {
        let _ = self.wake.write(1);
    }
    /// Hand a connection swapped by [`interpose::interpose_fd`] to the relay.
    pub fn add(&self, sw: Swapped, peer: Option<XPeer>) {
        if let Ok(mut p) = self.shared.pending.lock() {
            p.push((sw, peer));
        }
        self.wake();
    }
    /// Ask the relay thread to finish (connections are closed; used by tests).
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.wake();
    }
    /// Raw descriptor of the wake eventfd (the safe-point entry writes to it).
    pub fn wake_fd(&self) -> RawFd {
        self.wake.as_fd().as_raw_fd()
    }
    /// Status of every connection the relay serves.
    pub fn connections(&self) -> Vec<ConnectionStatus> {
        let Ok(conns) = self.shared.conns.lock() else {
            return Vec::new();
        };
        conns
            .iter()
            .map(|(fd, peer, s)| ConnectionStatus {
                app_fd: *fd,
                server: peer.as_ref().map(ToString::to_string),
                display: peer.as_ref().map(|p| match p {
                    XPeer::Tcp { addr, display } => format!("{addr}:{display}"),
                    XPeer::Unix { display, .. } => format!(":{display}"),
                }),
                server_connected: s.server_connected.load(Ordering::Relaxed),
                bytes_from_app: s.from_app.load(Ordering::Relaxed),
                bytes_from_server: s.from_server.load(Ordering::Relaxed),
                queued_to_app: s.queued_to_app.load(Ordering::Relaxed),
                queued_to_server: s.queued_to_server.load(Ordering::Relaxed),
                fds_passed: s.fds_passed.load(Ordering::Relaxed),
                shm_converted: 0,
                substituted: 0,
                guard_elided: 0,
                degraded: None,
                held_on: None,
                guard: None,
                guarded: false,
                io: "relayed".into(),
                inline_off: None,
                inline_calls: 0,
            })
            .collect()
    }
}

#[derive(Debug, Default)]
struct Queue {
    chunks: VecDeque<Chunk>,
    bytes: usize,
}

impl Queue {
    fn extend(&mut self, chunks: Vec<Chunk>) {
        for c in chunks {
            self.bytes += c.data.len();
            if c.data.is_empty() {
                // Descriptor-only chunk: merge into the next data chunk that arrives.
                self.chunks.push_back(c);
                continue;
            }
            if let Some(back) = self.chunks.back_mut() {
                if back.data.is_empty() && back.sent == 0 {
                    back.data = c.data;
                    back.fds.extend(c.fds);
                    continue;
                }
            }
            self.chunks.push_back(c);
        }
    }
    fn is_empty(&self) -> bool {
        self.bytes == 0
    }
}

struct Conn {
    app_fd: RawFd,
    peer: Option<XPeer>,
    app: OwnedFd,
    server: Option<OwnedFd>,
    pump: Box<dyn Pump>,
    to_app: Queue,
    to_server: Queue,
    app_eof: bool,
    server_eof: bool,
    closing_server: bool,
    close_app_when_flushed: bool,
    /// The server side changed (status must be republished).
    changed: bool,
    stats: Arc<Stats>,
}

enum Io {
    Data(usize, Vec<OwnedFd>),
    Again,
    Eof,
}

fn read_side(fd: RawFd, buf: &mut [u8], cmsg: &mut Vec<u8>) -> Io {
    let r = ffi::recv_with_fds(
        fd,
        buf,
        cmsg,
        MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
    );
    match r {
        Ok((n, fds)) => {
            if n == 0 && fds.is_empty() {
                Io::Eof
            } else {
                Io::Data(n, fds)
            }
        }
        Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => Io::Again,
        Err(e) => {
            tracing::debug!(fd, error = %e, "read ended the connection side");
            Io::Eof
        }
    }
}

/// Write as much of `q` as the socket takes. Returns false when the side is dead.
fn flush(fd: RawFd, q: &mut Queue) -> bool {
    while let Some(front) = q.chunks.front_mut() {
        if front.data.is_empty() {
            // Descriptors with no byte yet: wait for data to carry them.
            break;
        }
        let raw: Vec<RawFd> = if front.sent == 0 {
            front.fds.iter().map(AsRawFd::as_raw_fd).collect()
        } else {
            Vec::new()
        };
        let cm = [ControlMessage::ScmRights(&raw)];
        let cmsgs: &[ControlMessage] = if raw.is_empty() { &[] } else { &cm };
        let iov = [IoSlice::new(&front.data[front.sent..])];
        match sendmsg::<()>(
            fd,
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
            None,
        ) {
            Ok(n) => {
                if front.sent == 0 {
                    // Passed: our copies can go.
                    front.fds.clear();
                }
                front.sent += n;
                q.bytes -= n;
                if front.sent == front.data.len() {
                    q.chunks.pop_front();
                }
            }
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => break,
            Err(e) => {
                tracing::debug!(fd, error = %e, "write ended the connection side");
                return false;
            }
        }
    }
    true
}

impl Conn {
    fn new(sw: Swapped, peer: Option<XPeer>, factory: &PumpFactory) -> Conn {
        let _ = nix::fcntl::fcntl(
            sw.relay.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        let _ = nix::fcntl::fcntl(
            sw.server.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        let meta = ConnMeta {
            app_fd: sw.app_fd,
            peer: peer.clone(),
        };
        let stats = Arc::new(Stats::default());
        stats.server_connected.store(true, Ordering::Relaxed);
        Conn {
            app_fd: sw.app_fd,
            peer,
            app: sw.relay,
            server: Some(sw.server),
            pump: factory(&meta),
            to_app: Queue::default(),
            to_server: Queue::default(),
            app_eof: false,
            server_eof: false,
            closing_server: false,
            close_app_when_flushed: false,
            changed: false,
            stats,
        }
    }

    fn apply(&mut self, out: Output) {
        self.changed |= out.server_change.is_some();
        self.to_app.extend(out.to_app);
        self.to_server.extend(out.to_server);
        match out.server_change {
            Some(ServerChange::Close) => self.closing_server = true,
            Some(ServerChange::Replace(fd)) => {
                interpose::mark_own(fd.as_raw_fd());
                if let Some(old) = self.server.take() {
                    interpose::unmark_own(old.as_raw_fd());
                }
                let _ = nix::fcntl::fcntl(
                    fd.as_raw_fd(),
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                );
                self.server = Some(fd);
                self.server_eof = false;
                self.closing_server = false;
                self.close_app_when_flushed = false;
            }
            None => {}
        }
        self.stats
            .queued_to_app
            .store(self.to_app.bytes as u64, Ordering::Relaxed);
        self.stats
            .queued_to_server
            .store(self.to_server.bytes as u64, Ordering::Relaxed);
        self.stats
            .server_connected
            .store(self.server.is_some(), Ordering::Relaxed);
    }

    fn drop_server(&mut self) {
        self.changed = true;
        if let Some(old) = self.server.take() {
            interpose::unmark_own(old.as_raw_fd());
        }
    }

    fn server_gone(&mut self) {
        self.drop_server();
        self.server_eof = true;
        self.stats.server_connected.store(false, Ordering::Relaxed);
        let mut out = Output::default();
        let action = self.pump.server_eof(&mut out);
        self.apply(out);
        if action == ServerEof::CloseApp {
            self.close_app_when_flushed = true;
        }
    }

    /// True when the connection is finished and can be dropped.
    fn finished(&self) -> bool {
        if self.app_eof && (self.server.is_none() || self.to_server.is_empty()) {
            return true;
        }
        self.close_app_when_flushed && self.to_app.is_empty()
    }
}

/// Start the relay thread. `factory` makes each connection's pump. The thread adopts connections
/// parked by [`interpose::guievict_interpose`] and those given to [`RelayHandle::add`].
pub fn spawn(factory: PumpFactory, bound: usize) -> std::io::Result<(RelayHandle, JoinHandle<()>)> {
    let wake = Arc::new(
        EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(std::io::Error::from)?,
    );
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        pending: Mutex::new(Vec::new()),
        conns: Mutex::new(Vec::new()),
    });
    let handle = RelayHandle {
        wake: wake.clone(),
        shared: shared.clone(),
    };
    let thread_handle = handle.clone();
    let old = ffi::block_all_signals();
    let spawned = std::thread::Builder::new()
        .name("guievict-relay".into())
        .spawn(move || {
            let h = thread_handle;
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run(&h, factory, bound);
            }));
            if r.is_err() {
                tracing::error!("relay thread panicked");
            }
        });
    ffi::restore_signals(&old);
    let join = spawned?;
    Ok((handle, join))
}

fn run(h: &RelayHandle, factory: PumpFactory, bound: usize) {
    let mut conns: Vec<Conn> = Vec::new();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS_PER_READ]);
    let wake_fd = h.wake_fd();
    let mut pfds: Vec<libc::pollfd> = Vec::new();
    loop {
        if h.shared.stop.load(Ordering::Acquire) {
            break;
        }
        pfds.clear();
        pfds.push(libc::pollfd {
            fd: wake_fd,
            events: libc::POLLIN,
            revents: 0,
        });
        for c in &conns {
            let mut ev = 0;
            if !c.app_eof && c.to_server.bytes < bound && !c.close_app_when_flushed {
                ev |= libc::POLLIN;
            }
            if !c.to_app.is_empty() && !c.app_eof {
                ev |= libc::POLLOUT;
            }
            pfds.push(libc::pollfd {
                fd: c.app.as_raw_fd(),
                events: ev,
                revents: 0,
            });
            let mut ev = 0;
            if c.server.is_some() {
                if !c.server_eof && !c.closing_server && c.to_app.bytes < bound {
                    ev |= libc::POLLIN;
                }
                if !c.to_server.is_empty() {
                    ev |= libc::POLLOUT;
                }
            }
            pfds.push(libc::pollfd {
                fd: c.server.as_ref().map_or(-1, AsRawFd::as_raw_fd),
                events: ev,
                revents: 0,
            });
        }
        if let Err(e) = ffi::poll(&mut pfds, -1) {
            tracing::error!(error = %e, "relay poll failed");
            break;
        }
        if pfds[0].revents != 0 {
            let _ = h.wake.read();
            adopt(h, &mut conns, &factory);
            for c in &mut conns {
                let mut out = Output::default();
                c.pump.on_wake(&mut out);
                c.apply(out);
            }
        }
        for (i, c) in conns.iter_mut().enumerate() {
            let (app_rev, srv_rev) = (pfds.get(1 + 2 * i), pfds.get(2 + 2 * i));
            let (Some(app_rev), Some(srv_rev)) =
                (app_rev.map(|p| p.revents), srv_rev.map(|p| p.revents))
            else {
                continue; // adopted this round: not polled yet
            };
            let readable = libc::POLLIN | libc::POLLHUP | libc::POLLERR;
            if app_rev & readable != 0 && !c.app_eof {
                match read_side(c.app.as_raw_fd(), &mut buf, &mut cmsg) {
                    Io::Data(n, fds) => {
                        c.stats.from_app.fetch_add(n as u64, Ordering::Relaxed);
                        c.stats
                            .fds_passed
                            .fetch_add(fds.len() as u64, Ordering::Relaxed);
                        let mut out = Output::default();
                        c.pump.from_app(&buf[..n], fds, &mut out);
                        c.apply(out);
                    }
                    Io::Again => {}
                    Io::Eof => c.app_eof = true,
                }
            }
            if srv_rev & readable != 0 && !c.server_eof {
                if let Some(fd) = c.server.as_ref().map(AsRawFd::as_raw_fd) {
                    match read_side(fd, &mut buf, &mut cmsg) {
                        Io::Data(n, fds) => {
                            c.stats.from_server.fetch_add(n as u64, Ordering::Relaxed);
                            c.stats
                                .fds_passed
                                .fetch_add(fds.len() as u64, Ordering::Relaxed);
                            let mut out = Output::default();
                            c.pump.from_server(&buf[..n], fds, &mut out);
                            c.apply(out);
                        }
                        Io::Again => {}
                        Io::Eof => c.server_gone(),
                    }
                }
            }
            // Write whatever is queued (also right after reading: saves a poll round).
            if !c.to_server.is_empty() {
                if let Some(fd) = c.server.as_ref().map(AsRawFd::as_raw_fd) {
                    if !flush(fd, &mut c.to_server) {
                        c.server_gone();
                    }
                }
            }
            if c.closing_server && c.to_server.is_empty() && c.server.is_some() {
                c.drop_server();
                c.closing_server = false;
                c.stats.server_connected.store(false, Ordering::Relaxed);
            }
            if !c.to_app.is_empty() && !c.app_eof && !flush(c.app.as_raw_fd(), &mut c.to_app) {
                c.app_eof = true;
            }
            c.stats
                .queued_to_app
                .store(c.to_app.bytes as u64, Ordering::Relaxed);
            c.stats
                .queued_to_server
                .store(c.to_server.bytes as u64, Ordering::Relaxed);
        }
        let mut republish = false;
        for c in &mut conns {
            republish |= std::mem::take(&mut c.changed);
        }
        let before = conns.len();
        conns.retain(|c| {
            let done = c.finished();
            if done {
                tracing::info!(app_fd = c.app_fd, "connection finished");
                if let Some(s) = &c.server {
                    interpose::unmark_own(s.as_raw_fd());
                }
                interpose::release(c.app_fd);
            }
            !done
        });
        if republish || conns.len() != before {
            publish(h, &conns);
        }
    }
    for c in &conns {
        interpose::release(c.app_fd);
        if let Some(s) = &c.server {
            interpose::unmark_own(s.as_raw_fd());
        }
    }
    conns.clear();
    publish(h, &conns);
}

fn adopt(h: &RelayHandle, conns: &mut Vec<Conn>, factory: &PumpFactory) {
    let mut new: Vec<(Swapped, Option<XPeer>)> = interpose::take_ready()
        .into_iter()
        .map(|sw| {
            let peer = xfd::peer_of(sw.server.as_raw_fd());
            (sw, peer)
        })
        .collect();
    if let Ok(mut p) = h.shared.pending.lock() {
        new.append(&mut p);
    }
    if new.is_empty() {
        return;
    }
    for (sw, peer) in new {
        tracing::info!(app_fd = sw.app_fd, peer = ?peer, "relaying X connection");
        conns.push(Conn::new(sw, peer, factory));
    }
    publish(h, conns);
}

fn publish(h: &RelayHandle, conns: &[Conn]) {
    if let Ok(mut list) = h.shared.conns.lock() {
        *list = conns
            .iter()
            .map(|c| (c.app_fd, c.peer.clone(), c.stats.clone()))
            .collect();
    }
}
