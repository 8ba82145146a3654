//! Shared by the tests of issue 14 (`survive_server_death.rs`, `survive_toolkits.rs`): a
//! runtime directory of the test's own (hence its own private server), `guievict` calls with
//! it, the guarded hijack, status polling, and the whole "guard it, kill its server, attach it
//! elsewhere" flow for one app. What flows through: the CLI's JSON status and exit codes,
//! screenshots of the test's Xvfb servers.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use xvfb_harness::*;

/// A runtime directory of this test's own (mode 0700, as guievict wants it).
pub fn runtime_dir(name: &str) -> PathBuf {
    let d = artifacts_dir().join(format!("survive-rt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("runtime dir");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    d
}

/// `guievict ARGS --json` with the test's runtime directory.
pub fn gv(rt: &Path, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let out = Command::new(guievict_bin())
        .args(args)
        .arg("--json")
        .env("XDG_RUNTIME_DIR", rt)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "guievict {args:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// `guievict hijack PID --guard` (plain output: `hijack --json` prints the outcome only).
pub fn hijack_guarded(rt: &Path, pid: u32) {
    let out = Command::new(guievict_bin())
        .args(["hijack", &pid.to_string(), "--guard"])
        .env("XDG_RUNTIME_DIR", rt)
        .output()
        .expect("guievict hijack");
    assert!(
        out.status.success(),
        "hijack --guard: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The first connection's status of `pid`.
pub fn conn_status(rt: &Path, pid: u32) -> serde_json::Value {
    let st = gv(rt, &["status", "--pid", &pid.to_string()]).expect("status");
    st["connections"][0].clone()
}

/// Wait until `pid`'s first connection satisfies `ok` (its status JSON), or panic.
pub fn wait_status(rt: &Path, pid: u32, what: &str, ok: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let c = conn_status(rt, pid);
        if ok(&c) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: last status {c}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The private server's display and PID as recorded in the runtime directory.
pub fn private_server(rt: &Path) -> (String, u32) {
    let t = std::fs::read_to_string(rt.join("guievict/private-display")).expect("private-display");
    let mut l = t.lines();
    let d = l.next().expect("display line").trim().to_string();
    let p = l.next().expect("pid line").trim().parse().expect("pid");
    (d, p)
}

pub fn pid_alive(pid: u32) -> bool {
    // The state follows the command name in parentheses; a zombie has exited.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|st| st != "Z")
    })
}

/// Wait until two screenshots 300 ms apart are equal (drawing finished).
pub fn stable_shot(display: &str, window: u32) -> Image {
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut last = screenshot(display, window).expect("screenshot");
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = screenshot(display, window).expect("screenshot");
        if (now.width, now.height) == (last.width, last.height) && now.rgb == last.rgb {
            return now;
        }
        if Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// `guievict attach` that must succeed exactly, or exit 3 naming only the losses `allowed`
/// names (Tk: Xft pictures whose pixmap it freed, as every move of it says).
pub fn attach_allowing(rt: &Path, display: &str, pid: u32, allowed: &[&str]) {
    let out = Command::new(guievict_bin())
        .args(["attach", display, "--pid", &pid.to_string()])
        .env("XDG_RUNTIME_DIR", rt)
        .output()
        .expect("guievict attach");
    let err = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(3) if !allowed.is_empty() => {
            for l in err.lines().filter(|l| l.contains("not carried exactly: ")) {
                assert!(
                    allowed.iter().any(|a| l.contains(a)),
                    "unexpected loss: {l}"
                );
            }
        }
        c => panic!("attach exited {c:?}: {err}"),
    }
}

/// Start `argv` on a fresh A, guard it, kill A, attach to B; `same` then judges the picture on
/// B against A's (`assert_same_picture` for most apps), and `input` checks on B.
pub fn guarded_app_outlives_its_server(
    name: &str,
    argv: &[&str],
    env: &[(&str, &str)],
    allowed: &[&str],
    same: &dyn Fn(&Image, &Image, &str),
    input: &dyn Fn(&str, u32),
) {
    let rt = runtime_dir(name);
    let rts = rt.to_str().expect("utf-8 path");
    let mut a = Xvfb::start().expect("Xvfb A");
    let b = Xvfb::start().expect("Xvfb B");
    let mut env = env.to_vec();
    env.push(("XDG_RUNTIME_DIR", rts));
    let mut app = App::spawn_env(&a.display, argv, &env).expect(name);
    let before = stable_shot(&a.display, app.window);
    hijack_guarded(&rt, app.pid);
    a.kill();
    wait_status(
        &rt,
        app.pid,
        "held on the private server after A died",
        |c| c["held_on"].is_string(),
    );
    assert!(app.alive(), "{name} died with its X server");
    attach_allowing(&rt, &b.display, app.pid, allowed);
    let wb = wait_for_window(&b.display, app.pid, Duration::from_secs(10)).expect("window on B");
    let after = stable_shot(&b.display, wb);
    same(&before, &after, &format!("survive-{name}-on-b"));
    input(&b.display, wb);
    assert!(app.alive(), "{name} died on B");
}
