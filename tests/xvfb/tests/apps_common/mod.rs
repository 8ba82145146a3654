//! Shared helpers for the tests of big desktop applications (issue 13: Chromium, GIMP, mpv):
//! start an app in a process group of its own that dies with the test, find its main window
//! by title, take a screenshot once the window stopped changing, wait until a window shows a
//! reference picture again, and run a `guievict` command whose report must list no loss. What
//! flows through: window titles and screenshots read from the test's private Xvfb servers, and
//! the JSON reports of the `guievict` commands.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use x11rb::protocol::xproto::ConnectionExt as _;
use xvfb_harness::*;

/// An application started in a process group of its own; the group is killed on drop.
pub struct AppGroup {
    child: Child,
}

impl AppGroup {
    /// Start `cmd` (stdin/stdout null, stderr to `log`) as the leader of a new session whose
    /// leader dies with the test thread.
    pub fn spawn(mut cmd: Command, log: &std::path::Path) -> AppGroup {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(log).expect("log file")));
        // SAFETY: setsid and prctl between fork and exec (async-signal-safe): the app and its
        // helper processes form one group the drop can kill, and the leader dies with the test.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::setsid();
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let what = format!("{:?}", cmd.get_program());
        AppGroup {
            child: cmd
                .spawn()
                .unwrap_or_else(|e| panic!("spawning {what}: {e}")),
        }
    }

    /// Whether the group leader is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for AppGroup {
    fn drop(&mut self) {
        // SAFETY: signals the process group this helper created (setsid above).
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `prog --version` runs (the app is installed).
pub fn installed(prog: &str) -> bool {
    Command::new(prog)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The WM_NAME of `w` (empty when unreadable).
pub fn title(display: &str, w: u32) -> String {
    let Ok(c) = connect(display) else {
        return String::new();
    };
    // _NET_WM_NAME (UTF-8) first: in the C locale GTK cannot put a title with non-Latin-1
    // characters ("start — Mozilla Firefox") into WM_NAME and writes only "Mozilla Firefox".
    let net_wm_name = c
        .intern_atom(false, b"_NET_WM_NAME")
        .ok()
        .and_then(|r| r.reply().ok())
        .map(|r| r.atom);
    for prop in net_wm_name
        .into_iter()
        .chain([u32::from(x11rb::protocol::xproto::AtomEnum::WM_NAME)])
    {
        let r = c
            .get_property(false, w, prop, 0u32, 0, 1024)
            .map(|c| c.reply());
        if let Ok(Ok(r)) = r {
            if !r.value.is_empty() {
                return String::from_utf8_lossy(&r.value).into_owned();
            }
        }
    }
    String::new()
}

/// The app's main window — a mapped top-level whose title contains `want`, wider than 300
/// pixels — and the pid that owns it (`_NET_WM_PID`).
pub fn main_window(display: &str, want: &str, secs: u64) -> (u32, u32) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let (Ok(ws), Ok(c)) = (mapped_toplevels(display), connect(display)) {
            for w in ws {
                let wide = c
                    .get_geometry(w)
                    .map(|g| g.reply())
                    .is_ok_and(|g| g.is_ok_and(|g| g.width > 300));
                if wide && title(display, w).contains(want) {
                    if let Ok(Some(pid)) = window_pid(&c, w) {
                        return (w, pid);
                    }
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no window titled {want:?} on {display} within {secs} s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A screenshot once the window stopped changing — the same picture for `quiet` — or the last
/// one after `secs` (an app may animate something; the comparisons tolerate a little).
pub fn settled(display: &str, w: u32, quiet: Duration, secs: u64) -> Image {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = screenshot(display, w).expect("screenshot");
    let mut since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = screenshot(display, w).expect("screenshot");
        let same = now.width == last.width && now.height == last.height && now.rgb == last.rgb;
        if !same {
            since = Instant::now();
        }
        if (same && since.elapsed() >= quiet) || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// Wait (up to 20 s) until the window shows `reference` again: ≥ 98 % of all pixels and
/// ≥ 90 % of the ink (non-background) pixels equal, so that a blank window cannot pass.
pub fn wait_same(display: &str, w: u32, reference: &Image, tag: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = screenshot(display, w).expect("screenshot");
        let c = compare(reference, &now, tag);
        if c.equal_fraction >= 0.98 && c.ink_equal_fraction >= 0.90 {
            eprintln!(
                "{tag}: {:.2}% of pixels equal ({:.2}% of ink)",
                c.equal_fraction * 100.0,
                c.ink_equal_fraction * 100.0
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{tag}: the window does not show what it showed before the move: \
             {:.2}% of pixels equal, {:.2}% of ink (artifacts: {:?})",
            c.equal_fraction * 100.0,
            c.ink_equal_fraction * 100.0,
            c.artifacts
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Wait (up to 20 s) until at least `fraction` of the window's pixels differ from `before`
/// (the app repainted); returns the fraction that differs.
pub fn wait_changed(display: &str, w: u32, before: &Image, fraction: f64, tag: &str) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = screenshot(display, w).expect("screenshot");
        let c = compare(before, &now, tag);
        let changed = 1.0 - c.equal_fraction;
        if changed >= fraction {
            return changed;
        }
        assert!(
            Instant::now() < deadline,
            "{tag}: the window did not repaint ({:.2}% of pixels changed, want ≥ {:.2}%)",
            changed * 100.0,
            fraction * 100.0
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Run `guievict ARGS --json`; it must succeed and report no loss on any connection of any
/// process. Returns the report, the number of processes it carried and its wall time in ms.
pub fn op(args: &[&str], what: &str) -> (serde_json::Value, usize, f64) {
    let t = Instant::now();
    let r = guievict_json(args).unwrap_or_else(|e| panic!("{what}: {e:#}"));
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    let procs: Vec<&serde_json::Value> = match r["report"]["processes"].as_array() {
        Some(ps) => ps.iter().map(|p| &p["report"]).collect(),
        None => vec![&r["report"]],
    };
    let n = procs.len();
    for p in &procs {
        for c in p["connections"].as_array().into_iter().flatten() {
            let lost = c["lost"].as_array().map_or(0, |l| l.len());
            assert_eq!(lost, 0, "{what}: something was lost: {c}");
        }
    }
    eprintln!("timing: {what}: {ms:.1} ms wall ({n} process(es))");
    (r, n, ms)
}
