//! Inline translation (issue 16, `guievict hijack --inline`): the app's own threads translate
//! its X traffic through libxcb's hooked socket calls. On real Xvfb servers with real apps:
//! `status` says `inline`, xterm types and moves A→B→A (relayed during each move, inline again
//! after), guarded or not; gtk3-widget-factory moves; the multi-threaded xcb stress client stays
//! correct; a panic in a hook falls back to relayed without killing the app.

mod hijack_common;
use hijack_common::{guievict, text};

use anyhow::{ensure, Context, Result};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use xvfb_harness::*;

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
        typing_works(&x.display, app.window, app.pid, "before")?;
        let st = status(app.pid)?;
        assert!(st["connections"][0]["inline_off"].is_null(), "{st}");
        assert_eq!(st["connections"][0]["io"], "inline", "{st}");
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

/// Wait until two screenshots taken 300 ms apart are equal (the app finished drawing).
fn stable_shot(display: &str, window: u32) -> Result<Image> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = screenshot(display, window)?;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = screenshot(display, window)?;
        if (now.width == last.width && now.height == last.height && now.rgb == last.rgb)
            || Instant::now() > deadline
        {
            return Ok(now);
        }
        last = now;
    }
}

/// Three Tab presses change gtk3-widget-factory's picture (the focus moves): input reaches it.
fn tab_changes_picture(display: &str, window: u32, step: &str) -> Result<()> {
    let before = stable_shot(display, window)?;
    for _ in 0..3 {
        xtest_key(display, Some(window), 0xff09)?;
    }
    let after = stable_shot(display, window)?;
    ensure!(
        before.rgb != after.rgb,
        "{step}: three Tab presses did not change the picture"
    );
    Ok(())
}

#[test]
fn inline_gtk3_widget_factory_moves() {
    if which("gtk3-widget-factory").is_none() {
        skip("gtk3-widget-factory is not installed (scripts/setup-debian.sh installs it)");
        return;
    }
    with_timeout(150, || -> Result<()> {
        let opts = XvfbOptions {
            screen: "1600x1200x24".into(),
            ..Default::default()
        };
        let a = Xvfb::start_with(opts.clone())?;
        let b = Xvfb::start_with(opts)?;
        let mut app = App::spawn_env(
            &a.display,
            &["gtk3-widget-factory"],
            &[("GTK_THEME", "Adwaita"), ("NO_AT_BRIDGE", "1")],
        )?;
        stable_shot(&a.display, app.window)?;
        hijack_inline(app.pid, false)?;
        wait_inline(app.pid)?;
        tab_changes_picture(&a.display, app.window, "a, inline")?;
        let st = status(app.pid)?;
        assert!(
            st["connections"][0]["inline_calls"].as_u64() > Some(10),
            "{st}"
        );
        let pid = app.pid.to_string();
        let before = stable_shot(&a.display, app.window)?;
        guievict_json(&["move", "--pid", &pid, &b.display])?;
        let wb = wait_for_window(&b.display, app.pid, Duration::from_secs(10))?;
        let on_b = stable_shot(&b.display, wb)?;
        assert_same_picture(&before, &on_b, "inline-gtk3-on-b");
        wait_inline(app.pid)?;
        tab_changes_picture(&b.display, wb, "b, inline")?;
        let before = stable_shot(&b.display, wb)?;
        guievict_json(&["move", "--pid", &pid, &a.display])?;
        let wa = wait_for_window(&a.display, app.pid, Duration::from_secs(10))?;
        let back = stable_shot(&a.display, wa)?;
        assert_same_picture(&before, &back, "inline-gtk3-back-on-a");
        wait_inline(app.pid)?;
        tab_changes_picture(&a.display, wa, "a again, inline")?;
        assert!(app.alive(), "gtk3-widget-factory died");
        Ok(())
    })
    .unwrap();
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(program))
            .find(|f| f.is_file())
    })
}

/// The three-thread xcb client (void, round-trip and checked requests, every reply verified)
/// hijacked inline while busy: it finishes with every reply consistent, and the hooks did the
/// work (two threads inside libxcb's hooked calls at once: one polling, one writing).
#[test]
fn inline_threaded_xcb_stress_client_stays_correct() {
    let Some(client) = hijack_common::build_stress_client("hijack_stress_client_inline") else {
        skip("cannot compile the C stress client (needs cc and libxcb1-dev)");
        return;
    };
    with_timeout(180, move || -> Result<()> {
        use std::io::{BufRead, BufReader, Read};
        let x = Xvfb::start_plain()?;
        for (secs, pause) in [("4", "0"), ("4", "200"), ("4", "0")] {
            let mut child = Command::new(&client)
                .args([secs, pause])
                .env("DISPLAY", &x.display)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::inherit())
                .spawn()?;
            let mut out = BufReader::new(child.stdout.take().context("stdout")?);
            let mut line = String::new();
            out.read_line(&mut line)?;
            ensure!(line.trim() == "READY", "client said {line:?}");
            std::thread::sleep(Duration::from_millis(150));
            let v = hijack_inline(child.id(), false)?;
            ensure!(v["outcome"]["interposed"].as_i64() >= Some(1), "{v}");
            wait_inline(child.id())?;
            std::thread::sleep(Duration::from_millis(500));
            let st = status(child.id())?;
            let calls = st["connections"][0]["inline_calls"].as_u64().unwrap_or(0);
            let mut rest = String::new();
            out.read_to_string(&mut rest)?;
            let exit = child.wait()?;
            ensure!(
                exit.success() && rest.starts_with("OK"),
                "client broken inline (pause {pause} µs): {rest} {exit:?}"
            );
            ensure!(calls > 100, "few inline calls ({calls}): {st}");
            eprintln!(
                "inline stress pause {pause} µs: {} ({calls} inline calls)",
                rest.trim()
            );
        }
        Ok(())
    })
    .unwrap();
}

mod survive_common;

/// `guievict hijack PID --guard --inline` with the test's runtime directory (its own private
/// server), then wait until the connection runs inline.
fn hijack_guarded_inline(rt: &Path, pid: u32) -> Result<()> {
    let out = Command::new(guievict_bin())
        .args(["hijack", &pid.to_string(), "--guard", "--inline"])
        .env("XDG_RUNTIME_DIR", rt)
        .output()?;
    ensure!(
        out.status.success(),
        "hijack --guard --inline: {}",
        text(&out)
    );
    survive_common::wait_status(rt, pid, "inline and guarded", |c| {
        c["io"] == "inline" && c["guard"].is_string()
    });
    Ok(())
}

/// A guarded app running inline outlives its X server (the hooks meet the primary's end,
/// hand over to the guimux thread, which promotes the guard), attaches elsewhere, types there
/// and goes inline again.
#[test]
fn inline_guarded_xterm_outlives_its_server() {
    use survive_common::*;
    with_timeout(120, || -> Result<()> {
        let rt = runtime_dir("inline-xterm");
        let rts = rt.to_str().context("utf-8 path")?;
        let mut a = Xvfb::start()?;
        let b = Xvfb::start()?;
        let mut app = App::spawn_env(
            &a.display,
            &["xterm", "-geometry", "40x6+0+0", "-e", "sh"],
            &[("XDG_RUNTIME_DIR", rts)],
        )?;
        settled_screenshot(&a.display, app.window)?;
        hijack_guarded_inline(&rt, app.pid)?;
        typing_works(&a.display, app.window, app.pid, "before")?;
        let (private, _) = private_server(&rt);
        a.kill();
        wait_status(
            &rt,
            app.pid,
            "held on the private server after A died",
            |c| c["held_on"].as_str() == Some(private.as_str()) && c["display"].is_null(),
        );
        assert!(app.alive(), "xterm died with its X server");
        gv(&rt, &["attach", &b.display, "--pid", &app.pid.to_string()])?;
        let wb = wait_for_window(&b.display, app.pid, Duration::from_secs(10))?;
        wait_status(&rt, app.pid, "on B, guarded and inline again", |c| {
            c["display"].as_str() == Some(b.display.as_str())
                && c["guard"].is_string()
                && c["io"] == "inline"
        });
        typing_works(&b.display, wb, app.pid, "on-b")?;
        assert!(app.alive(), "xterm died");
        Ok(())
    })
    .unwrap();
}

/// KillClient still ends a guarded app running inline (the server that closed the
/// connection still answers: no promotion).
#[test]
fn inline_kill_client_still_ends_a_guarded_app() {
    use survive_common::*;
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::ConnectionExt as _;
    with_timeout(60, || -> Result<()> {
        let rt = runtime_dir("inline-killclient");
        let rts = rt.to_str().context("utf-8 path")?;
        let mut a = Xvfb::start()?;
        let mut app = App::spawn_env(
            &a.display,
            &["xterm", "-geometry", "60x12+0+0", "-e", "sh"],
            &[("XDG_RUNTIME_DIR", rts)],
        )?;
        settled_screenshot(&a.display, app.window)?;
        hijack_guarded_inline(&rt, app.pid)?;
        let conn = a.connect()?;
        conn.kill_client(app.window)?;
        conn.flush()?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while app.alive() {
            ensure!(
                Instant::now() < deadline,
                "the app outlived a KillClient (the user asked it to end)"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        ensure!(a.is_running(), "A died");
        Ok(())
    })
    .unwrap();
}

/// Inline is the default of `hijack`; `hijack --relayed` turns it off (status says so, typing
/// still works), a plain `hijack` again turns it back on.
#[test]
fn default_hijack_is_inline_and_relayed_opts_out() {
    with_timeout(90, || -> Result<()> {
        let x = Xvfb::start()?;
        let mut app = App::spawn(&x.display, &["xterm", "-geometry", "60x12+0+0"])?;
        settled_screenshot(&x.display, app.window)?;
        let pid = app.pid.to_string();
        let o = guievict(&["hijack", &pid, "--no-guard"], &[])?;
        ensure!(o.status.success(), "hijack: {}", text(&o));
        wait_inline(app.pid)?;
        typing_works(&x.display, app.window, app.pid, "default")?;
        let o = guievict(&["hijack", &pid, "--relayed", "--no-guard"], &[])?;
        ensure!(o.status.success(), "hijack --relayed: {}", text(&o));
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(io_modes(app.pid)?, vec!["relayed".to_string()]);
        typing_works(&x.display, app.window, app.pid, "relayed")?;
        let o = guievict(&["hijack", &pid, "--no-guard"], &[("GUIEVICT_INLINE", "1")])?;
        ensure!(o.status.success(), "hijack: {}", text(&o));
        wait_inline(app.pid)?;
        typing_works(&x.display, app.window, app.pid, "inline-again")?;
        assert!(app.alive(), "xterm died");
        Ok(())
    })
    .unwrap();
}
