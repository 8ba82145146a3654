//! The control socket. Requests from the `guievict` command flow in over a unix socket
//! (`$XDG_RUNTIME_DIR/guievict/<pid>.sock`, else `/tmp/guievict-<uid>/<pid>.sock`, directory
//! owned by the process's uid, mode 0700; when both are unusable — e.g. another user created
//! `/tmp/guievict-<uid>` first — the abstract socket `@guievict-<uid>-<pid>`, written as a path
//! starting with `@`) as length-prefixed bincode frames carrying a protocol version; responses
//! flow back the same way. Clients look in every one of these places, remove socket files
//! nobody listens on any more (a process that died without its exit handlers) and accept an
//! abstract socket only from the process it is named after. Every connection's peer is checked with `SO_PEERCRED`: only the process's own
//! uid or root may talk to it. A bad frame gets an error reply and the connection is closed; the
//! application is never affected. The same module holds the client side used by the CLI.

use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Version of the control protocol; both sides must agree.
pub const PROTOCOL_VERSION: u32 = 1;
/// Largest frame accepted (bytes of bincode payload).
pub const MAX_FRAME: u32 = 16 << 20;
/// How long one connection may take to send its request.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client waits for the answer to a request that changes something (detach,
/// attach, …): longer than every timeout inside the library, so that the library's own, clear
/// error arrives first.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a client waits for the answer to `status` (answered without waiting for any
/// operation in progress).
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

/// Input policy of a display (replication).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputPolicy {
    /// Input from this display reaches the application.
    Interactive,
    /// Input from this display is dropped.
    ViewOnly,
}

/// X authority to use for a display: the `name`/`data` pair of an Xauthority entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct XAuth {
    /// Authorization protocol name, e.g. `MIT-MAGIC-COOKIE-1`.
    pub name: String,
    /// Authorization data.
    pub data: Vec<u8>,
}

/// A request to a hijacked process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Report the library's state and every interposed connection.
    Status,
    /// Capture the window session now and write it to `path`.
    Snapshot {
        /// Where the session file goes (a path in the application's mount namespace).
        path: PathBuf,
    },
    /// Take the GUI off its display; the application keeps running, its X traffic is held.
    Detach {
        /// Also write the captured session to this path.
        session_path: Option<PathBuf>,
        /// Detach even when the capture could not read or model part of the GUI (a later
        /// attach then cannot bring it back exactly); refused otherwise, with nothing changed.
        #[serde(default)]
        force: bool,
        /// Hold the GUI on this private headless server (a move there) instead of in memory:
        /// the app keeps getting real replies while detached. A guarded connection (see
        /// [`Request::Guard`]) goes to its guard's server without it.
        #[serde(default)]
        private: Option<PrivateServer>,
        /// Detach in memory even when guarded (a checkpoint: no socket may stay open).
        #[serde(default)]
        in_memory: bool,
    },
    /// Keep a hidden view-only replica of the GUI on a private headless server (the *guard*):
    /// should the primary's X server die, the guard becomes the primary and the app is then
    /// detached, held there with its exact state, until `attach` moves it to a display.
    Guard {
        /// The private server.
        private: PrivateServer,
    },
    /// Put the GUI on `display`.
    Attach {
        /// Display name, e.g. `:3`.
        display: String,
        /// X authority for it, if needed.
        auth: Option<XAuth>,
        /// Attach even where the app depends on an extension the display lacks (GLX, Present,
        /// DRI3, DRI2): the app's requests for it will then fail there.
        #[serde(default)]
        force: bool,
        /// guievict's private server as it is now (the CLI starts it if needed and keeps it up
        /// while the request runs): a guarded GUI gets its guard there again after the attach.
        #[serde(default)]
        private: Option<PrivateServer>,
    },
    /// Show the GUI on one more display.
    Replicate {
        /// Display name.
        display: String,
        /// X authority for it.
        auth: Option<XAuth>,
        /// Input policy of the new replica.
        policy: InputPolicy,
    },
    /// Stop showing the GUI on `display`.
    Unreplicate {
        /// Display name.
        display: String,
    },
    /// Change the input policy of `display`.
    Policy {
        /// Display name.
        display: String,
        /// New policy.
        policy: InputPolicy,
    },
    /// Prepare for a process checkpoint (CRIU). Refused unless every connection is detached.
    /// After answering, the control thread closes its listening socket and removes the socket
    /// file, so the process holds no socket bound to a path and no connection to anything outside
    /// itself. It listens again once the file [`rearm_path`] of its socket appears (created by
    /// `guievict restore` after the restore, or by `guievict checkpoint` after the dump).
    Quiesce,
    /// Move the GUI to `display` as one transaction: the target is connected to first, the
    /// session captured while the app is held, and only then is the old connection closed; if
    /// anything fails after that, the GUI is put back where it was. Refused up front, with
    /// nothing changed, when the target lacks an extension the app depends on or when part of
    /// the GUI cannot be carried exactly (unless `force`).
    Move {
        /// Display name.
        display: String,
        /// X authority for it.
        auth: Option<XAuth>,
        /// Move anyway (see `Attach::force`), losing what cannot be carried.
        #[serde(default)]
        force: bool,
    },
    /// Resources of the application's *other* processes, moved in the same `guievict move`:
    /// `(app-view ID, ID on the new server)` pairs each connection of this process learns, so
    /// that IDs this process uses of theirs (a GPU process drawing into the browser's windows)
    /// reach the new server translated.
    AddForeignIds {
        /// The pairs (as the other processes' move reports list them in `own_ids`).
        pairs: Vec<(u32, u32)>,
    },
    /// The first step of a detach, attach or move of an application of several processes (a
    /// browser and its GPU process, which draws into the browser's windows): hold this
    /// process's X requests (they queue) on every connection until [`Request::GroupRelease`]
    /// with the same `token`, so that no process uses another's resources while those are
    /// being moved. The hold ends by itself after `secs` seconds (a `guievict` that died).
    GroupHold {
        /// Names this hold (the release must name it too).
        token: u64,
        /// Longest the hold lasts.
        secs: u64,
    },
    /// The last step of such an operation: learn the other processes' IDs on the new server
    /// (as [`Request::AddForeignIds`]), then end hold `token` (the queued requests go out,
    /// translated). Harmless when the hold already ended.
    GroupRelease {
        /// The hold to end.
        token: u64,
        /// The other processes' `(app-view ID, ID on the new server)` pairs.
        pairs: Vec<(u32, u32)>,
    },
    /// Whether the GUI can be put on `display`, asked by `guievict move` before it detaches:
    /// answered with an error naming the extension when the app depends on one the target
    /// lacks (see `preflight`). Changes nothing.
    Preflight {
        /// Display name.
        display: String,
        /// X authority for it.
        auth: Option<XAuth>,
    },
    /// Test hook: provoke a failure inside the process. Carried out only when the process runs
    /// with `GUIEVICT_TEST_FAULTS=1` in its environment (the test suite sets it for the apps it
    /// starts); any other process answers with an error and changes nothing.
    TestFault {
        /// What to provoke.
        fault: TestFault,
    },
}

/// guievict's private headless X server of a user (Xvfb with the GUIEVICT extension, started
/// by the CLI): where guarded and detached GUIs are held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateServer {
    /// Display name, e.g. `:57`.
    pub display: String,
    /// Its X authority (the server accepts only this cookie).
    pub auth: Option<XAuth>,
}

/// Failures [`Request::TestFault`] can provoke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TestFault {
    /// Every guimux thread of the process panics while handling its next message.
    EnginePanic,
    /// The controller panics while holding its lock (which poisons it).
    ControllerPanic,
}

/// Environment variable that enables [`Request::TestFault`] in a process.
pub const TEST_FAULTS_ENV: &str = "GUIEVICT_TEST_FAULTS";

/// Whether this process honours [`Request::TestFault`].
pub fn test_faults_enabled() -> bool {
    std::env::var_os(TEST_FAULTS_ENV).is_some_and(|v| v == "1")
}

/// The file whose appearance makes a quiesced process ([`Request::Quiesce`]) listen again on
/// `socket`: `<pid>.rearm` next to `<pid>.sock`.
pub fn rearm_path(socket: &Path) -> PathBuf {
    socket.with_extension("rearm")
}

/// State of one interposed X connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionStatus {
    /// The application's descriptor number for this connection.
    pub app_fd: i32,
    /// The server's address as text (`unix:/tmp/.X11-unix/X1`), when connected.
    pub server: Option<String>,
    /// Display name (`:1`), when connected.
    pub display: Option<String>,
    /// Whether a server connection is open (false: detached).
    pub server_connected: bool,
    /// Bytes read from the application since the hijack.
    pub bytes_from_app: u64,
    /// Bytes read from the server since the hijack.
    pub bytes_from_server: u64,
    /// Bytes queued for the application, not yet written.
    pub queued_to_app: u64,
    /// Bytes queued for the server (or held while detached).
    pub queued_to_server: u64,
    /// File descriptors passed through (both ways).
    pub fds_passed: u64,
    /// App MIT-SHM requests guimux served itself (the server cannot share memory).
    #[serde(default)]
    pub shm_converted: u64,
    /// App requests answered with an error because the server lacks their extension.
    #[serde(default)]
    pub substituted: u64,
    /// Requests the guard got as NoOperation because they only served a pixmap made and freed
    /// within one batch of the app's bytes.
    #[serde(default)]
    pub guard_elided: u64,
    /// Set when guimux contained a panic on this connection: what happened and how the
    /// connection is relayed since (detach, attach and move are then refused).
    #[serde(default)]
    pub degraded: Option<String>,
    /// Set while the connection is detached but held on guievict's private headless server
    /// (its display): the app gets real replies there, and `attach` moves it from there.
    #[serde(default)]
    pub held_on: Option<String>,
    /// The private server that keeps a hidden replica of this connection's GUI (the guard),
    /// if there is one.
    #[serde(default)]
    pub guard: Option<String>,
    /// The connection is guarded (`guievict guard`), also while its guard is not live
    /// (detached in memory, or held: the guard is made again at the next attach).
    #[serde(default)]
    pub guarded: bool,
}

/// Answer to [`Request::Status`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Process id of the hijacked application.
    pub pid: u32,
    /// Its executable name (`/proc/self/comm`).
    pub comm: String,
    /// Version of the hijack library.
    pub library_version: String,
    /// Control protocol version.
    pub protocol_version: u32,
    /// Path of the control socket.
    pub socket: PathBuf,
    /// How the library got in: `"injected"` or `"preload"`.
    pub mode: String,
    /// Every interposed connection.
    pub connections: Vec<ConnectionStatus>,
    /// The operation the controller is carrying out right now, with its age (the connection
    /// figures are then from the last status taken while it was idle).
    #[serde(default)]
    pub busy: Option<String>,
    /// Descriptors the library itself holds (its server connections): an injector must not
    /// take them for application X connections still to interpose.
    #[serde(default)]
    pub own_fds: Vec<i32>,
}

/// Category of a failed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The frame could not be decoded.
    BadFrame,
    /// Client and library speak different protocol versions.
    VersionMismatch,
    /// The request is known but not implemented yet.
    NotImplemented,
    /// The request failed.
    Failed,
}

/// A response from a hijacked process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Answer to `Status`.
    Status(Status),
    /// The request was carried out.
    Ok {
        /// Human-readable detail.
        message: String,
    },
    /// The request failed.
    Error {
        /// Category.
        kind: ErrorKind,
        /// Human-readable message saying what and why.
        message: String,
    },
}

/// One framed message: version + body.
#[derive(Debug, Serialize, Deserialize)]
struct Frame<T> {
    version: u32,
    body: T,
}

/// Control-socket errors.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// I/O on the socket or its directory.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Path involved.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A frame was longer than [`MAX_FRAME`].
    #[error("frame of {len} bytes exceeds the limit of {MAX_FRAME}")]
    FrameTooLong {
        /// Announced length.
        len: u32,
    },
    /// A frame did not decode.
    #[error("undecodable frame: {0}")]
    Decode(#[from] bincode::Error),
    /// The peer speaks another protocol version.
    #[error("protocol version {theirs} (we speak {PROTOCOL_VERSION})")]
    Version {
        /// Their version.
        theirs: u32,
    },
    /// The control directory is not safe to use.
    #[error("control directory {path} is not usable: {why}")]
    UnsafeDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> ControlError + 'a {
    move |source| ControlError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Write one frame.
pub fn write_frame<T: Serialize>(w: &mut impl Write, body: &T) -> Result<(), ControlError> {
    let payload = bincode::serialize(&Frame {
        version: PROTOCOL_VERSION,
        body,
    })?;
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    if len > MAX_FRAME {
        return Err(ControlError::FrameTooLong { len });
    }
    let mut buf = Vec::with_capacity(4 + payload.len());
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&payload);
    w.write_all(&buf)
        .map_err(io_err("writing frame to", Path::new("control socket")))
}

/// Read one frame.
pub fn read_frame<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> Result<T, ControlError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)
        .map_err(io_err("reading frame from", Path::new("control socket")))?;
    let len = u32::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(ControlError::FrameTooLong { len });
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload)
        .map_err(io_err("reading frame from", Path::new("control socket")))?;
    // The version comes first in the encoding: check it before decoding the body.
    let version: u32 = bincode::deserialize(&payload)?;
    if version != PROTOCOL_VERSION {
        return Err(ControlError::Version { theirs: version });
    }
    let frame: Frame<T> = bincode::deserialize(&payload)?;
    Ok(frame.body)
}

/// Directory of the control sockets of `uid` as seen with runtime dir `xdg` (the
/// `XDG_RUNTIME_DIR` value, if any).
pub fn control_dir(xdg: Option<&Path>, uid: u32) -> PathBuf {
    match xdg {
        Some(x) if x.is_absolute() && x.is_dir() => x.join("guievict"),
        _ => PathBuf::from(format!("/tmp/guievict-{uid}")),
    }
}

/// The directories a process of `uid` may keep its control socket and log in, best first:
/// `$XDG_RUNTIME_DIR/guievict` (when set to an existing absolute directory), then
/// `/tmp/guievict-<uid>`.
pub fn dir_candidates(xdg: Option<&Path>, uid: u32) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(x) = xdg.filter(|x| x.is_absolute() && x.is_dir()) {
        v.push(x.join("guievict"));
    }
    v.push(PathBuf::from(format!("/tmp/guievict-{uid}")));
    v
}

/// The first of [`dir_candidates`] that is (or could be made) safe, with the reasons the ones
/// before it were refused; `None` when none is: the caller then uses [`abstract_name`].
pub fn choose_dir(xdg: Option<&Path>, uid: u32) -> (Option<PathBuf>, Vec<String>) {
    let mut refused = Vec::new();
    for d in dir_candidates(xdg, uid) {
        match ensure_dir(&d) {
            Ok(()) => return (Some(d), refused),
            Err(e) => refused.push(e.to_string()),
        }
    }
    (None, refused)
}

/// The abstract socket name of process `pid` of `uid`, as a pseudo-path starting with `@`.
pub fn abstract_name(uid: u32, pid: u32) -> PathBuf {
    PathBuf::from(format!("@guievict-{uid}-{pid}"))
}

/// Whether `path` names an abstract socket (see [`abstract_name`]).
pub fn is_abstract(path: &Path) -> bool {
    path.as_os_str().as_encoded_bytes().first() == Some(&b'@')
}

fn abstract_addr(path: &Path) -> std::io::Result<std::os::unix::net::SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    let name = &path.as_os_str().as_encoded_bytes()[1..];
    std::os::unix::net::SocketAddr::from_abstract_name(name)
}

/// Connect to a control socket: a file, or an abstract name (see [`abstract_name`]).
pub fn connect(path: &Path) -> std::io::Result<UnixStream> {
    if is_abstract(path) {
        UnixStream::connect_addr(&abstract_addr(path)?)
    } else {
        UnixStream::connect(path)
    }
}

/// Candidate socket paths for process `pid` owned by `uid`, from the point of view of a client
/// (it checks its own runtime dir, the target's, the conventional `/run/user/<uid>`, the /tmp
/// fallback, and last the abstract name).
pub fn socket_candidates(pid: u32, uid: u32) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR") {
        dirs.push(PathBuf::from(x).join("guievict"));
    }
    // The target's own XDG_RUNTIME_DIR, when its environment is readable.
    if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) {
        for var in env.split(|&b| b == 0) {
            if let Some(v) = var.strip_prefix(b"XDG_RUNTIME_DIR=") {
                dirs.push(PathBuf::from(String::from_utf8_lossy(v).into_owned()).join("guievict"));
            }
        }
    }
    dirs.push(PathBuf::from(format!("/run/user/{uid}/guievict")));
    dirs.push(PathBuf::from(format!("/tmp/guievict-{uid}")));
    let mut out: Vec<PathBuf> = Vec::new();
    for d in dirs {
        let p = d.join(format!("{pid}.sock"));
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// What probing a candidate socket found.
#[derive(Debug, PartialEq, Eq)]
pub enum Probe {
    /// Someone listens there (for an abstract name: the process it is named after).
    Live,
    /// Nothing there.
    Absent,
    /// A socket file nobody listens on: left by a process that died (its PID may have been
    /// reused since).
    Stale,
    /// An abstract name held by another process than the one it names (squatted).
    Impostor(i32),
}

/// Probe the control socket at `path` of process `pid` (one short connection).
pub fn probe(path: &Path, pid: u32) -> Probe {
    match connect(path) {
        Ok(s) => {
            if is_abstract(path) {
                let cred =
                    nix::sys::socket::getsockopt(&s, nix::sys::socket::sockopt::PeerCredentials);
                match cred {
                    Ok(c) if c.pid() == pid as i32 => Probe::Live,
                    Ok(c) => Probe::Impostor(c.pid()),
                    Err(_) => Probe::Impostor(-1),
                }
            } else {
                Probe::Live
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused && !is_abstract(path) => {
            Probe::Stale
        }
        Err(_) => Probe::Absent,
    }
}

/// The control socket of process `pid` (owned by `uid`) that answers, looking also through
/// the process's root directory (other mount namespaces) and at its abstract name. Stale
/// socket files met on the way are removed.
pub fn find_socket(pid: u32, uid: u32) -> Option<PathBuf> {
    let mut cands = socket_candidates(pid, uid);
    let extra: Vec<PathBuf> = cands
        .iter()
        .map(|p| Path::new(&format!("/proc/{pid}/root")).join(p.strip_prefix("/").unwrap_or(p)))
        .collect();
    cands.extend(extra);
    cands.push(abstract_name(uid, pid));
    for p in cands {
        if !is_abstract(&p) && std::fs::symlink_metadata(&p).is_err() {
            continue;
        }
        match probe(&p, pid) {
            Probe::Live => return Some(p),
            Probe::Stale => {
                tracing::info!(path = %p.display(), "removing a stale control socket");
                let _ = std::fs::remove_file(&p);
            }
            Probe::Impostor(other) => {
                tracing::warn!(name = %p.display(), other, "abstract control name held by another process; ignored");
            }
            Probe::Absent => {}
        }
    }
    None
}

/// Processes of `uid` (any uid: `None`) listening on an abstract control name (read from
/// `/proc/net/unix`).
pub fn abstract_pids(uid: Option<u32>) -> Vec<u32> {
    let Ok(t) = std::fs::read_to_string("/proc/net/unix") else {
        return Vec::new();
    };
    let mut v: Vec<u32> = t
        .lines()
        .filter_map(|l| l.split_whitespace().nth(7))
        .filter_map(|p| p.strip_prefix("@guievict-"))
        .filter_map(|p| p.split_once('-'))
        .filter(|(u, _)| uid.is_none_or(|uid| u.parse() == Ok(uid)))
        .filter_map(|(_, p)| p.parse().ok())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Every user's control directories (`/tmp/guievict-*`, `/run/user/*/guievict`): what root
/// scans for `list`.
pub fn all_users_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/tmp") {
        for e in rd.flatten() {
            let n = e.file_name();
            let n = n.to_string_lossy();
            if n.strip_prefix("guievict-")
                .is_some_and(|u| u.parse::<u32>().is_ok())
            {
                dirs.push(e.path());
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir("/run/user") {
        for e in rd.flatten() {
            dirs.push(e.path().join("guievict"));
        }
    }
    dirs
}

/// Every control directory a client should scan for `list`.
pub fn list_dirs(uid: u32) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR") {
        dirs.push(PathBuf::from(x).join("guievict"));
    }
    for d in [
        PathBuf::from(format!("/run/user/{uid}/guievict")),
        PathBuf::from(format!("/tmp/guievict-{uid}")),
    ] {
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs
}

/// Logs of dead processes kept per control directory by [`sweep_dir`] (newest first).
pub const KEEP_DEAD_LOGS: usize = 16;

/// Tidy one control directory: remove socket files nobody listens on and rearm files of
/// gone processes, and keep only the newest [`KEEP_DEAD_LOGS`] logs of processes that no longer
/// run (a clean exit removes its own). Returns how many files were removed.
pub fn sweep_dir(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    let mut dead_logs: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((pid, ext)) = name.split_once('.') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let alive = Path::new(&format!("/proc/{pid}")).exists();
        match ext {
            "sock"
                if (!alive || probe(&e.path(), pid) == Probe::Stale)
                    && std::fs::remove_file(e.path()).is_ok() =>
            {
                removed += 1;
            }
            "log" | "log.1" if !alive => {
                let t = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                dead_logs.push((t, e.path()));
            }
            _ => {}
        }
    }
    dead_logs.sort_by_key(|l| std::cmp::Reverse(l.0));
    for (_, p) in dead_logs.into_iter().skip(KEEP_DEAD_LOGS) {
        if std::fs::remove_file(p).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Create (or check) the control directory: it must be a real directory (not a symlink) owned
/// by us. A directory of ours with a looser mode than 0700 is tightened (nobody else can have
/// made it; files in it are never followed through symlinks); one owned by anyone else is
/// refused — another user may have created it first to squat the name.
pub fn ensure_dir(dir: &Path) -> Result<(), ControlError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err("creating", dir)(e)),
    }
    let md = std::fs::symlink_metadata(dir).map_err(io_err("inspecting", dir))?;
    let uid = nix::unistd::geteuid().as_raw();
    if !md.is_dir() {
        return Err(ControlError::UnsafeDir {
            path: dir.into(),
            why: "not a directory".into(),
        });
    }
    if md.uid() != uid {
        return Err(ControlError::UnsafeDir {
            path: dir.into(),
            why: format!("owned by uid {} (we are {uid})", md.uid()),
        });
    }
    if md.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err("restricting", dir))?;
    }
    Ok(())
}

/// Bind the control socket of this process. A stale socket file of the same name is replaced.
/// A path starting with `@` binds the abstract name (see [`abstract_name`]).
pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    if is_abstract(path) {
        return abstract_addr(path)
            .and_then(|a| UnixListener::bind_addr(&a))
            .map_err(io_err("binding", path));
    }
    if let Some(dir) = path.parent() {
        ensure_dir(dir)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("removing stale", path)(e)),
    }
    UnixListener::bind(path).map_err(io_err("binding", path))
}

/// Whether a client with these credentials may use the socket of a process run by `our_uid`.
pub fn peer_allowed(peer_uid: u32, our_uid: u32) -> bool {
    peer_uid == our_uid || peer_uid == 0
}

thread_local! {
    /// The PID of the peer whose request this thread is handling (see [`peer_pid`]).
    static PEER: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
}

/// The PID of the process whose control request the calling thread is handling (from
/// `SO_PEERCRED`), e.g. the `guievict` that takes a group hold and must release it.
pub fn peer_pid() -> Option<u32> {
    PEER.with(|p| p.get())
}

/// Make [`peer_pid`] answer `pid` on the calling thread (the operations thread carries out
/// requests that a control worker read).
pub fn set_peer_pid(pid: Option<u32>) {
    PEER.with(|p| p.set(pid));
}

/// Serve one accepted connection: check the peer, read one request, answer it.
pub fn serve_one(mut stream: UnixStream, handler: &dyn Fn(&Request) -> Response) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let our_uid = nix::unistd::geteuid().as_raw();
    let cred = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials);
    match cred {
        Ok(c) if peer_allowed(c.uid(), our_uid) => {
            PEER.with(|p| p.set(u32::try_from(c.pid()).ok().filter(|&p| p > 0)));
        }
        Ok(c) => {
            tracing::warn!(
                peer_uid = c.uid(),
                peer_pid = c.pid(),
                "refused control connection from another user"
            );
            let _ = write_frame(
                &mut stream,
                &Response::Error {
                    kind: ErrorKind::Failed,
                    message: format!(
                        "permission denied: uid {} may not control a process of uid {our_uid}",
                        c.uid()
                    ),
                },
            );
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "SO_PEERCRED failed; refusing control connection");
            return;
        }
    }
    // Serve requests until the client closes; a bad frame ends the connection.
    loop {
        let req: Request = match read_frame(&mut stream) {
            Ok(r) => r,
            Err(ControlError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                return
            }
            Err(e) => {
                let kind = match e {
                    ControlError::Version { .. } => ErrorKind::VersionMismatch,
                    _ => ErrorKind::BadFrame,
                };
                tracing::warn!(error = %e, "bad control frame");
                let _ = write_frame(
                    &mut stream,
                    &Response::Error {
                        kind,
                        message: e.to_string(),
                    },
                );
                return;
            }
        };
        let resp = handler(&req);
        if write_frame(&mut stream, &resp).is_err() {
            return;
        }
    }
}

/// Client side: send one request to the socket at `path` and read the response.
pub fn request(path: &Path, req: &Request) -> Result<Response, ControlError> {
    let mut s = connect(path).map_err(io_err("connecting to", path))?;
    let _ = s.set_read_timeout(Some(match req {
        Request::Status => STATUS_TIMEOUT,
        _ => OPERATION_TIMEOUT,
    }));
    let _ = s.set_write_timeout(Some(IO_TIMEOUT));
    let sent = write_frame(&mut s, req);
    // A refusing server answers and closes before reading: its answer is still readable even
    // though our write failed.
    match read_frame(&mut s) {
        Ok(r) => Ok(r),
        Err(e) => Err(sent.err().unwrap_or(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let req = Request::Attach {
            display: ":3".into(),
            auth: Some(XAuth {
                name: "MIT-MAGIC-COOKIE-1".into(),
                data: vec![1, 2, 3],
            }),
            force: true,
            private: None,
        };
        let mut buf = Vec::new();
        write_frame(&mut buf, &req).unwrap();
        let back: Request = read_frame(&mut buf.as_slice()).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn rejects_garbage_and_versions() {
        let mut bad = vec![5, 0, 0, 0, 1, 0, 0, 0, 0xff];
        assert!(read_frame::<Request>(&mut bad.as_slice()).is_err());
        bad = (u32::MAX).to_le_bytes().to_vec();
        assert!(matches!(
            read_frame::<Request>(&mut bad.as_slice()),
            Err(ControlError::FrameTooLong { .. })
        ));
        let payload = bincode::serialize(&Frame {
            version: 99,
            body: Request::Status,
        })
        .unwrap();
        let mut buf = (payload.len() as u32).to_le_bytes().to_vec();
        buf.extend(payload);
        assert!(matches!(
            read_frame::<Request>(&mut buf.as_slice()),
            Err(ControlError::Version { theirs: 99 })
        ));
    }

    #[test]
    fn peer_policy() {
        assert!(peer_allowed(1000, 1000));
        assert!(peer_allowed(0, 1000));
        assert!(!peer_allowed(65534, 1000));
    }
}
