//! `move` as one transaction inside the application: it either completes or leaves the GUI where
//! it was, and says which. What flows through here, per X connection of the app: a connection to
//! the target opened (handshake done) before anything changes; the window session captured while
//! the app is held on its display ([`session::Held`]); the judgement whether the target can take
//! everything (critical extensions, what the capture could not carry); only then the old
//! connection closed and the session regenerated on the target over the connection opened first.
//! A failure at any later step puts every connection back on the display it came from. Because
//! the whole sequence runs in the app's control thread, a CLI killed half-way changes nothing.

use crate::conn::Conn;
use crate::session::{self, Auth, Detached, SessionError, Timings};
use crate::traffic::{self, Traffic};
use crate::viewconn::KnownExtensions;
use guimux::Role;
use std::os::fd::OwnedFd;
use x11rb::protocol::xproto::Setup;

/// A target connection opened (handshake done), not yet handed to the relay.
type Connected = (OwnedFd, Setup);

/// The move's report for one connection: its detach timings, then its attach report.
fn conn_report(
    detach: &Timings,
    detach_traffic: Traffic,
    windows: usize,
    attach: &session::AttachReport,
) -> serde_json::Value {
    serde_json::json!({
        "detach": {
            "timings_ms": detach.0,
            "windows": windows,
            "round_trips": detach_traffic.round_trips,
            "bytes_sent": detach_traffic.bytes_sent,
            "bytes_received": detach_traffic.bytes_received,
        },
        "attach": attach,
        "lost": attach.lost,
    })
}

/// Setup of the display a connection is on, as any client of it sees it.
fn setup_of(c: &Conn) -> Result<Setup, SessionError> {
    match c.server_setup.clone() {
        Some(s) => Ok(s),
        None => {
            Ok(session::connect_raw(c.display.as_deref().unwrap_or_default(), c.auth.as_ref())?.1)
        }
    }
}

/// Move every connection in `conns` to `display`. Returns the per-connection reports.
pub fn move_all(
    conns: &mut [Conn],
    display: &str,
    auth: Option<&Auth>,
    force: bool,
) -> Result<Vec<serde_json::Value>, SessionError> {
    for c in conns.iter() {
        match c.display.as_deref() {
            None => {
                return Err(SessionError::State(
                    "detached: nothing on a display to move (use attach)".into(),
                ))
            }
            Some(d) if d == display => {
                return Err(SessionError::State(format!("already on {display}")))
            }
            Some(_) => {}
        }
    }
    // 1. The target answers before anything changes: an unreachable, unparsable or refusing
    //    display, or one that asks for authorisation we lack, fails before anything is closed
    //    (the holds of step 2 are let go). The connections are opened on threads of their own
    //    while step 2 captures the sources: on a link, the handshake's round trip overlaps the
    //    capture. Each thread counts its own traffic (the meter is per thread).
    let connecting: Vec<_> = conns
        .iter()
        .map(|_| {
            let display = display.to_string();
            let auth = auth.cloned();
            std::thread::Builder::new()
                .name("guievict-connect".into())
                .spawn(move || {
                    let before = traffic::now();
                    let r = session::connect_raw(&display, auth.as_ref());
                    (r, traffic::now().since(before))
                })
        })
        .collect();
    let connected = || -> Result<(Vec<Option<Connected>>, Vec<Traffic>), SessionError> {
        let mut opened = Vec::with_capacity(conns.len());
        let mut traffic = Vec::with_capacity(conns.len());
        let mut first_error = None;
        for t in connecting {
            let (r, t) = match t {
                Ok(handle) => handle.join().unwrap_or_else(|_| {
                    (
                        Err(SessionError::State(
                            "connecting to the target panicked".into(),
                        )),
                        Traffic::default(),
                    )
                }),
                Err(e) => {
                    tracing::warn!("no thread to connect on ({e}): connecting in line");
                    let before = traffic::now();
                    let r = session::connect_raw(display, auth);
                    (r, traffic::now().since(before))
                }
            };
            traffic.push(t);
            match r {
                Ok(fd) => opened.push(Some(fd)),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok((opened, traffic)),
        }
    };
    // Round trips and bytes per connection: to the source (detach) and to the target (attach).
    let mut to_source: Vec<Traffic> = Vec::with_capacity(conns.len());
    // 2. Hold each connection's app side and capture its session; nothing is closed yet.
    let opts = winsession::CaptureOptions::default();
    let mut held: Vec<session::Held> = Vec::with_capacity(conns.len());
    let cancel = |conns: &[Conn], held: Vec<session::Held>| {
        for (c, h) in conns.iter().zip(held) {
            if let Err(e) = h.cancel(&c.handle) {
                tracing::error!(app_fd = c.app_fd, "resuming after a refused move: {e}");
            }
        }
    };
    for c in conns.iter() {
        let before = traffic::now();
        let step = (|| {
            let setup = setup_of(c)?;
            let mut h = session::hold_and_capture(&c.handle, setup.clone(), &opts)?;
            // The session does not carry them (server-made resources): from the capture's
            // resource list.
            let randr = crate::preflight::randr_selections_held(&c.handle, setup, &h);
            h.detached.session.other_resources.extend(randr);
            Ok::<_, SessionError>(h)
        })();
        to_source.push(traffic::now().since(before));
        match step {
            Ok(h) => held.push(h),
            Err(e) => {
                cancel(conns, held);
                // The target's failure is the earlier step's: it is the one reported.
                connected()?;
                return Err(e);
            }
        }
    }
    let (mut opened, mut to_target) = match connected() {
        Ok(x) => x,
        Err(e) => {
            cancel(conns, held);
            return Err(e);
        }
    };
    // 2b. Each target connection goes to its relay (pending: only internal clients talk to
    //     it) with the internal client the attach will use, which learns the target's
    //     extensions in one round trip: the preflight below asks no connection of its own,
    //     the attach nothing again.
    let mut ready: Vec<Option<(session::Opened, KnownExtensions)>> =
        Vec::with_capacity(conns.len());
    // Closes the target connections not attached (yet): before a refusal or a put-back.
    let close = |conns: &[Conn], ready: &mut [Option<(session::Opened, KnownExtensions)>]| {
        for (c, o) in conns.iter().zip(ready.iter_mut()) {
            if let Some((o, _)) = o.take() {
                o.close(&c.handle);
            }
        }
    };
    for (i, c) in conns.iter().enumerate() {
        let Some(fd) = opened[i].take() else { break };
        let before = traffic::now();
        let r = session::open_on(&c.handle, fd);
        to_target[i] = to_target[i].plus(traffic::now().since(before));
        match r {
            Ok(o) => ready.push(Some(o)),
            Err(e) => {
                close(conns, &mut ready);
                cancel(conns, held);
                return Err(e);
            }
        }
    }
    // 3. Can the target take everything? Refused with nothing changed otherwise.
    if !force {
        let here = conns[0].display.clone().unwrap_or_default();
        let mut lost = Vec::new();
        for h in &held {
            lost.extend(crate::fidelity::uncarried(&h.detached.session));
        }
        // A missing critical extension is the more specific reason: it is named first.
        let verdict = held
            .iter()
            .zip(&ready)
            .try_for_each(|(h, o)| match o {
                Some((_, known)) => {
                    crate::preflight::check_known(&h.detached, display, auth, known)
                }
                None => Ok(()),
            })
            .map_err(|e| match e {
                SessionError::Refused(m) => SessionError::Refused(format!(
                    "{}; the application stays on {here}",
                    m.trim_end_matches(" (nothing was created there)")
                )),
                e => e,
            })
            .and_then(|()| {
                if lost.is_empty() {
                    Ok(())
                } else {
                    Err(SessionError::Refused(crate::fidelity::refusal(
                        "move",
                        &lost,
                        &format!("the application stays on {here}"),
                    )))
                }
            });
        if let Err(e) = verdict {
            close(conns, &mut ready);
            cancel(conns, held);
            return Err(e);
        }
    }
    // 4. Close the old connections. From here on, a failure puts the GUI back.
    let mut origins: Vec<(String, Option<Auth>)> = Vec::with_capacity(conns.len());
    let mut dets: Vec<(Detached, Timings)> = Vec::with_capacity(conns.len());
    let mut held = held.into_iter();
    for c in conns.iter_mut() {
        let Some(h) = held.next() else { break };
        let d = h.commit(&c.handle);
        for (_, s) in c.replicas.drain(..) {
            let _ = c.handle.remove_server(s);
        }
        let from = c.display.take().unwrap_or_default();
        crate::preflight::note_origin(c.app_fd, &from);
        origins.push((from, c.auth.take()));
        c.server_setup = None;
        match d {
            Ok(d) => dets.push(d),
            Err(e) => {
                // The relay of this connection ended (the app closed it): nothing to carry.
                // The connections not yet closed run on where they are.
                tracing::warn!(app_fd = c.app_fd, "detach during a move: {e}");
                let rest: Vec<session::Held> = held.collect();
                let n = origins.len();
                close(conns, &mut ready);
                cancel(&conns[n..], rest);
                return Err(put_back(&mut conns[..n], &origins, dets, display, e));
            }
        }
    }
    // 5. Regenerate on the target over the connections opened in step 1.
    let mut reports = Vec::with_capacity(conns.len());
    for (i, c) in conns.iter_mut().enumerate() {
        let Some((o, _)) = ready[i].take() else { break };
        match session::attach_opened(&c.handle, display, o, &dets[i].0, Role::Primary) {
            Ok((mut r, setup)) => {
                r.traffic = r
                    .traffic
                    .plus(to_target.get(i).copied().unwrap_or_default());
                reports.push(conn_report(
                    &dets[i].1,
                    to_source.get(i).copied().unwrap_or_default(),
                    dets[i].0.session.windows.len(),
                    &r,
                ));
                c.display = Some(display.to_string());
                c.server_setup = Some(setup);
                c.auth = auth.cloned();
            }
            Err(e) => {
                close(conns, &mut ready);
                return Err(put_back(conns, &origins, dets, display, e));
            }
        }
    }
    // 6. Each connection learns the others' resources (IDs one connection uses of another's),
    //    and the report lists this process's for the application's other processes.
    put_own_ids(&mut reports, share_ids(conns));
    Ok(reports)
}

/// Teach every connection the others' resource IDs on their new server (see
/// `Engine::add_foreign_xids`); returns each connection's own, for the application's other
/// processes.
pub fn share_ids(conns: &[Conn]) -> Vec<Vec<(u32, u32)>> {
    let own: Vec<Vec<(u32, u32)>> = conns.iter().map(own_ids).collect();
    for (i, c) in conns.iter().enumerate() {
        let others: Vec<(u32, u32)> = own
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .flat_map(|(_, v)| v.iter().copied())
            .collect();
        add_foreign(c, &others);
    }
    own
}

/// Put each connection's own ID pairs into its report (`own_ids`), in order.
pub fn put_own_ids(reports: &mut [serde_json::Value], own: Vec<Vec<(u32, u32)>>) {
    for (r, ids) in reports.iter_mut().zip(own) {
        if let Some(m) = r.as_object_mut() {
            m.insert("own_ids".into(), serde_json::json!(ids));
        }
    }
}

/// `(app-view ID, server ID)` of every resource of the connection's own ID range on its
/// primary (what another connection of the application may name).
pub fn own_ids(c: &Conn) -> Vec<(u32, u32)> {
    c.handle
        .with_engine(|e| {
            e.primary()
                .and_then(|p| e.maps_of(p))
                .map(|m| {
                    m.xids
                        .pairs()
                        .filter(|(a, _)| m.xids.is_app_own(*a))
                        .collect()
                })
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

/// Teach connection `c`'s primary the IDs of the application's other connections; how many
/// were new.
pub fn add_foreign(c: &Conn, pairs: &[(u32, u32)]) -> usize {
    if pairs.is_empty() {
        return 0;
    }
    let pairs = pairs.to_vec();
    c.handle
        .with_engine(move |e| match e.primary() {
            Some(p) => e.add_foreign_xids(p, &pairs),
            None => 0,
        })
        .unwrap_or(0)
}

/// After a failed move: every connection already on `target` is taken off it again, and every
/// connection goes back to the display it came from (`origins`, in order). Returns the error to
/// report: the cause, and where the application is now.
fn put_back(
    conns: &mut [Conn],
    origins: &[(String, Option<Auth>)],
    dets: Vec<(Detached, Timings)>,
    target: &str,
    cause: SessionError,
) -> SessionError {
    tracing::warn!("move to {target} failed, putting the application back: {cause}");
    // Read before the put-back starts internal clients of its own: an internal client cut off
    // because the target did not answer (stopped, hung) is the cause the user needs to hear.
    let hung: Option<String> = conns.iter().find_map(|c| c.handle.internal_timed_out());
    let cause = match hung {
        Some(h) => format!("{cause} ({h})"),
        None => cause.to_string(),
    };
    let mut dets: Vec<Option<Detached>> = dets.into_iter().map(|(d, _)| Some(d)).collect();
    let mut back = Vec::new();
    let mut failed = Vec::new();
    for (i, c) in conns.iter_mut().enumerate() {
        let Some((origin, origin_auth)) = origins.get(i) else {
            continue;
        };
        // Already moved: capture it again from the target (it may have run meanwhile).
        if c.display.as_deref() == Some(target) {
            let again = setup_of(c).and_then(|s| {
                session::detach(&c.handle, s, &winsession::CaptureOptions::default())
            });
            match again {
                Ok((d, _)) => {
                    if let Some(slot) = dets.get_mut(i) {
                        *slot = Some(d);
                    }
                }
                Err(e) => {
                    failed.push(format!("taking it off {target}: {e}"));
                    continue;
                }
            }
            c.display = None;
            c.server_setup = None;
        }
        let Some(d) = dets.get_mut(i).and_then(Option::take) else {
            continue;
        };
        match session::attach(&c.handle, origin, origin_auth.as_ref(), &d, Role::Primary) {
            Ok((_, setup)) => {
                c.display = Some(origin.clone());
                c.server_setup = Some(setup);
                c.auth = origin_auth.clone();
                c.detached = None;
                if !back.contains(origin) {
                    back.push(origin.clone());
                }
            }
            Err(e) => {
                failed.push(format!("{origin}: {e}"));
                c.detached = Some(d);
            }
        }
    }
    let whereabouts = if failed.is_empty() && back.is_empty() {
        "the application stays where it was".to_string()
    } else if failed.is_empty() {
        format!("the application is back on {}", back.join(", "))
    } else {
        format!(
            "putting it back failed ({}); the GUI is detached and kept: `guievict attach DISPLAY` brings it back",
            failed.join("; ")
        )
    };
    SessionError::State(format!("not moved to {target}: {cause}; {whereabouts}"))
}
