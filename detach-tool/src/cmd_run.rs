//! `guievict run`: premeditated mode. The command line flows in; a private display socket is
//! opened, the program is started with `DISPLAY` pointing at it, and every X connection it
//! makes is relayed through guimux to the real server from its very first byte. The process is
//! then controllable like a hijacked one (control socket keyed by the program's PID), and this
//! works for statically linked programs too, since nothing is injected.

use anyhow::{bail, Context, Result};
use clap::Args;
use guievict_hijack::conn::Conn;
use guievict_hijack::control::{self, Request, Response, Status};
use guievict_hijack::controller::Controller;
use guievict_hijack::muxloop;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

/// Arguments of `guievict run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The real X display (default: $DISPLAY).
    #[arg(long)]
    pub display: Option<String>,
    /// Program and arguments.
    #[arg(last = true, required = true)]
    pub cmd: Vec<String>,
}

/// A private display socket plus its lock file, removed on drop.
struct PrivateDisplay {
    number: u32,
    socket: PathBuf,
    lock: PathBuf,
    listener: UnixListener,
}

impl Drop for PrivateDisplay {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_file(&self.lock);
    }
}

fn private_display() -> Result<PrivateDisplay> {
    std::fs::create_dir_all("/tmp/.X11-unix").ok();
    for n in 300..1000u32 {
        let lock = PathBuf::from(format!("/tmp/.X{n}-lock"));
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
        if socket.exists() {
            // A private socket of an earlier `guievict run` that was killed: reclaim it when
            // its lock names a dead process.
            let stale = std::fs::read_to_string(&lock)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
                .is_some_and(|p| {
                    p > 0
                        && nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None)
                            == Err(nix::errno::Errno::ESRCH)
                        && std::fs::read_link(format!("/proc/{p}/exe")).is_err()
                });
            if !(stale && n >= 300) {
                continue;
            }
            let _ = std::fs::remove_file(&socket);
            let _ = std::fs::remove_file(&lock);
        }
        // The lock file claims the number the way X servers do (O_EXCL).
        let Ok(mut f) = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        else {
            continue;
        };
        use std::io::Write;
        let _ = writeln!(f, "{:>10}", std::process::id());
        match UnixListener::bind(&socket) {
            Ok(listener) => {
                return Ok(PrivateDisplay {
                    number: n,
                    socket,
                    lock,
                    listener,
                })
            }
            Err(_) => {
                let _ = std::fs::remove_file(&lock);
            }
        }
    }
    bail!("no free display number between :300 and :999 for the private socket")
}

/// Connect a plain socket to the real display (the app performs its own handshake).
fn connect_plain(display: &str) -> Result<OwnedFd> {
    Ok(guievict_hijack::session::connect_socket(display)?.0)
}

/// Run the command under guimux; returns its exit code.
pub fn run(args: RunArgs) -> Result<i32> {
    let real = match args.display {
        Some(d) => d,
        None => std::env::var("DISPLAY").context("no --display and no $DISPLAY")?,
    };
    // Fail early if the real display is unreachable.
    drop(connect_plain(&real)?);
    let pd = private_display()?;
    let (prog, rest) = args.cmd.split_first().context("empty command")?;
    let mut child = Command::new(prog)
        .args(rest)
        .env("DISPLAY", format!(":{}", pd.number))
        .spawn()
        .with_context(|| format!("starting {prog}"))?;
    let pid = child.id();
    tracing::info!(pid, private = pd.number, real = %real, "running under guimux");
    let controller = Arc::new(Controller::default());

    // Control socket, keyed by the program's PID.
    let uid = nix::unistd::geteuid().as_raw();
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    let sock_path = control::control_dir(xdg.as_deref(), uid).join(format!("{pid}.sock"));
    let listener = control::bind(&sock_path)?;
    // The X server sees guimux's connections as this process's: make the same control socket
    // reachable by this PID too (what `guievict detach <WINDOW>` resolves to).
    let alias = sock_path.with_file_name(format!("{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&alias);
    std::os::unix::fs::symlink(&sock_path, &alias)
        .with_context(|| format!("linking {}", alias.display()))?;
    {
        let controller = controller.clone();
        let sock = sock_path.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let c = controller.clone();
                let sock = sock.clone();
                std::thread::spawn(move || {
                    control::serve_one(stream, &|req: &Request| match req {
                        Request::Status => Response::Status(status(pid, &sock, &c)),
                        other => c.handle(other),
                    })
                });
            }
        });
    }

    // Accept the program's X connections.
    {
        let controller = controller.clone();
        let listener = pd.listener.try_clone()?;
        let real = real.clone();
        std::thread::spawn(move || {
            for app in listener.incoming().flatten() {
                let server = match connect_plain(&real) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!("{e:#}");
                        continue;
                    }
                };
                match muxloop::spawn(
                    guimux::Engine::premeditated(),
                    app.into(),
                    Some(server),
                    None,
                ) {
                    Ok((handle, _th)) => controller.add(Conn {
                        app_fd: -1,
                        handle,
                        display: Some(real.clone()),
                        server_setup: None,
                        auth: None,
                        detached: None,
                        replicas: Vec::new(),
                        guard: None,
                        held: false,
                    }),
                    Err(e) => tracing::error!("starting relay: {e}"),
                }
            }
        });
    }
    let status = child.wait()?;
    let _ = std::fs::remove_file(&sock_path);
    let _ = std::fs::remove_file(&alias);
    drop(pd);
    Ok(status.code().unwrap_or(128 + 9))
}

fn status(pid: u32, sock: &std::path::Path, c: &Controller) -> Status {
    Status {
        pid,
        comm: std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|s| s.trim_end().to_string())
            .unwrap_or_default(),
        library_version: env!("CARGO_PKG_VERSION").into(),
        protocol_version: control::PROTOCOL_VERSION,
        socket: sock.to_path_buf(),
        mode: "run".into(),
        connections: c.connections(),
        busy: c.busy(),
        own_fds: Vec::new(),
    }
}
