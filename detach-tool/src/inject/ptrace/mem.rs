//! The target's memory and descriptors: bytes flow in and out of a process through
//! `process_vm_readv`/`process_vm_writev` (a thread need not be stopped for that, but what it
//! reads is only stable while it is), and a descriptor of the target flows into this process
//! through `pidfd_getfd`. The two raw system calls nix does not wrap (`pidfd_open`,
//! `pidfd_getfd`) are fenced in here with `SAFETY` notes.

use super::died_or;
use crate::inject::InjectError;
use nix::errno::Errno;
use nix::sys::uio::{process_vm_readv, process_vm_writev, RemoteIoVec};
use nix::unistd::Pid;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

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
