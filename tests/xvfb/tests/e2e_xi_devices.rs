//! XInput device IDs that differ between servers. An XI2 app (gtk3-widget-factory) learns the
//! device IDs of server A at start-up (XIQueryDevice) and later meets only IDs in events and
//! names them in requests. Server B numbers the same devices otherwise: it got an extra master
//! device pair before the one the input comes from. After a move A→B, guimux must turn B's IDs
//! into A's in every event and reply (and back in requests), or GTK drops the input as coming
//! from unknown devices.
//!
//! The app then moves on to C (a third numbering) and back to A, so the device maps are
//! composed across moves.
//!
//! Input is driven through a second master pointer/keyboard pair ("Second"), which exists on
//! both servers but with other IDs: the test's input client makes that pair its ClientPointer,
//! so its XTEST input comes from "Second XTEST pointer/keyboard" (XTEST picks the requesting
//! client's devices).
use anyhow::{anyhow, Context as _, Result};
use std::path::Path;
use std::time::{Duration, Instant};
use x11rb::connection::Connection as _;
use x11rb::protocol::xinput::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use xvfb_harness::*;

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

/// Add a master device pair named `name` (XIChangeHierarchy AddMaster): the server makes
/// "<name> pointer", "<name> keyboard" and their XTEST slaves, with the next free device IDs.
fn add_master(conn: &RustConnection, name: &str) -> Result<()> {
    let n = name.len();
    let change = xinput::HierarchyChange {
        len: ((8 + n.div_ceil(4) * 4) / 4) as u16,
        data: xinput::HierarchyChangeData::AddMaster(xinput::HierarchyChangeDataAddMaster {
            send_core: true,
            enable: true,
            name: name.as_bytes().to_vec(),
        }),
    };
    conn.xinput_xi_change_hierarchy(&[change])?.check()?;
    Ok(())
}

fn device_id(conn: &RustConnection, name: &str) -> Result<u16> {
    let r = conn.xinput_xi_query_device(0u16)?.reply()?;
    r.infos
        .iter()
        .find(|d| d.name == name.as_bytes())
        .map(|d| d.deviceid)
        .ok_or_else(|| anyhow!("no device {name:?}"))
}

/// A server whose "Second" master pair has the IDs `second` (pointer, XTEST pointer).
struct Server {
    x: Xvfb,
    /// Keeps the master devices' creator connected (devices outlive it anyway).
    _admin: RustConnection,
    second: (u16, u16),
}

/// Start a server and add the master pairs `masters` in order.
fn server(masters: &[&str]) -> Result<Server> {
    // Large enough for gtk3-widget-factory's 1366×741 window.
    let x = Xvfb::start_with(XvfbOptions {
        screen: "1600x1200x24".into(),
        ..Default::default()
    })?;
    let admin = x.connect()?;
    admin.xinput_xi_query_version(2, 2)?.reply()?;
    for m in masters {
        add_master(&admin, m)?;
    }
    let second = (
        device_id(&admin, "Second pointer")?,
        device_id(&admin, "Second XTEST pointer")?,
    );
    Ok(Server {
        x,
        _admin: admin,
        second,
    })
}

/// An input client whose XTEST input comes from the "Second" master pair.
fn second_seat(display: &str) -> Result<RustConnection> {
    let conn = connect(display)?;
    conn.xinput_xi_query_version(2, 2)?.reply()?;
    let pointer = device_id(&conn, "Second pointer")?;
    conn.xinput_xi_set_client_pointer(x11rb::NONE, pointer)?
        .check()?;
    Ok(conn)
}

/// Move the Second pointer into the middle of `window` and press `keysyms` together, through
/// the Second keyboard.
fn second_chord(display: &str, window: u32, keysyms: &[u32]) -> Result<()> {
    let conn = second_seat(display)?;
    let root = conn.setup().roots[0].root;
    let g = conn.get_geometry(window)?.reply()?;
    let t = conn
        .translate_coordinates(window, root, (g.width / 2) as i16, (g.height / 2) as i16)?
        .reply()?;
    conn.xtest_fake_input(xproto::MOTION_NOTIFY_EVENT, 0, 0, root, t.dst_x, t.dst_y, 0)?;
    let (min, max) = (conn.setup().min_keycode, conn.setup().max_keycode);
    let map = conn.get_keyboard_mapping(min, max - min + 1)?.reply()?;
    let per = usize::from(map.keysyms_per_keycode).max(1);
    let code = |ks: u32| -> Result<u8> {
        map.keysyms
            .chunks(per)
            .position(|c| c.contains(&ks))
            .map(|i| min + i as u8)
            .ok_or_else(|| anyhow!("no keycode for keysym {ks:#x}"))
    };
    let codes = keysyms
        .iter()
        .map(|&k| code(k))
        .collect::<Result<Vec<_>>>()?;
    for &c in &codes {
        conn.xtest_fake_input(xproto::KEY_PRESS_EVENT, c, 0, root, 0, 0, 0)?;
    }
    for &c in codes.iter().rev() {
        conn.xtest_fake_input(xproto::KEY_RELEASE_EVENT, c, 0, root, 0, 0, 0)?;
    }
    conn.sync()?;
    Ok(())
}

/// Wait until two screenshots taken 300 ms apart are equal (the app finished drawing) and show
/// more than one colour (a window the app has not painted yet after a move is uniform, and
/// stays so for a while on a loaded machine).
fn stable_shot(display: &str, window: u32, secs: u64) -> Image {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = screenshot(display, window).expect("screenshot");
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = screenshot(display, window).expect("screenshot");
        let painted = now.rgb.chunks_exact(3).any(|p| p != &now.rgb[..3]);
        if painted && (now.width, now.height) == (last.width, last.height) && now.rgb == last.rgb {
            return now;
        }
        if Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

const XK_TAB: u32 = 0xff09;

/// Keyboard input from the Second pair reaches the app: three Tabs move the keyboard focus,
/// which GTK redraws.
fn second_tabs_change_picture(app: &mut App, display: &str, window: u32, step: &str) {
    let before = stable_shot(display, window, 5);
    for _ in 0..3 {
        second_chord(display, window, &[XK_TAB]).expect("Tab through the Second keyboard");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        app.alive(),
        "{step}: gtk3-widget-factory died from XI2 input of the Second devices"
    );
    let after = stable_shot(display, window, 5);
    assert!(
        before.rgb != after.rgb,
        "{step}: three Tab presses from the Second keyboard did not change the picture: \
         XI2 input with this server's device IDs does not reach the app"
    );
}

#[test]
fn gtk3_input_from_devices_numbered_otherwise_on_the_target() {
    if !have("gtk3-widget-factory") {
        return;
    }
    with_timeout(300, || -> Result<()> {
        // A: Second = 8..11. B: Filler = 8..11, Second = 12..15. C: Filler, Extra (12..15,
        // B's Second numbers), Second = 16..19.
        let a = server(&["Second"])?;
        let b = server(&["Filler", "Second"])?;
        let c = server(&["Filler", "Extra", "Second"])?;
        eprintln!(
            "Second pointer/XTEST pointer: A {:?}, B {:?}, C {:?}",
            a.second, b.second, c.second
        );
        assert!(
            a.second != b.second && b.second != c.second && a.second != c.second,
            "the test needs differing device IDs"
        );
        let mut app = App::spawn_env(
            &a.x.display,
            &["gtk3-widget-factory"],
            &[("GTK_THEME", "Adwaita"), ("NO_AT_BRIDGE", "1")],
        )
        .context("gtk3-widget-factory")?;
        // The input path works on A before any move.
        let w = app.window;
        second_tabs_change_picture(&mut app, &a.x.display, w, "a-before");
        let mut at = (a.x.display.clone(), w);
        for (to, name) in [(&b, "b"), (&c, "c"), (&a, "back-on-a")] {
            let before = stable_shot(&at.0, at.1, 5);
            guievict_json(&["move", "--pid", &app.pid.to_string(), &to.x.display])
                .with_context(|| format!("move to {name}"))?;
            let w = wait_for_window(&to.x.display, app.pid, Duration::from_secs(10))?;
            let now = stable_shot(&to.x.display, w, 15);
            assert_same_picture(&before, &now, &format!("xi-devices-gtk3-{name}"));
            second_tabs_change_picture(&mut app, &to.x.display, w, name);
            at = (to.x.display.clone(), w);
        }
        Ok(())
    })
    .unwrap();
}
