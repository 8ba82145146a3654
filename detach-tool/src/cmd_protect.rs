//! `guievict protect --display D`: keep every X client of a display that this user owns
//! hijacked, including clients that connect later, so that every app of the desktop can be
//! detached, moved, replicated — and, with the private-server guard, outlive its X server.
//!
//! The display's client list flows in from X-Resource (`QueryClients` plus `QueryClientIds`
//! with client 0, as `guievict list --display` reads it — never `QueryResourceBytes`), read
//! again whenever the GUIEVICT extension (protocol ≥ 1.6, `SelectClientEvents`) says a client
//! started or went, else polled every `--interval-ms`, on one connection; each new client's
//! process flows to the injector
//! ([`crate::cmd_hijack::ensure_hijacked`]); what was protected and what could not be (with
//! the reason) flows out into a state file in the runtime directory
//! (`protect-<display>.json`), which `--status`, `--stop` and a second `protect` read. The
//! watcher runs as a small daemon of its own process group (or in the foreground with
//! `--foreground`, as the systemd user unit runs it) and ends by itself when the display's
//! server goes away.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::res;

/// `guievict protect`.
#[derive(clap::Args, Debug)]
pub struct ProtectArgs {
    /// The display whose clients to protect (default: $DISPLAY).
    #[arg(long)]
    pub display: Option<String>,
    /// Stop protecting the display (apps hijacked so far stay hijacked).
    #[arg(long, conflicts_with_all = ["status", "foreground"])]
    pub stop: bool,
    /// Show what is protected and what could not be, with the reasons.
    #[arg(long, conflicts_with = "foreground")]
    pub status: bool,
    /// Run the watcher in this process instead of a background daemon (for a service manager).
    #[arg(long)]
    pub foreground: bool,
    /// Kept for scripts: protected apps are guarded by default (see `guievict guard`: a
    /// hidden replica on guievict's private server, so that the apps outlive the display's X
    /// server).
    #[arg(long, hide = true, conflicts_with = "no_guard")]
    pub guard: bool,
    /// Do not guard the protected apps: they can then be detached and moved, but end with
    /// the display's X server.
    #[arg(long)]
    pub no_guard: bool,
    /// How often the display's client list is read, in milliseconds.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(20..=60_000))]
    pub interval_ms: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// One client the watcher has dealt with.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Entry {
    /// Process ID (absent for a client whose process the server does not know).
    pub pid: Option<u32>,
    /// The client's resource-ID base, `0x…`.
    pub client: String,
    /// The process's command line.
    pub command: Option<String>,
    /// Why it is not protected (unprotected entries), or why a protected app is not guarded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What `protect-<display>.json` holds.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct State {
    /// The display watched.
    pub display: String,
    /// The watcher's process.
    pub daemon_pid: u32,
    /// When it started, seconds since the epoch.
    pub started: u64,
    /// Milliseconds its first pass over the display's clients took.
    pub first_pass_ms: f64,
    /// Clients now under guievict.
    pub protected: Vec<Entry>,
    /// Clients that could not be protected, each with the reason.
    pub unprotected: Vec<Entry>,
    /// Whether protected apps are also guarded (outlive the server).
    #[serde(default)]
    pub guard: bool,
    /// How new clients are noticed: "events" (GUIEVICT client events) or "polling".
    #[serde(default)]
    pub notice: String,
    /// The X server watched, for a local display: its PID and start time (clock ticks since
    /// boot), so that a watcher of an earlier server of the same display name is not taken for
    /// this one's.
    #[serde(default)]
    pub server: Option<(u32, u64)>,
}

/// The local X server of `display`: (PID, start time), from its listening socket's
/// credentials. `None` for a TCP display or when it cannot be told.
fn server_identity(display: &str) -> Option<(u32, u64)> {
    let (fd, ..) = guievict_hijack::session::connect_socket(display).ok()?;
    let cred =
        nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::PeerCredentials).ok()?;
    let pid = u32::try_from(cred.pid()).ok().filter(|&p| p > 0)?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let start: u64 = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()?;
    Some((pid, start))
}

/// Without events, or with retries pending, how long the watcher may sleep between passes
/// at most when events are on: a slow safety re-read that costs nothing.
const EVENT_RESCAN: Duration = Duration::from_secs(30);

/// Ask the display's GUIEVICT extension for client events; whether it gives them (protocol
/// 1.6 and later).
fn select_client_events(conn: &x11rb::rust_connection::RustConnection) -> Result<Option<u8>> {
    use guievict_ext_proto as proto;
    use std::io::IoSlice;
    let Some(info) = conn.extension_information(proto::EXTENSION_NAME)? else {
        return Ok(None);
    };
    let order = proto::ByteOrder::native();
    let qv = proto::encode_query_own_version(info.major_opcode, order);
    let reply = conn
        .send_request_with_reply::<x11rb::protocol::xproto::GetInputFocusReply>(
            &[IoSlice::new(&qv)],
            Vec::new(),
        )?
        .raw_reply()?;
    let v = proto::decode_query_version_reply(&reply, order)?;
    if v.major != proto::MAJOR_VERSION || v.minor < 6 {
        return Ok(None);
    }
    let sel = proto::encode_select_client_events(
        info.major_opcode,
        proto::CLIENT_EVENT_STARTED | proto::CLIENT_EVENT_GONE,
        order,
    );
    match conn
        .send_request_without_reply(&[IoSlice::new(&sel)], Vec::new())?
        .check()
    {
        Ok(()) => Ok(Some(info.first_event)),
        Err(e) => {
            tracing::info!("client events refused ({e}); polling instead");
            Ok(None)
        }
    }
}

/// Sleep until the server sends something (a client event) or `timeout`; whether any event
/// came. An error means the connection is gone.
fn wait_events(conn: &x11rb::rust_connection::RustConnection, timeout: Duration) -> Result<bool> {
    use std::os::fd::AsFd;
    let mut any = false;
    while conn.poll_for_raw_event()?.is_some() {
        any = true;
    }
    if any {
        return Ok(true);
    }
    let fd = conn.stream().as_fd();
    let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    match nix::poll::poll(
        &mut fds,
        nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX),
    ) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => {}
        Err(e) => return Err(e.into()),
    }
    while conn.poll_for_raw_event()?.is_some() {
        any = true;
    }
    Ok(any)
}

/// Where the state of the watcher of `display` lives.
fn state_path(display: &str) -> Result<PathBuf> {
    let uid = nix::unistd::geteuid().as_raw();
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    let (dir, refused) = guievict_hijack::control::choose_dir(xdg.as_deref(), uid);
    let Some(dir) = dir else {
        bail!("no usable runtime directory: {}", refused.join("; "));
    };
    let name: String = display
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(dir.join(format!("protect-{name}.json")))
}

fn read_state(path: &Path) -> Option<State> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn write_state(path: &Path, s: &State) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(s)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

/// Whether `pid` is a running guievict protect watcher (not a reused PID).
fn is_watcher(pid: u32) -> bool {
    let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
    !crate::inject::procfs::is_exiting(pid as i32)
        && args.iter().any(|a| *a == b"protect")
        && args.iter().any(|a| *a == b"--foreground")
        && same_exe(pid)
}

/// Whether `pid` runs this very executable.
fn same_exe(pid: u32) -> bool {
    match (
        std::fs::read_link(format!("/proc/{pid}/exe")),
        std::env::current_exe(),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// How many times a failed hijack is tried again before the client is listed as unprotected
/// (a client caught while it starts up fails once or twice).
const TRIES: u32 = 3;

/// The watcher: protect what is there, then what comes, until the server goes away.
fn watch(display: &str, interval: Duration, guard: bool, path: &Path) -> Result<()> {
    let t0 = Instant::now();
    let (conn, _, name) = crate::xconn::connect(Some(display))?;
    anyhow::ensure!(
        conn.extension_information(res::X11_EXTENSION_NAME)?
            .is_some(),
        "{name} has no X-Resource extension, so its clients cannot be found"
    );
    let me = std::process::id();
    let us = nix::unistd::geteuid().as_raw();
    let mut state = State {
        display: name.clone(),
        daemon_pid: me,
        started: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        first_pass_ms: 0.0,
        protected: Vec::new(),
        unprotected: Vec::new(),
        guard,
        notice: String::new(),
        server: server_identity(display),
    };
    let events = match select_client_events(&conn) {
        Ok(e) => e,
        Err(e) => {
            tracing::info!("{name}: no client events ({e:#}); polling");
            None
        }
    };
    state.notice = if events.is_some() {
        "events"
    } else {
        "polling"
    }
    .into();
    let mut failures: BTreeMap<u32, u32> = BTreeMap::new();
    let mut first = true;
    loop {
        let list = match crate::cmd_clients::client_pids(&conn) {
            Ok(l) => l,
            Err(e) => {
                tracing::info!("{name}: the server went away ({e:#}); protection ends");
                let _ = std::fs::remove_file(path);
                return Ok(());
            }
        };
        let mut changed = first;
        for (base, pid) in &list {
            let client = format!("{base:#x}");
            let known = |v: &Vec<Entry>| v.iter().any(|e| e.client == client && e.pid == *pid);
            if known(&state.protected) || known(&state.unprotected) {
                continue;
            }
            let Some(pid) = *pid else {
                state.unprotected.push(Entry {
                    pid: None,
                    client,
                    command: None,
                    reason: Some(
                        "the server does not know its process (a client of another host?)".into(),
                    ),
                });
                changed = true;
                continue;
            };
            if pid == me || same_exe(pid) {
                continue; // guievict itself (this watcher, a `guievict list`)
            }
            let command = crate::cmd_clients::command_of(pid);
            let owner = crate::inject::procfs::owner_uid(pid as i32).ok();
            if us != 0 && owner != Some(us) {
                state.unprotected.push(Entry {
                    pid: Some(pid),
                    client,
                    command,
                    reason: Some(match owner {
                        Some(o) => {
                            format!("owned by uid {o}; only its owner (or root) may protect it")
                        }
                        None => "its owner cannot be read".into(),
                    }),
                });
                changed = true;
                continue;
            }
            let hijacked = crate::cmd_hijack::ensure_hijacked(pid as i32, None);
            match hijacked {
                Ok(_) => {
                    // A guard that cannot be made leaves the app protected (it can be moved
                    // and detached), with the reason it would not outlive the server.
                    let reason = guard
                        .then(|| crate::cmd_guard::guard_one_if_own(pid).err())
                        .flatten()
                        .map(|e| format!("not guarded (ends with the X server): {e:#}"));
                    match &reason {
                        Some(r) => tracing::warn!("{name}: protected process {pid}, {r}"),
                        None => tracing::info!(
                            "{name}: protected process {pid} ({})",
                            command.as_deref().unwrap_or("?")
                        ),
                    }
                    state.protected.push(Entry {
                        pid: Some(pid),
                        client,
                        command,
                        reason,
                    });
                    changed = true;
                }
                Err(e) => {
                    let n = failures.entry(pid).or_insert(0);
                    *n += 1;
                    if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                        continue; // gone meanwhile
                    }
                    if *n >= TRIES {
                        tracing::warn!("{name}: cannot protect process {pid}: {e:#}");
                        state.unprotected.push(Entry {
                            pid: Some(pid),
                            client,
                            command,
                            reason: Some(format!("{e:#}")),
                        });
                        changed = true;
                    }
                }
            }
        }
        // Clients that left the display leave the lists.
        let present = |e: &Entry| {
            list.iter()
                .any(|(b, p)| format!("{b:#x}") == e.client && *p == e.pid)
        };
        let before = (state.protected.len(), state.unprotected.len());
        state.protected.retain(present);
        state.unprotected.retain(present);
        changed |= before != (state.protected.len(), state.unprotected.len());
        if first {
            state.first_pass_ms = t0.elapsed().as_secs_f64() * 1e3;
            first = false;
        }
        if changed {
            write_state(path, &state)?;
        }
        if events.is_some() {
            // Asleep until a client starts or goes; sooner while a failed client is retried.
            let retrying = failures.iter().any(|(pid, n)| {
                *n < TRIES
                    && Path::new(&format!("/proc/{pid}")).exists()
                    && !state.protected.iter().any(|e| e.pid == Some(*pid))
            });
            let timeout = if retrying { interval } else { EVENT_RESCAN };
            if let Err(e) = wait_events(&conn, timeout) {
                tracing::info!("{name}: the server went away ({e:#}); protection ends");
                let _ = std::fs::remove_file(path);
                return Ok(());
            }
        } else {
            std::thread::sleep(interval);
        }
    }
}

fn print_state(s: &State, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(s)?);
        return Ok(());
    }
    println!(
        "protecting {}{} (watcher PID {}, first pass {:.0} ms): {} client(s) protected, {} not",
        s.display,
        if s.guard {
            ", guarded"
        } else {
            ", not guarded (--no-guard)"
        },
        s.daemon_pid,
        s.first_pass_ms,
        s.protected.len(),
        s.unprotected.len()
    );
    for e in &s.protected {
        println!(
            "  protected  {:>7}  {}{}",
            e.pid.map(|p| p.to_string()).unwrap_or_default(),
            e.command.as_deref().unwrap_or("?"),
            e.reason
                .as_deref()
                .map(|r| format!(" — {r}"))
                .unwrap_or_default()
        );
    }
    for e in &s.unprotected {
        println!(
            "  NOT        {:>7}  {}: {}",
            e.pid
                .map(|p| p.to_string())
                .unwrap_or_else(|| e.client.clone()),
            e.command.as_deref().unwrap_or("?"),
            e.reason.as_deref().unwrap_or("?")
        );
    }
    Ok(())
}

/// Run `guievict protect`.
pub fn run(a: &ProtectArgs) -> Result<()> {
    let display = crate::xconn::display_name(a.display.as_deref())?;
    let path = state_path(&display)?;
    let mut running = read_state(&path).filter(|s| is_watcher(s.daemon_pid));
    // A watcher of an earlier server of this display name (it ends by itself once it notices
    // its server is gone): not this server's; it is stopped and a new one started.
    if let Some(s) = running
        .as_ref()
        .filter(|s| s.server.is_some() && s.server != server_identity(&display))
    {
        eprintln!(
            "guievict: watcher {} watched an earlier server of {display}; replacing it",
            s.daemon_pid
        );
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(s.daemon_pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while is_watcher(s.daemon_pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        running = None;
    }
    if a.stop {
        let Some(s) = running else {
            let _ = std::fs::remove_file(&path);
            bail!("{display} is not being protected");
        };
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(s.daemon_pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .with_context(|| format!("stopping watcher {}", s.daemon_pid))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while is_watcher(s.daemon_pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = std::fs::remove_file(&path);
        if a.json {
            println!(
                "{}",
                serde_json::json!({"display": display, "stopped": s.daemon_pid})
            );
        } else {
            println!(
                "{display} is no longer protected (watcher {} stopped; the {} app(s) it hijacked stay hijacked)",
                s.daemon_pid,
                s.protected.len()
            );
        }
        return Ok(());
    }
    if a.status {
        let Some(s) = running else {
            bail!("{display} is not being protected (start with `guievict protect --display {display}`)");
        };
        return print_state(&s, a.json);
    }
    if let Some(s) = running {
        if a.foreground {
            bail!("{display} is already protected by watcher {}", s.daemon_pid);
        }
        eprintln!("{display} is already protected by watcher {}", s.daemon_pid);
        return print_state(&s, a.json);
    }
    let _ = std::fs::remove_file(&path);
    let interval = Duration::from_millis(a.interval_ms);
    if a.foreground {
        return watch(&display, interval, !a.no_guard, &path);
    }
    // The daemon: this executable again, in the foreground mode, in a process group of its
    // own (a terminal's signals do not reach it), its output in a log next to the state.
    let exe = std::env::current_exe().context("finding this executable")?;
    let log = std::fs::File::create(path.with_extension("log"))
        .with_context(|| format!("creating {}", path.with_extension("log").display()))?;
    let t0 = Instant::now();
    use std::os::unix::process::CommandExt;
    let mut child = std::process::Command::new(exe)
        .args([
            "protect",
            "--foreground",
            "--display",
            &display,
            "--interval-ms",
            &a.interval_ms.to_string(),
        ])
        .args(a.no_guard.then_some("--no-guard"))
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("starting the watcher")?;
    // Ready when its first pass is written.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = read_state(&path).filter(|s| s.daemon_pid == child.id()) {
            if !a.json {
                eprintln!(
                    "watcher {} started in {:.0} ms",
                    s.daemon_pid,
                    t0.elapsed().as_secs_f64() * 1e3
                );
            }
            return print_state(&s, a.json);
        }
        if let Ok(Some(st)) = child.try_wait() {
            let text = std::fs::read_to_string(path.with_extension("log")).unwrap_or_default();
            bail!(
                "the watcher exited ({st}) before protecting anything: {}",
                text.trim()
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("the watcher did not finish its first pass within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
