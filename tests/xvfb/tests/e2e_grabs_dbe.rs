//! Applications that depend on passive grabs and DOUBLE-BUFFER back buffers, moved while
//! running. nedit (Motif) binds its accelerators with hundreds of passive key grabs: after
//! A→B and B→A, text typed with XTEST and saved with Ctrl+S must reach the file on disk.
//! emacs-gtk draws through a DBE back buffer (cairo pictures on it): it must survive A→B→A with
//! equal screenshots and save typed text with its own C-x C-s. dbe-dizzy (our stand-in for
//! xdbedizzy, which Debian does not ship) animates with DBE swaps and must keep swapping
//! without an X error on B and back on A.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use xvfb_harness::*;

/// Whether a program is installed (else the test says SKIP and why).
fn have(program: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    if !found {
        skip(&format!(
            "{program} is not installed (scripts/setup-debian.sh installs it)"
        ));
    }
    found
}

/// Wait until two screenshots taken apart are equal (the app finished drawing).
fn stable_shot(display: &str, window: u32, secs: u64) -> Image {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = screenshot(display, window).expect("screenshot");
    loop {
        std::thread::sleep(Duration::from_millis(400));
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

fn scratch(name: &str) -> PathBuf {
    let d = artifacts_dir().join(format!("grabs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

fn servers() -> (Xvfb, Xvfb) {
    let opts = XvfbOptions {
        screen: "1280x1024x24".into(),
        ..Default::default()
    };
    (
        Xvfb::start_with(opts.clone()).expect("Xvfb A"),
        Xvfb::start_with(opts).expect("Xvfb B"),
    )
}

const XK_CONTROL_L: u32 = 0xffe3;
const XK_S: u32 = 0x73;
const XK_X: u32 = 0x78;

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

/// Wait until the file contains `want` somewhere.
fn wait_for_text(path: &Path, want: &str, timeout: Duration, what: &str) {
    let deadline = Instant::now() + timeout;
    loop {
        let now = std::fs::read_to_string(path).unwrap_or_default();
        if now.contains(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {} never contained {want:?} within {timeout:?} (it holds {now:?})",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The app's largest mapped top-level window that lies on the screen. (Motif keeps a 10×10
/// drag window at −100,−100 made by a second connection it closes with RetainPermanent; that
/// window stays on the server it was made on, owned by nobody.)
fn main_window(display: &str, pid: u32, timeout: Duration) -> u32 {
    use x11rb::protocol::xproto::ConnectionExt as _;
    let deadline = Instant::now() + timeout;
    loop {
        let conn = xvfb_harness::connect(display).expect("connect");
        let mut best: Option<(u32, u32)> = None;
        for w in windows_of_pid(display, pid).unwrap_or_default() {
            let Ok(Ok(g)) = conn.get_geometry(w).map(|c| c.reply()) else {
                continue;
            };
            if g.x < 0 || g.y < 0 {
                continue;
            }
            let area = u32::from(g.width) * u32::from(g.height);
            if best.is_none_or(|(_, a)| area > a) {
                best = Some((w, area));
            }
        }
        if let Some((w, _)) = best {
            return w;
        }
        assert!(
            Instant::now() < deadline,
            "no on-screen window of pid {pid} on {display}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Move the app (`guievict move --pid`) and return its main window on the target.
fn move_to(pid: u32, to: &Xvfb) -> u32 {
    let report = guievict_json(&["move", "--pid", &pid.to_string(), &to.display]).expect("move");
    eprintln!("move of pid {pid} to {}: {report}", to.display);
    main_window(&to.display, pid, Duration::from_secs(10))
}

/// Type `text` into the app's window and save with `save` (pressed as chords); the file must
/// then contain the text.
fn type_and_save(display: &str, window: u32, text: &str, save: &[&[u32]], file: &Path, what: &str) {
    // Key events reach the app in the order they were made: no pause is needed between the
    // text and the chords.
    xtest_type(display, Some(window), text).expect("type");
    for chord in save {
        xtest_chord(display, window, chord).expect("save chord");
    }
    wait_for_text(file, text.trim(), Duration::from_secs(10), what);
}

#[test]
fn nedit_accelerators_after_moves() {
    if !have("nedit") {
        return;
    }
    with_timeout(150, || {
        let (a, b) = servers();
        let dir = scratch("nedit");
        let file = dir.join("notes.txt");
        std::fs::write(&file, "start\n").expect("file");
        let mut app = App::spawn_env(
            &a.display,
            &[
                "nedit",
                "-xrm",
                "nedit*autoSave: False",
                file.to_str().expect("utf-8"),
            ],
            &[("HOME", dir.to_str().expect("utf-8"))],
        )
        .expect("nedit");
        app.window = main_window(&a.display, app.pid, Duration::from_secs(10));
        stable_shot(&a.display, app.window, 10);
        // Baseline on A: Ctrl+S saves.
        type_and_save(
            &a.display,
            app.window,
            "on-a ",
            &[&[XK_CONTROL_L, XK_S]],
            &file,
            "nedit on A",
        );
        let before = stable_shot(&a.display, app.window, 5);

        let wb = move_to(app.pid, &b);
        assert!(app.alive(), "nedit died after A→B");
        let on_b = stable_shot(&b.display, wb, 5);
        assert_same_picture(&before, &on_b, "nedit-on-b");
        type_and_save(
            &b.display,
            wb,
            "typed-on-b ",
            &[&[XK_CONTROL_L, XK_S]],
            &file,
            "nedit on B (Ctrl+S is a passive grab)",
        );
        assert!(app.alive(), "nedit died from input on B");

        let before_back = stable_shot(&b.display, wb, 5);
        let wa = move_to(app.pid, &a);
        assert!(app.alive(), "nedit died after B→A");
        let back = stable_shot(&a.display, wa, 5);
        assert_same_picture(&before_back, &back, "nedit-back-on-a");
        type_and_save(
            &a.display,
            wa,
            "back-on-a ",
            &[&[XK_CONTROL_L, XK_S]],
            &file,
            "nedit back on A",
        );
        assert!(app.alive(), "nedit died from input back on A");
    });
}

#[test]
fn emacs_gtk_survives_moves_and_saves() {
    if !have("emacs") {
        return;
    }
    with_timeout(180, || {
        let (a, b) = servers();
        let dir = scratch("emacs");
        let file = dir.join("notes.txt");
        std::fs::write(&file, "start\n").expect("file");
        let mut app = App::spawn_env(
            &a.display,
            &[
                "emacs",
                "-Q",
                "--no-splash",
                "--eval",
                "(progn (blink-cursor-mode 0) (setq make-backup-files nil))",
                file.to_str().expect("utf-8"),
            ],
            &[
                ("HOME", dir.to_str().expect("utf-8")),
                ("NO_AT_BRIDGE", "1"),
            ],
        )
        .expect("emacs");
        app.window = main_window(&a.display, app.pid, Duration::from_secs(10));
        stable_shot(&a.display, app.window, 10);
        let save: &[&[u32]] = &[&[XK_CONTROL_L, XK_X], &[XK_CONTROL_L, XK_S]];
        type_and_save(&a.display, app.window, "on-a ", save, &file, "emacs on A");
        let before = stable_shot(&a.display, app.window, 5);

        let wb = move_to(app.pid, &b);
        assert!(app.alive(), "emacs died after A→B");
        let on_b = stable_shot(&b.display, wb, 5);
        let c = compare(&before, &on_b, "emacs-on-b");
        eprintln!("emacs on B: {:.4} of pixels equal", c.equal_fraction);
        assert!(
            c.equal_fraction >= 0.98,
            "emacs on B: {:.4} of pixels equal ({:?})",
            c.equal_fraction,
            c.artifacts
        );
        type_and_save(&b.display, wb, "typed-on-b ", save, &file, "emacs on B");
        assert!(app.alive(), "emacs died from input on B");

        let before_back = stable_shot(&b.display, wb, 5);
        let wa = move_to(app.pid, &a);
        let back = stable_shot(&a.display, wa, 5);
        assert!(app.alive(), "emacs died after B→A");
        let c = compare(&before_back, &back, "emacs-back-on-a");
        eprintln!("emacs back on A: {:.4} of pixels equal", c.equal_fraction);
        assert!(
            c.equal_fraction >= 0.98,
            "emacs back on A: {:.4} of pixels equal ({:?})",
            c.equal_fraction,
            c.artifacts
        );
        type_and_save(&a.display, wa, "back-on-a ", save, &file, "emacs back on A");
        assert!(app.alive(), "emacs died from input back on A");
    });
}

/// Whether the window's picture changes within `secs` (the animation runs).
fn animates(display: &str, window: u32, secs: u64) -> bool {
    let first = screenshot(display, window).expect("screenshot");
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        if screenshot(display, window).expect("screenshot").rgb != first.rgb {
            return true;
        }
    }
    false
}

/// The last frame number dbe-dizzy wrote to its status file.
fn frames(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().strip_prefix("frame ")?.parse().ok())
        .unwrap_or(0)
}

/// Wait until dbe-dizzy has drawn (and swapped, with a round trip each) `more` frames beyond
/// what it had when called.
fn keeps_swapping(path: &Path, app: &mut App, what: &str) {
    let start = frames(path);
    let deadline = Instant::now() + Duration::from_secs(10);
    while frames(path) < start + 40 {
        assert!(app.alive(), "{what}: dbe-dizzy died (an X error ends it)");
        assert!(
            Instant::now() < deadline,
            "{what}: dbe-dizzy stopped swapping"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// xorg's xdbedizzy is not packaged by Debian; `dbe-dizzy` (tests/xvfb/src/bin) does the same
/// kind of drawing: core requests and a RENDER picture on a back buffer, swapped 20 times a
/// second, any X error fatal.
#[test]
fn dbe_dizzy_keeps_swapping_after_moves() {
    with_timeout(120, || {
        let (a, b) = servers();
        let dir = scratch("dbe-dizzy");
        let status = dir.join("status");
        let mut app = App::spawn(
            &a.display,
            &[
                env!("CARGO_BIN_EXE_dbe-dizzy"),
                status.to_str().expect("utf-8"),
            ],
        )
        .expect("dbe-dizzy");
        keeps_swapping(&status, &mut app, "on A");
        assert!(
            animates(&a.display, app.window, 5),
            "dbe-dizzy does not animate on A"
        );
        let wb = move_to(app.pid, &b);
        keeps_swapping(&status, &mut app, "after A→B");
        assert!(
            animates(&b.display, wb, 5),
            "dbe-dizzy stopped animating on B"
        );
        let wa = move_to(app.pid, &a);
        keeps_swapping(&status, &mut app, "after B→A");
        assert!(
            animates(&a.display, wa, 5),
            "dbe-dizzy stopped animating back on A"
        );
        assert!(app.alive(), "dbe-dizzy died on A");
    });
}
