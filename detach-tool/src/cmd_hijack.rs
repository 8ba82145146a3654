//! `guievict hijack`, `guievict status` and `guievict list`. A PID (or nothing) flows in; the
//! injector puts the hijack library into the process if needed, the control socket is asked for
//! its status, and a human summary or JSON flows out. Other commands reuse [`ensure_hijacked`]
//! and [`query`] to reach a process.

use crate::inject;
use anyhow::{bail, Context, Result};
use guievict_hijack::control::{self, Request, Response, Status};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `guievict hijack <PID>`: inject the hijack library and interpose the X connection(s).
#[derive(clap::Args, Debug)]
pub struct HijackArgs {
    /// Process to hijack.
    pub pid: i32,
    /// Interpose only this descriptor (default: every X connection found).
    #[arg(long)]
    pub fd: Option<i32>,
    /// Fail unless the app is guarded too. By default the app is guarded when it can be (see
    /// `guievict guard`: it then outlives its X server), and a guard that cannot be made is a
    /// warning.
    #[arg(long, conflicts_with = "no_guard")]
    pub guard: bool,
    /// Do not guard the app: it then ends with its X server, as without guievict (no private
    /// server is started; the guard's cost in docs/benchmarks.md is not paid).
    #[arg(long)]
    pub no_guard: bool,
    /// Translate the app's X traffic in its own threads (libxcb's socket calls hooked), no
    /// thread hop per message: the default (kept for scripts; `GUIEVICT_INLINE=1` too).
    /// Connections of an app without libxcb stay relayed. `guievict status` shows which each
    /// connection runs.
    #[arg(long, conflicts_with = "relayed")]
    pub inline: bool,
    /// Relay the app's X traffic through a guimux thread per connection instead of translating
    /// it in the app's threads (as before issue 16; also `GUIEVICT_INLINE=0` in guievict's
    /// environment, which applies to every command that hijacks on the way too).
    #[arg(long)]
    pub relayed: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Environment variable of the CLI: `0` keeps hijacked apps relayed, `1` asks for inline
/// translation explicitly (the default, see [`inline_choice`]).
pub const INLINE_ENV: &str = "GUIEVICT_INLINE";

/// Whether a hijack asks for inline translation, and whether it was asked for explicitly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InlineChoice {
    /// Relayed (`--relayed`, `GUIEVICT_INLINE=0`).
    Off,
    /// Inline by default: an app without libxcb stays relayed without a word.
    Default,
    /// Inline asked for (`--inline`, `GUIEVICT_INLINE=1`): a refusal is reported.
    Asked,
}

/// The choice `guievict hijack`'s flags made, for the hijack it runs (see [`ensure_hijacked`]).
static CHOICE: std::sync::OnceLock<InlineChoice> = std::sync::OnceLock::new();

/// The inline choice of a hijack from its flags and `GUIEVICT_INLINE`. Inline is the default
/// since the whole test suite passed with it and the benchmark showed it faster in every row
/// (docs/benchmarks.md, "Inline translation").
pub fn inline_choice(inline: bool, relayed: bool) -> InlineChoice {
    if let Some(c) = CHOICE.get() {
        return *c;
    }
    if relayed {
        return InlineChoice::Off;
    }
    if inline {
        return InlineChoice::Asked;
    }
    match std::env::var(INLINE_ENV).as_deref() {
        Ok("0") => InlineChoice::Off,
        Ok("1") => InlineChoice::Asked,
        _ => InlineChoice::Default,
    }
}

/// Ask process `pid` for inline translation and wait (up to 2 s) until its attached
/// connections run inline; the status then. A refusal (no libxcb in the process) is an error
/// when inline was asked for, else the app stays relayed silently.
pub fn make_inline(pid: i32, choice: InlineChoice) -> Result<Status> {
    match query(pid, &Request::Inline { on: true })? {
        Response::Ok { .. } => {}
        Response::Error { message, .. } if choice == InlineChoice::Asked => {
            bail!("process {pid}: {message}")
        }
        Response::Error { .. } => return status_of(pid),
        other => bail!("process {pid}: unexpected answer {other:?}"),
    }
    let t0 = Instant::now();
    loop {
        let s = status_of(pid)?;
        let all = s
            .connections
            .iter()
            .filter(|c| c.server_connected)
            .all(|c| c.io == "inline");
        if all || t0.elapsed() > Duration::from_secs(2) {
            return Ok(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `guievict status [--pid P]`: state of hijacked processes.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Only this process.
    #[arg(long)]
    pub pid: Option<i32>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `guievict list`: every hijacked process of this user, or with `--display` every X client of
/// a display.
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// List every X client of this display instead (PID, command, windows and titles, whether
    /// hijacked and where it is attached).
    #[arg(long)]
    pub display: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `guievict debug-fault` (hidden, for the test suite): provoke a failure inside a hijacked
/// process. Only a process started with `GUIEVICT_TEST_FAULTS=1` carries it out.
#[derive(clap::Args, Debug)]
pub struct FaultArgs {
    /// Process id.
    pub pid: i32,
    /// What to provoke.
    #[arg(value_enum)]
    pub fault: FaultKind,
}

/// Failures `debug-fault` can provoke.
// The variant names are the command line's words (`engine-panic`, `hook-panic`, …).
#[allow(clippy::enum_variant_names)]
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum FaultKind {
    /// guimux panics while handling the next message of each connection.
    EnginePanic,
    /// The controller panics while holding its lock.
    ControllerPanic,
    /// The next hooked libxcb call of each connection panics (inline falls back to relayed).
    HookPanic,
}

/// Run `guievict debug-fault`.
pub fn run_fault(a: &FaultArgs) -> Result<()> {
    let fault = match a.fault {
        FaultKind::EnginePanic => control::TestFault::EnginePanic,
        FaultKind::ControllerPanic => control::TestFault::ControllerPanic,
        FaultKind::HookPanic => control::TestFault::HookPanic,
    };
    match query(a.pid, &Request::TestFault { fault })? {
        Response::Ok { message } => println!("{message}"),
        Response::Error { message, .. } => bail!("process {}: {message}", a.pid),
        other => bail!("process {}: unexpected answer {other:?}", a.pid),
    }
    Ok(())
}

/// Safe-point attempts before `hijack` gives up (about 3 s: a busy app on a loaded machine can
/// spend seconds in blocked writes while it starts up).
pub const MAX_TRIES: u32 = 1200;

/// The control socket of `pid`, if one answers.
pub fn socket_of(pid: i32) -> Option<PathBuf> {
    let uid = inject::procfs::owner_uid(pid).ok()?;
    control::find_socket(pid as u32, uid)
}

/// Send one request to the hijacked process `pid`.
pub fn query(pid: i32, req: &Request) -> Result<Response> {
    let Some(sock) = socket_of(pid) else {
        bail!("{}", why_no_socket(pid));
    };
    control::request(&sock, req).with_context(|| format!("talking to {}", sock.display()))
}

/// Why `pid` has no control socket, in words: gone, exited, or simply not hijacked.
pub fn why_no_socket(pid: i32) -> String {
    if pid <= 0 || !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return format!("process {pid} does not exist (it has exited, or the PID is wrong)");
    }
    if inject::procfs::is_exiting(pid) {
        return format!(
            "process {pid} has exited (a zombie until its parent collects it); nothing to control"
        );
    }
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    format!(
        "process {pid} ({}) is not hijacked: it has no guievict control socket; `guievict \
         hijack {pid}` hijacks it (detach, attach and move do that by themselves)",
        comm.trim()
    )
}

fn status_of(pid: i32) -> Result<Status> {
    match query(pid, &Request::Status)? {
        Response::Status(s) => Ok(s),
        Response::Error { kind, message } => bail!("process {pid}: {kind:?}: {message}"),
        other => bail!("process {pid}: unexpected answer {other:?}"),
    }
}

/// Make sure `pid` is hijacked (inject if needed) and return its status.
pub fn ensure_hijacked(pid: i32, fd: Option<i32>) -> Result<(Option<inject::Outcome>, Status)> {
    inject::check_target(pid)?;
    let library = crate::paths::find_library(crate::paths::HIJACK_ENV, crate::paths::HIJACK_FILE)?;
    let outcome = inject::hijack(
        pid,
        &inject::Options {
            library,
            fd,
            max_tries: MAX_TRIES,
        },
    )?;
    // The control thread binds its socket in the constructor; give the relay a moment to publish.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match status_of(pid) {
            Ok(s) if !s.connections.is_empty() || Instant::now() > deadline => {
                // `GUIEVICT_INLINE=1`: also an app hijacked on the way (move, detach, …) runs
                // inline once the operation is over.
                let choice = inline_choice(false, false);
                if choice != InlineChoice::Off && !s.connections.is_empty() {
                    if let Ok(Response::Error { message, .. }) =
                        query(pid, &Request::Inline { on: true })
                    {
                        if choice == InlineChoice::Asked {
                            eprintln!("guievict: note: process {pid} stays relayed: {message}");
                        }
                    }
                }
                return Ok((Some(outcome), s));
            }
            Ok(_) => {}
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn print_status(s: &Status) {
    println!(
        "pid {} ({}): hijack library {} [{}], control socket {}",
        s.pid,
        s.comm,
        s.library_version,
        s.mode,
        s.socket.display()
    );
    if let Some(b) = &s.busy {
        println!("  busy: {b} (figures from before it started)");
    }
    if s.connections.is_empty() {
        println!("  no X connection interposed");
    }
    for c in &s.connections {
        println!(
            "  fd {:>3}  {}  {}  {}  app→server {} B, server→app {} B, queued {} B to server / {} B to app",
            c.app_fd,
            c.display.as_deref().unwrap_or("-"),
            if c.server_connected { "attached" } else { "detached" },
            c.io,
            c.bytes_from_app,
            c.bytes_from_server,
            c.queued_to_server,
            c.queued_to_app,
        );
        if let Some(d) = &c.held_on {
            println!("         held on guievict's private server {d} (attach brings it back)");
        }
        if let Some(d) = &c.guard {
            println!("         guarded: a hidden replica on guievict's private server {d}");
        }
        if let Some(d) = &c.degraded {
            println!("         DEGRADED: {d}");
        }
        if let Some(d) = &c.inline_off {
            println!("         relayed: {d}");
        }
    }
}

/// Run `guievict hijack`.
pub fn run_hijack(a: &HijackArgs) -> Result<()> {
    let _ = CHOICE.set(inline_choice(a.inline, a.relayed));
    let (outcome, status) = ensure_hijacked(a.pid, a.fd)?;
    let unguarded = status
        .connections
        .iter()
        .any(|c| c.guard.is_none() && c.server_connected);
    if !a.no_guard && unguarded {
        match crate::cmd_guard::guard_one_if_own(a.pid as u32) {
            Ok(()) => {}
            Err(e) if a.guard => return Err(e),
            Err(e) => eprintln!(
                "guievict: warning: process {} is hijacked but not guarded, so it would end \
                 with its X server: {e:#}",
                a.pid
            ),
        }
    }
    // The status after the guard and the inline switch.
    let choice = inline_choice(a.inline, a.relayed);
    let status = if choice != InlineChoice::Off {
        make_inline(a.pid, choice)?
    } else {
        // Relayed (also an app hijacked inline before). A process that cannot run inline at
        // all (the plain relay) is relayed already: its refusal is no error here.
        if let Response::Error { message, .. } = query(a.pid, &Request::Inline { on: false })? {
            tracing::debug!("process {}: {message}", a.pid);
        }
        status_of(a.pid)?
    };
    if a.json {
        let v = serde_json::json!({ "outcome": outcome, "status": status });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if let Some(o) = &outcome {
        if o.already_loaded && o.interposed == 0 {
            println!("process {} was already hijacked", o.pid);
        } else {
            println!(
                "hijacked process {}: {} X connection(s) interposed in {:.1} ms ({} safe-point tr{})",
                o.pid,
                o.interposed,
                o.elapsed_ms,
                o.tries,
                if o.tries == 1 { "y" } else { "ies" }
            );
        }
    }
    print_status(&status);
    Ok(())
}

/// Every hijacked process reachable through this user's control directories or an abstract
/// control name (root: every user's). Stale sockets (and old logs of gone processes) are tidied away on the way.
pub fn hijacked_pids() -> Vec<i32> {
    let uid = nix::unistd::geteuid().as_raw();
    let mut pids = Vec::new();
    // Root sees (and may control) every user's hijacked processes.
    let (mut dirs, abstract_uid) = (control::list_dirs(uid), Some(uid));
    let abstract_uid = if uid == 0 {
        dirs.extend(control::all_users_dirs());
        dirs.dedup();
        None
    } else {
        abstract_uid
    };
    for dir in dirs {
        control::sweep_dir(&dir);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".sock"))
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            if !pids.contains(&pid) {
                pids.push(pid);
            }
        }
    }
    for pid in control::abstract_pids(abstract_uid) {
        if !pids.contains(&(pid as i32)) {
            pids.push(pid as i32);
        }
    }
    pids.sort_unstable();
    pids
}

/// Run `guievict status`.
pub fn run_status(a: &StatusArgs) -> Result<()> {
    let pids = match a.pid {
        Some(p) => vec![p],
        None => hijacked_pids(),
    };
    let mut all = Vec::new();
    for pid in pids {
        match status_of(pid) {
            Ok(s) => all.push(s),
            Err(e) if a.pid.is_some() => return Err(e),
            Err(e) => eprintln!("guievict: process {pid}: {e:#}"),
        }
    }
    if a.json {
        if a.pid.is_some() {
            if let Some(s) = all.first() {
                println!("{}", serde_json::to_string_pretty(s)?);
            }
        } else {
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
        return Ok(());
    }
    if all.is_empty() {
        println!("no hijacked processes");
    }
    for s in &all {
        print_status(s);
    }
    Ok(())
}

/// Run `guievict list`.
pub fn run_list(a: &ListArgs) -> Result<()> {
    if let Some(d) = &a.display {
        return crate::cmd_clients::run(d, a.json);
    }
    let mut rows = Vec::new();
    for pid in hijacked_pids() {
        match status_of(pid) {
            Ok(s) => rows.push(s),
            Err(e) => eprintln!("guievict: process {pid}: {e:#}"),
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no hijacked processes");
    }
    for s in &rows {
        let displays: Vec<&str> = s
            .connections
            .iter()
            .filter_map(|c| c.display.as_deref())
            .collect();
        let state = if s.connections.iter().all(|c| c.server_connected) {
            "attached"
        } else {
            "detached"
        };
        let queued: u64 = s.connections.iter().map(|c| c.queued_to_server).sum();
        println!(
            "{:>7}  {:<16} {:<10} {:<9} queued {} B",
            s.pid,
            s.comm,
            displays.join(","),
            state,
            queued
        );
    }
    Ok(())
}
