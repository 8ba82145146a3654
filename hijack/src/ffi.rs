//! The hijack library's `unsafe` operations on descriptors and the process, behind small
//! functions: raw file descriptors flow in (from `dup`, `recvmsg` ancillary data, the
//! process's fd table) and come out as owned handles or plain results; the constructor's
//! self-location check and signal-mask and `atexit` plumbing also pass through here. A function
//! that is safe to call takes descriptors as `BorrowedFd`/`OwnedFd` or creates them itself;
//! where the caller must vouch for a raw descriptor number, the function is `unsafe` and says
//! what in `# Safety`. The other `unsafe` blocks of the library are the MIT-SHM mappings in
//! `shmmem.rs`, the borrowing of the app's descriptor and the hand-over of parked descriptors in
//! `interpose.rs`, one `from_raw_fd` of a freshly connected stream in
//! `session/connect.rs`, and the two modules of inline translation (issue 16): `got.rs`, which
//! writes hook addresses into libxcb's GOT, and `hooks.rs`, the `extern "C"` functions that
//! stand in for libc's in libxcb and read libxcb's iovecs, message headers and pollfd records —
//! each with its `SAFETY` note.

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use std::ffi::c_void;
use std::io;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Take ownership of a descriptor that the caller just obtained and nobody else owns.
///
/// # Safety
/// `fd` must be an open descriptor (not -1) that no other owner will close or use through its
/// number afterwards.
pub unsafe fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: guaranteed by the caller (see the function's contract).
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `dup(fd)` returning an owned descriptor (with `FD_CLOEXEC` set).
pub fn dup_owned(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC does not touch memory; `fd` is borrowed for the call.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `r` is a brand-new descriptor returned by the kernel to us alone.
    Ok(unsafe { own(r) })
}

/// `recvmsg(2)` on `fd` into `buf`, `cmsg` as the ancillary-data buffer
/// (`nix::cmsg_space!`): the number of bytes read and the descriptors that arrived with them
/// (`SCM_RIGHTS`), owned. The descriptors are taken over here, where they are received, so no
/// raw number of them leaves this function.
pub fn recv_with_fds(
    fd: RawFd,
    buf: &mut [u8],
    cmsg: &mut Vec<u8>,
    flags: MsgFlags,
) -> nix::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(fd, &mut iov, Some(cmsg), flags)?;
    let mut fds = Vec::new();
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmRights(raw) = c {
                // SAFETY: the kernel installed these descriptors in this process during the
                // recvmsg above; nobody else has their numbers, and `msg` (the only other
                // place they are named) is dropped unused at the end of this function.
                fds.extend(raw.into_iter().map(|fd| unsafe { own(fd) }));
            }
        }
    }
    Ok((msg.bytes, fds))
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

/// Add `value` to an eventfd, without allocating (used at the safe point).
pub fn eventfd_add(fd: BorrowedFd<'_>, value: u64) -> io::Result<()> {
    let bytes = value.to_ne_bytes();
    // SAFETY: writes 8 bytes from a live stack buffer to a descriptor borrowed for the call.
    let r = unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `dup2(old, new)` onto a descriptor number the caller does not own (the application's): from
/// then on `new` names `old`'s file, and whatever `new` named before is closed.
///
/// # Safety
/// Every user of descriptor `new` must be fine with it naming another file afterwards: the
/// application's X socket at the safe point (all its threads stopped, the new file a socket of
/// the same kind with the same flags), or putting back the file it named before. `new` must not
/// be a descriptor owned by this library's Rust code (an `OwnedFd` would later close a file it
/// did not open).
pub unsafe fn dup2_raw(old: BorrowedFd<'_>, new: RawFd) -> io::Result<()> {
    // SAFETY: dup2 only manipulates the fd table (an invalid `new` yields EBADF); that the
    // replacement is wanted is the caller's promise (see `# Safety`).
    let r = unsafe { libc::dup2(old.as_raw_fd(), new) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The integer `fcntl` commands [`fcntl_int`] may run: none of them touches memory.
#[derive(Debug, Clone, Copy)]
pub enum FcntlInt {
    /// `F_GETFL`: the file status flags (`O_NONBLOCK`, …).
    GetFl,
    /// `F_SETFL`: set the file status flags.
    SetFl,
    /// `F_GETFD`: the descriptor flags (`FD_CLOEXEC`).
    GetFd,
    /// `F_SETFD`: set the descriptor flags.
    SetFd,
}

/// `fcntl(fd, cmd, arg)` for the integer commands of [`FcntlInt`].
pub fn fcntl_int(fd: BorrowedFd<'_>, cmd: FcntlInt, arg: libc::c_int) -> io::Result<libc::c_int> {
    let cmd = match cmd {
        FcntlInt::GetFl => libc::F_GETFL,
        FcntlInt::SetFl => libc::F_SETFL,
        FcntlInt::GetFd => libc::F_GETFD,
        FcntlInt::SetFd => libc::F_SETFD,
    };
    // SAFETY: these four commands take and return integers only; `fd` is borrowed for the call.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, arg) };
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
