//! The controller: control requests (detach, attach, snapshot, replicate, …) flow in from the
//! control socket, get carried out on every X connection of the process through the
//! [`crate::session`] functions, and a response with timings flows back. It holds the per-
//! connection state that must survive between commands: the relay handle, which display the
//! connection is on, and — while detached — the captured window session, in process memory.
//!
//! Robustness: one operation runs at a time (a second one waits at most [`LOCK_WAIT`], then is
//! refused as busy); `status` never waits for a running operation — it answers from the figures
//! of the last idle moment, saying what is running. A panic while the lock is held (a bug)
//! poisons it; the next request takes the state back ([`std::sync::PoisonError::into_inner`])
//! and makes it consistent with what the relays really do ([`reconcile`]).

mod ops;

use crate::conn::{Conn, Guard};
use crate::control::{
    ConnectionStatus, ErrorKind, InputPolicy, PrivateServer, Request, Response, TestFault, XAuth,
};
use crate::session::{self, Auth, SessionError};
use guimux::Role;
use ops::carry_out;
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};
use x11rb::protocol::xproto::Setup;

/// Take over what the relays did on their own: a replica they made the primary because the
/// primary's X server died. The records follow: the replica's display is the connection's
/// display now; a guard that took over holds the connection (detached, on the private
/// server).
pub fn note_promotions(conns: &mut [Conn]) {
    for c in conns.iter_mut() {
        for (dead, to) in c.handle.take_promotions() {
            let from = c.display.clone().unwrap_or_default();
            if let Some(g) = c.guard.as_mut().filter(|g| g.server == Some(to)) {
                g.server = None;
                tracing::warn!(
                    app_fd = c.app_fd,
                    from,
                    held_on = g.display,
                    "the X server died; the GUI is held on the private server (detached)"
                );
                c.display = Some(g.display.clone());
                c.auth = g.auth.clone();
                c.held = true;
            } else if let Some(i) = c.replicas.iter().position(|(_, s)| *s == to) {
                let (d, _) = c.replicas.remove(i);
                tracing::warn!(
                    app_fd = c.app_fd,
                    from,
                    to = d,
                    "the X server died; the replica is the primary now"
                );
                c.display = Some(d);
                c.auth = None;
            } else {
                tracing::error!(
                    app_fd = c.app_fd,
                    dead,
                    to,
                    "promotion of an unknown server"
                );
                continue;
            }
            crate::preflight::note_origin(c.app_fd, &from);
            c.server_setup = None;
        }
    }
}

/// Guards whose replica is gone (its connection ended: the private server killed it, or
/// someone KillClient'ed it there) are no longer live: a detach then moves the GUI to the
/// private server instead of handing over, and the next attach makes the guard again.
fn forget_dead_guards(conns: &mut [Conn]) {
    for c in conns.iter_mut() {
        let Some(s) = c.guard.as_ref().and_then(|g| g.server) else {
            continue;
        };
        let live = c
            .handle
            .with_engine_within(STATUS_WAIT, move |e| e.server_ids().contains(&s))
            .unwrap_or(true);
        if !live {
            tracing::warn!(app_fd = c.app_fd, "the guard replica is gone");
            if let Some(g) = c.guard.as_mut() {
                g.server = None;
            }
        }
    }
}

fn auth_of_private(p: &PrivateServer) -> Option<Auth> {
    auth_of(&p.auth)
}

/// Add a guard on `private` to connection `c` (a view-only replica there, made from a snapshot
/// while the app is held so it sees every request after it).
fn add_guard(c: &mut Conn, display: &str, auth: Option<Auth>) -> Result<(), SessionError> {
    let setup = match c.server_setup.clone() {
        Some(s) => s,
        None => probe_setup_auth(c.display.as_deref().unwrap_or_default(), c.auth.as_ref())?,
    };
    // The app stays held from the capture until the guard is live, so the guard sees every
    // request after the state it was made from.
    let held = session::hold_and_capture(&c.handle, setup, &winsession::CaptureOptions::default())?;
    // A guard that could not stand in for the app exactly (GL contexts, …) would promise what
    // a promotion cannot keep: none is made.
    let lost = crate::fidelity::uncarried(&held.detached.session);
    if !lost.is_empty() {
        held.cancel(&c.handle)?;
        let shown: Vec<&str> = lost.iter().take(4).map(String::as_str).collect();
        return Err(SessionError::Refused(format!(
            "not guarded: a guard cannot hold all of this application's GUI exactly ({}{}); \
             it ends with its X server as it would without guievict",
            shown.join("; "),
            if lost.len() > 4 { "; …" } else { "" }
        )));
    }
    let r = session::attach(
        &c.handle,
        display,
        auth.as_ref(),
        &held.detached,
        Role::Replica { view_only: true },
    );
    // Nobody looks at the guard: drawing into the app's windows reaches it as NoOperation
    // (an attach from there exposes them and the app repaints), and so do pure queries (the
    // primary answers them; a promotion asks the guard what the dead primary left open).
    // So do RENDER requests drawing into pictures on those windows.
    let d = &held.detached;
    let mut prev = d.prev.clone();
    let mut to_app = |id: u32| match prev.as_mut() {
        Some(m) => m.xids.to_app(id),
        None => id,
    };
    let on_window: std::collections::HashSet<u32> =
        d.session.windows.iter().map(|w| w.id).collect();
    let windows: Vec<u32> = d.session.windows.iter().map(|w| to_app(w.id)).collect();
    let pictures: Vec<u32> = d
        .session
        .pictures
        .iter()
        .filter(|p| on_window.contains(&p.drawable))
        .map(|p| to_app(p.id))
        .collect();
    // Lean before the app runs on (nothing here may return before the app is let go).
    if let Ok((rep, _)) = &r {
        let server = rep.server;
        match c
            .handle
            .with_engine(move |e| e.set_lean(server, windows, pictures))
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(app_fd = c.app_fd, "guard draws everything: {e}"),
            Err(e) => tracing::warn!(app_fd = c.app_fd, "guard draws everything: {e}"),
        }
    }
    held.cancel(&c.handle)?;
    let (r, _) = r?;
    c.guard = Some(Guard {
        display: display.to_string(),
        auth,
        server: Some(r.server),
    });
    Ok(())
}

/// Drop connection `c`'s guard replica, if it has one (the guard's configuration stays).
fn drop_guard_replica(c: &mut Conn) {
    if let Some(s) = c.guard.as_mut().and_then(|g| g.server.take()) {
        let _ = c.handle.remove_server(s);
    }
}

/// How long a request waits for the operation in progress before it is refused as busy.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);
/// How long `status` waits for the controller or a relay before answering from its cache.
pub const STATUS_WAIT: Duration = Duration::from_millis(200);

/// All connections of this process.
#[derive(Debug, Default)]
pub struct Controller {
    conns: Mutex<Vec<Conn>>,
    /// The operation in progress and when it started.
    busy: Mutex<Option<(String, Instant)>>,
    /// Connection figures of the last `status` answered while idle.
    last_status: Mutex<Vec<ConnectionStatus>>,
}

/// Lock a mutex holding plain values, whoever panicked while holding it.
fn plain<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Clears the busy mark when an operation ends, also by a panic.
struct BusyMark<'a>(&'a Mutex<Option<(String, Instant)>>);

impl Drop for BusyMark<'_> {
    fn drop(&mut self) {
        *plain(self.0) = None;
    }
}

/// Bring the connection records back in line with their relays after a panic interrupted an
/// operation half way: a paused engine that is attached resumes; a relay left without a
/// primary is recorded as detached; a primary the record does not know (an attach cut short
/// after activation) is dropped again, so the kept session can be attached anew; internal
/// clients are stopped.
pub fn reconcile(conns: &mut [Conn]) {
    for c in conns.iter_mut() {
        let h = c.handle.clone();
        let _ = h.stop_internal();
        let Some((primary, paused)) =
            h.with_engine_within(Duration::from_secs(1), |e| (e.primary(), e.is_paused()))
        else {
            tracing::warn!(app_fd = c.app_fd, "reconcile: relay did not answer");
            continue;
        };
        match (primary, c.display.is_some()) {
            (Some(_), true) if paused => {
                let _ = h.with_engine(|e| e.resume());
                tracing::warn!(
                    app_fd = c.app_fd,
                    "reconcile: resumed a paused attached relay"
                );
            }
            (None, true) => {
                tracing::warn!(
                    app_fd = c.app_fd,
                    kept_session = c.detached.is_some(),
                    "reconcile: relay has no server; recorded as detached"
                );
                if let Some(from) = c.display.take() {
                    crate::preflight::note_origin(c.app_fd, &from);
                }
                c.server_setup = None;
                c.replicas.clear();
            }
            (Some(p), false) if c.detached.is_some() => {
                let _ = h.with_engine(|e| e.pause());
                let _ = h.remove_server(p);
                tracing::warn!(
                    app_fd = c.app_fd,
                    "reconcile: dropped the server of an unfinished attach; still detached"
                );
            }
            _ => {}
        }
    }
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

/// Setup of `display` as any client sees it (one short connection), with the connection's X
/// authority (the private server's for a GUI held there).
fn probe_setup_auth(display: &str, auth: Option<&Auth>) -> Result<Setup, SessionError> {
    let (fd, setup) = session::connect_raw(display, auth)?;
    drop(fd);
    Ok(setup)
}

impl Controller {
    /// The connection records, whatever panicked before: a poisoned lock is taken back and
    /// the records reconciled with the relays.
    fn lock(&self) -> MutexGuard<'_, Vec<Conn>> {
        match self.conns.lock() {
            Ok(g) => g,
            Err(p) => Self::recover(&self.conns, p.into_inner()),
        }
    }

    fn recover<'a>(
        m: &'a Mutex<Vec<Conn>>,
        mut g: MutexGuard<'a, Vec<Conn>>,
    ) -> MutexGuard<'a, Vec<Conn>> {
        tracing::error!("controller lock was poisoned by a panic; reconciling its state");
        m.clear_poison();
        reconcile(&mut g);
        g
    }

    /// The lock, waiting at most `limit` for an operation in progress.
    fn lock_within(&self, limit: Duration) -> Option<MutexGuard<'_, Vec<Conn>>> {
        let deadline = Instant::now() + limit;
        loop {
            match self.conns.try_lock() {
                Ok(g) => return Some(g),
                Err(TryLockError::Poisoned(p)) => {
                    return Some(Self::recover(&self.conns, p.into_inner()))
                }
                Err(TryLockError::WouldBlock) => {
                    if Instant::now() >= deadline {
                        return None;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }

    /// What is running, as text (`attach for 1.2 s`), if anything.
    pub fn busy(&self) -> Option<String> {
        plain(&self.busy)
            .as_ref()
            .map(|(what, since)| format!("{what} for {:.1} s", since.elapsed().as_secs_f64()))
    }

    /// Put a connection under control.
    pub fn add(&self, conn: Conn) {
        if crate::muxloop::inline::wanted_for_new() {
            conn.handle.set_inline(true);
        }
        self.lock().push(conn);
    }

    /// Inline translation on (`on`) or off for every connection, now and later (control
    /// request `Inline`). Turning it on installs the libxcb hooks first; without libxcb in the
    /// process the connections stay relayed and the answer says why.
    pub fn set_inline(&self, on: bool) -> Result<String, String> {
        if on {
            let slots = crate::hooks::install()
                .map_err(|e| format!("inline translation is not possible here: {e}"))?;
            tracing::info!(slots, "inline translation on");
        }
        crate::muxloop::inline::set_wanted_for_new(on);
        let conns = self
            .lock_within(Duration::from_secs(2))
            .ok_or("the controller is busy")?;
        for c in conns.iter() {
            c.handle.set_inline(on);
        }
        Ok(format!(
            "{} connection(s) {}",
            conns.len(),
            if on {
                "go inline when steady"
            } else {
                "relayed"
            }
        ))
    }

    /// Number of live connections.
    pub fn len(&self) -> usize {
        self.lock()
            .iter()
            .filter(|c| c.handle.ended().is_none())
            .count()
    }

    /// Whether no connection is under control.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Status of every live connection. Never waits long: while an operation runs, the figures
    /// are those of the last idle moment (see [`Controller::busy`]).
    pub fn connections(&self) -> Vec<ConnectionStatus> {
        let Some(mut conns) = self.lock_within(STATUS_WAIT) else {
            return plain(&self.last_status).clone();
        };
        note_promotions(&mut conns);
        forget_dead_guards(&mut conns);
        let out: Vec<ConnectionStatus> = conns
            .iter()
            .filter(|c| c.handle.ended().is_none())
            .map(|c| {
                let (stats, app_out, ids) = c
                    .handle
                    .with_engine_within(STATUS_WAIT, |e| {
                        (e.stats(), e.app_output().len() as u64, e.server_ids())
                    })
                    .unwrap_or_default();
                let display = c.display.clone().filter(|_| !c.held);
                ConnectionStatus {
                    app_fd: c.app_fd,
                    server: display.clone(),
                    server_connected: display.is_some(),
                    display,
                    held_on: c.display.clone().filter(|_| c.held),
                    // A guard the loop dropped (a contained panic) is gone from the engine.
                    guard: c
                        .guard
                        .as_ref()
                        .filter(|g| g.server.is_some_and(|s| ids.contains(&s)))
                        .map(|g| g.display.clone()),
                    guarded: c.guard.is_some(),
                    bytes_from_app: stats.bytes_from_app,
                    bytes_from_server: stats.bytes_from_servers,
                    queued_to_app: app_out,
                    queued_to_server: stats.queued_bytes,
                    fds_passed: 0,
                    shm_converted: stats.shm_converted,
                    substituted: stats.substituted,
                    guard_elided: stats.elided,
                    degraded: c.handle.degraded(),
                    io: c.handle.io_mode().into(),
                    inline_off: c.handle.inline_broken(),
                    inline_calls: c.handle.inline_calls(),
                }
            })
            .collect();
        drop(conns);
        *plain(&self.last_status) = out.clone();
        out
    }

    /// Carry out a request. `Status` is answered by the caller.
    pub fn handle(&self, req: &Request) -> Response {
        let t0 = std::time::Instant::now();
        let Some(mut conns) = self.lock_within(LOCK_WAIT) else {
            return fail(format!(
                "busy: {} is in progress; try again when it has finished",
                self.busy().unwrap_or_else(|| "another operation".into())
            ));
        };
        *plain(&self.busy) = Some((
            format!("{req:?}")
                .split([' ', '{'])
                .next()
                .unwrap_or("request")
                .to_lowercase(),
            t0,
        ));
        let _busy = BusyMark(&self.busy);
        conns.retain(|c| c.handle.ended().is_none());
        note_promotions(&mut conns);
        forget_dead_guards(&mut conns);
        if conns.is_empty() {
            return fail("this process has no X connection under guievict's control");
        }
        if let Request::TestFault { fault } = req {
            if !crate::control::test_faults_enabled() {
                return fail(format!(
                    "test faults are disabled (the process was not started with {}=1)",
                    crate::control::TEST_FAULTS_ENV
                ));
            }
            match fault {
                TestFault::ControllerPanic => {
                    panic!("guievict test fault: controller panic requested")
                }
                TestFault::HookPanic => {
                    for c in conns.iter() {
                        c.handle.hook_fault_next();
                    }
                    return Response::Ok {
                        message: "the next hooked libxcb call on each connection panics".into(),
                    };
                }
                TestFault::EnginePanic => {
                    for c in conns.iter() {
                        if let Err(e) = c.handle.panic_next() {
                            return fail(e.to_string());
                        }
                    }
                    return Response::Ok {
                        message: "the next message on each connection makes guimux panic".into(),
                    };
                }
            }
        }
        if !matches!(
            req,
            Request::Preflight { .. } | Request::GroupRelease { .. }
        ) {
            if let Some((fd, why)) = conns
                .iter()
                .find_map(|c| c.handle.degraded().map(|d| (c.app_fd, d)))
            {
                return fail(format!(
                    "connection fd {fd} is degraded and can no longer be detached or moved: {why}"
                ));
            }
        }
        let mut report = Report::default();
        let result = carry_out(req, &mut conns, &mut report);
        report.total_ms = t0.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(msg) => Response::Ok {
                message: format!(
                    "{msg}\n{}",
                    serde_json::to_string(&report).unwrap_or_default()
                ),
            },
            Err(e) => {
                // An internal client cut off for want of an answer says which server hung.
                let hung: Vec<String> = conns
                    .iter()
                    .filter_map(|c| c.handle.internal_timed_out())
                    .collect();
                match hung.first() {
                    Some(h) => fail(format!("{e} ({h})")),
                    None => fail(e.to_string()),
                }
            }
        }
    }
}
