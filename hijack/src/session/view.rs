//! The app's view of its server and the internal clients it is learnt through. In: an internal
//! client's socket (on the app's own server connection) and that server's setup. Out: the
//! [`AppView`] — the app's ID range (XC-MISC), every atom by GetAtomName, every extension with
//! its placement, the keymap — asked in one pipelined round, and the [`Detached`] record a
//! capture makes of it. Also the per-stage [`Timings`] every operation reports.

use super::error::{cerr, xerr, SessionError};
use crate::traffic::{Counted, Internal};
use crate::viewconn::KnownExtensions;
use guimux::maps::ExtPlace;
use guimux::Maps;
use std::os::unix::net::UnixStream;
use std::time::Instant;
use x11rb::connection::Connection;
use x11rb::errors::{ConnectError, ReplyError};
use x11rb::protocol::xc_misc::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _, Setup};
use x11rb::rust_connection::{DefaultStream, RustConnection};

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
    pub(super) fn lap(&mut self, name: &str, t: &mut Instant) {
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
pub(super) fn bare_client_over(sock: UnixStream, setup: Setup) -> Result<Internal, SessionError> {
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
pub(super) fn known_extensions(conn: &impl Connection) -> KnownExtensions {
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

pub(super) fn query_places(
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
