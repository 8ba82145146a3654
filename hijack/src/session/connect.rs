//! Raw connections to an X display, before any client library: the socket (every address the
//! display name allows, TCP_NODELAY on TCP) and the setup handshake with the X authority found
//! as libxcb finds it, bounded by [`CONNECT_TIMEOUT`]. Out: the socket and the server's setup,
//! or a refusal told apart by cause (no cookie, a refused cookie, an ssh forwarding closing the
//! setup). The handshake's round trips and bytes are reported to `traffic`.

use super::error::SessionError;
use crate::traffic::{self, Traffic};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::time::{Duration, Instant};
use x11rb::protocol::xproto::Setup;
use x11rb::rust_connection::DefaultStream;

/// X authorisation to use for a display (name and data, as in an Xauthority entry).
#[derive(Clone, Debug, Default)]
pub struct Auth {
    /// Protocol name, e.g. `MIT-MAGIC-COOKIE-1`; empty = look it up in `$XAUTHORITY`.
    pub name: Vec<u8>,
    /// Cookie.
    pub data: Vec<u8>,
}

/// Open a socket to `display` (every address its name allows, as libxcb does) without any
/// handshake. Returns the socket, the peer address for Xauthority lookup, and the display
/// number.
pub fn connect_socket(
    display: &str,
) -> Result<(OwnedFd, x11rb_protocol::xauth::Family, Vec<u8>, u16), SessionError> {
    let err = |why: String| SessionError::Connect {
        display: display.to_string(),
        why,
    };
    let parsed = x11rb_protocol::parse_display::parse_display(Some(display))
        .map_err(|e| err(e.to_string()))?;
    let mut last = String::from("no address to try");
    for addr in parsed.connect_instruction() {
        match DefaultStream::connect(&addr) {
            Ok((stream, (family, address))) => {
                let raw = stream.into_raw_fd();
                // SAFETY: `raw` was just released by `into_raw_fd`, so we are its only owner.
                let fd = unsafe { OwnedFd::from_raw_fd(raw) };
                // As libxcb does: no Nagle delay on a TCP display (a key's echo would wait
                // for the previous packet's acknowledgement, ~40 ms).
                if !is_unix_socket(&fd) {
                    let name = display;
                    if let Err(e) = nix::sys::socket::setsockopt(
                        &fd,
                        nix::sys::socket::sockopt::TcpNoDelay,
                        &true,
                    ) {
                        tracing::warn!("TCP_NODELAY on the connection to {name}: {e}");
                    }
                }
                return Ok((fd, family, address, parsed.display));
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(err(last))
}

/// Longest wait for a server's answer to the connection setup.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Open a connection to `display` and perform the setup handshake; returns the socket and the
/// server's setup.
pub fn connect_raw(display: &str, auth: Option<&Auth>) -> Result<(OwnedFd, Setup), SessionError> {
    let err = |why: String| SessionError::Connect {
        display: display.to_string(),
        why,
    };
    let (fd, family, address, number) = connect_socket(display)?;
    let tcp = !is_unix_socket(&fd);
    let (name, data) = match auth.filter(|a| !a.name.is_empty()) {
        Some(a) => (a.name.clone(), a.data.clone()),
        // As libxcb does: an unreadable or absent Xauthority means "try without".
        None => x11rb_protocol::xauth::get_auth(family, &address, number)
            .unwrap_or(None)
            .unwrap_or_default(),
    };
    let sent = name.clone();
    let (mut connect, request) = x11rb_protocol::connect::Connect::with_authorization(name, data);
    write_all(&fd, &request).map_err(|e| err(format!("sending setup: {e}")))?;
    let mut received = 0;
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        let buf = connect.buffer();
        let n = read_blocking(&fd, buf, deadline).map_err(|e| {
            err(if e.kind() == std::io::ErrorKind::TimedOut {
                format!(
                    "the server accepted the connection but did not answer within {} s: it is \
                     stopped (SIGSTOP, a debugger) or hung",
                    CONNECT_TIMEOUT.as_secs()
                )
            } else {
                format!("reading setup: {e}")
            })
        })?;
        if n == 0 {
            // An ssh X11 forwarding closes the connection instead of answering a setup that
            // does not carry its cookie.
            let why = if sent.is_empty() {
                "the server closed the connection during setup without answering; no cookie \
                 was found for this display, and an ssh-forwarded display (ssh -X/-Y) closes \
                 connections that do not carry its cookie: give it with --auth FILE or \
                 XAUTHORITY (`xauth list` in the ssh session shows it)"
            } else {
                "the server closed the connection during setup without answering; an \
                 ssh-forwarded display (ssh -X/-Y) does that when the cookie is not the one \
                 ssh set up for it (`xauth list` in the ssh session shows it)"
            };
            return Err(err(why.into()));
        }
        received += n;
        if connect.advance(n) {
            break;
        }
    }
    // A TCP connect costs a round trip of its own before the handshake's.
    traffic::add(Traffic {
        round_trips: if family == x11rb_protocol::xauth::Family::LOCAL && !tcp {
            1
        } else {
            2
        },
        bytes_sent: request.len() as u64,
        bytes_received: received as u64,
    });
    let setup = connect
        .into_setup()
        .map_err(|e| err(refusal_reason(&e, &sent)))?;
    // `:N.S` names screen S: one the server does not have is refused, not silently screen 0.
    if let Ok(p) = x11rb_protocol::parse_display::parse_display(Some(display)) {
        if usize::from(p.screen) >= setup.roots.len() {
            return Err(err(format!(
                "the display has {} screen(s), no screen {}",
                setup.roots.len(),
                p.screen
            )));
        }
    }
    Ok((fd, setup))
}

/// Why the server refused the connection setup, by cause: no cookie given where one is
/// required, a cookie given and refused, or an authentication dialogue guievict cannot hold.
/// `sent` is the name of the authorization protocol sent (empty: none).
fn refusal_reason(e: &x11rb_protocol::errors::ConnectError, sent: &[u8]) -> String {
    use x11rb_protocol::errors::ConnectError as E;
    let sent = String::from_utf8_lossy(sent);
    match e {
        E::SetupFailed(f) => {
            let reason = String::from_utf8_lossy(&f.reason);
            let reason = reason.trim();
            if sent.is_empty() {
                format!(
                    "authorization required and no cookie was found for this display \
                     (the server says: {reason}); give an Xauthority file with --auth FILE, or \
                     set XAUTHORITY for guievict as for any X client"
                )
            } else {
                format!(
                    "the server refused the {sent} cookie (the server says: {reason}): it is \
                     not this display's — stale after a server restart, or another display's \
                     entry"
                )
            }
        }
        E::SetupAuthenticate(a) => format!(
            "the server asks for further authentication ({}), which guievict does not support",
            String::from_utf8_lossy(&a.reason).trim()
        ),
        other => other.to_string(),
    }
}

fn write_all(fd: &OwnedFd, mut buf: &[u8]) -> std::io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {
                if Instant::now() > deadline {
                    return Err(std::io::ErrorKind::TimedOut.into());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn read_blocking(fd: &OwnedFd, buf: &mut [u8], deadline: Instant) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    loop {
        match nix::unistd::read(fd.as_raw_fd(), buf) {
            Ok(n) => return Ok(n),
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {
                if Instant::now() > deadline {
                    return Err(std::io::ErrorKind::TimedOut.into());
                }
                let mut p = [libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                }];
                let _ = crate::ffi::poll(&mut p, 100);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether `fd` is a unix-domain socket (file descriptors can pass over it: MIT-SHM's
/// AttachFd works); a TCP display cannot take them.
pub fn is_unix_socket(fd: &OwnedFd) -> bool {
    nix::sys::socket::getsockname::<nix::sys::socket::SockaddrStorage>(
        std::os::fd::AsRawFd::as_raw_fd(fd),
    )
    .is_ok_and(|a| a.as_unix_addr().is_some())
}
