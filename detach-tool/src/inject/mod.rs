//! The ptrace injector behind `guievict hijack`. A process id flows in; the hijack library
//! flows into that process, and out comes what happened ([`Outcome`]) or a typed refusal
//! ([`InjectError`]). Two phases:
//!
//! 1. **Load.** One thread that is blocked in an idle system call (poll, select, read, …) is
//!    seized and made to call `dlopen(<library>)`; every other thread keeps running, so the
//!    loader and allocator locks behave exactly as if the application had called `dlopen`
//!    itself. The library's constructor starts its relay and control threads.
//! 2. **Interpose.** Every thread is seized and stopped; the safe-point test checks that none is
//!    in the middle of writing an X request (else they run a few ms and are stopped again,
//!    bounded). Then one thread calls `guievict_interpose`, which swaps the X descriptors without
//!    allocating or locking, and every thread is resumed.
//!
//! Registers and borrowed stack bytes are restored by RAII guards on every path; a thread
//! interrupted inside a system call is rewound so the call restarts; signals that arrive
//! meanwhile are delivered, never swallowed. x86_64 only.

#![allow(unsafe_code)]

pub mod elf;
pub mod procfs;
pub mod ptrace;
pub mod safepoint;

use guievict_hijack::{xfd, INTERPOSE_SYMBOL, LIBRARY_FILE};
use nix::errno::Errno;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why an injection was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    /// No such process.
    #[error("process {pid} does not exist")]
    NoSuchProcess {
        /// Target.
        pid: i32,
    },
    /// The process belongs to another user.
    #[error("process {pid} belongs to uid {owner}, not to you (uid {us}); only its owner or root may hijack it")]
    NotOwner {
        /// Target.
        pid: i32,
        /// Its owner.
        owner: u32,
        /// Our effective uid.
        us: u32,
    },
    /// The process has no X connection.
    #[error(
        "process {pid} has no X connection (no socket connected to an X server); nothing to hijack"
    )]
    NoXConnection {
        /// Target.
        pid: i32,
    },
    /// `--fd` names no socket of the process.
    #[error("process {pid} has no socket on descriptor {fd}")]
    NoSuchFd {
        /// Target.
        pid: i32,
        /// The descriptor asked for.
        fd: i32,
    },
    /// Dynamically linked, but libc is not mapped (the process is still starting).
    #[error("{exe} (process {pid}) has no libc mapped yet: it is still starting (or does not use libc); try again once it runs")]
    NoLibc {
        /// Process ID.
        pid: i32,
        /// Its executable.
        exe: String,
    },
    /// Statically linked: no dynamic loader to ask for `dlopen`.
    #[error("{exe} (process {pid}) is statically linked, so a library cannot be injected into it; start it with `guievict run` instead")]
    StaticBinary {
        /// Target.
        pid: i32,
        /// Its executable.
        exe: String,
    },
    /// No `dlopen` in the target's C library.
    #[error("process {pid}: no dlopen found in {libc} (glibc >= 2.34 exports it from libc.so.6; older ones need libdl loaded)")]
    NoDlopen {
        /// Target.
        pid: i32,
        /// The C library inspected.
        libc: String,
    },
    /// The process exited during the injection.
    #[error("process {pid} exited during the injection (it was closing while guievict attached to it); nothing to hijack")]
    TraceeDied {
        /// Target.
        pid: i32,
    },
    /// A thread vanished while we needed it.
    #[error("thread {tid} of process {pid} exited during the injection")]
    ThreadGone {
        /// Target.
        pid: i32,
        /// Thread.
        tid: i32,
    },
    /// ptrace is not permitted.
    #[error("not allowed to trace process {pid}: {hint}")]
    PtraceDenied {
        /// Target.
        pid: i32,
        /// What to do.
        hint: String,
    },
    /// A ptrace operation failed.
    #[error("{op} on thread {tid} of process {pid} failed: {source}")]
    Ptrace {
        /// Target.
        pid: i32,
        /// Thread.
        tid: i32,
        /// Operation.
        op: &'static str,
        /// Error.
        source: Errno,
    },
    /// A procfs file could not be read.
    #[error("process {pid}: cannot read {path}: {message}")]
    Proc {
        /// Target.
        pid: i32,
        /// File.
        path: String,
        /// Why.
        message: String,
    },
    /// An ELF file could not be parsed.
    #[error("cannot read ELF file {path}: {message}")]
    Elf {
        /// File.
        path: String,
        /// Why.
        message: String,
    },
    /// Something took too long.
    #[error("process {pid}: timed out waiting for {what}")]
    Timeout {
        /// Target.
        pid: i32,
        /// What.
        what: String,
    },
    /// No thread was idle enough to borrow for `dlopen`.
    #[error("process {pid}: no thread blocked in an idle system call after {tries} tries; retry when the application is idle")]
    NoIdleThread {
        /// Target.
        pid: i32,
        /// Attempts.
        tries: u32,
    },
    /// Never found a moment with no X request half-written.
    #[error("process {pid}: no safe point after {tries} tries ({reason}); the application is writing X requests nonstop, retry later")]
    NoSafePoint {
        /// Target.
        pid: i32,
        /// Attempts.
        tries: u32,
        /// Last reason.
        reason: String,
    },
    /// The called function faulted.
    #[error("process {pid}: the injected call to {func:#x} faulted at {rip:#x}; registers were restored")]
    CallCrashed {
        /// Target.
        pid: i32,
        /// Function called.
        func: u64,
        /// Where it faulted.
        rip: u64,
    },
    /// dlopen returned NULL.
    #[error("process {pid}: dlopen(\"{path}\") failed: {message}")]
    DlopenFailed {
        /// Target.
        pid: i32,
        /// Path given to dlopen.
        path: String,
        /// dlerror() text.
        message: String,
    },
    /// The library could not interpose.
    #[error("process {pid}: interposing the X connection failed: {source}")]
    InterposeFailed {
        /// Target.
        pid: i32,
        /// errno from the library.
        source: Errno,
    },
    /// The hijack library is unusable.
    #[error("hijack library: {0}")]
    Library(String),
    /// Not x86_64.
    #[error("injection is implemented for x86_64 only")]
    UnsupportedArch,
}

impl InjectError {
    /// Map a procfs I/O error: a vanished /proc/<pid> means the process is gone.
    pub fn from_proc(pid: i32, path: &str, e: std::io::Error) -> InjectError {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return InjectError::NoSuchProcess { pid };
        }
        InjectError::Proc {
            pid,
            path: path.to_string(),
            message: e.to_string(),
        }
    }
}

/// What to inject and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The hijack library (a path valid in this process).
    pub library: PathBuf,
    /// Interpose only this descriptor (default: every X connection).
    pub fd: Option<i32>,
    /// Safe-point attempts before giving up.
    pub max_tries: u32,
}

/// What an injection did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// Target.
    pub pid: i32,
    /// The library was already loaded (nothing was injected).
    pub already_loaded: bool,
    /// Connections interposed now.
    pub interposed: i32,
    /// X descriptors found before injecting.
    pub x_fds: Vec<i32>,
    /// Library path as the target sees it.
    pub library_in_target: String,
    /// Safe-point attempts used.
    pub tries: u32,
    /// Wall time of the whole injection, in milliseconds.
    pub elapsed_ms: f64,
}

/// Syscalls a thread idles in (numbers on x86_64): safe to borrow the thread for `dlopen`.
const IDLE_SYSCALLS: &[u64] = &[
    0, 7, 23, 34, 35, 45, 47, 61, 128, 130, 230, 232, 270, 271, 281, 441,
];

/// `futex` (x86_64): what a thread waiting on a condition variable is blocked in.
const NR_FUTEX: u64 = 202;
/// `restart_syscall` (x86_64): a wait with a timeout resumed after a stop.
const NR_RESTART_SYSCALL: u64 = 219;

/// The X connections of `pid`: (fd, peer). Uses `pidfd_getfd` + `getpeername`.
pub fn x_fds(pid: i32) -> Result<Vec<(i32, xfd::XPeer)>, InjectError> {
    let mut out = Vec::new();
    for fd in procfs::socket_fds(pid)? {
        match ptrace::remote_fd(pid, fd) {
            Ok(local) => {
                if let Some(p) = xfd::peer_of(local.as_raw_fd()) {
                    out.push((fd, p));
                }
            }
            Err(Errno::EPERM) => {
                return Err(InjectError::PtraceDenied {
                    pid,
                    hint: "pidfd_getfd was refused (same uid and ptrace permission needed)".into(),
                })
            }
            Err(Errno::ESRCH) => return Err(InjectError::TraceeDied { pid }),
            Err(_) => {}
        }
    }
    Ok(out)
}

/// Whether the hijack library is mapped in `pid`.
pub fn library_loaded(maps: &[procfs::Mapping]) -> bool {
    maps.iter()
        .any(|m| procfs::file_name(&m.path) == LIBRARY_FILE)
}

/// The process exists, is not exiting, and is ours (or we are root): checked before anything
/// else, so that someone else's process is refused as such, whatever else is missing.
pub fn check_target(pid: i32) -> Result<(), InjectError> {
    if !Path::new(&format!("/proc/{pid}")).exists() || procfs::is_exiting(pid) {
        return Err(InjectError::NoSuchProcess { pid });
    }
    let owner = procfs::owner_uid(pid)?;
    let us = nix::unistd::geteuid().as_raw();
    if us != 0 && owner != us {
        return Err(InjectError::NotOwner { pid, owner, us });
    }
    Ok(())
}

fn check_dynamic(pid: i32, maps: &[procfs::Mapping]) -> Result<procfs::Mapping, InjectError> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| format!("/proc/{pid}/exe"));
    let dynamic = elf::has_interpreter(Path::new(&format!("/proc/{pid}/exe")))?;
    let libc = procfs::find_object(maps, |p| {
        let f = procfs::file_name(p);
        f == "libc.so.6" || (f.starts_with("libc-") && f.ends_with(".so"))
    });
    match (dynamic, libc) {
        (true, Some(l)) => Ok(l.clone()),
        // Just exec'd: its dynamic loader has not mapped libc yet (or it never links libc).
        (true, None) => Err(InjectError::NoLibc { pid, exe }),
        (false, _) => Err(InjectError::StaticBinary { pid, exe }),
    }
}

/// The library path as the target will resolve it: ours if the target sees the same file and
/// can read it, else a copy in `/tmp/guievict-lib-<our uid>/` inside the target's root — a
/// directory of ours (0755, not a symlink, refused when someone else made it) holding a 0644
/// copy that the target can read and nobody else can change. (Root hijacking another user's
/// app from a build tree under a 0700 home is the case that needs it.)
fn library_in_target(pid: i32, lib: &Path) -> Result<String, InjectError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let here = std::fs::metadata(lib)
        .map_err(|e| InjectError::Library(format!("{}: {e}", lib.display())))?;
    let lib_str = lib.display().to_string();
    let us = nix::unistd::geteuid().as_raw();
    let target_uid = procfs::owner_uid(pid)?;
    if let Ok(there) = std::fs::metadata(procfs::in_root(pid, &lib_str)) {
        let same = there.dev() == here.dev() && there.ino() == here.ino();
        if same && (target_uid == us || readable_by_anyone(lib)) {
            return Ok(lib_str);
        }
    }
    let dir_in = format!("/tmp/guievict-lib-{us}");
    let dir = procfs::in_root(pid, &dir_in);
    match std::fs::DirBuilder::new().mode(0o755).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(InjectError::Library(format!(
                "creating {}: {e}",
                dir.display()
            )))
        }
    }
    let md = std::fs::symlink_metadata(&dir)
        .map_err(|e| InjectError::Library(format!("{}: {e}", dir.display())))?;
    if !md.is_dir() || md.uid() != us {
        return Err(InjectError::Library(format!(
            "{} is not a directory of ours (uid {us}): refusing to place the library there",
            dir.display()
        )));
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| InjectError::Library(format!("{}: {e}", dir.display())))?;
    // Copied under a name of this process, then renamed into place: a process that has the
    // previous copy mapped keeps it.
    let tmp = dir.join(format!(".{LIBRARY_FILE}.{}", std::process::id()));
    let dest = dir.join(LIBRARY_FILE);
    std::fs::copy(lib, &tmp)
        .and_then(|_| std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)))
        .and_then(|_| std::fs::rename(&tmp, &dest))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            InjectError::Library(format!("copying into {}: {e}", dest.display()))
        })?;
    Ok(format!("{dir_in}/{LIBRARY_FILE}"))
}

/// Whether every user can read `file`: world-readable, in directories everyone may search.
fn readable_by_anyone(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode()).ok();
    mode(file).is_some_and(|m| m & 0o004 != 0)
        && file
            .ancestors()
            .skip(1)
            .all(|d| d.as_os_str().is_empty() || mode(d).is_some_and(|m| m & 0o001 != 0))
}

fn test_hook(stage: &str, pid: i32) {
    if std::env::var("GUIEVICT_INJECT_TEST_HOOK").as_deref() == Ok(&format!("kill-{stage}")) {
        tracing::warn!(pid, stage, "test hook: killing the target");
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Phase 1: borrow an idle thread and `dlopen` the library.
fn load(
    pid: i32,
    libc: &procfs::Mapping,
    path_in_target: &str,
    max_tries: u32,
    xfds: &[i32],
    cache: &mut safepoint::ReadCache,
) -> Result<(), InjectError> {
    let libc_obj = elf::Object::load(&procfs::in_root(pid, &libc.path), libc)?;
    let dlopen = libc_obj.symbol("dlopen")?;
    let dlerror = libc_obj.symbol("dlerror")?;
    let (Some(dlopen), Some(dlerror)) = (dlopen, dlerror) else {
        return Err(InjectError::NoDlopen {
            pid,
            libc: libc.path.clone(),
        });
    };
    let mut path = path_in_target.as_bytes().to_vec();
    path.push(0);
    // A thread waiting on a condition variable will do as well (a busy multi-threaded client's
    // workers wait for replies that way); its futex wait is classified once stopped.
    let writers = safepoint::Writers::of(pid, &procfs::maps(pid)?)?;
    let mut passed_over = std::collections::HashSet::new();
    for attempt in 0..max_tries {
        if attempt > 0 && library_loaded(&procfs::maps(pid)?) {
            // A dlopen started by an injector that vanished has finished meanwhile; give its
            // constructor a moment to start the library's threads.
            std::thread::sleep(Duration::from_millis(50));
            return Ok(());
        }
        let tids = procfs::threads(pid)?;
        // The main thread first: it is the event loop of most X programs; then threads idling
        // in a plain idle call, then those in a futex wait.
        let idle = tids
            .iter()
            .copied()
            .filter_map(|t| {
                let n = procfs::current_syscall(pid, t)? as u64;
                let rank = if IDLE_SYSCALLS.contains(&n) {
                    0
                } else if n == NR_FUTEX || n == NR_RESTART_SYSCALL {
                    1
                } else {
                    return None;
                };
                Some((t, rank))
            })
            // A thread that just failed the closer look goes last (the main thread waiting in
            // pthread_join, say), so that the others get their turn.
            .min_by_key(|&(t, rank)| (rank, passed_over.contains(&t), t != pid))
            .map(|(t, _)| t);
        let Some(tid) = idle else {
            // A process on its way out has no idle thread and never will.
            if procfs::is_leaving(pid) {
                return Err(InjectError::TraceeDied { pid });
            }
            std::thread::sleep(Duration::from_millis(2));
            continue;
        };
        let stopped = match ptrace::Stopped::one(pid, tid) {
            Ok(s) => s,
            Err(InjectError::ThreadGone { .. }) => continue,
            Err(e) => return Err(e),
        };
        let regs = ptrace::regs(pid, tid)?;
        let in_idle = ptrace::interrupted_syscall(&regs)
            .is_some_and(|n| IDLE_SYSCALLS.contains(&n))
            || safepoint::cond_waiting(pid, &regs, &writers)
            || safepoint::restarted_idle(pid, &regs, &writers);
        if !in_idle {
            passed_over.insert(tid);
            if passed_over.len() >= tids.len() {
                passed_over.clear();
            }
            tracing::debug!(tid, attempt, "thread left its idle syscall; retrying");
            drop(stopped);
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        if safepoint::reading_regular_file(pid, &regs) {
            // Most likely finishing the dlopen of an injector that vanished: wait for it.
            tracing::debug!(tid, attempt, "thread is reading a file, not idle; retrying");
            drop(stopped);
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        safepoint::remember(pid, tid, &regs, xfds, cache);
        test_hook("before-dlopen", pid);
        let mut guard = ptrace::CallGuard::new(pid, tid)?;
        let handle = guard.call(dlopen, &[ptrace::DATA, libc::RTLD_NOW as u64], &path)?;
        if handle == 0 {
            let msg_ptr = guard.call(dlerror, &[], &[])?;
            let message = if msg_ptr == 0 {
                "unknown error (dlerror returned NULL)".to_string()
            } else {
                ptrace::read_cstr(pid, msg_ptr, 4096)?
            };
            guard.restore()?;
            return Err(InjectError::DlopenFailed {
                pid,
                path: path_in_target.to_string(),
                message,
            });
        }
        guard.restore()?;
        drop(guard);
        drop(stopped);
        return Ok(());
    }
    Err(InjectError::NoIdleThread {
        pid,
        tries: max_tries,
    })
}

/// Phase 2: stop every thread at a safe point and call `guievict_interpose(fd)`.
fn interpose(
    pid: i32,
    fd: Option<i32>,
    xfds: &[i32],
    max_tries: u32,
    cache: &mut safepoint::ReadCache,
) -> Result<(i32, u32), InjectError> {
    let maps = procfs::maps(pid)?;
    let lib = maps
        .iter()
        .filter(|m| procfs::file_name(&m.path) == LIBRARY_FILE)
        .min_by_key(|m| m.start)
        .ok_or_else(|| InjectError::Library("library not mapped after dlopen".into()))?;
    let obj = elf::Object::load(&procfs::in_root(pid, &lib.path), lib)?;
    let entry = obj
        .symbol(INTERPOSE_SYMBOL)?
        .ok_or_else(|| InjectError::Library(format!("{} lacks {INTERPOSE_SYMBOL}", lib.path)))?;
    let writers = safepoint::Writers::of(pid, &maps)?;
    tracing::debug!(
        ranges = writers.len(),
        cond_waits = writers.cond_wait_ranges(),
        "writer function ranges"
    );
    let mut stopped = ptrace::Stopped::all(pid)?;
    test_hook("after-seize", pid);
    let mut reason = String::new();
    let mut maps = procfs::maps(pid)?;
    // The thread that was unsafe last time is looked at first: it usually still is, and the
    // attempt then costs one register read.
    let mut last_unsafe: Option<i32> = None;
    for attempt in 1..=max_tries {
        // A thread caught running inside libxcb is let run alone for a moment every other
        // attempt (it then usually blocks waiting for its reply, which is safe); otherwise
        // every thread runs for a while.
        let running = reason.contains("(running");
        match last_unsafe {
            Some(t) if attempt > 1 && attempt % 2 == 0 && running => {
                stopped.nudge(t, Duration::from_micros(300))?;
            }
            _ if attempt > 1 => {
                stopped.resume()?;
                std::thread::sleep(Duration::from_micros(200 + 597 * u64::from(attempt % 5)));
                stopped.restop()?;
            }
            _ => {}
        }
        let mut all_safe = true;
        let mut tids = stopped.tids();
        if let Some(i) = last_unsafe.and_then(|t| tids.iter().position(|x| *x == t)) {
            tids.swap(0, i);
        }
        for tid in tids {
            let mut r = safepoint::unsafe_reason(pid, tid, &maps, &writers, xfds, cache)?;
            if r.as_ref().is_some_and(|r| r.contains("is not mapped")) {
                // A stack mapped since the maps were read (a new thread): read them again.
                maps = procfs::maps(pid)?;
                r = safepoint::unsafe_reason(pid, tid, &maps, &writers, xfds, cache)?;
            }
            if let Some(r) = r {
                reason = r;
                last_unsafe = Some(tid);
                all_safe = false;
                break;
            }
        }
        if !all_safe {
            tracing::debug!(attempt, %reason, "not at a safe point");
            continue;
        }
        // Borrow a thread stopped in a system call when there is one: only such a thread can
        // make the self-restoring return pages (see `ptrace::return_code`).
        let in_syscall = |t: &i32| {
            ptrace::regs(pid, *t).is_ok_and(|r| ptrace::interrupted_syscall(&r).is_some())
        };
        let tids = stopped.tids();
        let tid = if tids.contains(&pid) && in_syscall(&pid) {
            pid
        } else {
            tids.iter()
                .copied()
                .find(in_syscall)
                .unwrap_or(if tids.contains(&pid) { pid } else { tids[0] })
        };
        let mut guard = ptrace::CallGuard::new(pid, tid)?;
        let arg = fd.map_or(u64::from(u32::MAX), |f| u64::from(f as u32));
        let rax = guard.call(entry, &[arg], &[])?;
        guard.restore()?;
        drop(guard);
        drop(stopped);
        let r = rax as u32 as i32;
        if r < 0 {
            return Err(InjectError::InterposeFailed {
                pid,
                source: Errno::from_raw(-r),
            });
        }
        return Ok((r, attempt));
    }
    Err(InjectError::NoSafePoint {
        pid,
        tries: max_tries,
        reason,
    })
}

/// Status of the hijack library already in `pid`, through its control socket.
fn library_status(pid: i32) -> Option<guievict_hijack::control::Status> {
    let uid = procfs::owner_uid(pid).ok()?;
    let sock = guievict_hijack::control::find_socket(pid as u32, uid)?;
    match guievict_hijack::control::request(&sock, &guievict_hijack::control::Request::Status) {
        Ok(guievict_hijack::control::Response::Status(s)) => Some(s),
        _ => None,
    }
}

/// Inject the hijack library into `pid` and interpose its X connections.
pub fn hijack(pid: i32, opts: &Options) -> Result<Outcome, InjectError> {
    // A process that is closing loses its memory map (/proc/PID/exe, maps) and refuses ptrace
    // before it turns zombie; whatever step noticed first, say what happened.
    hijack_inner(pid, opts).map_err(|e| match e {
        InjectError::NoSuchProcess { .. } | InjectError::TraceeDied { .. } => e,
        _ if procfs::is_leaving(pid) => InjectError::TraceeDied { pid },
        _ => e,
    })
}

fn hijack_inner(pid: i32, opts: &Options) -> Result<Outcome, InjectError> {
    if !cfg!(target_arch = "x86_64") {
        return Err(InjectError::UnsupportedArch);
    }
    let t0 = Instant::now();
    check_target(pid)?;
    let maps = procfs::maps(pid)?;
    let libc = check_dynamic(pid, &maps)?;
    let already = library_loaded(&maps);
    // When the library is loaded, the relay's own server connections show up here too; the
    // library itself tells them apart (it skips descriptors it holds).
    let mut found = x_fds(pid)?;
    // Descriptors a thread may poll to read X: the X connections, and once interposed, the
    // application ends the library put in their place.
    let mut read_fds: Vec<i32> = Vec::new();
    if already {
        // The library's own server connections are not the application's: ask it which they
        // are (a library whose control socket does not answer is treated as knowing none).
        if let Some(st) = library_status(pid) {
            found.retain(|(fd, _)| !st.own_fds.contains(fd));
            read_fds.extend(st.connections.iter().map(|c| c.app_fd));
        }
    }
    let xfd_nums: Vec<i32> = found.iter().map(|(fd, _)| *fd).collect();
    read_fds.extend(&xfd_nums);
    if let Some(fd) = opts.fd {
        if !procfs::socket_fds(pid)?.contains(&fd) {
            return Err(InjectError::NoSuchFd { pid, fd });
        }
    }
    if already && found.is_empty() {
        // Loaded and every X connection already interposed.
        return Ok(Outcome {
            pid,
            already_loaded: true,
            interposed: 0,
            x_fds: Vec::new(),
            library_in_target: String::new(),
            tries: 0,
            elapsed_ms: t0.elapsed().as_secs_f64() * 1e3,
        });
    }
    if found.is_empty() && opts.fd.is_none() {
        return Err(InjectError::NoXConnection { pid });
    }
    let path = library_in_target(pid, &opts.library)?;
    let mut cache = safepoint::ReadCache::new();
    if !already {
        load(pid, &libc, &path, opts.max_tries, &read_fds, &mut cache)?;
    }
    let (n, tries) = interpose(pid, opts.fd, &read_fds, opts.max_tries, &mut cache)?;
    if n == 0 && !already {
        return Err(InjectError::NoXConnection { pid });
    }
    Ok(Outcome {
        pid,
        already_loaded: already,
        interposed: n,
        x_fds: xfd_nums,
        library_in_target: path,
        tries,
        elapsed_ms: t0.elapsed().as_secs_f64() * 1e3,
    })
}
