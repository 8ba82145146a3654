//! Detach, attach, snapshot and replicate for one application connection. This is where the
//! window session flows: captured through guimux's internal client on the app's own server
//! connection (the extension then answers for the app's resources), kept in memory (so a
//! checkpointer saves it with the process), regenerated on a new server through another internal
//! client, and turned into the maps that let guimux translate the app's queued and future
//! requests.

use crate::muxloop::{LoopGone, MuxHandle};
pub use crate::traffic::Internal;
use crate::traffic::{self, Counted, Traffic};
use crate::viewconn::{KnownExtensions, Viewed};
use guimux::engine::ShmTarget;
use guimux::maps::{AtomMap, DeviceMap, ExtEntry, ExtMap, ExtPlace, XidMap};
use guimux::shmconv::ImageFormats;
use guimux::{Maps, Role, ServerId};
use std::collections::HashMap;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::errors::{ConnectError, ConnectionError, ReplyError};
use x11rb::protocol::xc_misc::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _, Setup, VisualClass};
use x11rb::rust_connection::{DefaultStream, RustConnection};
use x11rb::wrapper::ConnectionExt as _;

/// Why a session operation failed. Each variant says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The relay for this connection has ended.
    #[error(transparent)]
    Loop(#[from] LoopGone),
    /// Connecting to the target display failed.
    #[error("cannot connect to X display {display}: {why}")]
    Connect {
        /// Display name.
        display: String,
        /// Reason (auth, no such display, …).
        why: String,
    },
    /// An X request on the internal client failed.
    #[error("X protocol error during {stage}: {why}")]
    X {
        /// What was being done.
        stage: &'static str,
        /// The error.
        why: String,
    },
    /// Capturing the window session failed.
    #[error("capturing the window session failed: {0}")]
    Capture(String),
    /// Regenerating the window session failed.
    #[error("regenerating the window session on {display} failed: {why}")]
    Regenerate {
        /// Display.
        display: String,
        /// Reason.
        why: String,
    },
    /// The operation needs a state the connection is not in.
    #[error("{0}")]
    State(String),
    /// The target cannot host the application (it lacks an extension the app depends on);
    /// nothing was created there. The text names the extension and says where the app is now.
    #[error("{0}")]
    Refused(String),
}

fn xerr(stage: &'static str) -> impl Fn(ReplyError) -> SessionError {
    move |e| SessionError::X {
        stage,
        why: e.to_string(),
    }
}

fn cerr(stage: &'static str) -> impl Fn(ConnectionError) -> SessionError {
    move |e| SessionError::X {
        stage,
        why: e.to_string(),
    }
}

/// What the app believes about the server it started on: its setup (with its own ID range),
/// every atom that existed when it was last captured, and where each extension lives.
#[derive(Clone, Debug)]
pub struct AppView {
    /// The setup as the app holds it (`resource_id_base` is the app's).
    pub setup: Setup,
    /// Atoms by app-view value and name.
    pub atoms: Vec<(u32, String)>,
    /// Extensions as the app knows them.
    pub exts: Vec<(String, ExtPlace)>,
    /// The keyboard mapping: (min keycode, keysyms per keycode, keysyms).
    pub keymap: (u8, u8, Vec<u32>),
}

/// A detached GUI: the session and the app's view, held in process memory.
#[derive(Debug)]
pub struct Detached {
    /// The window session, in the values of the server it was captured on.
    pub session: winsession::Session,
    /// That server as the capturing connection saw it (atoms, extensions, its ID range).
    pub view: AppView,
    /// The translation from the app's view to that server, when it was not the app's original
    /// server (after a move). `None`: the capture server's values *are* the app's view.
    pub prev: Option<Maps>,
}

/// Timings of one operation, in milliseconds, by stage.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Timings(pub Vec<(String, f64)>);

impl Timings {
    fn lap(&mut self, name: &str, t: &mut Instant) {
        self.0
            .push((name.to_string(), t.elapsed().as_secs_f64() * 1000.0));
        *t = Instant::now();
    }
}

/// An x11rb client over `sock` (already past the setup handshake, whose result is `setup`).
pub fn client_over(sock: UnixStream, setup: Setup) -> Result<Internal, SessionError> {
    let conn = bare_client_over(sock, setup)?;
    // Every extension guievict may ask about goes out now; the first answer needed waits
    // for all of them (one round trip instead of one per extension).
    winsession::prefetch_extensions(&conn);
    Ok(conn)
}

/// [`client_over`] without asking for any extension (its caller knows them).
fn bare_client_over(sock: UnixStream, setup: Setup) -> Result<Internal, SessionError> {
    let (stream, _) = DefaultStream::from_unix_stream(sock).map_err(|e| SessionError::X {
        stage: "internal client",
        why: e.to_string(),
    })?;
    RustConnection::for_connected_stream(Counted::new(stream), setup).map_err(|e: ConnectError| {
        SessionError::X {
            stage: "internal client",
            why: e.to_string(),
        }
    })
}

/// The placements of every extension guievict may ask about, as `conn` has them: after its
/// first answers, from x11rb's cache (no round trip).
fn known_extensions(conn: &impl Connection) -> KnownExtensions {
    winsession::EXTENSIONS_OF_INTEREST
        .iter()
        .filter_map(|&n| {
            conn.extension_information(n)
                .ok()
                .map(|i| (n.to_string(), i))
        })
        .collect()
}

/// Learn the app's view on its current server through an internal connection `conn`
/// (whose setup is a copy of the server's setup; `resource_id_base` gets fixed here).
pub fn learn_view(conn: &impl Connection, setup: Setup) -> Result<AppView, SessionError> {
    send_view(conn, setup)?.collect(conn)
}

/// The view's requests, sent ([`send_view`]) and not yet waited for.
pub struct ViewAsked<'c, C: Connection> {
    setup: Setup,
    range: x11rb::cookie::Cookie<'c, C, xc_misc::GetXIDRangeReply>,
    first_atoms: AtomCookies<'c, C>,
    names: x11rb::cookie::Cookie<'c, C, xproto::ListExtensionsReply>,
    keymap: x11rb::cookie::Cookie<'c, C, xproto::GetKeyboardMappingReply>,
}

/// Send what the view needs and does not depend on an answer: the XID range, the first batch
/// of atom names, the extension list and the keyboard mapping. A caller with more to ask of
/// the server (the capture's first round) sends it before [`ViewAsked::collect`], and all of
/// it costs one round trip; the extensions' placements come from the connection's cache (asked
/// when it was made, or known from before) and cost none unless the server lists names
/// guievict never asks about.
pub fn send_view<C: Connection>(conn: &C, setup: Setup) -> Result<ViewAsked<'_, C>, SessionError> {
    // The app's own ID range: XC-MISC hands out free IDs *of the requesting client*.
    let range = conn
        .xc_misc_get_xid_range()
        .map_err(cerr("XC-MISC GetXIDRange"))?;
    let first_atoms = atom_batch(conn, guimux::maps::LAST_PREDEFINED_ATOM + 1)?;
    let names = conn.list_extensions().map_err(cerr("ListExtensions"))?;
    let (min, max) = (setup.min_keycode, setup.max_keycode);
    let keymap = conn
        .get_keyboard_mapping(min, max - min + 1)
        .map_err(cerr("GetKeyboardMapping"))?;
    Ok(ViewAsked {
        setup,
        range,
        first_atoms,
        names,
        keymap,
    })
}

impl<'c, C: Connection> ViewAsked<'c, C> {
    /// Wait for the answers of [`send_view`]: the app's view.
    pub fn collect(self, conn: &'c C) -> Result<AppView, SessionError> {
        let ViewAsked {
            mut setup,
            range,
            first_atoms,
            names,
            keymap,
        } = self;
        let min = setup.min_keycode;
        let range = range.reply().map_err(xerr("XC-MISC GetXIDRange"))?;
        setup.resource_id_base = range.start_id & !setup.resource_id_mask;
        let atoms = enumerate_atoms(conn, first_atoms)?;
        let names = names.reply().map_err(xerr("ListExtensions"))?;
        let keymap = keymap.reply().map_err(xerr("GetKeyboardMapping"))?;
        let exts = query_extensions(conn, names)?;
        Ok(AppView {
            setup,
            atoms,
            exts,
            keymap: (min, keymap.keysyms_per_keycode, keymap.keysyms),
        })
    }
}

/// Atoms asked for per batch of GetAtomName (one round trip each).
const ATOM_BATCH: u32 = 2048;

type AtomCookies<'c, C> = Vec<(u32, x11rb::cookie::Cookie<'c, C, xproto::GetAtomNameReply>)>;

/// GetAtomName for `ATOM_BATCH` atoms from `first` on, sent, not waited for.
fn atom_batch<C: Connection>(conn: &C, first: u32) -> Result<AtomCookies<'_, C>, SessionError> {
    (first..first + ATOM_BATCH)
        .map(|a| conn.get_atom_name(a).map(|c| (a, c)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(cerr("GetAtomName"))
}

/// Every atom the server has (beyond the predefined ones), by pipelined GetAtomName until the
/// first BadAtom; `cookies` is the first batch, already sent.
fn enumerate_atoms<'c, C: Connection>(
    conn: &'c C,
    mut cookies: AtomCookies<'c, C>,
) -> Result<Vec<(u32, String)>, SessionError> {
    let mut out = Vec::new();
    loop {
        let next = cookies.last().map_or(0, |(a, _)| a + 1);
        let mut ended = false;
        for (a, c) in cookies {
            match c.reply() {
                Ok(r) if !ended => out.push((a, String::from_utf8_lossy(&r.name).into_owned())),
                Ok(_) => {}
                Err(ReplyError::X11Error(_)) => ended = true,
                Err(e) => return Err(xerr("GetAtomName")(e)),
            }
        }
        if ended || next == 0 {
            return Ok(out);
        }
        cookies = atom_batch(conn, next)?;
    }
}

/// Every extension of the server (`names`, ListExtensions' answer) with its placement.
fn query_extensions(
    conn: &impl Connection,
    names: xproto::ListExtensionsReply,
) -> Result<Vec<(String, ExtPlace)>, SessionError> {
    let names: Vec<String> = names
        .names
        .iter()
        .map(|n| String::from_utf8_lossy(&n.name).into_owned())
        .collect();
    let places = query_places(conn, &names)?;
    Ok(names
        .into_iter()
        .zip(places)
        .filter_map(|(n, p)| p.map(|p| (n, p)))
        .collect())
}

fn query_places(
    conn: &impl Connection,
    names: &[String],
) -> Result<Vec<Option<ExtPlace>>, SessionError> {
    // Names asked when the client was made (`prefetch_extensions`) are answered from its
    // cache; only the others cost a QueryExtension (and with them, a round trip).
    let known = |n: &str| {
        winsession::EXTENSIONS_OF_INTEREST
            .iter()
            .find(|k| **k == n)
            .copied()
    };
    let cookies = names
        .iter()
        .map(|n| match known(n) {
            Some(_) => Ok(None),
            None => conn.query_extension(n.as_bytes()).map(Some),
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(cerr("QueryExtension"))?;
    names
        .iter()
        .zip(cookies)
        .map(|(n, c)| match (known(n), c) {
            (Some(k), _) => Ok(conn
                .extension_information(k)
                .map_err(cerr("QueryExtension"))?
                .map(|i| ExtPlace {
                    major: i.major_opcode,
                    first_event: i.first_event,
                    first_error: i.first_error,
                })),
            (None, Some(c)) => {
                let r = c.reply().map_err(xerr("QueryExtension"))?;
                Ok(r.present.then_some(ExtPlace {
                    major: r.major_opcode,
                    first_event: r.first_event,
                    first_error: r.first_error,
                }))
            }
            (None, None) => Ok(None),
        })
        .collect()
}

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

/// The image layout parameters of a server's setup.
fn image_formats(setup: &Setup) -> ImageFormats {
    ImageFormats {
        bitmap_pad: setup.bitmap_format_scanline_pad,
        formats: setup
            .pixmap_formats
            .iter()
            .map(|f| (f.depth, f.bits_per_pixel, f.scanline_pad))
            .collect(),
    }
}

/// Segments guimux served itself on a server without MIT-SHM (the capture cannot see them
/// there): add them to the session so that the next server that shares memory attaches them.
/// `prev` (app → capture server) gets an ID of the capture server's range for each.
fn add_converted_segments(
    h: &MuxHandle,
    session: &mut winsession::Session,
    prev: Option<&mut Maps>,
) -> Result<(), SessionError> {
    let Some(prev) = prev else {
        return Ok(());
    };
    let segs = h.with_engine(|e| {
        if e.primary_converts_shm() {
            e.segment_memory().map(|m| m.segments()).unwrap_or_default()
        } else {
            Vec::new()
        }
    })?;
    for g in segs {
        if prev
            .xids
            .lookup(g.seg)
            .is_some_and(|id| session.shm_segments.iter().any(|x| x.id == id))
        {
            continue;
        }
        let id = prev.xids.to_server(g.seg);
        session.shm_segments.push(winsession::model::ShmSegment {
            id,
            shmid: g.shmid,
            mapping: g.mapping,
        });
    }
    Ok(())
}

/// Pixmaps the app made with ShmCreatePixmap while its primary converted MIT-SHM: that server
/// holds plain copies (the capture sees ordinary pixmaps), guimux's record says which segment
/// region they stand for, so that a server sharing memory makes them shared again.
fn add_converted_pixmaps(
    h: &MuxHandle,
    session: &mut winsession::Session,
    prev: Option<&Maps>,
) -> Result<(), SessionError> {
    let Some(prev) = prev else {
        return Ok(());
    };
    let pixmaps = h.with_engine(|e| {
        if e.primary_converts_shm() {
            e.converted_shm_pixmaps()
        } else {
            Vec::new()
        }
    })?;
    for (pid, src) in pixmaps {
        let (Some(id), Some(segment)) = (prev.xids.lookup(pid), prev.xids.lookup(src.seg)) else {
            continue;
        };
        if session.pixmaps.iter().any(|p| p.id == id)
            && session.shm_segments.iter().any(|g| g.id == segment)
            && !session.shm_pixmaps.iter().any(|x| x.id == id)
        {
            session.shm_pixmaps.push(winsession::model::ShmPixmap {
                id,
                segment,
                offset: src.offset,
            });
        }
    }
    Ok(())
}

/// Whether the app knows MIT-SHM (its original server offered it).
fn app_knows_shm(d: &Detached) -> bool {
    let name = guimux::shmconv::EXTENSION;
    match &d.prev {
        Some(prev) => prev.exts.by_name(name).is_some_and(|e| e.app.is_some()),
        None => d.view.exts.iter().any(|(n, _)| n == name),
    }
}

/// How the app's MIT-SHM requests reach a new server: `Some` when the app knows MIT-SHM and
/// the server lacks it (guimux converts them), with the app's captured segments registered in
/// guimux's segment table; `None` when they pass as they are.
fn shm_conversion(
    h: &MuxHandle,
    maps: &Maps,
    detached: &Detached,
    setup: &Setup,
    cannot_share: bool,
    warnings: &mut Vec<String>,
    lost: &mut Vec<String>,
) -> Result<Option<ShmTarget>, SessionError> {
    let Some(entry) = maps.exts.by_name(guimux::shmconv::EXTENSION) else {
        return Ok(None);
    };
    let Some(app) = entry.app.filter(|_| entry.server.is_none() || cannot_share) else {
        return Ok(None);
    };
    let view_formats = image_formats(&detached.view.setup);
    let first = detached.prev.is_none();
    let app_formats = h.with_engine(move |e| {
        e.app_image_formats()
            .filter(|_| !first)
            .unwrap_or(view_formats)
    })?;
    // Captured segments, in the app's values.
    let mut n = 0;
    let mut failed = Vec::new();
    for g in &detached.session.shm_segments {
        let app_id = match &detached.prev {
            None => g.id,
            Some(p) => match p.xids.pairs().find(|(_, srv)| *srv == g.id) {
                Some((a, _)) => a,
                None => continue,
            },
        };
        let (shmid, mapping) = (g.shmid, g.mapping);
        let r = h.with_engine(move |e| {
            let Some(m) = e.segment_memory() else {
                return Err("no segment memory".to_string());
            };
            match (shmid, mapping) {
                (Some(id), _) => m.attach_sysv(app_id, id, false),
                (None, Some((start, len))) => {
                    let path = format!("/proc/self/map_files/{start:x}-{:x}", start + len);
                    let f = std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(&path)
                        .or_else(|_| std::fs::File::open(&path))
                        .map_err(|e| format!("{path}: {e}"))?;
                    m.attach_fd(app_id, f.into(), false)
                }
                (None, None) => Err("backing memory unknown".into()),
            }
        })?;
        match r {
            Ok(()) => n += 1,
            Err(e) => failed.push(format!("{app_id:#x} ({e})")),
        }
    }
    let why = if entry.server.is_none() {
        "the new server has no MIT-SHM"
    } else {
        "the new server cannot read this process's shared memory (another host or IPC namespace)"
    };
    warnings.push(format!(
        "{why}: guimux converts the app's shared-memory requests to core requests ({n} segment(s) served from the app's memory)"
    ));
    if !failed.is_empty() {
        let w = format!(
            "MIT-SHM segments guimux cannot read (requests on them fail): {}",
            failed.join(", ")
        );
        warnings.push(w.clone());
        lost.push(w);
    }
    let uid = nix::unistd::getuid().as_raw() as u16;
    let gid = nix::unistd::getgid().as_raw() as u16;
    Ok(Some(ShmTarget {
        app_place: (app.major, app.first_event, app.first_error),
        app: app_formats,
        server: image_formats(setup),
        owner: (uid, gid),
    }))
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

/// Whether `fd` is a unix-domain socket (file descriptors can pass over it: MIT-SHM's
/// AttachFd works); a TCP display cannot take them.
pub fn is_unix_socket(fd: &OwnedFd) -> bool {
    nix::sys::socket::getsockname::<nix::sys::socket::SockaddrStorage>(
        std::os::fd::AsRawFd::as_raw_fd(fd),
    )
    .is_ok_and(|a| a.as_unix_addr().is_some())
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
/// are answered without asking ([`Viewed`]; the caller wraps). Without them, every
/// extension guievict may ask about is asked at once.
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
        )?;
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

/// app → old server (`prev`) followed by old server → new server (`next`): app → new server.
/// Old-server values with no counterpart on the new server (other clients' windows there) are
/// dropped; the app's own range and the new connection's range come from the two ends.
fn compose(prev: &Maps, next: &Maps) -> Maps {
    let mut xids = XidMap::new(
        prev.xids.app_base,
        prev.xids.app_mask,
        next.xids.server_base,
        next.xids.server_mask,
    );
    for (app, old) in prev.xids.pairs() {
        if let Some(new) = next.xids.lookup(old) {
            xids.insert(app, new);
        }
    }
    let mut atoms = AtomMap::new();
    for (app, old) in prev.atoms.pairs() {
        if let Some(new) = next.atoms.to_server(old) {
            atoms.insert(app, new);
        }
    }
    let visuals = prev
        .visuals
        .iter()
        .filter_map(|(app, old)| next.visuals.get(old).map(|new| (*app, *new)))
        .collect();
    let mut exts = ExtMap::default();
    for e in &prev.exts.entries {
        exts.entries.push(ExtEntry {
            name: e.name.clone(),
            table: e.table,
            app: e.app,
            server: next.exts.by_name(&e.name).and_then(|n| n.server),
        });
    }
    let named = next
        .named
        .iter()
        .filter_map(|(name, (_, new))| {
            let app = prev.named.get(name).map(|(a, _)| *a)?;
            Some((name.clone(), (app, *new)))
        })
        .collect();
    Maps {
        xids,
        atoms,
        visuals,
        exts,
        named,
        devices: prev.devices.then(&next.devices),
    }
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

/// What [`Asked`] learnt.
struct Answers {
    /// App atom → server atom, in the order of the view's atoms.
    atoms: Vec<(u32, u32)>,
    /// Extension name → its placement on the new server (`None`: absent).
    places: HashMap<String, Option<ExtPlace>>,
    /// First keycode, keysyms per keycode, keysyms.
    keymap: (u8, u8, Vec<u32>),
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

/// Build the translation maps from the capture server's values to a new server.
fn build_maps(
    view: &AppView,
    setup: &Setup,
    regen: &winsession::Regenerated,
    xi_known: &[winsession::XiDevice],
    answers: &Answers,
) -> Result<(Maps, Vec<String>), SessionError> {
    let mut warnings = Vec::new();
    let mut xids = XidMap::new(
        view.setup.resource_id_base,
        view.setup.resource_id_mask,
        setup.resource_id_base,
        setup.resource_id_mask,
    );
    // Server-owned IDs the app holds from its setup.
    // Visuals: first as regeneration mapped them (the windows and colormaps it recreated have
    // those visuals, and a live request pairing a visual with such a colormap must name the
    // same one), as long as the map stays one-to-one (replies are translated back).
    let mut visuals: HashMap<u32, u32> = HashMap::new();
    let mut by_regen: Vec<(u32, u32)> = regen
        .visual_map
        .iter()
        .filter(|(a, _)| **a != 0)
        .map(|(a, s)| (*a, *s))
        .collect();
    by_regen.sort_unstable();
    for (app, server) in by_regen {
        if !visuals.values().any(|v| *v == server) {
            visuals.insert(app, server);
        }
    }
    for (old, new) in view.setup.roots.iter().zip(&setup.roots) {
        xids.insert(old.root, new.root);
        xids.insert(old.default_colormap, new.default_colormap);
        if !visuals.values().any(|v| *v == new.root_visual) {
            visuals.entry(old.root_visual).or_insert(new.root_visual);
        }
        // Other visuals: by class, depth and masks.
        for od in &old.allowed_depths {
            for ov in &od.visuals {
                if visuals.contains_key(&ov.visual_id) {
                    continue;
                }
                let m = setup
                    .roots
                    .iter()
                    .flat_map(|r| &r.allowed_depths)
                    .find_map(|nd| {
                        (nd.depth == od.depth)
                            .then(|| {
                                nd.visuals.iter().find(|nv| {
                                    nv.class == ov.class
                                        && nv.red_mask == ov.red_mask
                                        && nv.green_mask == ov.green_mask
                                        && nv.blue_mask == ov.blue_mask
                                        && !visuals.values().any(|v| *v == nv.visual_id)
                                })
                            })
                            .flatten()
                    });
                if let Some(nv) = m {
                    visuals.insert(ov.visual_id, nv.visual_id);
                } else if ov.class == VisualClass::TRUE_COLOR && od.depth == old.root_depth {
                    warnings.push(format!("visual {:#x} has no counterpart", ov.visual_id));
                }
            }
        }
    }
    for (old, new) in &regen.xid_map {
        xids.insert(*old, *new);
    }
    // Atoms: every name the app may hold, interned (see `Asked`).
    let mut atoms = AtomMap::new();
    let mut named = HashMap::new();
    for (&(app, server), (_, name)) in answers.atoms.iter().zip(&view.atoms) {
        atoms.insert(app, server);
        if matches!(name.as_str(), "WM_STATE" | "_NET_WM_PING")
            || guimux::translate::CLIENT_MESSAGE_DATA
                .iter()
                .any(|(n, _)| *n == name.as_str())
        {
            named.insert(name.clone(), (app, server));
        }
    }
    for (old, new) in &regen.atom_map {
        atoms.insert(*old, *new);
    }
    // Extensions.
    let mut exts = ExtMap::default();
    for (name, app) in &view.exts {
        let server = answers.places.get(name).copied().flatten();
        // GUIEVICT is guievict's own (its internal clients ask it, the app never does);
        // MIT-SHM is converted by guimux (see `shm_conversion`).
        if server.is_none()
            && name != guimux::shmconv::EXTENSION
            && name != guievict_ext_proto::EXTENSION_NAME
        {
            warnings.push(format!(
                "extension {name} is missing on the new server: requests for it will fail with BadImplementation"
            ));
        }
        exts.entries.push(ExtEntry {
            name: name.clone(),
            table: guimux::tables::ext_by_xname(name),
            app: Some(*app),
            server,
        });
    }
    Ok((
        Maps {
            xids,
            atoms,
            visuals,
            exts,
            named,
            // XInput device IDs as regeneration matched them (by use and name); the capture
            // server's devices without a counterpart keep their IDs out of use.
            devices: DeviceMap::between(
                regen
                    .xi_device_map
                    .iter()
                    .map(|(o, n)| (u32::from(*o), u32::from(*n))),
                xi_known.iter().map(|d| u32::from(d.id)),
            ),
        },
        warnings,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Maps with the given ID and atom pairs (app → server) and ranges.
    fn maps(
        app: (u32, u32),
        server: (u32, u32),
        xids: &[(u32, u32)],
        atoms: &[(u32, u32)],
        visuals: &[(u32, u32)],
    ) -> Maps {
        let mut x = XidMap::new(app.0, app.1, server.0, server.1);
        for &(a, s) in xids {
            x.insert(a, s);
        }
        let mut at = AtomMap::new();
        for &(a, s) in atoms {
            at.insert(a, s);
        }
        Maps {
            xids: x,
            atoms: at,
            visuals: visuals.iter().copied().collect(),
            exts: ExtMap::default(),
            named: HashMap::new(),
            devices: Default::default(),
        }
    }

    /// Distinct values (a bijection's halves).
    fn distinct(n: usize, base: u32) -> impl Strategy<Value = Vec<u32>> {
        proptest::collection::hash_set(base..base + 0x1_0000, n)
            .prop_map(|s| s.into_iter().collect::<Vec<_>>())
    }

    proptest! {
        /// A→B then B→C composed is A→C: every app value whose B value has a C counterpart maps
        /// to exactly that, the others are dropped, and the ranges come from the two ends.
        #[test]
        fn composition_of_two_moves_is_the_move_from_first_to_last(
            a in distinct(24, 0x0020_0000),
            b in distinct(24, 0x0040_0000),
            c in distinct(24, 0x0060_0000),
            atoms_a in distinct(16, 100),
            atoms_b in distinct(16, 300),
            atoms_c in distinct(16, 500),
            keep in proptest::collection::vec(any::<bool>(), 24),
        ) {
            let prev_x: Vec<(u32, u32)> = a.iter().copied().zip(b.iter().copied()).collect();
            // B → C knows only some of B's values (others' windows there, freed resources).
            let next_x: Vec<(u32, u32)> = b
                .iter()
                .copied()
                .zip(c.iter().copied())
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(p, _)| p)
                .collect();
            let prev_a: Vec<(u32, u32)> =
                atoms_a.iter().copied().zip(atoms_b.iter().copied()).collect();
            let next_a: Vec<(u32, u32)> = atoms_b
                .iter()
                .copied()
                .zip(atoms_c.iter().copied())
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(p, _)| p)
                .collect();
            let prev = maps(
                (0x0020_0000, 0x1f_ffff),
                (0x0040_0000, 0x1f_ffff),
                &prev_x,
                &prev_a,
                &[(0x21, 0x41), (0x22, 0x42)],
            );
            let next = maps(
                (0x0040_0000, 0x1f_ffff),
                (0x0060_0000, 0x1f_ffff),
                &next_x,
                &next_a,
                &[(0x41, 0x61)],
            );
            let m = compose(&prev, &next);
            prop_assert_eq!(m.xids.app_base, 0x0020_0000);
            prop_assert_eq!(m.xids.server_base, 0x0060_0000);
            for (i, &(app, old)) in prev_x.iter().enumerate() {
                let want = next_x.iter().find(|(b, _)| *b == old).map(|(_, c)| *c);
                prop_assert_eq!(m.xids.lookup(app), want, "xid #{}", i);
            }
            prop_assert_eq!(m.xids.len(), next_x.len());
            for &(app, old) in &prev_a {
                let want = next_a.iter().find(|(b, _)| *b == old).map(|(_, c)| *c);
                prop_assert_eq!(m.atoms.to_server(app), want);
            }
            prop_assert_eq!(m.visuals.get(&0x21), Some(&0x61));
            prop_assert_eq!(m.visuals.get(&0x22), None);
            // Composing once more with the identity of C changes nothing.
            let ident: Vec<(u32, u32)> = c.iter().map(|&v| (v, v)).collect();
            let ident_a: Vec<(u32, u32)> = atoms_c.iter().map(|&v| (v, v)).collect();
            let id = maps(
                (0x0060_0000, 0x1f_ffff),
                (0x0060_0000, 0x1f_ffff),
                &ident,
                &ident_a,
                &[(0x61, 0x61)],
            );
            let again = compose(&m, &id);
            let mut p1: Vec<(u32, u32)> = m.xids.pairs().collect();
            let mut p2: Vec<(u32, u32)> = again.xids.pairs().collect();
            p1.sort_unstable();
            p2.sort_unstable();
            prop_assert_eq!(p1, p2);
        }
    }
}
