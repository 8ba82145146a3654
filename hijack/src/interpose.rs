//! Putting the relay between the application and its X server. The application's X fd number
//! flows in; out come two owned descriptors for the relay — the original server socket and our
//! end of a fresh socketpair — while the application's fd number now names the other end of that
//! socketpair, with the original file status flags (`O_NONBLOCK`) and fd flags (`FD_CLOEXEC`).
//! The swap is one `dup2`, so the application never sees a missing descriptor; any failure
//! before it leaves the application untouched, a failure after it is undone.
//!
//! [`guievict_interpose`] is the entry point the injector calls while every thread of the
//! application is stopped at a safe point: it neither allocates nor takes locks, so it cannot
//! deadlock against a stopped thread that holds the allocator's lock. It parks its results in
//! fixed [`SLOTS`] and wakes the relay thread, which adopts them.

use crate::ffi;
use crate::ffi::FcntlInt;
use crate::xfd;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};

/// How many X connections one process can have interposed.
pub const MAX_SLOTS: usize = 16;
/// Descriptor numbers scanned for X connections at the safe point.
pub const SCAN_LIMIT: RawFd = 4096;

/// A slot handed from the safe-point function to the relay thread.
#[derive(Debug)]
pub struct Slot {
    state: AtomicU8,
    app_fd: AtomicI32,
    server_fd: AtomicI32,
    relay_fd: AtomicI32,
}

const FREE: u8 = 0;
const FILLING: u8 = 1;
const READY: u8 = 2;
const TAKEN: u8 = 3;

impl Slot {
    const fn new() -> Self {
        Slot {
            state: AtomicU8::new(FREE),
            app_fd: AtomicI32::new(-1),
            server_fd: AtomicI32::new(-1),
            relay_fd: AtomicI32::new(-1),
        }
    }
}

/// Hand-over slots, filled by [`guievict_interpose`], emptied by [`take_ready`].
pub static SLOTS: [Slot; MAX_SLOTS] = [const { Slot::new() }; MAX_SLOTS];
/// Raw eventfd of the relay thread (-1 until the relay runs).
pub static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// Server-side descriptors held by the relay: never mistaken for the application's connections.
static OWN_FDS: [AtomicI32; 64] = [const { AtomicI32::new(-1) }; 64];

/// Record `fd` as one of ours (a server connection the relay holds). Allocation-free.
pub fn mark_own(fd: RawFd) -> bool {
    OWN_FDS.iter().any(|s| {
        s.compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    })
}

/// Forget `fd` as one of ours (before it is closed).
pub fn unmark_own(fd: RawFd) {
    for s in &OWN_FDS {
        let _ = s.compare_exchange(fd, -1, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// Every descriptor the relay holds (see [`mark_own`]).
pub fn own_fds() -> Vec<RawFd> {
    OWN_FDS
        .iter()
        .map(|s| s.load(Ordering::Acquire))
        .filter(|fd| *fd >= 0)
        .collect()
}

/// Whether `fd` is a descriptor the relay holds.
pub fn is_own(fd: RawFd) -> bool {
    fd >= 0 && OWN_FDS.iter().any(|s| s.load(Ordering::Acquire) == fd)
}

/// One swapped connection: the app's fd number, the server socket, the relay's socketpair end.
#[derive(Debug)]
pub struct Swapped {
    /// Descriptor number the application uses (now the socketpair's app end).
    pub app_fd: RawFd,
    /// The original connection to the X server (now owned by the relay).
    pub server: OwnedFd,
    /// The relay's end of the socketpair.
    pub relay: OwnedFd,
}

/// Swap `fd` for one end of a new socketpair. Allocation-free.
pub fn interpose_fd(fd: RawFd) -> std::io::Result<Swapped> {
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: `fd` is the application's descriptor, not -1; it is only borrowed for this
    // function, during which no thread of the application runs (the safe point) and so none
    // closes it. An fd number that is not open makes the first fcntl fail with EBADF.
    let app = unsafe { BorrowedFd::borrow_raw(fd) };
    let status = ffi::fcntl_int(app, FcntlInt::GetFl, 0)?;
    let fdflags = ffi::fcntl_int(app, FcntlInt::GetFd, 0)?;
    let server = ffi::dup_owned(app)?;
    if !mark_own(server.as_raw_fd()) {
        return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
    }
    let server = OwnGuard(Some(server));
    let (app_end, relay) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    // Same status flags as the original (above all O_NONBLOCK: libxcb polls, then reads).
    ffi::fcntl_int(app_end.as_fd(), FcntlInt::SetFl, status)?;
    // SAFETY: `fd` is the application's X socket at the safe point and `app_end` a stream
    // socket with the same status flags: the swap this library exists for (see `ffi::dup2_raw`).
    unsafe { ffi::dup2_raw(app_end.as_fd(), fd) }?;
    // dup2 clears FD_CLOEXEC on the target: put the original fd flags back.
    if let Err(e) = ffi::fcntl_int(app, FcntlInt::SetFd, fdflags) {
        // Undo: the application gets its original socket back, untouched.
        if let Some(orig) = server.fd() {
            // SAFETY: puts back on `fd` the very socket it named before the swap.
            let _ = unsafe { ffi::dup2_raw(orig, fd) };
        }
        let _ = ffi::fcntl_int(app, FcntlInt::SetFd, fdflags);
        return Err(e);
    }
    drop(app_end);
    Ok(Swapped {
        app_fd: fd,
        server: server.keep(),
        relay,
    })
}

/// Unmarks and closes a server dup unless kept.
struct OwnGuard(Option<OwnedFd>);

impl OwnGuard {
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.0.as_ref().map(AsFd::as_fd)
    }
    fn keep(mut self) -> OwnedFd {
        match self.0.take() {
            Some(fd) => fd,
            None => unreachable!("OwnGuard kept twice"),
        }
    }
}

impl Drop for OwnGuard {
    fn drop(&mut self) {
        if let Some(fd) = self.0.take() {
            unmark_own(fd.as_raw_fd());
        }
    }
}

/// Put the original server socket back on `app_fd` (used when the relay cannot take over).
pub fn undo(sw: &Swapped) -> std::io::Result<()> {
    unmark_own(sw.server.as_raw_fd());
    if sw.app_fd < 0 {
        return Err(std::io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: `app_fd` (not -1) names the socketpair end this module put there; it is
    // borrowed for this function only, at the safe point, where nothing of the application
    // runs to close it.
    let app = unsafe { BorrowedFd::borrow_raw(sw.app_fd) };
    let fdflags = ffi::fcntl_int(app, FcntlInt::GetFd, 0)?;
    // SAFETY: puts back on `app_fd` the server socket it named before the swap.
    unsafe { ffi::dup2_raw(sw.server.as_fd(), sw.app_fd) }?;
    ffi::fcntl_int(app, FcntlInt::SetFd, fdflags)?;
    Ok(())
}

fn already_interposed(fd: RawFd) -> bool {
    SLOTS
        .iter()
        .any(|s| s.state.load(Ordering::Acquire) != FREE && s.app_fd.load(Ordering::Acquire) == fd)
}

fn park(sw: Swapped) -> Result<(), Swapped> {
    for s in &SLOTS {
        if s.state
            .compare_exchange(FREE, FILLING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            s.app_fd.store(sw.app_fd, Ordering::Release);
            s.server_fd
                .store(sw.server.into_raw_fd(), Ordering::Release);
            s.relay_fd.store(sw.relay.into_raw_fd(), Ordering::Release);
            s.state.store(READY, Ordering::Release);
            return Ok(());
        }
    }
    Err(sw)
}

/// Interpose one descriptor or every X connection, park the results and wake the relay.
/// Returns how many connections were interposed, or a negative errno. Allocation-free.
pub fn interpose_now(fd_override: RawFd) -> i32 {
    if WAKE_FD.load(Ordering::Acquire) < 0 {
        return -libc::EAGAIN;
    }
    let mut count = 0;
    let mut first_err = 0;
    let mut one = |fd: RawFd| {
        if already_interposed(fd) || is_own(fd) {
            return;
        }
        match interpose_fd(fd) {
            Ok(sw) => match park(sw) {
                Ok(()) => count += 1,
                Err(sw) => {
                    let _ = undo(&sw);
                    if first_err == 0 {
                        first_err = libc::ENOSPC;
                    }
                }
            },
            Err(e) => {
                if first_err == 0 {
                    first_err = e.raw_os_error().unwrap_or(libc::EIO);
                }
            }
        }
    };
    if fd_override >= 0 {
        one(fd_override);
    } else {
        for fd in 0..SCAN_LIMIT {
            if xfd::is_x_fd(fd) {
                one(fd);
            }
        }
    }
    if count > 0 {
        let wake = WAKE_FD.load(Ordering::Acquire);
        if wake >= 0 {
            // SAFETY: the wake eventfd of the adopter thread (or of the plain relay), stored
            // once that thread runs; the thread holds it for the life of the process (only
            // `RelayHandle::stop`, used by tests, ends the plain relay). Borrowed for one write.
            let _ = ffi::eventfd_add(unsafe { BorrowedFd::borrow_raw(wake) }, 1);
        }
        return count;
    }
    -first_err
}

/// Called by the relay thread: every parked connection, emptied from its slot.
pub fn take_ready() -> Vec<Swapped> {
    let mut out = Vec::new();
    for s in &SLOTS {
        if s.state.load(Ordering::Acquire) == READY {
            let app_fd = s.app_fd.load(Ordering::Acquire);
            let server = s.server_fd.swap(-1, Ordering::AcqRel);
            let relay = s.relay_fd.swap(-1, Ordering::AcqRel);
            if server >= 0 && relay >= 0 {
                // SAFETY: `park` released both with `into_raw_fd` before marking the slot
                // READY, and the swaps above left -1 behind: this is their only owner.
                let (server, relay) = unsafe { (ffi::own(server), ffi::own(relay)) };
                out.push(Swapped {
                    app_fd,
                    server,
                    relay,
                });
            }
            // The slot stays marked so the fd is not interposed twice; `release` frees it
            // when the relay drops the connection.
            s.state.store(TAKEN, Ordering::Release);
        }
    }
    out
}

/// Forget the slot of `app_fd` (the relay closed that connection).
pub fn release(app_fd: RawFd) {
    for s in &SLOTS {
        if s.state.load(Ordering::Acquire) == TAKEN && s.app_fd.load(Ordering::Acquire) == app_fd {
            s.app_fd.store(-1, Ordering::Release);
            s.state.store(FREE, Ordering::Release);
        }
    }
}

/// The safe-point entry point called by the `guievict hijack` injector through ptrace, with all
/// application threads stopped. `fd_override` < 0 means "every X connection". Returns the number
/// of connections interposed (0: none found) or a negative errno. Never allocates or locks.
#[no_mangle]
pub extern "C" fn guievict_interpose(fd_override: libc::c_int) -> libc::c_int {
    std::panic::catch_unwind(|| interpose_now(fd_override)).unwrap_or(-libc::EIO)
}
