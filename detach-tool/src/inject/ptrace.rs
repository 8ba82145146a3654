//! ptrace plumbing for the injector, x86_64 only. Thread ids flow in; out come stopped threads
//! ([`Stopped`], which resumes and detaches every thread on drop), their registers and memory,
//! and the result of a function called inside the target ([`call`], whose [`CallGuard`] puts
//! the borrowed registers and stack bytes back on every path). The few raw system calls that
//! nix does not wrap (`pidfd_open`, `pidfd_getfd`) are fenced in here with `SAFETY` notes.

use super::InjectError;
use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::uio::{process_vm_readv, process_vm_writev, RemoteIoVec};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Registers of one thread.
pub type Regs = libc::user_regs_struct;

const ERESTARTSYS: i64 = -512;
const ERESTARTNOINTR: i64 = -513;
const ERESTARTNOHAND: i64 = -514;
const ERESTART_RESTARTBLOCK: i64 = -516;
const NR_RESTART_SYSCALL: u64 = 219;
/// How long a thread may take to reach a ptrace stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a function called in the target may run.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a thread stopped while inside an interrupted system call (which will restart).
pub fn interrupted_syscall(r: &Regs) -> Option<u64> {
    let rax = r.rax as i64;
    let in_call = (r.orig_rax as i64) >= 0;
    (in_call
        && matches!(
            rax,
            ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND | ERESTART_RESTARTBLOCK
        ))
    .then_some(r.orig_rax)
}

/// Registers that resume `r` correctly even after they were used for a call: an interrupted
/// system call is rewound so that it restarts (the kernel would do this itself, but only when it
/// still sees the `-ERESTART*` value in `rax`).
pub fn restartable(r: &Regs) -> Regs {
    let mut out = *r;
    if (r.orig_rax as i64) >= 0 {
        match r.rax as i64 {
            ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND => {
                out.rax = r.orig_rax;
                out.rip = r.rip.wrapping_sub(2);
            }
            ERESTART_RESTARTBLOCK => {
                out.rax = NR_RESTART_SYSCALL;
                out.rip = r.rip.wrapping_sub(2);
            }
            _ => {}
        }
    }
    out
}

fn died_or(pid: i32, tid: i32, op: &'static str, e: Errno) -> InjectError {
    if e == Errno::ESRCH || e == Errno::ECHILD || super::procfs::is_exiting(pid) {
        InjectError::TraceeDied { pid }
    } else {
        InjectError::Ptrace {
            pid,
            tid,
            op,
            source: e,
        }
    }
}

/// What a wait for one thread saw.
enum Event {
    /// A ptrace stop we asked for (interrupt or group stop).
    Stop,
    /// A signal-delivery stop.
    Signal(Signal),
    /// The thread is gone.
    Gone,
}

fn wait_event(pid: i32, tid: i32, deadline: Instant) -> Result<Event, InjectError> {
    loop {
        match waitpid(
            Pid::from_raw(tid),
            Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG),
        ) {
            Ok(WaitStatus::StillAlive) => {
                if Instant::now() > deadline {
                    // The stop may have been reported already (and consumed); the kernel's
                    // own view decides.
                    match thread_state(pid, tid) {
                        Some('t') => return Ok(Event::Stop),
                        // Exiting: it will never stop for us.
                        Some('Z' | 'X') | None => return Ok(Event::Gone),
                        _ if super::procfs::is_exiting(pid) => {
                            return Err(InjectError::TraceeDied { pid })
                        }
                        _ => {}
                    }
                    return Err(InjectError::Timeout {
                        pid,
                        what: format!("thread {tid} to stop"),
                    });
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            Ok(WaitStatus::PtraceEvent(_, _, _)) => return Ok(Event::Stop),
            Ok(WaitStatus::Stopped(_, sig)) => return Ok(Event::Signal(sig)),
            Ok(WaitStatus::Exited(..)) | Ok(WaitStatus::Signaled(..)) => return Ok(Event::Gone),
            Ok(_) => {}
            Err(Errno::EINTR) => {}
            Err(e) => return Err(died_or(pid, tid, "waitpid", e)),
        }
    }
}

/// Scheduler state letter of a thread (`/proc/<pid>/task/<tid>/stat`), e.g. 't' for a
/// tracing stop.
fn thread_state(pid: i32, tid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    s.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Wait until `tid` sits in the stop requested by `PTRACE_INTERRUPT`. Signals that arrive
/// meanwhile are the application's own: they are delivered, not swallowed.
fn wait_interrupt_stop(pid: i32, tid: i32) -> Result<bool, InjectError> {
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        match wait_event(pid, tid, deadline)? {
            Event::Stop => return Ok(true),
            Event::Gone => return Ok(false),
            Event::Signal(sig) => {
                ptrace::cont(Pid::from_raw(tid), Some(sig))
                    .map_err(|e| died_or(pid, tid, "PTRACE_CONT", e))?;
            }
        }
    }
}

/// A set of seized, stopped threads of one process. Dropping it detaches them all.
#[derive(Debug)]
pub struct Stopped {
    pid: i32,
    tids: BTreeSet<i32>,
    running: bool,
}

impl Stopped {
    /// Seize and stop the given thread only.
    pub fn one(pid: i32, tid: i32) -> Result<Stopped, InjectError> {
        let mut s = Stopped {
            pid,
            tids: BTreeSet::new(),
            running: false,
        };
        s.seize(tid)?;
        if !wait_interrupt_stop(pid, tid)? {
            s.tids.remove(&tid);
            return Err(InjectError::ThreadGone { pid, tid });
        }
        Ok(s)
    }

    /// Seize and stop every thread, including threads created while doing so.
    pub fn all(pid: i32) -> Result<Stopped, InjectError> {
        let mut s = Stopped {
            pid,
            tids: BTreeSet::new(),
            running: false,
        };
        s.stop_all()?;
        Ok(s)
    }

    fn seize(&mut self, tid: i32) -> Result<(), InjectError> {
        match ptrace::seize(Pid::from_raw(tid), ptrace::Options::empty()) {
            Ok(()) => {}
            // The kernel also says EPERM for a thread that is exiting: such a thread is gone
            // for our purposes, like one that vanished.
            // The main thread too: a process being closed refuses the seize before it is a
            // zombie (PF_EXITING).
            Err(Errno::EPERM)
                if thread_exiting(self.pid, tid) || super::procfs::is_leaving(self.pid) =>
            {
                return Err(InjectError::TraceeDied { pid: self.pid })
            }
            Err(Errno::EPERM) => {
                tracing::debug!(
                    tid,
                    status = %std::fs::read_to_string(format!("/proc/{}/task/{tid}/status", self.pid)).unwrap_or_default(),
                    "PTRACE_SEIZE refused"
                );
                return Err(InjectError::PtraceDenied {
                    pid: self.pid,
                    hint: ptrace_hint(self.pid),
                });
            }
            Err(e) => return Err(died_or(self.pid, tid, "PTRACE_SEIZE", e)),
        }
        self.tids.insert(tid);
        ptrace::interrupt(Pid::from_raw(tid))
            .map_err(|e| died_or(self.pid, tid, "PTRACE_INTERRUPT", e))
    }

    fn stop_all(&mut self) -> Result<(), InjectError> {
        // Interrupt those we hold, then pick up new threads until the set is stable: a stopped
        // thread cannot create another one, so this converges.
        if self.running {
            for &tid in &self.tids {
                ptrace::interrupt(Pid::from_raw(tid))
                    .map_err(|e| died_or(self.pid, tid, "PTRACE_INTERRUPT", e))?;
            }
            let tids: Vec<i32> = self.tids.iter().copied().collect();
            for tid in tids {
                if !wait_interrupt_stop(self.pid, tid)? {
                    self.tids.remove(&tid);
                }
            }
            self.running = false;
        }
        loop {
            let now = super::procfs::threads(self.pid)?;
            let new: Vec<i32> = now.into_iter().filter(|t| !self.tids.contains(t)).collect();
            if new.is_empty() {
                break;
            }
            for &tid in &new {
                match self.seize(tid) {
                    Ok(()) => {}
                    // A thread that exited between listing and seizing.
                    Err(InjectError::TraceeDied { .. }) if tid != self.pid => {
                        self.tids.remove(&tid);
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            for tid in new {
                if self.tids.contains(&tid) && !wait_interrupt_stop(self.pid, tid)? {
                    self.tids.remove(&tid);
                }
            }
        }
        if !self.tids.contains(&self.pid) && super::procfs::is_exiting(self.pid) {
            return Err(InjectError::TraceeDied { pid: self.pid });
        }
        Ok(())
    }

    /// Let every thread run (still traced).
    pub fn resume(&mut self) -> Result<(), InjectError> {
        for &tid in &self.tids {
            ptrace::cont(Pid::from_raw(tid), None)
                .map_err(|e| died_or(self.pid, tid, "PTRACE_CONT", e))?;
        }
        self.running = true;
        Ok(())
    }

    /// Let thread `tid` alone run for about `dur` while the others stay stopped, then stop it
    /// again. A thread caught running inside libxcb usually gets to a wait of its own that way
    /// (every other thread is stopped, so nobody competes with it). Returns whether the thread
    /// still exists.
    pub fn nudge(&mut self, tid: i32, dur: Duration) -> Result<bool, InjectError> {
        if self.running || !self.tids.contains(&tid) {
            return Ok(true);
        }
        ptrace::cont(Pid::from_raw(tid), None)
            .map_err(|e| died_or(self.pid, tid, "PTRACE_CONT", e))?;
        std::thread::sleep(dur);
        let _ = ptrace::interrupt(Pid::from_raw(tid));
        if wait_interrupt_stop(self.pid, tid)? {
            return Ok(true);
        }
        self.tids.remove(&tid);
        if tid == self.pid {
            return Err(InjectError::TraceeDied { pid: self.pid });
        }
        Ok(false)
    }

    /// Stop every thread again (after [`Stopped::resume`]), including new ones.
    pub fn restop(&mut self) -> Result<(), InjectError> {
        self.stop_all()
    }

    /// The stopped threads.
    pub fn tids(&self) -> Vec<i32> {
        self.tids.iter().copied().collect()
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        for &tid in &self.tids {
            // Detaching a running tracee fails with ESRCH: stop it first.
            if self.running {
                let _ = ptrace::interrupt(Pid::from_raw(tid));
                let _ = wait_interrupt_stop(self.pid, tid);
            }
            let _ = ptrace::detach(Pid::from_raw(tid), None);
        }
    }
}

/// Why the kernel may have refused PTRACE_SEIZE on a live process, and what to do.
fn ptrace_hint(pid: i32) -> String {
    if let Some(tracer) = tracer_of(pid) {
        let comm = std::fs::read_to_string(format!("/proc/{tracer}/comm")).unwrap_or_default();
        return format!(
            "it is already traced by process {tracer} ({}); a process has one tracer at a time: \
             detach that debugger or tracer first",
            comm.trim()
        );
    }
    match std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope") {
        Ok(s) if s.trim() != "0" => format!(
            "kernel.yama.ptrace_scope is {} (`sudo sysctl kernel.yama.ptrace_scope=0`, or run \
             guievict as root; `guievict doctor` checks this)",
            s.trim()
        ),
        _ => "the kernel refused ptrace access although kernel.yama.ptrace_scope is 0 \
              (a security module such as AppArmor or SELinux, or a container without \
              CAP_SYS_PTRACE?)"
            .into(),
    }
}

/// The PID tracing `pid` (`TracerPid:` in its status), if any.
fn tracer_of(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .and_then(|v| v.trim().parse::<i32>().ok())
        .filter(|&t| t != 0)
}

/// Registers of a stopped thread.
pub fn regs(pid: i32, tid: i32) -> Result<Regs, InjectError> {
    ptrace::getregs(Pid::from_raw(tid)).map_err(|e| died_or(pid, tid, "PTRACE_GETREGS", e))
}

/// Read `len` bytes of target memory at `addr` (fewer if the range ends in unmapped memory).
pub fn read_mem(pid: i32, addr: u64, len: usize) -> Result<Vec<u8>, InjectError> {
    let mut buf = vec![0u8; len];
    let n = {
        let mut local = [IoSliceMut::new(&mut buf)];
        let remote = [RemoteIoVec {
            base: addr as usize,
            len,
        }];
        process_vm_readv(Pid::from_raw(pid), &mut local, &remote)
            .map_err(|e| died_or(pid, pid, "process_vm_readv", e))?
    };
    buf.truncate(n);
    Ok(buf)
}

/// Write `data` into target memory at `addr`.
pub fn write_mem(pid: i32, addr: u64, data: &[u8]) -> Result<(), InjectError> {
    let local = [IoSlice::new(data)];
    let remote = [RemoteIoVec {
        base: addr as usize,
        len: data.len(),
    }];
    let n = process_vm_writev(Pid::from_raw(pid), &local, &remote)
        .map_err(|e| died_or(pid, pid, "process_vm_writev", e))?;
    if n != data.len() {
        return Err(InjectError::Ptrace {
            pid,
            tid: pid,
            op: "process_vm_writev (short)",
            source: Errno::EFAULT,
        });
    }
    Ok(())
}

/// Read a NUL-terminated string from the target (at most `max` bytes).
pub fn read_cstr(pid: i32, addr: u64, max: usize) -> Result<String, InjectError> {
    let mut out = Vec::new();
    let mut a = addr;
    while out.len() < max {
        // Never cross a page boundary in one read.
        let chunk = (4096 - (a % 4096)) as usize;
        let part = read_mem(pid, a, chunk.min(max - out.len()))?;
        if part.is_empty() {
            break;
        }
        if let Some(i) = part.iter().position(|&b| b == 0) {
            out.extend_from_slice(&part[..i]);
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
        a += part.len() as u64;
        out.extend_from_slice(&part);
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Restores one thread's registers and the stack bytes a call borrowed, on every path.
#[derive(Debug)]
pub struct CallGuard {
    pid: i32,
    tid: i32,
    saved: Regs,
    saved_mem: Option<(u64, Vec<u8>)>,
    /// The self-restoring return of the call in progress, if any (see [`return_code`]).
    ret: Option<ReturnFrame>,
    /// Return to address 0 instead (`GUIEVICT_INJECT_PLAIN_RETURN`, a debugging aid).
    plain: bool,
}

impl CallGuard {
    /// Prepare to borrow thread `tid` (stopped) for calls.
    pub fn new(pid: i32, tid: i32) -> Result<CallGuard, InjectError> {
        let saved = regs(pid, tid)?;
        Ok(CallGuard {
            pid,
            tid,
            saved,
            saved_mem: None,
            ret: None,
            plain: std::env::var_os("GUIEVICT_INJECT_PLAIN_RETURN").is_some(),
        })
    }

    /// Call `func(args…)` in the target on this thread with `data` copied onto its stack;
    /// `args` may refer to the copy through [`DATA`]. Returns `rax`.
    pub fn call(&mut self, func: u64, args: &[u64], data: &[u8]) -> Result<u64, InjectError> {
        let (pid, tid) = (self.pid, self.tid);
        // Layout below the thread's stack pointer (top down): an untouched gap, the slot with
        // the `rip` to return to (at a fixed depth, see `return_code`), the data, the register
        // block of the self-restoring return, the return address.
        let rip_slot = self.saved.rsp.wrapping_sub(RIP_SLOT_DEPTH + 8);
        let data_addr = (rip_slot - data.len() as u64) & !15;
        let block = (data_addr - BLOCK_LEN as u64) & !15;
        // At function entry rsp+8 must be 16-byte aligned: one return address below an
        // aligned boundary.
        let new_sp = block - 8;
        let region_len = (rip_slot + 8 - new_sp) as usize;
        if self.saved_mem.is_none() {
            let orig = read_mem(pid, new_sp, region_len)?;
            if orig.len() != region_len {
                return Err(InjectError::Ptrace {
                    pid,
                    tid,
                    op: "reading the stack below rsp",
                    source: Errno::EFAULT,
                });
            }
            self.saved_mem = Some((new_sp, orig));
        }
        write_mem(pid, data_addr, data)?;
        // Return into the self-restoring code when the target has it: if we vanish during the
        // call, the thread still gets its own registers back and carries on where it was.
        // Otherwise return to address 0, where the fault tells us the call is over.
        self.ret = (!self.plain)
            .then(|| return_code_in(pid))
            .flatten()
            .map(|code| ReturnFrame {
                code,
                block,
                cookie: cookie(),
            });
        let back = match self.ret {
            Some(ret) => {
                let to = restartable(&self.saved);
                write_mem(pid, rip_slot, &to.rip.to_ne_bytes())?;
                write_mem(pid, block, &return_block(&to, rip_slot, ret.cookie))?;
                ret.code
            }
            None => 0,
        };
        write_mem(pid, new_sp, &back.to_ne_bytes())?;
        let mut r = self.saved;
        r.rip = func;
        r.rsp = new_sp;
        r.rax = 0;
        // Not in a system call: the kernel must not try to restart anything at our address.
        r.orig_rax = u64::MAX;
        let regs_args = [
            &mut r.rdi, &mut r.rsi, &mut r.rdx, &mut r.rcx, &mut r.r8, &mut r.r9,
        ];
        for (slot, &a) in regs_args.into_iter().zip(args) {
            *slot = if a == DATA { data_addr } else { a };
        }
        ptrace::setregs(Pid::from_raw(tid), r)
            .map_err(|e| died_or(pid, tid, "PTRACE_SETREGS", e))?;
        ptrace::cont(Pid::from_raw(tid), None).map_err(|e| died_or(pid, tid, "PTRACE_CONT", e))?;
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            if let Some(ret) = self.ret {
                if let Some(result) = self.call_done(&ret)? {
                    return Ok(result);
                }
            }
            let wait_until = match self.ret {
                // Look at the done flag every 200 µs.
                Some(_) => (Instant::now() + Duration::from_micros(200)).min(deadline),
                None => deadline,
            };
            let ev = match wait_event(pid, tid, wait_until) {
                Err(InjectError::Timeout { .. }) if Instant::now() < deadline => continue,
                Ok(ev) => ev,
                Err(InjectError::Timeout { .. }) => {
                    let _ = ptrace::interrupt(Pid::from_raw(tid));
                    let _ = wait_interrupt_stop(pid, tid);
                    if self.ret.is_some() {
                        // It may have returned through the return code by itself and gone on:
                        // then rewinding it would be wrong. Leave it where it is.
                        if let Ok(now) = regs(pid, tid) {
                            self.saved = now;
                            self.saved_mem = None;
                        }
                    }
                    return Err(InjectError::Timeout {
                        pid,
                        what: format!("the function at {func:#x} to return"),
                    });
                }
                Err(e) => return Err(e),
            };
            match ev {
                Event::Gone => return Err(InjectError::TraceeDied { pid }),
                Event::Stop => {
                    ptrace::cont(Pid::from_raw(tid), None)
                        .map_err(|e| died_or(pid, tid, "PTRACE_CONT", e))?;
                }
                Event::Signal(Signal::SIGSEGV) => {
                    let now = regs(pid, tid)?;
                    if now.rip == 0 {
                        return Ok(now.rax);
                    }
                    return Err(InjectError::CallCrashed {
                        pid,
                        func,
                        rip: now.rip,
                    });
                }
                Event::Signal(sig @ (Signal::SIGBUS | Signal::SIGILL | Signal::SIGFPE)) => {
                    let now = regs(pid, tid)?;
                    tracing::error!(?sig, rip = now.rip, "fault inside the injected call");
                    return Err(InjectError::CallCrashed {
                        pid,
                        func,
                        rip: now.rip,
                    });
                }
                Event::Signal(sig) => {
                    // The application's own signal: deliver it as usual.
                    ptrace::cont(Pid::from_raw(tid), Some(sig))
                        .map_err(|e| died_or(pid, tid, "PTRACE_CONT", e))?;
                }
            }
        }
    }

    /// Put the registers and memory back now (also done on drop).
    pub fn restore(&mut self) -> Result<(), InjectError> {
        if let Some((addr, bytes)) = self.saved_mem.take() {
            write_mem(self.pid, addr, &bytes)?;
        }

        ptrace::setregs(Pid::from_raw(self.tid), restartable(&self.saved))
            .map_err(|e| died_or(self.pid, self.tid, "PTRACE_SETREGS", e))?;
        // Restored: later drops must not rewind a second time.
        self.saved = restartable(&self.saved);
        Ok(())
    }

    /// Whether the call through the return code has finished: then stop the thread (it has
    /// restored itself and gone back to what it was doing) and give the function's result.
    fn call_done(&mut self, ret: &ReturnFrame) -> Result<Option<u64>, InjectError> {
        let b = read_mem(self.pid, ret.block + OFF_RESULT as u64, 16)?;
        if b.len() != 16 || b[8..16] != ret.cookie.to_ne_bytes() {
            return Ok(None);
        }
        let result = u64::from_ne_bytes(b[..8].try_into().unwrap_or_default());
        let _ = ptrace::interrupt(Pid::from_raw(self.tid));
        if !wait_interrupt_stop(self.pid, self.tid)? {
            return Err(InjectError::TraceeDied { pid: self.pid });
        }
        let mut now = regs(self.pid, self.tid)?;
        if now.rip >= ret.code && now.rip < ret.code + RETURN_CODE_MAX as u64 {
            // Still inside the return code: finish its work by hand.
            now = restartable(&self.saved);
            now.orig_rax = u64::MAX;
            ptrace::setregs(Pid::from_raw(self.tid), now)
                .map_err(|e| died_or(self.pid, self.tid, "PTRACE_SETREGS", e))?;
            now = regs(self.pid, self.tid)?;
        }
        // The thread put itself back and may have gone on since: where it is now is where it
        // must stay. Nothing of the old state is restored any more (its stack below the old
        // stack pointer may be in use again).
        self.saved = now;
        self.saved_mem = None;
        Ok(Some(result))
    }
}

/// Where a call's self-restoring return lives (see [`return_code`]).
#[derive(Clone, Copy, Debug)]
struct ReturnFrame {
    /// Address of the return code in the target.
    code: u64,
    /// Address of the register block (the stack pointer when the code starts).
    block: u64,
    /// Value the code writes to the done slot.
    cookie: u64,
}

/// A value for the done mark that stale stack contents will not show by chance.
fn cookie() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (t ^ (u64::from(std::process::id()) << 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1
}

/// Register block offsets (bytes from the stack pointer at which the return code starts).
const OFF_EFLAGS: usize = 0x80;
const OFF_RIP_SLOT: usize = 0x88;
const OFF_RESULT: usize = 0x90;
const OFF_COOKIE: usize = 0xa0;
const BLOCK_LEN: usize = 0xa8;
/// Iterations of the return code's `pause` loop: the time (some ms) the injector has to see
/// the done mark before the thread goes on by itself and may reuse that stack.
const HANDSHAKE_SPINS: u32 = 1 << 22;
/// `ret` pops the saved `rip` from a slot this many bytes + 8 below the saved stack pointer;
/// everything a call borrows lies below that slot, far below the red zone (128 bytes).
const RIP_SLOT_DEPTH: u64 = 2048;
/// Marker in front of the return code in the target.
const RETURN_MAGIC: &[u8; 16] = b"guievict-return3";
/// Bytes reserved at the end of libc's code mapping for the marker and the return code.
const RETURN_AREA: u64 = 512;
/// Upper bound on the return code's length.
const RETURN_CODE_MAX: usize = RETURN_AREA as usize - 16;

/// The register block for returning to `r` (restartable registers) through a `ret` from
/// `rip_slot`, with `cookie` to be written as the done mark.
fn return_block(r: &Regs, rip_slot: u64, cookie: u64) -> Vec<u8> {
    let vals = [
        r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13,
        r.r14, r.r15, 0, r.eflags, rip_slot, 0, 0, cookie,
    ];
    vals.iter().flat_map(|v| v.to_ne_bytes()).collect()
}

/// Machine code a called function returns into (x86_64; the same bytes for every call, all
/// operands relative to the stack pointer, which points at the register block laid out by
/// [`return_block`]). It stores `rax` as the result and the call's cookie as the done mark,
/// spins a few milliseconds (the injector, if still there, sees the mark meanwhile and
/// completes the return by hand, before the thread could reuse that stack),
/// restores `rflags` and every general register, loads the stack pointer with the address of
/// the slot holding the saved `rip` and returns through it with `ret 2048`, which leaves the
/// stack pointer exactly where it was. So the thread goes back to what it was doing — an
/// interrupted system call rewound to restart — whether or not the injector is still there.
/// No register is needed for the last steps, and a signal arriving meanwhile builds its frame
/// below the stack pointer, never over the slots still to be read.
pub fn return_code() -> Vec<u8> {
    let mut c: Vec<u8> = Vec::new();
    let rsp_op = |c: &mut Vec<u8>, prefix: &[u8], off: usize| {
        c.extend(prefix);
        c.push(0x24); // SIB: base rsp
        c.extend((off as u32).to_le_bytes());
    };
    // mov [rsp+result], rax; mov rax, [rsp+cookie]; mov [rsp+done], rax
    rsp_op(&mut c, &[0x48, 0x89, 0x84], OFF_RESULT);
    rsp_op(&mut c, &[0x48, 0x8b, 0x84], OFF_COOKIE);
    rsp_op(&mut c, &[0x48, 0x89, 0x84], OFF_RESULT + 8);
    // Spin a while (pause; dec ecx; jnz) so that the injector, if still there, sees the mark
    // and completes the return by hand. No system call here: one interrupted by the injector
    // would replace the thread's restart block, which the interrupted call (poll, nanosleep…)
    // needs to resume through restart_syscall.
    c.push(0xb9); // mov ecx, imm32
    c.extend(HANDSHAKE_SPINS.to_le_bytes());
    c.extend([0xf3, 0x90, 0xff, 0xc9, 0x75, 0xfa]); // pause; dec ecx; jnz -6
                                                    // push qword [rsp+eflags]; popfq
    rsp_op(&mut c, &[0xff, 0xb4], OFF_EFLAGS);
    c.push(0x9d);
    // mov reg, [rsp+8*i] for every general register but rsp: (REX, ModRM) in block order.
    const LOADS: [(u8, u8); 15] = [
        (0x48, 0x84), // rax
        (0x48, 0x9c), // rbx
        (0x48, 0x8c), // rcx
        (0x48, 0x94), // rdx
        (0x48, 0xb4), // rsi
        (0x48, 0xbc), // rdi
        (0x48, 0xac), // rbp
        (0x4c, 0x84), // r8
        (0x4c, 0x8c), // r9
        (0x4c, 0x94), // r10
        (0x4c, 0x9c), // r11
        (0x4c, 0xa4), // r12
        (0x4c, 0xac), // r13
        (0x4c, 0xb4), // r14
        (0x4c, 0xbc), // r15
    ];
    for (i, (rex, modrm)) in LOADS.iter().enumerate() {
        rsp_op(&mut c, &[*rex, 0x8b, *modrm], 8 * i);
    }
    // mov rsp, [rsp+rip_slot]; ret 2048
    rsp_op(&mut c, &[0x48, 0x8b, 0xa4], OFF_RIP_SLOT);
    c.push(0xc2);
    c.extend((RIP_SLOT_DEPTH as u16).to_le_bytes());
    c
}

/// The address of the return code in `pid`, writing it (behind [`RETURN_MAGIC`]) into the
/// zero padding at the end of libc's code mapping if it is not there yet. The write goes
/// through `/proc/<pid>/mem` (a private copy of that page for the target); nothing executes
/// those bytes otherwise. None when libc's mapping has no such padding.
fn return_code_in(pid: i32) -> Option<u64> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let end = maps.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let range = f.next()?;
        let perms = f.next()?;
        let path = f.nth(3)?;
        let name = path.rsplit('/').next()?;
        (perms.contains('x') && name.starts_with("libc.so"))
            .then(|| u64::from_str_radix(range.split_once('-')?.1, 16).ok())?
    })?;
    let area = end - RETURN_AREA;
    let have = read_mem(pid, area, RETURN_AREA as usize).ok()?;
    let code = return_code();
    let mut want = RETURN_MAGIC.to_vec();
    want.extend(&code);
    if have.starts_with(&want) {
        return Some(area + 16);
    }
    if have.len() != RETURN_AREA as usize || have.iter().any(|&b| b != 0) {
        return None;
    }
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/mem"))
        .ok()?;
    f.write_all_at(&want, area).ok()?;
    Some(area + 16)
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            tracing::warn!(error = %e, tid = self.tid, "could not restore the borrowed thread");
        }
    }
}

/// Placeholder argument meaning "the address of the data copied onto the stack".
pub const DATA: u64 = u64::MAX - 0x5eed;

/// Duplicate descriptor `fd` of process `pid` into this process (`pidfd_getfd`).
pub fn remote_fd(pid: i32, fd: RawFd) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes plain integers and returns a new descriptor or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: `pidfd` was just returned to us by the kernel and is owned by nobody else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd_getfd takes plain integers and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel installed this descriptor for us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Whether thread `tid` of `pid` is gone or exiting (zombie/dead, or no longer listed).
fn thread_exiting(pid: i32, tid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")) {
        Err(_) => true,
        Ok(s) => s
            .lines()
            .find_map(|l| l.strip_prefix("State:"))
            .is_some_and(|st| {
                let st = st.trim_start();
                st.starts_with('Z') || st.starts_with('X')
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_code_shape() {
        let c = return_code();
        assert!(
            c.len() + RETURN_MAGIC.len() <= RETURN_AREA as usize,
            "{} bytes",
            c.len()
        );
        // Ends with `ret 2048`; makes no system call (it must not touch the restart block).
        assert_eq!(&c[c.len() - 3..], &[0xc2, 0x00, 0x08]);
        assert_eq!(c.windows(2).filter(|w| w == &[0x0f, 0x05]).count(), 0);
        // Every block slot it reads lies inside the block.
        let block = return_block(&zero(), 0x1000, 7);
        assert_eq!(block.len(), BLOCK_LEN);
        assert_eq!(&block[OFF_COOKIE..OFF_COOKIE + 8], &7u64.to_ne_bytes());
        assert_eq!(
            &block[OFF_RIP_SLOT..OFF_RIP_SLOT + 8],
            &0x1000u64.to_ne_bytes()
        );
    }

    fn zero() -> Regs {
        // SAFETY: user_regs_struct is plain integers; all-zero is a valid value.
        unsafe { std::mem::zeroed() }
    }

    #[test]
    fn rewinds_interrupted_syscalls() {
        let mut r = zero();
        r.orig_rax = 7;
        r.rax = (-514i64) as u64;
        r.rip = 0x1002;
        assert_eq!(interrupted_syscall(&r), Some(7));
        let x = restartable(&r);
        assert_eq!((x.rax, x.rip), (7, 0x1000));
        // Idempotent once rewound.
        let y = restartable(&x);
        assert_eq!((y.rax, y.rip), (7, 0x1000));
        r.rax = (-516i64) as u64;
        assert_eq!(restartable(&r).rax, NR_RESTART_SYSCALL);
        r.rax = 3;
        assert_eq!(interrupted_syscall(&r), None);
        assert_eq!(restartable(&r).rip, 0x1002);
    }
}
