//! Where control sockets live and how a client finds one. A uid, a runtime directory and a PID
//! flow in; out come the directory a process keeps its socket and log in
//! (`$XDG_RUNTIME_DIR/guievict`, else `/tmp/guievict-<uid>`, made or checked to be a real
//! directory of ours with mode 0700; when neither is usable, the abstract name
//! `@guievict-<uid>-<pid>`), the listening socket bound there, and for a client the socket of
//! a given process that answers (stale files removed, an abstract name accepted only from the
//! process it names) or every directory to scan for `list`, tidied of what dead processes left.

use super::frame::{io_err, ControlError};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The file whose appearance makes a quiesced process
/// ([`Request::Quiesce`](crate::control::Request::Quiesce)) listen again on `socket`:
/// `<pid>.rearm` next to `<pid>.sock`.
pub fn rearm_path(socket: &Path) -> PathBuf {
    socket.with_extension("rearm")
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
