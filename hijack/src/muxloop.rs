//! The guimux I/O loop for one application X connection. Bytes (and `SCM_RIGHTS` descriptors)
//! flow between the application's socket, any number of X server sockets and guimux's internal
//! client socket; a [`guimux::Engine`] decides what goes where. Commands from the control
//! thread (pause, add a server, start the internal client, activate with maps, …) arrive over a
//! channel with an eventfd wake-up and are applied between polls, so the engine is only ever
//! touched by this thread.

use crate::ffi;
use guimux::{Engine, Maps, Role, ServerId};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use std::collections::HashMap;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Outgoing bytes for one peer above which the opposite side stops being read (back-pressure).
pub const BOUND: usize = 16 << 20;
/// Queued app bytes (detached) above which the app stops being read: it then blocks in its own
/// write, nothing is dropped.
pub const QUEUE_BOUND: usize = 64 << 20;
const CHUNK: usize = 256 * 1024;
/// How long the loop keeps looking for more traffic after handling some, before it sleeps.
const SPIN: std::time::Duration = std::time::Duration::from_micros(60);

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
        LoopGone(self.done.lock().ok().and_then(|d| d.clone()))
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
        rrx.recv().map_err(|_| self.gone())
    }

    /// Hand the loop a new server connection (setup completed); returns its id (role Pending).
    pub fn add_server(&self, fd: OwnedFd) -> Result<ServerId, LoopGone> {
        let (rtx, rrx) = channel();
        self.send(Cmd::AddServer(fd, rtx))?;
        rrx.recv().map_err(|_| self.gone())
    }

    /// Close a server connection.
    pub fn remove_server(&self, s: ServerId) -> Result<(), LoopGone> {
        let (rtx, rrx) = channel();
        self.send(Cmd::RemoveServer(s, rtx))?;
        rrx.recv().map_err(|_| self.gone())
    }

    /// Start the internal client on server `s`; returns the socket to speak X on (numbered
    /// from request 1, no setup handshake).
    pub fn start_internal(&self, s: ServerId) -> Result<std::os::unix::net::UnixStream, LoopGone> {
        let (mine, theirs) = std::os::unix::net::UnixStream::pair()
            .map_err(|e| LoopGone(Some(Ended::Error(format!("socketpair: {e}")))))?;
        let (rtx, rrx) = channel();
        self.send(Cmd::StartInternal(s, theirs.into(), rtx))?;
        rrx.recv()
            .map_err(|_| self.gone())?
            .map_err(|e| LoopGone(Some(Ended::Error(e))))?;
        Ok(mine)
    }

    /// Stop the internal client.
    pub fn stop_internal(&self) -> Result<(), LoopGone> {
        let (rtx, rrx) = channel();
        self.send(Cmd::StopInternal(rtx))?;
        rrx.recv().map_err(|_| self.gone())
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

struct Peer {
    fd: OwnedFd,
    fds_out: Vec<OwnedFd>,
}

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
    let handle = MuxHandle {
        tx,
        wake: wake.clone(),
        done: done.clone(),
    };
    for fd in std::iter::once(&app).chain(server0.as_ref()) {
        set_nonblocking(fd.as_raw_fd())?;
    }
    let th = std::thread::Builder::new()
        .name("guimux".into())
        .spawn(move || {
            let _old = ffi::block_all_signals();
            let mut engine = engine;
            engine.trace = std::env::var_os("GUIEVICT_TRACE").is_some();
            let mut l = Loop {
                engine,
                last_activity: std::time::Instant::now(),
                rbuf: vec![0u8; CHUNK],
                app: Peer {
                    fd: app,
                    fds_out: Vec::new(),
                },
                servers: HashMap::new(),
                internal: None,
                internal_server: None,
                wake,
                rx,
            };
            if let Some(fd) = server0 {
                l.servers.insert(
                    0,
                    Peer {
                        fd,
                        fds_out: Vec::new(),
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

fn set_nonblocking(fd: RawFd) -> std::io::Result<()> {
    let fl = ffi::fcntl_int(fd, libc::F_GETFL, 0)?;
    ffi::fcntl_int(fd, libc::F_SETFL, fl | libc::O_NONBLOCK)?;
    Ok(())
}

struct Loop {
    engine: Engine,
    /// When the loop last handled something (see [`SPIN`]).
    last_activity: std::time::Instant,
    /// Read buffer shared by every peer.
    rbuf: Vec<u8>,
    app: Peer,
    servers: HashMap<ServerId, Peer>,
    internal: Option<Peer>,
    /// Server the internal client talks to (its descriptors, e.g. ShmAttachFd, go there).
    internal_server: Option<ServerId>,
    wake: Arc<EventFd>,
    rx: Receiver<Cmd>,
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
    let mut iov = [IoSliceMut::new(buf)];
    match recvmsg::<()>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
        Ok(msg) => {
            let mut fds = Vec::new();
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    if let ControlMessageOwned::ScmRights(raw) = c {
                        fds.extend(ffi::own_received(&raw));
                    }
                }
            }
            let n = msg.bytes;
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
            // Right after traffic, look again for a few microseconds before sleeping: the
            // answer to a round trip usually comes back within that time, and catching it
            // without a sleep/wake-up cycle is what a relayed round trip costs. An idle
            // connection sleeps in poll as before.
            let spin_until = self.last_activity + SPIN;
            let mut ready = 0;
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
            if ready == 0 {
                if let Err(e) = ffi::poll(&mut pfds, -1) {
                    if e.kind() != std::io::ErrorKind::Interrupted {
                        return Ended::Error(format!("poll: {e}"));
                    }
                    continue;
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
            match c {
                Cmd::Engine(f) => f(&mut self.engine),
                Cmd::AddServer(fd, reply) => {
                    let _ = set_nonblocking(fd.as_raw_fd());
                    // Never mistaken for one of the app's own X connections by a later scan.
                    crate::interpose::mark_own(fd.as_raw_fd());
                    let id = self.engine.add_server();
                    self.servers.insert(
                        id,
                        Peer {
                            fd,
                            fds_out: Vec::new(),
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
                    let r = set_nonblocking(fd.as_raw_fd())
                        .map_err(|e| e.to_string())
                        .and_then(|_| self.engine.start_internal(s).map_err(|e| e.to_string()));
                    if r.is_ok() {
                        self.internal = Some(Peer {
                            fd,
                            fds_out: Vec::new(),
                        });
                        self.internal_server = Some(s);
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

    fn read_app(&mut self) -> Option<Ended> {
        match read_some(self.app.fd.as_raw_fd(), &mut self.rbuf) {
            Ok(ReadResult::Data(n, fds)) => {
                let d = &self.rbuf[..n];
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
                if let Err(e) = self.engine.app_input(d) {
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
                let d = &self.rbuf[..n];
                if is_primary && !fds.is_empty() {
                    self.app.fds_out.extend(fds);
                }
                if let Err(e) = self.engine.server_input(s, d) {
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
        if let Some(p) = self.servers.remove(&s) {
            crate::interpose::unmark_own(p.fd.as_raw_fd());
        }
        self.engine.remove_server(s);
        if is_primary {
            // As without guievict: the app learns that its server is gone.
            let _ = self.flush_all();
            return Some(Ended::ServerClosed(s));
        }
        None
    }

    fn read_internal(&mut self) {
        let Some(p) = &self.internal else {
            return;
        };
        match read_some(p.fd.as_raw_fd(), &mut self.rbuf) {
            Ok(ReadResult::Data(n, fds)) => {
                let d = &self.rbuf[..n];
                // Descriptors travel with the internal client's requests to its server.
                if let Some(p) = self.internal_server.and_then(|s| self.servers.get_mut(&s)) {
                    p.fds_out.extend(fds);
                }
                if let Err(e) = self.engine.internal_input(d) {
                    tracing::error!("internal client: {e}");
                    self.engine.stop_internal();
                    self.internal = None;
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
}
