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

use crate::conn::{Conn, Guard};
use crate::control::{
    ConnectionStatus, ErrorKind, InputPolicy, PrivateServer, Request, Response, TestFault, XAuth,
};
use crate::session::{self, Auth, SessionError};
use guimux::Role;
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
        self.lock().push(conn);
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

/// `detach` of guarded connections: each guard (a replica on the private server that got every
/// request) becomes the primary and the old primary's connection is closed — as if its server
/// had died (see `Engine::promote`: answers the old primary still owed come from the guard).
/// Nothing is read from the source server, so a source that dies or stops meanwhile does not
/// matter. A connection whose guard cannot take over is left as it was (error).
fn hand_over_to_guard(conns: &mut [Conn]) -> Result<Vec<serde_json::Value>, SessionError> {
    let mut reports = Vec::new();
    for c in conns.iter_mut() {
        let Some(g) = c.guard.clone() else { continue };
        let Some(to) = g.server else { continue };
        let t = std::time::Instant::now();
        let old = c
            .handle
            .with_engine(move |e| match e.primary() {
                // The source died just now and the guard took over on its own.
                Some(p) if p == to => Ok(None),
                Some(p) => e.promote(p, to).map(|_| Some(p)).map_err(|e| e.to_string()),
                None => Err("no primary".to_string()),
            })?
            .map_err(|e| SessionError::State(format!("handing over to the guard: {e}")))?;
        if let Some(old) = old {
            let _ = c.handle.remove_server(old);
        }
        for (_, s) in c.replicas.drain(..) {
            let _ = c.handle.remove_server(s);
        }
        let from = c.display.clone().unwrap_or_default();
        crate::preflight::note_origin(c.app_fd, &from);
        if let Some(g) = c.guard.as_mut() {
            g.server = None;
        }
        c.display = Some(g.display.clone());
        c.auth = g.auth.clone();
        c.server_setup = None;
        c.held = true;
        reports.push(serde_json::json!({
            "app_fd": c.app_fd,
            "from": from,
            "held_on": g.display,
            "handover_ms": t.elapsed().as_secs_f64() * 1000.0,
        }));
    }
    Ok(reports)
}

/// `detach` to the private server: every connection moves there (a `move` transaction: a
/// failure leaves the GUI where it was) and is then held there, detached in the user's eyes.
/// A guard replica on that server goes first (the GUI would be there twice).
fn detach_to_private(
    conns: &mut [Conn],
    display: &str,
    auth: Option<Auth>,
    force: bool,
) -> Result<Vec<serde_json::Value>, SessionError> {
    let guards: Vec<Option<Guard>> = conns.iter().map(|c| c.guard.clone()).collect();
    for c in conns.iter_mut() {
        for (_, s) in c.replicas.drain(..) {
            let _ = c.handle.remove_server(s);
        }
        drop_guard_replica(c);
    }
    let from: Vec<Option<String>> = conns.iter().map(|c| c.display.clone()).collect();
    match crate::transaction::move_all(conns, display, auth.as_ref(), force) {
        Ok(reports) => {
            for (c, from) in conns.iter_mut().zip(from) {
                c.held = true;
                // Where a refused attach puts it back (as for the in-memory detach).
                if let Some(from) = from {
                    crate::preflight::note_origin(c.app_fd, &from);
                }
            }
            Ok(reports)
        }
        Err(e) => {
            // Still where it was: guarded again, best effort.
            for (c, g) in conns.iter_mut().zip(guards) {
                if let Some(g) = g {
                    if let Err(ge) = add_guard(c, &g.display, g.auth.clone()) {
                        tracing::warn!(app_fd = c.app_fd, "guarding again: {ge}");
                    }
                }
            }
            Err(e)
        }
    }
}

/// `attach` of connections held on the private server: a move from there to `display` (a
/// failure leaves them held), then guarded again if they were.
fn attach_from_private(
    conns: &mut [Conn],
    display: &str,
    auth: Option<Auth>,
    force: bool,
) -> Result<Vec<serde_json::Value>, SessionError> {
    if let Some(c) = conns.iter().find(|c| !c.held) {
        return Err(SessionError::State(format!(
            "connection fd {} is not held on the private server: detach it first",
            c.app_fd
        )));
    }
    // move_all judges the target (critical extensions, fidelity) before anything changes. A
    // refusal puts the GUI back on the display it was detached from, as a refused attach of an
    // in-memory detach does; failing that, it stays held.
    let mut reports = match crate::transaction::move_all(conns, display, auth.as_ref(), force) {
        Ok(r) => r,
        Err(SessionError::Refused(why)) => {
            let why = why
                .rsplit_once("; the application stays on")
                .map_or(why.as_str(), |(w, _)| w)
                .to_string();
            let origin = conns
                .first()
                .and_then(|c| crate::preflight::origin_of(c.app_fd))
                .filter(|o| o != display);
            let whereabouts = match origin {
                Some(o) => match crate::transaction::move_all(conns, &o, None, true) {
                    Ok(_) => {
                        for c in conns.iter_mut() {
                            c.held = false;
                        }
                        format!("the application is back on {o}")
                    }
                    Err(e) => format!(
                        "putting the application back on {o} failed ({e}); it stays detached"
                    ),
                },
                None => "the application stays detached".into(),
            };
            return Err(SessionError::Refused(format!("{why}; {whereabouts}")));
        }
        Err(e) => return Err(e),
    };
    for c in conns.iter_mut() {
        c.held = false;
    }
    regard(conns, &mut reports);
    Ok(reports)
}

/// After an attach: connections that had a guard get one again (best effort: a failure is a
/// warning in the report, the attach is done).
fn regard(conns: &mut [Conn], reports: &mut [serde_json::Value]) {
    for (i, c) in conns.iter_mut().enumerate() {
        let Some(g) = c.guard.clone().filter(|g| g.server.is_none()) else {
            continue;
        };
        let r = add_guard(c, &g.display, g.auth.clone());
        if let Some(m) = reports.get_mut(i).and_then(|v| v.as_object_mut()) {
            match r {
                Ok(()) => {
                    m.insert("guard".into(), serde_json::json!(g.display));
                }
                Err(e) => {
                    tracing::warn!(app_fd = c.app_fd, "guarding again after attach: {e}");
                    m.insert(
                        "warnings".into(),
                        serde_json::json!([format!("not guarded again on {}: {e}", g.display)]),
                    );
                }
            }
        }
    }
}

/// Carry out control request `req` on the process's connections, noting what happened in
/// `report`: the success message, or why not.
fn carry_out(
    req: &Request,
    conns: &mut [Conn],
    report: &mut Report,
) -> Result<String, SessionError> {
    match req {
        Request::Detach {
            session_path,
            force,
            private,
            in_memory,
        } => detach(conns, report, session_path, force, private, in_memory),
        Request::Move {
            display,
            auth,
            force,
        } => {
            report.command = "move".into();
            if let Some(d) = conns
                .iter()
                .find(|c| c.held)
                .and_then(|c| c.display.clone())
            {
                return Err(SessionError::State(format!(
                    "detached (held on the private server {d}): use attach"
                )));
            }
            let from = conns.first().and_then(|c| c.display.clone());
            report.connections =
                crate::transaction::move_all(conns, display, auth_of(auth).as_ref(), *force)?;
            Ok(format!(
                "moved from {} to {display}",
                from.as_deref().unwrap_or("?")
            ))
        }
        Request::Attach {
            display,
            auth,
            force,
            private,
        } => attach(conns, report, display, auth, force, private),
        Request::Snapshot { path } => snapshot(conns, report, path),
        Request::Replicate {
            display,
            auth,
            policy,
        } => replicate(conns, report, display, auth, policy),
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
        Request::Guard { private } => guard(conns, report, private),
        Request::AddForeignIds { pairs } => {
            report.command = "add-foreign-ids".into();
            let mut added = 0;
            for c in conns.iter() {
                added += crate::transaction::add_foreign(c, pairs);
            }
            Ok(format!(
                "{added} IDs of the application's other processes learnt"
            ))
        }
        Request::GroupHold { token, secs } => group_hold(conns, report, token, secs),
        Request::GroupRelease { token, pairs } => {
            report.command = "group-release".into();
            let token = *token;
            let mut added = 0;
            let mut ended = 0;
            for c in conns.iter() {
                added += crate::transaction::add_foreign(c, pairs);
                if let Ok(true) = c.handle.with_engine(move |e| e.group_release(Some(token))) {
                    ended += 1;
                }
            }
            Ok(format!(
            "{added} IDs of the application's other processes learnt; {ended} connections released"
        ))
        }
        Request::Preflight { display, auth } => {
            report.command = "preflight".into();
            crate::preflight::check_before_move(conns, display, auth_of(auth).as_ref())?;
            Ok(format!("{display} can host the application"))
        }
        Request::Status | Request::Quiesce | Request::TestFault { .. } => {
            Err(SessionError::State("answered by the control thread".into()))
        }
    }
}

/// Carry out a `detach`: into memory, to the private server, or handed over to the guard.
fn detach(
    conns: &mut [Conn],
    report: &mut Report,
    session_path: &Option<std::path::PathBuf>,
    force: &bool,
    private: &Option<crate::control::PrivateServer>,
    in_memory: &bool,
) -> Result<String, SessionError> {
    report.command = "detach".into();
    // Held on the private server: only a detach into memory (a checkpoint's) goes
    // on from there.
    if let Some(c) = conns
        .iter()
        .find(|c| (c.held && !*in_memory) || c.display.is_none())
    {
        return Err(SessionError::State(match (c.held, &c.display) {
            (true, Some(d)) => {
                format!("already detached (held on the private server {d})")
            }
            _ => "already detached".into(),
        }));
    }
    // Held on the private server (a move there) when asked or guarded, unless a
    // checkpoint wants it in memory.
    let to = match (private, *in_memory) {
        (_, true) => None,
        (Some(p), false) => Some((p.display.clone(), auth_of_private(p))),
        (None, false) => conns.first().and_then(|c| {
            c.guard
                .as_ref()
                .map(|g| (g.display.clone(), g.auth.clone()))
        }),
    };
    if let (Some((display, auth)), None) = (to, session_path) {
        // A guarded GUI is there already: its guard takes over, no capture on the
        // source (which may be dying or stopped).
        if conns.iter().all(|c| {
            c.guard
                .as_ref()
                .is_some_and(|g| g.server.is_some() && g.display == display)
        }) {
            report.connections = hand_over_to_guard(conns)?;
            return Ok(format!("detached (held on the private server {display})"));
        }
        report.connections = detach_to_private(conns, &display, auth, *force)?;
        return Ok(format!("detached (held on the private server {display})"));
    }
    for c in conns.iter_mut() {
        if c.display.is_none() {
            return Err(SessionError::State("already detached".into()));
        }
        let setup = match c.server_setup.clone() {
            Some(s) => s,
            None => probe_setup_auth(c.display.as_deref().unwrap_or_default(), c.auth.as_ref())?,
        };
        let opts = winsession::CaptureOptions::default();
        let before = crate::traffic::now();
        let held = session::hold_and_capture(&c.handle, setup.clone(), &opts)?;
        // The session does not carry them (server-made resources): from the
        // capture's resource list.
        let randr = crate::preflight::randr_selections_held(&c.handle, setup, &held);
        let traffic = crate::traffic::now().since(before);
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
            winsession::write_file(p, &d.session)
                .map_err(|e| SessionError::Capture(format!("writing {}: {e}", p.display())))?;
        }
        report.connections.push(serde_json::json!({
            "display": c.display,
            "timings_ms": timings.0,
            "windows": d.session.windows.len(),
            "atoms": d.view.atoms.len(),
            "lost": lost,
            "round_trips": traffic.round_trips,
            "bytes_sent": traffic.bytes_sent,
            "bytes_received": traffic.bytes_received,
        }));
        for (_, s) in c.replicas.drain(..) {
            let _ = c.handle.remove_server(s);
        }
        drop_guard_replica(c);
        if let Some(from) = c.display.take() {
            // The private server is nobody's origin: the display it was detached
            // from stays noted.
            if !c.held {
                crate::preflight::note_origin(c.app_fd, &from);
            }
        }
        c.held = false;
        c.server_setup = None;
        c.detached = Some(d);
    }
    Ok("detached".into())
}

/// Carry out an `attach`: from memory, or from the private server (a move from there).
fn attach(
    conns: &mut [Conn],
    report: &mut Report,
    display: &str,
    auth: &Option<crate::control::XAuth>,
    force: &bool,
    private: &Option<crate::control::PrivateServer>,
) -> Result<String, SessionError> {
    report.command = "attach".into();
    // The guard goes where the private server is now (it may have been restarted
    // since: another display, another cookie).
    if let Some(p) = private {
        for g in conns.iter_mut().filter_map(|c| c.guard.as_mut()) {
            if g.server.is_none() {
                g.display = p.display.clone();
                g.auth = auth_of_private(p);
            }
        }
    }
    if conns.iter().any(|c| c.held) {
        return attach_from_private(conns, display, auth_of(auth), *force).map(|reps| {
            report.connections = reps;
            format!("attached to {display}")
        });
    }
    // Refused before anything is created on the target; a detached GUI then goes
    // back where it came from. `--force` skips the check.
    if !*force {
        crate::preflight::check_all(conns, display, auth_of(auth).as_ref())?;
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
        let (r, setup) = session::attach(&c.handle, display, a.as_ref(), d, Role::Primary)?;
        report
            .connections
            .push(serde_json::to_value(&r).unwrap_or_default());
        c.display = Some(display.to_string());
        c.server_setup = Some(setup);
        c.auth = a;
        c.detached = None;
    }
    regard(conns, &mut report.connections);
    // As after a move: the connections learn each other's resource IDs, and the
    // report lists this process's for the application's other processes.
    let own = crate::transaction::share_ids(conns);
    crate::transaction::put_own_ids(&mut report.connections, own);
    Ok(format!("attached to {display}"))
}

/// Carry out a `snapshot` of what is on screen, written to `path`.
fn snapshot(
    conns: &mut [Conn],
    report: &mut Report,
    path: &std::path::Path,
) -> Result<String, SessionError> {
    report.command = "snapshot".into();
    let c = conns
        .iter_mut()
        .find(|c| c.display.is_some())
        .ok_or_else(|| SessionError::State("detached: nothing on screen to snapshot".into()))?;
    let setup = match c.server_setup.clone() {
        Some(s) => s,
        None => probe_setup_auth(c.display.as_deref().unwrap_or_default(), c.auth.as_ref())?,
    };
    let before = crate::traffic::now();
    let (d, timings) = session::snapshot(&c.handle, setup, &winsession::CaptureOptions::default())?;
    let traffic = crate::traffic::now().since(before);
    winsession::write_file(path, &d.session)
        .map_err(|e| SessionError::Capture(format!("writing {}: {e}", path.display())))?;
    report.connections.push(serde_json::json!({
        "timings_ms": timings.0,
        "windows": d.session.windows.len(),
        "round_trips": traffic.round_trips,
        "bytes_sent": traffic.bytes_sent,
        "bytes_received": traffic.bytes_received,
    }));
    Ok(format!("snapshot written to {}", path.display()))
}

/// Carry out a `replicate`: one more live copy of the GUI on `display`.
fn replicate(
    conns: &mut [Conn],
    report: &mut Report,
    display: &str,
    auth: &Option<crate::control::XAuth>,
    policy: &InputPolicy,
) -> Result<String, SessionError> {
    report.command = "replicate".into();
    for c in conns.iter_mut() {
        if c.display.is_none() || c.held {
            return Err(SessionError::State(
                "detached: attach before replicating".into(),
            ));
        }
        if c.replicas.iter().any(|(d, _)| d == display) || c.display.as_deref() == Some(display) {
            return Err(SessionError::State(format!("already shown on {display}")));
        }
        let setup = match c.server_setup.clone() {
            Some(s) => s,
            None => probe_setup_auth(c.display.as_deref().unwrap_or_default(), c.auth.as_ref())?,
        };
        let (d, _) = session::snapshot(&c.handle, setup, &winsession::CaptureOptions::default())?;
        // Hold the app while the replica is built so it sees every request after
        // the snapshot.
        c.handle.with_engine(|e| e.pause())?;
        let role = Role::Replica {
            view_only: *policy == InputPolicy::ViewOnly,
        };
        let r = session::attach(&c.handle, display, auth_of(auth).as_ref(), &d, role);
        c.handle.with_engine(|e| e.resume())?;
        let (r, _) = r?;
        c.replicas.push((display.to_string(), r.server));
        report
            .connections
            .push(serde_json::to_value(&r).unwrap_or_default());
    }
    Ok(format!("replicated to {display}"))
}

/// Carry out a `guard`: a hidden lean replica on the private server.
fn guard(
    conns: &mut [Conn],
    report: &mut Report,
    private: &crate::control::PrivateServer,
) -> Result<String, SessionError> {
    report.command = "guard".into();
    for c in conns.iter_mut() {
        if c.display.is_none() || c.held {
            return Err(SessionError::State(
                "detached: attach before guarding".into(),
            ));
        }
        if c.guard.as_ref().is_some_and(|g| g.server.is_some()) {
            continue;
        }
        if c.display.as_deref() == Some(private.display.as_str()) {
            return Err(SessionError::State(format!(
                "the application is on the private server {} itself",
                private.display
            )));
        }
        add_guard(c, &private.display, auth_of_private(private))?;
        report.connections.push(serde_json::json!({
            "display": c.display,
            "guard": private.display,
        }));
    }
    Ok(format!("guarded on {}", private.display))
}

/// Carry out a `GroupHold`: app requests queue until the group is released.
fn group_hold(
    conns: &mut [Conn],
    report: &mut Report,
    token: &u64,
    secs: &u64,
) -> Result<String, SessionError> {
    report.command = "group-hold".into();
    let token = *token;
    let mut relays = Vec::new();
    for c in conns.iter() {
        if c.handle.with_engine(move |e| e.group_hold(token)).is_ok() {
            relays.push(c.handle.clone());
        }
    }
    if let Err(e) = crate::grouphold::arm(
        token,
        Duration::from_secs(*secs),
        relays.clone(),
        crate::control::peer_pid(),
    ) {
        for r in &relays {
            let _ = r.with_engine(move |e| e.group_release(Some(token)));
        }
        return Err(SessionError::State(format!("cannot hold: {e}")));
    }
    Ok(format!(
        "{} connections held for at most {secs} s",
        relays.len()
    ))
}
