//! Issue 13: firefox-esr moved A→B→A between servers that share memory with it. Firefox paints
//! its windows by writing into pixmaps made with ShmCreatePixmap and copying them to the
//! window; if those pixmaps became plain copies after a move, the page would never repaint
//! (typing still reaches the page: its title changes). The test types into a page's text area
//! with XTEST (Firefox ignores SendEvent input) on each server and checks that the window
//! repaints: the page changes its background on every keystroke. It used to die on B in about
//! half the runs with BadMatch on a CreateWindow: a colormap made before the move (for one of
//! Xvfb's many identical depth-24 visuals) had been regenerated with the first equal visual,
//! while guimux passed the window's visual ID through unchanged (see
//! `winsession_twin_servers_keep_visual_ids`).
mod apps_common;

use apps_common::{main_window, title};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use xvfb_harness::*;

const PAGE: &str = r##"<!doctype html><html><head><title>start</title>
<style>body{margin:0;background:#ffffff}textarea{caret-color:transparent;font-size:40px}</style>
</head><body><textarea id="t" autofocus rows="4" cols="30"></textarea>
<script>
const colours = ["#ff4040", "#40c040", "#4040ff", "#e0e040"];
const t = document.getElementById("t");
t.focus();
t.addEventListener("input", () => {
  document.title = "typed " + t.value;
  document.body.style.background = colours[t.value.length % colours.length];
});
</script></body></html>"##;

/// Firefox, killed (with its process group) on drop.
struct Firefox {
    child: Child,
}

impl Drop for Firefox {
    fn drop(&mut self) {
        // SAFETY: signals the process group this test created for Firefox (setsid below).
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_firefox(display: &str, dir: &Path) -> Firefox {
    let profile = dir.join("profile");
    std::fs::create_dir_all(&profile).expect("profile dir");
    // No first-run pages, no updates, no telemetry: a quiet browser.
    std::fs::write(
        profile.join("user.js"),
        "user_pref(\"browser.shell.checkDefaultBrowser\", false);\n\
         user_pref(\"browser.startup.homepage_override.mstone\", \"ignore\");\n\
         user_pref(\"datareporting.policy.dataSubmissionEnabled\", false);\n\
         user_pref(\"toolkit.telemetry.reportingpolicy.firstRun\", false);\n\
         user_pref(\"browser.aboutwelcome.enabled\", false);\n\
         user_pref(\"app.update.enabled\", false);\n",
    )
    .expect("user.js");
    let page = dir.join("page.html");
    std::fs::write(&page, PAGE).expect("page");
    let url = format!("file://{}", page.display());
    let mut cmd = Command::new("firefox-esr");
    cmd.args(["--no-remote", "--new-instance", "-profile"])
        .arg(&profile)
        .arg(&url)
        .env("DISPLAY", display)
        .env("HOME", dir)
        .env("MOZ_CRASHREPORTER_DISABLE", "1")
        .env_remove("LD_PRELOAD")
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("firefox.log")).expect("log"),
        ));
    // SAFETY: setsid between fork and exec (async-signal-safe): Firefox and its content
    // processes form one group the drop can kill.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    Firefox {
        child: cmd.spawn().expect("spawning firefox-esr"),
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

/// Type one character and check that the page repainted (its background changes colour).
fn type_and_see(display: &str, w: u32, typed: &str, ch: char, tag: &str) {
    let before = screenshot(display, w).expect("screenshot");
    xtest_type(display, Some(w), &ch.to_string()).expect("type");
    let want = format!("typed {typed}{ch}");
    wait_title(display, w, &want, 30);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = screenshot(display, w).expect("screenshot");
        let c = compare(&before, &now, &format!("firefox-{tag}"));
        if c.equal_fraction < 0.7 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{tag}: the page took the key (title {want:?}) but the window did not repaint \
             ({:.1}% pixels unchanged)",
            c.equal_fraction * 100.0
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn firefox_repaints_after_moves_between_servers_that_share_memory() {
    if Command::new("firefox-esr")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        skip("firefox-esr is not installed (scripts/setup-debian.sh installs it)");
        return;
    }
    with_timeout(120, || {
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let dir = artifacts_dir().join(format!("firefox-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let _ff = start_firefox(&a.display, &dir);
        let (w, pid) = main_window(&a.display, "start", 90);
        // Let the first paint settle.
        std::thread::sleep(Duration::from_secs(2));
        type_and_see(&a.display, w, "", 'a', "on-a");

        let r = guievict_json(&["move", "--pid", &pid.to_string(), &b.display]).expect("A→B");
        eprintln!("move A→B: {r}");
        let (wb, _) = main_window(&b.display, "typed a", 20);
        type_and_see(&b.display, wb, "a", 'b', "on-b");
        type_and_see(&b.display, wb, "ab", 'c', "on-b-2");

        let r = guievict_json(&["move", "--pid", &pid.to_string(), &a.display]).expect("B→A");
        eprintln!("move B→A: {r}");
        let (wa, _) = main_window(&a.display, "typed abc", 20);
        type_and_see(&a.display, wa, "abc", 'd', "back-on-a");
    });
}
