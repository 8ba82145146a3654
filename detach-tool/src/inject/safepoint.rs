//! The safe-point test. A stopped thread's registers and live stack flow in; out comes whether
//! the thread may be in the middle of writing an X request (and why). A thread is unsafe when its
//! instruction pointer or any return address on its stack lies inside a libxcb/libX11 function
//! that writes requests — unless it is provably only waiting to read: blocked in
//! `poll`/`ppoll`/`select`/`pselect6` without asking for writability of an X connection.

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

/// Bytes of stack scanned above the stack pointer.
pub const STACK_SCAN: usize = 64 * 1024;

/// Address ranges of request-writing functions in the target.
#[derive(Debug, Default)]
pub struct Writers {
    ranges: Vec<(u64, u64, String)>,
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
        Ok(w)
    }

    /// Number of ranges known.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether no range is known (no libxcb mapped).
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
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
    Ok(Some(format!("thread {tid} is inside {n}")))
}
