//! Issue 13: Chromium (`--no-sandbox --disable-gpu`) is two X clients — the browser and its GPU
//! process, which draws the browser's frames into the browser's windows with MIT-SHM — and
//! `guievict move --pid` must carry both. Before the group hold the move exited 0 and left a
//! blank window on B (the GPU process drew into a window that had left A, lost a ShmPutImage,
//! and the compositor waited forever for its completion). The test loads a local page with a
//! coloured background and a text area, moves A→B→A, then detaches and attaches to B; after
//! each step the window must show what it showed before (≥ 98 % of all pixels equal and ≥ 90 %
//! of the non-background ones, so a blank window cannot pass) and typing with XTEST on the
//! new server must reach the page and repaint it (every keystroke changes the page's
//! background colour and its title).
mod apps_common;

use apps_common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use xvfb_harness::*;

/// How long a window must stay unchanged to count as painted.
const QUIET: Duration = Duration::from_millis(800);

const PAGE: &str = r##"<!doctype html><html><head><title>start</title>
<style>body{margin:0;background:#3060a0;font-family:sans-serif}
h1{color:#ffe040;font-size:48px;margin:20px}
textarea{caret-color:transparent;font-size:40px;margin:20px}</style>
</head><body><h1>guievict moved me</h1>
<textarea id="t" autofocus rows="3" cols="24"></textarea>
<script>
const colours = ["#a03030", "#30a040", "#6030a0", "#a08020"];
const t = document.getElementById("t");
t.focus();
t.addEventListener("input", () => {
  document.title = "typed " + t.value;
  document.body.style.background = colours[t.value.length % colours.length];
});
</script></body></html>"##;

fn start_chromium(display: &str, dir: &Path) -> AppGroup {
    let page = dir.join("page.html");
    std::fs::write(&page, PAGE).expect("page");
    let url = format!("file://{}", page.display());
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--password-store=basic",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-position=0,0",
        "--window-size=900,700",
    ])
    .arg(format!("--user-data-dir={}", dir.join("profile").display()))
    .arg(&url)
    .env("DISPLAY", display)
    .env("HOME", dir)
    .env("XDG_CONFIG_HOME", dir.join("config"))
    .env("XDG_CACHE_HOME", dir.join("cache"))
    .env("SHELL", "/bin/sh")
    .env_remove("LD_PRELOAD")
    .env_remove("WAYLAND_DISPLAY")
    .env_remove("DBUS_SESSION_BUS_ADDRESS");
    AppGroup::spawn(cmd, &dir.join("chromium.log"))
}

fn wait_title(display: &str, w: u32, want: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let t = title(display, w);
        if t.contains(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "window title never showed {want:?} (it is {t:?}): input did not reach the page"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Type one character into the text area and check that the page took it (title) and that
/// the window repainted (the background changes colour: most pixels change).
fn type_and_see(display: &str, w: u32, typed: &str, ch: char, tag: &str) {
    let before = screenshot(display, w).expect("screenshot");
    xtest_type(display, Some(w), &ch.to_string()).expect("type");
    wait_title(display, w, &format!("typed {typed}{ch}"), 20);
    wait_changed(display, w, &before, 0.4, &format!("chromium-typed-{tag}"));
}

/// `guievict ARGS`, which must carry the browser *and* its GPU process (the report lists
/// both) and lose nothing.
fn group_op(args: &[&str], what: &str) {
    let (r, procs, _) = op(args, what);
    assert!(
        procs >= 2,
        "{what}: the browser's GPU process was not carried with it ({procs} process(es)): {r}"
    );
}

#[test]
fn chromium_moves_and_stays_interactive() {
    if !installed("chromium") {
        skip("chromium is not installed (scripts/setup-debian.sh installs it)");
        return;
    }
    with_timeout(120, || {
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let dir = artifacts_dir().join(format!("chromium-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let _browser = start_chromium(&a.display, &dir);
        let (w, pid) = main_window(&a.display, "start", 60);
        let p = pid.to_string();
        // The test sees a repaint at all (on the original server).
        std::thread::sleep(Duration::from_secs(1));
        type_and_see(&a.display, w, "", 'a', "on-a");
        let reference = settled(&a.display, w, QUIET, 10);

        group_op(&["move", "--pid", &p, &b.display], "move A→B");
        let (wb, _) = main_window(&b.display, "typed a", 20);
        wait_same(&b.display, wb, &reference, "chromium-on-b");
        type_and_see(&b.display, wb, "a", 'b', "on-b");
        let reference = settled(&b.display, wb, QUIET, 10);

        group_op(&["move", "--pid", &p, &a.display], "move B→A");
        let (wa, _) = main_window(&a.display, "typed ab", 20);
        wait_same(&a.display, wa, &reference, "chromium-back-on-a");

        group_op(&["detach", "--pid", &p], "detach");
        let gone = Instant::now() + Duration::from_secs(10);
        while mapped_toplevels(&a.display).is_ok_and(|ws| ws.contains(&wa)) {
            assert!(Instant::now() < gone, "the window stayed on A after detach");
            std::thread::sleep(Duration::from_millis(100));
        }
        group_op(&["attach", "--pid", &p, &b.display], "attach to B");
        let (wb, _) = main_window(&b.display, "typed ab", 20);
        wait_same(&b.display, wb, &reference, "chromium-attached-on-b");
        type_and_see(&b.display, wb, "ab", 'c', "attached-on-b");
        // The browser is alive and still hijacked.
        guievict_json(&["status", "--pid", &p]).expect("status after the moves");
    });
}
