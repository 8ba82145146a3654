//! Issue 13: GIMP 2.10 (GTK2; its toolbox icons and canvas go through MIT-SHM) started with a
//! fresh configuration in its single-window layout, moved A→B→A and then detached and attached
//! to B. After each step the window must show what it showed before (≥ 98 % of all pixels and
//! ≥ 90 % of the non-background ones equal: the toolbox icons, menus and docks are intact), and
//! GIMP must still take keys on the new server: a tool shortcut (`r` rectangle select, `p`
//! paintbrush) typed with XTEST switches the tool, and the tool-options dock repaints.
mod apps_common;

use apps_common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use xvfb_harness::*;

const TITLE: &str = "GNU Image Manipulation Program";

fn start_gimp(display: &str, dir: &Path) -> AppGroup {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("home");
    let mut cmd = Command::new("gimp");
    cmd.args(["--no-splash", "--no-data", "--no-fonts", "--new-instance"])
        .env("DISPLAY", display)
        .env("HOME", &home)
        .env("GIMP2_DIRECTORY", dir.join("gimp-config"))
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("SHELL", "/bin/sh")
        .env_remove("LD_PRELOAD")
        .env_remove("WAYLAND_DISPLAY");
    AppGroup::spawn(cmd, &dir.join("gimp.log"))
}

/// Press a tool shortcut over the canvas and check that the tool-options dock repainted.
fn switch_tool(display: &str, w: u32, key: char, tag: &str) {
    let before = settled(display, w, Duration::from_millis(600), 5);
    xtest_type(display, Some(w), &key.to_string()).expect("type");
    let changed = wait_changed(display, w, &before, 0.02, &format!("gimp-key-{tag}"));
    eprintln!(
        "{tag}: '{key}' repainted {:.2}% of the window",
        changed * 100.0
    );
}

#[test]
fn gimp_moves_with_its_icons_and_stays_interactive() {
    if !installed("gimp") {
        skip("gimp is not installed (scripts/setup-debian.sh installs it)");
        return;
    }
    with_timeout(150, || {
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let dir = artifacts_dir().join(format!("gimp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let mut gimp = start_gimp(&a.display, &dir);
        let (w, pid) = main_window(&a.display, TITLE, 90);
        let p = pid.to_string();
        // GIMP builds its docks in steps with pauses between them (loading its resources):
        // the toolbox is complete once nothing changed for 3 s.
        let reference = settled(&a.display, w, Duration::from_secs(3), 60);

        op(&["move", "--pid", &p, &b.display], "gimp move A→B");
        let (wb, _) = main_window(&b.display, TITLE, 20);
        wait_same(&b.display, wb, &reference, "gimp-on-b");
        switch_tool(&b.display, wb, 'r', "on B");
        let reference = settled(&b.display, wb, Duration::from_millis(600), 10);

        op(&["move", "--pid", &p, &a.display], "gimp move B→A");
        let (wa, _) = main_window(&a.display, TITLE, 20);
        wait_same(&a.display, wa, &reference, "gimp-back-on-a");
        switch_tool(&a.display, wa, 'p', "back on A");
        let reference = settled(&a.display, wa, Duration::from_millis(600), 10);

        op(&["detach", "--pid", &p], "gimp detach");
        op(&["attach", "--pid", &p, &b.display], "gimp attach to B");
        let (wb, _) = main_window(&b.display, TITLE, 20);
        wait_same(&b.display, wb, &reference, "gimp-attached-on-b");
        switch_tool(&b.display, wb, 'r', "attached on B");
        assert!(gimp.alive(), "GIMP died");
        guievict_json(&["status", "--pid", &p]).expect("status after the moves");
    });
}
