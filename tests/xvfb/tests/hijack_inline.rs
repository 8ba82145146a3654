//! Inline translation (issue 16, `guievict hijack --inline`): the app's own threads translate
//! its X traffic through libxcb's hooked socket calls. On real Xvfb servers with real apps:
//! `status` says `inline`, xterm types and moves A→B→A (relayed during each move, inline again
//! after), guarded or not; gtk3-widget-factory moves; the multi-threaded xcb stress client stays
//! correct; a panic in a hook falls back to relayed without killing the app.

use anyhow::{ensure, Context, Result};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use xvfb_harness::*;

fn guievict(args: &[&str], env: &[(&str, &str)]) -> Result<Output> {
    let mut cmd = Command::new(guievict_bin());
    cmd.args(args).env("GUIEVICT_HIJACK", hijack_path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output()
        .with_context(|| format!("running {}", guievict_bin().display()))
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn status(pid: u32) -> Result<serde_json::Value> {
    guievict_json(&["status", "--pid", &pid.to_string()])
}

/// The `io` of every attached connection of `pid`.
fn io_modes(pid: u32) -> Result<Vec<String>> {
    let st = status(pid)?;
    Ok(st["connections"]
        .as_array()
        .context("connections")?
        .iter()
        .filter(|c| c["server_connected"] == true)
        .map(|c| c["io"].as_str().unwrap_or("?").to_string())
        .collect())
}

/// Wait until every attached connection of `pid` runs inline.
fn wait_inline(pid: u32) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = io_modes(pid)?;
        if !m.is_empty() && m.iter().all(|m| m == "inline") {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "not inline after 5 s: {m:?} {}",
            status(pid)?
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn hijack_inline(pid: u32, guard: bool) -> Result<serde_json::Value> {
    let pid = pid.to_string();
    let mut args = vec!["hijack", pid.as_str(), "--inline", "--json"];
    if !guard {
        args.push("--no-guard");
    }
    let o = guievict(&args, &[])?;
    ensure!(o.status.success(), "hijack failed: {}", text(&o));
    Ok(serde_json::from_slice(&o.stdout)?)
}

fn wait_file(path: &Path, want: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if s.trim() == want {
                return Ok(());
            }
        }
        ensure!(
            Instant::now() < deadline,
            "{} never contained {want:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Type `echo WORD > FILE` + Return into the xterm and wait for the file.
fn typing_works(display: &str, window: u32, pid: u32, word: &str) -> Result<()> {
    let file = std::env::temp_dir().join(format!("guievict-inline-{pid}-{word}"));
    let _ = std::fs::remove_file(&file);
    xtest_type(
        display,
        Some(window),
        &format!("echo {word} > {}", file.display()),
    )?;
    xtest_key(display, Some(window), 0xff0d)?;
    wait_file(&file, word, Duration::from_secs(10))?;
    let _ = std::fs::remove_file(&file);
    Ok(())
}

fn xterm_moves(guard: bool) -> Result<()> {
    let a = Xvfb::start()?;
    let b = Xvfb::start()?;
    let mut app = App::spawn(&a.display, &["xterm", "-geometry", "60x12+0+0"])?;
    let before = settled_screenshot(&a.display, app.window)?;
    let v = hijack_inline(app.pid, guard)?;
    assert!(v["outcome"]["interposed"].as_i64() >= Some(1), "{v}");
    wait_inline(app.pid)?;
    if guard {
        let st = status(app.pid)?;
        assert!(st["connections"][0]["guard"].is_string(), "{st}");
    }
    let after = settled_screenshot(&a.display, app.window)?;
    let same = compare(&before, &after, "inline-xterm");
    assert!(same.equal_fraction >= 0.999, "screen changed: {same:?}");
    typing_works(&a.display, app.window, app.pid, "one")?;
    // Traffic went through the hooks, in the app's thread.
    let st = status(app.pid)?;
    assert!(
        st["connections"][0]["inline_calls"].as_u64() > Some(10),
        "{st}"
    );

    let pid = app.pid.to_string();
    let shown = settled_screenshot(&a.display, app.window)?;
    guievict_json(&["move", "--pid", &pid, &b.display])?;
    let wb = wait_for_window(&b.display, app.pid, Duration::from_secs(10))?;
    assert_picture_returns(&shown, &b.display, wb, "inline-xterm-on-b");
    wait_inline(app.pid)?;
    typing_works(&b.display, wb, app.pid, "two")?;
    let shown = settled_screenshot(&b.display, wb)?;
    guievict_json(&["move", "--pid", &pid, &a.display])?;
    let wa = wait_for_window(&a.display, app.pid, Duration::from_secs(10))?;
    assert_picture_returns(&shown, &a.display, wa, "inline-xterm-back-on-a");
    wait_inline(app.pid)?;
    typing_works(&a.display, wa, app.pid, "three")?;
    assert!(app.alive(), "xterm died");
    Ok(())
}

#[test]
fn inline_xterm_types_and_moves() {
    with_timeout(120, || xterm_moves(false)).unwrap();
}

#[test]
fn inline_guarded_xterm_types_and_moves() {
    with_timeout(120, || xterm_moves(true)).unwrap();
}

#[test]
fn inline_hook_panic_falls_back_to_relayed() {
    with_timeout(90, || -> Result<()> {
        let x = Xvfb::start()?;
        let mut app = App::spawn_env(
            &x.display,
            &["xterm", "-geometry", "60x12+0+0"],
            &[("GUIEVICT_TEST_FAULTS", "1")],
        )?;
        settled_screenshot(&x.display, app.window)?;
        hijack_inline(app.pid, false)?;
        wait_inline(app.pid)?;
        let o = guievict(&["debug-fault", &app.pid.to_string(), "hook-panic"], &[])?;
        ensure!(o.status.success(), "debug-fault: {}", text(&o));
        // The next hooked call panics: typing makes xterm call libxcb.
        typing_works(&x.display, app.window, app.pid, "after")?;
        let st = status(app.pid)?;
        let c = &st["connections"][0];
        assert_eq!(c["io"], "relayed", "{st}");
        assert!(
            c["inline_off"]
                .as_str()
                .is_some_and(|s| s.contains("panicked")),
            "{st}"
        );
        assert!(c["degraded"].is_null(), "{st}");
        typing_works(&x.display, app.window, app.pid, "again")?;
        assert!(app.alive(), "xterm died after the hook panic");
        Ok(())
    })
    .unwrap();
}
