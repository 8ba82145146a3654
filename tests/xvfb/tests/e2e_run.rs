//! End to end under `guievict run` (premeditated mode): real apps relayed through guimux look
//! and behave as direct, and move between two private Xvfb servers and back.
use std::time::Duration;
use xvfb_harness::*;

/// The app shows the same picture through guimux as directly.
fn transparent(argv: &[&str], name: &str) {
    let a = Xvfb::start().expect("Xvfb A");
    let direct = App::spawn(&a.display, argv).expect("direct app");
    let shot_direct = settled_screenshot(&a.display, direct.window).expect("shot direct");
    drop(direct);
    let bin = guievict_bin();
    let bin = bin.to_str().unwrap();
    let mut run = vec![bin, "run", "--display", &a.display, "--"];
    run.extend_from_slice(argv);
    let relayed = App::spawn(&a.display, &run).expect("app under guievict run");
    let shot_relayed = settled_screenshot(&a.display, relayed.window).expect("shot relayed");
    let c = compare(&shot_direct, &shot_relayed, &format!("run-{name}"));
    assert!(
        c.identical(),
        "{name}: {} pixels differ under guievict run",
        c.differing
    );
}

#[test]
fn xlogo_is_identical_under_run() {
    with_timeout(60, || {
        transparent(&["xlogo", "-geometry", "120x120+5+5"], "xlogo")
    });
}

#[test]
fn xterm_is_identical_under_run() {
    with_timeout(60, || {
        transparent(
            &[
                "xterm",
                "-geometry",
                "60x10+0+0",
                "-e",
                "sh",
                "-c",
                "echo relayed; sleep 30",
            ],
            "xterm",
        )
    });
}

/// Move an app A → B → A; each time the window looks the same and nothing stays behind.
fn move_round_trip(argv: &[&str], name: &str) {
    let a = Xvfb::start().expect("Xvfb A");
    let b = Xvfb::start().expect("Xvfb B");
    let bin = guievict_bin();
    let bin = bin.to_str().unwrap();
    let mut run = vec![bin, "run", "--display", &a.display, "--"];
    run.extend_from_slice(argv);
    let mut app = App::spawn(&a.display, &run).expect("app under guievict run");
    let before = settled_screenshot(&a.display, app.window).expect("shot on A");
    let pid = app.pid.to_string();
    let r = guievict_json(&["move", "--pid", &pid, &b.display]).expect("move A→B");
    eprintln!("move A→B: {r}");
    let wb = wait_for_window(&b.display, app.pid, Duration::from_secs(10)).expect("window on B");
    let on_b = settled_screenshot(&b.display, wb).expect("shot on B");
    let c = compare(&before, &on_b, &format!("move-{name}-ab"));
    assert!(
        c.equal_fraction >= 0.99,
        "{name} on B: only {:.3} equal",
        c.equal_fraction
    );
    assert!(
        windows_of_pid(&a.display, app.pid).unwrap().is_empty(),
        "windows left on A"
    );
    assert!(app.alive(), "{name} died");
    guievict_json(&["move", "--pid", &pid, &a.display]).expect("move B→A");
    let wa = wait_for_window(&a.display, app.pid, Duration::from_secs(10)).expect("window on A");
    let back = settled_screenshot(&a.display, wa).expect("shot back on A");
    let c = compare(&before, &back, &format!("move-{name}-ba"));
    assert!(
        c.equal_fraction >= 0.99,
        "{name} back on A: only {:.3} equal",
        c.equal_fraction
    );
    assert!(
        windows_of_pid(&b.display, app.pid).unwrap().is_empty(),
        "windows left on B"
    );
    assert!(app.alive(), "{name} died");
}

#[test]
fn xlogo_moves_and_comes_back() {
    with_timeout(90, || {
        move_round_trip(&["xlogo", "-geometry", "120x120+5+5"], "xlogo")
    });
}

#[test]
fn xterm_moves_and_comes_back() {
    with_timeout(90, || {
        move_round_trip(
            &[
                "xterm",
                "-geometry",
                "60x10+0+0",
                "-e",
                "sh",
                "-c",
                "echo moving; sleep 60",
            ],
            "xterm",
        )
    });
}
