//! The hijack library. Loaded into an application (by `dlopen` through ptrace from
//! `guievict hijack`, or by `LD_PRELOAD`), it takes the application's X connection fds, puts a
//! relay thread between the application and the server (whose byte processing is a pluggable
//! [`relay::Pump`]; guimux plugs in there), and serves control commands on a unix socket.
//!
//! Load sequence when injected: the constructor ([`init`]) starts the relay thread and the control
//! thread and returns; then the injector stops every application thread at a safe point and calls
//! [`interpose::guievict_interpose`], which swaps the X fds (allocation- and lock-free) and wakes
//! the relay. Under `LD_PRELOAD` the application has no X connection yet when the constructor
//! runs, so a watcher thread interposes each X connection as soon as it appears.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod adopt;
pub mod conn;
pub mod control;
pub mod controller;
pub mod fault;
pub mod ffi;
pub mod fidelity;
pub mod got;
pub mod grouphold;
pub mod hooks;
pub mod interpose;
pub mod muxloop;
pub mod preflight;
pub mod relay;
pub mod screen;
pub mod session;
pub mod shmmem;
pub mod spin;
pub mod traffic;
pub mod transaction;
pub mod viewconn;
pub mod xfd;
pub mod xkbnotice;

use control::{ErrorKind, Request, Response, Status};
use relay::{ConnMeta, PassThrough, Pump, RelayHandle};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Name of the symbol the injector calls at the safe point.
pub const INTERPOSE_SYMBOL: &str = "guievict_interpose";
/// File name of the library.
pub const LIBRARY_FILE: &str = "libguievict_hijack.so";
/// How long the `LD_PRELOAD` watcher looks for new X connections.
pub const PRELOAD_WATCH: Duration = Duration::from_secs(60);

/// What the running library knows about itself.
#[derive(Debug)]
pub struct Runtime {
    /// The plain relay thread (only with `GUIEVICT_RELAY=plain`; normally guimux relays each
    /// connection on its own thread, see [`adopt`]).
    pub relay: Option<RelayHandle>,
    /// Control socket path (None if it could not be bound).
    pub socket: Option<PathBuf>,
    /// `"injected"` or `"preload"`.
    pub mode: &'static str,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
static SOCKET_PATH: OnceLock<PathBuf> = OnceLock::new();

/// The running library's state, once the constructor has run (None in the CLI and tests).
pub fn runtime() -> Option<&'static Runtime> {
    RUNTIME.get()
}

/// The pump of each new connection. guimux replaces [`PassThrough`] here.
pub fn make_pump(_meta: &ConnMeta) -> Box<dyn Pump> {
    Box::new(PassThrough)
}

/// Answer a control request: `Status` here, everything else through the controller.
pub fn handle_request(req: &Request) -> Response {
    match req {
        Request::Status => Response::Status(status()),
        Request::Quiesce => quiesce(),
        other => {
            if runtime().is_some_and(|r| r.relay.is_some()) {
                return Response::Error {
                    kind: ErrorKind::NotImplemented,
                    message: "this process runs the plain relay (GUIEVICT_RELAY=plain): only `status` is available".into(),
                };
            }
            if let Request::Inline { on } = other {
                // Not an operation: it only sets flags the loops look at.
                return match adopt::controller().set_inline(*on) {
                    Ok(message) => Response::Ok { message },
                    Err(message) => Response::Error {
                        kind: ErrorKind::Failed,
                        message,
                    },
                };
            }
            operations().run(other)
        }
    }
}

/// The one thread that carries out controller operations (detach, attach, move, …). The
/// control workers read requests and write answers; every operation runs here, so the
/// captures, sessions and reports of all operations are allocated by one thread — one malloc
/// arena in the app instead of one per worker, each grown to a move's working set.
/// An operation for the operations thread: the request, the PID of the `guievict` that sent
/// it (see [`control::peer_pid`]) and where the answer goes.
type Operation = (Request, Option<u32>, std::sync::mpsc::Sender<Response>);

struct Operations {
    tx: std::sync::Mutex<std::sync::mpsc::Sender<Operation>>,
}

impl Operations {
    fn run(&self, req: &Request) -> Response {
        let (rtx, rrx) = std::sync::mpsc::channel();
        let sent = self.tx.lock().unwrap_or_else(|p| p.into_inner()).send((
            req.clone(),
            control::peer_pid(),
            rtx,
        ));
        match sent.ok().and_then(|()| rrx.recv().ok()) {
            Some(r) => r,
            // The thread could not start (or is gone): carry it out here rather than fail.
            None => run_operation(req),
        }
    }
}

fn operations() -> &'static Operations {
    static OPS: std::sync::OnceLock<Operations> = std::sync::OnceLock::new();
    OPS.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Operation>();
        let r = std::thread::Builder::new()
            .name("guievict-ops".into())
            .spawn(move || {
                while let Ok((req, peer, reply)) = rx.recv() {
                    control::set_peer_pid(peer);
                    let _ = reply.send(run_operation(&req));
                }
            });
        if let Err(e) = r {
            tracing::error!(error = %e, "cannot start the operations thread");
        }
        Operations {
            tx: std::sync::Mutex::new(tx),
        }
    })
}

/// Carry out one controller operation.
fn run_operation(other: &Request) -> Response {
    // A panic in the controller (a bug) must not cost the app anything: it is answered as an
    // error, and the poisoned lock is recovered by the next request.
    match std::panic::catch_unwind(|| adopt::controller().handle(other)) {
        Ok(r) => r,
        Err(p) => {
            let msg = muxloop::panic_message(&*p);
            tracing::error!("control request panicked: {msg}");
            Response::Error {
                kind: ErrorKind::Failed,
                message: format!(
                    "internal error (panic: {msg}); the state is reconciled on the next request"
                ),
            }
        }
    }
}

/// Set by [`Request::Quiesce`]: the control thread closes its listener after the current client.
static QUIESCE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Wakes the control thread's poll when [`QUIESCE`] is set or a client is done, so that an idle
/// process never wakes up on its own (no polling interval).
static CONTROL_WAKE: std::sync::OnceLock<nix::sys::eventfd::EventFd> = std::sync::OnceLock::new();

/// Make the control thread look at [`QUIESCE`] and its client count again.
fn wake_control() {
    if let Some(w) = CONTROL_WAKE.get() {
        let _ = w.write(1);
    }
}

/// Accept [`Request::Quiesce`] when nothing is attached to an X server.
fn quiesce() -> Response {
    if runtime().is_some_and(|r| r.relay.is_some()) {
        return Response::Error {
            kind: ErrorKind::NotImplemented,
            message:
                "this process runs the plain relay (GUIEVICT_RELAY=plain), which cannot detach"
                    .into(),
        };
    }
    let attached: Vec<String> = adopt::controller()
        .connections()
        .into_iter()
        .filter_map(|c| c.display.or(c.held_on).or(c.guard))
        .collect();
    if !attached.is_empty() {
        return Response::Error {
            kind: ErrorKind::Failed,
            message: format!(
                "still attached to {}: detach before a checkpoint",
                attached.join(", ")
            ),
        };
    }
    if let Some(sock) = SOCKET_PATH.get() {
        if control::is_abstract(sock) {
            return Response::Error {
                kind: ErrorKind::Failed,
                message: format!(
                    "the control socket is abstract ({}: no usable runtime directory), which a checkpoint cannot re-arm",
                    sock.display()
                ),
            };
        }
        let _ = std::fs::remove_file(control::rearm_path(sock));
    }
    QUIESCE.store(true, std::sync::atomic::Ordering::Release);
    wake_control();
    Response::Ok {
        message: "control socket closes when this connection ends".into(),
    }
}

/// Threads serving control connections (spawned once, for the life of the process: a thread
/// per connection would cost the app a malloc arena each time). A long operation occupies one;
/// `status` is answered by another.
const CONTROL_WORKERS: usize = 3;
/// Accepted connections waiting for a worker beyond which new ones are closed unanswered.
const MAX_WAITING: usize = 16;

/// The control thread: accept clients and hand each to one of [`CONTROL_WORKERS`] threads (so
/// `status` answers while a long operation runs); after a quiesce, once every client is gone,
/// close the listener, remove the socket file, and wait (polling, no signals) for the rearm
/// file before listening again.
fn control_loop(mut listener: std::os::unix::net::UnixListener, sock: PathBuf) {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let active = Arc::new(AtomicUsize::new(0));
    let wake = match nix::sys::eventfd::EventFd::from_flags(
        nix::sys::eventfd::EfdFlags::EFD_CLOEXEC | nix::sys::eventfd::EfdFlags::EFD_NONBLOCK,
    ) {
        Ok(w) => CONTROL_WAKE.get_or_init(|| w).as_raw_fd(),
        Err(e) => {
            tracing::warn!(error = %e, "no eventfd for the control thread; polling every 100 ms");
            -1
        }
    };
    let (tx, rx) = std::sync::mpsc::channel::<std::os::unix::net::UnixStream>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..CONTROL_WORKERS {
        let (rx, active) = (rx.clone(), active.clone());
        let r = std::thread::Builder::new()
            .name(format!("guievict-ctl{i}"))
            .spawn(move || loop {
                let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                let Ok(s) = next else { return };
                let r = std::panic::catch_unwind(|| control::serve_one(s, &handle_request));
                if r.is_err() {
                    tracing::error!("control handler panicked");
                }
                active.fetch_sub(1, Ordering::AcqRel);
                if QUIESCE.load(Ordering::Acquire) {
                    wake_control();
                }
            });
        if let Err(e) = r {
            tracing::error!(error = %e, "cannot start a control worker thread");
        }
    }
    loop {
        let _ = listener.set_nonblocking(true);
        loop {
            if QUIESCE.load(Ordering::Acquire) && active.load(Ordering::Acquire) == 0 {
                break;
            }
            let mut p = [
                libc::pollfd {
                    fd: listener.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: wake,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // Asleep until a client connects or the wake-up above (a negative fd is ignored by
            // poll; without an eventfd the old 100 ms look at QUIESCE remains).
            let timeout = if wake < 0 { 100 } else { -1 };
            if !matches!(ffi::poll(&mut p, timeout), Ok(n) if n > 0) {
                continue;
            }
            if p[1].revents != 0 {
                if let Some(w) = CONTROL_WAKE.get() {
                    let _ = w.read();
                }
            }
            if p[0].revents == 0 {
                continue;
            }
            let s = match listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "control accept failed");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            let _ = s.set_nonblocking(false);
            if active.load(Ordering::Acquire) >= MAX_WAITING {
                tracing::warn!("too many control clients; closing one unanswered");
                continue;
            }
            active.fetch_add(1, Ordering::AcqRel);
            if tx.send(s).is_err() {
                active.fetch_sub(1, Ordering::AcqRel);
                tracing::error!("no control worker left");
            }
        }
        drop(listener);
        let _ = std::fs::remove_file(&sock);
        let rearm = control::rearm_path(&sock);
        tracing::info!(rearm = %rearm.display(), "control socket closed for a checkpoint");
        listener = loop {
            std::thread::sleep(Duration::from_millis(10));
            if !rearm.exists() {
                continue;
            }
            match control::bind(&sock) {
                Ok(l) => break l,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen again; retrying");
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        };
        let _ = std::fs::remove_file(&rearm);
        QUIESCE.store(false, Ordering::Release);
        tracing::info!(socket = %sock.display(), "control socket listening again");
    }
}

/// Status of this process.
pub fn status() -> Status {
    let rt = runtime();
    Status {
        pid: std::process::id(),
        comm: std::fs::read_to_string("/proc/self/comm")
            .map(|s| s.trim_end().to_string())
            .unwrap_or_default(),
        library_version: env!("CARGO_PKG_VERSION").to_string(),
        protocol_version: control::PROTOCOL_VERSION,
        socket: rt.and_then(|r| r.socket.clone()).unwrap_or_default(),
        mode: rt.map_or("none", |r| r.mode).to_string(),
        connections: match rt.and_then(|r| r.relay.as_ref()) {
            Some(relay) => relay.connections(),
            None => adopt::controller().connections(),
        },
        busy: adopt::controller().busy(),
        own_fds: interpose::own_fds(),
    }
}

/// The log file of this process, when it has one.
static LOG_PATH: OnceLock<PathBuf> = OnceLock::new();
/// Size at which the log is rotated (`<pid>.log` → `<pid>.log.1`): at most twice this on disk.
pub const LOG_MAX: u64 = 1 << 20;

/// At a clean exit: the socket file and the logs go with the process.
extern "C" fn remove_socket() {
    if let Some(p) = SOCKET_PATH.get().filter(|p| !control::is_abstract(p)) {
        let _ = std::fs::remove_file(p);
    }
    if let Some(p) = LOG_PATH.get() {
        let _ = std::fs::remove_file(p);
        let _ = std::fs::remove_file(p.with_extension("log.1"));
    }
}

fn open_log(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.len() > LOG_MAX) {
        let _ = std::fs::rename(path, path.with_extension("log.1"));
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        // Never write through a link someone else planted.
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

fn init_logging(dir: &std::path::Path) {
    let path = dir.join(format!("{}.log", std::process::id()));
    if open_log(&path).is_err() {
        return;
    }
    let _ = LOG_PATH.set(path.clone());
    // The file is opened for each event so that no descriptor stays open: a checkpointed
    // process then holds nothing outside itself (see `Request::Quiesce`). That is also where
    // it is rotated.
    let writer = move || -> Box<dyn std::io::Write> {
        match open_log(&path) {
            Ok(f) => Box::new(f),
            Err(_) => Box::new(std::io::sink()),
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("GUIEVICT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(writer)
        .try_init();
}

/// Remove our own entry from `LD_PRELOAD` so that the application's children do not load us.
fn scrub_preload() -> bool {
    let Some(v) = std::env::var_os("LD_PRELOAD") else {
        return false;
    };
    let v = v.to_string_lossy().into_owned();
    if !v.contains("guievict_hijack") {
        return false;
    }
    let rest: Vec<&str> = v
        .split([':', ' '])
        .filter(|s| !s.is_empty() && !s.contains("guievict_hijack"))
        .collect();
    if rest.is_empty() {
        std::env::remove_var("LD_PRELOAD");
    } else {
        std::env::set_var("LD_PRELOAD", rest.join(":"));
    }
    true
}

/// Start the library's threads. Idempotent; returns quickly.
fn start() {
    if ffi::linked_into_main_executable() || RUNTIME.get().is_some() {
        return;
    }
    let preload = scrub_preload();
    let uid = nix::unistd::geteuid().as_raw();
    // A squatted or unusable directory is refused; with none usable, the socket is abstract
    // and there is no log file.
    let (dir, refused) = control::choose_dir(
        std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .as_deref(),
        uid,
    );
    if let Some(d) = &dir {
        init_logging(d);
    }
    for why in &refused {
        tracing::warn!("not using a control directory: {why}");
    }
    let plain = std::env::var_os("GUIEVICT_RELAY").is_some_and(|v| v == "plain");
    let (relay, wake_fd) = if plain {
        match relay::spawn(Box::new(make_pump), relay::DEFAULT_QUEUE_BOUND) {
            Ok((h, _join)) => {
                let fd = h.wake_fd();
                (Some(h), fd)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start the relay thread; not hijacking");
                return;
            }
        }
    } else {
        match adopt::spawn() {
            Ok(fd) => (None, fd),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the guimux adopter; not hijacking");
                return;
            }
        }
    };
    interpose::WAKE_FD.store(wake_fd, std::sync::atomic::Ordering::Release);
    let sock = match &dir {
        Some(d) => d.join(format!("{}.sock", std::process::id())),
        None => control::abstract_name(uid, std::process::id()),
    };
    let listener = match control::bind(&sock) {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::error!(error = %e, "control socket unavailable");
            None
        }
    };
    let socket = listener.as_ref().map(|_| sock.clone());
    if let Some(p) = &socket {
        let _ = SOCKET_PATH.set(p.clone());
    }
    if socket.is_some() || LOG_PATH.get().is_some() {
        ffi::at_exit(remove_socket);
    }
    let mode = if preload { "preload" } else { "injected" };
    let _ = RUNTIME.set(Runtime {
        relay,
        socket,
        mode,
    });
    tracing::info!(
        pid = std::process::id(),
        mode,
        "guievict hijack library loaded"
    );
    let old = ffi::block_all_signals();
    if let Some(listener) = listener {
        let sock = sock.clone();
        let r = std::thread::Builder::new()
            .name("guievict-control".into())
            .spawn(move || control_loop(listener, sock));
        if let Err(e) = r {
            tracing::error!(error = %e, "cannot start the control thread");
        }
    }
    if preload {
        let r = std::thread::Builder::new()
            .name("guievict-watch".into())
            .spawn(watch_new_connections);
        if let Err(e) = r {
            tracing::error!(error = %e, "cannot start the X connection watcher");
        }
    }
    ffi::restore_signals(&old);
}

/// `LD_PRELOAD` mode: interpose X connections as the application opens them.
fn watch_new_connections() {
    let start = Instant::now();
    let mut failed: Vec<i32> = Vec::new();
    while start.elapsed() < PRELOAD_WATCH {
        if let Ok(fds) = xfd::find_x_fds() {
            for (fd, peer) in fds {
                if interpose::is_own(fd) || failed.contains(&fd) {
                    continue;
                }
                let n = interpose::interpose_now(fd);
                if n > 0 {
                    tracing::info!(fd, %peer, "interposed X connection (preload)");
                } else if n < 0 {
                    tracing::warn!(fd, errno = -n, "could not interpose X connection");
                    failed.push(fd);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The library constructor: runs when the dynamic loader maps the library (dlopen or preload).
/// Stays inert when this code is linked into an executable as an rlib.
pub extern "C" fn init() {
    let _ = std::panic::catch_unwind(start);
}

#[used]
#[link_section = ".init_array"]
static INIT_ARRAY_ENTRY: extern "C" fn() = init;
