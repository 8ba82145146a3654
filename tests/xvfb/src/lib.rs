//! Integration-test harness. Tests ask it for private X servers (Xvfb with or without the GUIEVICT
//! extension, or a headless Xorg), real X applications on them, screenshots of their windows and
//! XTEST input; the harness hands back display names, PIDs, window IDs and images, and kills and
//! reaps every process it started when the owning value is dropped (or when the test thread
//! dies: children get `PR_SET_PDEATHSIG`).

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use x11rb::connection::Connection;
use x11rb::protocol::res::{self, ClientIdMask, ClientIdSpec};
use x11rb::protocol::xproto::{ConnectionExt as _, MapState};
use x11rb::rust_connection::RustConnection;

pub mod grabs;
pub mod image;
pub mod input;
pub mod link;
pub mod screenshots;
pub use grabs::{keyboard_grabbed, pointer_grabbed};
pub use image::{compare, fraction_within, Comparison, Image};
pub use input::{xtest_click, xtest_key, xtest_type};
pub use link::DelayLink;
pub use screenshots::{
    assert_picture_returns, assert_same_picture, screenshot, settled_screenshot,
    settled_screenshot_for, QUIET,
};

/// Root of the cargo workspace (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Directory where tests write artifacts (screenshots, diffs, logs).
pub fn artifacts_dir() -> PathBuf {
    let d = target_dir().join("test-artifacts");
    let _ = std::fs::create_dir_all(&d);
    d
}

/// The cargo target directory: `$CARGO_TARGET_DIR` or `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Find a build artifact: the override variable, else the profile the tests were built with,
/// else the other profile.
fn artifact(env_var: &str, file: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_var) {
        return PathBuf::from(p);
    }
    let t = target_dir();
    let (first, second) = if cfg!(debug_assertions) {
        ("debug", "release")
    } else {
        ("release", "debug")
    };
    let a = t.join(first).join(file);
    if a.exists() {
        return a;
    }
    t.join(second).join(file)
}

/// Path of `libguievict_xext.so` (override: `GUIEVICT_XEXT`).
pub fn ext_path() -> PathBuf {
    artifact("GUIEVICT_XEXT", "libguievict_xext.so")
}

/// Path of `libguievict_hijack.so` (override: `GUIEVICT_HIJACK`).
pub fn hijack_path() -> PathBuf {
    artifact("GUIEVICT_HIJACK", "libguievict_hijack.so")
}

/// Path of the `guievict` binary (override: `GUIEVICT_BIN`).
pub fn guievict_bin() -> PathBuf {
    artifact("GUIEVICT_BIN", "guievict")
}

/// Make a child die with the process that started it and keep it out of our signals.
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // functions (prctl, getppid).
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Kill and reap a child, ignoring errors (it may be gone already).
fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Options for a private Xvfb.
#[derive(Clone, Debug)]
pub struct XvfbOptions {
    /// Preload the GUIEVICT extension.
    pub preload_ext: bool,
    /// Screen geometry, e.g. `"1280x1024x24"`.
    pub screen: String,
    /// Extra server arguments (e.g. `"-ac"`, `"+extension"`).
    pub extra_args: Vec<String>,
    /// Keep `-noreset` (default true).
    pub noreset: bool,
    /// Extra environment variables for the server process.
    pub env: Vec<(String, String)>,
    /// A command the server runs under (e.g. `["unshare", "--ipc"]`: a server in its own IPC
    /// namespace, which cannot see the clients' System V segments); it must exec the server.
    pub wrapper: Vec<String>,
}

impl Default for XvfbOptions {
    fn default() -> Self {
        Self {
            preload_ext: true,
            screen: "1280x1024x24".into(),
            extra_args: Vec::new(),
            noreset: true,
            env: Vec::new(),
            wrapper: Vec::new(),
        }
    }
}

/// A private Xvfb server, killed and reaped on drop.
pub struct Xvfb {
    /// Display name, e.g. `":12"`.
    pub display: String,
    /// Display number.
    pub number: u32,
    child: Child,
    log: PathBuf,
}

impl Xvfb {
    /// Start Xvfb with the GUIEVICT extension preloaded. Fails if the extension library has not
    /// been built.
    pub fn start() -> Result<Self> {
        Self::start_with(XvfbOptions::default())
    }

    /// Start a stock Xvfb without the extension.
    pub fn start_plain() -> Result<Self> {
        Self::start_with(XvfbOptions {
            preload_ext: false,
            ..Default::default()
        })
    }

    /// Start Xvfb with the given options; returns once the server accepts connections.
    pub fn start_with(opts: XvfbOptions) -> Result<Self> {
        let (mut reader, writer) = std::io::pipe().context("pipe for -displayfd")?;
        let wfd = writer.as_raw_fd();
        let log = artifacts_dir().join(format!(
            "xvfb-{}-{}.log",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let logf = std::fs::File::create(&log)?;
        let mut cmd = match opts.wrapper.split_first() {
            Some((w, args)) => {
                let mut c = Command::new(w);
                c.args(args).arg("/usr/bin/Xvfb");
                c
            }
            None => Command::new("/usr/bin/Xvfb"),
        };
        cmd.arg("-displayfd").arg(wfd.to_string()).args([
            "-nolisten",
            "tcp",
            "-screen",
            "0",
            &opts.screen,
        ]);
        if opts.noreset {
            cmd.arg("-noreset");
        }
        cmd.args(&opts.extra_args);
        if opts.preload_ext {
            let ext = ext_path();
            if !ext.exists() {
                bail!(
                    "extension library {} not built (run `cargo build --release --workspace`)",
                    ext.display()
                );
            }
            cmd.env("LD_PRELOAD", ext);
        } else {
            cmd.env_remove("LD_PRELOAD");
        }
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(logf));
        die_with_parent(&mut cmd);
        // SAFETY: runs between fork and exec; fcntl is async-signal-safe. Clears FD_CLOEXEC on
        // the pipe's write end so Xvfb inherits it for -displayfd.
        unsafe {
            cmd.pre_exec(move || {
                if libc::fcntl(wfd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .context("spawning /usr/bin/Xvfb (is xvfb installed?)")?;
        drop(writer);
        let mut buf = String::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        // Xvfb writes "N\n" then keeps the fd open; read until newline.
        let mut byte = [0u8; 1];
        loop {
            if Instant::now() > deadline {
                kill_and_reap(&mut child);
                bail!(
                    "Xvfb did not report a display within 20 s (log: {})",
                    log.display()
                );
            }
            match reader.read(&mut byte) {
                Ok(0) => {
                    kill_and_reap(&mut child);
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    bail!("Xvfb exited before reporting its display: {text}");
                }
                Ok(_) if byte[0] == b'\n' => break,
                Ok(_) => buf.push(byte[0] as char),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        let number: u32 = buf
            .trim()
            .parse()
            .context("parsing Xvfb's -displayfd output")?;
        Ok(Self {
            display: format!(":{number}"),
            number,
            child,
            log,
        })
    }

    /// A fresh x11rb connection to this server.
    pub fn connect(&self) -> Result<RustConnection> {
        connect(&self.display)
    }

    /// The server's log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// PID of the server process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kill the server now (e.g. to test how others survive its death).
    pub fn kill(&mut self) {
        kill_and_reap(&mut self.child);
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A headless Xorg server with the dummy video driver, run as user `nobody` (as root it would
/// grab a VT). Optionally loads the GUIEVICT extension as a module.
pub struct Xorg {
    /// Display name.
    pub display: String,
    child: Child,
    dir: PathBuf,
}

impl Xorg {
    /// Start Xorg on a free display number. `load_ext` copies the extension library as
    /// `libguievict.so` into a private module directory and adds `Load "guievict"`.
    pub fn start(load_ext: bool) -> Result<Self> {
        let dir = artifacts_dir().join(format!(
            "xorg-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("modules/extensions"))?;
        let mut modules = String::new();
        if load_ext {
            let ext = ext_path();
            if !ext.exists() {
                bail!("extension library {} not built", ext.display());
            }
            std::fs::copy(&ext, dir.join("modules/extensions/libguievict.so"))?;
            modules.push_str("    Load \"guievict\"\n");
        }
        let conf = format!(
            "Section \"Files\"\n    ModulePath \"{}/modules\"\n    ModulePath \"/usr/lib/xorg/modules\"\nEndSection\n\
             Section \"Module\"\n{modules}EndSection\n\
             Section \"ServerFlags\"\n    Option \"AutoAddDevices\" \"false\"\n    Option \"AutoEnableDevices\" \"false\"\nEndSection\n\
             Section \"Device\"\n    Identifier \"d\"\n    Driver \"dummy\"\n    VideoRam 65536\nEndSection\n\
             Section \"Monitor\"\n    Identifier \"m\"\n    HorizSync 5.0-1000.0\n    VertRefresh 5.0-200.0\nEndSection\n\
             Section \"Screen\"\n    Identifier \"s\"\n    Device \"d\"\n    Monitor \"m\"\n    DefaultDepth 24\n    SubSection \"Display\"\n        Depth 24\n        Virtual 1280 1024\n    EndSubSection\nEndSection\n",
            dir.display()
        );
        std::fs::write(dir.join("xorg.conf"), conf)?;
        // Xorg must be able to read its config and write its log as nobody.
        Command::new("chmod")
            .args(["-R", "a+rwX"])
            .arg(&dir)
            .status()?;
        let mut parent = dir.clone();
        while parent.pop() {
            let _ = Command::new("chmod").arg("a+x").arg(&parent).status();
        }
        let number = free_display_number()?;
        let display = format!(":{number}");
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "Xorg"])
            .arg(&display)
            .args(["-config"])
            .arg(dir.join("xorg.conf"))
            .arg("-configdir")
            .arg(dir.join("empty-conf.d"))
            .arg("-logfile")
            .arg(dir.join("Xorg.log"))
            .args(["-noreset", "-nolisten", "tcp", "-ac"])
            .env_remove("LD_PRELOAD")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::fs::create_dir_all(dir.join("empty-conf.d"))?;
        die_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .context("spawning Xorg (is xserver-xorg-core installed?)")?;
        let mut me = Self {
            display,
            child,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if connect(&me.display).is_ok() {
                return Ok(me);
            }
            if let Ok(Some(st)) = me.child.try_wait() {
                let log = std::fs::read_to_string(me.dir.join("Xorg.log")).unwrap_or_default();
                bail!("Xorg exited ({st}) before accepting connections. Log:\n{log}");
            }
            if Instant::now() > deadline {
                kill_and_reap(&mut me.child);
                bail!("Xorg did not accept connections within 20 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log text.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("Xorg.log")).unwrap_or_default()
    }
}

impl Drop for Xorg {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// A display number with neither a lock file nor a socket.
fn free_display_number() -> Result<u32> {
    for n in 100..1000u32 {
        let lock = PathBuf::from(format!("/tmp/.X{n}-lock"));
        let sock = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
        if !lock.exists() && !sock.exists() {
            // Claim it against races with parallel tests in this process.
            static TAKEN: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());
            let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
            if taken.contains(&n) {
                continue;
            }
            taken.push(n);
            return Ok(n);
        }
    }
    bail!("no free display number")
}

/// Connect to a display with x11rb.
pub fn connect(display: &str) -> Result<RustConnection> {
    let (conn, _) = RustConnection::connect(Some(display))
        .with_context(|| format!("connecting to X display {display}"))?;
    Ok(conn)
}

/// A real X application started by a test, killed and reaped on drop.
pub struct App {
    /// The process.
    pub child: Child,
    /// Its PID.
    pub pid: u32,
    /// Its first mapped top-level window.
    pub window: u32,
    /// Display it was started on.
    pub display: String,
}

impl App {
    /// Start `argv` on `display` and wait (up to 20 s) for a mapped top-level window owned by it.
    pub fn spawn(display: &str, argv: &[&str]) -> Result<Self> {
        Self::spawn_env(display, argv, &[])
    }

    /// Like [`App::spawn`] with extra environment variables.
    pub fn spawn_env(display: &str, argv: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        let (prog, args) = argv.split_first().context("empty argv")?;
        let mut cmd = Command::new(prog);
        cmd.args(args)
            .env("DISPLAY", display)
            // A terminal's shell is a plain /bin/sh: the user's interactive rc files (pyenv's
            // rehash takes a lock and waits up to a minute when a killed shell left it behind)
            // have no place in a test.
            .env("SHELL", "/bin/sh")
            .env_remove("LD_PRELOAD")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().with_context(|| format!("spawning {prog}"))?;
        let pid = child.id();
        match wait_for_window(display, pid, Duration::from_secs(20)) {
            Ok(window) => Ok(Self {
                child,
                pid,
                window,
                display: display.to_string(),
            }),
            Err(e) => {
                kill_and_reap(&mut child);
                Err(e.context(format!("{prog} never mapped a window")))
            }
        }
    }

    /// Whether the process is still alive.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for App {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// A background X client without a window to wait for (a window manager, a load generator),
/// killed and reaped on drop.
pub struct Background {
    /// The process.
    pub child: Child,
}

impl Drop for Background {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// Start `argv` on `display` in the background.
pub fn spawn_background(display: &str, argv: &[&str]) -> Result<Background> {
    let (prog, args) = argv.split_first().context("empty argv")?;
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .env("DISPLAY", display)
        .env("SHELL", "/bin/sh")
        .env_remove("LD_PRELOAD")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    die_with_parent(&mut cmd);
    let child = cmd.spawn().with_context(|| format!("spawning {prog}"))?;
    Ok(Background { child })
}

/// Start a window manager (twm) on `display` and wait until it manages the root window.
pub fn spawn_wm(display: &str) -> Result<Background> {
    use x11rb::protocol::xproto::EventMask;
    let wm = spawn_background(display, &["twm"])?;
    let conn = connect(display)?;
    let root = conn.setup().roots[0].root;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = conn.get_window_attributes(root)?.reply()?;
        if a.all_event_masks.contains(EventMask::SUBSTRUCTURE_REDIRECT) {
            return Ok(wm);
        }
        if Instant::now() > deadline {
            bail!("twm did not take SubstructureRedirect on {display}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// PID of the client owning `window`, via X-Resource `QueryClientIds`.
pub fn window_pid(conn: &impl Connection, window: u32) -> Result<Option<u32>> {
    let reply = res::query_client_ids(
        conn,
        &[ClientIdSpec {
            client: window,
            mask: ClientIdMask::LOCAL_CLIENT_PID,
        }],
    )?
    .reply()?;
    Ok(reply
        .ids
        .iter()
        .find(|id| id.spec.mask.contains(ClientIdMask::LOCAL_CLIENT_PID))
        .and_then(|id| id.value.first().copied()))
}

/// Mapped top-level windows (children of the root) owned by `pid`.
pub fn windows_of_pid(display: &str, pid: u32) -> Result<Vec<u32>> {
    let conn = connect(display)?;
    let root = conn.setup().roots[0].root;
    let tree = conn.query_tree(root)?.reply()?;
    let mut out = Vec::new();
    for w in tree.children {
        let attrs = conn.get_window_attributes(w)?.reply()?;
        if attrs.map_state != MapState::VIEWABLE {
            continue;
        }
        if window_pid(&conn, w)? == Some(pid) {
            out.push(w);
        }
    }
    Ok(out)
}

/// All mapped top-level windows on a display.
pub fn mapped_toplevels(display: &str) -> Result<Vec<u32>> {
    let conn = connect(display)?;
    let root = conn.setup().roots[0].root;
    let tree = conn.query_tree(root)?.reply()?;
    let mut out = Vec::new();
    for w in tree.children {
        if conn.get_window_attributes(w)?.reply()?.map_state == MapState::VIEWABLE {
            out.push(w);
        }
    }
    Ok(out)
}

/// Wait until `pid` has a mapped top-level window on `display`; return it.
pub fn wait_for_window(display: &str, pid: u32, timeout: Duration) -> Result<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(ws) = windows_of_pid(display, pid) {
            if let Some(w) = ws.first() {
                return Ok(*w);
            }
        }
        if Instant::now() > deadline {
            bail!("no mapped window of pid {pid} on {display} within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Run `f` on a worker thread; fail the test if it does not finish within `secs`.
/// Processes started through this harness die with the worker thread (PDEATHSIG) or on drop.
pub fn with_timeout<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let r = f();
        let _ = tx.send(());
        r
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => match handle.join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!(
                "test timed out after {secs} s\n{}",
                what_everyone_waits_for()
            )
        }
    }
}

/// For a test that timed out: this process's threads and every process it started
/// (descendants), each with its state, the kernel function it sleeps in and, for threads,
/// the system call it is in (`/proc/*/syscall`: number and first argument, e.g. a blocked
/// `read` on an X socket), so a hang says where it hangs.
fn what_everyone_waits_for() -> String {
    let me = std::process::id();
    let read = |p: String| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    // Field `n` after the command name of a /proc …/stat line (0: state, 1: parent PID).
    let field = |stat: &str, n: usize| -> Option<String> {
        stat.rsplit(')')
            .next()?
            .split_whitespace()
            .nth(n)
            .map(str::to_string)
    };
    let mut out = String::from("threads of the test process (tid state wchan syscall):\n");
    if let Ok(rd) = std::fs::read_dir("/proc/self/task") {
        for t in rd.flatten() {
            let tid = t.file_name().to_string_lossy().into_owned();
            let stat = read(format!("/proc/self/task/{tid}/stat"));
            out += &format!(
                "  {tid} {} {} [{}]\n",
                field(&stat, 0).unwrap_or_else(|| "?".into()),
                read(format!("/proc/self/task/{tid}/wchan")),
                read(format!("/proc/self/task/{tid}/syscall"))
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
    }
    // Descendants: walk the parent links of every process (PID → parent, state).
    let mut procs = std::collections::HashMap::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = read(format!("/proc/{pid}/stat"));
            if let Some(ppid) = field(&stat, 1).and_then(|x| x.parse::<u32>().ok()) {
                procs.insert(pid, (ppid, field(&stat, 0).unwrap_or_else(|| "?".into())));
            }
        }
    }
    out += "processes it started (pid state wchan command):\n";
    let mut pids: Vec<u32> = procs.keys().copied().collect();
    pids.sort();
    for pid in pids {
        let mut p = pid;
        let mut hops = 0;
        while p != me && p > 1 && hops < 64 {
            p = procs.get(&p).map_or(0, |x| x.0);
            hops += 1;
        }
        if p != me || pid == me {
            continue;
        }
        let cmd = read(format!("/proc/{pid}/cmdline")).replace('\0', " ");
        out += &format!(
            "  {pid} {} {} {}\n",
            procs[&pid].1,
            read(format!("/proc/{pid}/wchan")),
            cmd.chars().take(120).collect::<String>()
        );
    }
    out
}

/// Run the `guievict` binary with `args` and `--json`; its stdout parsed as JSON, or an error
/// carrying its stderr.
pub fn guievict_json(args: &[&str]) -> Result<serde_json::Value> {
    let out = Command::new(guievict_bin())
        .args(args)
        .arg("--json")
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "guievict {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// MIT-SHM requests guimux has converted so far for the process (`guievict status`), summed
/// over its connections.
pub fn shm_converted(pid: u32) -> Result<u64> {
    let st = guievict_json(&["status", "--pid", &pid.to_string()])?;
    Ok(st["connections"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["shm_converted"].as_u64()).sum())
        .unwrap_or(0))
}

/// Poll `cond` every 20 ms until it holds; an error naming `what` after `timeout`. How tests
/// wait: on a condition, never on a fixed time.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what}: not within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The serial of the cursor the pointer shows on `display` (XFIXES): it changes when a client
/// grabs the pointer with a cursor of its own — how a test sees that `guievict --pick` is ready
/// for the click without grabbing anything itself.
pub fn cursor_serial(display: &str) -> Result<u32> {
    use x11rb::protocol::xfixes::ConnectionExt as _;
    let conn = connect(display)?;
    conn.xfixes_query_version(4, 0)?.reply()?;
    let image = conn.xfixes_get_cursor_image()?.reply()?;
    Ok(image.cursor_serial)
}

/// Wait (up to `timeout`) until the file at `path` contains `want` (surrounding whitespace
/// ignored) — how tests see that text typed into an app's shell arrived.
pub fn wait_for_file(path: &Path, want: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if std::fs::read_to_string(path).is_ok_and(|s| s.trim() == want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} never contained {want:?} within {timeout:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Print a visible skip line (counted by scripts/test.sh) — for environments that truly cannot
/// run a test. Never use this to hide a failure.
pub fn skip(reason: &str) {
    eprintln!("SKIP: {reason}");
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(artifacts_dir().join("skipped.txt"))
        .and_then(|mut f| {
            use std::io::Write;
            writeln!(f, "{reason}")
        });
}

/// Count this process's children that are still running (for leak checks).
pub fn child_count() -> usize {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    let after = s.rsplit_once(')')?.1.to_string();
                    let mut it = after.split_whitespace();
                    let state = it.next()?.to_string();
                    let ppid: u32 = it.next()?.parse().ok()?;
                    Some(ppid == me && state != "Z")
                })
                .unwrap_or(false)
        })
        .count()
}
