//! A real XKB toolkit moved to a server with another keyboard layout: Qt5's line edit example
//! (xkbcommon-x11: it reads the keymap through XKB and ignores core MappingNotify) runs on A
//! (us layout) and is moved to B (`setxkbmap -layout de`: y and z swapped). "zy" typed on B by
//! keysym must arrive as "zy": the app has to reload its keymap, which it does on the XKB
//! NewKeyboardNotify the attach sends it. The check is exact: the line edit's text is copied
//! (Ctrl+A, Ctrl+C) and read back from B's CLIPBOARD by a test client. Then back to A (us
//! layout): "yz" typed there must arrive as "yz".

use anyhow::{anyhow, bail, Result};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use x11rb::protocol::Event;
use x11rb::wrapper::ConnectionExt as _;
use xvfb_harness::*;

const QT_LINEEDITS: &str =
    "/usr/lib/x86_64-linux-gnu/qt5/examples/widgets/widgets/lineedits/lineedits";

/// Where the first line edit ("Echo" group, normal echo mode) of the Qt example sits.
const QT_FIRST_EDIT: (i16, i16) = (128, 86);

const XK_CONTROL_L: u32 = 0xffe3;
const XK_A: u32 = 0x61;
const XK_C: u32 = 0x63;
const XK_END: u32 = 0xff57;
const XK_BACKSPACE: u32 = 0xff08;
const XK_SHIFT_L: u32 = 0xffe1;

fn have(program: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
        || Path::new(program).is_file();
    if !found {
        skip(&format!(
            "{program} is not installed (scripts/setup-debian.sh installs it)"
        ));
    }
    found
}

/// Give `window` the keyboard focus, as a window manager would (Qt takes keys only after a
/// real FocusIn).
fn focus(display: &str, window: u32) -> Result<()> {
    let conn = connect(display)?;
    conn.set_input_focus(xproto::InputFocus::PARENT, window, x11rb::CURRENT_TIME)?;
    conn.sync()?;
    std::thread::sleep(Duration::from_millis(200));
    Ok(())
}

/// Press `keysyms` together and release them, by keysym on `display`'s own keymap.
fn chord(display: &str, window: u32, keysyms: &[u32]) -> Result<()> {
    use x11rb::protocol::xtest::ConnectionExt as _;
    let conn = connect(display)?;
    let root = conn.setup().roots[0].root;
    let g = conn.get_geometry(window)?.reply()?;
    let t = conn
        .translate_coordinates(window, root, (g.width / 2) as i16, (g.height / 2) as i16)?
        .reply()?;
    conn.xtest_fake_input(6, 0, 0, root, t.dst_x, t.dst_y, 0)?;
    let (min, max) = (conn.setup().min_keycode, conn.setup().max_keycode);
    let map = conn.get_keyboard_mapping(min, max - min + 1)?.reply()?;
    let per = usize::from(map.keysyms_per_keycode).max(1);
    let mut codes = Vec::new();
    for &ks in keysyms {
        let i = map
            .keysyms
            .chunks(per)
            .position(|c| c.first() == Some(&ks) || c.contains(&ks))
            .ok_or_else(|| anyhow!("no keycode for keysym {ks:#x}"))?;
        codes.push(min + i as u8);
    }
    for &c in &codes {
        conn.xtest_fake_input(2, c, 0, root, 0, 0, 0)?;
    }
    for &c in codes.iter().rev() {
        conn.xtest_fake_input(3, c, 0, root, 0, 0, 0)?;
    }
    conn.sync()?;
    std::thread::sleep(Duration::from_millis(100));
    Ok(())
}

/// The text of `selection` on `display` as UTF8_STRING, asked for by a client of our own.
fn read_selection(display: &str, selection: &str) -> Result<String> {
    let conn = connect(display)?;
    let screen = &conn.setup().roots[0];
    let w = conn.generate_id()?;
    conn.create_window(
        0,
        w,
        screen.root,
        0,
        0,
        1,
        1,
        0,
        xproto::WindowClass::INPUT_ONLY,
        0,
        &xproto::CreateWindowAux::new(),
    )?;
    let atom =
        |n: &str| -> Result<u32> { Ok(conn.intern_atom(false, n.as_bytes())?.reply()?.atom) };
    let (sel, utf8, prop) = (
        atom(selection)?,
        atom("UTF8_STRING")?,
        atom("GUIEVICT_TEST_SEL")?,
    );
    conn.convert_selection(w, sel, utf8, prop, x11rb::CURRENT_TIME)?;
    conn.flush()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(Event::SelectionNotify(e)) = conn.poll_for_event()? {
            if e.property == x11rb::NONE {
                bail!("{selection}: the owner refused UTF8_STRING");
            }
            let r = conn
                .get_property(true, w, prop, xproto::AtomEnum::ANY, 0, 1 << 20)?
                .reply()?;
            return Ok(String::from_utf8_lossy(&r.value).into_owned());
        }
        if Instant::now() > deadline {
            bail!("no SelectionNotify for {selection} within 5 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Clear the first line edit, type `text` into it by keysym, copy it and read it back.
fn type_and_read(display: &str, window: u32, text: &str) -> Result<String> {
    focus(display, window)?;
    xtest_click(display, window, QT_FIRST_EDIT.0, QT_FIRST_EDIT.1, 1)?;
    std::thread::sleep(Duration::from_millis(200));
    chord(display, window, &[XK_END])?;
    for _ in 0..12 {
        chord(display, window, &[XK_BACKSPACE])?;
    }
    xtest_type(display, Some(window), text)?;
    std::thread::sleep(Duration::from_millis(300));
    chord(display, window, &[XK_CONTROL_L, XK_A])?;
    chord(display, window, &[XK_CONTROL_L, XK_C])?;
    std::thread::sleep(Duration::from_millis(300));
    read_selection(display, "CLIPBOARD")
}

#[test]
fn keymap_differs_on_target_qt5_types_right() {
    if !have(QT_LINEEDITS) || !have("setxkbmap") {
        return;
    }
    with_timeout(150, || {
        let opts = XvfbOptions {
            screen: "1280x1024x24".into(),
            ..Default::default()
        };
        let a = Xvfb::start_with(opts.clone()).expect("Xvfb A");
        let b = Xvfb::start_with(opts).expect("Xvfb B");
        let st = Command::new("setxkbmap")
            .args(["-display", &b.display, "-layout", "de"])
            .status()
            .expect("setxkbmap");
        assert!(st.success(), "setxkbmap -layout de failed on B");
        let mut app = App::spawn_env(
            &a.display,
            &[QT_LINEEDITS],
            &[("QT_QPA_PLATFORM", "xcb"), ("NO_AT_BRIDGE", "1")],
        )
        .expect("Qt5 lineedits example");
        // On A (us layout) the check itself works.
        let on_a = type_and_read(&a.display, app.window, "zy").expect("type on A");
        assert_eq!(on_a, "zy", "typed on A before any move");

        // A first XTEST key on B makes its XTEST keyboard the core keyboard's current slave;
        // the server then sends XKB clients a NewKeyboardNotify of its own. Done before the
        // move, so that only the attach can tell the app about B's keymap.
        xtest_key(&b.display, None, XK_SHIFT_L).expect("Shift on B");
        let pid = app.pid.to_string();
        let report = guievict_json(&["move", "--pid", &pid, &b.display]).expect("move A→B");
        eprintln!("move report: {report}");
        let wb = wait_for_window(&b.display, app.pid, Duration::from_secs(10)).expect("on B");
        assert!(app.alive(), "Qt5 died after the move");
        std::thread::sleep(Duration::from_millis(500));
        let on_b = type_and_read(&b.display, wb, "zy").expect("type on B");
        assert_eq!(
            on_b, "zy",
            "typed \"zy\" by keysym on B (de layout) — the app must use B's keymap"
        );

        // And back to A (us layout again).
        guievict_json(&["move", "--pid", &pid, &a.display]).expect("move B→A");
        let wa = wait_for_window(&a.display, app.pid, Duration::from_secs(10)).expect("on A");
        std::thread::sleep(Duration::from_millis(500));
        let back = type_and_read(&a.display, wa, "yz").expect("type back on A");
        assert_eq!(back, "yz", "typed \"yz\" back on A (us layout)");
        assert!(app.alive(), "Qt5 died");
    });
}
