//! guievict never loses the user's app: faults provoked inside a hijacked xterm (a guimux panic,
//! a controller panic that poisons its lock — through the `GUIEVICT_TEST_FAULTS=1` test hook)
//! and a target X server that stops answering during an attach. After each, the xterm is
//! alive, typing reaches its shell, and `guievict status` answers within a second.

use anyhow::{ensure, Context, Result};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use xvfb_harness::{
    guievict_bin, guievict_json, hijack_path, wait_for_file, wait_for_window, with_timeout,
    xtest_key, xtest_type, App, Xvfb,
};

fn guievict(args: &[&str]) -> Result<Output> {
    Command::new(guievict_bin())
        .args(args)
        .env("GUIEVICT_HIJACK", hijack_path())
        .output()
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

fn xterm(display: &str) -> Result<App> {
    let app = App::spawn_env(
        display,
        &["xterm", "-geometry", "80x24+0+0"],
        &[("GUIEVICT_TEST_FAULTS", "1")],
    )?;
    // Let the shell start before anything is typed.
    std::thread::sleep(Duration::from_millis(800));
    Ok(app)
}

/// Type `echo <word> > file` + Return into the xterm on `display`; wait for the file.
fn typing_works(display: &str, app: &App, word: &str) {
    let file = std::env::temp_dir().join(format!("guievict-robust-{}-{word}", app.pid));
    let _ = std::fs::remove_file(&file);
    // Its window on that display (another ID after a move).
    let w = wait_for_window(display, app.pid, Duration::from_secs(10)).unwrap();
    xtest_type(
        display,
        Some(w),
        &format!("echo {word} > {}", file.display()),
    )
    .unwrap();
    xtest_key(display, Some(w), 0xff0d).unwrap();
    wait_for_file(&file, word, Duration::from_secs(10));
    let _ = std::fs::remove_file(&file);
}

/// `guievict status --pid` answered (measured), as JSON.
fn status(pid: u32) -> Result<(serde_json::Value, Duration)> {
    let t = Instant::now();
    let o = guievict(&["status", "--pid", &pid.to_string(), "--json"])?;
    let took = t.elapsed();
    ensure!(o.status.success(), "status failed: {}", text(&o));
    Ok((serde_json::from_slice(&o.stdout)?, took))
}

#[test]
fn engine_panic_falls_back_to_pass_through() {
    with_timeout(120, || -> Result<()> {
        let x = Xvfb::start()?;
        let mut app = xterm(&x.display)?;
        let pid = app.pid.to_string();
        guievict_json(&["hijack", &pid])?;
        typing_works(&x.display, &app, "before");

        let o = guievict(&["debug-fault", &pid, "engine-panic"])?;
        ensure!(o.status.success(), "debug-fault: {}", text(&o));
        // The next message panics inside guimux; the connection goes on as a pass-through.
        typing_works(&x.display, &app, "during");
        typing_works(&x.display, &app, "after");
        ensure!(app.alive(), "xterm died after a guimux panic");

        let (st, took) = status(app.pid)?;
        let d = st["connections"][0]["degraded"]
            .as_str()
            .context("status does not show the degraded state")?;
        ensure!(d.contains("passing bytes through"), "{st}");
        // Its guard (made by default) stood in the way of the pass-through: it went.
        ensure!(d.contains("guard dropped"), "{st}");
        ensure!(st["connections"][0]["guard"].is_null(), "{st}");
        ensure!(took < Duration::from_secs(1), "status took {took:?}");

        // Detaching is refused with a clear message; the app is untouched.
        let o = guievict(&["detach", "--pid", &pid])?;
        ensure!(
            !o.status.success(),
            "detach of a degraded connection succeeded"
        );
        ensure!(text(&o).contains("degraded"), "{}", text(&o));
        typing_works(&x.display, &app, "still");
        ensure!(app.alive());
        Ok(())
    })
    .unwrap();
}

#[test]
fn engine_panic_after_a_move_keeps_the_app_alive() {
    with_timeout(150, || -> Result<()> {
        let a = Xvfb::start()?;
        let b = Xvfb::start()?;
        let mut app = xterm(&a.display)?;
        let pid = app.pid.to_string();
        guievict_json(&["move", "--pid", &pid, &b.display])?;
        typing_works(&b.display, &app, "moved");

        // Translating now (maps in use): no pass-through; guimux goes on with the engine.
        let o = guievict(&["debug-fault", &pid, "engine-panic"])?;
        ensure!(o.status.success(), "debug-fault: {}", text(&o));
        typing_works(&b.display, &app, "after");
        ensure!(app.alive(), "xterm died after a guimux panic");
        let (st, _) = status(app.pid)?;
        let d = st["connections"][0]["degraded"]
            .as_str()
            .context("no degraded state")?;
        ensure!(d.contains("relaying on"), "{st}");
        Ok(())
    })
    .unwrap();
}

#[test]
fn poisoned_controller_recovers() {
    with_timeout(150, || -> Result<()> {
        let a = Xvfb::start()?;
        let b = Xvfb::start()?;
        let mut app = xterm(&a.display)?;
        let pid = app.pid.to_string();
        guievict_json(&["hijack", &pid])?;

        let o = guievict(&["debug-fault", &pid, "controller-panic"])?;
        ensure!(!o.status.success(), "a controller panic was not reported");
        ensure!(text(&o).contains("panic"), "{}", text(&o));

        // Every later request works: the GUI goes away and comes back.
        guievict_json(&["detach", "--pid", &pid]).context("detach after the panic")?;
        let (st, _) = status(app.pid)?;
        ensure!(st["connections"][0]["server_connected"] == false, "{st}");
        guievict_json(&["attach", &b.display, "--pid", &pid]).context("attach after the panic")?;
        typing_works(&b.display, &app, "back");

        // A panic while detached: the GUI can still come back.
        guievict_json(&["detach", "--pid", &pid])?;
        let o = guievict(&["debug-fault", &pid, "controller-panic"])?;
        ensure!(!o.status.success());
        guievict_json(&["attach", &a.display, "--pid", &pid])
            .context("attach after a panic while detached")?;
        typing_works(&a.display, &app, "again");
        ensure!(app.alive());
        Ok(())
    })
    .unwrap();
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
}

/// Attach to `target` with `target` stopped `stop_after` into the attach (None: before it).
fn attach_to_stopped_server(stop_after: Option<Duration>) -> Result<()> {
    use nix::sys::signal::Signal;
    let a = Xvfb::start()?;
    let b = Xvfb::start()?;
    let mut app = xterm(&a.display)?;
    let pid = app.pid.to_string();
    guievict_json(&["hijack", &pid])?;
    guievict_json(&["detach", "--pid", &pid])?;
    if stop_after.is_none() {
        signal(b.pid(), Signal::SIGSTOP);
    }
    let t0 = Instant::now();
    let attach = Command::new(guievict_bin())
        .args(["attach", &b.display, "--pid", &pid])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    if let Some(d) = stop_after {
        std::thread::sleep(d);
        signal(b.pid(), Signal::SIGSTOP);
    }
    // While the attach hangs on the stopped server, status answers within a second.
    std::thread::sleep(Duration::from_millis(300));
    let (st, took) = status(app.pid)?;
    ensure!(took < Duration::from_secs(1), "status took {took:?}: {st}");
    let out = attach.wait_with_output()?;
    let took_attach = t0.elapsed();
    signal(b.pid(), Signal::SIGCONT);
    let msg = text(&out);
    if out.status.success() {
        // The stop came after the attach had finished its round trips: nothing to prove but
        // that the app works.
        eprintln!("attach finished before the stop ({took_attach:?})");
        typing_works(&b.display, &app, "finished");
        return Ok(());
    }
    eprintln!("attach failed after {took_attach:?}: {msg}");
    ensure!(
        took_attach < Duration::from_secs(20),
        "attach took {took_attach:?}"
    );
    ensure!(
        msg.contains("did not answer") || msg.contains("timed out"),
        "unclear failure: {msg}"
    );
    let (_, took) = status(app.pid)?;
    ensure!(took < Duration::from_secs(1), "status took {took:?}");
    ensure!(app.alive(), "xterm died");
    // The GUI comes back (on A, where it came from, or again on the revived B).
    let st = guievict_json(&["status", "--pid", &pid])?;
    if st["connections"][0]["server_connected"] == false {
        guievict_json(&["attach", &a.display, "--pid", &pid]).context("attach back to A")?;
        typing_works(&a.display, &app, "home");
    } else {
        let d = st["connections"][0]["display"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let shown = if d == b.display {
            &b.display
        } else {
            &a.display
        };
        typing_works(shown, &app, "home");
    }
    Ok(())
}

#[test]
fn attach_to_a_stopped_server_fails_in_time() {
    with_timeout(120, || attach_to_stopped_server(None)).unwrap();
}

#[test]
fn attach_with_the_server_stopped_midway_fails_in_time() {
    with_timeout(240, || -> Result<()> {
        for ms in [10u64, 25] {
            attach_to_stopped_server(Some(Duration::from_millis(ms)))
                .with_context(|| format!("server stopped {ms} ms into the attach"))?;
        }
        Ok(())
    })
    .unwrap();
}
