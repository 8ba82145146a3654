//! `guievict doctor [--display D]`: what guievict needs from this machine and from a display
//! flows in (the Yama ptrace scope, the two shared objects, the runtime directory, CRIU, and on
//! the display the GUIEVICT and X-Resource extensions); one line per check flows out — ok, or
//! what is wrong and the exact command that fixes it — and the exit status says whether all is
//! well (0) or something guievict needs is missing (1). Optional features (CRIU for
//! `checkpoint`) are reported without failing.

use crate::paths;
use anyhow::Result;
use clap::Args;
use serde::Serialize;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::res::ConnectionExt as _;

/// `guievict doctor`.
#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Display to check (default: $DISPLAY; without either the display checks are skipped).
    #[arg(long)]
    pub display: Option<String>,
    /// Print the checks as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// How a check came out.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Fine.
    Ok,
    /// An optional feature is unavailable, or a check could not be made.
    Warn,
    /// Something guievict needs is missing.
    Fail,
}

/// One check: what was looked at, what was found, and the fix.
#[derive(Serialize, Debug)]
pub struct Check {
    /// Short name (`ptrace`, `hijack-library`, `display`, `guievict-extension`, …).
    pub name: &'static str,
    /// The verdict.
    pub verdict: Verdict,
    /// What was found.
    pub found: String,
    /// What to do about it (empty when nothing is needed).
    pub fix: String,
}

fn check(name: &'static str, verdict: Verdict, found: String, fix: String) -> Check {
    Check {
        name,
        verdict,
        found,
        fix,
    }
}

/// The Yama ptrace scope and whether it lets us inject.
fn ptrace_check() -> Check {
    let root = nix::unistd::geteuid().is_root();
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    let persist = "(to keep it across reboots: `echo kernel.yama.ptrace_scope=0 | sudo tee \
                   /etc/sysctl.d/10-guievict-ptrace.conf`)";
    match scope {
        None => check(
            "ptrace",
            Verdict::Ok,
            "no Yama LSM: a user may trace their own processes".into(),
            String::new(),
        ),
        Some(0) => check(
            "ptrace",
            Verdict::Ok,
            "kernel.yama.ptrace_scope = 0: a user may trace their own processes".into(),
            String::new(),
        ),
        Some(1) | Some(2) if root => check(
            "ptrace",
            Verdict::Ok,
            format!(
                "kernel.yama.ptrace_scope = {}; running as root",
                scope.unwrap_or(0)
            ),
            String::new(),
        ),
        Some(1) => check(
            "ptrace",
            Verdict::Fail,
            "kernel.yama.ptrace_scope = 1: only a process's parent may trace it, so guievict \
             cannot hijack a running application"
                .into(),
            format!("`sudo sysctl kernel.yama.ptrace_scope=0`, or run guievict as root {persist}"),
        ),
        Some(2) => check(
            "ptrace",
            Verdict::Fail,
            "kernel.yama.ptrace_scope = 2: only root may trace".into(),
            format!("run guievict as root, or `sudo sysctl kernel.yama.ptrace_scope=0` {persist}"),
        ),
        Some(n) => check(
            "ptrace",
            Verdict::Fail,
            format!("kernel.yama.ptrace_scope = {n}: ptrace is disabled until the next reboot"),
            format!(
                "reboot with kernel.yama.ptrace_scope=0 set in /etc/sysctl.d/ (it cannot be \
                 lowered at run time); meanwhile start applications with `guievict run` \
                 {persist}"
            ),
        ),
    }
}

fn library_check(name: &'static str, env: &str, file: &str) -> Check {
    match paths::find_library(env, file) {
        Ok(p) => check(name, Verdict::Ok, p.display().to_string(), String::new()),
        Err(e) => check(
            name,
            Verdict::Fail,
            format!("{e:#}"),
            "install the guievict package (`scripts/build-deb.sh` builds it; `sudo apt install \
             ./guievict_*.deb`), or `cargo build --release --workspace` and use \
             target/release/guievict"
                .into(),
        ),
    }
}

fn runtime_check() -> Check {
    let uid = nix::unistd::geteuid().as_raw();
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").map(std::path::PathBuf::from);
    let (dir, refused) = guievict_hijack::control::choose_dir(xdg.as_deref(), uid);
    match dir {
        Some(d) if refused.is_empty() => check(
            "runtime-directory",
            Verdict::Ok,
            format!("control sockets and logs go to {}", d.display()),
            String::new(),
        ),
        Some(d) => check(
            "runtime-directory",
            Verdict::Warn,
            format!(
                "{} is used; refused first: {}",
                d.display(),
                refused.join("; ")
            ),
            "remove or chown the refused directory (it must be yours, mode 0700)".into(),
        ),
        None => check(
            "runtime-directory",
            Verdict::Warn,
            format!(
                "no private directory could be made ({}); hijacked applications listen on an \
                 abstract socket instead and write no log file",
                refused.join("; ")
            ),
            format!(
                "set XDG_RUNTIME_DIR to a directory of yours, or remove what squats \
                 /tmp/guievict-{uid}"
            ),
        ),
    }
}

fn criu_check() -> Check {
    let out = std::process::Command::new("criu").arg("--version").output();
    match out {
        Ok(o) if o.status.success() => {
            let v = String::from_utf8_lossy(&o.stdout);
            let v = v.lines().next().unwrap_or("").trim().to_string();
            check(
                "criu",
                Verdict::Ok,
                format!(
                    "{v} (`guievict checkpoint`/`restore`; Debian 12's 3.17 fails on \
                         kernels ≥ 6.x: see docs/checkpoint.md)"
                ),
                "if `criu check` fails here, pass `--criu scripts/criu-wrapper.sh` (CRIU from \
                 Debian 13)"
                    .into(),
            )
        }
        _ => check(
            "criu",
            Verdict::Warn,
            "criu is not installed: only `guievict checkpoint`/`restore` need it".into(),
            "`sudo apt install criu`, or use scripts/criu-wrapper.sh (see docs/checkpoint.md)"
                .into(),
        ),
    }
}

/// How to load the extension into the server of `display`.
fn load_instructions(display: &str) -> String {
    let ext = paths::find_library(paths::XEXT_ENV, paths::XEXT_FILE)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "$(guievict ext-path)".into());
    format!(
        "restart the server of {display} with the extension. Xvfb/Xephyr: `LD_PRELOAD={ext} \
         Xvfb {display} …`. Xorg: the package installs {}/{} (else copy {ext} there), then add \
         `Section \"Module\" Load \"guievict\" EndSection` to /etc/X11/xorg.conf.d/50-guievict.conf \
         and restart Xorg. Without it captures fall back to X-Resource and are not exact",
        paths::XORG_MODULE_DIR,
        paths::XORG_MODULE_FILE
    )
}

fn display_checks(display: Option<&str>) -> Vec<Check> {
    let name = match crate::xconn::display_name(display) {
        Ok(n) => n,
        Err(_) => {
            return vec![check(
                "display",
                Verdict::Warn,
                "no display given and $DISPLAY is not set: display checks skipped".into(),
                "`guievict doctor --display :N`".into(),
            )]
        }
    };
    let conn = match crate::xconn::connect(Some(&name)) {
        Ok((c, _, _)) => c,
        Err(e) => {
            return vec![check(
                "display",
                Verdict::Fail,
                format!("{e:#}"),
                format!("start an X server on {name}, or give another with --display"),
            )]
        }
    };
    let mut out = vec![check(
        "display",
        Verdict::Ok,
        format!(
            "{name}: {} {}.{}, {} screen(s)",
            String::from_utf8_lossy(&conn.setup().vendor),
            conn.setup().release_number / 10_000_000,
            conn.setup().release_number / 100_000 % 100,
            conn.setup().roots.len()
        ),
        String::new(),
    )];
    match conn.extension_information("GUIEVICT") {
        Ok(Some(info)) => out.push(check(
            "guievict-extension",
            Verdict::Ok,
            format!(
                "GUIEVICT is loaded on {name} (major opcode {})",
                info.major_opcode
            ),
            String::new(),
        )),
        Ok(None) => out.push(check(
            "guievict-extension",
            Verdict::Fail,
            format!("{name} has no GUIEVICT extension"),
            load_instructions(&name),
        )),
        Err(e) => out.push(check(
            "guievict-extension",
            Verdict::Fail,
            format!("asking {name} for GUIEVICT failed: {e}"),
            String::new(),
        )),
    }
    let res = conn
        .extension_information(x11rb::protocol::res::X11_EXTENSION_NAME)
        .ok()
        .flatten();
    let version = match res {
        Some(_) => conn
            .res_query_version(1, 2)
            .ok()
            .and_then(|c| c.reply().ok()),
        None => None,
    };
    out.push(match version {
        Some(v) if (v.server_major, v.server_minor) >= (1, 2) => check(
            "x-resource",
            Verdict::Ok,
            format!(
                "X-Resource {}.{}: a window's process is found from its client",
                v.server_major, v.server_minor
            ),
            String::new(),
        ),
        Some(v) => check(
            "x-resource",
            Verdict::Warn,
            format!(
                "X-Resource {}.{} lacks QueryClientIds (1.2): windows are matched to processes \
                 through _NET_WM_PID only",
                v.server_major, v.server_minor
            ),
            "name applications with --pid".into(),
        ),
        None => check(
            "x-resource",
            Verdict::Warn,
            format!("{name} has no X-Resource extension: windows are matched to processes through _NET_WM_PID only, and `guievict list --display` cannot show PIDs"),
            "name applications with --pid; start the server without `-extension X-Resource`"
                .into(),
        ),
    });
    out
}

/// Run `guievict doctor`; exit status 1 when a check failed.
pub fn doctor(a: &DoctorArgs) -> Result<i32> {
    let mut checks = vec![
        ptrace_check(),
        library_check("hijack-library", paths::HIJACK_ENV, paths::HIJACK_FILE),
        library_check("extension-library", paths::XEXT_ENV, paths::XEXT_FILE),
        runtime_check(),
        criu_check(),
    ];
    checks.extend(display_checks(a.display.as_deref()));
    let failed = checks.iter().filter(|c| c.verdict == Verdict::Fail).count();
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "ok": failed == 0,
                "checks": checks,
            }))?
        );
    } else {
        for c in &checks {
            let tag = match c.verdict {
                Verdict::Ok => "ok  ",
                Verdict::Warn => "warn",
                Verdict::Fail => "FAIL",
            };
            println!("[{tag}] {:<19} {}", c.name, c.found);
            if c.verdict != Verdict::Ok && !c.fix.is_empty() {
                println!("       {:<19} fix: {}", "", c.fix);
            }
        }
        if failed == 0 {
            println!("all is well");
        } else {
            println!("{failed} problem(s): see FAIL above");
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
