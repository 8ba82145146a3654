//! Active grabs: the pointer or keyboard grab an application holds when it is captured (a Tk
//! `grab -global`, a Motif or Xaw menu, a GTK 3 menu's `XIGrabDevice`). The GUIEVICT extension
//! (protocol ≥ 1.8, `GetActiveGrabs`) describes each in full; the capture half turns the ones
//! that can be made again into [`ActiveGrab`]s of the [`Session`] and lists the others as not
//! recreated — a grab a held key or button activated (it ends with a release on the old
//! server), an XInput 1 grab, a grab on another client's window or with another client's
//! cursor. The regenerate half sends `GrabPointer` / `GrabKeyboard` / `XIGrabDevice` once the
//! windows are mapped (a grab needs a viewable window), and their answers, read with the final
//! synchronisation's, become warnings when the target refuses (another client holds the
//! device there).

use crate::capture::ResourceList;
use crate::model::{ActiveGrab, Session};
use guievict_ext_proto as proto;
use x11rb::connection::Connection;
use x11rb::cookie::Cookie;
use x11rb::protocol::xinput::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// Capture the client's active grabs from the extension's answer into `s.active_grabs`; what
/// cannot be carried goes to `s.unknown` (with "not modelled": a move is refused up front).
pub(crate) fn capture(s: &mut Session, list: &ResourceList, ext: Option<&crate::ext::ExtState>) {
    let Some(st) = ext else { return };
    let bits = st.active_grabs.unwrap_or(0);
    let Some(records) = &st.active_grab_records else {
        // A 1.3 … 1.7 server says only whether there is a grab.
        refuse_by_bits(s, bits);
        return;
    };
    let root = s.setup.root;
    let own_window = |w: u32| w == root || list.windows.binary_search(&w).is_ok();
    let mut seen = 0u8;
    for g in records {
        let keyboard = g.device == proto::GRAB_DEVICE_KEYBOARD;
        let what = if keyboard { "keyboard" } else { "pointer" };
        seen |= if keyboard {
            proto::ACTIVE_GRAB_KEYBOARD
        } else {
            proto::ACTIVE_GRAB_POINTER
        };
        let why = if g.flags & proto::GRAB_ACTIVATED != 0 {
            Some(if keyboard {
                " (from a key press: it ends with the key's release on the old server)"
            } else {
                " (from a button press: it ends with the button's release on the old server)"
            })
        } else if g.level == proto::GRAB_LEVEL_XI {
            Some(" (XInput 1 GrabDevice)")
        } else if g.flags & proto::GRAB_MASK_UNREAD != 0 {
            Some(" (its XInput 2 event mask could not be read)")
        } else if g.flags & proto::GRAB_FROZEN_BY_OTHER != 0
            || [g.sync_state, g.paired_sync_state].iter().any(|&st| {
                st == proto::sync_state::FROZEN_WITH_EVENT || st == proto::sync_state::THAW_OTHERS
            })
        {
            Some(" (a device frozen with an event held back for the application)")
        } else if g.flags & proto::GRAB_CURSOR_UNNAMED != 0 {
            Some(" (its cursor has no ID)")
        } else if !own_window(g.window) || (g.confine_to != 0 && !own_window(g.confine_to)) {
            Some(" (on another client's window)")
        } else if g.cursor != 0 && list.cursors.binary_search(&g.cursor).is_err() {
            Some(" (with another client's cursor)")
        } else {
            None
        };
        if let Some(why) = why {
            s.unknown.push(format!(
                "active {what} grab{why} held by the application at capture: not recreated (not modelled)"
            ));
            continue;
        }
        s.active_grabs.push(ActiveGrab {
            keyboard,
            xi2: g.level == proto::GRAB_LEVEL_XI2,
            window: g.window,
            owner_events: g.flags & proto::GRAB_OWNER_EVENTS != 0,
            pointer_mode: u8::from(g.flags & proto::GRAB_POINTER_ASYNC != 0),
            keyboard_mode: u8::from(g.flags & proto::GRAB_KEYBOARD_ASYNC != 0),
            confine_to: g.confine_to,
            cursor: g.cursor,
            event_mask: g.event_mask as u16,
            xi2_mask: g.xi2_mask.clone(),
            sync_state: g.sync_state,
            paired_sync_state: g.paired_sync_state,
        });
    }
    // A grab byte 29 names but no record describes (its window did not check out).
    refuse_by_bits(
        s,
        bits & !seen & (proto::ACTIVE_GRAB_POINTER | proto::ACTIVE_GRAB_KEYBOARD),
    );
}

/// The refusal for grabs known only by `GetResources`' byte 29.
fn refuse_by_bits(s: &mut Session, bits: u8) {
    for (bit, what) in [
        (proto::ACTIVE_GRAB_POINTER, "pointer"),
        (proto::ACTIVE_GRAB_KEYBOARD, "keyboard"),
    ] {
        if bits & bit == 0 {
            continue;
        }
        let how = if bit == proto::ACTIVE_GRAB_POINTER
            && bits & proto::ACTIVE_GRAB_POINTER_IMPLICIT != 0
        {
            " (from a button press)"
        } else {
            ""
        };
        s.unknown.push(format!(
            "active {what} grab{how} held by the application at capture: not recreated (not modelled)"
        ));
    }
}

/// A grab sent to the target, its answer still to read.
pub(crate) enum Sent<'c, C: Connection> {
    /// `GrabPointer`.
    Pointer(Cookie<'c, C, xproto::GrabPointerReply>),
    /// `GrabKeyboard`.
    Keyboard(Cookie<'c, C, xproto::GrabKeyboardReply>),
    /// `XIGrabDevice`.
    Xi2(Cookie<'c, C, xinput::XIGrabDeviceReply>),
    /// `AllowEvents` putting a device back in the freeze state it had.
    Allow(x11rb::cookie::VoidCookie<'c, C>),
}

/// Send the grabs of `t` (already in target numbers; its windows mapped). `xi_devices` maps
/// the master pointer and keyboard (2, 3 on Xorg and Xvfb) to the target's by use.
pub(crate) fn send<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
) -> Result<Vec<(String, Sent<'c, C>)>, x11rb::errors::ConnectionError> {
    let mut out = Vec::new();
    for g in &t.active_grabs {
        let what = format!(
            "active {} grab on {:#x}",
            if g.keyboard { "keyboard" } else { "pointer" },
            g.window
        );
        let pm = xproto::GrabMode::from(g.pointer_mode);
        let km = xproto::GrabMode::from(g.keyboard_mode);
        let sent = if g.xi2 {
            // The device's own mode first, the paired device's second.
            let (mode, paired) = if g.keyboard { (km, pm) } else { (pm, km) };
            let mask: Vec<u32> = g
                .xi2_mask
                .chunks(4)
                .map(|c| {
                    let mut b = [0u8; 4];
                    b[..c.len()].copy_from_slice(c);
                    u32::from_le_bytes(b)
                })
                .collect();
            Sent::Xi2(conn.xinput_xi_grab_device(
                g.window,
                x11rb::CURRENT_TIME,
                g.cursor,
                if g.keyboard {
                    MASTER_KEYBOARD
                } else {
                    MASTER_POINTER
                },
                mode,
                paired,
                if g.owner_events {
                    xinput::GrabOwner::OWNER
                } else {
                    xinput::GrabOwner::NO_OWNER
                },
                &mask,
            )?)
        } else if g.keyboard {
            Sent::Keyboard(conn.grab_keyboard(
                g.owner_events,
                g.window,
                x11rb::CURRENT_TIME,
                pm,
                km,
            )?)
        } else {
            Sent::Pointer(conn.grab_pointer(
                g.owner_events,
                g.window,
                xproto::EventMask::from(u32::from(g.event_mask)),
                pm,
                km,
                g.confine_to,
                g.cursor,
                x11rb::CURRENT_TIME,
            )?)
        };
        out.push((what, sent));
    }
    // A Synchronous grab freezes its devices when it is made; on the source the app had let
    // events flow again (or asked for one more event): the same AllowEvents puts each device
    // in its state at capture. (Core AllowEvents acts on the master devices XI2 grabs too.)
    use proto::sync_state as st;
    let (mut pointer, mut keyboard) = (st::NOT_GRABBED, st::NOT_GRABBED);
    for g in &t.active_grabs {
        let (mine, paired) = (g.sync_state, g.paired_sync_state);
        if g.keyboard {
            (keyboard, pointer) = (mine, paired.max(pointer));
        } else {
            (pointer, keyboard) = (mine, paired.max(keyboard));
        }
    }
    let mut modes = Vec::new();
    if pointer == st::FREEZE_BOTH_NEXT_EVENT || keyboard == st::FREEZE_BOTH_NEXT_EVENT {
        modes.push(xproto::Allow::SYNC_BOTH);
    } else {
        match pointer {
            st::THAWED => modes.push(xproto::Allow::ASYNC_POINTER),
            st::FREEZE_NEXT_EVENT => modes.push(xproto::Allow::SYNC_POINTER),
            _ => {}
        }
        match keyboard {
            st::THAWED => modes.push(xproto::Allow::ASYNC_KEYBOARD),
            st::FREEZE_NEXT_EVENT => modes.push(xproto::Allow::SYNC_KEYBOARD),
            _ => {}
        }
    }
    if !t.active_grabs.is_empty() {
        for m in modes {
            out.push((
                format!("AllowEvents({m:?}) after the grabs"),
                Sent::Allow(conn.allow_events(m, x11rb::CURRENT_TIME)?),
            ));
        }
    }
    Ok(out)
}

/// The master pointer's device ID (Xorg and Xvfb make the virtual core pointer first).
const MASTER_POINTER: u16 = 2;
/// The master keyboard's device ID.
const MASTER_KEYBOARD: u16 = 3;

/// Read the answers of [`send`] (after the final synchronisation: no round trip of their own):
/// each grab the target refused, as a warning.
pub(crate) fn check<C: Connection>(sent: Vec<(String, Sent<'_, C>)>) -> Vec<String> {
    let mut warnings = Vec::new();
    for (what, s) in sent {
        let status = match s {
            Sent::Pointer(c) => c.reply().map(|r| u8::from(r.status)),
            Sent::Keyboard(c) => c.reply().map(|r| u8::from(r.status)),
            Sent::Xi2(c) => c.reply().map(|r| u8::from(r.status)),
            Sent::Allow(c) => c.check().map(|()| 0),
        };
        match status {
            Ok(0) => {}
            Ok(st) => warnings.push(format!(
                "{what} not made again on the target: {} (another client holds the device there)",
                grab_status_name(st)
            )),
            Err(e) => warnings.push(format!("{what} not made again on the target: {e}")),
        }
    }
    warnings
}

/// The name of a grab status (core and XI2 share the numbers).
fn grab_status_name(st: u8) -> &'static str {
    match st {
        1 => "AlreadyGrabbed",
        2 => "InvalidTime",
        3 => "NotViewable",
        4 => "Frozen",
        _ => "an unknown status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(records: Vec<proto::ActiveGrab>, bits: u8) -> crate::ext::ExtState {
        crate::ext::ExtState {
            active_grabs: Some(bits),
            active_grab_records: Some(records),
            ..Default::default()
        }
    }

    fn list() -> ResourceList {
        ResourceList {
            windows: vec![0x20_0004, 0x20_0008],
            cursors: vec![0x20_000c],
            ..Default::default()
        }
    }

    fn pointer() -> proto::ActiveGrab {
        proto::ActiveGrab {
            device: proto::GRAB_DEVICE_POINTER,
            level: proto::GRAB_LEVEL_CORE,
            flags: proto::GRAB_OWNER_EVENTS
                | proto::GRAB_POINTER_ASYNC
                | proto::GRAB_KEYBOARD_ASYNC,
            sync_state: proto::sync_state::THAWED,
            paired_sync_state: proto::sync_state::NOT_GRABBED,
            device_id: 2,
            window: 0x20_0004,
            confine_to: 0,
            cursor: 0x20_000c,
            event_mask: 0x1c,
            xi2_mask: Vec::new(),
        }
    }

    #[test]
    fn a_core_grab_on_an_own_window_is_carried() {
        let mut s = Session::default();
        capture(
            &mut s,
            &list(),
            Some(&ext(vec![pointer()], proto::ACTIVE_GRAB_POINTER)),
        );
        assert!(s.unknown.is_empty(), "{:?}", s.unknown);
        assert_eq!(
            s.active_grabs,
            vec![ActiveGrab {
                keyboard: false,
                xi2: false,
                window: 0x20_0004,
                owner_events: true,
                pointer_mode: 1,
                keyboard_mode: 1,
                confine_to: 0,
                cursor: 0x20_000c,
                event_mask: 0x1c,
                xi2_mask: Vec::new(),
                sync_state: proto::sync_state::THAWED,
                paired_sync_state: proto::sync_state::NOT_GRABBED,
            }]
        );
    }

    #[test]
    fn what_cannot_be_carried_is_refused_by_name() {
        for (change, says) in [
            (
                Box::new(|g: &mut proto::ActiveGrab| g.flags |= proto::GRAB_ACTIVATED)
                    as Box<dyn Fn(&mut proto::ActiveGrab)>,
                "from a button press",
            ),
            (Box::new(|g| g.level = proto::GRAB_LEVEL_XI), "XInput 1"),
            (
                Box::new(|g| g.window = 0x40_0001),
                "another client's window",
            ),
            (
                Box::new(|g| g.cursor = 0x40_0002),
                "another client's cursor",
            ),
            (Box::new(|g| g.flags |= proto::GRAB_CURSOR_UNNAMED), "no ID"),
        ] {
            let mut g = pointer();
            change(&mut g);
            let mut s = Session::default();
            capture(
                &mut s,
                &list(),
                Some(&ext(vec![g], proto::ACTIVE_GRAB_POINTER)),
            );
            assert!(s.active_grabs.is_empty());
            assert_eq!(s.unknown.len(), 1, "{:?}", s.unknown);
            assert!(s.unknown[0].contains(says), "{:?} lacks {says}", s.unknown);
            assert!(s.unknown[0].contains("not modelled"));
        }
    }

    #[test]
    fn a_grab_without_its_record_is_refused() {
        // Byte 29 says keyboard and pointer; only the pointer's record came.
        let mut s = Session::default();
        capture(
            &mut s,
            &list(),
            Some(&ext(
                vec![pointer()],
                proto::ACTIVE_GRAB_POINTER | proto::ACTIVE_GRAB_KEYBOARD,
            )),
        );
        assert_eq!(s.active_grabs.len(), 1);
        assert_eq!(s.unknown.len(), 1);
        assert!(s.unknown[0].contains("active keyboard grab"));
        // An older server: bits only.
        let mut s = Session::default();
        let st = crate::ext::ExtState {
            active_grabs: Some(proto::ACTIVE_GRAB_POINTER | proto::ACTIVE_GRAB_POINTER_IMPLICIT),
            ..Default::default()
        };
        capture(&mut s, &list(), Some(&st));
        assert!(s.active_grabs.is_empty());
        assert!(s.unknown[0].contains("from a button press"));
    }
}
