//! Issue 13: mpv with its X11 output (`--vo=x11`: XPutImage/ShmPutImage, no GL) playing a
//! generated video (lavfi `testsrc`, a running counter and moving colours). mpv selects
//! Present events on its window (libXpresent, for frame timing); guievict cannot yet read
//! such a selection back from the server, so a move is refused up front naming it — mpv stays
//! on A and keeps playing — and `--force` moves it anyway, naming the loss in the report, and
//! mpv keeps playing on B and back on A (the window's pixels keep changing). mpv's default GL
//! output is refused for GLX instead (`e2e_transaction.rs`, `e2e_refuse.rs`).
mod apps_common;

use apps_common::*;
use std::path::Path;
use std::process::Command;
use xvfb_harness::*;

fn start_mpv(display: &str, dir: &Path) -> AppGroup {
    let mut cmd = Command::new("mpv");
    cmd.args([
        "--no-config",
        "--vo=x11",
        "--ao=null",
        "--loop=inf",
        "--geometry=320x240+0+0",
        "--no-osc",
        "--no-input-default-bindings",
        "--really-quiet",
        "av://lavfi:testsrc=size=320x240:rate=25",
    ])
    .env("DISPLAY", display)
    .env("HOME", dir)
    .env("XDG_CONFIG_HOME", dir.join("config"))
    .env("SHELL", "/bin/sh")
    .env_remove("LD_PRELOAD")
    .env_remove("WAYLAND_DISPLAY");
    AppGroup::spawn(cmd, &dir.join("mpv.log"))
}

/// The video plays in the window: its pixels change.
fn playing(display: &str, w: u32, tag: &str) {
    let before = screenshot(display, w).expect("screenshot");
    let changed = wait_changed(display, w, &before, 0.01, &format!("mpv-{tag}"));
    eprintln!("{tag}: {:.1}% of the window changed", changed * 100.0);
}

/// `guievict move --force --json`: done, with the Present selection named as lost.
fn forced_move(pid: &str, to: &str, what: &str) {
    let r = guievict_json(&["move", "--pid", pid, to, "--force"])
        .unwrap_or_else(|e| panic!("{what}: {e:#}"));
    let text = r.to_string();
    eprintln!("{what}: {text}");
    assert!(
        text.contains("PresentEvent"),
        "{what}: the report does not name the Present selection it did not carry: {text}"
    );
}

#[test]
fn mpv_x11_output_is_refused_naming_present_and_plays_on_when_forced() {
    if !installed("mpv") {
        skip("mpv is not installed (scripts/setup-debian.sh installs it)");
        return;
    }
    with_timeout(90, || {
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let dir = artifacts_dir().join(format!("mpv-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let mut mpv = start_mpv(&a.display, &dir);
        let (w, pid) = main_window(&a.display, "mpv", 30);
        let p = pid.to_string();
        playing(&a.display, w, "on A");

        // Refused up front: exit 1, the reason named, mpv still playing on A.
        let out = Command::new(guievict_bin())
            .args(["move", "--pid", &p, &b.display])
            .output()
            .expect("guievict move");
        let err = String::from_utf8_lossy(&out.stderr);
        eprintln!("refused: {err}");
        assert_eq!(out.status.code(), Some(1), "move not refused: {err}");
        assert!(
            err.contains("PresentEvent"),
            "refusal does not say why: {err}"
        );
        assert!(
            mapped_toplevels(&b.display).is_ok_and(|ws| ws.is_empty()),
            "a refused move left windows on B"
        );
        playing(&a.display, w, "on A after the refusal");

        forced_move(&p, &b.display, "forced move A→B");
        let (wb, _) = main_window(&b.display, "mpv", 20);
        playing(&b.display, wb, "on B");

        let r = guievict_json(&["move", "--pid", &p, &a.display, "--force"]).expect("B→A");
        eprintln!("forced move B→A: {r}");
        let (wa, _) = main_window(&a.display, "mpv", 20);
        playing(&a.display, wa, "back on A");
        assert!(mpv.alive(), "mpv died");
    });
}
