//! The embedded default demo: two private Xvfb servers with the GUIEVICT extension, a real xterm
//! started on the first, moved to the second with `guievict move`, screenshots before and after.
//! Display names and the output folder flow in from the command line; PNG files and a summary
//! flow out.
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use xvfb_harness::*;

fn main() -> Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "guievict-demo".into()),
    );
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let out = std::fs::canonicalize(&out)?;
    let a = Xvfb::start().context("starting Xvfb A with the GUIEVICT extension")?;
    let b = Xvfb::start().context("starting Xvfb B with the GUIEVICT extension")?;
    eprintln!("[1/5] servers: A = {}, B = {}", a.display, b.display);
    let app = App::spawn(
        &a.display,
        &[
            "xterm",
            "-geometry",
            "80x24+0+0",
            "-title",
            "guievict demo",
            "-e",
            "sh",
        ],
    )?;
    eprintln!("[2/5] xterm pid {} window {:#x} on A", app.pid, app.window);
    std::thread::sleep(Duration::from_millis(500));
    xtest_type(
        &a.display,
        Some(app.window),
        "echo moved by guievict; ls /\n",
    )?;
    std::thread::sleep(Duration::from_millis(500));
    let before = screenshot(&a.display, app.window)?;
    let before_png = out.join("before.png");
    before.save_png(&before_png)?;
    eprintln!("[3/5] screenshot before: {}", before_png.display());

    let bin = guievict_bin();
    let t = Instant::now();
    let status = Command::new(&bin)
        .args([
            "move",
            "--pid",
            &app.pid.to_string(),
            "--display",
            &a.display,
            &b.display,
        ])
        .status()
        .with_context(|| format!("running {}", bin.display()))?;
    if !status.success() {
        eprintln!(
            "[4/5] `guievict move` failed ({status}): moving is NOT IMPLEMENTED YET in this build. \
             Implemented so far: private servers with the extension, the app, screenshots."
        );
        std::fs::write(
            out.join("RESULT.txt"),
            "move not implemented yet; only before.png exists\n",
        )?;
        std::process::exit(2);
    }
    let moved_in = t.elapsed();
    eprintln!("[4/5] moved in {moved_in:?} (hijack included, as the user sees it)");
    let w = wait_for_window(&b.display, app.pid, Duration::from_secs(10))?;
    std::thread::sleep(Duration::from_millis(500));
    let after = screenshot(&b.display, w)?;
    let after_png = out.join("after.png");
    after.save_png(&after_png)?;
    let cmp = compare(&before, &after, "demo");
    let left = windows_of_pid(&a.display, app.pid)?.len();
    let summary = format!(
        "xterm pid {} moved from {} to {} in {:?}\nbefore: {}\nafter:  {}\nequal pixels: {:.2}%\nwindows left on A: {left}\n",
        app.pid,
        a.display,
        b.display,
        moved_in,
        before_png.display(),
        after_png.display(),
        cmp.equal_fraction * 100.0
    );
    std::fs::write(out.join("RESULT.txt"), &summary)?;
    eprintln!("[5/5] {summary}");
    Ok(())
}
