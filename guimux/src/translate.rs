//! Rewriting messages between the app's view and one server. A framed request (app view) flows
//! in and comes out in the server's values; replies, events and errors flow the other way.
//! The generated walkers find the fields; this module supplies the maps and the hand-written
//! cases the XML cannot express (typed property data, ClientMessage data, SendEvent's embedded
//! event, QueryExtension replies, extension opcodes). See docs/generated-tables.md.

use crate::fields::{ByteOrder, Kind, Rewriter, WalkError};
use crate::maps::{AtomMap, DeviceMap, ExtMap, XidMap};
use crate::tables;
use std::collections::HashMap;

/// Everything needed to translate between the app and one server.
#[derive(Clone, Debug)]
pub struct Maps {
    /// Resource IDs.
    pub xids: XidMap,
    /// Atoms.
    pub atoms: AtomMap,
    /// Visual IDs app → server (bijective by construction).
    pub visuals: HashMap<u32, u32>,
    /// Extension placement.
    pub exts: ExtMap,
    /// Atoms the hand-written cases need, by name: (app-view, server).
    pub named: HashMap<String, (u32, u32)>,
    /// XInput device IDs (identity when empty).
    pub devices: DeviceMap,
}

/// Core opcodes and codes used by the hand-written cases.
mod core {
    pub const CHANGE_PROPERTY: u8 = 18;
    pub const GET_PROPERTY: u8 = 20;
    pub const SEND_EVENT: u8 = 25;
    pub const QUERY_EXTENSION: u8 = 98;
    pub const CLIENT_MESSAGE: u8 = 33;
    pub const GENERIC_EVENT: u8 = 35;
    pub const KEYMAP_NOTIFY: u8 = 11;
}

/// Predefined atoms naming property types whose data holds server values.
mod xa {
    pub const ATOM: u32 = 4;
    pub const BITMAP: u32 = 5;
    pub const COLORMAP: u32 = 7;
    pub const CURSOR: u32 = 8;
    pub const DRAWABLE: u32 = 17;
    pub const FONT: u32 = 18;
    pub const PIXMAP: u32 = 20;
    pub const VISUALID: u32 = 32;
    pub const WINDOW: u32 = 33;
    pub const WM_HINTS: u32 = 35;
}

/// Direction of a translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// App view → server.
    ToServer,
    /// Server → app view.
    ToApp,
}

/// Why a message could not be translated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The request belongs to an extension this server does not have.
    #[error("request for extension {name} (app major opcode {major}), which the server lacks")]
    MissingExtension {
        /// Extension name.
        name: String,
        /// App-view major opcode.
        major: u8,
    },
    /// A major opcode the app never learned from QueryExtension.
    #[error("request with unknown major opcode {0}")]
    UnknownMajor(u8),
    /// The tables cannot walk this message.
    #[error(transparent)]
    Walk(#[from] WalkError),
}

/// The Rewriter that applies a [`Maps`] in one direction.
pub struct MapRewriter<'a> {
    /// Maps.
    pub maps: &'a mut Maps,
    /// Direction.
    pub dir: Dir,
    /// Atoms the app used that this server has no counterpart for (app → server only).
    pub unknown_atoms: u32,
}

impl Rewriter for MapRewriter<'_> {
    fn rewrite(&mut self, kind: Kind, value: u32) -> u32 {
        match (kind, self.dir) {
            (Kind::Xid(_), Dir::ToServer) => self.maps.xids.to_server(value),
            (Kind::Xid(_), Dir::ToApp) => self.maps.xids.to_app(value),
            (Kind::Atom, Dir::ToServer) => match self.maps.atoms.to_server(value) {
                Some(a) => a,
                None => {
                    self.unknown_atoms += 1;
                    value
                }
            },
            (Kind::Atom, Dir::ToApp) => self.maps.atoms.to_app(value),
            (Kind::Visual, Dir::ToServer) => {
                self.maps.visuals.get(&value).copied().unwrap_or(value)
            }
            (Kind::Visual, Dir::ToApp) => self
                .maps
                .visuals
                .iter()
                .find(|(_, s)| **s == value)
                .map(|(a, _)| *a)
                .unwrap_or(value),
            (Kind::Keycode | Kind::Timestamp, _) => value,
            (Kind::Device, Dir::ToServer) => self.maps.devices.to_server(value),
            (Kind::Device, Dir::ToApp) => self.maps.devices.to_app(value),
            (Kind::DeviceMore, dir) => {
                // Bit 7: more events follow; the low 7 bits name the device.
                let id = value & 0x7f;
                let mapped = match dir {
                    Dir::ToServer => self.maps.devices.to_server(id),
                    Dir::ToApp => self.maps.devices.to_app(id),
                };
                (value & !0x7f) | (mapped & 0x7f)
            }
        }
    }
}

/// What the engine must remember about a request to translate its reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyAux {
    /// Nothing special.
    None,
    /// QueryExtension of this name.
    QueryExtension(String),
}

/// A request that went through translation.
#[derive(Debug)]
pub struct Translated {
    /// Table index of its extension (0 = core).
    pub table: usize,
    /// Opcode within it.
    pub opcode: u8,
    /// What to remember for the reply.
    pub aux: ReplyAux,
    /// When the fields could not be walked: why (the opcode was still rewritten).
    pub walk_error: Option<WalkError>,
}

/// Translate one complete request (app view → server) in place. Returns what the reply walker
/// needs. `Err` only when the request cannot go to this server at all.
pub fn request_to_server(
    msg: &mut [u8],
    order: ByteOrder,
    maps: &mut Maps,
) -> Result<Translated, TranslateError> {
    let (table, opcode, aux, walked) = request_to_server_inner(msg, order, maps)?;
    Ok(Translated {
        table,
        opcode,
        aux,
        walk_error: walked.err(),
    })
}

type Inner = (usize, u8, ReplyAux, Result<(), WalkError>);

fn request_to_server_inner(
    msg: &mut [u8],
    order: ByteOrder,
    maps: &mut Maps,
) -> Result<Inner, TranslateError> {
    let major = msg[0];
    if major < 128 {
        let aux = match major {
            core::QUERY_EXTENSION if msg.len() >= 8 => {
                let n = order.u16(msg, 4) as usize;
                let name = msg
                    .get(8..8 + n)
                    .map(|b| String::from_utf8_lossy(b).into_owned());
                ReplyAux::QueryExtension(name.unwrap_or_default())
            }
            _ => ReplyAux::None,
        };
        let mut rw = MapRewriter {
            maps,
            dir: Dir::ToServer,
            unknown_atoms: 0,
        };
        let walked = tables::walk_request(0, major, msg, order, &mut rw);
        match major {
            core::CHANGE_PROPERTY => change_property_data(msg, order, maps, Dir::ToServer),
            core::SEND_EVENT if msg.len() >= 44 => {
                if let Err(TranslateError::Walk(e)) =
                    event_in_place(&mut msg[12..44], order, maps, Dir::ToServer)
                {
                    return Ok((0, major, aux, Err(e)));
                }
            }
            _ => {}
        }
        return Ok((0, major, aux, walked));
    }
    let entry = maps
        .exts
        .by_app_major(major)
        .ok_or(TranslateError::UnknownMajor(major))?;
    let server = entry
        .server
        .ok_or_else(|| TranslateError::MissingExtension {
            name: entry.name.clone(),
            major,
        })?;
    let table = entry
        .table
        .ok_or_else(|| TranslateError::MissingExtension {
            name: format!("{} (not described by xcb-proto)", entry.name),
            major,
        })?;
    let minor = msg[1];
    // The opcode is rewritten first: even when the fields cannot be walked, the request must
    // reach the right extension.
    msg[0] = server.major;
    let mut rw = MapRewriter {
        maps,
        dir: Dir::ToServer,
        unknown_atoms: 0,
    };
    let walked = tables::walk_request(table, minor, msg, order, &mut rw);
    Ok((table, minor, ReplyAux::None, walked))
}

/// Translate a reply (server → app view) in place, given what its request was.
pub fn reply_to_app(
    msg: &mut [u8],
    order: ByteOrder,
    maps: &mut Maps,
    table: usize,
    opcode: u8,
    aux: &ReplyAux,
) -> Result<(), TranslateError> {
    let mut rw = MapRewriter {
        maps,
        dir: Dir::ToApp,
        unknown_atoms: 0,
    };
    tables::walk_reply(table, opcode, msg, order, &mut rw)?;
    if table == 0 {
        match (opcode, aux) {
            (core::GET_PROPERTY, _) => get_property_reply_data(msg, order, maps),
            (core::QUERY_EXTENSION, ReplyAux::QueryExtension(name)) => {
                query_extension_reply(msg, maps, name)
            }
            _ => {}
        }
    }
    Ok(())
}

/// Translate an event (32 bytes, or a GenericEvent) server → app view, in place. Returns false
/// when the event belongs to an extension the app does not know (the caller drops it).
pub fn event_to_app(
    msg: &mut [u8],
    order: ByteOrder,
    maps: &mut Maps,
) -> Result<bool, TranslateError> {
    event_in_place(msg, order, maps, Dir::ToApp)
}

fn event_in_place(
    msg: &mut [u8],
    order: ByteOrder,
    maps: &mut Maps,
    dir: Dir,
) -> Result<bool, TranslateError> {
    let sent_bit = msg[0] & 0x80;
    let code = msg[0] & 0x7f;
    let mut rw = MapRewriter {
        maps,
        dir,
        unknown_atoms: 0,
    };
    if code == core::GENERIC_EVENT {
        let major = msg[1];
        let entry = match dir {
            Dir::ToApp => rw.maps.exts.by_server_major(major),
            Dir::ToServer => rw.maps.exts.by_app_major(major),
        };
        let Some(entry) = entry.cloned() else {
            return Ok(false);
        };
        let (Some(table), Some(app), Some(server)) = (entry.table, entry.app, entry.server) else {
            return Ok(false);
        };
        let evtype = order.u16(msg, 8);
        msg[1] = match dir {
            Dir::ToApp => app.major,
            Dir::ToServer => server.major,
        };
        tables::walk_generic_event(table, evtype, msg, order, &mut rw)?;
        return Ok(true);
    }
    if code < 64 {
        if code != core::KEYMAP_NOTIFY {
            tables::walk_event(0, code, msg, order, &mut rw)?;
        }
        if code == core::CLIENT_MESSAGE {
            client_message_data(msg, order, rw.maps, dir);
        }
        return Ok(true);
    }
    let exts = &rw.maps.exts;
    let found = match dir {
        Dir::ToApp => exts.by_server_event(code, |e| num_events(e.table)),
        Dir::ToServer => exts.entries.iter().find_map(|e| {
            let p = e.app?;
            let n = num_events(e.table);
            (p.first_event != 0 && code >= p.first_event && code < p.first_event.saturating_add(n))
                .then(|| (e, code - p.first_event))
        }),
    };
    let Some((entry, rel)) = found.map(|(e, r)| (e.clone(), r)) else {
        return Ok(false);
    };
    let (Some(table), Some(app), Some(server)) = (entry.table, entry.app, entry.server) else {
        return Ok(false);
    };
    let base = match dir {
        Dir::ToApp => app.first_event,
        Dir::ToServer => server.first_event,
    };
    msg[0] = sent_bit | (base + rel);
    tables::walk_event(table, rel, msg, order, &mut rw)?;
    Ok(true)
}

fn num_events(table: Option<usize>) -> u8 {
    table
        .and_then(|t| tables::EXTENSIONS.get(t))
        .map(|e| e.num_events)
        .unwrap_or(0)
}

fn num_errors(table: Option<usize>) -> u8 {
    table
        .and_then(|t| tables::EXTENSIONS.get(t))
        .map(|e| e.num_errors)
        .unwrap_or(0)
}

/// Translate an error (server → app view) in place: extension error codes, the bad value,
/// the major opcode.
pub fn error_to_app(msg: &mut [u8], order: ByteOrder, maps: &mut Maps) {
    let code = msg[1];
    let (table, rel) = if code < 128 {
        (Some(0), code)
    } else if let Some((e, rel)) = maps.exts.by_server_error(code, |e| num_errors(e.table)) {
        let (t, app) = (e.table, e.app);
        if let Some(app) = app {
            msg[1] = app.first_error + rel;
        }
        (t, rel)
    } else {
        (None, code)
    };
    if let Some(kind) = table.and_then(|t| tables::error_value_kind(t, rel)) {
        let v = order.u32(msg, 4);
        let mut rw = MapRewriter {
            maps,
            dir: Dir::ToApp,
            unknown_atoms: 0,
        };
        let nv = rw.rewrite(kind, v);
        order.put_u32(msg, 4, nv);
    }
    let major = msg[10];
    if major >= 128 {
        if let Some(app) = maps.exts.by_server_major(major).and_then(|e| e.app) {
            msg[10] = app.major;
        }
    }
}

/// Kind of each 32-bit item of property data of type `ty` (app-view or server atom, predefined
/// atoms are the same on both), or None when the data carries no server values.
fn property_item_kind(ty: u32, index: usize) -> Option<Kind> {
    match ty {
        xa::ATOM => Some(Kind::Atom),
        xa::BITMAP | xa::PIXMAP => Some(Kind::Xid("PIXMAP")),
        xa::COLORMAP => Some(Kind::Xid("COLORMAP")),
        xa::CURSOR => Some(Kind::Xid("CURSOR")),
        xa::DRAWABLE => Some(Kind::Xid("DRAWABLE")),
        xa::FONT => Some(Kind::Xid("FONT")),
        xa::WINDOW => Some(Kind::Xid("WINDOW")),
        xa::VISUALID => Some(Kind::Visual),
        // WM_HINTS: flags, input, initial_state, icon_pixmap, icon_window, icon_x, icon_y,
        // icon_mask, window_group.
        xa::WM_HINTS => match index {
            3 | 7 => Some(Kind::Xid("PIXMAP")),
            4 | 8 => Some(Kind::Xid("WINDOW")),
            _ => None,
        },
        _ => None,
    }
}

fn rewrite_items(data: &mut [u8], order: ByteOrder, ty: u32, maps: &mut Maps, dir: Dir) {
    if property_item_kind(ty, 0).is_none() && ty != xa::WM_HINTS {
        return;
    }
    let mut rw = MapRewriter {
        maps,
        dir,
        unknown_atoms: 0,
    };
    for (i, chunk) in data.chunks_exact_mut(4).enumerate() {
        if let Some(kind) = property_item_kind(ty, i) {
            let v = order.u32(chunk, 0);
            let nv = rw.rewrite(kind, v);
            order.put_u32(chunk, 0, nv);
        }
    }
}

/// ChangeProperty: data of format 32 whose type names server values.
fn change_property_data(msg: &mut [u8], order: ByteOrder, maps: &mut Maps, dir: Dir) {
    // mode(1) len(2) window(4) property(4) type(4) format(1) pad(3) data_len(4) data…
    let (off, min) = if order.u16(msg, 2) == 0 {
        (4, 28)
    } else {
        (0, 24)
    };
    if msg.len() < min || msg[16 + off] != 32 {
        return;
    }
    let ty_server_or_app = order.u32(msg, 12 + off);
    // The walker already turned the type into the server's atom; predefined types are equal.
    let n = order.u32(msg, 20 + off) as usize;
    let end = (24 + off + n * 4).min(msg.len());
    rewrite_items(&mut msg[24 + off..end], order, ty_server_or_app, maps, dir);
}

/// GetProperty reply: format 32 data whose type names server values.
fn get_property_reply_data(msg: &mut [u8], order: ByteOrder, maps: &mut Maps) {
    if msg.len() < 32 || msg[1] != 32 {
        return;
    }
    let ty = order.u32(msg, 8);
    let n = order.u32(msg, 16) as usize;
    let end = (32 + n * 4).min(msg.len());
    rewrite_items(&mut msg[32..end], order, ty, maps, Dir::ToApp);
}

/// What the 32-bit data words of a well-known ClientMessage hold (word index, kind), by the
/// message's type: the atoms and windows in them are translated like any field (a zero word
/// is "none" and stays). Others are opaque.
pub const CLIENT_MESSAGE_DATA: &[(&str, &[(usize, DataWord)])] = &[
    // ICCCM: the protocol (WM_DELETE_WINDOW, WM_TAKE_FOCUS, _NET_WM_PING …) in data[0];
    // _NET_WM_PING's window in data[2].
    (
        "WM_PROTOCOLS",
        &[(0, DataWord::Atom), (2, DataWord::Window)],
    ),
    // EWMH: action, first property, second property, source.
    ("_NET_WM_STATE", &[(1, DataWord::Atom), (2, DataWord::Atom)]),
    // ICCCM selection manager announcement: timestamp, selection, owner.
    ("MANAGER", &[(1, DataWord::Atom), (2, DataWord::Window)]),
    // XDND: the source or target window in data[0], types and actions as atoms.
    (
        "XdndEnter",
        &[
            (0, DataWord::Window),
            (2, DataWord::Atom),
            (3, DataWord::Atom),
            (4, DataWord::Atom),
        ],
    ),
    (
        "XdndPosition",
        &[(0, DataWord::Window), (4, DataWord::Atom)],
    ),
    ("XdndStatus", &[(0, DataWord::Window), (4, DataWord::Atom)]),
    ("XdndLeave", &[(0, DataWord::Window)]),
    ("XdndDrop", &[(0, DataWord::Window)]),
    (
        "XdndFinished",
        &[(0, DataWord::Window), (2, DataWord::Atom)],
    ),
];

/// A data word of a ClientMessage (see [`CLIENT_MESSAGE_DATA`]).
#[derive(Clone, Copy, Debug)]
pub enum DataWord {
    /// An atom.
    Atom,
    /// A window.
    Window,
}

/// ClientMessage data: the atoms and windows of the well-known messages
/// ([`CLIENT_MESSAGE_DATA`]) in the destination's numbering.
fn client_message_data(msg: &mut [u8], order: ByteOrder, maps: &mut Maps, dir: Dir) {
    if msg[1] != 32 {
        return;
    }
    // The event's own fields (its type among them) were translated already: the type is in
    // the destination's numbering.
    let ty = order.u32(msg, 8);
    let words = CLIENT_MESSAGE_DATA.iter().find_map(|(name, words)| {
        maps.named
            .get(*name)
            .is_some_and(|(a, s)| match dir {
                Dir::ToApp => *a == ty,
                Dir::ToServer => *s == ty,
            })
            .then_some(*words)
    });
    let Some(words) = words else {
        return;
    };
    let mut rw = MapRewriter {
        maps,
        dir,
        unknown_atoms: 0,
    };
    for &(i, kind) in words {
        let off = 12 + 4 * i;
        let v = order.u32(msg, off);
        if v == 0 {
            continue;
        }
        let nv = match kind {
            DataWord::Atom => rw.rewrite(Kind::Atom, v),
            DataWord::Window => rw.rewrite(Kind::Xid("WINDOW"), v),
        };
        order.put_u32(msg, off, nv);
    }
}

/// QueryExtension reply: present, major opcode, first event, first error as the app knows them.
fn query_extension_reply(msg: &mut [u8], maps: &mut Maps, name: &str) {
    if msg.len() < 12 {
        return;
    }
    match maps.exts.by_name(name).and_then(|e| e.app) {
        Some(app) if msg[8] != 0 => {
            msg[9] = app.major;
            msg[10] = app.first_event;
            msg[11] = app.first_error;
        }
        Some(_) => {}
        None => {
            // The app never asked before: it learns this server's placement, which becomes
            // its view (identity) for this extension.
            if msg[8] != 0 {
                let place = crate::maps::ExtPlace {
                    major: msg[9],
                    first_event: msg[10],
                    first_error: msg[11],
                };
                let clash = maps.exts.by_app_major(place.major).is_some();
                if !clash {
                    maps.exts.entries.push(crate::maps::ExtEntry {
                        name: name.to_string(),
                        table: tables::ext_by_xname(name),
                        app: Some(place),
                        server: Some(place),
                    });
                } else {
                    // Its major opcode already means another extension to the app: hide it.
                    msg[8] = 0;
                    msg[9] = 0;
                    msg[10] = 0;
                    msg[11] = 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::{ExtEntry, ExtPlace};
    use x11rb_protocol::protocol::xinput;
    use x11rb_protocol::x11_utils::Serialize;

    const LE: ByteOrder = ByteOrder::Little;
    const APP_MAJOR: u8 = 131;
    const SERVER_MAJOR: u8 = 140;
    const APP_ROOT: u32 = 0x3ea;
    const SERVER_ROOT: u32 = 0x4ff;
    /// The app's window 0x0020_0001 is 0x0040_0001 on the server.
    const APP_WIN: u32 = 0x0020_0001;
    const SERVER_WIN: u32 = 0x0040_0001;

    /// Maps to a server where XInputExtension sits elsewhere and the app's "Second pointer" 8
    /// and its XTEST slave 10 are 12 and 14 (the server's 8 and 10 are other devices).
    fn maps(devices: DeviceMap) -> Maps {
        let mut xids = XidMap::new(0x20_0000, 0x1f_ffff, 0x40_0000, 0x1f_ffff);
        xids.insert(APP_ROOT, SERVER_ROOT);
        xids.insert(APP_WIN, SERVER_WIN);
        let mut exts = ExtMap::default();
        exts.entries.push(ExtEntry {
            name: "XInputExtension".into(),
            table: tables::ext_by_xname("XInputExtension"),
            app: Some(ExtPlace {
                major: APP_MAJOR,
                first_event: 66,
                first_error: 129,
            }),
            server: Some(ExtPlace {
                major: SERVER_MAJOR,
                first_event: 70,
                first_error: 140,
            }),
        });
        exts.entries.push(ExtEntry {
            name: "XKEYBOARD".into(),
            table: tables::ext_by_xname("XKEYBOARD"),
            app: Some(ExtPlace {
                major: 135,
                first_event: 85,
                first_error: 137,
            }),
            server: Some(ExtPlace {
                major: 136,
                first_event: 95,
                first_error: 138,
            }),
        });
        Maps {
            xids,
            atoms: AtomMap::new(),
            visuals: HashMap::new(),
            exts,
            named: HashMap::new(),
            devices,
        }
    }

    /// WM_PROTOCOLS is 300 to the app and 400 on the server, WM_DELETE_WINDOW 301/401 and
    /// WM_TAKE_FOCUS 302/402 (the numbering differs when other clients interned atoms in
    /// another order on each server).
    fn protocol_atoms(m: &mut Maps) {
        for (name, a, s) in [
            ("WM_PROTOCOLS", 300, 400),
            ("WM_DELETE_WINDOW", 301, 401),
            ("WM_TAKE_FOCUS", 302, 402),
            ("_NET_WM_STATE", 303, 403),
            ("_NET_WM_STATE_FULLSCREEN", 304, 404),
            ("_NET_WM_STATE_ABOVE", 305, 405),
        ] {
            m.atoms.insert(a, s);
            m.named.insert(name.into(), (a, s));
        }
    }

    /// A format-32 ClientMessage to `window` of type `ty` with data[0] `d0`.
    fn client_message(window: u32, ty: u32, d0: u32) -> Vec<u8> {
        let mut ev = vec![33u8, 32, 0, 0];
        ev.extend_from_slice(&window.to_le_bytes());
        ev.extend_from_slice(&ty.to_le_bytes());
        ev.extend_from_slice(&d0.to_le_bytes());
        ev.extend_from_slice(&0x1234u32.to_le_bytes());
        ev.resize(32, 0);
        ev
    }

    /// twm on the target sends WM_TAKE_FOCUS; the app must read WM_TAKE_FOCUS in its own
    /// numbering, not the server's number, which may be its WM_DELETE_WINDOW (found with
    /// gtk3-widget-factory, which closed its window and exited after a move).
    #[test]
    fn wm_protocols_data_atom_is_translated_both_ways() {
        let mut m = maps(DeviceMap::default());
        protocol_atoms(&mut m);
        let mut ev = client_message(SERVER_WIN, 400, 402);
        assert!(event_to_app(&mut ev, LE, &mut m).expect("translate"));
        assert_eq!(ev, client_message(APP_WIN, 300, 302));
        // The app's SendEvent of WM_DELETE_WINDOW (e.g. to a window of another client).
        let mut req = vec![25u8, 0, 11, 0];
        req.extend_from_slice(&APP_WIN.to_le_bytes());
        req.extend_from_slice(&0u32.to_le_bytes());
        req.extend_from_slice(&client_message(APP_WIN, 300, 301));
        request_to_server(&mut req, LE, &mut m).expect("translate");
        assert_eq!(&req[12..], &client_message(SERVER_WIN, 400, 401)[..]);
    }

    /// An app asking its window manager for fullscreen (EWMH `_NET_WM_STATE` to the root):
    /// both properties in the server's numbering, the action and source untouched.
    #[test]
    fn net_wm_state_request_atoms_are_translated() {
        let mut m = maps(DeviceMap::default());
        protocol_atoms(&mut m);
        let state = |win: u32, ty: u32, p1: u32, p2: u32| {
            let mut ev = client_message(win, ty, 1);
            ev[16..20].copy_from_slice(&p1.to_le_bytes());
            ev[20..24].copy_from_slice(&p2.to_le_bytes());
            ev[24..28].copy_from_slice(&1u32.to_le_bytes());
            ev
        };
        let mut req = vec![25u8, 0, 11, 0];
        req.extend_from_slice(&APP_ROOT.to_le_bytes());
        req.extend_from_slice(&0x18_0000u32.to_le_bytes());
        req.extend_from_slice(&state(APP_WIN, 303, 304, 305));
        request_to_server(&mut req, LE, &mut m).expect("translate");
        assert_eq!(&req[12..], &state(SERVER_WIN, 403, 404, 405)[..]);
        // "none" as the second property stays 0.
        let mut req = vec![25u8, 0, 11, 0];
        req.extend_from_slice(&APP_ROOT.to_le_bytes());
        req.extend_from_slice(&0x18_0000u32.to_le_bytes());
        req.extend_from_slice(&state(APP_WIN, 303, 304, 0));
        request_to_server(&mut req, LE, &mut m).expect("translate");
        assert_eq!(&req[12..], &state(SERVER_WIN, 403, 404, 0)[..]);
    }

    #[test]
    fn xkb_device_specs_are_device_ids_but_use_core_kbd_is_not() {
        let mut m = maps(moved_devices());
        // XkbGetState(deviceSpec).
        let get_state = |major: u8, spec: u16| {
            let s = spec.to_le_bytes();
            vec![major, 4, 2, 0, s[0], s[1], 0, 0]
        };
        let mut req = get_state(135, 8);
        request_to_server(&mut req, LE, &mut m).expect("translate");
        assert_eq!(req, get_state(136, 12));
        let mut req = get_state(135, 0x100);
        request_to_server(&mut req, LE, &mut m).expect("translate");
        assert_eq!(req, get_state(136, 0x100), "XkbUseCoreKbd passes");
        // An XKB StateNotify of the server's device 12 (deviceID, byte 8).
        let mut ev = [0u8; 32];
        ev[0] = 95;
        ev[1] = 2;
        ev[8] = 12;
        assert!(event_to_app(&mut ev, LE, &mut m).expect("translate"));
        assert_eq!((ev[0], ev[8]), (85, 8));
    }

    #[test]
    fn dbe_back_buffer_names_are_resource_ids() {
        // The app's back buffer 0x0020_0002 of window APP_WIN was regenerated as 0x0040_0002.
        let mut m = maps(DeviceMap::default());
        m.xids.insert(0x0020_0002, 0x0040_0002);
        m.exts.entries.push(ExtEntry {
            name: "DOUBLE-BUFFER".into(),
            table: tables::ext_by_xname("DOUBLE-BUFFER"),
            app: Some(ExtPlace {
                major: 150,
                first_event: 0,
                first_error: 160,
            }),
            server: Some(ExtPlace {
                major: 151,
                first_event: 0,
                first_error: 161,
            }),
        });
        let words = |major: u8, minor: u8, w: &[u32]| {
            let mut v = vec![major, minor];
            v.extend_from_slice(&(1 + w.len() as u16).to_le_bytes());
            for x in w {
                v.extend_from_slice(&x.to_le_bytes());
            }
            v
        };
        // AllocateBackBufferName(window, buffer, swap action).
        let mut req = words(150, 1, &[APP_WIN, 0x0020_0002, 1]);
        request_to_server(&mut req, LE, &mut m).expect("translate");
        assert_eq!(req, words(151, 1, &[SERVER_WIN, 0x0040_0002, 1]));
        // SwapBuffers([{window, action}]).
        let mut req = words(150, 3, &[1, APP_WIN, 1]);
        request_to_server(&mut req, LE, &mut m).expect("translate");
        assert_eq!(req, words(151, 3, &[1, SERVER_WIN, 1]));
        // Drawing into the back buffer: PolyFillRectangle(drawable, gc, …) names it as any
        // drawable.
        let mut req = words(70, 0, &[0x0020_0002, 0x0020_0003]);
        request_to_server(&mut req, LE, &mut m).expect("translate");
        assert_eq!(&req[4..8], &0x0040_0002u32.to_le_bytes());
    }

    fn moved_devices() -> DeviceMap {
        DeviceMap::between(
            [(0, 0), (1, 1), (2, 2), (3, 3), (8, 12), (10, 14)],
            [2, 3, 8, 10],
        )
    }

    fn query_pointer(major: u8, window: u32, deviceid: u16) -> Vec<u8> {
        let (parts, _) = xinput::XIQueryPointerRequest { window, deviceid }.serialize(major);
        parts.iter().flat_map(|c| c.iter().copied()).collect()
    }

    #[test]
    fn xi_query_pointer_gets_the_servers_device_id() {
        let mut m = maps(moved_devices());
        let mut req = query_pointer(APP_MAJOR, APP_WIN, 8);
        let t = request_to_server(&mut req, LE, &mut m).expect("translate");
        assert_eq!(t.walk_error, None);
        assert_eq!(req, query_pointer(SERVER_MAJOR, SERVER_WIN, 12));
        // AllMasterDevices and the core pointer are the same everywhere.
        for d in [1, 2] {
            let mut req = query_pointer(APP_MAJOR, APP_WIN, d);
            request_to_server(&mut req, LE, &mut m).expect("translate");
            assert_eq!(req, query_pointer(SERVER_MAJOR, SERVER_WIN, d));
        }
    }

    #[test]
    fn identity_device_map_changes_nothing() {
        let mut m = maps(DeviceMap::default());
        let mut req = query_pointer(APP_MAJOR, APP_WIN, 8);
        request_to_server(&mut req, LE, &mut m).expect("translate");
        assert_eq!(req, query_pointer(SERVER_MAJOR, SERVER_WIN, 8));
    }

    fn button_press(major: u8, root: u32, event: u32, deviceid: u16, sourceid: u16) -> Vec<u8> {
        let e = xinput::ButtonPressEvent {
            response_type: 35,
            extension: major,
            sequence: 9,
            length: 0,
            event_type: xinput::BUTTON_PRESS_EVENT,
            deviceid,
            time: 77,
            detail: 1,
            root,
            event,
            child: 0,
            root_x: 0,
            root_y: 0,
            event_x: 0,
            event_y: 0,
            sourceid,
            flags: 0u32.into(),
            mods: xinput::ModifierInfo {
                base: 0,
                latched: 0,
                locked: 0,
                effective: 0,
            },
            group: xinput::GroupInfo {
                base: 0,
                latched: 0,
                locked: 0,
                effective: 0,
            },
            button_mask: vec![2],
            valuator_mask: vec![],
            axisvalues: vec![],
        };
        let mut m = e.serialize();
        let len = ((m.len() - 32) / 4) as u32;
        m[4..8].copy_from_slice(&len.to_le_bytes());
        m
    }

    #[test]
    fn xi2_button_press_reaches_the_app_with_its_device_ids() {
        let mut m = maps(moved_devices());
        let mut ev = button_press(SERVER_MAJOR, SERVER_ROOT, SERVER_WIN, 12, 14);
        assert!(event_to_app(&mut ev, LE, &mut m).expect("translate"));
        assert_eq!(ev, button_press(APP_MAJOR, APP_ROOT, APP_WIN, 8, 10));
    }

    #[test]
    fn xi1_device_event_keeps_the_more_events_bit() {
        let mut m = maps(moved_devices());
        // DeviceButtonPress (XI1 event 3) from device 12 with "more events follow".
        let mut ev = [0u8; 32];
        ev[0] = 70 + 3;
        ev[31] = 0x80 | 12;
        assert!(event_to_app(&mut ev, LE, &mut m).expect("translate"));
        assert_eq!(ev[0], 66 + 3);
        assert_eq!(ev[31], 0x80 | 8);
    }

    fn query_device_reply(devices: &[(u16, u16, u16)]) -> Vec<u8> {
        let infos = devices
            .iter()
            .map(|&(deviceid, attachment, sourceid)| xinput::XIDeviceInfo {
                deviceid,
                type_: xinput::DeviceType::SLAVE_POINTER,
                attachment,
                enabled: true,
                name: b"dev".to_vec(),
                classes: vec![xinput::DeviceClass {
                    len: 4,
                    sourceid,
                    data: xinput::DeviceClassData::Button(xinput::DeviceClassDataButton {
                        state: vec![0],
                        labels: vec![0],
                    }),
                }],
            })
            .collect();
        let mut m = xinput::XIQueryDeviceReply {
            sequence: 4,
            length: 0,
            infos,
        }
        .serialize();
        let len = ((m.len() - 32) / 4) as u32;
        m[4..8].copy_from_slice(&len.to_le_bytes());
        m
    }

    #[test]
    fn xi_query_device_reply_in_the_apps_ids_and_newcomers_do_not_collide() {
        let mut m = maps(moved_devices());
        // The server's 14 (slave of 12), and its own 8 (a device the app never saw, whose
        // number the app knows as "Second pointer").
        let mut reply = query_device_reply(&[(14, 12, 14), (8, 2, 8)]);
        let table = tables::ext_by_xname("XInputExtension").expect("xinput table");
        reply_to_app(&mut reply, LE, &mut m, table, 48, &ReplyAux::None).expect("translate");
        let alias = m.devices.to_app(8);
        assert!(![0, 1, 2, 3, 8, 10].contains(&alias), "alias {alias}");
        assert_eq!(
            reply,
            query_device_reply(&[(10, 8, 10), (alias as u16, 2, alias as u16)])
        );
        // The alias leads back to the server's device.
        let mut req = query_pointer(APP_MAJOR, APP_WIN, alias as u16);
        request_to_server(&mut req, LE, &mut m).expect("translate");
        assert_eq!(req, query_pointer(SERVER_MAJOR, SERVER_WIN, 8));
    }
}
