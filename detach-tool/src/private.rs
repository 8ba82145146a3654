//! guievict's private headless X server, one per user: where guarded GUIs keep a hidden replica
//! and detached GUIs are held (`guievict guard`, `detach --private`). The CLI asks for it; out
//! comes a display name, its X authority and an open connection to it that keeps it up while
//! the request that needs it runs.
//!
//! It is Xvfb with the GUIEVICT extension preloaded, started on demand by the CLI in its own
//! session (`setsid`: not a child of the app, it outlives the CLI), listening only on the
//! local sockets (`-nolisten tcp`), accepting only a random cookie kept in a mode-0600 file of
//! the user's runtime directory (`-auth`), and gone 10 s after its last client left
//! (`-terminate 10`: when no guarded or held app uses it). It is found again through
//! `private-display` in the runtime directory (`$XDG_RUNTIME_DIR/guievict`, else
//! `/tmp/guievict-<uid>`): the display name, the server's PID and the GUIEVICT protocol its
//! extension speaks (a server of another guievict version is not reused). A lock file
//! serialises CLIs that would start it at once.

use anyhow::{Context, Result};
use guievict_hijack::control::{self, PrivateServer, XAuth};
use guievict_hijack::session::{self, Auth};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Screen of the private server (`GUIEVICT_PRIVATE_SCREEN` overrides): large enough that the
/// windows of a usual display fit; pages nobody draws on are never touched.
const DEFAULT_SCREEN: &str = "3840x2160x24";
/// Environment variable overriding [`DEFAULT_SCREEN`].
pub const SCREEN_ENV: &str = "GUIEVICT_PRIVATE_SCREEN";
/// Seconds the private server stays up after its last client left (`-terminate DELAY`): a
/// detach soon after an attach (a user moving windows about, a benchmark's cycles) finds it
/// running instead of starting a new Xvfb (≈ 90 ms here).
const LINGER_S: &str = "10";
/// Name of the X authority protocol used.
const COOKIE_NAME: &str = "MIT-MAGIC-COOKIE-1";

/// The private server, reachable: the connection is kept open until this is dropped.
#[derive(Debug)]
pub struct Private {
    /// Display name, e.g. `:57`.
    pub display: String,
    /// The cookie it accepts.
    pub cookie: Vec<u8>,
    /// Our connection, which keeps a server started with `-terminate` up until the app's own
    /// connection to it is made.
    _hold: OwnedFd,
}

impl Private {
    /// What a control request carries of it.
    pub fn request_value(&self) -> PrivateServer {
        PrivateServer {
            display: self.display.clone(),
            auth: Some(XAuth {
                name: COOKIE_NAME.into(),
                data: self.cookie.clone(),
            }),
        }
    }
}

/// The runtime directory the private server's files live in.
fn dir() -> Result<PathBuf> {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    let uid = nix::unistd::getuid().as_raw();
    let (d, refused) = control::choose_dir(xdg.as_deref(), uid);
    d.with_context(|| {
        format!(
            "no usable runtime directory for the private server: {}",
            refused.join("; ")
        )
    })
}

/// Where `detach` holds a GUI. `required` (`--private`): on the private server, or an error.
/// `in_memory` (`--in-memory`): in memory (`None`). Neither (the default): on the private
/// server when it can be started — the app keeps running for real —, else in memory (or by
/// its guard, on the private server it already has), with the reason the private server could
/// not be started, for the caller to say on stderr.
pub fn for_detach(required: bool, in_memory: bool) -> Result<(Option<Private>, Option<String>)> {
    if in_memory {
        return Ok((None, None));
    }
    match ensure() {
        Ok(p) => Ok((Some(p), None)),
        Err(e) if required => Err(e),
        Err(e) => Ok((None, Some(format!("{e:#}")))),
    }
}

/// The private server: the running one if it answers, else a new one.
pub fn ensure() -> Result<Private> {
    let dir = dir()?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(dir.join("private-display.lock"))
        .context("opening the private server's lock file")?;
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow::anyhow!("locking the private server's lock file: {e}"))?;
    if let Some(p) = running(&dir) {
        return Ok(p);
    }
    start(&dir)
}

/// The private server named by the state file, if it still answers with its cookie.
fn running(dir: &Path) -> Option<Private> {
    let text = std::fs::read_to_string(dir.join("private-display")).ok()?;
    let mut lines = text.lines();
    let display = lines.next()?.trim().to_string();
    let pid: u32 = lines.next()?.trim().parse().ok()?;
    // A private server started by another guievict build may speak another GUIEVICT protocol
    // (a capture there would ask for what it does not know): it serves the apps it holds,
    // and this CLI starts its own.
    if lines.next().map(str::trim) != Some(protocol_line().as_str()) {
        tracing::info!(
            "the private server in the state file was started by another guievict version"
        );
        return None;
    }
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    if comm.trim() != "Xvfb" {
        return None;
    }
    let cookie = std::fs::read(dir.join("private-display.cookie")).ok()?;
    let auth = Auth {
        name: COOKIE_NAME.as_bytes().to_vec(),
        data: cookie.clone(),
    };
    let (fd, _) = session::connect_raw(&display, Some(&auth)).ok()?;
    // The display number alone does not prove it: a private server that has just terminated
    // (`-terminate`) frees its number, and another X server that accepts anyone (a test's
    // Xvfb) may take it while the recorded PID still names an exiting Xvfb. A GUI held there
    // would die with that server. The socket's peer must be the recorded process.
    let shown: &str = &display;
    match server_pid(&fd) {
        Some(peer) if peer == pid => {}
        peer => {
            tracing::info!(
                private_display = shown,
                pid,
                ?peer,
                "the display named by the state file is another X server now"
            );
            return None;
        }
    }
    tracing::debug!(private_display = shown, pid, "the private server answers");
    Some(Private {
        display,
        cookie,
        _hold: fd,
    })
}

/// The third line of the state file: the GUIEVICT protocol the private server's extension
/// speaks (that of this build: it was started with this build's extension).
fn protocol_line() -> String {
    format!(
        "GUIEVICT {}.{}",
        guievict_ext_proto::MAJOR_VERSION,
        guievict_ext_proto::MINOR_VERSION
    )
}

/// The PID of the process at the other end of a local X connection (the server that listens
/// there), from the socket's peer credentials; `None` for TCP or when the kernel says nothing.
fn server_pid(fd: &OwnedFd) -> Option<u32> {
    let cred = nix::sys::socket::getsockopt(fd, nix::sys::socket::sockopt::PeerCredentials).ok()?;
    u32::try_from(cred.pid()).ok().filter(|&p| p != 0)
}

/// Write an Xauthority file with one FamilyWild entry for `cookie` (the server reads the
/// name and data of each entry; address and number do not matter to it).
fn write_xauth(path: &Path, cookie: &[u8]) -> Result<()> {
    let mut b = Vec::new();
    let field = |b: &mut Vec<u8>, v: &[u8]| {
        b.extend_from_slice(&(v.len() as u16).to_be_bytes());
        b.extend_from_slice(v);
    };
    b.extend_from_slice(&0xffffu16.to_be_bytes());
    field(&mut b, b"");
    field(&mut b, b"");
    field(&mut b, COOKIE_NAME.as_bytes());
    field(&mut b, cookie);
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(&b)?;
    Ok(())
}

/// How many Xvfb a start may try: one that dies or resets our connection right after it
/// reported its display (seen once under a loaded parallel test run: "reading setup:
/// Connection reset by peer") is replaced by a new one.
const START_ATTEMPTS: u32 = 3;

/// Start a new private server and record it.
fn start(dir: &Path) -> Result<Private> {
    let mut last = None;
    for attempt in 1..=START_ATTEMPTS {
        match start_once(dir) {
            Ok(p) => return Ok(p),
            Err(Start::Fatal(e)) => return Err(e),
            Err(Start::Retry(e)) => {
                tracing::warn!(attempt, "the private server did not come up: {e:#}");
                last = Some(e);
            }
        }
    }
    Err(last
        .unwrap_or_else(|| anyhow::anyhow!("no attempt made"))
        .context(format!(
            "the private server did not come up in {START_ATTEMPTS} attempts"
        )))
}

/// Why one start failed: worth another Xvfb or not.
enum Start {
    /// Nothing a new Xvfb would change (no extension, no Xvfb, no runtime directory).
    Fatal(anyhow::Error),
    /// This Xvfb died or dropped us; it was killed.
    Retry(anyhow::Error),
}

impl From<anyhow::Error> for Start {
    fn from(e: anyhow::Error) -> Self {
        Start::Fatal(e)
    }
}

impl From<std::io::Error> for Start {
    fn from(e: std::io::Error) -> Self {
        Start::Fatal(e.into())
    }
}

/// The last lines of the private server's log, for an error message.
fn log_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("private-display.log")).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("server already running"))
        .collect();
    let tail = lines[lines.len().saturating_sub(5)..].join(" | ");
    if tail.is_empty() {
        format!("{} is empty", dir.join("private-display.log").display())
    } else {
        format!("its log ends: {tail}")
    }
}

/// One try at [`start`].
fn start_once(dir: &Path) -> std::result::Result<Private, Start> {
    let ext = crate::paths::find_library(crate::paths::XEXT_ENV, crate::paths::XEXT_FILE)
        .context("the private server needs the GUIEVICT extension")?;
    let mut cookie = vec![0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut cookie))
        .context("reading a random cookie")?;
    let xauth = dir.join("private-display.xauth");
    write_xauth(&xauth, &cookie)?;
    let screen = std::env::var(SCREEN_ENV).unwrap_or_else(|_| DEFAULT_SCREEN.into());
    // The write end is inherited by Xvfb (-displayfd): created without close-on-exec.
    let (rd, wr): (OwnedFd, OwnedFd) = nix::unistd::pipe().context("pipe for -displayfd")?;
    let wfd = wr.as_raw_fd();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(dir.join("private-display.log"))?;
    let mut cmd = Command::new("Xvfb");
    cmd.arg("-displayfd")
        .arg(wfd.to_string())
        .args(["-nolisten", "tcp", "-terminate", LINGER_S, "-auth"])
        .arg(&xauth)
        .args(["-screen", "0", &screen])
        .env("LD_PRELOAD", &ext)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    // SAFETY: runs between fork and exec in the child; setsid is async-signal-safe and touches
    // no memory of ours. Its own session: no terminal's hangup or the CLI's signals reach it.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .context("starting Xvfb for the private server (is xvfb installed?)")?;
    let pid = child.id();
    drop(wr);
    // Not waited for: it outlives us (init reaps it).
    drop(child);
    let mut reader = std::fs::File::from(rd);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut number = String::new();
    let mut byte = [0u8; 1];
    loop {
        if Instant::now() > deadline {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            return Err(Start::Retry(anyhow::anyhow!(
                "the private Xvfb did not report its display within 20 s; {}",
                log_tail(dir)
            )));
        }
        match reader.read(&mut byte) {
            Ok(0) => {
                return Err(Start::Retry(anyhow::anyhow!(
                    "the private Xvfb exited before reporting its display; {}",
                    log_tail(dir)
                )))
            }
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => number.push(byte[0] as char),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Start::Fatal(e.into())),
        }
    }
    let display = format!(":{}", number.trim());
    let auth = Auth {
        name: COOKIE_NAME.as_bytes().to_vec(),
        data: cookie.clone(),
    };
    let hold = match session::connect_raw(&display, Some(&auth)) {
        Ok((hold, _)) => hold,
        Err(e) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            return Err(Start::Retry(anyhow::anyhow!(
                "connecting to the private server {display}: {e}; {}",
                log_tail(dir)
            )));
        }
    };
    let cookie_path = dir.join("private-display.cookie");
    let _ = std::fs::remove_file(&cookie_path);
    std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&cookie_path)
        .and_then(|mut f| f.write_all(&cookie))
        .context("recording the private server's cookie")?;
    let state = dir.join("private-display");
    let tmp = dir.join("private-display.tmp");
    std::fs::write(&tmp, format!("{display}\n{pid}\n{}\n", protocol_line()))?;
    std::fs::rename(&tmp, &state)?;
    let shown: &str = &display;
    tracing::info!(private_display = shown, pid, "started the private server");
    Ok(Private {
        display,
        cookie,
        _hold: hold,
    })
}
