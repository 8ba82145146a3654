//! Runtime files of hijacked processes: a control directory squatted by another user is
//! refused (the app then listens on an abstract socket the CLI finds, and root controls that
//! other user's app, move included); stale sockets — also one whose PID now belongs to another
//! process — are removed by the CLI instead of being answered "Connection refused"; a clean
//! exit takes the socket and log with it.

use anyhow::{ensure, Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use xvfb_harness::{
    guievict_bin, guievict_json, hijack_path, settled_screenshot, wait_for_file, wait_for_window,
    with_timeout, xtest_key, xtest_type, App, Xvfb, XvfbOptions,
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

fn typing_works(display: &str, pid: u32, word: &str) {
    let file = PathBuf::from(format!("/tmp/guievict-rt-{pid}-{word}"));
    let _ = std::fs::remove_file(&file);
    let w = wait_for_window(display, pid, Duration::from_secs(10)).unwrap();
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

/// A directory at `path` owned by root with mode 0777, as another user would squat it.
fn squat(path: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(path);
    std::fs::create_dir_all(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))?;
    Ok(())
}

#[test]
fn squatted_runtime_dirs_fall_back_to_an_abstract_socket() {
    if !nix::unistd::geteuid().is_root() {
        xvfb_harness::skip("squatted_runtime_dirs: needs root to run xterm as another user");
        return;
    }
    with_timeout(120, || -> Result<()> {
        const UID: u32 = 4243;
        let opts = || XvfbOptions {
            extra_args: vec!["-ac".into()],
            ..XvfbOptions::default()
        };
        let a = Xvfb::start_with(opts())?;
        let b = Xvfb::start_with(opts())?;
        // Both places the app would use belong to someone else.
        let xdg = PathBuf::from(format!("/tmp/guievict-rt-xdg-{UID}"));
        let _ = std::fs::remove_dir_all(&xdg);
        std::fs::create_dir_all(&xdg)?;
        nix::unistd::chown(&xdg, Some(UID.into()), Some(UID.into()))?;
        squat(&xdg.join("guievict"))?;
        let tmp = PathBuf::from(format!("/tmp/guievict-{UID}"));
        squat(&tmp)?;
        let uid = UID.to_string();
        let reuid = format!("--reuid={uid}");
        let regid = format!("--regid={uid}");
        let app = App::spawn_env(
            &a.display,
            &["setpriv", &reuid, &regid, "--clear-groups", "xterm"],
            &[
                ("HOME", "/tmp"),
                ("XDG_RUNTIME_DIR", xdg.to_str().context("utf-8")?),
            ],
        )?;
        settled_screenshot(&a.display, app.window)?;
        // setpriv execs xterm: same PID.
        let pid = app.pid.to_string();
        let v = guievict_json(&["hijack", &pid])?;
        let sock = v["status"]["socket"]
            .as_str()
            .context("socket")?
            .to_string();
        ensure!(
            sock == format!("@guievict-{UID}-{pid}"),
            "expected the abstract socket, got {sock}"
        );
        ensure!(
            std::fs::read_dir(&tmp)?.next().is_none(),
            "the app wrote into the squatted {}",
            tmp.display()
        );
        typing_works(&a.display, app.pid, "abstract");
        // Root controls the other user's app: status, list and a move.
        let st = guievict_json(&["status", "--pid", &pid])?;
        ensure!(st["pid"] == app.pid, "{st}");
        let l = guievict_json(&["list"])?;
        ensure!(
            l.as_array()
                .is_some_and(|a| a.iter().any(|s| s["pid"] == app.pid)),
            "list misses the app: {l}"
        );
        guievict_json(&["move", "--pid", &pid, &b.display]).context("root moves the app")?;
        typing_works(&b.display, app.pid, "moved");
        let _ = std::fs::remove_dir_all(&tmp);
        let _ = std::fs::remove_dir_all(&xdg);
        Ok(())
    })
    .unwrap();
}

/// A socket file at `path` that nobody listens on.
fn stale_socket(path: &Path) -> Result<()> {
    let _ = std::fs::remove_file(path);
    drop(std::os::unix::net::UnixListener::bind(path)?);
    ensure!(path.exists());
    Ok(())
}

fn control_dir() -> PathBuf {
    let uid = nix::unistd::geteuid().as_raw();
    let d = PathBuf::from(format!("/tmp/guievict-{uid}"));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

#[test]
fn stale_sockets_are_removed_and_do_not_block_a_hijack() {
    with_timeout(90, || -> Result<()> {
        let x = Xvfb::start()?;
        let dir = control_dir();
        // A process that reuses the PID of a dead hijacked one.
        let mut sleeper = Command::new("sleep").arg("60").spawn()?;
        let s1 = dir.join(format!("{}.sock", sleeper.id()));
        stale_socket(&s1)?;
        let o = guievict(&["list"])?;
        ensure!(o.status.success(), "list: {}", text(&o));
        ensure!(!s1.exists(), "list left the stale socket {}", s1.display());
        let _ = sleeper.kill();
        let _ = sleeper.wait();

        // An X app with a stale socket of its PID: hijack injects and answers.
        let app = App::spawn(&x.display, &["xterm", "-geometry", "80x24+0+0"])?;
        settled_screenshot(&x.display, app.window)?;
        let s2 = dir.join(format!("{}.sock", app.pid));
        stale_socket(&s2)?;
        let v = guievict_json(&["hijack", &app.pid.to_string()])
            .context("hijack with a stale socket in the way")?;
        ensure!(v["outcome"]["interposed"].as_i64() >= Some(1), "{v}");
        let st = guievict_json(&["status", "--pid", &app.pid.to_string()])?;
        ensure!(st["connections"][0]["server_connected"] == true, "{st}");
        typing_works(&x.display, app.pid, "fresh");
        Ok(())
    })
    .unwrap();
}

#[test]
fn clean_exit_removes_socket_and_log() {
    with_timeout(90, || -> Result<()> {
        let x = Xvfb::start()?;
        let dir = control_dir();
        let mut app = App::spawn(
            &x.display,
            &[
                "xterm",
                "-geometry",
                "80x24+0+0",
                "-e",
                "sh",
                "-c",
                "sleep 3",
            ],
        )?;
        let pid = app.pid.to_string();
        guievict_json(&["hijack", &pid])?;
        let sock = dir.join(format!("{pid}.sock"));
        let log = dir.join(format!("{pid}.log"));
        ensure!(
            sock.exists() && log.exists(),
            "no socket/log in {}",
            dir.display()
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        while app.alive() {
            ensure!(Instant::now() < deadline, "xterm did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
        ensure!(!sock.exists(), "socket left behind");
        ensure!(!log.exists(), "log left behind");
        Ok(())
    })
    .unwrap();
}
