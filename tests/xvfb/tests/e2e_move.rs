//! End to end on unmodified, already-running apps (hijacked through ptrace): move between two
//! private Xvfb servers and back, typing after a move, drawing while detached, replication, and
//! many move cycles without leaks.
use std::process::Command;
use std::time::{Duration, Instant};
use x11rb::connection::Connection as _;
use xvfb_harness::*;

/// Move `argv` A → B → A, comparing screenshots of its top-level window each time.
fn round_trip(argv: &[&str], name: &str) {
    let a = Xvfb::start().expect("Xvfb A");
    let b = Xvfb::start().expect("Xvfb B");
    // Diverge B's numbering from A's: another client and extra atoms first.
    let other = b.connect().expect("other client");
    use x11rb::protocol::xproto::ConnectionExt as _;
    for i in 0..50 {
        other
            .intern_atom(false, format!("GUIEVICT_TEST_PAD_{i}").as_bytes())
            .expect("intern")
            .reply()
            .expect("intern reply");
    }
    let mut app = App::spawn(&a.display, argv).expect("app");
    let before = settled_screenshot(&a.display, app.window).expect("shot on A");
    let pid = app.pid.to_string();
    guievict_json(&["move", "--pid", &pid, &b.display]).expect("move A→B");
    let wb = wait_for_window(&b.display, app.pid, Duration::from_secs(10)).expect("window on B");
    assert_picture_returns(&before, &b.display, wb, &format!("{name}-on-b"));
    assert!(
        windows_of_pid(&a.display, app.pid).unwrap().is_empty(),
        "{name}: windows left on A"
    );
    assert!(app.alive(), "{name} died after the first move");
    guievict_json(&["move", "--pid", &pid, &a.display]).expect("move B→A");
    let wa = wait_for_window(&a.display, app.pid, Duration::from_secs(10)).expect("window on A");
    assert_picture_returns(&before, &a.display, wa, &format!("{name}-back-on-a"));
    assert!(
        windows_of_pid(&b.display, app.pid).unwrap().is_empty(),
        "{name}: windows left on B"
    );
    assert!(app.alive(), "{name} died after the second move");
    drop(other);
}

#[test]
fn xterm_round_trip() {
    with_timeout(90, || {
        round_trip(
            &[
                "xterm",
                "-geometry",
                "60x12+0+0",
                "-e",
                "sh",
                "-c",
                "echo round trip; ls /; sleep 120",
            ],
            "xterm",
        )
    });
}

#[test]
fn xlogo_round_trip() {
    with_timeout(90, || {
        round_trip(&["xlogo", "-geometry", "150x150+3+3"], "xlogo")
    });
}

#[test]
fn xeyes_round_trip() {
    with_timeout(90, || {
        round_trip(&["xeyes", "-geometry", "150x100+3+3"], "xeyes")
    });
}

#[test]
fn xcalc_round_trip() {
    with_timeout(90, || round_trip(&["xcalc", "-geometry", "+3+3"], "xcalc"));
}

#[test]
fn xclock_round_trip() {
    // Analog xclock with the second hand off so that the picture is stable.
    with_timeout(90, || {
        round_trip(
            &["xclock", "-geometry", "150x150+3+3", "-update", "3600"],
            "xclock",
        )
    });
}

#[test]
fn xterm_stays_interactive_after_moves() {
    with_timeout(90, || {
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let app = App::spawn(&a.display, &["xterm", "-geometry", "60x12+0+0", "-e", "sh"])
            .expect("xterm");
        let dir = artifacts_dir();
        let f1 = dir.join(format!("typed-a-{}", app.pid));
        xtest_type(
            &a.display,
            Some(app.window),
            &format!("echo before > {}\n", f1.display()),
        )
        .unwrap();
        wait_for_file(&f1, "before", Duration::from_secs(10));
        let pid = app.pid.to_string();
        guievict_json(&["detach", "--pid", &pid]).expect("detach");
        assert!(windows_of_pid(&a.display, app.pid).unwrap().is_empty());
        guievict_json(&["attach", &b.display, "--pid", &pid]).expect("attach");
        let wb = wait_for_window(&b.display, app.pid, Duration::from_secs(10)).unwrap();
        let f2 = dir.join(format!("typed-b-{}", app.pid));
        xtest_type(
            &b.display,
            Some(wb),
            &format!("echo on-b > {}\n", f2.display()),
        )
        .unwrap();
        wait_for_file(&f2, "on-b", Duration::from_secs(10));
    });
}

#[test]
fn output_while_detached_is_not_lost() {
    with_timeout(90, || {
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        // The shell prints a counter every 50 ms; the app keeps drawing while detached. It
        // starts when the file `go` exists (after the detach) and writes `done` at the end.
        let dir = artifacts_dir().join(format!("detached-output-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let script = format!(
            "cd {}; while [ ! -e go ]; do sleep 0.05; done; i=0; while [ $i -lt 60 ]; do i=$((i+1)); echo line $i; sleep 0.05; done; echo DONE; echo done > done; sleep 60",
            dir.display()
        );
        let app = App::spawn(
            &a.display,
            &["xterm", "-geometry", "40x5+0+0", "-e", "sh", "-c", &script],
        )
        .expect("xterm");
        let pid = app.pid.to_string();
        guievict_json(&["detach", "--pid", &pid]).expect("detach");
        std::fs::write(dir.join("go"), "").unwrap();
        // The whole loop runs while detached.
        wait_for_file(&dir.join("done"), "done", Duration::from_secs(30));
        guievict_json(&["attach", &b.display, "--pid", &pid]).expect("attach");
        let wb = wait_for_window(&b.display, app.pid, Duration::from_secs(10)).unwrap();
        // Reference: the same output drawn directly on a fresh server.
        let c = Xvfb::start().expect("Xvfb C");
        let reference = App::spawn(
            &c.display,
            &[
                "xterm",
                "-geometry",
                "40x5+0+0",
                "-e",
                "sh",
                "-c",
                "i=0; while [ $i -lt 60 ]; do i=$((i+1)); echo line $i; done; echo DONE; sleep 60",
            ],
        )
        .unwrap();
        let want = settled_screenshot(&c.display, reference.window).unwrap();
        assert_picture_returns(&want, &b.display, wb, "detached-output");
    });
}

#[test]
fn replicate_view_only_and_survive_replica_death() {
    with_timeout(90, || {
        let a = Xvfb::start().expect("Xvfb A");
        let mut b = Xvfb::start().expect("Xvfb B");
        let app = App::spawn(&a.display, &["xterm", "-geometry", "60x12+0+0", "-e", "sh"])
            .expect("xterm");
        settled_screenshot(&a.display, app.window).expect("drawn on A");
        let pid = app.pid.to_string();
        guievict_json(&["replicate", &b.display, "--pid", &pid, "--view-only"]).expect("replicate");
        let wb = wait_for_window(&b.display, app.pid, Duration::from_secs(10)).unwrap();
        let dir = artifacts_dir();
        let f = dir.join(format!("replica-{}", app.pid));
        xtest_type(
            &a.display,
            Some(app.window),
            &format!("echo from-a > {}\n", f.display()),
        )
        .unwrap();
        wait_for_file(&f, "from-a", Duration::from_secs(10));
        let on_a = settled_screenshot(&a.display, app.window).unwrap();
        assert_picture_returns(&on_a, &b.display, wb, "replica-equal");
        // Typing on the view-only replica is ignored.
        let g = dir.join(format!("replica-ignored-{}", app.pid));
        xtest_type(
            &b.display,
            Some(wb),
            &format!("echo from-b > {}\n", g.display()),
        )
        .unwrap();
        // Ordering barrier: B's key events were sent before A's below (xtest_type syncs with
        // its server), so had they reached the shell, `g` would exist before `g2` does.
        let g2 = dir.join(format!("replica-barrier-{}", app.pid));
        xtest_type(
            &a.display,
            Some(app.window),
            &format!("echo barrier > {}\n", g2.display()),
        )
        .unwrap();
        wait_for_file(&g2, "barrier", Duration::from_secs(10));
        assert!(
            !g.exists(),
            "input from a view-only replica reached the app"
        );
        // The replica's server dies: A is unaffected.
        b.kill();
        let h = dir.join(format!("after-kill-{}", app.pid));
        xtest_type(
            &a.display,
            Some(app.window),
            &format!("echo still > {}\n", h.display()),
        )
        .unwrap();
        wait_for_file(&h, "still", Duration::from_secs(10));
    });
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

#[test]
fn many_move_cycles_do_not_leak() {
    with_timeout(300, || {
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let mut app = App::spawn(
            &a.display,
            &[
                "xterm",
                "-geometry",
                "60x12+0+0",
                "-e",
                "sh",
                "-c",
                "echo cycles; sleep 600",
            ],
        )
        .expect("xterm");
        let before = settled_screenshot(&a.display, app.window).unwrap();
        let pid = app.pid.to_string();
        // Warm up (hijack, first allocations, malloc's arenas reaching their working size:
        // single RSS readings swing by several MB, see soak_moves), then measure against the
        // largest warm-up reading.
        let mut rss0 = 0;
        for _ in 0..10 {
            guievict_json(&["move", "--pid", &pid, &b.display]).unwrap();
            guievict_json(&["move", "--pid", &pid, &a.display]).unwrap();
            rss0 = rss0.max(rss_kb(app.pid));
        }
        let fds0 = fd_count(app.pid);
        let cycles = 50;
        for i in 0..cycles {
            guievict_json(&["move", "--pid", &pid, &b.display])
                .unwrap_or_else(|e| panic!("cycle {i} A→B: {e}"));
            guievict_json(&["move", "--pid", &pid, &a.display])
                .unwrap_or_else(|e| panic!("cycle {i} B→A: {e}"));
        }
        // A descriptor can be open for a moment after the last command (the control
        // connection is closed by the app after the CLI has exited); a leak stays.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut fds1 = fd_count(app.pid);
        while fds1 > fds0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            fds1 = fd_count(app.pid);
        }
        let rss1 = rss_kb(app.pid);
        eprintln!("after {cycles} cycles: fds {fds0} → {fds1}, RSS {rss0} → {rss1} kB");
        assert!(fds1 <= fds0, "file descriptors leaked: {fds0} → {fds1}");
        assert!(rss1 < rss0 + 8 * 1024, "memory grew by {} kB", rss1 - rss0);
        let w = wait_for_window(&a.display, app.pid, Duration::from_secs(10)).unwrap();
        assert_picture_returns(&before, &a.display, w, "after-cycles");
        assert!(app.alive());
    });
}

#[test]
fn xterm_moves_to_a_server_with_different_extension_opcodes() {
    with_timeout(90, || {
        let a = Xvfb::start().expect("Xvfb A");
        // Without MIT-SHM every later extension (XKEYBOARD, BIG-REQUESTS, XInputExtension…)
        // gets a different major opcode and event/error base on B.
        let b = Xvfb::start_with(XvfbOptions {
            extra_args: vec!["-extension".into(), "MIT-SHM".into()],
            ..Default::default()
        })
        .expect("Xvfb B");
        fn opcode(d: &str, name: &'static str) -> Option<u8> {
            use x11rb::connection::RequestConnection;
            let c = connect(d).unwrap();
            let info = c.extension_information(name).unwrap();
            info.map(|i| i.major_opcode)
        }
        assert_ne!(
            opcode(&a.display, "XKEYBOARD"),
            opcode(&b.display, "XKEYBOARD")
        );
        let app = App::spawn(&a.display, &["xterm", "-geometry", "60x12+0+0", "-e", "sh"])
            .expect("xterm");
        let before = settled_screenshot(&a.display, app.window).unwrap();
        let pid = app.pid.to_string();
        guievict_json(&["move", "--pid", &pid, &b.display]).expect("move");
        let wb = wait_for_window(&b.display, app.pid, Duration::from_secs(10)).unwrap();
        assert_picture_returns(&before, &b.display, wb, "opcodes-on-b");
        let f = artifacts_dir().join(format!("opcodes-{}", app.pid));
        xtest_type(
            &b.display,
            Some(wb),
            &format!("echo typed-on-b > {}\n", f.display()),
        )
        .unwrap();
        wait_for_file(&f, "typed-on-b", Duration::from_secs(10));
    });
}

#[test]
fn targets_by_window_id_name_and_pick() {
    with_timeout(90, || {
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let app = App::spawn(
            &a.display,
            &[
                "xlogo",
                "-geometry",
                "100x100+10+10",
                "-title",
                "pick me 42",
            ],
        )
        .expect("xlogo");
        // By window ID (hex), on --display.
        let w = format!("{:#x}", app.window);
        guievict_json(&["detach", &w, "--display", &a.display]).expect("detach by window id");
        guievict_json(&["attach", &b.display, "--pid", &app.pid.to_string()]).expect("attach");
        wait_for_window(&b.display, app.pid, Duration::from_secs(10)).expect("on B");
        // By title.
        guievict_json(&[
            "move",
            "--name",
            "^pick me [0-9]+$",
            "--display",
            &b.display,
            &a.display,
        ])
        .expect("move by name");
        let wa = wait_for_window(&a.display, app.pid, Duration::from_secs(10)).expect("back on A");
        // By clicking it.
        let bin = guievict_bin();
        let serial = cursor_serial(&a.display).expect("cursor");
        let mut child = Command::new(&bin)
            .args(["move", "--pick", "--display", &a.display, &b.display])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("guievict move --pick");
        // Click once it holds the pointer grab (then a click lands on it, not on xlogo).
        wait_until(
            "guievict move --pick grabs the pointer",
            Duration::from_secs(10),
            || cursor_serial(&a.display).is_ok_and(|s| s != serial),
        )
        .expect("pointer grab");
        xtest_click(&a.display, wa, 20, 20, 1).expect("click");
        let st = child.wait().expect("wait");
        assert!(st.success(), "move --pick failed");
        wait_for_window(&b.display, app.pid, Duration::from_secs(10)).expect("picked window on B");
    });
}

/// Client window of `pid` below a window manager's frame: a descendant of a top-level that the
/// process owns and that is viewable.
fn client_window_below_wm(display: &str, pid: u32) -> Option<u32> {
    use x11rb::protocol::xproto::{ConnectionExt as _, MapState};
    let conn = connect(display).ok()?;
    let root = conn.setup().roots[0].root;
    let mut stack = conn.query_tree(root).ok()?.reply().ok()?.children;
    while let Some(w) = stack.pop() {
        if window_pid(&conn, w).ok()? == Some(pid)
            && conn.get_window_attributes(w).ok()?.reply().ok()?.map_state == MapState::VIEWABLE
        {
            return Some(w);
        }
        if let Ok(t) = conn.query_tree(w).ok()?.reply() {
            stack.extend(t.children);
        }
    }
    None
}

#[test]
fn window_manager_on_target_reparents_and_back() {
    with_timeout(90, || {
        if !std::path::Path::new("/usr/bin/twm").exists() {
            skip("twm not installed (scripts/setup-debian.sh installs it)");
            return;
        }
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let wm = spawn_wm(&b.display).expect("twm");
        let mut app = App::spawn(
            &a.display,
            &["xterm", "-geometry", "60x12+40+40", "-e", "sh"],
        )
        .expect("xterm");
        let before = settled_screenshot(&a.display, app.window).unwrap();
        let pid = app.pid.to_string();
        guievict_json(&["move", "--pid", &pid, &b.display]).expect("move to the WM display");
        let deadline = Instant::now() + Duration::from_secs(10);
        let wb = loop {
            if let Some(w) = client_window_below_wm(&b.display, app.pid) {
                break w;
            }
            assert!(Instant::now() < deadline, "no client window on B");
            std::thread::sleep(Duration::from_millis(100));
        };
        // Reparented into a twm frame (the client window is not a child of the root).
        let conn = connect(&b.display).unwrap();
        use x11rb::protocol::xproto::ConnectionExt as _;
        let parent = conn.query_tree(wb).unwrap().reply().unwrap().parent;
        assert_ne!(
            parent,
            conn.setup().roots[0].root,
            "twm did not reparent the window"
        );
        assert_picture_returns(&before, &b.display, wb, "wm-on-b");
        let f = artifacts_dir().join(format!("wm-typed-{}", app.pid));
        xtest_type(
            &b.display,
            Some(wb),
            &format!("echo under-wm > {}\n", f.display()),
        )
        .unwrap();
        wait_for_file(&f, "under-wm", Duration::from_secs(10));
        // And back to a display without a window manager.
        guievict_json(&["move", "--pid", &pid, &a.display]).expect("move back");
        let wa = wait_for_window(&a.display, app.pid, Duration::from_secs(10)).unwrap();
        let back = settled_screenshot(&a.display, wa).unwrap();
        assert_eq!((back.width, back.height), (before.width, before.height));
        assert!(app.alive());
        drop(wm);
    });
}

/// An app whose window has the input focus moves to a display with a window manager: the
/// focus is left to the manager (a SetInputFocus on a window the manager has not mapped yet
/// failed with BadMatch, and the move was refused — GIMP's toolbox under twm).
#[test]
fn focused_app_moves_to_a_managed_display() {
    with_timeout(90, || {
        if !std::path::Path::new("/usr/bin/twm").exists() {
            skip("twm not installed (scripts/setup-debian.sh installs it)");
            return;
        }
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let _wm = spawn_wm(&b.display).expect("twm");
        let mut app =
            App::spawn(&a.display, &["xlogo", "-geometry", "100x100+20+20"]).expect("xlogo");
        {
            use x11rb::protocol::xproto::{ConnectionExt as _, InputFocus};
            let c = connect(&a.display).unwrap();
            c.set_input_focus(InputFocus::PARENT, app.window, x11rb::CURRENT_TIME)
                .unwrap()
                .check()
                .unwrap();
        }
        let pid = app.pid.to_string();
        guievict_json(&["move", "--pid", &pid, &b.display]).expect("move to the WM display");
        let deadline = Instant::now() + Duration::from_secs(10);
        while client_window_below_wm(&b.display, app.pid).is_none() {
            assert!(Instant::now() < deadline, "no client window on B");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(app.alive(), "xlogo died");
    });
}
