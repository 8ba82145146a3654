//! The controller: control requests (detach, attach, snapshot, replicate, …) flow in from the
//! control socket, get carried out on every X connection of the process through the
//! [`crate::session`] functions, and a response with timings flows back. It holds the per-
//! connection state that must survive between commands: the relay handle, which display the
//! connection is on, and — while detached — the captured window session, in process memory.

use crate::control::{ErrorKind, InputPolicy, Request, Response, XAuth};
use crate::muxloop::MuxHandle;
use crate::session::{self, Auth, Detached, SessionError};
use guimux::{Role, ServerId};
use std::sync::Mutex;
use x11rb::protocol::xproto::Setup;

/// One X connection under control.
#[derive(Debug)]
pub struct Conn {
    /// The application's descriptor number for this connection (-1: not in this process).
    pub app_fd: i32,
    /// The relay.
    pub handle: MuxHandle,
    /// Display the primary is on (None while detached).
    pub display: Option<String>,
    /// Setup of the primary server as a client of it sees it (for internal clients).
    pub server_setup: Option<Setup>,
    /// X authority given for `display` (None: found the way libxcb finds it), kept so that a
    /// failed move can put the GUI back there.
    pub auth: Option<Auth>,
    /// While detached (or after a snapshot): the captured session.
    pub detached: Option<Detached>,
    /// Replicas: display → (server id, setup).
    pub replicas: Vec<(String, ServerId)>,
}

/// All connections of this process.
#[derive(Debug, Default)]
pub struct Controller {
    conns: Mutex<Vec<Conn>>,
}

/// JSON report of one command, carried in `Response::Ok.message` after the first line.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// Command name.
    pub command: String,
    /// Per connection: timings and counts.
    pub connections: Vec<serde_json::Value>,
    /// Total wall time, ms.
    pub total_ms: f64,
}

fn fail(message: impl Into<String>) -> Response {
    Response::Error {
        kind: ErrorKind::Failed,
        message: message.into(),
    }
}

fn auth_of(a: &Option<XAuth>) -> Option<Auth> {
    a.as_ref().map(|a| Auth {
        name: a.name.as_bytes().to_vec(),
        data: a.data.clone(),
    })
}

/// Setup of `display` as any client sees it (one short connection).
fn probe_setup(display: &str) -> Result<Setup, SessionError> {
    let (fd, setup) = session::connect_raw(display, None)?;
    drop(fd);
    Ok(setup)
}

impl Controller {
    /// Put a connection under control.
    pub fn add(&self, conn: Conn) {
        if let Ok(mut c) = self.conns.lock() {
            c.push(conn);
        }
    }

    /// Number of live connections.
    pub fn len(&self) -> usize {
        self.conns
            .lock()
            .map(|c| c.iter().filter(|c| c.handle.ended().is_none()).count())
            .unwrap_or(0)
    }

    /// Whether no connection is under control.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Status of every live connection.
    pub fn connections(&self) -> Vec<crate::control::ConnectionStatus> {
        let Ok(conns) = self.conns.lock() else {
            return Vec::new();
        };
        conns
            .iter()
            .filter(|c| c.handle.ended().is_none())
            .map(|c| {
                let (stats, app_out) = c
                    .handle
                    .with_engine(|e| (e.stats(), e.app_output().len() as u64))
                    .unwrap_or_default();
                crate::control::ConnectionStatus {
                    app_fd: c.app_fd,
                    server: c.display.clone(),
                    display: c.display.clone(),
                    server_connected: c.display.is_some(),
                    bytes_from_app: stats.bytes_from_app,
                    bytes_from_server: stats.bytes_from_servers,
                    queued_to_app: app_out,
                    queued_to_server: stats.queued_bytes,
                    fds_passed: 0,
                    shm_converted: stats.shm_converted,
                    substituted: stats.substituted,
                }
            })
            .collect()
    }

    /// Carry out a request. `Status` is answered by the caller.
    pub fn handle(&self, req: &Request) -> Response {
        let t0 = std::time::Instant::now();
        let Ok(mut conns) = self.conns.lock() else {
            return fail("controller state poisoned");
        };
        conns.retain(|c| c.handle.ended().is_none());
        if conns.is_empty() {
            return fail("this process has no X connection under guievict's control");
        }
        let mut report = Report::default();
        let result: Result<String, SessionError> = (|| match req {
            Request::Detach {
                session_path,
                force,
            } => {
                report.command = "detach".into();
                for c in conns.iter_mut() {
                    if c.display.is_none() {
                        return Err(SessionError::State("already detached".into()));
                    }
                    let setup = match c.server_setup.clone() {
                        Some(s) => s,
                        None => probe_setup(c.display.as_deref().unwrap_or_default())?,
                    };
                    let opts = winsession::CaptureOptions::default();
                    // Taken before the capture, which does not list them.
                    let randr = crate::screen::randr_selections(&c.handle, setup.clone());
                    let held = session::hold_and_capture(&c.handle, setup, &opts)?;
                    // What the capture could not carry would be lost for good: refused, the
                    // app runs on where it is (unless forced).
                    let lost = crate::fidelity::uncarried(&held.detached.session);
                    if !lost.is_empty() && !*force {
                        held.cancel(&c.handle)?;
                        return Err(SessionError::Refused(crate::fidelity::refusal(
                            "detach",
                            &lost,
                            &format!(
                                "the application stays on {}",
                                c.display.as_deref().unwrap_or("its display")
                            ),
                        )));
                    }
                    let (mut d, timings) = held.commit(&c.handle)?;
                    d.session.other_resources.extend(randr);
                    if let Some(p) = session_path {
                        winsession::write_file(p, &d.session).map_err(|e| {
                            SessionError::Capture(format!("writing {}: {e}", p.display()))
                        })?;
                    }
                    report.connections.push(serde_json::json!({
                        "display": c.display,
                        "timings_ms": timings.0,
                        "windows": d.session.windows.len(),
                        "atoms": d.view.atoms.len(),
                        "lost": lost,
                    }));
                    for (_, s) in c.replicas.drain(..) {
                        let _ = c.handle.remove_server(s);
                    }
                    if let Some(from) = c.display.take() {
                        crate::preflight::note_origin(c.app_fd, &from);
                    }
                    c.server_setup = None;
                    c.detached = Some(d);
                }
                Ok("detached".into())
            }
            Request::Move {
                display,
                auth,
                force,
            } => {
                report.command = "move".into();
                let from = conns.first().and_then(|c| c.display.clone());
                report.connections = crate::transaction::move_all(
                    &mut conns,
                    display,
                    auth_of(auth).as_ref(),
                    *force,
                )?;
                Ok(format!(
                    "moved from {} to {display}",
                    from.as_deref().unwrap_or("?")
                ))
            }
            Request::Attach {
                display,
                auth,
                force,
            } => {
                report.command = "attach".into();
                // Refused before anything is created on the target; a detached GUI then goes
                // back where it came from. `--force` skips the check.
                if !*force {
                    crate::preflight::check_all(&mut conns, display, auth_of(auth).as_ref())?;
                }
                for c in conns.iter_mut() {
                    let Some(d) = c.detached.as_ref() else {
                        return Err(SessionError::State(format!(
                            "not detached (on {}): detach first, or use move",
                            c.display.as_deref().unwrap_or("?")
                        )));
                    };
                    if c.display.is_some() {
                        return Err(SessionError::State("already attached".into()));
                    }
                    let a = auth_of(auth);
                    let (r, setup) =
                        session::attach(&c.handle, display, a.as_ref(), d, Role::Primary)?;
                    report
                        .connections
                        .push(serde_json::to_value(&r).unwrap_or_default());
                    c.display = Some(display.clone());
                    c.server_setup = Some(setup);
                    c.auth = a;
                    c.detached = None;
                }
                Ok(format!("attached to {display}"))
            }
            Request::Snapshot { path } => {
                report.command = "snapshot".into();
                let c = conns
                    .iter_mut()
                    .find(|c| c.display.is_some())
                    .ok_or_else(|| {
                        SessionError::State("detached: nothing on screen to snapshot".into())
                    })?;
                let setup = match c.server_setup.clone() {
                    Some(s) => s,
                    None => probe_setup(c.display.as_deref().unwrap_or_default())?,
                };
                let (d, timings) =
                    session::snapshot(&c.handle, setup, &winsession::CaptureOptions::default())?;
                winsession::write_file(path, &d.session).map_err(|e| {
                    SessionError::Capture(format!("writing {}: {e}", path.display()))
                })?;
                report
                    .connections
                    .push(serde_json::json!({"timings_ms": timings.0, "windows": d.session.windows.len()}));
                Ok(format!("snapshot written to {}", path.display()))
            }
            Request::Replicate {
                display,
                auth,
                policy,
            } => {
                report.command = "replicate".into();
                for c in conns.iter_mut() {
                    if c.display.is_none() {
                        return Err(SessionError::State(
                            "detached: attach before replicating".into(),
                        ));
                    }
                    if c.replicas.iter().any(|(d, _)| d == display)
                        || c.display.as_deref() == Some(display)
                    {
                        return Err(SessionError::State(format!("already shown on {display}")));
                    }
                    let setup = match c.server_setup.clone() {
                        Some(s) => s,
                        None => probe_setup(c.display.as_deref().unwrap_or_default())?,
                    };
                    let (d, _) = session::snapshot(
                        &c.handle,
                        setup,
                        &winsession::CaptureOptions::default(),
                    )?;
                    // Hold the app while the replica is built so it sees every request after
                    // the snapshot.
                    c.handle.with_engine(|e| e.pause())?;
                    let role = Role::Replica {
                        view_only: *policy == InputPolicy::ViewOnly,
                    };
                    let r = session::attach(&c.handle, display, auth_of(auth).as_ref(), &d, role);
                    c.handle.with_engine(|e| e.resume())?;
                    let (r, _) = r?;
                    c.replicas.push((display.clone(), r.server));
                    report
                        .connections
                        .push(serde_json::to_value(&r).unwrap_or_default());
                }
                Ok(format!("replicated to {display}"))
            }
            Request::Unreplicate { display } => {
                report.command = "unreplicate".into();
                for c in conns.iter_mut() {
                    let Some(i) = c.replicas.iter().position(|(d, _)| d == display) else {
                        return Err(SessionError::State(format!("not replicated on {display}")));
                    };
                    let (_, s) = c.replicas.remove(i);
                    c.handle.remove_server(s)?;
                }
                Ok(format!("no longer shown on {display}"))
            }
            Request::Policy { display, policy } => {
                report.command = "policy".into();
                for c in conns.iter_mut() {
                    let Some((_, s)) = c.replicas.iter().find(|(d, _)| d == display) else {
                        return Err(SessionError::State(format!(
                            "{display} is not a replica (the primary is always interactive)"
                        )));
                    };
                    let s = *s;
                    let view_only = *policy == InputPolicy::ViewOnly;
                    c.handle
                        .with_engine(move |e| e.set_role(s, Role::Replica { view_only }))?
                        .map_err(|e| SessionError::State(e.to_string()))?;
                }
                Ok(format!("{display}: {policy:?}"))
            }
            Request::Preflight { display, auth } => {
                report.command = "preflight".into();
                crate::preflight::check_before_move(&conns, display, auth_of(auth).as_ref())?;
                Ok(format!("{display} can host the application"))
            }
            Request::Status | Request::Quiesce => {
                Err(SessionError::State("answered by the control thread".into()))
            }
        })();
        report.total_ms = t0.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(msg) => Response::Ok {
                message: format!(
                    "{msg}\n{}",
                    serde_json::to_string(&report).unwrap_or_default()
                ),
            },
            Err(e) => fail(e.to_string()),
        }
    }
}
