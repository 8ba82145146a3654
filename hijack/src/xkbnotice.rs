//! The keymap change an XKB client is told about after a move. A server whose keymap changes
//! (`setxkbmap`, a new keyboard) sends XKB clients a `NewKeyboardNotify` (to those that selected
//! it; they get no core `MappingNotify` for it) or, for a change of the map alone, a
//! `MapNotify`; toolkits that read the keymap through XKB (Qt5's xkbcommon-x11, GTK3) reload it
//! only then. When the new server's keymap differs from the old one, the attach injects the
//! same event. What flows through here: the app's XKB selections from the window session (what
//! it selected decides which event, if any) and the app's XKB first event code, device ID and
//! old/new keycode ranges in; one 32-byte event in the app's byte order (native: the app is a
//! local process) out. No I/O.

use winsession::Session;

/// XKB event types (byte 1 of an XKB event).
const XKB_NEW_KEYBOARD_NOTIFY: u8 = 0;
const XKB_MAP_NOTIFY: u8 = 1;
/// NewKeyboardNotify detail: the keycodes (and with them the keymap) changed.
const NKN_KEYCODES: u16 = 1;
/// MapNotify details a whole new keymap changes: KeyTypes, KeySyms, ModifierMap,
/// ExplicitComponents, KeyActions, KeyBehaviors, VirtualMods, VirtualModMap.
const MAP_ALL: u16 = 0xff;
/// XkbGetKeyboardByName, the request behind `setxkbmap` (the event names it as its cause).
const X_KB_GET_KBD_BY_NAME: u8 = 17;
/// The core keyboard's device ID on X.Org servers (Virtual core keyboard).
const CORE_KEYBOARD_ID: u8 = 3;

/// Which XKB event tells this app about a new keymap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// `NewKeyboardNotify` with these `changed` details.
    NewKeyboard(u16),
    /// `MapNotify` with these `changed` details.
    Map(u16),
}

/// The event the app selected for a keymap change, as the server would choose it: a
/// NewKeyboardNotify when it selected the keycodes detail, else a MapNotify with the map parts
/// it selected. When its selections are unknown (captured without GUIEVICT 1.2) it was given
/// NewKeyboard, Map and State notify on the new server, so it gets a NewKeyboardNotify. `None`:
/// the app did not initialise XKB, or selected neither.
pub fn notice_for(session: &Session) -> Option<Notice> {
    let x = session.xkb.as_ref()?;
    match &x.selections {
        None => Some(Notice::NewKeyboard(NKN_KEYCODES)),
        Some(s) if s.new_keyboard_notify & NKN_KEYCODES != 0 => {
            Some(Notice::NewKeyboard(NKN_KEYCODES))
        }
        Some(s) if s.map_notify & MAP_ALL != 0 => Some(Notice::Map(s.map_notify & MAP_ALL)),
        Some(_) => None,
    }
}

/// The app's core keyboard device ID: the one its selections were captured on, else the
/// X.Org core keyboard's.
pub fn core_keyboard_id(session: &Session) -> u8 {
    session
        .xkb
        .as_ref()
        .and_then(|x| x.selections.as_ref())
        .and_then(|s| {
            s.devices
                .iter()
                .find(|d| d.device_name == winsession::extensions::CORE_KEYBOARD_NAME)
        })
        .and_then(|d| u8::try_from(d.device).ok())
        .unwrap_or(CORE_KEYBOARD_ID)
}

/// The 32-byte event: `first_event` is XKB's first event code as the app knows it; `new` and
/// `old` the (min, max) keycodes of the new and the old server.
pub fn event(
    notice: Notice,
    first_event: u8,
    device: u8,
    new: (u8, u8),
    old: (u8, u8),
) -> [u8; 32] {
    let mut ev = [0u8; 32];
    ev[0] = first_event;
    // Bytes 2..4 (sequence) are filled in by the engine; 4..8 time: CurrentTime.
    ev[8] = device;
    match notice {
        Notice::NewKeyboard(changed) => {
            ev[1] = XKB_NEW_KEYBOARD_NOTIFY;
            ev[9] = device; // oldDeviceID
            ev[10] = new.0;
            ev[11] = new.1;
            ev[12] = old.0;
            ev[13] = old.1;
            ev[14] = 0; // requestMajor: not known in the app's opcodes; 0 = none
            ev[15] = X_KB_GET_KBD_BY_NAME;
            ev[16..18].copy_from_slice(&changed.to_ne_bytes());
        }
        Notice::Map(changed) => {
            ev[1] = XKB_MAP_NOTIFY;
            ev[10..12].copy_from_slice(&changed.to_ne_bytes());
            ev[12] = new.0;
            ev[13] = new.1;
            let n = new.1.saturating_sub(new.0).saturating_add(1);
            // firstType 0, nTypes 0 (the app rereads the types it asks for); every key's
            // symbols, actions, behaviors, explicit components, modmap and vmodmap.
            for at in [16, 18, 20, 22, 24, 26] {
                ev[at] = new.0;
                ev[at + 1] = n;
            }
            ev[28..30].copy_from_slice(&0xffffu16.to_ne_bytes()); // virtualMods
        }
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;
    use winsession::{XkbClient, XkbDeviceSelection, XkbSelections};

    fn with(selections: Option<XkbSelections>) -> Session {
        Session {
            xkb: Some(XkbClient {
                selections,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_event_follows_what_the_app_selected() {
        assert_eq!(notice_for(&Session::default()), None);
        assert_eq!(notice_for(&with(None)), Some(Notice::NewKeyboard(1)));
        let qt = XkbSelections {
            new_keyboard_notify: 7,
            map_notify: 0xff,
            ..Default::default()
        };
        assert_eq!(notice_for(&with(Some(qt))), Some(Notice::NewKeyboard(1)));
        let map_only = XkbSelections {
            map_notify: 0x6,
            ..Default::default()
        };
        assert_eq!(notice_for(&with(Some(map_only))), Some(Notice::Map(6)));
        // NewKeyboardNotify for the device ID only, no map: nothing says "new keymap".
        let neither = XkbSelections {
            new_keyboard_notify: 4,
            ..Default::default()
        };
        assert_eq!(notice_for(&with(Some(neither))), None);
    }

    #[test]
    fn device_id_from_the_selections() {
        assert_eq!(core_keyboard_id(&with(None)), 3);
        let s = XkbSelections {
            devices: vec![XkbDeviceSelection {
                device: 9,
                device_name: winsession::extensions::CORE_KEYBOARD_NAME.into(),
                state: 1,
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(core_keyboard_id(&with(Some(s))), 9);
    }

    #[test]
    fn event_bytes() {
        let e = event(Notice::NewKeyboard(1), 85, 3, (8, 255), (9, 254));
        assert_eq!(&e[..2], &[85, 0]);
        assert_eq!(&e[8..16], &[3, 3, 8, 255, 9, 254, 0, 17]);
        assert_eq!(u16::from_ne_bytes([e[16], e[17]]), 1);
        let m = event(Notice::Map(6), 85, 3, (8, 255), (8, 255));
        assert_eq!(&m[..2], &[85, 1]);
        assert_eq!(m[8], 3);
        assert_eq!(u16::from_ne_bytes([m[10], m[11]]), 6);
        assert_eq!(&m[12..14], &[8, 255]);
        assert_eq!(&m[16..18], &[8, 248]);
        assert_eq!(&m[26..28], &[8, 248]);
    }
}
