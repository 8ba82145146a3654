//! GUI detachment paired with process checkpointing on CRIU. A real xterm runs on Xvfb A (in its
//! own session, reparented to init, no inherited descriptors — a process tree CRIU can take);
//! `guievict checkpoint` detaches it, quiesces its control socket and dumps it (CRIU kills it);
//! `guievict restore` brings it back under the same PID and attaches it to Xvfb B, where the
//! window must look as before and typing must reach the same shell through the same pty. The
//! same checkpoint is restored a second time, after the first copy is killed. A second test
//! checks, without CRIU, that a detached process holds no socket to anything outside itself.
//! A third restore goes into a new network namespace.
//!
//! CRIU: the host's `criu` if `criu check` passes, else Debian 13's CRIU through
//! scripts/criu-wrapper.sh (its tree is built and cached by scripts/criu-chroot.sh: root,
//! network, about a minute once). `GUIEVICT_CRIU="cmd args"` overrides. The test skips, saying
//! why, only when it is not root or the tree cannot be built (no network).

use anyhow::{bail, ensure, Context, Result};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::ConnectionExt as _;
use x11rb::wrapper::ConnectionExt as _;
use xvfb_harness::{
    artifacts_dir, compare, connect, guievict_bin, hijack_path, settled_screenshot, skip,
    wait_for_window, windows_of_pid, with_timeout, workspace_root, xtest_type, App, Xvfb,
};

fn require_artifacts() {
    assert!(
        hijack_path().exists() && guievict_bin().exists(),
        "build first: {} / {} missing (cargo build --release -p guievict -p guievict-hijack)",
        hijack_path().display(),
        guievict_bin().display()
    );
}

/// Run guievict; its stdout on success, everything on failure.
fn guievict(args: &[&str]) -> Result<String> {
    let o = Command::new(guievict_bin())
        .args(args)
        .env("GUIEVICT_HIJACK", hijack_path())
        .output()
        .with_context(|| format!("running {}", guievict_bin().display()))?;
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    ensure!(
        o.status.success(),
        "guievict {args:?} failed ({:?}):\n{out}\n{err}",
        o.status.code()
    );
    eprintln!("guievict {}: {}", args[0], err.trim());
    Ok(out)
}

/// The command that runs CRIU here, or why CRIU cannot run here.
fn criu_command() -> std::result::Result<Vec<String>, String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("checkpoint_criu: CRIU needs root".into());
    }
    if let Ok(c) = std::env::var("GUIEVICT_CRIU") {
        return Ok(c.split_whitespace().map(String::from).collect());
    }
    let host_ok = Command::new("criu")
        .arg("check")
        .output()
        .is_ok_and(|o| o.status.success());
    if host_ok {
        return Ok(vec!["criu".into()]);
    }
    let scripts = workspace_root().join("scripts");
    let t = Instant::now();
    let o = Command::new(scripts.join("criu-chroot.sh"))
        .arg("--check")
        .output()
        .expect("running scripts/criu-chroot.sh");
    let err = String::from_utf8_lossy(&o.stderr);
    match o.status.code() {
        Some(0) => {
            eprintln!(
                "CRIU tree ready in {:.1} s: {}",
                t.elapsed().as_secs_f64(),
                err.trim()
            );
            Ok(vec![scripts.join("criu-wrapper.sh").display().to_string()])
        }
        Some(77) => Err(format!(
            "checkpoint_criu: the host's criu fails `criu check` and CRIU 4 cannot be prepared here: {}",
            err.trim()
        )),
        c => panic!("scripts/criu-chroot.sh failed ({c:?}):\n{err}"),
    }
}

/// A process that is not our child (reparented to init): SIGKILLed on drop.
struct Orphan(u32);

impl Drop for Orphan {
    fn drop(&mut self) {
        kill_wait(self.0);
    }
}

fn proc_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with(['Z', 'X'])),
    }
}

fn kill_wait(pid: u32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Start xterm (shell: bash, working directory `cwd`) as CRIU likes a tree: its own session,
/// parent init, no descriptors above 2 inherited from the test process. Not dash: with job
/// control it opens /dev/tty, which CRIU 4.1 refuses to dump ("ctty inheritance detected").
fn spawn_xterm(display: &str, cwd: &Path) -> Result<Orphan> {
    let script = r#"for f in /proc/$$/fd/*; do n=${f##*/}; if [ "$n" -gt 2 ]; then exec {n}>&-; fi; done
setsid xterm -geometry 80x24+0+0 -e bash --norc --noprofile </dev/null >/dev/null 2>&1 &
echo $!"#;
    let o = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(cwd)
        .env("DISPLAY", display)
        .env("PS1", "$ ")
        .env_remove("LD_PRELOAD")
        .output()?;
    let pid: u32 = String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .context("xterm's pid")?;
    Ok(Orphan(pid))
}

fn wait_file(path: &Path, want: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if std::fs::read_to_string(path).is_ok_and(|s| s.trim() == want) {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{} never contained {want:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Put the pointer far outside every test window (no WM: this unfocuses xterm, so its cursor
/// is drawn the same way on both servers).
fn pointer_away(display: &str) -> Result<()> {
    let conn = connect(display)?;
    let root = conn.setup().roots[0].root;
    conn.warp_pointer(x11rb::NONE, root, 0, 0, 0, 0, 1200, 1000)?;
    conn.sync()?;
    Ok(())
}

/// Restore `dir` onto `display`, check pixels against `before`, type a line, check its effect.
fn restore_and_check(
    criu: &[String],
    dir: &Path,
    display: &str,
    pid: u32,
    before: &xvfb_harness::Image,
    work: &Path,
    tag: &str,
) -> Result<serde_json::Value> {
    let mut args = vec![
        "restore",
        "--dir",
        dir.to_str().context("dir")?,
        "--display",
        display,
        "--json",
        "--criu",
    ];
    args.extend(criu.iter().map(String::as_str));
    let out = guievict(&args)?;
    let v: serde_json::Value = serde_json::from_str(out.trim()).context("restore --json")?;
    ensure!(v["pid"] == pid, "restored under another pid: {v}");
    let w = wait_for_window(display, pid, Duration::from_secs(10))?;
    pointer_away(display)?;
    let shot = settled_screenshot(display, w)?;
    let c = compare(before, &shot, &format!("checkpoint-criu-{tag}"));
    ensure!(
        c.equal_fraction >= 0.99 && c.ink_equal_fraction >= 0.98,
        "{tag}: restored window differs: {:.4} equal, ink {:.4} ({:?})",
        c.equal_fraction,
        c.ink_equal_fraction,
        c.artifacts
    );
    eprintln!(
        "{tag}: restored window {:.4} equal (identical: {})",
        c.equal_fraction,
        c.identical()
    );
    xtest_type(display, Some(w), &format!("echo {tag} > {tag}.txt\n"))?;
    wait_file(
        &work.join(format!("{tag}.txt")),
        tag,
        Duration::from_secs(10),
    )?;
    Ok(v)
}

#[test]
fn xterm_checkpoint_restore_twice_onto_another_display() {
    require_artifacts();
    let criu = match criu_command() {
        Ok(c) => c,
        Err(reason) => {
            skip(&reason);
            return;
        }
    };
    eprintln!("CRIU command: {criu:?}");
    with_timeout(240, move || -> Result<()> {
        let a = Xvfb::start()?;
        let b = Xvfb::start()?;
        let work = artifacts_dir().join(format!("checkpoint-criu-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work)?;
        let dir = work.join("images");
        let app = spawn_xterm(&a.display, &work)?;
        let pid = app.0;
        let w = wait_for_window(&a.display, pid, Duration::from_secs(20))?;
        guievict(&["hijack", &pid.to_string()])?;
        // The shell works before the checkpoint.
        xtest_type(&a.display, Some(w), "echo before > before.txt\n")?;
        wait_file(&work.join("before.txt"), "before", Duration::from_secs(10))?;
        pointer_away(&a.display)?;
        let before = settled_screenshot(&a.display, w)?;

        let mut args = vec![
            "checkpoint".to_string(),
            "--pid".into(),
            pid.to_string(),
            "--dir".into(),
            dir.display().to_string(),
            "--json".into(),
            "--criu".into(),
        ];
        args.extend(criu.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = guievict(&args)?;
        let v: serde_json::Value = serde_json::from_str(out.trim()).context("checkpoint --json")?;
        eprintln!("checkpoint timings: {}", v["manifest"]["timings_ms"]);
        ensure!(v["manifest"]["session_file"] == "session.gws", "{v}");
        ensure!(dir.join("session.gws").is_file(), "no session file");
        ensure!(dir.join("manifest.json").is_file(), "no manifest");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !proc_gone(pid) {
            ensure!(
                Instant::now() < deadline,
                "process {pid} still alive after the dump"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        ensure!(
            windows_of_pid(&a.display, pid)?.is_empty(),
            "windows left on A"
        );

        let r1 = restore_and_check(&criu, &dir, &b.display, pid, &before, &work, "first")?;
        eprintln!("first restore timings: {}", r1["timings_ms"]);
        // A second, independent copy from the same images (the PID must be free again).
        kill_wait(pid);
        let r2 = restore_and_check(&criu, &dir, &b.display, pid, &before, &work, "second")?;
        eprintln!("second restore timings: {}", r2["timings_ms"]);
        ensure!(
            std::fs::read_to_string(work.join("before.txt"))?.trim() == "before",
            "shell's earlier file lost"
        );
        // A third copy in a new network namespace (only loopback, brought up for CRIU's own
        // checks): the detached process needs no network; it reaches B through the socket file.
        kill_wait(pid);
        let mut netns: Vec<String> = ["unshare", "-n", "sh", "-c"]
            .into_iter()
            .map(String::from)
            .collect();
        netns.push(r#"ip link set lo up && exec "$0" "$@""#.into());
        netns.extend(criu.iter().cloned());
        let r3 = restore_and_check(&netns, &dir, &b.display, pid, &before, &work, "netns")?;
        eprintln!("restore into a new network namespace: {}", r3["timings_ms"]);
        let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/net")).ok();
        ensure!(
            ns(&pid.to_string()).is_some() && ns(&pid.to_string()) != ns("self"),
            "the third copy is not in its own network namespace"
        );
        drop(app);
        Ok(())
    })
    .expect("checkpoint/restore");
}

/// One unix socket: (listening, bound path or "", peer inode).
type UnixSock = (bool, String, Option<u64>);

/// Unix sockets of the system: inode → (listening, bound path, peer inode), from the text of
/// /proc/net/unix and of `ss -xan` (which alone shows peers).
fn unix_sockets(proc_net_unix: &str, ss: &str) -> Result<HashMap<u64, UnixSock>> {
    let mut map = HashMap::new();
    for line in proc_net_unix.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(flags), Some(inode)) = (f.get(3), f.get(6)) else {
            continue;
        };
        let listening = u32::from_str_radix(flags, 16).unwrap_or(0) & 0x0001_0000 != 0;
        let inode: u64 = inode.parse()?;
        map.insert(
            inode,
            (listening, f.get(7).unwrap_or(&"").to_string(), None),
        );
    }
    for line in ss.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Netid State Recv-Q Send-Q Local Port Peer Port
        if f.len() < 8 {
            continue;
        }
        if let (Ok(ino), Ok(peer)) = (f[5].parse::<u64>(), f[7].parse::<u64>()) {
            if let Some(e) = map.get_mut(&ino) {
                e.2 = (peer != 0).then_some(peer);
            }
        }
    }
    Ok(map)
}

/// Socket inodes in the text of `ls -l /proc/<pid>/fd`.
fn socket_inodes(ls_fd: &str) -> Result<HashSet<u64>> {
    let mut set = HashSet::new();
    for part in ls_fd.split("socket:[").skip(1) {
        let n = part.split(']').next().unwrap_or_default();
        set.insert(n.parse()?);
    }
    Ok(set)
}

/// What [`external_sockets`] reads: `ls -l /proc/<pid>/fd`, /proc/net/unix, `ss -xan`.
type Snapshot = (String, String, String);

/// A [`Snapshot`] of `pid` taken now.
fn snapshot(pid: u32) -> Result<Snapshot> {
    let sh = |c: &str| -> Result<String> {
        let o = Command::new("sh").arg("-c").arg(c).output()?;
        ensure!(o.status.success(), "{c} failed");
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    };
    Ok((
        sh(&format!("ls -l /proc/{pid}/fd"))?,
        std::fs::read_to_string("/proc/net/unix")?,
        sh("ss -xan").context("ss (iproute2)")?,
    ))
}

/// Sockets of the process that reach outside it or are bound to a path (except a listener on
/// `allowed_path`), described; and how many sockets it has.
fn external_sockets(
    (ls_fd, proc_net_unix, ss): &Snapshot,
    allowed_path: Option<&Path>,
) -> Result<(Vec<String>, usize)> {
    let mine = socket_inodes(ls_fd)?;
    let all = unix_sockets(proc_net_unix, ss)?;
    let mut bad = Vec::new();
    for ino in &mine {
        match all.get(ino) {
            None => bad.push(format!("socket {ino} is not a unix socket")),
            Some((listening, path, peer)) => {
                if !path.is_empty() {
                    if allowed_path.is_some_and(|p| Path::new(path) == p) && *listening {
                        continue;
                    }
                    bad.push(format!("socket {ino} bound to {path}"));
                } else if !peer.is_some_and(|p| mine.contains(&p)) {
                    bad.push(format!(
                        "socket {ino} connected to {peer:?} outside the process"
                    ));
                }
            }
        }
    }
    Ok((bad, mine.len()))
}

/// A stand-in for CRIU that records, at the moment of the dump, what the process holds.
fn fake_criu(dir: &Path) -> Result<PathBuf> {
    let script = dir.join("fake-criu.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nwhile [ \"$1\" != -t ]; do shift; done\nout='{}'\n\
             ls -l /proc/$2/fd > \"$out/fd.txt\"\ncat /proc/net/unix > \"$out/unix.txt\"\n\
             ss -xan > \"$out/ss.txt\"\n",
            dir.display()
        ),
    )?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    Ok(script)
}

#[test]
fn detached_process_holds_only_in_process_sockets() {
    require_artifacts();
    with_timeout(90, || -> Result<()> {
        let a = Xvfb::start()?;
        let app = App::spawn(&a.display, &["xterm", "-geometry", "80x24+0+0"])?;
        let pid = app.pid;
        let p = pid.to_string();
        guievict(&["hijack", &p])?;
        // Attached: the X connection goes to the server.
        let (attached, _) = external_sockets(&snapshot(pid)?, None)?;
        ensure!(
            attached
                .iter()
                .any(|s| s.contains("outside") || s.contains("bound")),
            "an attached xterm should reach the X server: {attached:?}"
        );
        let status: serde_json::Value =
            serde_json::from_str(&guievict(&["status", "--pid", &p, "--json"])?)?;
        let control = PathBuf::from(status["socket"].as_str().context("socket path")?);
        guievict(&["detach", "--in-memory", "--pid", &p])?;
        let (bad, n) = external_sockets(&snapshot(pid)?, Some(&control))?;
        if !bad.is_empty() {
            bail!("after detach, process {pid} still holds: {bad:?}");
        }
        ensure!(
            n >= 3,
            "expected the socketpair and the control listener, saw {n} sockets"
        );
        ensure!(
            windows_of_pid(&a.display, pid)?.is_empty(),
            "detached xterm still has windows"
        );
        eprintln!("after detach: {n} sockets, all in-process except the control listener");
        guievict(&["attach", &a.display, "--pid", &p])?;
        wait_for_window(&a.display, pid, Duration::from_secs(10))?;

        // What CRIU sees: `checkpoint --leave-running` with a stand-in that records the
        // process's descriptors at dump time. Not even the control listener is left then; after
        // the "dump" the control socket listens again and the GUI is back on its display.
        let work = artifacts_dir().join(format!("checkpoint-sockets-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work)?;
        let criu = fake_criu(&work)?;
        let dir = work.join("images");
        guievict(&[
            "checkpoint",
            "--pid",
            &p,
            "--dir",
            dir.to_str().context("dir")?,
            "--leave-running",
            "--criu",
            criu.to_str().context("script")?,
        ])?;
        let at_dump: Snapshot = (
            std::fs::read_to_string(work.join("fd.txt"))?,
            std::fs::read_to_string(work.join("unix.txt"))?,
            std::fs::read_to_string(work.join("ss.txt"))?,
        );
        let (bad, n) = external_sockets(&at_dump, None)?;
        if !bad.is_empty() {
            bail!("at dump time, process {pid} still holds: {bad:?}");
        }
        ensure!(
            n == 2,
            "expected only the socketpair at dump time, saw {n} sockets:\n{}",
            at_dump.0
        );
        ensure!(
            !at_dump.0.contains(".log"),
            "the hijack log file is open at dump time:\n{}",
            at_dump.0
        );
        eprintln!("at dump time: {n} sockets (the socketpair), no listener, no log file");
        ensure!(dir.join("session.gws").is_file(), "no session file");
        ensure!(dir.join("manifest.json").is_file(), "no manifest");
        wait_for_window(&a.display, pid, Duration::from_secs(10))
            .context("--leave-running did not re-attach")?;
        guievict(&["status", "--pid", &p]).context("control socket not back")?;

        // A plain detach holds the GUI on the private server (a socket to it); a checkpoint
        // takes it from there into memory: at dump time again only the socketpair.
        guievict(&["detach", "--pid", &p])?;
        let conn = |p: &str| -> Result<serde_json::Value> {
            let st: serde_json::Value =
                serde_json::from_str(&guievict(&["status", "--pid", p, "--json"])?)?;
            Ok(st["connections"][0].clone())
        };
        let c = conn(&p)?;
        ensure!(
            c["display"].is_null() && c["held_on"].is_string(),
            "a plain detach should hold the GUI on the private server: {c}"
        );
        let dir2 = work.join("images-held");
        guievict(&[
            "checkpoint",
            "--pid",
            &p,
            "--dir",
            dir2.to_str().context("dir")?,
            "--leave-running",
            "--criu",
            criu.to_str().context("script")?,
        ])
        .context("checkpoint of a GUI held on the private server")?;
        let at_dump: Snapshot = (
            std::fs::read_to_string(work.join("fd.txt"))?,
            std::fs::read_to_string(work.join("unix.txt"))?,
            std::fs::read_to_string(work.join("ss.txt"))?,
        );
        let (bad, n) = external_sockets(&at_dump, None)?;
        ensure!(
            bad.is_empty() && n == 2,
            "held GUI at dump time: {bad:?}, {n} sockets:\n{}",
            at_dump.0
        );
        ensure!(dir2.join("session.gws").is_file(), "no session file");
        let c = conn(&p)?;
        ensure!(
            c["display"].is_null() && c["held_on"].is_null(),
            "after the checkpoint the GUI is detached in memory: {c}"
        );
        guievict(&["attach", &a.display, "--pid", &p])?;
        wait_for_window(&a.display, pid, Duration::from_secs(10))
            .context("attach after the checkpoint of a held GUI")?;
        drop(app);
        Ok(())
    })
    .expect("socket inspection");
}

/// `guievict checkpoint --pid PID --dir DIR --json --criu CRIU…`, parsed.
fn checkpoint(criu: &[String], pid: u32, dir: &Path) -> Result<serde_json::Value> {
    let p = pid.to_string();
    let mut args = vec![
        "checkpoint",
        "--pid",
        &p,
        "--dir",
        dir.to_str().context("dir")?,
        "--json",
        "--criu",
    ];
    args.extend(criu.iter().map(String::as_str));
    let out = guievict(&args)?;
    serde_json::from_str(out.trim()).context("checkpoint --json")
}

/// The busy three-thread xcb client of the hijack stress test, checkpointed while its threads
/// wait for replies, restored onto another server: every reply it gets afterwards must still be
/// consistent ("OK <n>" at its deadline, never "FAIL").
#[test]
fn busy_threaded_client_survives_checkpoint_restore() {
    require_artifacts();
    let criu = match criu_command() {
        Ok(c) => c,
        Err(reason) => {
            skip(&reason);
            return;
        }
    };
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/hijack_stress_client.c");
    let client = xvfb_harness::target_dir().join("checkpoint_stress_client");
    let built = Command::new("cc")
        .args(["-O2", "-pthread"])
        .arg(&src)
        .args(["-lxcb", "-o"])
        .arg(&client)
        .status()
        .is_ok_and(|s| s.success());
    assert!(built, "cannot compile {} (cc, libxcb1-dev)", src.display());
    with_timeout(120, move || -> Result<()> {
        let a = Xvfb::start()?;
        let b = Xvfb::start()?;
        let work = artifacts_dir().join(format!("checkpoint-stress-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work)?;
        let out = work.join("client.out");
        let script = r#"for f in /proc/$$/fd/*; do n=${f##*/}; if [ "$n" -gt 2 ]; then exec {n}>&-; fi; done
setsid "$0" 6 1000 </dev/null >"$1" 2>&1 &
echo $!"#;
        let o = Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg(&client)
            .arg(&out)
            .env("DISPLAY", &a.display)
            .output()?;
        let app = Orphan(
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse()
                .context("client pid")?,
        );
        let pid = app.0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&out)?.contains("READY") {
            ensure!(Instant::now() < deadline, "client never got READY");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        guievict(&["hijack", &pid.to_string()])?;
        std::thread::sleep(Duration::from_millis(300));
        let dir = work.join("images");
        let v = checkpoint(&criu, pid, &dir)?;
        eprintln!("stress checkpoint timings: {}", v["manifest"]["timings_ms"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{pid}")).exists() {
            ensure!(Instant::now() < deadline, "pid {pid} not free after the dump");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut args = vec![
            "restore",
            "--dir",
            dir.to_str().context("dir")?,
            "--display",
            &b.display,
            "--json",
            "--criu",
        ];
        args.extend(criu.iter().map(String::as_str));
        let r: serde_json::Value = serde_json::from_str(guievict(&args)?.trim())?;
        eprintln!("stress restore timings: {}", r["timings_ms"]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !proc_gone(pid) {
            ensure!(
                Instant::now() < deadline,
                "client still running long after its deadline"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let text = std::fs::read_to_string(&out)?;
        ensure!(
            text.contains("OK ") && !text.contains("FAIL"),
            "client output after restore: {text:?}"
        );
        eprintln!("client after checkpoint/restore onto B: {}", text.trim());
        drop(app);
        Ok(())
    })
    .expect("busy client checkpoint/restore");
}

/// Issue 19 item 3: `checkpoint --all` of a display (two xterms, each its own CRIU tree) writes
/// one directory per app and `desktop.json` in stacking order; the apps end with the dump;
/// `restore --dir DIR --display B` brings both back on B, where their shells still work.
#[test]
fn desktop_checkpoint_all_restores_every_app_on_another_display() {
    require_artifacts();
    let criu = match criu_command() {
        Ok(c) => c,
        Err(reason) => {
            skip(&reason);
            return;
        }
    };
    with_timeout(240, move || -> Result<()> {
        let a = Xvfb::start()?;
        let b = Xvfb::start()?;
        let work = artifacts_dir().join(format!("checkpoint-all-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work)?;
        let dir = work.join("desktop");
        let one = spawn_xterm(&a.display, &work)?;
        let two = spawn_xterm(&a.display, &work)?;
        for app in [&one, &two] {
            wait_for_window(&a.display, app.0, Duration::from_secs(20))?;
            guievict(&["hijack", &app.0.to_string()])?;
        }
        let mut args = vec![
            "checkpoint".to_string(),
            "--all".into(),
            "--display".into(),
            a.display.clone(),
            "--dir".into(),
            dir.display().to_string(),
            "--json".into(),
            "--criu".into(),
        ];
        args.extend(criu.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let v: serde_json::Value = serde_json::from_str(guievict(&args)?.trim())?;
        eprintln!("checkpoint --all: {} ms", v["total_ms"]);
        let m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("desktop.json"))?)?;
        ensure!(m["apps"].as_array().map(|a| a.len()) == Some(2), "{m}");
        for app in [&one, &two] {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !proc_gone(app.0) {
                ensure!(
                    Instant::now() < deadline,
                    "pid {} alive after the dump",
                    app.0
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let mut args = vec![
            "restore".to_string(),
            "--dir".into(),
            dir.display().to_string(),
            "--display".into(),
            b.display.clone(),
            "--json".into(),
            "--criu".into(),
        ];
        args.extend(criu.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let v: serde_json::Value = serde_json::from_str(guievict(&args)?.trim())?;
        eprintln!("restore of the desktop: {} ms", v["total_ms"]);
        ensure!(v["result"] == "restored", "{v}");
        for (i, app) in [&one, &two].into_iter().enumerate() {
            let w = wait_for_window(&b.display, app.0, Duration::from_secs(20))?;
            let f = format!("desk{i}.txt");
            xtest_type(&b.display, Some(w), &format!("echo desk{i} > {f}\n"))?;
            wait_file(&work.join(&f), &format!("desk{i}"), Duration::from_secs(10))?;
        }
        Ok(())
    })
    .expect("desktop checkpoint/restore");
}
