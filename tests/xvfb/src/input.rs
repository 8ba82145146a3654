//! XTEST input as a user's: typed text (shift where a keysym needs it), single keys, clicks,
//! and the pointer moved over a window first (no window manager: focus follows the pointer).
//! What flows through: characters and keysyms in, fake key and button events out to a display.

use crate::connect;
use anyhow::{Context, Result};
use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

/// Type `text` with XTEST, as if on a real keyboard (shift where the keysym needs it).
/// Puts the pointer over `window` first when given (no WM: focus follows the pointer).
pub fn xtest_type(display: &str, window: Option<u32>, text: &str) -> Result<()> {
    let conn = connect(display)?;
    if let Some(w) = window {
        pointer_into(&conn, w)?;
    }
    let setup = conn.setup();
    let (min, max) = (setup.min_keycode, setup.max_keycode);
    let map = conn.get_keyboard_mapping(min, max - min + 1)?.reply()?;
    let per = map.keysyms_per_keycode as usize;
    let shift = find_keycode(&map.keysyms, per, min, 0xffe1).context("no Shift_L keycode")?;
    for ch in text.chars() {
        let keysym = char_keysym(ch);
        let (code, shifted) = (0..2)
            .find_map(|level| {
                find_keycode_level(&map.keysyms, per, min, keysym, level).map(|c| (c, level == 1))
            })
            .with_context(|| format!("no keycode for {ch:?} (keysym {keysym:#x})"))?;
        if shifted {
            fake_key(&conn, shift, true)?;
        }
        fake_key(&conn, code, true)?;
        fake_key(&conn, code, false)?;
        if shifted {
            fake_key(&conn, shift, false)?;
        }
    }
    conn.sync()?;
    Ok(())
}

/// Press and release one key given by keysym (e.g. `0xff0d` Return).
pub fn xtest_key(display: &str, window: Option<u32>, keysym: u32) -> Result<()> {
    let conn = connect(display)?;
    if let Some(w) = window {
        pointer_into(&conn, w)?;
    }
    let setup = conn.setup();
    let (min, max) = (setup.min_keycode, setup.max_keycode);
    let map = conn.get_keyboard_mapping(min, max - min + 1)?.reply()?;
    let code = find_keycode(&map.keysyms, map.keysyms_per_keycode as usize, min, keysym)
        .with_context(|| format!("no keycode for keysym {keysym:#x}"))?;
    fake_key(&conn, code, true)?;
    fake_key(&conn, code, false)?;
    conn.sync()?;
    Ok(())
}

/// Click `button` at (x, y) relative to `window`.
pub fn xtest_click(display: &str, window: u32, x: i16, y: i16, button: u8) -> Result<()> {
    let conn = connect(display)?;
    let root = conn.setup().roots[0].root;
    let t = conn.translate_coordinates(window, root, x, y)?.reply()?;
    conn.xtest_fake_input(xproto::MOTION_NOTIFY_EVENT, 0, 0, root, t.dst_x, t.dst_y, 0)?;
    conn.xtest_fake_input(xproto::BUTTON_PRESS_EVENT, button, 0, root, 0, 0, 0)?;
    conn.xtest_fake_input(xproto::BUTTON_RELEASE_EVENT, button, 0, root, 0, 0, 0)?;
    conn.sync()?;
    Ok(())
}

fn pointer_into(conn: &RustConnection, window: u32) -> Result<()> {
    let root = conn.setup().roots[0].root;
    let g = conn.get_geometry(window)?.reply()?;
    let t = conn
        .translate_coordinates(window, root, (g.width / 2) as i16, (g.height / 2) as i16)?
        .reply()?;
    conn.xtest_fake_input(xproto::MOTION_NOTIFY_EVENT, 0, 0, root, t.dst_x, t.dst_y, 0)?;
    conn.sync()?;
    Ok(())
}

fn fake_key(conn: &RustConnection, code: u8, press: bool) -> Result<()> {
    let t = if press {
        xproto::KEY_PRESS_EVENT
    } else {
        xproto::KEY_RELEASE_EVENT
    };
    conn.xtest_fake_input(t, code, 0, x11rb::NONE, 0, 0, 0)?;
    Ok(())
}

fn find_keycode(keysyms: &[u32], per: usize, min: u8, keysym: u32) -> Option<u8> {
    (0..per).find_map(|level| find_keycode_level(keysyms, per, min, keysym, level))
}

fn find_keycode_level(
    keysyms: &[u32],
    per: usize,
    min: u8,
    keysym: u32,
    level: usize,
) -> Option<u8> {
    if per == 0 || level >= per {
        return None;
    }
    keysyms
        .chunks(per)
        .position(|c| c[level] == keysym)
        .map(|i| min + i as u8)
}

/// Keysym of a character: Latin-1 maps directly, a few controls are special.
fn char_keysym(ch: char) -> u32 {
    match ch {
        '\n' => 0xff0d,
        '\t' => 0xff09,
        c if (c as u32) < 0x100 => c as u32,
        c => 0x0100_0000 | c as u32,
    }
}
