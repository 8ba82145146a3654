//! Finding X connections. File descriptors flow in (this process's fd table, or one descriptor
//! handed over by the caller) and out come the ones whose peer is an X server: a unix socket
//! connected to `/tmp/.X11-unix/X<n>` (filesystem or abstract namespace) or a TCP socket to port
//! `6000 + n`, each classified with its display number.

use nix::sys::socket::{getpeername, SockaddrLike, SockaddrStorage};
use serde::{Deserialize, Serialize};
use std::os::fd::RawFd;

/// Lowest TCP port of an X server (display 0).
pub const X_TCP_PORT_BASE: u16 = 6000;
/// Highest display number we accept on TCP (ports 6000..=6063).
pub const X_TCP_MAX_DISPLAY: u16 = 63;
/// Directory of the local X server sockets.
pub const X_UNIX_DIR: &str = "/tmp/.X11-unix/X";

/// How an X connection reaches its server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum XPeer {
    /// Unix socket; `abstract_ns` for the `@/tmp/.X11-unix/X<n>` abstract name.
    Unix {
        /// Display number `n`.
        display: u32,
        /// Connected through the abstract namespace.
        abstract_ns: bool,
    },
    /// TCP to `host:6000+n`.
    Tcp {
        /// Display number `n`.
        display: u32,
        /// Peer address as text.
        addr: String,
    },
}

impl XPeer {
    /// Display number of the server.
    pub fn display(&self) -> u32 {
        match self {
            XPeer::Unix { display, .. } | XPeer::Tcp { display, .. } => *display,
        }
    }
}

impl std::fmt::Display for XPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            XPeer::Unix {
                display,
                abstract_ns: true,
            } => write!(f, "unix:@{X_UNIX_DIR}{display}"),
            XPeer::Unix { display, .. } => write!(f, "unix:{X_UNIX_DIR}{display}"),
            XPeer::Tcp { addr, .. } => write!(f, "tcp:{addr}"),
        }
    }
}

/// Parse `/tmp/.X11-unix/X<n>` into `n`.
fn display_from_path(bytes: &[u8]) -> Option<u32> {
    let rest = bytes.strip_prefix(X_UNIX_DIR.as_bytes())?;
    let rest = rest.split(|&b| b == 0).next()?;
    if rest.is_empty() || rest.len() > 9 || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(rest).ok()?.parse().ok()
}

/// Classify a unix peer address: `Some` when it is an X server's socket.
pub fn classify_unix(un: &nix::sys::socket::UnixAddr) -> Option<XPeer> {
    if let Some(p) = un.path() {
        use std::os::unix::ffi::OsStrExt;
        return display_from_path(p.as_os_str().as_bytes()).map(|display| XPeer::Unix {
            display,
            abstract_ns: false,
        });
    }
    let a = un.as_abstract()?;
    display_from_path(a).map(|display| XPeer::Unix {
        display,
        abstract_ns: true,
    })
}

/// Classify a peer address: `Some` when it is an X server's address.
pub fn classify_peer(addr: &SockaddrStorage) -> Option<XPeer> {
    if let Some(un) = addr.as_unix_addr() {
        return classify_unix(un);
    }
    let (port, text) = if let Some(v4) = addr.as_sockaddr_in() {
        (v4.port(), v4.to_string())
    } else if let Some(v6) = addr.as_sockaddr_in6() {
        (v6.port(), v6.to_string())
    } else {
        return None;
    };
    let n = port.checked_sub(X_TCP_PORT_BASE)?;
    (n <= X_TCP_MAX_DISPLAY).then(|| XPeer::Tcp {
        display: u32::from(n),
        addr: text,
    })
}

/// The X server behind descriptor `fd`, if it is a socket connected to one. Does not allocate,
/// so it may run while other threads of the process are stopped anywhere.
pub fn peer_of(fd: RawFd) -> Option<XPeer> {
    let addr: SockaddrStorage = getpeername(fd).ok()?;
    addr.family()?;
    classify_peer(&addr)
}

/// Cheap allocation-free test used at the safe point: is `fd` connected to an X server?
pub fn is_x_fd(fd: RawFd) -> bool {
    let Ok(addr) = getpeername::<SockaddrStorage>(fd) else {
        return false;
    };
    if let Some(un) = addr.as_unix_addr() {
        if let Some(p) = un.path() {
            use std::os::unix::ffi::OsStrExt;
            return display_from_path(p.as_os_str().as_bytes()).is_some();
        }
        return un
            .as_abstract()
            .is_some_and(|a| display_from_path(a).is_some());
    }
    let port = addr
        .as_sockaddr_in()
        .map(|a| a.port())
        .or_else(|| addr.as_sockaddr_in6().map(|a| a.port()));
    port.and_then(|p| p.checked_sub(X_TCP_PORT_BASE))
        .is_some_and(|n| n <= X_TCP_MAX_DISPLAY)
}

/// Every descriptor of the current process whose peer is an X server, in fd order.
pub fn find_x_fds() -> std::io::Result<Vec<(RawFd, XPeer)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let entry = entry?;
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<RawFd>().ok())
        else {
            continue;
        };
        // Only sockets: the link target reads `socket:[inode]`.
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if !target.as_os_str().to_string_lossy().starts_with("socket:") {
            continue;
        }
        if let Some(peer) = peer_of(fd) {
            out.push((fd, peer));
        }
    }
    out.sort_by_key(|(fd, _)| *fd);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::UnixAddr;

    #[test]
    fn parses_display_paths() {
        assert_eq!(display_from_path(b"/tmp/.X11-unix/X0"), Some(0));
        assert_eq!(display_from_path(b"/tmp/.X11-unix/X42\0\0"), Some(42));
        assert_eq!(display_from_path(b"/tmp/.X11-unix/X"), None);
        assert_eq!(display_from_path(b"/tmp/.X11-unix/Xa"), None);
        assert_eq!(display_from_path(b"/tmp/other"), None);
    }

    #[test]
    fn classifies_unix_and_tcp() {
        let a = UnixAddr::new("/tmp/.X11-unix/X7").unwrap();
        assert_eq!(
            classify_unix(&a),
            Some(XPeer::Unix {
                display: 7,
                abstract_ns: false
            })
        );
        let a = UnixAddr::new_abstract(b"/tmp/.X11-unix/X3").unwrap();
        assert_eq!(classify_unix(&a).map(|p| p.display()), Some(3));
        let t: std::net::SocketAddr = "127.0.0.1:6010".parse().unwrap();
        let s = SockaddrStorage::from(t);
        assert_eq!(classify_peer(&s).map(|p| p.display()), Some(10));
        let t: std::net::SocketAddr = "127.0.0.1:22".parse().unwrap();
        assert_eq!(classify_peer(&SockaddrStorage::from(t)), None);
    }

    #[test]
    fn finds_real_unix_x_socket() {
        // A listening socket named like an X server in the abstract namespace, connected to.
        use std::os::fd::AsRawFd;
        use std::os::linux::net::SocketAddrExt;
        let name = format!("/tmp/.X11-unix/X{}", 900 + std::process::id() % 90);
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let l = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
        let c = std::os::unix::net::UnixStream::connect_addr(&addr).unwrap();
        let found = find_x_fds().unwrap();
        assert!(found.iter().any(|(fd, p)| *fd == c.as_raw_fd()
            && matches!(
                p,
                XPeer::Unix {
                    abstract_ns: true,
                    ..
                }
            )));
        drop(l);
    }
}
