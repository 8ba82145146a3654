//! The safe-point test. A stopped thread's registers and live stack flow in; out comes whether
//! the thread may be in the middle of writing an X request (and why). A thread is unsafe when its
//! instruction pointer or any return address on its stack lies inside a libxcb/libX11 function
//! that writes requests — unless it is provably only waiting to read: blocked in
//! `poll`/`ppoll`/`select`/`pselect6` without asking for writability of an X connection — or
//! waiting on a condition variable (its instruction pointer inside `pthread_cond_wait` /
//! `pthread_cond_timedwait` / `pthread_cond_clockwait`).
//!
//! Why a condition wait is safe, from libxcb 1.15's locking: bytes of a request reach the socket
//! only inside `_xcb_out_send`'s loop, whose thread keeps `iolock` from one partial `writev` to
//! the next except while it sleeps in `poll` (asking for POLLOUT: caught above) or re-takes the
//! mutex after that poll (a futex wait in the mutex code, not in `pthread_cond_wait`: still
//! unsafe). Every `pthread_cond_wait` in libxcb (`_xcb_conn_wait` when another thread already
//! reads or writes, `_xcb_out_flush_to` waiting for the writer, `get_socket_back`, the reply
//! waits) happens before the waiting thread has written any byte of its own, and libX11 hands
//! whole requests to xcb (`xcb_writev`) under the display lock, so a thread waiting on one of
//! its condition variables holds no partial request either. So with such threads stopped, the
//! byte stream to the server is at a request boundary as far as they are concerned: the busy
//! multi-threaded client (one thread reading in poll, the others in `xcb_wait_for_reply` →
//! `_xcb_conn_wait` → `pthread_cond_wait`) is at a safe point most of the time.

use super::elf::Object;
use super::procfs::{self, Mapping};
use super::ptrace::{self, Regs};
use super::InjectError;

/// libxcb entry points on whose paths bytes are written to the server.
pub const XCB_WRITERS: &[&str] = &[
    "xcb_send_request",
    "xcb_send_request64",
    "xcb_send_request_with_fds",
    "xcb_send_request_with_fds64",
    "xcb_send_fd",
    "xcb_writev",
    "xcb_flush",
    "xcb_take_socket",
    "xcb_wait_for_reply",
    "xcb_wait_for_reply64",
    "xcb_request_check",
    "xcb_get_extension_data",
    "xcb_prefetch_extension_data",
    "xcb_generate_id",
    "xcb_get_maximum_request_length",
    "xcb_prefetch_maximum_request_length",
    "_xcb_out_send",
    "_xcb_out_flush_to",
    "_xcb_conn_wait",
];
/// libX11 entry points that write (through xcb).
pub const X11_WRITERS: &[&str] = &[
    "_XSend",
    "_XFlush",
    "_XReply",
    "XFlush",
    "XSync",
    "_XEventsQueued",
    "_XReadEvents",
    "_XData32",
    "_XSendClientPrefix",
];

/// libc functions whose threads wait on a condition variable (see the module documentation).
pub const COND_WAITS: &[&str] = &[
    "pthread_cond_wait",
    "pthread_cond_timedwait",
    "pthread_cond_clockwait",
    "__pthread_cond_wait",
    "__pthread_cond_timedwait",
    "__pthread_cond_clockwait64",
];

/// libc functions that wait for a mutex: a futex wait under one of these is not a condition
/// wait (see [`Writers::futex_wait_kind`]).
pub const MUTEX_LOCKS: &[&str] = &[
    "pthread_mutex_lock",
    "__pthread_mutex_lock",
    "pthread_mutex_timedlock",
    "pthread_mutex_clocklock",
];

/// Words above the stack pointer looked at to tell what a futex wait is for.
pub const FUTEX_FRAME_WORDS: usize = 32;

/// Bytes of stack scanned above the stack pointer.
pub const STACK_SCAN: usize = 64 * 1024;

/// Address ranges of request-writing functions in the target.
#[derive(Debug, Default)]
pub struct Writers {
    ranges: Vec<(u64, u64, String)>,
    /// Condition-wait functions of libc.
    cond_waits: Vec<(u64, u64, String)>,
    /// Mutex-lock functions of libc.
    mutex_locks: Vec<(u64, u64, String)>,
}

impl Writers {
    /// Collect the ranges from libxcb.so.1 and libX11.so.6 as mapped in `pid`.
    pub fn of(pid: i32, maps: &[Mapping]) -> Result<Writers, InjectError> {
        let mut w = Writers::default();
        for (lib, names) in [("libxcb.so", XCB_WRITERS), ("libX11.so", X11_WRITERS)] {
            let Some(m) = procfs::find_object(maps, |p| procfs::file_name(p).starts_with(lib))
            else {
                continue;
            };
            let obj = Object::load(&procfs::in_root(pid, &m.path), m)?;
            w.ranges.extend(obj.function_ranges(names)?);
        }
        // libc.so.6 (also libpthread.so.0 where it still carries its own copy).
        for lib in ["libc.so", "libpthread.so"] {
            let Some(m) = procfs::find_object(maps, |p| procfs::file_name(p).starts_with(lib))
            else {
                continue;
            };
            if let Ok(obj) = Object::load(&procfs::in_root(pid, &m.path), m) {
                w.cond_waits.extend(obj.function_ranges(COND_WAITS)?);
                w.mutex_locks.extend(obj.function_ranges(MUTEX_LOCKS)?);
            }
        }
        Ok(w)
    }

    /// Number of ranges known.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Number of condition-wait ranges known.
    pub fn cond_wait_ranges(&self) -> usize {
        self.cond_waits.len()
    }

    /// Whether no range is known (no libxcb mapped).
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether `addr` lies in a condition-wait function of libc.
    pub fn in_cond_wait(&self, addr: u64) -> bool {
        self.cond_waits
            .iter()
            .any(|(s, e, _)| addr >= *s && addr < *e)
    }

    /// For a thread blocked in a futex wait: whether it waits on a condition variable. Its
    /// instruction pointer may be in `pthread_cond_wait` itself (inline futex call) or in a
    /// small libc helper; then the first word above the stack pointer that is an address in a
    /// condition-wait, mutex-lock or request-writing function decides. (glibc's lock-wait
    /// helper has no frame: the word at the stack pointer is its caller's return address, so
    /// a mutex wait is never mistaken for a condition wait; a stale word in the condition-wait
    /// helper's frame can only make the answer "no", the cautious one.)
    pub fn futex_wait_is_cond(&self, rip: u64, stack: &[u8]) -> bool {
        if self.in_cond_wait(rip) {
            return true;
        }
        let inside = |v: &[(u64, u64, String)], a: u64| v.iter().any(|(s, e, _)| a >= *s && a < *e);
        for w in stack.chunks_exact(8).take(FUTEX_FRAME_WORDS) {
            let a = u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            if inside(&self.cond_waits, a) {
                return true;
            }
            if inside(&self.mutex_locks, a) || self.hit(a).is_some() {
                return false;
            }
        }
        false
    }

    fn hit(&self, addr: u64) -> Option<&str> {
        self.ranges
            .iter()
            .find(|(s, e, _)| addr >= *s && addr < *e)
            .map(|(_, _, n)| n.as_str())
    }
}

const NR_POLL: u64 = 7;
const NR_SELECT: u64 = 23;
const NR_PSELECT6: u64 = 270;
const NR_PPOLL: u64 = 271;
const NR_RESTART_SYSCALL: u64 = 219;
const NR_FUTEX: u64 = 202;

/// Per-thread verdict of the last poll-family call we saw it blocked in. A call we interrupt
/// with a timeout resumes as `restart_syscall`, whose registers no longer show the poll set:
/// the verdict taken when it was first seen stands for it (it has not returned to user space in
/// between, or we would have seen the original call number again).
pub type ReadCache = std::collections::HashMap<i32, bool>;

/// Record the verdict for `tid` from its current registers (used for the thread borrowed in
/// the load phase before its call is rewound).
pub fn remember(pid: i32, tid: i32, r: &Regs, xfds: &[i32], cache: &mut ReadCache) {
    if let Some(nr) = ptrace::interrupted_syscall(r) {
        if nr != NR_RESTART_SYSCALL {
            if let Ok(v) = only_reading(pid, r, xfds) {
                cache.insert(tid, v);
            }
        }
    }
}

/// Whether a thread blocked in a poll-family call is only waiting to read (no POLLOUT or write
/// set on any X descriptor).
fn only_reading(pid: i32, r: &Regs, xfds: &[i32]) -> Result<bool, InjectError> {
    let Some(nr) = ptrace::interrupted_syscall(r) else {
        return Ok(false);
    };
    match nr {
        NR_POLL | NR_PPOLL => {
            let n = (r.rsi as usize).min(1024);
            let bytes = ptrace::read_mem(pid, r.rdi, n * 8)?;
            if bytes.len() != n * 8 {
                return Ok(false);
            }
            for rec in bytes.chunks_exact(8) {
                let fd = i32::from_ne_bytes([rec[0], rec[1], rec[2], rec[3]]);
                let events = i16::from_ne_bytes([rec[4], rec[5]]);
                if xfds.contains(&fd) && events & libc::POLLOUT != 0 {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        NR_SELECT | NR_PSELECT6 => {
            let writefds = r.rdx;
            if writefds == 0 {
                return Ok(true);
            }
            let nfds = (r.rdi as usize).min(65536);
            let bytes = ptrace::read_mem(pid, writefds, nfds.div_ceil(64) * 8)?;
            for &fd in xfds {
                let (byte, bit) = (fd as usize / 8, fd as usize % 8);
                if (fd as usize) < nfds && bytes.get(byte).is_some_and(|b| b & (1 << bit) != 0) {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// A `restart_syscall` whose original call we never saw (it was already restarting when we
/// first looked). Nothing has run in user space since the original call, so its argument
/// registers are intact: if they describe a poll set that waits to read an X descriptor and
/// asks to write none, the thread is only reading. Anything else (select's arguments, a
/// pointer that is not a poll set) gives `false`, i.e. "not known to be safe".
fn restarted_poll_reading(pid: i32, r: &Regs, xfds: &[i32]) -> bool {
    let n = r.rsi as usize;
    if n == 0 || n > 64 {
        return false;
    }
    let Ok(bytes) = ptrace::read_mem(pid, r.rdi, n * 8) else {
        return false;
    };
    if bytes.len() != n * 8 {
        return false;
    }
    let mut reads_x = false;
    for rec in bytes.chunks_exact(8) {
        let fd = i32::from_ne_bytes([rec[0], rec[1], rec[2], rec[3]]);
        let events = i16::from_ne_bytes([rec[4], rec[5]]);
        if xfds.contains(&fd) {
            if events & libc::POLLOUT != 0 {
                return false;
            }
            reads_x |= events & libc::POLLIN != 0;
        }
    }
    reads_x
}

/// Whether a stopped thread is reading a regular file (`read` on a file descriptor that is
/// not a socket, pipe or terminal): not an idle wait but, typically, the dynamic loader reading
/// a library — e.g. the `dlopen` of an injector that vanished, still running. Such a thread
/// must not be borrowed for another `dlopen`.
pub fn reading_regular_file(pid: i32, r: &Regs) -> bool {
    const NR_READ: u64 = 0;
    if ptrace::interrupted_syscall(r) != Some(NR_READ) {
        return false;
    }
    std::fs::metadata(format!("/proc/{pid}/fd/{}", r.rdi as i32)).is_ok_and(|m| m.is_file())
}

/// Whether a stopped thread with registers `r` is blocked waiting on a condition variable
/// (see [`Writers::futex_wait_is_cond`]). Such a thread holds no lock of libc's and may be
/// borrowed for the `dlopen` of the load phase, like one idling in `poll`.
pub fn cond_waiting(pid: i32, r: &Regs, writers: &Writers) -> bool {
    if !matches!(
        ptrace::interrupted_syscall(r),
        Some(NR_FUTEX | NR_RESTART_SYSCALL)
    ) {
        return false;
    }
    let Ok(stack) = ptrace::read_mem(pid, r.rsp & !7, FUTEX_FRAME_WORDS * 8) else {
        return false;
    };
    writers.futex_wait_is_cond(r.rip, &stack)
}

/// Whether a thread stopped in `restart_syscall` is resuming an idle wait: its argument
/// registers (intact since the original call) describe a small poll set, or it waits on a
/// condition variable. (A thread stopped once by an injector that then vanished sits in
/// `restart_syscall` until its poll's timeout.)
pub fn restarted_idle(pid: i32, r: &Regs, writers: &Writers) -> bool {
    if ptrace::interrupted_syscall(r) != Some(NR_RESTART_SYSCALL) {
        return false;
    }
    if cond_waiting(pid, r, writers) {
        return true;
    }
    let n = r.rsi as usize;
    if n == 0 || n > 64 {
        return false;
    }
    let Ok(bytes) = ptrace::read_mem(pid, r.rdi, n * 8) else {
        return false;
    };
    const ANY: i16 = libc::POLLIN
        | libc::POLLPRI
        | libc::POLLOUT
        | libc::POLLRDHUP
        | libc::POLLRDNORM
        | libc::POLLRDBAND
        | libc::POLLWRNORM
        | libc::POLLWRBAND;
    bytes.len() == n * 8
        && bytes.chunks_exact(8).all(|rec| {
            let fd = i32::from_ne_bytes([rec[0], rec[1], rec[2], rec[3]]);
            let events = i16::from_ne_bytes([rec[4], rec[5]]);
            fd >= -1 && events & !ANY == 0
        })
}

/// Why thread `tid` is not at a safe point, or None when it is.
pub fn unsafe_reason(
    pid: i32,
    tid: i32,
    maps: &[Mapping],
    writers: &Writers,
    xfds: &[i32],
    cache: &mut ReadCache,
) -> Result<Option<String>, InjectError> {
    let r = ptrace::regs(pid, tid)?;
    let reading = match ptrace::interrupted_syscall(&r) {
        Some(NR_RESTART_SYSCALL) => match cache.get(&tid) {
            Some(v) => *v,
            None => restarted_poll_reading(pid, &r, xfds),
        },
        Some(_) => {
            let v = only_reading(pid, &r, xfds)?;
            cache.insert(tid, v);
            v
        }
        None => {
            cache.remove(&tid);
            false
        }
    };
    if writers.is_empty() {
        return Ok(None);
    }

    if let Some(n) = writers.hit(r.rip) {
        return Ok(Some(format!("thread {tid} is executing {n}")));
    }
    let Some(stack) = maps.iter().find(|m| r.rsp >= m.start && r.rsp < m.end) else {
        return Ok(Some(format!(
            "thread {tid}: stack pointer {:#x} is not mapped",
            r.rsp
        )));
    };
    let len = ((stack.end - r.rsp) as usize).min(STACK_SCAN);
    let bytes = ptrace::read_mem(pid, r.rsp & !7, len)?;
    // Blocked on a condition variable (libxcb's or libX11's): holds no partial request.
    if matches!(
        ptrace::interrupted_syscall(&r),
        Some(NR_FUTEX | NR_RESTART_SYSCALL)
    ) && writers.futex_wait_is_cond(r.rip, &bytes)
    {
        return Ok(None);
    }
    let mut hit = None;
    for w in bytes.chunks_exact(8) {
        let a = u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        if let Some(n) = writers.hit(a) {
            hit = Some(n.to_string());
            break;
        }
    }
    let Some(n) = hit else {
        return Ok(None);
    };
    if reading {
        return Ok(None);
    }
    Ok(Some(format!(
        "thread {tid} is inside {n} ({})",
        match ptrace::interrupted_syscall(&r) {
            Some(nr) => format!("blocked in system call {nr} at {:#x}", r.rip),
            None => format!("running at {:#x}", r.rip),
        }
    )))
}
