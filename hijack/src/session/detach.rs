//! Detach and snapshot: the app is held on its primary server, its view learnt and its window
//! session captured on one internal client (the view's requests and the capture's first round
//! answered in one round trip), and the result — [`Detached`] — kept in process memory. A
//! [`Held`] capture is then committed (the server connection closes, app requests queue) or
//! cancelled (the app runs on where it was).

use super::error::{xerr, SessionError};
use super::shm::{add_converted_pixmaps, add_converted_segments, image_formats};
use super::view::{bare_client_over, client_over, known_extensions, send_view, Detached, Timings};
use crate::muxloop::MuxHandle;
use crate::viewconn::Viewed;
use guimux::ServerId;
use std::time::Instant;
use x11rb::protocol::xproto::Setup;
use x11rb::wrapper::ConnectionExt as _;

/// Hold the app, learn its view, and capture its window session through one internal client
/// on server `s`. The app stays paused afterwards.
///
/// Round trips (issue 15): the view's requests and the capture's first round go out together
/// and are answered in one round trip — which also drains what the app sent before (the
/// internal client shares the app's server connection, so the app's requests are answered
/// first); before it, one more for the extensions' placements unless an earlier client on
/// this server learned them. The capture then costs its own rounds (see `winsession::capture`),
/// and a final synchronisation only when it sent probes that nothing waited for.
fn pause_and_capture(
    h: &MuxHandle,
    s: ServerId,
    server_setup: Setup,
    opts: &winsession::CaptureOptions,
    timings: &mut Timings,
    t: &mut Instant,
) -> Result<Captured, SessionError> {
    let known = h.known_extensions(s);
    let sock = h.start_internal(s)?;
    let result = (|| {
        let conn = match known {
            Some(_) => bare_client_over(sock, server_setup.clone())?,
            None => client_over(sock, server_setup.clone())?,
        };
        // The capture sees the app's own ID range once the view has it.
        let viewed = Viewed::new(&conn, server_setup.clone(), known);
        // Held: what the app sent before is answered before the view's first answer.
        h.with_engine(|e| e.pause())?;
        timings.lap("drain", t);
        let asked = send_view(&viewed, server_setup)?;
        let started = winsession::capture::start(&viewed, opts)
            .map_err(|e| SessionError::Capture(e.to_string()))?;
        let view = asked.collect(&viewed)?;
        viewed.fix_setup(view.setup.clone());
        timings.lap("app view", t);
        let captured = winsession::capture::finish(
            &viewed,
            started,
            &winsession::CaptureOptions {
                // The view enumerated the atom table: the capture asks no names again.
                atom_names: view.atoms.iter().cloned().collect(),
                ..opts.clone()
            },
        )
        .map_err(|e| SessionError::Capture(e.to_string()));
        // Probes free temporary resources made with free IDs of the app's own range (SHM
        // and DAMAGE) with the capture's last requests: they must reach the server before
        // the internal client stops, or the app later gets BadIDChoice for IDs it allocates
        // itself. Nothing else the capture sends goes unanswered.
        let synced = match &captured {
            Ok(c) if !c.made_temporaries => Ok(()),
            _ => conn.sync().map_err(xerr("synchronising after the capture")),
        };
        let exts = known_extensions(&viewed);
        let captured = captured?;
        synced?;
        Ok::<_, SessionError>((view, captured, exts))
    })();
    h.stop_internal()?;
    let (view, captured, exts) = result?;
    h.remember_extensions(s, exts);
    timings.lap("capture", t);
    let winsession::capture::Captured {
        mut session, ext, ..
    } = captured;
    let mut prev = h.with_engine(move |e| e.maps_of(s).cloned())?;
    if prev.is_none() {
        // The capture server's setup is the app's own: remember the image layout it computes
        // MIT-SHM segments with, for conversion on later servers.
        let formats = image_formats(&view.setup);
        h.with_engine(move |e| e.remember_app_image_formats(formats))?;
    }
    add_converted_segments(h, &mut session, prev.as_mut())?;
    add_converted_pixmaps(h, &mut session, prev.as_ref())?;
    Ok(Captured {
        detached: Detached {
            session,
            view,
            prev,
        },
        listed: ext.map(|st| {
            st.resources
                .iter()
                .map(|r| (r.id, r.kind.as_str().to_string()))
                .collect()
        }),
    })
}

/// A capture and what else was learned on the way.
struct Captured {
    detached: Detached,
    /// Every resource of the app's client as the GUIEVICT extension listed it, by (ID, type
    /// name), server-made ones included (`None` without the extension).
    listed: Option<Vec<(u32, String)>>,
}

/// Capture the window session of the app on its primary server without detaching it.
/// `server_setup` is the setup of that server as any client sees it.
pub fn snapshot(
    h: &MuxHandle,
    server_setup: Setup,
    opts: &winsession::CaptureOptions,
) -> Result<(Detached, Timings), SessionError> {
    let mut t = Instant::now();
    let mut timings = Timings::default();
    let s = h
        .with_engine(|e| e.primary())?
        .ok_or_else(|| SessionError::State("the application is detached".into()))?;
    let result = pause_and_capture(h, s, server_setup, opts, &mut timings, &mut t);
    h.with_engine(|e| e.resume())?;
    result.map(|c| (c.detached, timings))
}

/// Detach: capture, then close the server connection. App requests queue from now on.
pub fn detach(
    h: &MuxHandle,
    server_setup: Setup,
    opts: &winsession::CaptureOptions,
) -> Result<(Detached, Timings), SessionError> {
    let held = hold_and_capture(h, server_setup, opts)?;
    held.commit(h)
}

/// The first half of a detach: the app is paused on its primary with its window session
/// captured, and nothing is closed yet. The caller decides: [`Held::commit`] closes the server
/// connection (a detach), [`Held::cancel`] lets the app run on where it is (a refused move).
pub struct Held {
    /// What was captured.
    pub detached: Detached,
    /// Every resource of the app's client as the GUIEVICT extension listed it during the
    /// capture, by (ID, type name), server-made ones included (a RANDR event selection);
    /// `None` without the extension.
    pub listed: Option<Vec<(u32, String)>>,
    server: ServerId,
    timings: Timings,
}

impl Held {
    /// Close the primary server connection: the GUI is off its display, app requests queue.
    pub fn commit(mut self, h: &MuxHandle) -> Result<(Detached, Timings), SessionError> {
        let mut t = Instant::now();
        h.remove_server(self.server)?;
        self.timings.lap("disconnect", &mut t);
        Ok((self.detached, self.timings))
    }

    /// Leave the app as it was: attached to its display, running.
    pub fn cancel(self, h: &MuxHandle) -> Result<(), SessionError> {
        h.with_engine(|e| e.resume())?;
        Ok(())
    }
}

/// Pause the app on its primary and capture its window session (see [`Held`]). On failure the
/// app runs on, attached as it was.
pub fn hold_and_capture(
    h: &MuxHandle,
    server_setup: Setup,
    opts: &winsession::CaptureOptions,
) -> Result<Held, SessionError> {
    let mut t = Instant::now();
    let mut timings = Timings::default();
    let s = h
        .with_engine(|e| e.primary())?
        .ok_or_else(|| SessionError::State("the application is already detached".into()))?;
    match pause_and_capture(h, s, server_setup, opts, &mut timings, &mut t) {
        Ok(c) => Ok(Held {
            detached: c.detached,
            listed: c.listed,
            server: s,
            timings,
        }),
        Err(e) => {
            // Leave the app as it was: attached and running.
            h.with_engine(|e| e.resume())?;
            Err(e)
        }
    }
}
