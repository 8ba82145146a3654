//! Issue 13: an application holding an active pointer grab when asked to move. xterm's
//! Ctrl+Button1 menu grabs the pointer while the button is held; the grab cannot be recreated
//! on the target (it belongs to a button held on A), so `guievict move` must refuse up front
//! naming it — never move and report success with the grab silently gone — and leave xterm
//! where it is. Once the button is released the same move goes through and xterm types on B.
//! What flows through: XTEST input on A, the CLI's exit status and stderr, window lists.
use std::process::Command;
use std::time::{Duration, Instant};
use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use x11rb::protocol::xtest::ConnectionExt as _;
use xvfb_harness::*;

/// Press (or release) Ctrl and Button1 over (x, y) of `window` with XTEST.
fn ctrl_button1(display: &str, window: u32, press: bool) {
    let c = connect(display).expect("connect");
    let root = c.setup().roots[0].root;
    let setup = c.setup();
    let (min, max) = (setup.min_keycode, setup.max_keycode);
    let map = c
        .get_keyboard_mapping(min, max - min + 1)
        .expect("request")
        .reply()
        .expect("keyboard mapping");
    let per = usize::from(map.keysyms_per_keycode);
    let ctrl = map
        .keysyms
        .chunks(per.max(1))
        .position(|k| k.first() == Some(&0xffe3))
        .map(|i| min + i as u8)
        .expect("a Control_L keycode");
    let t = c
        .translate_coordinates(window, root, 40, 40)
        .expect("request")
        .reply()
        .expect("translate");
    let (key, button) = if press {
        (xproto::KEY_PRESS_EVENT, xproto::BUTTON_PRESS_EVENT)
    } else {
        (xproto::KEY_RELEASE_EVENT, xproto::BUTTON_RELEASE_EVENT)
    };
    c.xtest_fake_input(xproto::MOTION_NOTIFY_EVENT, 0, 0, root, t.dst_x, t.dst_y, 0)
        .expect("motion");
    if press {
        c.xtest_fake_input(key, ctrl, 0, x11rb::NONE, 0, 0, 0)
            .expect("ctrl");
        c.xtest_fake_input(button, 1, 0, root, 0, 0, 0)
            .expect("button");
    } else {
        c.xtest_fake_input(button, 1, 0, root, 0, 0, 0)
            .expect("button");
        c.xtest_fake_input(key, ctrl, 0, x11rb::NONE, 0, 0, 0)
            .expect("ctrl");
    }
    c.get_input_focus().expect("request").reply().expect("sync");
}

/// Whether some client holds the pointer grabbed: a GrabPointer of another client fails
/// with AlreadyGrabbed.
fn pointer_grabbed(display: &str) -> bool {
    let c = connect(display).expect("connect");
    let root = c.setup().roots[0].root;
    let r = c
        .grab_pointer(
            false,
            root,
            xproto::EventMask::NO_EVENT,
            xproto::GrabMode::ASYNC,
            xproto::GrabMode::ASYNC,
            x11rb::NONE,
            x11rb::NONE,
            x11rb::CURRENT_TIME,
        )
        .expect("request")
        .reply()
        .expect("GrabPointer");
    let _ = c.ungrab_pointer(x11rb::CURRENT_TIME);
    let _ = c.get_input_focus().map(|c| c.reply());
    r.status == xproto::GrabStatus::ALREADY_GRABBED
}

#[test]
fn a_move_during_an_active_pointer_grab_is_refused_naming_it() {
    with_timeout(60, || {
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let mut xterm = App::spawn_env(
            &a.display,
            &["xterm", "-geometry", "80x24+0+0"],
            &[("SHELL", "/bin/sh")],
        )
        .expect("xterm");
        let w = wait_for_window(&a.display, xterm.pid, Duration::from_secs(20)).expect("window");
        let p = xterm.pid.to_string();
        guievict_json(&["hijack", &p]).expect("hijack");

        ctrl_button1(&a.display, w, true);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pointer_grabbed(&a.display) {
            assert!(
                Instant::now() < deadline,
                "xterm's menu never grabbed the pointer"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = Command::new(guievict_bin())
            .args(["move", "--pid", &p, &b.display])
            .output()
            .expect("guievict move");
        let err = String::from_utf8_lossy(&out.stderr);
        eprintln!("refused: {err}");
        assert_eq!(out.status.code(), Some(1), "move not refused: {err}");
        assert!(
            err.contains("active pointer grab"),
            "the refusal does not name the grab: {err}"
        );
        assert!(
            mapped_toplevels(&b.display).is_ok_and(|ws| ws.is_empty()),
            "a refused move left windows on B"
        );
        assert!(
            windows_of_pid(&a.display, xterm.pid).is_ok_and(|ws| ws.contains(&w)),
            "xterm left A"
        );

        ctrl_button1(&a.display, w, false);
        let deadline = Instant::now() + Duration::from_secs(10);
        while pointer_grabbed(&a.display) {
            assert!(Instant::now() < deadline, "the grab never ended");
            std::thread::sleep(Duration::from_millis(100));
        }
        guievict_json(&["move", "--pid", &p, &b.display]).expect("move after the release");
        let wb =
            wait_for_window(&b.display, xterm.pid, Duration::from_secs(10)).expect("xterm on B");
        let mark = artifacts_dir().join(format!("grab-{}.txt", std::process::id()));
        let _ = std::fs::remove_file(&mark);
        xtest_type(
            &b.display,
            Some(wb),
            &format!("echo typed >{}\n", mark.display()),
        )
        .expect("type on B");
        wait_for_file(&mark, "typed", Duration::from_secs(15));
        assert!(xterm.alive(), "xterm died");
    });
}
