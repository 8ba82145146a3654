//! Attach: a detached GUI goes onto a new server. In: a connection past its handshake (opened
//! here, or earlier by a `move` with [`open_on`]) and the [`Detached`] session. On one internal
//! client the maps' questions go out first ([`Asked`]: atoms, extension places, keymap), the
//! display is refused when the app's resources could not be read back there, the session is
//! regenerated, the maps are built (and composed with the previous ones after a move), MIT-SHM
//! conversion is set up when needed; then the server is activated, the queue replayed, and an
//! [`AttachReport`] flows back.

use super::connect::{connect_raw, is_unix_socket, Auth};
use super::error::{cerr, xerr, SessionError};
use super::mapping::{build_maps, compose, Answers};
use super::shm::{app_knows_shm, shm_conversion};
use super::view::{
    bare_client_over, client_over, known_extensions, query_places, Detached, Timings,
};
use crate::muxloop::MuxHandle;
use crate::traffic::{self, Internal, Traffic};
use crate::viewconn::KnownExtensions;
use guimux::maps::ExtPlace;
use guimux::{Role, ServerId};
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::time::Instant;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::xproto::{self, ConnectionExt as _, Setup};

/// What an attach did.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct AttachReport {
    /// Server id inside the relay.
    pub server: ServerId,
    /// Resources regenerated.
    pub resources: usize,
    /// Atoms mapped.
    pub atoms: usize,
    /// Requests replayed from the queue.
    pub replayed: u64,
    /// Bytes replayed.
    pub replayed_bytes: u64,
    /// Warnings (font substitutions, missing extensions, events sent to the app, …).
    pub warnings: Vec<String>,
    /// The warnings that say part of the GUI was not carried exactly (see `fidelity`): the
    /// command reports them on stderr and fails unless forced.
    #[serde(default)]
    pub lost: Vec<String>,
    /// Stage timings.
    pub timings: Timings,
    /// Round trips and bytes on this connection's link (the connect included).
    #[serde(flatten, default)]
    pub traffic: Traffic,
}

/// Attach the detached GUI to `display` (as primary) or add it as a replica.
pub fn attach(
    h: &MuxHandle,
    display: &str,
    auth: Option<&Auth>,
    detached: &Detached,
    role: Role,
) -> Result<(AttachReport, Setup), SessionError> {
    let t = Instant::now();
    let before = traffic::now();
    let (fd, setup) = connect_raw(display, auth)?;
    let connect_ms = t.elapsed().as_secs_f64() * 1000.0;
    let (mut r, setup) = attach_on(h, display, (fd, setup), detached, role)?;
    r.timings.0.insert(0, ("connect".into(), connect_ms));
    r.traffic = traffic::now().since(before);
    Ok((r, setup))
}

/// [`attach`] over a connection to `display` that is already open and past its handshake (a
/// `move` opens it before it detaches anything, so an unreachable or refusing target changes
/// nothing).
pub fn attach_on(
    h: &MuxHandle,
    display: &str,
    (fd, setup): (OwnedFd, Setup),
    detached: &Detached,
    role: Role,
) -> Result<(AttachReport, Setup), SessionError> {
    let passes_fds = is_unix_socket(&fd);
    let s = h.add_server(fd)?;
    let conn = client_over(h.start_internal(s)?, setup.clone())?;
    attach_opened(
        h,
        display,
        Opened {
            server: s,
            setup,
            passes_fds,
            conn,
        },
        detached,
        role,
    )
}

/// A connection to a new server handed to the loop before the attach (role pending: only
/// internal clients talk to it), with the internal client the attach goes on with: it is the
/// loop's internal client until [`attach_opened`] or [`Opened::close`].
pub struct Opened {
    /// The loop's name for it.
    pub server: ServerId,
    /// Its setup as any client sees it.
    pub setup: Setup,
    passes_fds: bool,
    conn: Internal,
}

impl Opened {
    /// Close the connection (a refused or failed move).
    pub fn close(self, h: &MuxHandle) {
        drop(self.conn);
        let _ = h.stop_internal();
        let _ = h.remove_server(self.server);
    }
}

/// Hand a new server connection (`connect_raw`'s) to the loop and learn the placements of
/// every extension guievict may ask about on the internal client the attach will use: one
/// round trip, after which neither the move's preflight nor the attach nor a later capture
/// from that server asks any again (see [`MuxHandle::known_extensions`]). BIG-REQUESTS is
/// enabled right after (its answer comes with the attach's first). On failure the connection
/// is closed. The loop's internal client stays taken until [`attach_opened`] or
/// [`Opened::close`].
pub fn open_on(
    h: &MuxHandle,
    (fd, setup): (OwnedFd, Setup),
) -> Result<(Opened, KnownExtensions), SessionError> {
    let passes_fds = is_unix_socket(&fd);
    let s = h.add_server(fd)?;
    let learned = h
        .start_internal(s)
        .map_err(SessionError::from)
        .and_then(|sock| {
            let conn = client_over(sock, setup.clone())?;
            let known = known_extensions(&conn);
            conn.prefetch_maximum_request_bytes();
            Ok((conn, known))
        });
    match learned {
        Ok((conn, known)) => {
            h.remember_extensions(s, known.clone());
            Ok((
                Opened {
                    server: s,
                    setup,
                    passes_fds,
                    conn,
                },
                known,
            ))
        }
        Err(e) => {
            let _ = h.stop_internal();
            let _ = h.remove_server(s);
            Err(e)
        }
    }
}

/// An internal client on server `s`, wrapped so that extension placements learned before
/// are answered without asking ([`Viewed`](crate::viewconn::Viewed); the caller wraps).
/// Without them, every extension guievict may ask about is asked at once.
pub fn internal_for(
    h: &MuxHandle,
    s: ServerId,
    setup: &Setup,
) -> Result<(Internal, Option<KnownExtensions>), SessionError> {
    let known = h.known_extensions(s);
    let sock = h.start_internal(s)?;
    let conn = match known {
        Some(_) => bare_client_over(sock, setup.clone())?,
        None => client_over(sock, setup.clone())?,
    };
    Ok((conn, known))
}

/// [`attach_on`] over a connection [`open_on`] handed to the loop already.
pub fn attach_opened(
    h: &MuxHandle,
    display: &str,
    opened: Opened,
    detached: &Detached,
    role: Role,
) -> Result<(AttachReport, Setup), SessionError> {
    let mut t = Instant::now();
    let traffic0 = traffic::now();
    let mut timings = Timings::default();
    let Opened {
        server: s,
        setup,
        passes_fds,
        conn,
    } = opened;
    let result = (|| {
        // What the maps need and does not depend on the regeneration goes out now; its
        // answers arrive with the regeneration's (no round trip of its own).
        let asked = Asked::send(&conn, detached, &setup)?;
        refuse_unreadable(&conn, display)?;
        // MIT-SHM: a target of another host or IPC namespace has the extension but cannot
        // read this process's memory, and one reached over TCP cannot take the file
        // descriptors of AttachFd; guimux then serves the segments itself.
        let cannot_share = app_knows_shm(detached)
            && conn
                .extension_information(guimux::shmconv::EXTENSION)
                .ok()
                .flatten()
                .is_some()
            && (!passes_fds
                || !crate::shmmem::can_share_memory(&conn, &setup).map_err(|why| {
                    SessionError::X {
                        stage: "probing MIT-SHM on the new server",
                        why,
                    }
                })?);
        let regen = winsession::regenerate(
            &conn,
            &detached.session,
            &winsession::RegenOptions {
                attach_shm: !cannot_share,
                ..Default::default()
            },
        )
        .map_err(|e| SessionError::Regenerate {
            display: display.to_string(),
            why: e.to_string(),
        })?;
        timings.lap("regenerate", &mut t);
        if crate::fault::armed("attach-regenerated", display) {
            return Err(SessionError::State(format!(
                "fault injected after regenerating on {display} (GUIEVICT_FAULT)"
            )));
        }
        let answers = asked.collect()?;
        let (maps, mut warnings) = build_maps(
            &detached.view,
            &setup,
            &regen,
            &detached.session.xi_devices,
            &answers,
        );
        let mut maps = match &detached.prev {
            Some(prev) => compose(prev, &maps),
            None => maps,
        };
        // Extensions the app knows that the capture server lacked (so `compose` could not
        // place them) may well exist here.
        let unplaced: Vec<String> = maps
            .exts
            .entries
            .iter()
            .filter(|e| e.app.is_some() && e.server.is_none())
            .map(|e| e.name.clone())
            .collect();
        let unplaced: Vec<String> = unplaced
            .into_iter()
            .filter(|n| match answers.places.get(n) {
                Some(place) => {
                    if let Some(e) = maps.exts.entries.iter_mut().find(|e| &e.name == n) {
                        e.server = *place;
                    }
                    false
                }
                None => true,
            })
            .collect();
        if !unplaced.is_empty() {
            let places = query_places(&conn, &unplaced)?;
            for (name, place) in unplaced.iter().zip(places) {
                if let Some(e) = maps.exts.entries.iter_mut().find(|e| &e.name == name) {
                    e.server = place;
                }
            }
        }
        let mut lost: Vec<String> = warnings.clone();
        lost.extend(
            regen
                .warnings
                .iter()
                .filter(|w| crate::fidelity::is_loss(w))
                .cloned(),
        );
        // What the capture could not read at all (what it could not model is among the
        // regeneration's warnings already).
        lost.extend(
            detached
                .session
                .unknown
                .iter()
                .filter(|u| !u.contains("not modelled"))
                .map(|u| format!("not captured: {u}")),
        );
        warnings.extend(regen.warnings.iter().cloned());
        let keymap = answers.keymap;
        let shm = shm_conversion(
            h,
            &maps,
            detached,
            &setup,
            cannot_share,
            &mut warnings,
            &mut lost,
        )?;
        // No sync: the regeneration ended with one, and nothing was sent since that was
        // not answered (`Asked` went out before it, `query_places` waits).
        timings.lap("maps", &mut t);
        // Answered long ago: a later capture from this server asks none of them again.
        h.remember_extensions(s, known_extensions(&conn));
        Ok((maps, warnings, lost, regen.xid_map.len(), keymap, shm))
    })();
    drop(conn);
    h.stop_internal()?;
    let (maps, warnings, mut lost, resources, keymap, shm) = match result {
        Ok(x) => x,
        Err(e) => {
            let _ = h.remove_server(s);
            return Err(e);
        }
    };
    let mut warnings = warnings;
    let atoms = maps.atoms.len();
    // XKEYBOARD's first event code as the app knows it (for the keymap notice below).
    let xkb_event = maps
        .exts
        .by_name("XKEYBOARD")
        .and_then(|e| e.app)
        .map(|p| p.first_event);
    let before = h.with_engine(|e| e.stats())?;
    h.with_engine(move |e| e.set_shm_conversion(s, shm))?
        .map_err(|e| SessionError::State(e.to_string()))?;
    h.activate(s, role, Some(maps))
        .map_err(SessionError::State)?;
    if role == Role::Primary {
        // Another keymap on the new server: tell the app, as the server would after a
        // keymap change, so that its toolkit reloads it and typed text stays right.
        if keymap != detached.view.keymap {
            let (min, _, _) = keymap;
            let count = setup.max_keycode - min + 1;
            let mut ev = [0u8; 32];
            ev[0] = 34; // MappingNotify
            ev[4] = 1; // request: Keyboard
            ev[5] = min;
            ev[6] = count;
            h.with_engine(move |e| e.inject_event(ev))?;
            warnings.push("the new server's keymap differs: the app was sent MappingNotify".into());
            // XKB clients (Qt5, GTK3) ignore core MappingNotify: they reload their keymap on
            // the XKB event they selected, which the server sends them on a keymap change.
            let notice = crate::xkbnotice::notice_for(&detached.session);
            if let (Some(notice), Some(code)) = (notice, xkb_event) {
                let old = (
                    detached.view.setup.min_keycode,
                    detached.view.setup.max_keycode,
                );
                let device = crate::xkbnotice::core_keyboard_id(&detached.session);
                let ev =
                    crate::xkbnotice::event(notice, code, device, (min, setup.max_keycode), old);
                h.with_engine(move |e| e.inject_event(ev))?;
                warnings.push(format!(
                    "the app was sent XKB {notice:?} for the new keymap"
                ));
            }
        }
        for w in crate::screen::announce(h, s, detached, &setup) {
            if w.contains("not renewed") {
                lost.push(w.clone());
            }
            warnings.push(w);
        }
        h.with_engine(|e| e.resume())?;
    }
    let after = h.with_engine(|e| e.stats())?;
    timings.lap("replay", &mut t);
    Ok((
        AttachReport {
            server: s,
            resources,
            atoms,
            replayed: after.delivered.saturating_sub(before.delivered),
            replayed_bytes: before.queued_bytes,
            warnings,
            lost,
            timings,
            traffic: traffic::now().since(traffic0),
        },
        setup,
    ))
}

/// Refuse a display on which the app's resources could not be read back: with neither the
/// GUIEVICT extension nor X-Resource visible there, the GUI could never be detached or moved
/// away again. That is what an untrusted X11 forwarding (`ssh -X` with `ForwardX11Trusted
/// no`) looks like: the SECURITY extension hides most extensions from its clients. Costs no
/// round trip of its own (the extension queries went out with the connection).
fn refuse_unreadable(conn: &impl Connection, display: &str) -> Result<(), SessionError> {
    let has = |n: &'static str| {
        conn.extension_information(n)
            .map(|i| i.is_some())
            .map_err(cerr("QueryExtension"))
    };
    if has(guievict_ext_proto::EXTENSION_NAME)? || has(x11rb::protocol::res::X11_EXTENSION_NAME)? {
        return Ok(());
    }
    let hint = if has("XKEYBOARD")? || has("RENDER")? {
        "its server lacks both"
    } else {
        "it hides even XKEYBOARD and RENDER from this client, as an untrusted X11 forwarding \
         does (ssh -X with ForwardX11Trusted no): forward with ssh -Y, or set \
         ForwardX11Trusted yes"
    };
    Err(SessionError::Refused(format!(
        "{display} offers neither the GUIEVICT extension nor X-Resource, so the application \
         could never be detached or moved away from it again ({hint})"
    )))
}

type Pending<'c, C, R> = x11rb::cookie::Cookie<'c, C, R>;

/// The questions an attach asks the new server that do not depend on the regeneration: the
/// app's atom names, the placement of every extension it knows (and of those its previous
/// server knew), the keyboard mapping. Sent before the regeneration, collected after it, so
/// that on a slow link they cost no round trip of their own.
struct Asked<'c, C: Connection> {
    atoms: Vec<(u32, Pending<'c, C, xproto::InternAtomReply>)>,
    places: Vec<(String, Pending<'c, C, xproto::QueryExtensionReply>)>,
    keymap: (u8, Pending<'c, C, xproto::GetKeyboardMappingReply>),
}

impl<'c, C: Connection> Asked<'c, C> {
    fn send(conn: &'c C, d: &Detached, setup: &Setup) -> Result<Self, SessionError> {
        let atoms = d
            .view
            .atoms
            .iter()
            .map(|(a, name)| conn.intern_atom(false, name.as_bytes()).map(|c| (*a, c)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(cerr("InternAtom"))?;
        let mut names: Vec<String> = d.view.exts.iter().map(|(n, _)| n.clone()).collect();
        if let Some(prev) = &d.prev {
            names.extend(prev.exts.entries.iter().map(|e| e.name.clone()));
        }
        names.sort();
        names.dedup();
        let places = names
            .into_iter()
            .map(|n| conn.query_extension(n.as_bytes()).map(|c| (n, c)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(cerr("QueryExtension"))?;
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let keymap = conn
            .get_keyboard_mapping(min, max - min + 1)
            .map_err(cerr("GetKeyboardMapping"))?;
        Ok(Self {
            atoms,
            places,
            keymap: (min, keymap),
        })
    }

    fn collect(self) -> Result<Answers, SessionError> {
        let atoms = self
            .atoms
            .into_iter()
            .map(|(a, c)| Ok((a, c.reply().map_err(xerr("InternAtom"))?.atom)))
            .collect::<Result<Vec<_>, SessionError>>()?;
        let places = self
            .places
            .into_iter()
            .map(|(n, c)| {
                let r = c.reply().map_err(xerr("QueryExtension"))?;
                Ok((
                    n,
                    r.present.then_some(ExtPlace {
                        major: r.major_opcode,
                        first_event: r.first_event,
                        first_error: r.first_error,
                    }),
                ))
            })
            .collect::<Result<HashMap<_, _>, SessionError>>()?;
        let (min, c) = self.keymap;
        let r = c.reply().map_err(xerr("GetKeyboardMapping"))?;
        Ok(Answers {
            atoms,
            places,
            keymap: (min, r.keysyms_per_keycode, r.keysyms),
        })
    }
}
