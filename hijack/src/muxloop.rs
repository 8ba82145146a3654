//! The guimux I/O loop for one application X connection. Bytes (and `SCM_RIGHTS` descriptors)
//! flow between the application's socket, any number of X server sockets and guimux's internal
//! client socket; a [`guimux::Engine`] decides what goes where. Commands from the control
//! thread (pause, add a server, start the internal client, activate with maps, …) arrive over a
//! channel with an eventfd wake-up and are applied between polls, so the engine is only ever
//! touched by this thread.
//!
//! A panic while the engine handles a message or a command is contained (`muxloop/contain.rs`,
//! which extends the loop's type and imports from here; nothing here imports from it): it is
//! logged, and if the connection is still on its original server with identity maps the engine
//! is replaced by a [`guimux::salvage::PassThrough`] (bytes unchanged, sequence numbers
//! shifted), otherwise the engine goes on with the failed call's unconsumed bytes put back. After
//! [`MAX_PANICS`] the loop stops relaying but keeps the application's socket open, so the
//! process lives on. Either way the connection is *degraded* ([`MuxHandle::degraded`], shown by
//! `guievict status`) and refuses detach/attach/move.
//!
//! The parts: this file holds the loop itself (polling, back-pressure, commands, reading and
//! writing through the engine, a dead primary's takeover by a replica); `muxloop/handle.rs` the
//! handle other threads command it with; `muxloop/io.rs` reading and writing one socket with
//! its descriptors, and the server liveness probe (both used by this file, neither uses it);
//! `muxloop/contain.rs` the panic containment (the pass-through and stopped relays among it).

mod contain;
mod handle;
pub mod inline;
mod io;

use handle::{lock, Cmd, Shared};
pub use handle::{Ended, LoopGone, MuxHandle, COMMAND_TIMEOUT};
use io::{peer_addr, read_some, server_alive, set_nonblocking, write_some, Peer, ReadResult};

use crate::ffi;
use guimux::salvage::{PassThrough, Side};
use guimux::{Engine, Role, ServerId};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::socket::SockaddrStorage;
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Outgoing bytes for one peer above which the opposite side stops being read (back-pressure).
pub const BOUND: usize = 16 << 20;
/// Queued app bytes (detached) above which the app stops being read: it then blocks in its own
/// write, nothing is dropped.
pub const QUEUE_BOUND: usize = 64 << 20;
const CHUNK: usize = 256 * 1024;
/// Panics after which a loop that could not fall back to pass-through stops relaying.
pub const MAX_PANICS: u32 = 8;
/// Longest time the internal client's server may leave it without an answer while it has
/// requests outstanding; then its socket is closed and the operation fails (see
/// [`MuxHandle::internal_timed_out`]).
pub const INTERNAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The text of a panic payload.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Start the loop on its own thread (all signals blocked in it).
///
/// `app_fd` is the descriptor number the application reads and writes the connection on (the
/// other end of `app`), when it is in this process: libxcb's hooked calls on it are translated
/// inline once asked ([`MuxHandle::set_inline`]).
pub fn spawn(
    engine: Engine,
    app: OwnedFd,
    server0: Option<OwnedFd>,
    app_fd: Option<RawFd>,
) -> std::io::Result<(MuxHandle, JoinHandle<Ended>)> {
    let wake = Arc::new(EventFd::from_flags(
        EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK,
    )?);
    let (tx, rx) = channel();
    let done = Arc::new(std::sync::Mutex::new(None));
    let shared = Arc::new(Shared::default());
    let switch = Arc::new(inline::Switch::new(app_fd.unwrap_or(-1), wake.clone())?);
    let handle = MuxHandle {
        tx,
        wake: wake.clone(),
        done: done.clone(),
        shared: shared.clone(),
        switch: switch.clone(),
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
                switch: switch.clone(),
                last_command: std::time::Instant::now(),
                watchers: 0,
                inline_gen: 0,
                pair_bytes: None,
                epoll: None,
                armed: HashMap::new(),
                end_inline: None,
                inline_primary: None,
                inline_servers: 0,
                deferred: Vec::new(),
                lazy: Vec::new(),
                lazy_armed: false,
                primary_off: false,
                hooks_busy: false,
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
            let state = Arc::new(Mutex::new(l));
            let _ = switch.state.set(state.clone());
            if switch.app_fd >= 0 {
                inline::register(switch.clone());
            }
            let ended = inline::drive(&state, &switch);
            switch.set_wanted(false);
            // The state outlives this thread (the handle's switchboard holds it): close what
            // the loop held now, as its drop used to — the app sees its connection end.
            lock(&state).finish();
            if switch.app_fd >= 0 {
                inline::unregister_switch(&switch);
            }
            tracing::info!(?ended, "guimux loop ended");
            if let Ok(mut d) = done.lock() {
                *d = Some(ended.clone());
            }
            ended
        })?;
    Ok((handle, th))
}

/// One connection's loop state: the engine and the sockets (behind a mutex shared by the
/// guimux thread and, while inline, the app's hooked calls).
pub struct Loop {
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
    /// The connection's inline switchboard (`muxloop/inline.rs`).
    switch: Arc<inline::Switch>,
    /// When the last command (other than a status query) came: inline waits for quiet.
    last_command: std::time::Instant,
    /// Application threads inside the hooked `poll`, watching the primary themselves.
    watchers: usize,
    /// Inline periods so far (a hooked poll counted in an earlier one is not counted now).
    inline_gen: u64,
    /// Bytes the loop put into the socketpair that the app has not read (inline; `None`:
    /// unknown, the hooks read it until it is empty).
    pair_bytes: Option<usize>,
    /// The guimux thread's epoll while inline.
    epoll: Option<Arc<nix::sys::epoll::Epoll>>,
    /// Epoll interest set per server (flag bits).
    armed: HashMap<ServerId, u32>,
    /// How the connection ended, found by a hook (the guimux thread returns it).
    end_inline: Option<Ended>,
    /// The primary when the connection went inline.
    inline_primary: Option<ServerId>,
    /// Number of servers when the connection went inline.
    inline_servers: usize,
    /// Commands the inline mode took off the channel for the relayed loop.
    deferred: Vec<Cmd>,
    /// Guards while inline: their bytes are written in batches (`muxloop/inline.rs`).
    lazy: Vec<ServerId>,
    /// The guimux thread sleeps with the guards' timeout (hooks need not wake it for it).
    lazy_armed: bool,
    /// The guimux thread does not watch the primary (app threads poll it: `muxloop/inline.rs`).
    primary_off: bool,
    /// An app thread polled the primary since the guimux thread last looked.
    hooks_busy: bool,
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

impl Loop {
    /// The relayed loop; `None` when the connection goes inline (see `muxloop/inline.rs`).
    fn run(&mut self) -> Option<Ended> {
        loop {
            match self.mode {
                Mode::Engine => {}
                Mode::PassThrough(_) => return Some(self.run_passthrough()),
                Mode::Stopped => return Some(self.run_stopped()),
            }
            self.log_engine();
            if !self.deferred.is_empty() {
                // Commands taken while inline.
                self.commands();
            }
            if let Some(end) = self.flush_all() {
                return Some(end);
            }
            let inline_wait = match self.inline_due() {
                Some(None) => return None,
                Some(Some(wait)) => Some(wait),
                None => None,
            };
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
                let mut timeout = match self.internal_waiting {
                    Some(since) => {
                        let left = INTERNAL_TIMEOUT.saturating_sub(since.elapsed());
                        left.as_millis().clamp(1, i32::MAX as u128) as i32
                    }
                    None => -1,
                };
                if let Some(w) = inline_wait {
                    let w = w.as_millis().clamp(1, i32::MAX as u128) as i32;
                    timeout = if timeout < 0 { w } else { timeout.min(w) };
                }
                match ffi::poll(&mut pfds, timeout) {
                    Ok(0) => {
                        self.check_internal_overdue();
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if e.kind() != std::io::ErrorKind::Interrupted {
                            return Some(Ended::Error(format!("poll: {e}")));
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
                            return Some(end);
                        }
                    }
                    Who::Server(s) if readable && p.events & libc::POLLIN != 0 => {
                        if let Some(end) = self.read_server(s) {
                            return Some(end);
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

    /// The loop ended: the application's socket is shut down (it reads EOF, as when its
    /// server closes the connection), the servers' and the internal client's sockets closed,
    /// the engine's memory given back.
    fn finish(&mut self) {
        let _ =
            nix::sys::socket::shutdown(self.app.fd.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        self.app.fds_out.clear();
        for (_, p) in self.servers.drain() {
            crate::interpose::unmark_own(p.fd.as_raw_fd());
        }
        self.internal = None;
        self.epoll = None;
        self.engine = Engine::premeditated();
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

    fn log_engine(&mut self) {
        for line in self.engine.take_log() {
            match line.strip_prefix("debug: ") {
                Some(l) => tracing::debug!("{l}"),
                None => tracing::warn!("{line}"),
            }
        }
    }

    fn commands(&mut self) {
        let mut cmds = std::mem::take(&mut self.deferred);
        while let Ok(c) = self.rx.try_recv() {
            cmds.push(c);
        }
        for c in cmds {
            if !matches!(self.mode, Mode::Engine) {
                self.command_degraded(c);
                continue;
            }
            if !matches!(c, Cmd::Query(_)) {
                self.last_command = std::time::Instant::now();
            }
            match c {
                Cmd::Query(f) => {
                    let engine = &mut self.engine;
                    if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(engine))) {
                        self.contained_panic("a status query", panic_message(&*p), None);
                    }
                }
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
}
