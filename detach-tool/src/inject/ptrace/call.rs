//! A function called inside the target on a borrowed, stopped thread: the function's address,
//! its arguments and a block of data flow in (the data copied onto the thread's stack, below a
//! gap that leaves its red zone alone), the function's `rax` flows out. [`CallGuard`] keeps
//! the thread's registers and the stack bytes the call borrowed and puts them back on every
//! path (also on drop); with the self-restoring return of [`super::retcode`] the thread gets
//! back to where it was even if the injector is killed during the call.

use super::mem::{read_mem, write_mem};
use super::retcode::{
    cookie, return_block, return_code_in, ReturnFrame, BLOCK_LEN, OFF_RESULT, RETURN_CODE_MAX,
    RIP_SLOT_DEPTH,
};
use super::{died_or, regs, restartable, wait_event, wait_interrupt_stop, Event, Regs};
use crate::inject::InjectError;
use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// How long a function called in the target may run.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where [`CallGuard::lay_out_frame`] put a call's stack frame.
struct Frame {
    /// The stack pointer at function entry (the return address is there).
    new_sp: u64,
    /// Address of the data copied onto the stack (what [`DATA`] stands for).
    data_addr: u64,
}

/// Restores one thread's registers and the stack bytes a call borrowed, on every path.
#[derive(Debug)]
pub struct CallGuard {
    pid: i32,
    tid: i32,
    saved: Regs,
    saved_mem: Option<(u64, Vec<u8>)>,
    /// The self-restoring return of the call in progress, if any (see [`super::retcode::return_code`]).
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
        let frame = self.lay_out_frame(data)?;
        self.start(func, args, &frame)?;
        self.wait_result(func)
    }

    /// Phase 1 of a call: save the stack bytes the call borrows (once per guard), copy `data`
    /// onto the stack and, when the target has the self-restoring return code, the register
    /// block and the saved `rip` it returns through; the return address goes last.
    fn lay_out_frame(&mut self, data: &[u8]) -> Result<Frame, InjectError> {
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
        Ok(Frame { new_sp, data_addr })
    }

    /// Phase 2: point the thread's registers at `func` with the arguments (a [`DATA`] argument
    /// becomes the address of the copied data) and let it run.
    fn start(&mut self, func: u64, args: &[u64], frame: &Frame) -> Result<(), InjectError> {
        let (pid, tid) = (self.pid, self.tid);
        let mut r = self.saved;
        r.rip = func;
        r.rsp = frame.new_sp;
        r.rax = 0;
        // Not in a system call: the kernel must not try to restart anything at our address.
        r.orig_rax = u64::MAX;
        let regs_args = [
            &mut r.rdi, &mut r.rsi, &mut r.rdx, &mut r.rcx, &mut r.r8, &mut r.r9,
        ];
        for (slot, &a) in regs_args.into_iter().zip(args) {
            *slot = if a == DATA { frame.data_addr } else { a };
        }
        ptrace::setregs(Pid::from_raw(tid), r)
            .map_err(|e| died_or(pid, tid, "PTRACE_SETREGS", e))?;
        ptrace::cont(Pid::from_raw(tid), None).map_err(|e| died_or(pid, tid, "PTRACE_CONT", e))
    }

    /// Phase 3: wait (at most [`CALL_TIMEOUT`]) until the call is over — the done mark of the
    /// self-restoring return, or the fault at address 0 — and give its `rax`. The
    /// application's own signals meanwhile are delivered; a fault elsewhere is a crash.
    fn wait_result(&mut self, func: u64) -> Result<u64, InjectError> {
        let (pid, tid) = (self.pid, self.tid);
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

impl Drop for CallGuard {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            tracing::warn!(error = %e, tid = self.tid, "could not restore the borrowed thread");
        }
    }
}

/// Placeholder argument meaning "the address of the data copied onto the stack".
pub const DATA: u64 = u64::MAX - 0x5eed;
