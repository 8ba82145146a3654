//! The operations the controller carries out, one function each: a control request and the
//! process's connection records flow in ([`carry_out`] picks the operation); sessions are
//! captured, moved, held on the private server or handed over to a guard through
//! [`crate::session`] and [`crate::transaction`]; the success message and the report's
//! per-connection figures flow out, or the error that says why not.

use super::*;

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
pub(super) fn carry_out(
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
        Request::Status | Request::Quiesce | Request::TestFault { .. } | Request::Inline { .. } => {
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
    for c in conns.iter() {
        if c.detached.is_none() {
            return Err(SessionError::State(format!(
                "not detached (on {}): detach first, or use move",
                c.display.as_deref().unwrap_or("?")
            )));
        }
        if c.display.is_some() {
            return Err(SessionError::State("already attached".into()));
        }
    }
    // Each connection's target goes to its relay with the internal client the attach goes on
    // with, which learns the target's extensions in one round trip: the preflight below opens
    // no connection of its own (on a slow link, a TCP connect, a handshake and a round trip
    // fewer), and the attach asks nothing again.
    let a = auth_of(auth);
    type Open = (session::Opened, f64, crate::traffic::Traffic);
    let mut opened: Vec<Open> = Vec::with_capacity(conns.len());
    let mut known = Vec::with_capacity(conns.len());
    let close = |conns: &[Conn], opened: Vec<Open>| {
        for (c, (o, ..)) in conns.iter().zip(opened) {
            o.close(&c.handle);
        }
    };
    for c in conns.iter() {
        let t = std::time::Instant::now();
        let before = crate::traffic::now();
        let r = session::connect_raw(display, a.as_ref())
            .and_then(|fd_setup| session::open_on(&c.handle, fd_setup));
        match r {
            Ok((o, k)) => {
                // (open_on remembered them for the loop too.)
                known.push(k);
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                opened.push((o, ms, crate::traffic::now().since(before)));
            }
            Err(e) => {
                close(conns, opened);
                return Err(e);
            }
        }
    }
    // Refused before anything is created on the target; a detached GUI then goes
    // back where it came from. `--force` skips the check.
    if !*force {
        if let Some(e) = crate::preflight::first_refusal(conns, display, a.as_ref(), &known) {
            // The targets opened go first (their internal client is taken), then the GUI
            // goes back where it came from.
            close(conns, opened);
            return Err(crate::preflight::put_back_refused(conns, display, e));
        }
    }
    let mut opened = opened.into_iter();
    for c in conns.iter_mut() {
        let (Some(d), Some((o, connect_ms, open_traffic))) = (c.detached.as_ref(), opened.next())
        else {
            break;
        };
        let (mut r, setup) = session::attach_opened(&c.handle, display, o, d, Role::Primary)?;
        r.timings.0.insert(0, ("connect".into(), connect_ms));
        r.traffic = r.traffic.plus(open_traffic);
        report
            .connections
            .push(serde_json::to_value(&r).unwrap_or_default());
        c.display = Some(display.to_string());
        c.server_setup = Some(setup);
        c.auth = a.clone();
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
