//! Bytes and descriptors on one socket of the loop: what is available is read into the loop's
//! buffer with the `SCM_RIGHTS` descriptors that came with it, as much as a socket takes is
//! written with the descriptors queued for it riding on the first byte; and, when a server's
//! connection ends, a fresh connection to its listening address tells a dead server from one
//! that merely closed this client ([`server_alive`]).

use crate::ffi::{self, FcntlInt};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, SockaddrStorage};
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// One socket of the loop (the app's, a server's, the internal client's) with the descriptors
/// waiting to go out on it.
pub(super) struct Peer {
    pub(super) fd: OwnedFd,
    pub(super) fds_out: Vec<OwnedFd>,
    /// The server's listening address (servers only), to tell a dead server from one that
    /// closed this connection ([`server_alive`]).
    pub(super) addr: Option<SockaddrStorage>,
}

/// The address a connected socket's peer listens on.
pub(super) fn peer_addr(fd: &OwnedFd) -> Option<SockaddrStorage> {
    nix::sys::socket::getpeername::<SockaddrStorage>(fd.as_raw_fd()).ok()
}

/// Whether an X server still answers at `addr` (a connection that ended while its server lives
/// was closed by the server: KillClient, xkill). A fresh connection sends a connection setup
/// request and waits up to [`PROBE_TIMEOUT`] for the first byte of any answer (success, failure
/// or authenticate: all mean alive). A listening socket of a server being killed can still
/// accept for a moment (the kernel closes a dying process's descriptors one by one), so
/// acceptance alone proves nothing: EOF or a reset after it means dead. An unknown address
/// counts as alive (the app then ends as it would without guievict); no answer in time counts
/// as dead (the app is kept: losing it would be the worse mistake).
pub(super) fn server_alive(addr: Option<&SockaddrStorage>) -> bool {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType};
    let Some(addr) = addr else {
        return true;
    };
    let family = if addr.as_unix_addr().is_some() {
        AddressFamily::Unix
    } else if addr.as_sockaddr_in().is_some() {
        AddressFamily::Inet
    } else if addr.as_sockaddr_in6().is_some() {
        AddressFamily::Inet6
    } else {
        return true;
    };
    let Ok(fd) = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    ) else {
        return true;
    };
    let deadline = std::time::Instant::now() + PROBE_TIMEOUT;
    let wait = |events: libc::c_short| -> bool {
        let mut p = [libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        }];
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            match ffi::poll(&mut p, left.as_millis().max(1) as i32) {
                Ok(1) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    };
    match connect(fd.as_raw_fd(), addr) {
        Ok(()) => {}
        Err(nix::errno::Errno::EINPROGRESS) | Err(nix::errno::Errno::EAGAIN) => {
            if !wait(libc::POLLOUT)
                || !nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::SocketError)
                    .is_ok_and(|e| e == 0)
            {
                return false;
            }
        }
        Err(_) => return false,
    }
    // Connection setup, little-endian, protocol 11.0, no authorization.
    let setup = [b'l', 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    if nix::unistd::write(&fd, &setup).ok() != Some(setup.len()) {
        return false;
    }
    let mut first = [0u8; 1];
    loop {
        if !wait(libc::POLLIN) {
            return false;
        }
        match nix::unistd::read(fd.as_raw_fd(), &mut first) {
            Ok(1) => return true,
            Ok(_) => return false,
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// How long [`server_alive`] waits for a server to accept and answer a connection setup.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(2000);

pub(super) fn set_nonblocking(fd: BorrowedFd<'_>) -> std::io::Result<()> {
    let fl = ffi::fcntl_int(fd, FcntlInt::GetFl, 0)?;
    ffi::fcntl_int(fd, FcntlInt::SetFl, fl | libc::O_NONBLOCK)?;
    Ok(())
}

pub(super) enum ReadResult {
    /// `n` bytes were read into the loop's buffer, with these descriptors.
    Data(usize, Vec<OwnedFd>),
    Eof,
    WouldBlock,
}

/// Read what is available into `buf` (reused across reads: no allocation, no zeroing per
/// message — this is on every round trip's path).
pub(super) fn read_some(fd: RawFd, buf: &mut [u8]) -> std::io::Result<ReadResult> {
    let mut cmsg = nix::cmsg_space!([RawFd; 32]);
    match ffi::recv_with_fds(fd, buf, &mut cmsg, MsgFlags::MSG_CMSG_CLOEXEC) {
        Ok((n, fds)) => {
            if n == 0 {
                return Ok(ReadResult::Eof);
            }
            Ok(ReadResult::Data(n, fds))
        }
        Err(nix::errno::Errno::EAGAIN) => Ok(ReadResult::WouldBlock),
        Err(nix::errno::Errno::EINTR) => Ok(ReadResult::WouldBlock),
        Err(nix::errno::Errno::ENOTSOCK) => {
            // A pipe or other non-socket (should not happen for X): plain read.
            match nix::unistd::read(fd, buf) {
                Ok(0) => Ok(ReadResult::Eof),
                Ok(n) => Ok(ReadResult::Data(n, Vec::new())),
                Err(nix::errno::Errno::EAGAIN) => Ok(ReadResult::WouldBlock),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Write as much of `buf` as the socket takes; descriptors ride with the first byte.
pub(super) fn write_some(peer: &mut Peer, buf: &[u8]) -> std::io::Result<usize> {
    if buf.is_empty() {
        return Ok(0);
    }
    let fd = peer.fd.as_raw_fd();
    let raw: Vec<RawFd> = peer.fds_out.iter().map(|f| f.as_raw_fd()).collect();
    let cmsgs = if raw.is_empty() {
        vec![]
    } else {
        vec![ControlMessage::ScmRights(&raw)]
    };
    let iov = [IoSlice::new(buf)];
    match sendmsg::<()>(fd, &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
        Ok(n) => {
            if n > 0 {
                peer.fds_out.clear();
            }
            Ok(n)
        }
        Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => Ok(0),
        Err(nix::errno::Errno::ENOTSOCK) => match nix::unistd::write(peer.fd.as_fd(), buf) {
            Ok(n) => Ok(n),
            Err(nix::errno::Errno::EAGAIN) => Ok(0),
            Err(e) => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}
