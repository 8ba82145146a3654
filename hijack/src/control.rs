//! The control socket. Requests from the `guievict` command flow in over a unix socket
//! (`$XDG_RUNTIME_DIR/guievict/<pid>.sock`, else `/tmp/guievict-<uid>/<pid>.sock`, directory
//! owned by the process's uid, mode 0700; when both are unusable — e.g. another user created
//! `/tmp/guievict-<uid>` first — the abstract socket `@guievict-<uid>-<pid>`, written as a path
//! starting with `@`) as length-prefixed bincode frames carrying a protocol version; responses
//! flow back the same way. Clients look in every one of these places, remove socket files
//! nobody listens on any more (a process that died without its exit handlers) and accept an
//! abstract socket only from the process it is named after. Every connection's peer is checked with `SO_PEERCRED`: only the process's own
//! uid or root may talk to it. A bad frame gets an error reply and the connection is closed; the
//! application is never affected. The same module holds the client side used by the CLI.
//!
//! The parts: this file holds the messages, the serving of one connection and the client's
//! request; `control/frame.rs` the framing and the error type, `control/paths.rs` the
//! directories, socket names and their probing and tidying.

mod frame;
mod paths;

use frame::io_err;
pub use frame::{read_frame, write_frame, ControlError, MAX_FRAME, PROTOCOL_VERSION};
pub use paths::{
    abstract_name, abstract_pids, all_users_dirs, bind, choose_dir, connect, control_dir,
    dir_candidates, ensure_dir, find_socket, is_abstract, list_dirs, probe, rearm_path,
    socket_candidates, sweep_dir, Probe, KEEP_DEAD_LOGS,
};
use serde::{Deserialize, Serialize};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long one connection may take to send its request.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client waits for the answer to a request that changes something (detach,
/// attach, …): longer than every timeout inside the library, so that the library's own, clear
/// error arrives first.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a client waits for the answer to `status` (answered without waiting for any
/// operation in progress).
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

/// Input policy of a display (replication).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputPolicy {
    /// Input from this display reaches the application.
    Interactive,
    /// Input from this display is dropped.
    ViewOnly,
}

/// X authority to use for a display: the `name`/`data` pair of an Xauthority entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct XAuth {
    /// Authorization protocol name, e.g. `MIT-MAGIC-COOKIE-1`.
    pub name: String,
    /// Authorization data.
    pub data: Vec<u8>,
}

/// A request to a hijacked process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Report the library's state and every interposed connection.
    Status,
    /// Capture the window session now and write it to `path`.
    Snapshot {
        /// Where the session file goes (a path in the application's mount namespace).
        path: PathBuf,
    },
    /// Take the GUI off its display; the application keeps running, its X traffic is held.
    Detach {
        /// Also write the captured session to this path.
        session_path: Option<PathBuf>,
        /// Detach even when the capture could not read or model part of the GUI (a later
        /// attach then cannot bring it back exactly); refused otherwise, with nothing changed.
        #[serde(default)]
        force: bool,
        /// Hold the GUI on this private headless server (a move there) instead of in memory:
        /// the app keeps getting real replies while detached. A guarded connection (see
        /// [`Request::Guard`]) goes to its guard's server without it.
        #[serde(default)]
        private: Option<PrivateServer>,
        /// Detach in memory even when guarded (a checkpoint: no socket may stay open).
        #[serde(default)]
        in_memory: bool,
    },
    /// Keep a hidden view-only replica of the GUI on a private headless server (the *guard*):
    /// should the primary's X server die, the guard becomes the primary and the app is then
    /// detached, held there with its exact state, until `attach` moves it to a display.
    Guard {
        /// The private server.
        private: PrivateServer,
    },
    /// Put the GUI on `display`.
    Attach {
        /// Display name, e.g. `:3`.
        display: String,
        /// X authority for it, if needed.
        auth: Option<XAuth>,
        /// Attach even where the app depends on an extension the display lacks (GLX, Present,
        /// DRI3, DRI2): the app's requests for it will then fail there.
        #[serde(default)]
        force: bool,
        /// guievict's private server as it is now (the CLI starts it if needed and keeps it up
        /// while the request runs): a guarded GUI gets its guard there again after the attach.
        #[serde(default)]
        private: Option<PrivateServer>,
    },
    /// Show the GUI on one more display.
    Replicate {
        /// Display name.
        display: String,
        /// X authority for it.
        auth: Option<XAuth>,
        /// Input policy of the new replica.
        policy: InputPolicy,
    },
    /// Stop showing the GUI on `display`.
    Unreplicate {
        /// Display name.
        display: String,
    },
    /// Change the input policy of `display`.
    Policy {
        /// Display name.
        display: String,
        /// New policy.
        policy: InputPolicy,
    },
    /// Prepare for a process checkpoint (CRIU). Refused unless every connection is detached.
    /// After answering, the control thread closes its listening socket and removes the socket
    /// file, so the process holds no socket bound to a path and no connection to anything outside
    /// itself. It listens again once the file [`rearm_path`] of its socket appears (created by
    /// `guievict restore` after the restore, or by `guievict checkpoint` after the dump).
    Quiesce,
    /// Move the GUI to `display` as one transaction: the target is connected to first, the
    /// session captured while the app is held, and only then is the old connection closed; if
    /// anything fails after that, the GUI is put back where it was. Refused up front, with
    /// nothing changed, when the target lacks an extension the app depends on or when part of
    /// the GUI cannot be carried exactly (unless `force`).
    Move {
        /// Display name.
        display: String,
        /// X authority for it.
        auth: Option<XAuth>,
        /// Move anyway (see `Attach::force`), losing what cannot be carried.
        #[serde(default)]
        force: bool,
    },
    /// Resources of the application's *other* processes, moved in the same `guievict move`:
    /// `(app-view ID, ID on the new server)` pairs each connection of this process learns, so
    /// that IDs this process uses of theirs (a GPU process drawing into the browser's windows)
    /// reach the new server translated.
    AddForeignIds {
        /// The pairs (as the other processes' move reports list them in `own_ids`).
        pairs: Vec<(u32, u32)>,
    },
    /// The first step of a detach, attach or move of an application of several processes (a
    /// browser and its GPU process, which draws into the browser's windows): hold this
    /// process's X requests (they queue) on every connection until [`Request::GroupRelease`]
    /// with the same `token`, so that no process uses another's resources while those are
    /// being moved. The hold ends by itself after `secs` seconds (a `guievict` that died).
    GroupHold {
        /// Names this hold (the release must name it too).
        token: u64,
        /// Longest the hold lasts.
        secs: u64,
    },
    /// The last step of such an operation: learn the other processes' IDs on the new server
    /// (as [`Request::AddForeignIds`]), then end hold `token` (the queued requests go out,
    /// translated). Harmless when the hold already ended.
    GroupRelease {
        /// The hold to end.
        token: u64,
        /// The other processes' `(app-view ID, ID on the new server)` pairs.
        pairs: Vec<(u32, u32)>,
    },
    /// Whether the GUI can be put on `display`, asked by `guievict move` before it detaches:
    /// answered with an error naming the extension when the app depends on one the target
    /// lacks (see `preflight`). Changes nothing.
    Preflight {
        /// Display name.
        display: String,
        /// X authority for it.
        auth: Option<XAuth>,
    },
    /// Test hook: provoke a failure inside the process. Carried out only when the process runs
    /// with `GUIEVICT_TEST_FAULTS=1` in its environment (the test suite sets it for the apps it
    /// starts); any other process answers with an error and changes nothing.
    TestFault {
        /// What to provoke.
        fault: TestFault,
    },
    /// Translate in the app's own threads (`on`: libxcb's socket calls are hooked, see
    /// `hijack/src/muxloop/inline.rs`), or relay through the guimux threads (`off`). Applies to
    /// every connection, now and later ones; a connection goes inline once it is steady.
    Inline {
        /// Inline (true) or relayed (false).
        on: bool,
    },
}

/// guievict's private headless X server of a user (Xvfb with the GUIEVICT extension, started
/// by the CLI): where guarded and detached GUIs are held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateServer {
    /// Display name, e.g. `:57`.
    pub display: String,
    /// Its X authority (the server accepts only this cookie).
    pub auth: Option<XAuth>,
}

/// Failures [`Request::TestFault`] can provoke.
// The names are the wire format's (serde) and match the CLI's `debug-fault` words.
#[allow(clippy::enum_variant_names)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TestFault {
    /// Every guimux thread of the process panics while handling its next message.
    EnginePanic,
    /// The controller panics while holding its lock (which poisons it).
    ControllerPanic,
    /// The next hooked libxcb call on each connection panics (an inline connection falls back
    /// to relayed).
    HookPanic,
}

/// Environment variable that enables [`Request::TestFault`] in a process.
pub const TEST_FAULTS_ENV: &str = "GUIEVICT_TEST_FAULTS";

/// Whether this process honours [`Request::TestFault`].
pub fn test_faults_enabled() -> bool {
    std::env::var_os(TEST_FAULTS_ENV).is_some_and(|v| v == "1")
}

/// State of one interposed X connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionStatus {
    /// The application's descriptor number for this connection.
    pub app_fd: i32,
    /// The server's address as text (`unix:/tmp/.X11-unix/X1`), when connected.
    pub server: Option<String>,
    /// Display name (`:1`), when connected.
    pub display: Option<String>,
    /// Whether a server connection is open (false: detached).
    pub server_connected: bool,
    /// Bytes read from the application since the hijack.
    pub bytes_from_app: u64,
    /// Bytes read from the server since the hijack.
    pub bytes_from_server: u64,
    /// Bytes queued for the application, not yet written.
    pub queued_to_app: u64,
    /// Bytes queued for the server (or held while detached).
    pub queued_to_server: u64,
    /// File descriptors passed through (both ways).
    pub fds_passed: u64,
    /// App MIT-SHM requests guimux served itself (the server cannot share memory).
    #[serde(default)]
    pub shm_converted: u64,
    /// App requests answered with an error because the server lacks their extension.
    #[serde(default)]
    pub substituted: u64,
    /// Requests the guard got as NoOperation because they only served a pixmap made and freed
    /// within one batch of the app's bytes.
    #[serde(default)]
    pub guard_elided: u64,
    /// Set when guimux contained a panic on this connection: what happened and how the
    /// connection is relayed since (detach, attach and move are then refused).
    #[serde(default)]
    pub degraded: Option<String>,
    /// Set while the connection is detached but held on guievict's private headless server
    /// (its display): the app gets real replies there, and `attach` moves it from there.
    #[serde(default)]
    pub held_on: Option<String>,
    /// The private server that keeps a hidden replica of this connection's GUI (the guard),
    /// if there is one.
    #[serde(default)]
    pub guard: Option<String>,
    /// The connection is guarded (`guievict guard`), also while its guard is not live
    /// (detached in memory, or held: the guard is made again at the next attach).
    #[serde(default)]
    pub guarded: bool,
    /// Who translates the connection's bytes: `"inline"` (the app's own threads, through the
    /// hooked libxcb calls) or `"relayed"` (the guimux thread).
    #[serde(default = "relayed")]
    pub io: String,
    /// Why inline translation was refused or given up on this connection, if it was.
    #[serde(default)]
    pub inline_off: Option<String>,
    /// libxcb calls the app's threads translated inline so far.
    #[serde(default)]
    pub inline_calls: u64,
}

fn relayed() -> String {
    "relayed".into()
}

/// Answer to [`Request::Status`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Process id of the hijacked application.
    pub pid: u32,
    /// Its executable name (`/proc/self/comm`).
    pub comm: String,
    /// Version of the hijack library.
    pub library_version: String,
    /// Control protocol version.
    pub protocol_version: u32,
    /// Path of the control socket.
    pub socket: PathBuf,
    /// How the library got in: `"injected"` or `"preload"`.
    pub mode: String,
    /// Every interposed connection.
    pub connections: Vec<ConnectionStatus>,
    /// The operation the controller is carrying out right now, with its age (the connection
    /// figures are then from the last status taken while it was idle).
    #[serde(default)]
    pub busy: Option<String>,
    /// Descriptors the library itself holds (its server connections): an injector must not
    /// take them for application X connections still to interpose.
    #[serde(default)]
    pub own_fds: Vec<i32>,
}

/// Category of a failed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The frame could not be decoded.
    BadFrame,
    /// Client and library speak different protocol versions.
    VersionMismatch,
    /// The request is known but not implemented yet.
    NotImplemented,
    /// The request failed.
    Failed,
}

/// A response from a hijacked process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Answer to `Status`.
    Status(Status),
    /// The request was carried out.
    Ok {
        /// Human-readable detail.
        message: String,
    },
    /// The request failed.
    Error {
        /// Category.
        kind: ErrorKind,
        /// Human-readable message saying what and why.
        message: String,
    },
}

/// Whether a client with these credentials may use the socket of a process run by `our_uid`.
pub fn peer_allowed(peer_uid: u32, our_uid: u32) -> bool {
    peer_uid == our_uid || peer_uid == 0
}

thread_local! {
    /// The PID of the peer whose request this thread is handling (see [`peer_pid`]).
    static PEER: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
}

/// The PID of the process whose control request the calling thread is handling (from
/// `SO_PEERCRED`), e.g. the `guievict` that takes a group hold and must release it.
pub fn peer_pid() -> Option<u32> {
    PEER.with(|p| p.get())
}

/// Make [`peer_pid`] answer `pid` on the calling thread (the operations thread carries out
/// requests that a control worker read).
pub fn set_peer_pid(pid: Option<u32>) {
    PEER.with(|p| p.set(pid));
}

/// Serve one accepted connection: check the peer, read one request, answer it.
pub fn serve_one(mut stream: UnixStream, handler: &dyn Fn(&Request) -> Response) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let our_uid = nix::unistd::geteuid().as_raw();
    let cred = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials);
    match cred {
        Ok(c) if peer_allowed(c.uid(), our_uid) => {
            PEER.with(|p| p.set(u32::try_from(c.pid()).ok().filter(|&p| p > 0)));
        }
        Ok(c) => {
            tracing::warn!(
                peer_uid = c.uid(),
                peer_pid = c.pid(),
                "refused control connection from another user"
            );
            let _ = write_frame(
                &mut stream,
                &Response::Error {
                    kind: ErrorKind::Failed,
                    message: format!(
                        "permission denied: uid {} may not control a process of uid {our_uid}",
                        c.uid()
                    ),
                },
            );
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "SO_PEERCRED failed; refusing control connection");
            return;
        }
    }
    // Serve requests until the client closes; a bad frame ends the connection.
    loop {
        let req: Request = match read_frame(&mut stream) {
            Ok(r) => r,
            Err(ControlError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                return
            }
            Err(e) => {
                let kind = match e {
                    ControlError::Version { .. } => ErrorKind::VersionMismatch,
                    _ => ErrorKind::BadFrame,
                };
                tracing::warn!(error = %e, "bad control frame");
                let _ = write_frame(
                    &mut stream,
                    &Response::Error {
                        kind,
                        message: e.to_string(),
                    },
                );
                return;
            }
        };
        let resp = handler(&req);
        if write_frame(&mut stream, &resp).is_err() {
            return;
        }
    }
}

/// Client side: send one request to the socket at `path` and read the response.
pub fn request(path: &Path, req: &Request) -> Result<Response, ControlError> {
    let mut s = connect(path).map_err(io_err("connecting to", path))?;
    let _ = s.set_read_timeout(Some(match req {
        Request::Status => STATUS_TIMEOUT,
        _ => OPERATION_TIMEOUT,
    }));
    let _ = s.set_write_timeout(Some(IO_TIMEOUT));
    let sent = write_frame(&mut s, req);
    // A refusing server answers and closes before reading: its answer is still readable even
    // though our write failed.
    match read_frame(&mut s) {
        Ok(r) => Ok(r),
        Err(e) => Err(sent.err().unwrap_or(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::frame::Frame;
    use super::*;

    #[test]
    fn frames_round_trip() {
        let req = Request::Attach {
            display: ":3".into(),
            auth: Some(XAuth {
                name: "MIT-MAGIC-COOKIE-1".into(),
                data: vec![1, 2, 3],
            }),
            force: true,
            private: None,
        };
        let mut buf = Vec::new();
        write_frame(&mut buf, &req).unwrap();
        let back: Request = read_frame(&mut buf.as_slice()).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn rejects_garbage_and_versions() {
        let mut bad = vec![5, 0, 0, 0, 1, 0, 0, 0, 0xff];
        assert!(read_frame::<Request>(&mut bad.as_slice()).is_err());
        bad = (u32::MAX).to_le_bytes().to_vec();
        assert!(matches!(
            read_frame::<Request>(&mut bad.as_slice()),
            Err(ControlError::FrameTooLong { .. })
        ));
        let payload = bincode::serialize(&Frame {
            version: 99,
            body: Request::Status,
        })
        .unwrap();
        let mut buf = (payload.len() as u32).to_le_bytes().to_vec();
        buf.extend(payload);
        assert!(matches!(
            read_frame::<Request>(&mut buf.as_slice()),
            Err(ControlError::Version { theirs: 99 })
        ));
    }

    #[test]
    fn peer_policy() {
        assert!(peer_allowed(1000, 1000));
        assert!(peer_allowed(0, 1000));
        assert!(!peer_allowed(65534, 1000));
    }
}
