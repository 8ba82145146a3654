//! The command line as a new user meets it (issue 18): DISPLAY and WINDOW in either order in
//! every command that takes both, `guievict list --display` showing every X client of a real
//! Xvfb, `guievict doctor` telling a server with the GUIEVICT extension from one without, and
//! each message the issue quoted replaced by an exact, actionable one — checked word for word
//! against the real binary, real servers (one of them stopped with SIGSTOP), a real xterm and a
//! process held at its exit by ptrace.
use std::process::Command;
use std::time::{Duration, Instant};
use x11rb::connection::Connection as _;
use xvfb_harness::*;

/// Run the real `guievict`; (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(guievict_bin())
        .args(args)
        .output()
        .expect("running guievict");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Like [`run`] without `$DISPLAY`: only the command line names a display.
fn run_env(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(guievict_bin())
        .args(args)
        .env_remove("DISPLAY")
        .output()
        .expect("running guievict");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Run `guievict`, expect it to fail, return its stderr.
fn fails(args: &[&str]) -> String {
    let (code, out, err) = run(args);
    assert_ne!(code, 0, "guievict {args:?} succeeded: {out}");
    assert!(
        !err.contains("X11Error") && !err.contains("panicked"),
        "guievict {args:?} printed a raw error: {err}"
    );
    err
}

/// Run `guievict`, expect success, return its stdout.
fn succeeds(args: &[&str]) -> String {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "guievict {args:?} failed: {err}");
    out
}

fn hex(w: u32) -> String {
    format!("{w:#x}")
}

#[test]
fn display_and_window_come_in_either_order_in_every_command() {
    with_timeout(240, || {
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let c = Xvfb::start().expect("Xvfb C");
        let app =
            App::spawn(&a.display, &["xterm", "-geometry", "40x8+0+0", "-e", "sh"]).expect("xterm");
        let pid = app.pid.to_string();

        // move: the issue's order (WINDOW DISPLAY), then the other (DISPLAY WINDOW).
        succeeds(&[
            "move",
            &hex(app.window),
            &b.display,
            "--display",
            &a.display,
        ]);
        let wb = wait_for_window(&b.display, app.pid, Duration::from_secs(15)).expect("on B");
        assert!(windows_of_pid(&a.display, app.pid).unwrap().is_empty());
        succeeds(&["move", &a.display, &hex(wb), "--display", &b.display]);
        let wa = wait_for_window(&a.display, app.pid, Duration::from_secs(15)).expect("on A");
        assert!(windows_of_pid(&b.display, app.pid).unwrap().is_empty());

        // replicate / policy / unreplicate: window first, then display first.
        succeeds(&["replicate", &hex(wa), &c.display, "--display", &a.display]);
        wait_for_window(&c.display, app.pid, Duration::from_secs(15)).expect("replica on C");
        succeeds(&[
            "policy",
            &c.display,
            &hex(wa),
            "--display",
            &a.display,
            "--view-only",
        ]);
        succeeds(&[
            "policy",
            &hex(wa),
            &c.display,
            "--display",
            &a.display,
            "--interactive",
        ]);
        succeeds(&["unreplicate", &c.display, &hex(wa), "--display", &a.display]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !windows_of_pid(&c.display, app.pid).unwrap().is_empty() {
            assert!(Instant::now() < deadline, "the replica stayed on C");
            std::thread::sleep(Duration::from_millis(100));
        }

        // snapshot and detach: a display given with the window says where the window is,
        // in either order (no --display, no $DISPLAY).
        let gws = artifacts_dir().join(format!("cli-order-{}.gws", std::process::id()));
        let gws_s = gws.to_str().expect("path");
        let (code, _, err) = run_env(&["snapshot", &hex(wa), &a.display, "--save", gws_s]);
        assert_eq!(code, 0, "snapshot WINDOW DISPLAY: {err}");
        let (code, _, err) = run_env(&["snapshot", &a.display, &hex(wa), "--save", gws_s]);
        assert_eq!(code, 0, "snapshot DISPLAY WINDOW: {err}");
        let _ = std::fs::remove_file(&gws);
        let e = fails(&["detach", &a.display, &b.display]);
        assert!(e.contains("are both displays"), "{e}");
        let e = fails(&["detach", &a.display, &hex(wa), "--display", &b.display]);
        assert!(e.contains("two displays"), "{e}");
        let (code, _, err) = run_env(&["detach", &a.display, &hex(wa)]);
        assert_eq!(code, 0, "detach DISPLAY WINDOW: {err}");
        // attach: --pid before or after the display.
        succeeds(&["attach", "--pid", &pid, &b.display]);
        wait_for_window(&b.display, app.pid, Duration::from_secs(15)).expect("attached on B");
        succeeds(&["detach", "--pid", &pid]);
        succeeds(&["attach", &a.display, "--pid", &pid]);
        wait_for_window(&a.display, app.pid, Duration::from_secs(15)).expect("attached on A");

        // What cannot be sorted is said plainly, and nothing moves.
        let e = fails(&["move", "0x20000c", "0x40000c"]);
        assert!(
            e.contains("are both window IDs; give one WINDOW and one DISPLAY"),
            "{e}"
        );
        let e = fails(&["move", &a.display, &b.display]);
        assert!(
            e.contains("are both displays (a display has a colon)"),
            "{e}"
        );
        let e = fails(&["move", &b.display]);
        assert!(e.contains("is a display; name the application too"), "{e}");
        assert!(e.contains("guievict list --display"), "{e}");
        let e = fails(&["move", "0x20000c"]);
        assert!(
            e.contains("0x20000c is a window; say where to as well"),
            "{e}"
        );
        let e = fails(&["move", "--pid", &pid, &hex(wa), &b.display]);
        assert!(e.contains("already named by --pid"), "{e}");
        assert!(
            windows_of_pid(&b.display, app.pid).unwrap().is_empty(),
            "a refused command moved the app"
        );

        // --help says so, for each command that takes both.
        for cmd in ["move", "attach", "replicate", "unreplicate", "policy"] {
            let h = succeeds(&[cmd, "--help"]);
            assert!(
                h.contains("either order"),
                "`{cmd} --help` does not say it: {h}"
            );
        }
    });
}

/// The JSON row of `pid` in `guievict list --display D --json`.
fn row_of(display: &str, pid: u32) -> Option<serde_json::Value> {
    let out = succeeds(&["list", "--display", display, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("list --json");
    v["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .find(|c| c["pid"] == pid)
        .cloned()
}

#[test]
fn list_display_shows_every_client_its_windows_and_who_is_hijacked() {
    with_timeout(180, || {
        let mut a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let t1 = App::spawn(
            &a.display,
            &[
                "xterm",
                "-T",
                "first terminal",
                "-geometry",
                "40x8+0+0",
                "-e",
                "sh",
            ],
        )
        .expect("xterm 1");
        let t2 = App::spawn(&a.display, &["xclock", "-title", "the clock"]).expect("xclock");
        succeeds(&["hijack", &t1.pid.to_string()]);

        let r1 = row_of(&a.display, t1.pid).expect("xterm listed");
        let r2 = row_of(&a.display, t2.pid).expect("xclock listed");
        assert_eq!(r1["hijacked"], true, "{r1}");
        assert_eq!(r1["connections"][0], a.display.as_str(), "{r1}");
        assert_eq!(r2["hijacked"], false, "{r2}");
        assert!(
            r1["command"]
                .as_str()
                .is_some_and(|c| c.starts_with("xterm")),
            "{r1}"
        );
        let titles = |r: &serde_json::Value| -> Vec<(String, String)> {
            r["windows"]
                .as_array()
                .expect("windows")
                .iter()
                .map(|w| {
                    (
                        w["id"].as_str().unwrap_or("").to_string(),
                        w["title"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        };
        assert!(
            titles(&r1).contains(&(hex(t1.window), "first terminal".into())),
            "{r1}"
        );
        assert!(titles(&r2).iter().any(|(_, t)| t == "the clock"), "{r2}");

        // The table a person reads: PID, state, command, window and title.
        let table = succeeds(&["list", "--display", &a.display]);
        let line1 = table
            .lines()
            .find(|l| l.trim_start().starts_with(&t1.pid.to_string()))
            .unwrap_or_else(|| panic!("no line for the xterm: {table}"));
        assert!(
            line1.contains(&format!("hijacked, on {}", a.display)),
            "{table}"
        );
        assert!(
            table.contains(&format!("window {} \"first terminal\"", hex(t1.window))),
            "{table}"
        );

        // Moved away, it is listed on B, attached there, and no longer on A.
        succeeds(&["move", &b.display, &hex(t1.window), "--display", &a.display]);
        wait_for_window(&b.display, t1.pid, Duration::from_secs(15)).expect("on B");
        let deadline = Instant::now() + Duration::from_secs(10);
        while row_of(&a.display, t1.pid).is_some() {
            assert!(
                Instant::now() < deadline,
                "the moved xterm is still a client of A"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let rb = row_of(&b.display, t1.pid).expect("xterm listed on B");
        assert_eq!(rb["connections"][0], b.display.as_str(), "{rb}");
        // Listing sent nothing that hurts the server (see e2e_server_safety.rs).
        assert!(a.is_running(), "listing crashed Xvfb A");
        drop(t2);
    });
}

/// `guievict doctor --display D --json`: (exit code, the checks by name).
fn doctor(display: &str, env: &[(&str, &str)]) -> (i32, serde_json::Value) {
    let mut cmd = Command::new(guievict_bin());
    cmd.args(["doctor", "--display", display, "--json"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("doctor");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("doctor --json");
    (o.status.code().unwrap_or(-1), v)
}

fn check<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check: {v}"))
}

#[test]
fn doctor_tells_a_server_with_the_extension_from_one_without_and_says_how_to_load_it() {
    with_timeout(120, || {
        let with = Xvfb::start().expect("Xvfb with GUIEVICT");
        let without = Xvfb::start_plain().expect("stock Xvfb");

        let (code, v) = doctor(&with.display, &[]);
        assert_eq!(check(&v, "guievict-extension")["verdict"], "ok", "{v}");
        assert_eq!(check(&v, "x-resource")["verdict"], "ok", "{v}");
        assert_eq!(check(&v, "hijack-library")["verdict"], "ok", "{v}");
        for name in ["ptrace", "runtime-directory", "criu"] {
            check(&v, name);
        }
        // The exit status is the verdict: 0 exactly when no check failed.
        let any_fail = v["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .any(|c| c["verdict"] == "fail");
        assert_eq!(code, i32::from(any_fail), "{v}");
        assert_eq!(v["ok"], !any_fail, "{v}");

        let (code, v) = doctor(&without.display, &[]);
        assert_eq!(code, 1, "a display without GUIEVICT is a problem: {v}");
        let ext = check(&v, "guievict-extension");
        assert_eq!(ext["verdict"], "fail", "{v}");
        let fix = ext["fix"].as_str().expect("a fix");
        let so = ext_path();
        assert!(
            fix.contains(&format!(
                "LD_PRELOAD={} Xvfb {}",
                so.display(),
                without.display
            )),
            "{fix}"
        );
        assert!(fix.contains("Load \"guievict\""), "{fix}");

        // A missing library is a failure with the place looked and the fix.
        let (code, v) = doctor(&with.display, &[("GUIEVICT_HIJACK", "/nonexistent/x.so")]);
        assert_eq!(code, 1, "{v}");
        let lib = check(&v, "hijack-library");
        assert_eq!(lib["verdict"], "fail", "{v}");
        assert!(
            lib["found"]
                .as_str()
                .unwrap_or("")
                .contains("/nonexistent/x.so"),
            "{v}"
        );

        // A display with no server: said, with what to do.
        let (code, v) = doctor(":699", &[]);
        assert_eq!(code, 1, "{v}");
        let d = check(&v, "display");
        assert!(
            d["found"]
                .as_str()
                .unwrap_or("")
                .contains("cannot connect to X display :699"),
            "{v}"
        );

        // The human form ends with the verdict.
        let (code, out, _) = run(&["doctor", "--display", &without.display]);
        assert_eq!(code, 1);
        assert!(out.contains("[FAIL] guievict-extension"), "{out}");
        assert!(
            out.trim_end().ends_with("problem(s): see FAIL above"),
            "{out}"
        );
    });
}

#[test]
fn the_issues_messages_are_exact() {
    with_timeout(240, || {
        let mut a = Xvfb::start().expect("Xvfb A");
        let mut b = Xvfb::start().expect("Xvfb B");
        let app =
            App::spawn(&a.display, &["xterm", "-geometry", "40x8+0+0", "-e", "sh"]).expect("xterm");
        let pid = app.pid.to_string();

        // status --pid of a PID that is gone, a zombie, and a live process not hijacked.
        let mut gone = Command::new("true").spawn().expect("true");
        let gone_pid = gone.id().to_string();
        gone.wait().expect("reap");
        let e = fails(&["status", "--pid", &gone_pid]);
        assert!(
            e.contains(&format!(
                "process {gone_pid} does not exist (it has exited, or the PID is wrong)"
            )),
            "{e}"
        );
        let mut zombie = Command::new("true").spawn().expect("true");
        let zpid = zombie.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(format!("/proc/{zpid}/stat"))
            .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
        {
            assert!(Instant::now() < deadline, "true never exited");
            std::thread::sleep(Duration::from_millis(20));
        }
        let e = fails(&["status", "--pid", &zpid.to_string()]);
        assert!(
            e.contains(&format!("process {zpid} has exited (a zombie")),
            "{e}"
        );
        zombie.wait().expect("reap");
        let e = fails(&["status", "--pid", &pid]);
        assert!(
            e.contains(&format!("process {pid} (xterm) is not hijacked"))
                && e.contains(&format!("`guievict hijack {pid}`")),
            "{e}"
        );

        // A window that does not exist, window 0, the root window.
        let e = fails(&["move", "0x7e00001", &b.display, "--display", &a.display]);
        assert!(
            e.contains(&format!("there is no window 0x7e00001 on {}", a.display)),
            "{e}"
        );
        let e = fails(&["move", "0", &b.display, "--display", &a.display]);
        assert!(e.contains("window ID 0 means None"), "{e}");
        let root = a.connect().expect("conn").setup().roots[0].root;
        let e = fails(&["move", &hex(root), &b.display, "--display", &a.display]);
        assert!(
            e.contains(&format!(
                "{} is the root window of screen 0 of {}",
                hex(root),
                a.display
            )),
            "{e}"
        );
        assert!(!e.contains("has no X connection"), "{e}");

        // A screen the display does not have: for the CLI's own connection and for the app's.
        let e = fails(&["list", "--display", &format!("{}.7", a.display)]);
        assert!(
            e.contains(&format!(
                "display {}.7 has no screen 7: use {}",
                a.display, a.display
            )),
            "{e}"
        );
        let e = fails(&["move", "--pid", &pid, &format!("{}.7", b.display)]);
        assert!(e.contains("no screen 7"), "{e}");
        assert!(windows_of_pid(&b.display, app.pid).unwrap().is_empty());

        // A stopped server: the source (the CLI resolves the window there) and the destination
        // (the app connects to it); each wait is bounded and named, and nothing moves.
        let stop = |x: &Xvfb, sig| {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(x.pid() as i32), sig)
                .expect("signal Xvfb")
        };
        stop(&a, nix::sys::signal::Signal::SIGSTOP);
        let t = Instant::now();
        let e = fails(&[
            "move",
            &hex(app.window),
            &b.display,
            "--display",
            &a.display,
        ]);
        // Named by PID, the app itself meets the stopped source.
        let e2 = fails(&["move", "--pid", &pid, &b.display]);
        stop(&a, nix::sys::signal::Signal::SIGCONT);
        assert!(
            e.contains(&format!(
                "the X server of display {} accepted the connection but did not answer within 5 s: it is stopped",
                a.display
            )),
            "{e}"
        );
        assert!(
            e2.contains(&format!(
                "process {pid}: cannot connect to X display {}: the server accepted the connection but did not answer within 5 s: it is stopped (SIGSTOP, a debugger) or hung",
                a.display
            )),
            "{e2}"
        );
        assert!(!e2.contains("(Failed)"), "{e2}");
        assert!(t.elapsed() < Duration::from_secs(45), "{:?}", t.elapsed());
        stop(&b, nix::sys::signal::Signal::SIGSTOP);
        let e = fails(&["move", "--pid", &pid, &b.display]);
        stop(&b, nix::sys::signal::Signal::SIGCONT);
        assert!(
            e.contains("did not answer within 5 s: it is stopped (SIGSTOP, a debugger) or hung"),
            "{e}"
        );
        assert!(!e.contains("reading setup: timed out"), "{e}");
        assert!(a.is_running() && b.is_running());
        // The app is where it was and still works: a move now succeeds.
        succeeds(&["move", "--pid", &pid, &b.display]);
        wait_for_window(&b.display, app.pid, Duration::from_secs(15)).expect("on B");
    });
}

#[test]
fn a_target_caught_while_exiting_is_reported_as_exiting_not_as_a_ptrace_refusal() {
    use nix::sys::ptrace;
    use nix::sys::signal::{kill, Signal};
    use nix::sys::wait::{waitpid, WaitStatus};
    with_timeout(120, || {
        let a = Xvfb::start().expect("Xvfb");
        let mut app =
            App::spawn(&a.display, &["xterm", "-geometry", "40x8+0+0", "-e", "sh"]).expect("xterm");
        let p = nix::unistd::Pid::from_raw(app.pid as i32);
        // Hold the xterm at the start of its exit (PF_EXITING set, memory and descriptors
        // still there) — where a user's `guievict move` meets an app being closed.
        ptrace::seize(p, ptrace::Options::PTRACE_O_TRACEEXIT).expect("seize");
        kill(p, Signal::SIGTERM).expect("SIGTERM");
        loop {
            match waitpid(p, None).expect("waitpid") {
                WaitStatus::PtraceEvent(_, _, ev)
                    if ev == ptrace::Event::PTRACE_EVENT_EXIT as i32 =>
                {
                    break
                }
                WaitStatus::Stopped(_, sig) => ptrace::cont(p, Some(sig)).expect("cont"),
                WaitStatus::PtraceEvent(..) | WaitStatus::PtraceSyscall(_) => {
                    ptrace::cont(p, None).expect("cont")
                }
                other => panic!("xterm ended before its exit stop: {other:?}"),
            }
        }
        let (code, out, err) = run(&["hijack", &app.pid.to_string()]);
        let _ = ptrace::detach(p, None);
        let _ = app.child.wait();
        assert_ne!(code, 0, "hijacked an exiting process: {out}");
        assert!(
            err.contains(&format!(
                "process {} exited during the injection (it was closing while guievict attached to it)",
                app.pid
            )),
            "{err}"
        );
        assert!(!err.contains("refused ptrace"), "{err}");
        assert!(!err.contains("already traced"), "{err}");
    });
}

#[test]
fn show_refuses_devices_directories_and_huge_files_at_once() {
    with_timeout(60, || {
        let t = Instant::now();
        let e = fails(&["show", "/dev/zero"]);
        assert!(
            e.contains("/dev/zero is a device, not a session file: give a .gws file"),
            "{e}"
        );
        let dir = artifacts_dir().join(format!("cli-show-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let e = fails(&["show", dir.to_str().expect("utf-8 path")]);
        assert!(e.contains("is a directory, not a session file"), "{e}");
        // A sparse 2 GiB file: refused by its size, not read.
        let big = dir.join("big.gws");
        std::fs::File::create(&big)
            .and_then(|f| f.set_len(2 << 30))
            .expect("sparse file");
        let e = fails(&["show", big.to_str().expect("utf-8 path")]);
        assert!(
            e.contains(&format!(
                "{} is 2147483648 bytes; session files are far smaller (over 1024 MiB is refused)",
                big.display()
            )),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    });
}

/// Decode a PNG into (width, height, RGB pixels).
fn read_png(path: &std::path::Path) -> (u32, u32, Vec<[u8; 3]>) {
    let dec = png::Decoder::new(std::fs::File::open(path).expect("open png"));
    let mut r = dec.read_info().expect("png header");
    let mut buf = vec![0; r.output_buffer_size()];
    let info = r.next_frame(&mut buf).expect("png frame");
    assert_eq!(info.color_type, png::ColorType::Rgb, "not RGB");
    let px = buf[..info.buffer_size()]
        .chunks_exact(3)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    (info.width, info.height, px)
}

#[test]
fn show_png_draws_the_sessions_windows_as_a_contact_sheet() {
    with_timeout(120, || {
        let a = Xvfb::start().expect("Xvfb");
        let red = App::spawn(
            &a.display,
            &[
                "xterm",
                "-bg",
                "#ff0000",
                "-T",
                "red terminal",
                "-geometry",
                "50x10+0+0",
                "-e",
                "sh",
            ],
        )
        .expect("xterm");
        let calc = App::spawn(&a.display, &["xcalc"]).expect("xcalc");
        let dir = artifacts_dir().join(format!("cli-png-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (gws, sheet) = (dir.join("red.gws"), dir.join("red.png"));
        succeeds(&[
            "snapshot",
            "--pid",
            &red.pid.to_string(),
            "--display",
            &a.display,
            "--save",
            gws.to_str().expect("path"),
        ]);
        let (code, _, err) = run(&[
            "show",
            gws.to_str().expect("path"),
            "--png",
            sheet.to_str().expect("path"),
        ]);
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("1 window(s)"), "{err}");
        let geom = {
            use x11rb::protocol::xproto::ConnectionExt as _;
            let c = a.connect().expect("conn");
            c.get_geometry(red.window)
                .expect("geometry")
                .reply()
                .expect("geometry reply")
        };
        let (fw, fh) = (
            u32::from(geom.width + 2 * geom.border_width),
            u32::from(geom.height + 2 * geom.border_width),
        );
        let (w, h, px) = read_png(&sheet);
        // One cell: a 320×240 thumbnail area, a caption, 12-pixel gaps.
        assert_eq!((w, h), (12 + 320 + 12, 12 + 240 + 30 + 12), "sheet size");
        let scale = (f64::from(fw) / 320.0).max(f64::from(fh) / 240.0).max(1.0);
        let (tw, th) = (
            (f64::from(fw) / scale) as u32,
            (f64::from(fh) / scale) as u32,
        );
        let at = |x: u32, y: u32| px[(y * w + x) as usize];
        // Inside the thumbnail (away from the border) the window's red background…
        let mut reds = 0;
        let mut total = 0;
        for y in 12 + 3..12 + th - 3 {
            for x in 12 + 3..12 + tw - 3 {
                total += 1;
                if at(x, y) == [0xff, 0, 0] {
                    reds += 1;
                }
            }
        }
        assert!(
            reds * 100 >= total * 99,
            "{reds} of {total} thumbnail pixels red"
        );
        // …and outside it the sheet's grey: the thumbnail has the window's proportions.
        assert_eq!(
            at(12 + tw + 2, 12 + th / 2),
            [0xe8, 0xe8, 0xe8],
            "right of the thumbnail"
        );
        if th + 4 < 240 {
            assert_eq!(
                at(12 + tw / 2, 12 + th + 2),
                [0xe8, 0xe8, 0xe8],
                "below the thumbnail"
            );
        }
        // The caption (ID, size, title) is drawn: dark text on white under the thumbnail.
        let dark = (12 + 240..12 + 240 + 30)
            .flat_map(|y| (12..12 + 320).map(move |x| (x, y)))
            .filter(|&(x, y)| at(x, y)[0] < 0x40)
            .count();
        assert!(dark > 200, "caption has {dark} dark pixels");

        // Two applications' sessions are separate files; the calculator's sheet shows its
        // button grid: many distinct dark lines, not one flat colour.
        let (gws2, sheet2) = (dir.join("calc.gws"), dir.join("calc.png"));
        succeeds(&[
            "snapshot",
            "--pid",
            &calc.pid.to_string(),
            "--display",
            &a.display,
            "--save",
            gws2.to_str().expect("path"),
        ]);
        succeeds(&[
            "show",
            gws2.to_str().expect("path"),
            "--png",
            sheet2.to_str().expect("path"),
        ]);
        let (w2, _, px2) = read_png(&sheet2);
        let row: Vec<[u8; 3]> = (12..12 + 320)
            .map(|x| px2[((12 + 120) * w2 + x) as usize])
            .collect();
        let edges = row.windows(2).filter(|p| p[0] != p[1]).count();
        assert!(
            edges >= 8,
            "the calculator's thumbnail row has {edges} edges: {row:?}"
        );

        // Nothing is left running: the renderer's Xvfb (started as `Xvfb -displayfd`, where
        // the harness starts `/usr/bin/Xvfb`) went with the command. (guievict's private
        // server, `-auth …/private-display.xauth`, is another one: other tests' detaches
        // started it, and it lingers 10 s after its last client.)
        let leftover: Vec<String> = std::fs::read_dir("/proc")
            .expect("/proc")
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.starts_with("Xvfb -displayfd") && !c.contains("private-display.xauth"))
            .collect();
        assert!(
            leftover.is_empty(),
            "private servers left running: {leftover:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    });
}
