//! Rewriting messages between the app's view and one server. A framed request (app view) flows
//! in and comes out in the server's values; replies, events and errors flow the other way.
//! The generated walkers find the fields; this module supplies the maps and the hand-written
//! cases the XML cannot express (typed property data, ClientMessage data, SendEvent's embedded
//! event, QueryExtension replies, extension opcodes). See docs/generated-tables.md. What the
//! words of typed payloads hold (property types, well-known ClientMessages) is tabled in
//! `words`; the unit tests are in `translate/tests.rs`.

use crate::fields::{ByteOrder, Kind, Rewriter, WalkError};
use crate::maps::{AtomMap, DeviceMap, ExtMap, XidMap};
use crate::tables;
use std::collections::HashMap;
use words::{property_item_kind, xa};
pub use words::{DataWord, CLIENT_MESSAGE_DATA};

mod words;

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
mod tests;
