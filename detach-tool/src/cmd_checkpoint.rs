//! `guievict checkpoint` and `guievict restore`: pairing GUI detachment with process
//! checkpointing on CRIU. A target process flows in; its GUI is detached (the window session is
//! written to `DIR/session.gws` and also kept in process memory), its control socket is quiesced
//! (closed, so that the process holds no socket bound to a path or connected outside itself),
//! then `criu dump` writes the process tree into DIR next to a `manifest.json`. Restore reads the
//! manifest, runs `criu restore -d`, re-arms the control socket (creates `<pid>.rearm`, which the
//! restored library polls for) and attaches the GUI to the requested display. CRIU is run through
//! a configurable command (`--criu`, e.g. `scripts/criu-wrapper.sh`); its log stays in DIR and its
//! error lines are shown, with guievict's reading of them, when it fails. A whole desktop
//! (`--all`) goes through `desktop`.

mod desktop;

use anyhow::{bail, Context, Result};
use clap::Args;
use guievict_hijack::control::{self, Request, Response, Status};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Name of the manifest inside a checkpoint directory.
pub const MANIFEST: &str = "manifest.json";
/// Name of the window-session file inside a checkpoint directory.
pub const SESSION: &str = "session.gws";
/// Format tag of the manifest.
pub const FORMAT: &str = "guievict-checkpoint";
/// Manifest format version.
pub const VERSION: u32 = 1;

/// `guievict checkpoint`.
#[derive(Args, Debug)]
pub struct CheckpointArgs {
    #[command(flatten)]
    target: crate::cmd_mobility::Target,
    /// Directory for the CRIU images, the session file and the manifest (created if missing;
    /// must not already hold a checkpoint).
    #[arg(long)]
    dir: PathBuf,
    /// Command that runs CRIU, with any leading arguments (default: `criu`), e.g.
    /// `--criu scripts/criu-wrapper.sh` or `--criu sudo criu`. Takes every argument after it:
    /// put it last.
    #[arg(
        long,
        num_args = 1..,
        allow_hyphen_values = true,
        value_name = "CMD",
        default_value = "criu"
    )]
    criu: Vec<String>,
    /// Keep the process running after the dump (it is re-attached to its display).
    #[arg(long)]
    leave_running: bool,
    /// Checkpoint every hijacked app of --display (default $DISPLAY) but its window manager:
    /// one subdirectory of DIR per app and `desktop.json` listing them in stacking order.
    /// All or none: when one dump fails, the apps already dumped are restored onto the
    /// display. `guievict restore --dir DIR --display D` brings the whole desktop back.
    #[arg(long, conflicts_with_all = ["pid", "name", "pick", "only_pid"])]
    all: bool,
}

/// `guievict restore`.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Checkpoint directory written by `guievict checkpoint`.
    #[arg(long)]
    dir: PathBuf,
    /// Display to attach the restored GUI to (without it the process stays detached).
    #[arg(long)]
    display: Option<String>,
    /// Command that runs CRIU, with any leading arguments (default: `criu`), e.g.
    /// `--criu unshare -n scripts/criu-wrapper.sh`. Takes every argument after it: put it last.
    #[arg(
        long,
        num_args = 1..,
        allow_hyphen_values = true,
        value_name = "CMD",
        default_value = "criu"
    )]
    criu: Vec<String>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// What a checkpoint directory holds besides CRIU's images.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// PID of the checkpointed process (CRIU restores it under the same PID).
    pub pid: u32,
    /// Its executable name.
    pub comm: String,
    /// Its control socket path (where the restored library listens again).
    pub socket: PathBuf,
    /// Displays it was attached to before the checkpoint.
    pub displays: Vec<String>,
    /// Window-session file in the directory, when a detach happened as part of the checkpoint.
    pub session_file: Option<String>,
    /// Whether CRIU ran with `--shell-job` (the process was not its own session leader).
    pub shell_job: bool,
    /// Seconds since the epoch when the dump finished.
    pub created: u64,
    /// Timings of the checkpoint, ms.
    pub timings_ms: serde_json::Value,
}

/// Send one request to a control socket; the first line of an `Ok` message and its JSON rest.
fn call(sock: &Path, pid: u32, req: &Request) -> Result<(String, serde_json::Value)> {
    let resp = control::request(sock, req).with_context(|| format!("talking to process {pid}"))?;
    crate::groupop::report_of(pid, resp)
}

fn status(sock: &Path, pid: u32) -> Result<Status> {
    match control::request(sock, &Request::Status)
        .with_context(|| format!("talking to process {pid}"))?
    {
        Response::Status(s) => Ok(s),
        Response::Error { kind, message } => bail!("process {pid}: {message} ({kind:?})"),
        other => bail!("process {pid}: unexpected answer {other:?}"),
    }
}

fn ms(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

/// Wait until `cond` holds, polling every 5 ms, at most `limit`.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether a control socket accepts connections (the file alone may be stale or not yet listening).
fn listening(sock: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(sock).is_ok()
}

/// State letter of `/proc/<pid>/stat` (None when the process does not exist).
fn proc_state(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(')')?.1.trim_start().chars().next()
}

/// (session id, parent pid) of a process.
fn sid_ppid(pid: u32) -> Option<(u32, u32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
    Some((f.get(3)?.parse().ok()?, f.get(1)?.parse().ok()?))
}

/// Output of one CRIU run.
struct CriuRun {
    ok: bool,
    code: Option<i32>,
    stderr: String,
    log: PathBuf,
    ms: f64,
}

fn run_criu(criu: &[String], args: &[String], log: PathBuf) -> Result<CriuRun> {
    let (prog, lead) = criu.split_first().context("--criu needs a command")?;
    let t = Instant::now();
    let out = Command::new(prog)
        .args(lead)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!(
                    "cannot run CRIU: `{prog}` not found. Install criu (4.1 or newer on kernels \
                     with a [vvar_vclock] mapping), or pass --criu scripts/criu-wrapper.sh, which \
                     runs Debian 13's CRIU from a cached tree built by scripts/criu-chroot.sh"
                )
            } else {
                anyhow::Error::new(e).context(format!("running {prog}"))
            }
        })?;
    Ok(CriuRun {
        ok: out.status.success(),
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        log,
        ms: ms(t),
    })
}

/// guievict's reading of a failed CRIU run: its error lines plus what to do.
fn explain(run: &CriuRun, what: &str) -> String {
    let log = std::fs::read_to_string(&run.log).unwrap_or_default();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Error") || l.contains("Warn"))
        .collect();
    let shown: Vec<&str> = if errors.is_empty() {
        log.lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect()
    } else {
        errors.iter().rev().take(20).rev().copied().collect()
    };
    let all = format!("{}\n{}", errors.join("\n"), run.stderr);
    let mut hints = Vec::new();
    let has = |s: &str| all.contains(s);
    if has("vDSO") || has("vdso") {
        hints.push("this CRIU does not understand this kernel's vDSO layout (Debian 12's 3.17 fails on [vvar_vclock]); use CRIU 4.1 or newer, e.g. --criu scripts/criu-wrapper.sh");
    }
    if has("External socket") || has("half of stream unix") || has("unix connection") {
        hints.push("the process tree holds a socket to a peer outside it: guievict detached the X connections it controls, but something else (a second X connection it did not interpose, D-Bus, a socket of a child) remains — inspect /proc/<pid>/fd");
    }
    if has("session leader") || has("shell-job") || has("Unsupported pgid") {
        hints.push(
            "the process shares a session with processes outside the tree; start it with setsid",
        );
    }
    if has("ctty inheritance") {
        hints.push("a child opened /dev/tty (dash with job control does; bash does not) while its parent holds the pty master; CRIU 4.1 refuses that: run the shell as bash or `sh +m`");
    }
    // CRIU logs a harmless EPERM about RLIMIT_NOFILE on every run.
    let eperm = errors
        .iter()
        .any(|l| l.contains("Operation not permitted") && !l.contains("RLIMIT"));
    if eperm || has("must be root") {
        hints.push("CRIU needs root (or CAP_CHECKPOINT_RESTORE and CAP_SYS_PTRACE)");
    }
    if has("File exists") && has("fork") {
        hints.push("the PID is still taken: the original process (or an unreaped zombie of it, or an earlier restore) still exists; end it first, or restore in a new PID namespace");
    }
    if has("has bad size") || has("No such file") {
        hints.push("a file the process had open changed or vanished since the dump; restore needs the same files at the same paths");
    }
    let mut msg = format!(
        "criu {what} failed (exit {}); CRIU says:\n  {}",
        run.code.map_or("by signal".into(), |c| c.to_string()),
        shown.join("\n  ")
    );
    if !run.stderr.trim().is_empty() {
        msg.push_str(&format!("\n  stderr: {}", run.stderr.trim()));
    }
    msg.push_str(&format!("\nfull log: {}", run.log.display()));
    for h in hints {
        msg.push_str(&format!("\nguievict: {h}"));
    }
    msg
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Put a process whose checkpoint failed (or that keeps running) back as it was: control
/// socket listening, GUI on its displays.
fn undo(sock: &Path, pid: u32, displays: &[String]) -> Result<()> {
    std::fs::write(control::rearm_path(sock), b"")
        .with_context(|| format!("creating {}", control::rearm_path(sock).display()))?;
    anyhow::ensure!(
        wait_until(Duration::from_secs(5), || listening(sock)),
        "process {pid} did not listen again on {}",
        sock.display()
    );
    if let Some(d) = displays.first() {
        call(
            sock,
            pid,
            &Request::Attach {
                display: d.clone(),
                auth: None,
                force: false,
                private: None,
            },
        )?;
    }
    Ok(())
}

/// One process checkpointed: its manifest and the detach report.
struct Dumped {
    manifest: Manifest,
    detach: serde_json::Value,
}

/// `guievict checkpoint`.
pub fn checkpoint(a: CheckpointArgs) -> Result<()> {
    if a.all {
        return desktop::checkpoint_all(&a);
    }
    let pid = crate::cmd_mobility::resolve(&a.target)?;
    let dir = std::path::absolute(&a.dir)?;
    let d = checkpoint_pid(pid, &dir, &a.criu, a.leave_running)?;
    let t = &d.manifest.timings_ms;
    if a.target.json {
        println!(
            "{}",
            serde_json::json!({"pid": pid, "result": "checkpointed", "manifest": d.manifest, "detach": d.detach})
        );
    } else {
        eprintln!(
            "guievict: pid {pid} ({}): checkpointed to {} (detach {} ms, dump {} ms){}",
            d.manifest.comm,
            dir.display(),
            t["detach"],
            t["dump"],
            if a.leave_running {
                "; still running"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// Checkpoint process `pid` into `dir` (see `guievict checkpoint`).
fn checkpoint_pid(pid: u32, dir: &Path, criu: &[String], leave_running: bool) -> Result<Dumped> {
    let t_all = Instant::now();
    let dir = dir.to_path_buf();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    anyhow::ensure!(
        !dir.join(MANIFEST).exists(),
        "{} already holds a checkpoint ({MANIFEST}); use an empty directory",
        dir.display()
    );
    let sock = match crate::cmd_hijack::socket_of(pid as i32) {
        Some(s) => s,
        None => {
            crate::ensure_hijacked(pid)?;
            crate::cmd_hijack::socket_of(pid as i32)
                .with_context(|| format!("process {pid} has no control socket after hijack"))?
        }
    };
    let st = status(&sock, pid)?;
    let displays: Vec<String> = st
        .connections
        .iter()
        .filter_map(|c| c.display.clone())
        .collect();
    // Held on the private server (a plain `detach`): brought into memory for the dump, and
    // restored detached; a failure after this point leaves it detached in memory.
    let held: Vec<String> = st
        .connections
        .iter()
        .filter_map(|c| c.held_on.clone())
        .collect();
    let t = Instant::now();
    let mut session_file = None;
    let mut detach_report = serde_json::Value::Null;
    if !displays.is_empty() || !held.is_empty() {
        let gws = dir.join(SESSION);
        let (_, rep) = call(
            &sock,
            pid,
            &Request::Detach {
                session_path: Some(gws),
                // A checkpoint that could not bring the GUI back exactly is refused, with
                // the app left running where it is.
                force: false,
                // No socket may stay open through a dump: not held on the private server.
                private: None,
                in_memory: true,
            },
        )?;
        detach_report = rep;
        session_file = Some(SESSION.to_string());
    }
    let detach_ms = ms(t);
    let t = Instant::now();
    if let Err(e) = call(&sock, pid, &Request::Quiesce) {
        let _ = undo_attach(&sock, pid, &displays);
        return Err(e.context("quiescing the control socket"));
    }
    if !wait_until(Duration::from_secs(5), || !sock.exists()) {
        let _ = undo(&sock, pid, &displays);
        bail!(
            "process {pid} did not close its control socket {}",
            sock.display()
        );
    }
    let quiesce_ms = ms(t);

    let shell_job = sid_ppid(pid).is_some_and(|(sid, _)| sid != pid);
    let mut args: Vec<String> = vec![
        "dump".into(),
        "-t".into(),
        pid.to_string(),
        "-D".into(),
        dir.display().to_string(),
        "-o".into(),
        "dump.log".into(),
        "-v4".into(),
    ];
    if shell_job {
        args.push("--shell-job".into());
    }
    if leave_running {
        args.push("--leave-running".into());
    }
    let run = run_criu(criu, &args, dir.join("dump.log"))?;
    if !run.ok {
        let msg = explain(&run, "dump");
        let back = if proc_state(pid).is_some() {
            match undo(&sock, pid, &displays) {
                Ok(()) => format!(
                    "\nguievict: process {pid} keeps running, its GUI back on {}",
                    displays.first().map_or("(was detached)", |d| d.as_str())
                ),
                Err(e) => format!("\nguievict: could not put process {pid} back: {e:#}"),
            }
        } else {
            String::new()
        };
        bail!("{msg}{back}");
    }
    let dump_ms = run.ms;
    let t = Instant::now();
    let mut reattach_ms = None;
    if leave_running {
        undo(&sock, pid, &displays).context("the dump succeeded, but re-attaching failed")?;
        reattach_ms = Some(ms(t));
    } else {
        // CRIU kills the tree after the dump; the process is gone once only a zombie (or
        // nothing) is left.
        wait_until(Duration::from_secs(10), || {
            matches!(proc_state(pid), None | Some('Z') | Some('X'))
        });
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        pid,
        comm: st.comm.clone(),
        socket: sock.clone(),
        displays: displays.clone(),
        session_file,
        shell_job,
        created: now_secs(),
        timings_ms: serde_json::json!({
            "detach": detach_ms,
            "quiesce": quiesce_ms,
            "dump": dump_ms,
            "reattach": reattach_ms,
            "total": ms(t_all),
        }),
    };
    let text = serde_json::to_string_pretty(&manifest)?;
    std::fs::write(dir.join(MANIFEST), &text)
        .with_context(|| format!("writing {}", dir.join(MANIFEST).display()))?;
    Ok(Dumped {
        manifest,
        detach: detach_report,
    })
}

/// Re-attach after a failed quiesce (the control socket is still open then).
fn undo_attach(sock: &Path, pid: u32, displays: &[String]) -> Result<()> {
    if let Some(d) = displays.first() {
        call(
            sock,
            pid,
            &Request::Attach {
                display: d.clone(),
                auth: None,
                force: false,
                private: None,
            },
        )?;
    }
    Ok(())
}

/// Read and check a checkpoint directory's manifest.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let p = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&p).with_context(|| {
        format!(
            "reading {} (is {} a directory written by `guievict checkpoint`?)",
            p.display(),
            dir.display()
        )
    })?;
    let m: Manifest =
        serde_json::from_str(&text).with_context(|| format!("{} is malformed", p.display()))?;
    anyhow::ensure!(
        m.format == FORMAT && m.version == VERSION,
        "{}: format {:?} version {} (this guievict reads {FORMAT:?} version {VERSION})",
        p.display(),
        m.format,
        m.version
    );
    Ok(m)
}

/// `guievict restore`.
pub fn restore(a: RestoreArgs) -> Result<()> {
    let dir = std::path::absolute(&a.dir)?;
    if dir.join(desktop::DESKTOP_MANIFEST).exists() {
        return desktop::restore_desktop(&a, &dir);
    }
    let r = restore_dir(&dir, a.display.as_deref(), &a.criu)?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({"pid": r.pid, "result": "restored", "display": a.display,
                "timings_ms": r.timings, "attach": r.attach})
        );
    } else {
        eprintln!(
            "guievict: pid {} ({}): restored from {} in {} ms{}",
            r.pid,
            r.comm,
            dir.display(),
            r.timings["restore"],
            match &a.display {
                Some(d) => format!(", attached to {d} in {} ms", r.timings["attach"]),
                None => format!(
                    "; detached (attach with `guievict attach DISPLAY --pid {}`)",
                    r.pid
                ),
            }
        );
    }
    Ok(())
}

/// One process restored (see `restore_dir`).
struct Restored {
    pid: u32,
    comm: String,
    timings: serde_json::Value,
    attach: serde_json::Value,
}

/// Restore the checkpoint in `dir` and attach it to `display` when given.
fn restore_dir(dir: &Path, display: Option<&str>, criu: &[String]) -> Result<Restored> {
    let t_all = Instant::now();
    let dir = dir.to_path_buf();
    let m = read_manifest(&dir)?;
    let pid = m.pid;
    // CRIU restores the same PID: it must be free (a zombie of a just-dumped child counts).
    if !wait_until(Duration::from_secs(10), || proc_state(pid).is_none()) {
        let who = match (proc_state(pid), sid_ppid(pid)) {
            (Some('Z'), Some((_, ppid))) => {
                format!("is a zombie that its parent (pid {ppid}) has not reaped")
            }
            _ => "is running (the original with --leave-running, or an earlier restore)".into(),
        };
        bail!(
            "cannot restore: PID {pid} {who}; CRIU restores under the same PID, so end that \
             process first"
        );
    }
    let pidfile = dir.join("restored.pid");
    let _ = std::fs::remove_file(&pidfile);
    // PID is free, so a socket file of that name is stale (its process was killed).
    let _ = std::fs::remove_file(&m.socket);
    let _ = std::fs::remove_file(control::rearm_path(&m.socket));
    let mut args: Vec<String> = vec![
        "restore".into(),
        "-d".into(),
        "-D".into(),
        dir.display().to_string(),
        "-o".into(),
        "restore.log".into(),
        "-v4".into(),
        "--pidfile".into(),
        pidfile.display().to_string(),
    ];
    if m.shell_job {
        args.push("--shell-job".into());
    }
    let run = run_criu(criu, &args, dir.join("restore.log"))?;
    if !run.ok {
        bail!("{}", explain(&run, "restore"));
    }
    let restore_ms = run.ms;
    let restored: u32 = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(pid);
    anyhow::ensure!(
        proc_state(restored).is_some_and(|s| s != 'Z' && s != 'X'),
        "criu restore succeeded but process {restored} is not running"
    );
    // The restored control thread polls for the rearm file, then listens again.
    let t = Instant::now();
    if let Some(dir) = m.socket.parent() {
        control::ensure_dir(dir).with_context(|| format!("preparing {}", dir.display()))?;
    }
    std::fs::write(control::rearm_path(&m.socket), b"")
        .with_context(|| format!("creating {}", control::rearm_path(&m.socket).display()))?;
    anyhow::ensure!(
        wait_until(Duration::from_secs(5), || listening(&m.socket)),
        "process {restored} was restored but its control socket {} did not come back",
        m.socket.display()
    );
    let rearm_ms = ms(t);
    let mut attach_ms = None;
    let mut attach_report = serde_json::Value::Null;
    if let Some(d) = display {
        let t = Instant::now();
        let (_, rep) = call(
            &m.socket,
            restored,
            &Request::Attach {
                display: d.to_string(),
                auth: None,
                force: false,
                private: None,
            },
        )
        .with_context(|| {
            format!(
                "process {restored} is restored but still detached; retry with \
                 `guievict attach DISPLAY --pid {restored}`"
            )
        })?;
        attach_report = rep;
        attach_ms = Some(ms(t));
    }
    let timings = serde_json::json!({
        "restore": restore_ms, "rearm": rearm_ms, "attach": attach_ms, "total": ms(t_all)
    });
    Ok(Restored {
        pid: restored,
        comm: m.comm,
        timings,
        attach: attach_report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("guievict-ck-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn manifest_errors_are_distinct() {
        let d = tmp("manifest");
        let e = read_manifest(&d).unwrap_err().to_string();
        assert!(e.contains("written by `guievict checkpoint`"), "{e}");
        std::fs::write(d.join(MANIFEST), "{").unwrap();
        let e = read_manifest(&d).unwrap_err().to_string();
        assert!(e.contains("malformed"), "{e}");
        let mut m = Manifest {
            format: FORMAT.into(),
            version: VERSION + 1,
            pid: 42,
            comm: "xterm".into(),
            socket: "/tmp/guievict-0/42.sock".into(),
            displays: vec![":1".into()],
            session_file: Some(SESSION.into()),
            shell_job: false,
            created: 0,
            timings_ms: serde_json::Value::Null,
        };
        std::fs::write(d.join(MANIFEST), serde_json::to_string(&m).unwrap()).unwrap();
        let e = read_manifest(&d).unwrap_err().to_string();
        assert!(e.contains("version"), "{e}");
        m.version = VERSION;
        std::fs::write(d.join(MANIFEST), serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(read_manifest(&d).unwrap().pid, 42);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn explanations_follow_criu_errors() {
        let d = tmp("explain");
        let log = d.join("dump.log");
        let run = |text: &str| {
            std::fs::write(&log, text).unwrap();
            explain(
                &CriuRun {
                    ok: false,
                    code: Some(1),
                    stderr: String::new(),
                    log: log.clone(),
                    ms: 0.0,
                },
                "dump",
            )
        };
        let harmless = "(00.02) Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted\n(00.03) vdso: parsing [vvar_vclock]\n";
        let m = run(&format!(
            "{harmless}(00.05) Error (criu/sk-unix.c:1): External socket is used\n"
        ));
        assert!(m.contains("peer outside"), "{m}");
        assert!(
            !m.contains("vDSO layout"),
            "a vdso info line is no vdso error: {m}"
        );
        assert!(!m.contains("needs root"), "RLIMIT EPERM is harmless: {m}");
        let m = run("(00.01) Error (criu/vdso.c:1): vdso: Unexpected rt vDSO area bounds\n");
        assert!(m.contains("criu-wrapper.sh"), "{m}");
        let m = run("(00.05) Error (criu/tty.c:2286): tty: ctty inheritance detected sid/pgrp 1\n");
        assert!(m.contains("/dev/tty"), "{m}");
        let m = run("(00.22) Error (criu/cr-restore.c:1230): Can't fork for 2877: File exists\n");
        assert!(m.contains("PID is still taken"), "{m}");
        assert!(m.contains("full log"), "{m}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
