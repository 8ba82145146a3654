//! Modern toolkits moved between servers while running: Xft xterm (RENDER glyph sets), Tk,
//! GTK3 and Qt5. Each app is hijacked on server A, moved to B and back to A; every time its
//! top-level window must look the same (≥ 99 % equal pixels) and input must still reach it.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use xvfb_harness::*;

/// Whether a program is installed (else the test says SKIP and why).
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

/// Wait until two screenshots taken `gap` apart are equal (the app finished drawing).
fn stable_shot(display: &str, window: u32, secs: u64) -> Image {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = screenshot(display, window).expect("screenshot");
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = screenshot(display, window).expect("screenshot");
        if now.width == last.width && now.height == last.height && now.rgb == last.rgb {
            return now;
        }
        if Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// Two servers, B's atoms and IDs diverged from A's by another client.
struct Pair {
    a: Xvfb,
    b: Xvfb,
    _other: x11rb::rust_connection::RustConnection,
}

fn pair() -> Pair {
    pair_with(&[])
}

/// Like [`pair`], B started with these extra arguments (e.g. `-extension MIT-SHM`).
fn pair_with(b_args: &[&str]) -> Pair {
    // Large enough for gtk3-widget-factory's 1366×741 window.
    let opts = XvfbOptions {
        screen: "1600x1200x24".into(),
        ..Default::default()
    };
    let a = Xvfb::start_with(opts.clone()).expect("Xvfb A");
    let b = Xvfb::start_with(XvfbOptions {
        extra_args: b_args.iter().map(|a| a.to_string()).collect(),
        ..opts
    })
    .expect("Xvfb B");
    let other = b.connect().expect("other client");
    use x11rb::protocol::xproto::ConnectionExt as _;
    for i in 0..50 {
        other
            .intern_atom(false, format!("GUIEVICT_TEST_PAD_{i}").as_bytes())
            .expect("intern")
            .reply()
            .expect("intern reply");
    }
    Pair {
        a,
        b,
        _other: other,
    }
}

/// Move `app` from A to B and back, comparing with `before` each time; `input` is run on each
/// server after the move with (display, window, step name).
fn round_trip(p: &Pair, app: &mut App, name: &str, input: &dyn Fn(&str, u32, &str)) {
    round_trip_losing(p, app, name, input, &[])
}

/// `guievict move`: it must succeed exactly (exit 0), or — where `allowed` names the only
/// losses this app is known to have — exit 3 naming just those on stderr.
fn move_app(pid: &str, to: &str, allowed: &[&str], what: &str) {
    let out = std::process::Command::new(guievict_bin())
        .args(["move", "--pid", pid, to])
        .output()
        .expect("guievict move");
    let err = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(3) if !allowed.is_empty() => {
            for l in err.lines().filter(|l| l.contains("not carried exactly: ")) {
                assert!(
                    allowed.iter().any(|a| l.contains(a)),
                    "{what}: an unexpected loss: {l}"
                );
            }
        }
        c => panic!("{what}: guievict move exited {c:?}: {err}"),
    }
}

/// [`round_trip`] for an app whose moves are known to lose what `allowed` names (each move must
/// then exit 3 naming only those).
fn round_trip_losing(
    p: &Pair,
    app: &mut App,
    name: &str,
    input: &dyn Fn(&str, u32, &str),
    allowed: &[&str],
) {
    let before = stable_shot(&p.a.display, app.window, 5);
    let pid = app.pid.to_string();
    move_app(&pid, &p.b.display, allowed, &format!("{name} A→B"));
    let wb = wait_for_window(&p.b.display, app.pid, Duration::from_secs(10)).expect("window on B");
    let on_b = stable_shot(&p.b.display, wb, 5);
    assert_same_picture(&before, &on_b, &format!("{name}-on-b"));
    assert!(
        windows_of_pid(&p.a.display, app.pid).unwrap().is_empty(),
        "{name}: windows left on A"
    );
    assert!(app.alive(), "{name} died after the first move");
    input(&p.b.display, wb, "b");
    assert!(app.alive(), "{name} died from input on B");
    // Input changed the picture: the reference for the way back is B's picture now.
    let before_back = stable_shot(&p.b.display, wb, 5);
    move_app(&pid, &p.a.display, allowed, &format!("{name} B→A"));
    let wa = wait_for_window(&p.a.display, app.pid, Duration::from_secs(10)).expect("window on A");
    let back = stable_shot(&p.a.display, wa, 5);
    assert_same_picture(&before_back, &back, &format!("{name}-back-on-a"));
    assert!(
        windows_of_pid(&p.b.display, app.pid).unwrap().is_empty(),
        "{name}: windows left on B"
    );
    assert!(app.alive(), "{name} died after the second move");
    input(&p.a.display, wa, "a");
    assert!(app.alive(), "{name} died from input back on A");
}

fn scratch(name: &str) -> PathBuf {
    let d = artifacts_dir().join(format!("toolkits-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

#[test]
fn xft_xterm_round_trip_and_typing() {
    if !have("xterm") {
        return;
    }
    with_timeout(120, || {
        let p = pair();
        let dir = scratch("xterm");
        let mut app = App::spawn(
            &p.a.display,
            &[
                "xterm",
                "-fa",
                "Monospace",
                "-fs",
                "10",
                "-geometry",
                "60x12+0+0",
                "-e",
                "sh",
            ],
        )
        .expect("xterm -fa Monospace");
        // Xft text: the shell's prompt and a line of output drawn with RENDER glyphs.
        let f0 = dir.join("a0");
        xtest_type(
            &p.a.display,
            Some(app.window),
            &format!(
                "echo 'Xft: The quick brown fox' > {} ; ls /\n",
                f0.display()
            ),
        )
        .unwrap();
        wait_for_file(&f0, "Xft: The quick brown fox", Duration::from_secs(10));
        let dir2 = dir.clone();
        round_trip(&p, &mut app, "xft-xterm", &move |display, window, step| {
            let f = dir2.join(step);
            xtest_type(
                display,
                Some(window),
                &format!("echo typed-on-{step} > {}\n", f.display()),
            )
            .unwrap();
            wait_for_file(&f, &format!("typed-on-{step}"), Duration::from_secs(10));
        });
    });
}

/// A small Tk program: an entry (Return saves its text to a file and clears it), a button and a
/// text widget. Insertion cursors do not blink, so that screenshots are stable.
const TK_SCRIPT: &str = r#"
set out [lindex $argv 0]
wm geometry . 320x260+0+0
wm title . "guievict Tk"
entry .e -textvariable v -insertofftime 0 -width 30
button .b -text "Save" -command {
    set f [open $out.tmp w]; puts $f $v; close $f; file rename -force $out.tmp $out; set v ""
}
text .t -height 6 -width 36 -insertofftime 0
.t insert end "Tk text widget\nsecond line\n\u00e9t\u00e9 \u2192 unicode"
label .l -text "Label: Tk [info patchlevel]"
pack .e .b .t .l -padx 4 -pady 4
bind .e <Return> { .b invoke }
focus .e
"#;

#[test]
fn tk_round_trip_and_typing() {
    if !have("wish") {
        return;
    }
    with_timeout(120, || {
        let p = pair();
        let dir = scratch("tk");
        let script = dir.join("demo.tcl");
        std::fs::write(&script, TK_SCRIPT).expect("write script");
        let out = dir.join("saved");
        let mut app = App::spawn(
            &p.a.display,
            &[
                "wish",
                script.to_str().expect("utf-8 path"),
                out.to_str().expect("utf-8 path"),
            ],
        )
        .expect("wish");
        xtest_type(&p.a.display, Some(app.window), "on-a\n").unwrap();
        wait_for_file(&out, "on-a", Duration::from_secs(10));
        let out2 = out.clone();
        // Xft's solid-colour pictures outlive the 1×1 pixmaps they were made on: the GUIEVICT
        // extension (1.8) reads those pixels, so the moves are exact (exit 0).
        round_trip(&p, &mut app, "tk", &move |display, window, step| {
            xtest_type(display, Some(window), &format!("typed-{step}\n")).unwrap();
            wait_for_file(&out2, &format!("typed-{step}"), Duration::from_secs(10));
        });
    });
}

/// Press `keysyms` together (in order) and release them (in reverse) with XTEST, the pointer
/// over `window`.
fn xtest_chord(display: &str, window: u32, keysyms: &[u32]) -> anyhow::Result<()> {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::ConnectionExt as _;
    use x11rb::protocol::xtest::ConnectionExt as _;
    use x11rb::wrapper::ConnectionExt as _;
    let conn = xvfb_harness::connect(display)?;
    let root = conn.setup().roots[0].root;
    let g = conn.get_geometry(window)?.reply()?;
    let t = conn
        .translate_coordinates(window, root, (g.width / 2) as i16, (g.height / 2) as i16)?
        .reply()?;
    conn.xtest_fake_input(6, 0, 0, root, t.dst_x, t.dst_y, 0)?; // MotionNotify
    let (min, max) = (conn.setup().min_keycode, conn.setup().max_keycode);
    let map = conn.get_keyboard_mapping(min, max - min + 1)?.reply()?;
    let per = usize::from(map.keysyms_per_keycode);
    let code = |ks: u32| -> anyhow::Result<u8> {
        map.keysyms
            .chunks(per.max(1))
            .position(|c| c.contains(&ks))
            .map(|i| min + i as u8)
            .ok_or_else(|| anyhow::anyhow!("no keycode for keysym {ks:#x}"))
    };
    let codes = keysyms
        .iter()
        .map(|&k| code(k))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for &c in &codes {
        conn.xtest_fake_input(2, c, 0, root, 0, 0, 0)?; // KeyPress
    }
    for &c in codes.iter().rev() {
        conn.xtest_fake_input(3, c, 0, root, 0, 0, 0)?; // KeyRelease
    }
    conn.sync()?;
    Ok(())
}

const XK_TAB: u32 = 0xff09;
const XK_CONTROL_L: u32 = 0xffe3;
const XK_Q: u32 = 0x71;

/// Keyboard input reaches the app: Tab moves the keyboard focus, which the app redraws.
fn tab_changes_picture(display: &str, window: u32, step: &str) {
    let before = stable_shot(display, window, 5);
    for _ in 0..3 {
        xtest_chord(display, window, &[XK_TAB]).expect("Tab");
    }
    let after = stable_shot(display, window, 5);
    assert!(
        before.rgb != after.rgb,
        "{step}: three Tab presses did not change the picture: keyboard input does not reach the app"
    );
}

/// Ctrl+Q quits the app: it must exit within 10 s.
fn ctrl_q_quits(display: &str, window: u32, app: &mut App, name: &str) {
    xtest_chord(display, window, &[XK_CONTROL_L, XK_Q]).expect("Ctrl+Q");
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.alive() {
        assert!(
            Instant::now() < deadline,
            "{name}: Ctrl+Q after the moves did not quit it"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn gtk3_widget_factory_round_trip_and_input() {
    if !have("gtk3-widget-factory") {
        return;
    }
    with_timeout(150, || {
        let p = pair();
        let mut app = App::spawn_env(
            &p.a.display,
            &["gtk3-widget-factory"],
            &[("GTK_THEME", "Adwaita"), ("NO_AT_BRIDGE", "1")],
        )
        .expect("gtk3-widget-factory");
        round_trip(&p, &mut app, "gtk3", &tab_changes_picture);
        let w = wait_for_window(&p.a.display, app.pid, Duration::from_secs(5)).expect("window");
        ctrl_q_quits(&p.a.display, w, &mut app, "gtk3-widget-factory");
    });
}

const QT_LINEEDITS: &str =
    "/usr/lib/x86_64-linux-gnu/qt5/examples/widgets/widgets/lineedits/lineedits";

/// Where the first line edit ("Echo" group) of the Qt example sits in its window.
const QT_FIRST_EDIT: (i16, i16) = (128, 86);

/// Give `window` the keyboard focus, as a window manager would on a click (Qt only takes keys
/// after a real FocusIn; without a WM nobody sends one).
fn focus(display: &str, window: u32) {
    use x11rb::protocol::xproto::{ConnectionExt as _, InputFocus};
    use x11rb::wrapper::ConnectionExt as _;
    let conn = xvfb_harness::connect(display).expect("connect");
    conn.set_input_focus(InputFocus::PARENT, window, x11rb::CURRENT_TIME)
        .expect("SetInputFocus");
    conn.sync().expect("sync");
    std::thread::sleep(Duration::from_millis(200));
}

/// Typing into the Qt line edit changes the picture (after the focus a WM would give it).
fn qt_typing_changes_picture(display: &str, window: u32, step: &str) {
    focus(display, window);
    xtest_click(display, window, QT_FIRST_EDIT.0, QT_FIRST_EDIT.1, 1).expect("click");
    let before = stable_shot(display, window, 5);
    xtest_type(display, Some(window), &format!(" {step}")).expect("type");
    let after = stable_shot(display, window, 5);
    assert!(
        before.rgb != after.rgb,
        "{step}: typing did not change the Qt line edit: keyboard input does not reach it"
    );
}

#[test]
fn qt5_lineedits_round_trip_and_typing() {
    if !have(QT_LINEEDITS) {
        return;
    }
    with_timeout(150, || {
        let p = pair();
        let mut app = App::spawn_env(
            &p.a.display,
            &[QT_LINEEDITS],
            &[("QT_QPA_PLATFORM", "xcb"), ("NO_AT_BRIDGE", "1")],
        )
        .expect("Qt5 lineedits example");
        qt_typing_changes_picture(&p.a.display, app.window, "on-a");
        round_trip(&p, &mut app, "qt5", &qt_typing_changes_picture);
    });
}

/// B cannot share memory (no MIT-SHM): Qt5 paints through ShmPutImage into the segments the
/// server created for it (ShmCreateSegment); guimux converts those requests on B.
#[test]
fn qt5_on_a_target_without_mit_shm() {
    if !have(QT_LINEEDITS) {
        return;
    }
    with_timeout(150, || {
        let p = pair_with(&["-extension", "MIT-SHM"]);
        let mut app = App::spawn_env(
            &p.a.display,
            &[QT_LINEEDITS],
            &[("QT_QPA_PLATFORM", "xcb"), ("NO_AT_BRIDGE", "1")],
        )
        .expect("Qt5 lineedits example");
        round_trip(&p, &mut app, "qt5-noshm", &qt_typing_changes_picture);
        let n = shm_converted(app.pid).expect("status");
        assert!(
            n > 0,
            "Qt5 painted on B without any converted MIT-SHM request"
        );
        eprintln!("qt5: {n} MIT-SHM requests converted on B");
    });
}

/// B cannot share memory: GTK3 (cairo) uses SysV MIT-SHM segments for its images.
#[test]
fn gtk3_on_a_target_without_mit_shm() {
    if !have("gtk3-widget-factory") {
        return;
    }
    with_timeout(150, || {
        let p = pair_with(&["-extension", "MIT-SHM"]);
        let mut app = App::spawn_env(
            &p.a.display,
            &["gtk3-widget-factory"],
            &[("GTK_THEME", "Adwaita"), ("NO_AT_BRIDGE", "1")],
        )
        .expect("gtk3-widget-factory");
        round_trip(&p, &mut app, "gtk3-noshm", &tab_changes_picture);
        let n = shm_converted(app.pid).expect("status");
        assert!(
            n > 0,
            "GTK3 painted on B without any converted MIT-SHM request"
        );
        eprintln!("gtk3: {n} MIT-SHM requests converted on B");
    });
}

/// B has another keyboard layout (German: y and z swapped, and more): text typed on B must
/// reach the app as the same characters.
#[test]
fn keymap_differs_on_target_xterm_types_right() {
    if !have("xterm") || !have("setxkbmap") {
        return;
    }
    with_timeout(120, || {
        let p = pair();
        let st = Command::new("setxkbmap")
            .args(["-display", &p.b.display, "-layout", "de"])
            .status()
            .expect("setxkbmap");
        assert!(st.success(), "setxkbmap -layout de failed on B");
        let dir = scratch("keymap");
        let app = App::spawn(
            &p.a.display,
            &["xterm", "-geometry", "60x12+0+0", "-e", "sh"],
        )
        .expect("xterm");
        let f0 = dir.join("a");
        xtest_type(
            &p.a.display,
            Some(app.window),
            &format!("echo yz-a > {}\n", f0.display()),
        )
        .unwrap();
        wait_for_file(&f0, "yz-a", Duration::from_secs(10));
        let pid = app.pid.to_string();
        guievict_json(&["move", "--pid", &pid, &p.b.display]).expect("move A→B");
        let wb = wait_for_window(&p.b.display, app.pid, Duration::from_secs(10)).expect("on B");
        let f1 = dir.join("b");
        xtest_type(
            &p.b.display,
            Some(wb),
            &format!("echo yz-b > {}\n", f1.display()),
        )
        .unwrap();
        wait_for_file(&f1, "yz-b", Duration::from_secs(10));
    });
}
