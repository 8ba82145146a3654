//! Every `unsafe` operation of the hijack library lives here, behind small safe functions:
//! raw file descriptors flow in (from `dup`, `recvmsg` ancillary data, the process's fd table)
//! and come out as owned handles or plain results; the constructor's self-location check and
//! signal-mask and `atexit` plumbing also pass through here.

use std::ffi::c_void;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Take ownership of a descriptor that the caller just obtained and nobody else owns.
///
/// # Safety
/// `fd` must be an open descriptor that no other owner will close.
unsafe fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: guaranteed by the caller (see the function's contract).
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `dup(fd)` returning an owned descriptor (with `FD_CLOEXEC` set).
pub fn dup_owned(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC does not touch memory; an invalid fd yields EBADF.
    let r = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `r` is a brand-new descriptor returned by the kernel to us alone.
    Ok(unsafe { own(r) })
}

/// Wrap descriptors that arrived in `SCM_RIGHTS` ancillary data (new, ours alone).
pub fn own_received(fds: &[RawFd]) -> Vec<OwnedFd> {
    fds.iter()
        // SAFETY: descriptors installed by the kernel during our recvmsg belong to nobody else.
        .map(|&fd| unsafe { own(fd) })
        .collect()
}

/// `poll(2)` over raw pollfd records; EINTR is reported as zero ready descriptors.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: the pointer/length pair describes a valid, exclusively borrowed slice.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(r as usize)
}

/// Block every blockable signal in the calling thread; returns the previous mask.
pub fn block_all_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigfillset/pthread_sigmask only write the given sets.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        old
    }
}

/// Restore a signal mask saved by [`block_all_signals`].
pub fn restore_signals(old: &libc::sigset_t) {
    // SAFETY: `old` is a valid sigset_t obtained from pthread_sigmask.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut());
    }
}

/// Register a plain function to run at process exit.
pub fn at_exit(f: extern "C" fn()) {
    // SAFETY: `f` is a 'static function pointer with the C ABI atexit expects.
    unsafe {
        libc::atexit(f);
    }
}

/// The object file (path and load base) that contains `addr`, as the dynamic loader sees it.
fn object_of(addr: *const c_void) -> Option<usize> {
    // SAFETY: Dl_info is plain data; dladdr only reads loader tables and writes `info`.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(addr, &mut info) == 0 {
            return None;
        }
        Some(info.dli_fbase as usize)
    }
}

/// True when this code was linked into the main executable (the rlib inside the `guievict`
/// binary or a test binary) rather than loaded as `libguievict_hijack.so`. The constructor
/// uses this to stay inert outside the cdylib.
pub fn linked_into_main_executable() -> bool {
    // SAFETY: getauxval only reads the auxiliary vector.
    let entry = unsafe { libc::getauxval(libc::AT_ENTRY) } as usize;
    let here = object_of(linked_into_main_executable as *const c_void);
    let main = object_of(entry as *const c_void);
    match (here, main) {
        (Some(h), Some(m)) => h == m,
        // If the loader cannot tell, be inert: doing nothing is always safe.
        _ => true,
    }
}

/// Add `value` to an eventfd given by raw number, without allocating (used at the safe point).
pub fn eventfd_add(fd: RawFd, value: u64) -> io::Result<()> {
    let bytes = value.to_ne_bytes();
    // SAFETY: writes 8 bytes from a live stack buffer; an invalid fd yields EBADF.
    let r = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `dup2(old, new)` for a descriptor number the caller does not own (the application's).
pub fn dup2_raw(old: RawFd, new: RawFd) -> io::Result<()> {
    // SAFETY: dup2 only manipulates the fd table; invalid numbers yield EBADF.
    let r = unsafe { libc::dup2(old, new) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `fcntl(fd, cmd)` / `fcntl(fd, cmd, arg)` for integer commands (F_GETFL/F_SETFL/F_GETFD/F_SETFD).
pub fn fcntl_int(fd: RawFd, cmd: libc::c_int, arg: libc::c_int) -> io::Result<libc::c_int> {
    // SAFETY: the integer fcntl commands used here do not touch memory.
    let r = unsafe { libc::fcntl(fd, cmd, arg) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r)
}

/// A pidfd for process `pid` (`pidfd_open`, Linux 5.3): readable once the process has exited.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0u32) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// Ask the scheduler for a short time slice for the calling thread (`sched_setattr` with
/// `sched_runtime`, a latency hint for normal threads since Linux 6.12; unprivileged, nice value
/// unchanged). A thread with a short slice gets an early deadline when it wakes, so on a busy
/// core it runs soon after its socket becomes readable instead of after the current slice of a
/// CPU-bound process. Older kernels ignore the field or refuse: then nothing changes.
pub fn short_slice(slice: std::time::Duration) -> io::Result<()> {
    // SAFETY: getpriority only reads the calling thread's nice value.
    let nice = unsafe {
        *libc::__errno_location() = 0;
        libc::getpriority(libc::PRIO_PROCESS, 0)
    };
    // SAFETY: sched_attr is plain data; zeroed is a valid value of it.
    let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
    attr.size = std::mem::size_of::<libc::sched_attr>() as u32;
    attr.sched_policy = libc::SCHED_OTHER as u32;
    attr.sched_nice = nice;
    attr.sched_runtime = slice.as_nanos() as u64;
    // SAFETY: pid 0 is the calling thread; the pointer is to a live, correctly sized struct.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            0,
            &attr as *const libc::sched_attr,
            0u32,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
