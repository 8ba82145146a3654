//! Tests of the harness itself: servers start and stop without leaking, screenshots of a real
//! app are stable, XTEST typing reaches a real xterm.
use xvfb_harness::*;

#[test]
fn xvfb_starts_and_stops_twice_without_leaking() {
    with_timeout(60, || {
        for _ in 0..2 {
            let x = Xvfb::start_plain().expect("start Xvfb");
            let conn = x.connect().expect("connect");
            drop(conn);
            let pid = x.pid();
            drop(x);
            assert!(
                !std::path::Path::new(&format!("/proc/{pid}")).exists()
                    || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .map(|s| s.contains(") Z"))
                        .unwrap_or(true),
                "Xvfb {pid} still running after drop"
            );
        }
    });
}

#[test]
fn screenshot_of_xlogo_is_stable_and_nonblank() {
    with_timeout(60, || {
        let x = Xvfb::start_plain().expect("start Xvfb");
        let app = App::spawn(&x.display, &["xlogo", "-geometry", "120x120+10+10"]).expect("xlogo");
        std::thread::sleep(std::time::Duration::from_millis(300));
        let a = screenshot(&x.display, app.window).expect("shot a");
        let b = screenshot(&x.display, app.window).expect("shot b");
        assert_eq!((a.width, a.height), (120, 120));
        assert!(compare(&a, &b, "selftest-xlogo").identical());
        let first = a.pixel(0, 0);
        assert!(
            a.rgb.chunks(3).any(|p| p != first),
            "xlogo screenshot is a single colour"
        );
    });
}

#[test]
fn xtest_typing_reaches_xterm_shell() {
    with_timeout(60, || {
        let x = Xvfb::start_plain().expect("start Xvfb");
        let out = artifacts_dir().join(format!("selftest-typed-{}", std::process::id()));
        let _ = std::fs::remove_file(&out);
        let app = App::spawn(&x.display, &["xterm", "-geometry", "80x24+0+0", "-e", "sh"])
            .expect("xterm");
        std::thread::sleep(std::time::Duration::from_millis(500));
        xtest_type(
            &x.display,
            Some(app.window),
            &format!("echo Hello-World > {}\n", out.display()),
        )
        .expect("type");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Ok(s) = std::fs::read_to_string(&out) {
                if s.trim() == "Hello-World" {
                    break;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "typed text never reached the shell"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    });
}
