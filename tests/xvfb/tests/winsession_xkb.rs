//! XKEYBOARD event selections through a window session: a test client on server A initialises
//! XKB and selects events the way GTK3 and Qt5 do (NewKeyboardNotify, MapNotify, StateNotify
//! with detail masks) plus ControlsNotify and BellNotify; it captures itself (GUIEVICT 1.2
//! describes the per-device interest record and the client-wide masks), the session goes
//! through the file format and is regenerated on server B. B must then deliver exactly those
//! XKB events to the new connection: StateNotify when another client presses Shift with XTEST,
//! MapNotify when it changes the keyboard mapping, BellNotify when it rings the bell. A capture
//! from a 1.1 server says the selections are unknown, and regeneration falls back to GTK/Qt's.
//!
//! The XKB requests are encoded here by hand (the harness's x11rb has no XKB feature), and
//! events are read raw: byte 0 is XKB's first event code on that server, byte 1 the XKB type.

use anyhow::{anyhow, bail, Result};
use std::io::IoSlice;
use std::time::{Duration, Instant};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::xproto::ConnectionExt as _;
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use xvfb_harness::{with_timeout, Xvfb, XvfbOptions};

/// XKB event types (byte 1 of an XKB event).
const XKB_MAP_NOTIFY: u8 = 1;
const XKB_STATE_NOTIFY: u8 = 2;
const XKB_BELL_NOTIFY: u8 = 8;

/// What the test client selects (and what the capture must report).
const NKN_DETAILS: u16 = 0x7; // Keycodes | Geometry | DeviceID
const MAP_DETAILS: u16 = 0x7; // KeyTypes | KeySyms | ModifierMap
const STATE_DETAILS: u16 = 0x11; // ModifierState | GroupState
const CONTROLS_DETAILS: u32 = 0x1; // RepeatKeys

struct Raw(Vec<u8>);

impl x11rb::x11_utils::TryParse for Raw {
    fn try_parse(v: &[u8]) -> Result<(Self, &[u8]), x11rb::errors::ParseError> {
        Ok((Raw(v.to_vec()), &[]))
    }
}

fn xkb(conn: &RustConnection) -> Result<(u8, u8)> {
    let info = conn
        .extension_information("XKEYBOARD")?
        .ok_or_else(|| anyhow!("no XKEYBOARD"))?;
    Ok((info.major_opcode, info.first_event))
}

fn words(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_ne_bytes()).collect()
}

/// XkbUseExtension 1.0 and the selections GTK3/Qt5 make, plus ControlsNotify and BellNotify.
fn select_like_a_toolkit(conn: &RustConnection) -> Result<()> {
    let (major, _) = xkb(conn)?;
    let mut use_ext = vec![major, 0];
    use_ext.extend(words(&[2, 1, 0]));
    let r = conn
        .send_request_with_reply::<Raw>(&[IoSlice::new(&use_ext)], Vec::new())?
        .reply()?;
    assert_eq!(r.0[1], 1, "XkbUseExtension 1.0 refused");
    // One request: NewKeyboardNotify, MapNotify, StateNotify on the core keyboard.
    let mut sel = vec![major, 1];
    sel.extend(words(&[
        6,
        0x100,
        0b111,
        0,
        0,
        0xff,
        MAP_DETAILS,
        0x7,
        NKN_DETAILS,
        0x3fff,
        STATE_DETAILS,
    ]));
    conn.send_request_without_reply(&[IoSlice::new(&sel)], Vec::new())?
        .check()?;
    // ControlsNotify (4-byte details) and BellNotify by select-all (1-byte mask).
    let mut sel = vec![major, 1];
    sel.extend(words(&[6, 0x100, (1 << 3) | (1 << 8), 0, 1 << 8, 0, 0]));
    sel.extend(0xf800_1fffu32.to_ne_bytes());
    sel.extend(CONTROLS_DETAILS.to_ne_bytes());
    conn.send_request_without_reply(&[IoSlice::new(&sel)], Vec::new())?
        .check()?;
    Ok(())
}

/// The next XKB event of type `xkb_type` on `conn` within `secs` (other events are skipped).
fn xkb_event(conn: &RustConnection, first_event: u8, xkb_type: u8, secs: u64) -> Result<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        while let Some(ev) = conn.poll_for_raw_event()? {
            if ev.first() == Some(&first_event) && ev.get(1) == Some(&xkb_type) {
                return Ok(ev);
            }
        }
        if Instant::now() > deadline {
            bail!("no XKB event of type {xkb_type} within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether an XKB event of type `xkb_type` arrives within `ms`.
fn no_xkb_event(conn: &RustConnection, first_event: u8, xkb_type: u8, ms: u64) -> Result<bool> {
    let deadline = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < deadline {
        while let Some(ev) = conn.poll_for_raw_event()? {
            if ev.first() == Some(&first_event) && ev.get(1) == Some(&xkb_type) {
                return Ok(false);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(true)
}

/// Another client presses and releases Shift with XTEST.
fn press_shift(other: &RustConnection) -> Result<()> {
    let (min, max) = (other.setup().min_keycode, other.setup().max_keycode);
    let map = other.get_keyboard_mapping(min, max - min + 1)?.reply()?;
    let per = usize::from(map.keysyms_per_keycode).max(1);
    let code = map
        .keysyms
        .chunks(per)
        .position(|c| c.contains(&0xffe1))
        .map(|i| min + i as u8)
        .ok_or_else(|| anyhow!("no Shift_L"))?;
    let root = other.setup().roots[0].root;
    other.xtest_fake_input(2, code, 0, root, 0, 0, 0)?;
    other.xtest_fake_input(3, code, 0, root, 0, 0, 0)?;
    other.sync()?;
    Ok(())
}

/// Another client rewrites one keycode's keysyms (to what they are: a mapping change all the
/// same).
fn touch_mapping(other: &RustConnection) -> Result<()> {
    let code = other.setup().max_keycode;
    let map = other.get_keyboard_mapping(code, 1)?.reply()?;
    other
        .change_keyboard_mapping(1, code, map.keysyms_per_keycode, &map.keysyms)?
        .check()?;
    Ok(())
}

fn expected() -> winsession::XkbSelections {
    winsession::XkbSelections {
        map_notify: MAP_DETAILS,
        new_keyboard_notify: NKN_DETAILS,
        devices: vec![winsession::XkbDeviceSelection {
            device: 3,
            device_name: "Virtual core keyboard".into(),
            state: STATE_DETAILS,
            controls: CONTROLS_DETAILS,
            bell: 0xff,
            ..Default::default()
        }],
    }
}

#[test]
fn winsession_xkb_selections_round_trip() {
    with_timeout(90, || -> Result<()> {
        let a = Xvfb::start()?;
        let b = Xvfb::start()?;
        let ca = a.connect()?;
        select_like_a_toolkit(&ca)?;
        let (_, ev_a) = xkb(&ca)?;

        // Baseline on A: Shift yields StateNotify.
        let oa = a.connect()?;
        press_shift(&oa)?;
        xkb_event(&ca, ev_a, XKB_STATE_NOTIFY, 5)?;
        oa.bell(0)?.check()?;
        xkb_event(&ca, ev_a, XKB_BELL_NOTIFY, 5).map_err(|e| anyhow!("on A: {e}"))?;

        let sa = winsession::capture(&ca, &winsession::CaptureOptions::default())?;
        let x = sa.xkb.clone().ok_or_else(|| anyhow!("XKB not captured"))?;
        assert_eq!(x.selections, Some(expected()), "XKB selections captured");
        assert!(
            !sa.unknown
                .iter()
                .any(|u| u.contains("XKB") || u.contains("XkbClient")),
            "{:?}",
            sa.unknown
        );
        assert!(
            !sa.other_resources
                .iter()
                .any(|o| o.type_name == "XkbClient"),
            "{:?}",
            sa.other_resources
        );

        // Through the file format.
        let sa = winsession::from_bytes(&winsession::to_bytes(&sa)?)?;

        // B: a fresh connection (no XKB yet) gets the app's XKB client state.
        let cb = b.connect()?;
        let ob = b.connect()?;
        // Pad B's extension-independent state a little (another client first).
        let _ = ob.intern_atom(false, b"XKB_TEST_PAD")?.reply()?;
        let regen = winsession::regenerate(&cb, &sa, &winsession::RegenOptions::default())?;
        assert!(regen.warnings.is_empty(), "{:?}", regen.warnings);
        let (_, ev_b) = xkb(&cb)?;

        press_shift(&ob)?;
        let e = xkb_event(&cb, ev_b, XKB_STATE_NOTIFY, 5)?;
        assert_eq!(e[8], 3, "StateNotify from the core keyboard");
        touch_mapping(&ob)?;
        xkb_event(&cb, ev_b, XKB_MAP_NOTIFY, 5)?;
        ob.bell(0)?.check()?;
        xkb_event(&cb, ev_b, XKB_BELL_NOTIFY, 5)?;

        // Captured again on B: the same selections.
        let sb = winsession::capture(&cb, &winsession::CaptureOptions::default())?;
        assert_eq!(sb.xkb.and_then(|x| x.selections), Some(expected()));
        Ok(())
    })
    .unwrap();
}

/// Control: a client that never selected XKB events gets none on B after a regeneration of a
/// session without XKB selections but with XKB initialised (selections known to be empty).
#[test]
fn winsession_xkb_known_empty_selections_stay_empty() {
    with_timeout(60, || -> Result<()> {
        let a = Xvfb::start()?;
        let b = Xvfb::start()?;
        let ca = a.connect()?;
        let (major, _) = xkb(&ca)?;
        let mut use_ext = vec![major, 0];
        use_ext.extend(words(&[2, 1, 0]));
        ca.send_request_with_reply::<Raw>(&[IoSlice::new(&use_ext)], Vec::new())?
            .reply()?;
        let sa = winsession::capture(&ca, &winsession::CaptureOptions::default())?;
        assert_eq!(
            sa.xkb.clone().and_then(|x| x.selections),
            Some(winsession::XkbSelections::default())
        );
        let cb = b.connect()?;
        winsession::regenerate(&cb, &sa, &winsession::RegenOptions::default())?;
        let (_, ev_b) = xkb(&cb)?;
        let ob = b.connect()?;
        press_shift(&ob)?;
        assert!(
            no_xkb_event(&cb, ev_b, XKB_STATE_NOTIFY, 500)?,
            "StateNotify delivered to a client that never selected it"
        );
        Ok(())
    })
    .unwrap();
}

#[test]
fn winsession_xkb_from_a_protocol_1_1_server() {
    with_timeout(60, || -> Result<()> {
        // The server's extension behaves as GUIEVICT 1.1: capture drops the refused page, asks
        // again with the 1.1 flags and says the XKB selections are unknown.
        let a = Xvfb::start_with(XvfbOptions {
            env: vec![("GUIEVICT_XEXT_PROTOCOL_MINOR".into(), "1".into())],
            ..Default::default()
        })?;
        let ca = a.connect()?;
        select_like_a_toolkit(&ca)?;
        let s = winsession::capture(&ca, &winsession::CaptureOptions::default())?;
        let x = s.xkb.clone().ok_or_else(|| anyhow!("XKB not captured"))?;
        assert_eq!(x.selections, None);
        assert!(
            s.unknown
                .iter()
                .any(|u| u.starts_with("XKB event selections cannot be read back")),
            "{:?}",
            s.unknown
        );
        assert!(
            s.windows.iter().all(|w| w.background.is_some()),
            "window details from the extension"
        );
        // Regenerated with the toolkit default: StateNotify still arrives on B.
        let b = Xvfb::start()?;
        let cb = b.connect()?;
        winsession::regenerate(&cb, &s, &winsession::RegenOptions::default())?;
        let (_, ev_b) = xkb(&cb)?;
        let ob = b.connect()?;
        press_shift(&ob)?;
        xkb_event(&cb, ev_b, XKB_STATE_NOTIFY, 5)?;
        Ok(())
    })
    .unwrap();
}
