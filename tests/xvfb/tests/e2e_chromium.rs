//! Issue 13: Chromium (`--no-sandbox --disable-gpu`) is two X clients — the browser and its GPU
//! process, which draws the browser's frames into the browser's windows with MIT-SHM — and
//! `guievict move --pid` must carry both. Before the group hold the move exited 0 and left a
//! blank window on B (the GPU process drew into a window that had left A, lost a ShmPutImage,
//! and the compositor waited forever for its completion). The test loads a local page with a
//! coloured background and a text area, moves A→B→A, then detaches and attaches to B; after
//! each step the window must show what it showed before (≥ 98 % of all pixels equal and ≥ 90 %
//! of the non-background ones, so a blank window cannot pass) and typing with XTEST on the
//! new server must reach the page and repaint it (every keystroke changes the page's
//! background colour and its title).
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use x11rb::protocol::xproto::ConnectionExt as _;
use xvfb_harness::*;

const PAGE: &str = r##"<!doctype html><html><head><title>start</title>
<style>body{margin:0;background:#3060a0;font-family:sans-serif}
h1{color:#ffe040;font-size:48px;margin:20px}
textarea{caret-color:transparent;font-size:40px;margin:20px}</style>
</head><body><h1>guievict moved me</h1>
<textarea id="t" autofocus rows="3" cols="24"></textarea>
<script>
const colours = ["#a03030", "#30a040", "#6030a0", "#a08020"];
const t = document.getElementById("t");
t.focus();
t.addEventListener("input", () => {
  document.title = "typed " + t.value;
  document.body.style.background = colours[t.value.length % colours.length];
});
</script></body></html>"##;

/// Chromium, killed (with its process group) on drop.
struct Chromium {
    child: Child,
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // SAFETY: signals the process group this test created for Chromium (setsid below).
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_chromium(display: &str, dir: &Path) -> Chromium {
    let page = dir.join("page.html");
    std::fs::write(&page, PAGE).expect("page");
    let url = format!("file://{}", page.display());
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--password-store=basic",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-position=0,0",
        "--window-size=900,700",
    ])
    .arg(format!("--user-data-dir={}", dir.join("profile").display()))
    .arg(&url)
    .env("DISPLAY", display)
    .env("HOME", dir)
    .env("XDG_CONFIG_HOME", dir.join("config"))
    .env("XDG_CACHE_HOME", dir.join("cache"))
    .env("SHELL", "/bin/sh")
    .env_remove("LD_PRELOAD")
    .env_remove("WAYLAND_DISPLAY")
    .env_remove("DBUS_SESSION_BUS_ADDRESS")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::from(
        std::fs::File::create(dir.join("chromium.log")).expect("log"),
    ));
    // SAFETY: setsid and prctl between fork and exec (async-signal-safe): Chromium and its
    // helper processes form one group the drop can kill, and the browser dies with the test.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::setsid();
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    Chromium {
        child: cmd.spawn().expect("spawning chromium"),
    }
}

fn title(display: &str, w: u32) -> String {
    let Ok(c) = connect(display) else {
        return String::new();
    };
    let r = c
        .get_property(
            false,
            w,
            x11rb::protocol::xproto::AtomEnum::WM_NAME,
            0u32,
            0,
            1024,
        )
        .map(|c| c.reply());
    match r {
        Ok(Ok(r)) => String::from_utf8_lossy(&r.value).into_owned(),
        _ => String::new(),
    }
}

/// The browser's main window (a mapped top-level whose title contains `want`, wider than 300
/// pixels) and the pid that owns it.
fn browser_window(display: &str, want: &str, secs: u64) -> (u32, u32) {
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
            "no Chromium window titled {want:?} on {display} within {secs} s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A screenshot once the window stopped changing (two in a row equal), or the last one after
/// `secs` (Chromium may animate a button; the comparisons below tolerate that).
fn settled(display: &str, w: u32, secs: u64) -> Image {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = screenshot(display, w).expect("screenshot");
    loop {
        std::thread::sleep(Duration::from_millis(400));
        let now = screenshot(display, w).expect("screenshot");
        let same = now.width == last.width && now.height == last.height && now.rgb == last.rgb;
        if same || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// Wait until the window on `display` shows `reference` again: ≥ 98 % of all pixels and ≥ 90 %
/// of the ink (non-background) pixels equal.
fn wait_same(display: &str, w: u32, reference: &Image, tag: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = screenshot(display, w).expect("screenshot");
        let c = compare(reference, &now, &format!("chromium-{tag}"));
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
            "{tag}: the window does not show the page it showed before the move: \
             {:.2}% of pixels equal, {:.2}% of ink (artifacts: {:?})",
            c.equal_fraction * 100.0,
            c.ink_equal_fraction * 100.0,
            c.artifacts
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn wait_title(display: &str, w: u32, want: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let t = title(display, w);
        if t.contains(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "window title never showed {want:?} (it is {t:?}): input did not reach the page"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Type one character into the text area and check that the page took it (title) and that
/// the window repainted (the background changes colour: most pixels change).
fn type_and_see(display: &str, w: u32, typed: &str, ch: char, tag: &str) {
    let before = screenshot(display, w).expect("screenshot");
    xtest_type(display, Some(w), &ch.to_string()).expect("type");
    wait_title(display, w, &format!("typed {typed}{ch}"), 20);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = screenshot(display, w).expect("screenshot");
        let c = compare(&before, &now, &format!("chromium-typed-{tag}"));
        if c.equal_fraction < 0.6 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{tag}: the page took the key but the window did not repaint \
             ({:.1}% pixels unchanged)",
            c.equal_fraction * 100.0
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Run `guievict ARGS --json`, check that it moved the browser *and* its GPU process (the
/// report lists both), and return its wall time in ms.
fn group_op(args: &[&str], what: &str) -> f64 {
    let t = Instant::now();
    let r = guievict_json(args).unwrap_or_else(|e| panic!("{what}: {e:#}"));
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    let procs = r["report"]["processes"].as_array().map_or(0, |p| p.len());
    assert!(
        procs >= 2,
        "{what}: the browser's GPU process was not carried with it ({procs} process(es)): {r}"
    );
    for p in r["report"]["processes"].as_array().into_iter().flatten() {
        for c in p["report"]["connections"].as_array().into_iter().flatten() {
            let lost = c["lost"].as_array().map_or(0, |l| l.len());
            assert_eq!(lost, 0, "{what}: something was lost: {c}");
        }
    }
    eprintln!("timing: {what}: {ms:.1} ms wall ({procs} processes)");
    ms
}

#[test]
fn chromium_moves_and_stays_interactive() {
    if Command::new("chromium")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        skip("chromium is not installed (scripts/setup-debian.sh installs it)");
        return;
    }
    with_timeout(120, || {
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let dir = artifacts_dir().join(format!("chromium-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let _browser = start_chromium(&a.display, &dir);
        let (w, pid) = browser_window(&a.display, "start", 60);
        let p = pid.to_string();
        // The test sees a repaint at all (on the original server).
        std::thread::sleep(Duration::from_secs(1));
        type_and_see(&a.display, w, "", 'a', "on-a");
        let reference = settled(&a.display, w, 10);

        group_op(&["move", "--pid", &p, &b.display], "move A→B");
        let (wb, _) = browser_window(&b.display, "typed a", 20);
        wait_same(&b.display, wb, &reference, "on-b");
        type_and_see(&b.display, wb, "a", 'b', "on-b");
        let reference = settled(&b.display, wb, 10);

        group_op(&["move", "--pid", &p, &a.display], "move B→A");
        let (wa, _) = browser_window(&a.display, "typed ab", 20);
        wait_same(&a.display, wa, &reference, "back-on-a");

        group_op(&["detach", "--pid", &p], "detach");
        let gone = Instant::now() + Duration::from_secs(10);
        while mapped_toplevels(&a.display).is_ok_and(|ws| ws.contains(&wa)) {
            assert!(Instant::now() < gone, "the window stayed on A after detach");
            std::thread::sleep(Duration::from_millis(100));
        }
        group_op(&["attach", "--pid", &p, &b.display], "attach to B");
        let (wb, _) = browser_window(&b.display, "typed ab", 20);
        wait_same(&b.display, wb, &reference, "attached-on-b");
        type_and_see(&b.display, wb, "ab", 'c', "attached-on-b");
        // The browser is alive and still hijacked.
        guievict_json(&["status", "--pid", &p]).expect("status after the moves");
    });
}
