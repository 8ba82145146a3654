//! Issue 13: mpv playing a generated video (lavfi `testsrc`, a running counter and moving
//! colours), with its X11 output (`--vo=x11`: XPutImage/ShmPutImage) and with its default GL
//! output (`--vo=gpu`, direct GLX with Mesa's software renderer). Both select Present events
//! on their window (libXpresent, for frame timing): the GUIEVICT extension reads each selection
//! back and guievict makes it again on the target; the GL output's GLX context is carried too.
//! Each moves A→B→A and detaches/attaches with no loss reported and keeps playing (the
//! window's pixels keep changing).
mod apps_common;

use apps_common::*;
use std::path::Path;
use std::process::Command;
use xvfb_harness::*;

fn start_mpv(display: &str, dir: &Path, vo: &str) -> AppGroup {
    let mut cmd = Command::new("mpv");
    cmd.args([
        "--no-config",
        &format!("--vo={vo}"),
        // Mesa's software renderer is all Xvfb offers; mpv's GL output refuses it unless told.
        "--gpu-sw",
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

/// mpv with `vo` moves A→B→A and detaches/attaches, no loss reported, playing all along.
fn moves_and_plays(vo: &str) {
    if !installed("mpv") {
        skip("mpv is not installed (scripts/setup-debian.sh installs it)");
        return;
    }
    let vo = vo.to_string();
    with_timeout(120, move || {
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let dir = artifacts_dir().join(format!("mpv-{vo}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let mut mpv = start_mpv(&a.display, &dir, &vo);
        let (w, pid) = main_window(&a.display, "mpv", 30);
        let p = pid.to_string();
        playing(&a.display, w, &format!("{vo} on A"));

        op(
            &["move", "--pid", &p, &b.display],
            &format!("mpv {vo}: move A→B"),
        );
        let (wb, _) = main_window(&b.display, "mpv", 20);
        playing(&b.display, wb, &format!("{vo} on B"));

        op(
            &["move", "--pid", &p, &a.display],
            &format!("mpv {vo}: move B→A"),
        );
        let (wa, _) = main_window(&a.display, "mpv", 20);
        playing(&a.display, wa, &format!("{vo} back on A"));

        op(&["detach", "--pid", &p], &format!("mpv {vo}: detach"));
        op(
            &["attach", "--pid", &p, &a.display],
            &format!("mpv {vo}: attach"),
        );
        let (wa, _) = main_window(&a.display, "mpv", 20);
        playing(&a.display, wa, &format!("{vo} attached on A"));
        assert!(mpv.alive(), "mpv died");
    });
}

#[test]
fn mpv_x11_output_moves_with_its_present_selection_and_plays_on() {
    moves_and_plays("x11");
}

#[test]
fn mpv_gl_output_moves_with_its_glx_context_and_plays_on() {
    moves_and_plays("gpu");
}
