//! libxcb's socket calls, interposed through its GOT (`got.rs`): `writev`, `sendmsg`,
//! `recvmsg`, `recv`, `poll` and `close` come in with raw pointers from libxcb. On a descriptor
//! that is no interposed X connection (any other connection, any other file) each calls libc's
//! function unchanged. On an X connection's descriptor (the app's end of the socketpair, found
//! in `muxloop::inline`'s registry) the bytes flow, as slices, into the connection's loop state
//! on this thread when the connection is *inline* (see `muxloop/inline.rs`), or the original
//! call goes to the socketpair when it is *relayed*.
//!
//! A hook never takes the app down: everything runs under `catch_unwind`; a panic gives inline
//! up for the connection (it is relayed from then on, `guievict status` says why) and the call
//! is made on the socketpair as if relayed — unless the bytes had already been taken, then
//! their count is returned. The originals are libc's own functions called through this
//! library's references, never the values found in libxcb's GOT (lazily bound, those would
//! re-resolve and overwrite the hook).
//!
//! One of the hijack library's `unsafe` modules (see `ffi.rs`): libxcb's pointers are
//! dereferenced here, each under the contract of the libc function the hook stands in for.

use crate::muxloop::inline::{self, HandedOver, PollResult, RecvResult, Switch, WriteResult};
use std::cell::Cell;
use std::ffi::c_int;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

/// Install the hooks in libxcb's GOT (once per process): the number of slots patched, or why
/// not (no libxcb: a static binary or an app that speaks X another way stays relayed).
pub fn install() -> Result<usize, String> {
    static DONE: OnceLock<Result<usize, String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let hooks: [(&str, usize); 6] = [
            ("writev", gv_writev as *const () as usize),
            ("sendmsg", gv_sendmsg as *const () as usize),
            ("recvmsg", gv_recvmsg as *const () as usize),
            ("recv", gv_recv as *const () as usize),
            ("poll", gv_poll as *const () as usize),
            ("close", gv_close as *const () as usize),
        ];
        crate::got::patch_libxcb(&hooks).map_err(|e| e.to_string())
    })
    .clone()
}

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn set_errno(e: c_int) {
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

/// The outcome of a hook's body: a value to return, an errno to fail with, or "make the
/// original call" (relayed).
/// What a non-blocking read of the socketpair (`recvmsg` or `recv`, returning `r`) means for
/// the hooked call: bytes or end of file or an error go back to libxcb (`Some`), and the loop
/// hears how much was taken; nothing there yet (`None`) sends the hook back to the engine.
fn after_pair_read(l: &mut crate::muxloop::Loop, r: isize) -> Option<Out> {
    if r > 0 {
        l.pair_read(Some(r as usize));
        return Some(Out::Ret(r));
    }
    let e = errno();
    if r < 0 && (e == libc::EAGAIN || e == libc::EWOULDBLOCK) {
        l.pair_read(None);
        return None;
    }
    Some(if r == 0 { Out::Ret(0) } else { Out::Errno(e) })
}

enum Out {
    Ret(isize),
    Errno(c_int),
    Original,
}

/// Run `body` contained; on a panic give inline up and return what was already done (`done`)
/// or make the original call.
fn contained(
    sw: &Switch,
    done: &Cell<Option<isize>>,
    original: impl FnOnce() -> isize,
    body: impl FnOnce() -> Out,
) -> isize {
    let r = catch_unwind(AssertUnwindSafe(|| {
        if sw.take_fault() {
            panic!("guievict test fault: hook panic requested");
        }
        body()
    }));
    match r {
        Ok(Out::Ret(v)) => v,
        Ok(Out::Errno(e)) => {
            set_errno(e);
            -1
        }
        Ok(Out::Original) => original(),
        Err(p) => {
            sw.give_up(format!(
                "a libxcb hook panicked: {}",
                crate::muxloop::panic_message(&*p)
            ));
            match done.get() {
                Some(v) => v,
                None => original(),
            }
        }
    }
}

/// The app's bytes (and descriptors) into the engine, or the original call on the socketpair
/// when relayed.
fn write_path(
    sw: &Switch,
    data: &[&[u8]],
    fds: Vec<OwnedFd>,
    done: &Cell<Option<isize>>,
    original: impl FnOnce() -> isize,
) -> Out {
    let mut fds = Some(fds);
    loop {
        if let Some(counted) = sw.relayed_write() {
            // Relayed: the original call, counted until it returned, so that a switch to
            // inline waits for its bytes to be in the socketpair before reading it empty.
            let r = original();
            let e = errno();
            drop(counted);
            return if r < 0 { Out::Errno(e) } else { Out::Ret(r) };
        }
        let Some((_inside, mut l)) = sw.enter() else {
            continue;
        };
        return match l.hook_write(data, fds.take().unwrap_or_default()) {
            WriteResult::Took(n) => {
                done.set(Some(n as isize));
                Out::Ret(n as isize)
            }
            WriteResult::WouldBlock => Out::Errno(libc::EAGAIN),
            WriteResult::Relayed => Out::Original,
        };
    }
}

/// Hooked `writev(2)`.
///
/// # Safety
/// libxcb's call: `iov` points to `cnt` valid iovecs.
pub unsafe extern "C" fn gv_writev(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> isize {
    // SAFETY: the caller's arguments, passed on unchanged.
    let original = || unsafe { libc::writev(fd, iov, cnt) };
    let Some(sw) = inline::find(fd) else {
        return original();
    };
    let done = Cell::new(None);
    contained(&sw, &done, original, || {
        // SAFETY: writev's contract: `cnt` iovecs, each `iov_len` readable bytes.
        let data = unsafe { iov_slices(iov, cnt as usize) };
        write_path(&sw, &data, Vec::new(), &done, original)
    })
}

/// The byte slices of an iovec array.
///
/// # Safety
/// `iov` points to `n` iovecs whose buffers are readable for the slices' lifetime.
unsafe fn iov_slices<'a>(iov: *const libc::iovec, n: usize) -> Vec<&'a [u8]> {
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        // SAFETY: guaranteed by the caller.
        let e = unsafe { &*iov.add(i) };
        if e.iov_len > 0 && !e.iov_base.is_null() {
            // SAFETY: as above.
            v.push(unsafe { std::slice::from_raw_parts(e.iov_base as *const u8, e.iov_len) });
        }
    }
    v
}

/// Hooked `sendmsg(2)` (libxcb sends descriptors with it; it closes its copies afterwards, so
/// the hook keeps duplicates).
///
/// # Safety
/// libxcb's call: `msg` is a valid message header.
pub unsafe extern "C" fn gv_sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> isize {
    // SAFETY: the caller's arguments, passed on unchanged.
    let original = || unsafe { libc::sendmsg(fd, msg, flags) };
    let Some(sw) = inline::find(fd) else {
        return original();
    };
    let done = Cell::new(None);
    contained(&sw, &done, original, || {
        // SAFETY: sendmsg's contract: a valid header, its iovecs and control data readable.
        let (data, fds) = unsafe {
            let m = &*msg;
            (
                iov_slices(m.msg_iov, m.msg_iovlen),
                rights_of(m).into_iter().filter_map(dup).collect::<Vec<_>>(),
            )
        };
        write_path(&sw, &data, fds, &done, original)
    })
}

/// A duplicate of a descriptor libxcb will close.
fn dup(fd: c_int) -> Option<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC touches no memory; the result is a new descriptor of ours alone.
    let r = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    // SAFETY: `r` was just returned by the kernel to us.
    (r >= 0).then(|| unsafe { OwnedFd::from_raw_fd(r) })
}

/// The `SCM_RIGHTS` descriptor numbers in a message's control data.
///
/// # Safety
/// `m`'s control buffer is readable for `msg_controllen` bytes.
unsafe fn rights_of(m: &libc::msghdr) -> Vec<c_int> {
    let mut out = Vec::new();
    if m.msg_control.is_null() || m.msg_controllen == 0 {
        return out;
    }
    // SAFETY: the CMSG macros walk the buffer the caller vouches for.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(m);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let n = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<c_int>();
                let p = libc::CMSG_DATA(c) as *const c_int;
                for i in 0..n {
                    out.push(std::ptr::read_unaligned(p.add(i)));
                }
            }
            c = libc::CMSG_NXTHDR(m, c);
        }
    }
    out
}

/// Hooked `recvmsg(2)`.
///
/// # Safety
/// libxcb's call: `msg` is a valid, writable message header.
pub unsafe extern "C" fn gv_recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> isize {
    // SAFETY: the caller's arguments, passed on unchanged.
    let original = || unsafe { libc::recvmsg(fd, msg, flags) };
    let Some(sw) = inline::find(fd) else {
        return original();
    };
    let done = Cell::new(None);
    contained(&sw, &done, original, || {
        let Some((_inside, mut l)) = sw.enter() else {
            return Out::Original;
        };
        // SAFETY: recvmsg's contract: a valid header whose iovecs and control buffer are
        // writable.
        let m = unsafe { &mut *msg };
        let control_len = m.msg_controllen;
        loop {
            // SAFETY: as above; the first non-empty iovec is a writable buffer.
            let buf = unsafe { first_buffer(m) };
            match l.hook_recv(buf) {
                RecvResult::Pair => {
                    m.msg_controllen = control_len;
                    // SAFETY: the caller's header, on the socketpair, not blocking.
                    let r = unsafe { libc::recvmsg(fd, msg, flags | libc::MSG_DONTWAIT) };
                    match after_pair_read(&mut l, r) {
                        Some(out) => return out,
                        None => continue,
                    }
                }
                RecvResult::Data(n, fds) => {
                    done.set(Some(n as isize));
                    m.msg_flags = 0;
                    m.msg_controllen = control_len;
                    // SAFETY: the caller's control buffer, `control_len` writable bytes.
                    unsafe { put_rights(m, fds) };
                    return Out::Ret(n as isize);
                }
                RecvResult::WouldBlock => {
                    m.msg_controllen = 0;
                    return Out::Errno(libc::EAGAIN);
                }
                RecvResult::Relayed => return Out::Original,
            }
        }
    })
}

/// The first non-empty buffer of a message's iovecs (an empty slice if none).
///
/// # Safety
/// `m`'s iovecs are valid and writable.
unsafe fn first_buffer<'a>(m: &libc::msghdr) -> &'a mut [u8] {
    for i in 0..m.msg_iovlen {
        // SAFETY: guaranteed by the caller.
        let e = unsafe { &*m.msg_iov.add(i) };
        if e.iov_len > 0 && !e.iov_base.is_null() {
            // SAFETY: as above.
            return unsafe { std::slice::from_raw_parts_mut(e.iov_base as *mut u8, e.iov_len) };
        }
    }
    &mut []
}

/// Put descriptors for the app into a message's control buffer as `SCM_RIGHTS`; if they do
/// not fit they are closed and the message is marked `MSG_CTRUNC` (as the kernel does).
///
/// # Safety
/// `m.msg_control` is writable for `m.msg_controllen` bytes.
unsafe fn put_rights(m: &mut libc::msghdr, fds: Vec<OwnedFd>) {
    if fds.is_empty() {
        m.msg_controllen = 0;
        return;
    }
    let bytes = (fds.len() * std::mem::size_of::<c_int>()) as u32;
    // SAFETY: CMSG_SPACE/CMSG_LEN are arithmetic.
    let (space, len) = unsafe { (libc::CMSG_SPACE(bytes) as usize, libc::CMSG_LEN(bytes)) };
    if m.msg_control.is_null() || m.msg_controllen < space {
        m.msg_controllen = 0;
        m.msg_flags |= libc::MSG_CTRUNC;
        return;
    }
    // SAFETY: the buffer holds at least `space` bytes (checked above): one header and the
    // descriptors fit.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(m);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = len as _;
        let p = libc::CMSG_DATA(c) as *mut c_int;
        for (i, fd) in fds.into_iter().enumerate() {
            std::ptr::write_unaligned(p.add(i), fd.into_raw_fd());
        }
    }
    m.msg_controllen = space as _;
}

/// Hooked `recv(2)` (libxcb's blocking read during setup; never with descriptors).
///
/// # Safety
/// libxcb's call: `buf` is writable for `len` bytes.
pub unsafe extern "C" fn gv_recv(
    fd: c_int,
    buf: *mut std::ffi::c_void,
    len: libc::size_t,
    flags: c_int,
) -> isize {
    // SAFETY: the caller's arguments, passed on unchanged.
    let original = || unsafe { libc::recv(fd, buf, len, flags) };
    let Some(sw) = inline::find(fd) else {
        return original();
    };
    let done = Cell::new(None);
    contained(&sw, &done, original, || {
        let Some((_inside, mut l)) = sw.enter() else {
            return Out::Original;
        };
        if buf.is_null() || len == 0 {
            return Out::Original;
        }
        // SAFETY: recv's contract: `len` writable bytes at `buf`.
        let b = unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, len) };
        loop {
            match l.hook_recv(b) {
                RecvResult::Pair => {
                    // SAFETY: the caller's buffer, on the socketpair, not blocking.
                    let r = unsafe { libc::recv(fd, buf, len, flags | libc::MSG_DONTWAIT) };
                    match after_pair_read(&mut l, r) {
                        Some(out) => return out,
                        None => continue,
                    }
                }
                RecvResult::Data(n, _fds) => {
                    done.set(Some(n as isize));
                    return Out::Ret(n as isize);
                }
                RecvResult::WouldBlock => return Out::Errno(libc::EAGAIN),
                RecvResult::Relayed => return Out::Original,
            }
        }
    })
}

/// Hooked `poll(2)`: libxcb's wait on its one descriptor.
///
/// # Safety
/// libxcb's call: `fds` points to `nfds` writable pollfd records.
pub unsafe extern "C" fn gv_poll(
    fds: *mut libc::pollfd,
    nfds: libc::nfds_t,
    timeout: c_int,
) -> c_int {
    // SAFETY: the caller's arguments, passed on unchanged.
    let original = || unsafe { libc::poll(fds, nfds, timeout) } as isize;
    if nfds != 1 || fds.is_null() {
        return original() as c_int;
    }
    // SAFETY: one readable record (checked above).
    let (fd, events) = unsafe { ((*fds).fd, (*fds).events) };
    let Some(sw) = inline::find(fd) else {
        return original() as c_int;
    };
    let done = Cell::new(None);
    let ours = Cell::new(None);
    let r = contained(&sw, &done, original, || {
        match poll_path(&sw, events, timeout) {
            PollResult::Ready(ev) => {
                ours.set(Some(ev));
                Out::Ret(1)
            }
            PollResult::Timeout => {
                ours.set(Some(0));
                Out::Ret(0)
            }
            PollResult::Failed(e) => Out::Errno(e),
            PollResult::Relayed => Out::Original,
        }
    });
    if let Some(ev) = ours.get() {
        // SAFETY: the caller's record, as above.
        unsafe { (*fds).revents = ev };
    }
    r as c_int
}

fn poll_path(sw: &Switch, events: i16, timeout: c_int) -> PollResult {
    let mut set: Vec<libc::pollfd> = Vec::with_capacity(4);
    loop {
        let kick = sw.kick();
        let kick_fd = std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(&*kick));
        let gen = match sw.enter() {
            None => {
                // Relayed: the socketpair, and the kick (a switch to inline while waiting).
                let mut two = [
                    libc::pollfd {
                        fd: sw.app_fd,
                        events,
                        revents: 0,
                    },
                    libc::pollfd {
                        fd: kick_fd,
                        events: libc::POLLIN,
                        revents: 0,
                    },
                ];
                // SAFETY: two valid records on this stack.
                let r = unsafe { libc::poll(two.as_mut_ptr(), 2, timeout) };
                if r < 0 {
                    return PollResult::Failed(errno());
                }
                if two[0].revents != 0 {
                    return PollResult::Ready(two[0].revents);
                }
                if r == 0 {
                    return PollResult::Timeout;
                }
                continue;
            }
            Some((_inside, mut l)) => {
                let (ready, gen) = l.hook_poll_prepare(events, &mut set);
                if ready != 0 {
                    return PollResult::Ready(ready);
                }
                gen
            }
        };
        set.push(libc::pollfd {
            fd: kick_fd,
            events: libc::POLLIN,
            revents: 0,
        });
        // SAFETY: `set` holds `len` valid records.
        let r = unsafe { libc::poll(set.as_mut_ptr(), set.len() as libc::nfds_t, timeout) };
        let e = errno();
        set.pop();
        let Some((_inside, mut l)) = sw.enter() else {
            // Relayed since: look again on the socketpair.
            continue;
        };
        if r < 0 {
            l.hook_poll_abandon(gen);
            return PollResult::Failed(e);
        }
        match l.hook_poll_finish(gen, events, &set) {
            Ok(0) => {
                if r == 0 && timeout >= 0 {
                    return PollResult::Timeout;
                }
            }
            Ok(ready) => return PollResult::Ready(ready),
            Err(HandedOver) => {}
        }
        drop(l);
        drop(kick);
    }
}

/// Hooked `close(2)`: an X connection's descriptor leaves the registry before its number can be
/// reused.
///
/// # Safety
/// libxcb's call.
pub unsafe extern "C" fn gv_close(fd: c_int) -> c_int {
    if let Some(sw) = inline::unregister(fd) {
        sw.set_wanted(false);
    }
    // SAFETY: the caller's argument, passed on unchanged.
    unsafe { libc::close(fd) }
}
