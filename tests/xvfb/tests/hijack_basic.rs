//! `guievict hijack` against real applications on a private Xvfb: the application keeps working
//! (same pixels, typing still reaches xterm's shell, same PID), a second hijack is a no-op, and
//! every refusal (no X connection, another user's process, a process that dies mid-injection,
//! a second uid on the control socket) is a clear error with the target unharmed.

mod hijack_common;
use hijack_common::{guievict, text};

use anyhow::{ensure, Context, Result};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use xvfb_harness::{
    compare, guievict_bin, hijack_path, settled_screenshot, wait_until, with_timeout, xtest_key,
    xtest_type, App, Xvfb, XvfbOptions,
};

fn hijack_json(pid: u32) -> Result<serde_json::Value> {
    let o = guievict(&["hijack", &pid.to_string(), "--json"], &[])?;
    ensure!(o.status.success(), "hijack failed: {}", text(&o));
    Ok(serde_json::from_slice(&o.stdout)?)
}

fn require_artifacts() -> bool {
    if !hijack_path().exists() || !guievict_bin().exists() {
        panic!(
            "build first: {} / {} missing (cargo build -p guievict -p guievict-hijack)",
            hijack_path().display(),
            guievict_bin().display()
        );
    }
    true
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

#[test]
fn hijack_xterm_keeps_working_and_is_idempotent() {
    require_artifacts();
    with_timeout(90, || -> Result<()> {
        let x = Xvfb::start_plain()?;
        let mut app = App::spawn(&x.display, &["xterm", "-geometry", "80x24+0+0"])?;
        // The shell prompt drawn (not blank) and the picture stable: only then compare
        // before/after.
        let before = settled_screenshot(&x.display, app.window)?;

        let v = hijack_json(app.pid)?;
        assert_eq!(v["outcome"]["already_loaded"], false, "{v}");
        assert!(v["outcome"]["interposed"].as_i64() >= Some(1), "{v}");
        assert_eq!(v["status"]["pid"], app.pid, "{v}");
        assert_eq!(v["status"]["mode"], "injected", "{v}");
        assert!(app.alive(), "xterm died after hijack");

        let after = settled_screenshot(&x.display, app.window)?;
        let same = compare(&before, &after, "hijack-xterm");
        assert!(same.equal_fraction >= 0.999, "screen changed: {same:?}");

        // Typing still reaches the shell through the relay.
        let file = std::env::temp_dir().join(format!("guievict-hijack-{}", app.pid));
        let _ = std::fs::remove_file(&file);
        xtest_type(
            &x.display,
            Some(app.window),
            &format!("echo hi > {}", file.display()),
        )?;
        xtest_key(&x.display, Some(app.window), 0xff0d)?;
        wait_file(&file, "hi", Duration::from_secs(10))?;
        let _ = std::fs::remove_file(&file);

        // Traffic went through the relay.
        let o = guievict(&["status", "--pid", &app.pid.to_string(), "--json"], &[])?;
        ensure!(o.status.success(), "status failed: {}", text(&o));
        let st: serde_json::Value = serde_json::from_slice(&o.stdout)?;
        let conns = st["connections"].as_array().context("connections")?;
        assert!(!conns.is_empty(), "{st}");
        assert_eq!(conns[0]["server_connected"], true, "{st}");

        // Second hijack: nothing injected again.
        let v2 = hijack_json(app.pid)?;
        assert_eq!(v2["outcome"]["already_loaded"], true, "{v2}");
        assert_eq!(v2["outcome"]["interposed"], 0, "{v2}");
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", app.pid))?;
        let loads = maps
            .lines()
            .filter(|l| l.contains("libguievict_hijack.so") && l.contains(" 00000000 "))
            .count();
        assert_eq!(loads, 1, "library mapped more than once:\n{maps}");

        // `list` shows it.
        let o = guievict(&["list", "--json"], &[])?;
        ensure!(o.status.success(), "list failed: {}", text(&o));
        let l: serde_json::Value = serde_json::from_slice(&o.stdout)?;
        assert!(
            l.as_array()
                .is_some_and(|a| a.iter().any(|s| s["pid"] == app.pid)),
            "{l}"
        );
        assert!(app.alive());
        Ok(())
    })
    .unwrap();
}

#[test]
fn hijack_xclock_and_xeyes() {
    require_artifacts();
    with_timeout(90, || -> Result<()> {
        let x = Xvfb::start_plain()?;
        for argv in [&["xclock"][..], &["xeyes"][..]] {
            let mut app = App::spawn(&x.display, argv)?;
            settled_screenshot(&x.display, app.window)?;
            let v = hijack_json(app.pid)?;
            assert!(v["outcome"]["interposed"].as_i64() >= Some(1), "{v}");
            // Make it draw: move the pointer across (xeyes follows it), then check it is alive
            // and that its window still answers.
            xvfb_harness::xtest_click(&x.display, app.window, 5, 5, 4)?;
            // Drawn and quiet again after the pointer motion: the app went through it.
            settled_screenshot(&x.display, app.window)?;
            assert!(app.alive(), "{argv:?} died after hijack");
            let o = guievict(&["status", "--pid", &app.pid.to_string(), "--json"], &[])?;
            ensure!(o.status.success(), "status failed: {}", text(&o));
            let st: serde_json::Value = serde_json::from_slice(&o.stdout)?;
            assert_eq!(
                st["connections"][0]["server_connected"], true,
                "{argv:?}: {st}"
            );
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn hijack_refuses_process_without_x_connection() {
    require_artifacts();
    with_timeout(30, || -> Result<()> {
        let mut sleeper = Command::new("sleep").arg("100").spawn()?;
        // Running: exec'd and linked (libc mapped).
        let maps = format!("/proc/{}/maps", sleeper.id());
        wait_until("sleep is running", Duration::from_secs(10), || {
            std::fs::read_to_string(&maps).is_ok_and(|m| m.contains("libc.so.6"))
        })?;
        let o = guievict(&["hijack", &sleeper.id().to_string()], &[])?;
        let t = text(&o);
        let alive = matches!(sleeper.try_wait(), Ok(None));
        let _ = sleeper.kill();
        let _ = sleeper.wait();
        assert!(!o.status.success(), "{t}");
        assert!(t.contains("no X connection"), "{t}");
        assert!(alive, "sleep died");
        Ok(())
    })
    .unwrap();
}

#[test]
fn hijack_reports_target_dying_mid_injection() {
    require_artifacts();
    with_timeout(60, || -> Result<()> {
        let x = Xvfb::start_plain()?;
        let mut app = App::spawn(&x.display, &["xterm"])?;
        // The test hook makes the injector kill the target right after seizing every thread,
        // i.e. exactly in the middle of the injection.
        let o = guievict(
            &["hijack", &app.pid.to_string()],
            &[("GUIEVICT_INJECT_TEST_HOOK", "kill-after-seize")],
        )?;
        let t = text(&o);
        assert!(!o.status.success(), "{t}");
        assert!(t.contains("exited during the injection"), "{t}");
        wait_until("the killed xterm is gone", Duration::from_secs(10), || {
            !app.alive()
        })?;
        Ok(())
    })
    .unwrap();
}

fn setpriv(uid: u32) -> Vec<String> {
    vec![
        "setpriv".into(),
        format!("--reuid={uid}"),
        format!("--regid={uid}"),
        "--clear-groups".into(),
    ]
}

#[test]
fn hijack_refuses_other_users_process_and_control_socket_checks_uid() {
    require_artifacts();
    if !nix::unistd::geteuid().is_root() {
        xvfb_harness::skip("hijack_refuses_other_users_process: needs root to run xterm as nobody");
        return;
    }
    with_timeout(90, || -> Result<()> {
        let x = Xvfb::start_with(XvfbOptions {
            preload_ext: false,
            extra_args: vec!["-ac".into()],
            ..XvfbOptions::default()
        })?;
        let mut argv = setpriv(65534);
        argv.push("xterm".into());
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let mut app = App::spawn_env(
            &x.display,
            &argv,
            &[("HOME", "/tmp"), ("XDG_RUNTIME_DIR", "/nonexistent")],
        )?;
        // Another unprivileged user (daemon, uid 1) may not hijack nobody's xterm.
        let mut cmd = setpriv(1);
        cmd.push(guievict_bin().display().to_string());
        let o = Command::new(&cmd[0])
            .args(&cmd[1..])
            .args(["hijack", &app.pid.to_string()])
            .env("GUIEVICT_HIJACK", hijack_path())
            .output()?;
        let t = text(&o);
        assert!(!o.status.success(), "{t}");
        assert!(t.contains("belongs to uid 65534"), "{t}");
        assert!(app.alive());

        // Root may: the library then serves nobody's control socket.
        let v = hijack_json(app.pid)?;
        assert!(v["outcome"]["interposed"].as_i64() >= Some(1), "{v}");
        let sock = v["status"]["socket"]
            .as_str()
            .context("socket")?
            .to_string();
        assert!(
            sock.starts_with("/tmp/guievict-65534/"),
            "unexpected socket {sock}"
        );
        // Open the directory and socket file up so that only SO_PEERCRED stands in the way.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            "/tmp/guievict-65534",
            std::fs::Permissions::from_mode(0o755),
        )?;
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777))?;
        let mut cmd = setpriv(1);
        cmd.push(guievict_bin().display().to_string());
        let o = Command::new(&cmd[0])
            .args(&cmd[1..])
            .args(["status", "--pid", &app.pid.to_string()])
            .output()?;
        let t = text(&o);
        assert!(!o.status.success(), "{t}");
        assert!(t.contains("may not control"), "{t}");
        assert!(app.alive(), "xterm died after a refused control connection");
        // The owner's side still works after the refusal.
        let o = guievict(&["status", "--pid", &app.pid.to_string(), "--json"], &[])?;
        ensure!(o.status.success(), "root status failed: {}", text(&o));
        Ok(())
    })
    .unwrap();
}
