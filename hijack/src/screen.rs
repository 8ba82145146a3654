//! The screen size after a move. The app learns a new root size the way it would from a real
//! screen change: a `ConfigureNotify` on the root window when it selected `StructureNotify`
//! there (the root event mask is in the window session), and an `RRScreenChangeNotify` when it
//! selected RANDR input. What flows through here: at detach, whether the app holds RANDR event
//! selections (the server keeps each as a `RandRClient` resource of the client, which the
//! session does not carry: `preflight::randr_selections_held` takes them from the resource
//! list the capture's GUIEVICT request returned, else reads the app's live resources, and
//! they are added to the session); at attach, the new
//! root's size from the new server (RRGetScreenInfo for rotation, size index and timestamps),
//! the RANDR selection made again on the new root for the app's client, and the events, in the
//! app's own IDs and event codes, injected before the app resumes.
//!
//! The RANDR selection mask and window cannot be read back from a server; the selection is
//! renewed on the root for ScreenChangeNotify, which is what toolkits (GTK, Qt, Xlib's
//! XRRSelectInput users like xev) select there.

use crate::muxloop::MuxHandle;
use crate::session::{Detached, SessionError};
use guimux::ServerId;
use std::io::IoSlice;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::Setup;

/// Type name of a RANDR event selection in X-Resource's listing of the selecting client.
pub const RANDR_SELECTION: &str = "RandRClient";
/// `StructureNotify` in an event mask.
const STRUCTURE_NOTIFY: u32 = 0x0002_0000;
/// X_ConfigureNotify.
const CONFIGURE_NOTIFY: u8 = 22;
/// RRSelectInput / RRGetScreenInfo minor opcodes and the ScreenChangeNotify mask.
const RR_SELECT_INPUT: u8 = 4;
const RR_GET_SCREEN_INFO: u8 = 5;
const RR_SCREEN_CHANGE_NOTIFY_MASK: u16 = 1;

/// What the new server says about its screen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ScreenInfo {
    rotation: u8,
    timestamp: u32,
    config_timestamp: u32,
    size_id: u16,
    mwidth: u16,
    mheight: u16,
}

fn xerr(e: impl std::fmt::Display) -> SessionError {
    SessionError::X {
        stage: "screen change notice",
        why: e.to_string(),
    }
}

/// On the new server (internal client of the app's connection): renew the app's RANDR
/// selection on the root and read the screen's RANDR state. `None` when it has no RANDR.
fn renew_randr(conn: &impl Connection, root: u32) -> Result<Option<ScreenInfo>, SessionError> {
    let Some(ext) = conn
        .extension_information("RANDR")
        .map_err(xerr)?
        .map(|e| e.major_opcode)
    else {
        return Ok(None);
    };
    let mut sel = [0u8; 12];
    sel[0] = ext;
    sel[1] = RR_SELECT_INPUT;
    sel[2..4].copy_from_slice(&3u16.to_ne_bytes());
    sel[4..8].copy_from_slice(&root.to_ne_bytes());
    sel[8..10].copy_from_slice(&RR_SCREEN_CHANGE_NOTIFY_MASK.to_ne_bytes());
    // The selection's check waits for nothing: GetScreenInfo's answer comes after it.
    let selected = conn
        .send_request_without_reply(&[IoSlice::new(&sel)], Vec::new())
        .map_err(xerr)?;
    let mut gi = [0u8; 8];
    gi[0] = ext;
    gi[1] = RR_GET_SCREEN_INFO;
    gi[2..4].copy_from_slice(&2u16.to_ne_bytes());
    gi[4..8].copy_from_slice(&root.to_ne_bytes());
    let r = conn
        .send_request_with_reply::<RawReply>(&[IoSlice::new(&gi)], Vec::new())
        .map_err(xerr)?
        .reply()
        .map_err(xerr)?;
    selected.check().map_err(xerr)?;
    Ok(Some(parse_screen_info(&r.0)))
}

/// Fields of an RRGetScreenInfo reply (native byte order; the internal client is native).
fn parse_screen_info(b: &[u8]) -> ScreenInfo {
    let u16_at = |o: usize| {
        b.get(o..o + 2)
            .map(|x| u16::from_ne_bytes([x[0], x[1]]))
            .unwrap_or(0)
    };
    let u32_at = |o: usize| {
        b.get(o..o + 4)
            .map(|x| u32::from_ne_bytes([x[0], x[1], x[2], x[3]]))
            .unwrap_or(0)
    };
    let n_sizes = usize::from(u16_at(20));
    let size_id = u16_at(22);
    // SCREENSIZE list at 32: width, height, mwidth, mheight (u16 each).
    let (mwidth, mheight) = if usize::from(size_id) < n_sizes {
        let o = 32 + 8 * usize::from(size_id);
        (u16_at(o + 4), u16_at(o + 6))
    } else {
        (0, 0)
    };
    ScreenInfo {
        rotation: u16_at(24) as u8,
        timestamp: u32_at(12),
        config_timestamp: u32_at(16),
        size_id,
        mwidth,
        mheight,
    }
}

/// A reply kept as its raw bytes.
struct RawReply(Vec<u8>);

impl x11rb::x11_utils::TryParse for RawReply {
    fn try_parse(value: &[u8]) -> Result<(Self, &[u8]), x11rb::errors::ParseError> {
        Ok((RawReply(value.to_vec()), &[]))
    }
}

/// The events that tell an app its screen is now `width`×`height`: a root ConfigureNotify
/// (when `structure`), an RRScreenChangeNotify (when `randr_event` is the app's RANDR first
/// event). IDs are the app's. Native byte order; sequence numbers are filled in on injection.
fn events(
    root: u32,
    width: u16,
    height: u16,
    structure: bool,
    randr: Option<(u8, ScreenInfo)>,
) -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    if structure {
        let mut ev = [0u8; 32];
        ev[0] = CONFIGURE_NOTIFY;
        ev[4..8].copy_from_slice(&root.to_ne_bytes()); // event
        ev[8..12].copy_from_slice(&root.to_ne_bytes()); // window
                                                        // above-sibling None, x = y = 0
        ev[20..22].copy_from_slice(&width.to_ne_bytes());
        ev[22..24].copy_from_slice(&height.to_ne_bytes());
        out.push(ev);
    }
    if let Some((code, info)) = randr {
        let mut ev = [0u8; 32];
        ev[0] = code;
        ev[1] = info.rotation.max(1);
        ev[4..8].copy_from_slice(&info.timestamp.to_ne_bytes());
        ev[8..12].copy_from_slice(&info.config_timestamp.to_ne_bytes());
        ev[12..16].copy_from_slice(&root.to_ne_bytes());
        ev[16..20].copy_from_slice(&root.to_ne_bytes()); // request window
        ev[20..22].copy_from_slice(&info.size_id.to_ne_bytes());
        // subpixel order 0: unknown
        ev[24..26].copy_from_slice(&width.to_ne_bytes());
        ev[26..28].copy_from_slice(&height.to_ne_bytes());
        ev[28..30].copy_from_slice(&info.mwidth.to_ne_bytes());
        ev[30..32].copy_from_slice(&info.mheight.to_ne_bytes());
        out.push(ev);
    }
    out
}

/// After an attach as primary (the app still paused): renew RANDR selections on the new
/// server and, when the root size differs from the one the app knew, inject the events it
/// selected. Returns warnings for the attach report; a failure here is one of them (the GUI
/// is on the new server already).
pub fn announce(h: &MuxHandle, s: ServerId, detached: &Detached, setup: &Setup) -> Vec<String> {
    announce_inner(h, s, detached, setup)
        .unwrap_or_else(|e| vec![format!("the app was not told the new screen size: {e}")])
}

fn announce_inner(
    h: &MuxHandle,
    s: ServerId,
    detached: &Detached,
    setup: &Setup,
) -> Result<Vec<String>, SessionError> {
    let mut warnings = Vec::new();
    let Some(screen) = setup.roots.first() else {
        return Ok(warnings);
    };
    let selected_randr = detached
        .session
        .other_resources
        .iter()
        .any(|o| o.type_name == RANDR_SELECTION);
    let structure = detached.session.root_event_mask & STRUCTURE_NOTIFY != 0;
    let (old_w, old_h) = (detached.session.setup.width, detached.session.setup.height);
    let (w, hgt) = (screen.width_in_pixels, screen.height_in_pixels);
    if !selected_randr && (!structure || (old_w, old_h) == (w, hgt)) {
        return Ok(warnings);
    }
    let info = if selected_randr {
        // Extension placements are known from the attach: no QueryExtension round trip.
        let r = crate::session::internal_for(h, s, setup).and_then(|(inner, known)| {
            let conn = crate::viewconn::Viewed::new(&inner, setup.clone(), known);
            renew_randr(&conn, screen.root)
        });
        h.stop_internal()?;
        match r {
            Ok(i) => i,
            Err(e) => {
                warnings.push(format!("RANDR selection not renewed: {e}"));
                None
            }
        }
    } else {
        None
    };
    if (old_w, old_h) == (w, hgt) {
        return Ok(warnings);
    }
    let Some(mut maps) = h.with_engine(move |e| e.maps_of(s).cloned())? else {
        return Ok(warnings);
    };
    let root = maps.xids.to_app(screen.root);
    let randr_event = maps
        .exts
        .by_name("RANDR")
        .and_then(|e| e.app)
        .map(|p| p.first_event);
    let randr = match (selected_randr, randr_event, info) {
        (true, Some(code), Some(info)) => Some((code, info)),
        _ => None,
    };
    let evs = events(root, w, hgt, structure, randr);
    let n = evs.len();
    h.with_engine(move |e| {
        for ev in evs {
            e.inject_event(ev);
        }
    })?;
    if n > 0 {
        warnings.push(format!(
            "the screen is {w}x{hgt} here ({old_w}x{old_h} before): the app was sent {n} screen-change event(s)"
        ));
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_the_new_size_in_the_apps_ids() {
        let info = ScreenInfo {
            rotation: 1,
            timestamp: 7,
            config_timestamp: 9,
            size_id: 0,
            mwidth: 325,
            mheight: 260,
        };
        let evs = events(0x123, 1280, 1024, true, Some((89, info)));
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0][0], CONFIGURE_NOTIFY);
        assert_eq!(u32::from_ne_bytes(evs[0][8..12].try_into().unwrap()), 0x123);
        assert_eq!(u16::from_ne_bytes([evs[0][20], evs[0][21]]), 1280);
        assert_eq!(evs[1][0], 89);
        assert_eq!(u16::from_ne_bytes([evs[1][26], evs[1][27]]), 1024);
        assert_eq!(u16::from_ne_bytes([evs[1][28], evs[1][29]]), 325);
        assert!(events(1, 2, 3, false, None).is_empty());
    }

    #[test]
    fn screen_info_from_a_reply() {
        let mut b = vec![0u8; 32 + 16];
        b[1] = 0x3f; // rotations
        b[12..16].copy_from_slice(&5u32.to_ne_bytes());
        b[20..22].copy_from_slice(&2u16.to_ne_bytes()); // two sizes
        b[22..24].copy_from_slice(&1u16.to_ne_bytes()); // current: the second
        b[24..26].copy_from_slice(&1u16.to_ne_bytes());
        b[40 + 4..40 + 6].copy_from_slice(&338u16.to_ne_bytes());
        b[40 + 6..40 + 8].copy_from_slice(&270u16.to_ne_bytes());
        let i = parse_screen_info(&b);
        assert_eq!(
            (i.size_id, i.mwidth, i.mheight, i.timestamp),
            (1, 338, 270, 5)
        );
    }
}
