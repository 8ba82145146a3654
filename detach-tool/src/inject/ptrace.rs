//! ptrace plumbing for the injector, x86_64 only: thread ids flow in, stopped threads flow out
//! ([`Stopped`], which resumes and detaches every thread on drop) with their registers (and
//! whether each sits in an interrupted system call, rewound by [`restartable`] so it restarts).
//! What is done with a stopped thread lives below: its memory and descriptors in [`mem`], a
//! function called inside the target in [`call`] (whose [`CallGuard`] puts the borrowed
//! registers and stack bytes back on every path), and the machine code such a call returns
//! into in [`retcode`].

mod call;
mod mem;
mod retcode;

pub use call::{CallGuard, DATA};
pub use mem::{read_cstr, read_mem, remote_fd};

use super::InjectError;
use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::collections::BTreeSet;
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

pub(super) fn died_or(pid: i32, tid: i32, op: &'static str, e: Errno) -> InjectError {
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
pub(super) enum Event {
    /// A ptrace stop we asked for (interrupt or group stop).
    Stop,
    /// A signal-delivery stop.
    Signal(Signal),
    /// The thread is gone.
    Gone,
}

pub(super) fn wait_event(pid: i32, tid: i32, deadline: Instant) -> Result<Event, InjectError> {
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
pub(super) fn wait_interrupt_stop(pid: i32, tid: i32) -> Result<bool, InjectError> {
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

    /// All-zero registers.
    pub(super) fn zero() -> Regs {
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
