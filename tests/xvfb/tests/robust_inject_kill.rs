//! The injector killed with SIGKILL at random moments (1–40 ms into `guievict hijack`, 50 times): the
//! application must live on, and a later `guievict hijack` must complete the job (a hijack
//! left half done included) so that the GUI can then be moved. The remote calls return through
//! self-restoring code (`detach-tool/src/inject/ptrace.rs`, `return_code`), so a vanished
//! injector leaves no thread at a bogus address.

use anyhow::{ensure, Context, Result};
use std::process::{Command, Stdio};
use std::time::Duration;
use xvfb_harness::{
    guievict_bin, guievict_json, hijack_path, wait_for_window, windows_of_pid, with_timeout, App,
    Xvfb,
};

/// Small deterministic pseudo random numbers.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn killing_the_injector_never_harms_the_app() {
    with_timeout(400, || -> Result<()> {
        let a = Xvfb::start()?;
        let b = Xvfb::start()?;
        let mut rng = Lcg(u64::from(std::process::id()) ^ 0x5851_f42d_4c95_7f2d);
        let (mut killed_mid, mut finished) = (0, 0);
        for i in 0..50 {
            let prog = if i % 2 == 0 { "xlogo" } else { "xclock" };
            let mut app = App::spawn(&a.display, &[prog])?;
            let pid = app.pid.to_string();
            let delay = 1 + rng.next(if i % 2 == 0 { 12 } else { 40 });
            let mut inj = Command::new(guievict_bin())
                .args(["hijack", &pid])
                .env("GUIEVICT_HIJACK", hijack_path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            std::thread::sleep(Duration::from_millis(delay));
            let _ = inj.kill();
            let st = inj.wait()?;
            if st.success() {
                finished += 1;
            } else {
                killed_mid += 1;
            }
            std::thread::sleep(Duration::from_millis(150));
            if let Ok(Some(how)) = app.child.try_wait() {
                anyhow::bail!(
                    "{prog} died ({how}) after the injector was killed {delay} ms in (iteration {i})"
                );
            }
            // A later hijack completes (or finds it complete) and the app is under control.
            let v = guievict_json(&["hijack", &pid])
                .with_context(|| format!("hijack after a kill {delay} ms in (iteration {i})"))?;
            let conns = v["status"]["connections"].as_array().context("connections")?;
            ensure!(
                conns.iter().any(|c| c["server_connected"] == true),
                "not interposed after the second hijack (iteration {i}): {v}"
            );
            if i % 4 == 0 {
                guievict_json(&["move", "--pid", &pid, &b.display])
                    .with_context(|| format!("move after a kill (iteration {i})"))?;
                wait_for_window(&b.display, app.pid, Duration::from_secs(10))?;
                ensure!(windows_of_pid(&a.display, app.pid)?.is_empty());
            }
            ensure!(app.alive(), "{prog} died (iteration {i})");
        }
        eprintln!("injector killed mid-way {killed_mid} times, finished first {finished} times");
        ensure!(killed_mid >= 16, "too few kills landed mid-injection: {killed_mid}");
        Ok(())
    })
    .unwrap();
}
