//! Hijacking a multi-threaded client in the middle of its traffic. A small C program
//! (`hijack_stress_client.c`, compiled here with `cc … -lxcb`) runs three threads on one xcb
//! connection sending void, round-trip and checked requests and verifying every reply; it is
//! hijacked at random moments, in several processes. Every process must finish with all replies
//! consistent. Paced clients and clients writing nonstop alike must get hijacked, each within a
//! second (a thread waiting for a reply on a condition variable is at a safe point: see
//! `detach-tool/src/inject/safepoint.rs`).

mod hijack_common;

use anyhow::{bail, ensure, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use xvfb_harness::{guievict_bin, hijack_path, skip, with_timeout, Xvfb};

/// Small deterministic-per-run pseudo random numbers (no external crate).
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

/// Run one client for `secs`, hijack it (twice) after a random delay; returns whether the first
/// hijack succeeded, and how long it took. Fails if the client reports any inconsistency.
fn one(
    display: &str,
    client: &PathBuf,
    secs: &str,
    pause_us: &str,
    delay_ms: u64,
) -> Result<(bool, Duration)> {
    let mut child = Command::new(client)
        .args([secs, pause_us])
        .env("DISPLAY", display)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut out = BufReader::new(child.stdout.take().context("stdout")?);
    let mut line = String::new();
    out.read_line(&mut line)?;
    ensure!(line.trim() == "READY", "client said {line:?}");
    std::thread::sleep(Duration::from_millis(delay_ms));
    let pid = child.id().to_string();
    let t0 = std::time::Instant::now();
    let h1 = Command::new(guievict_bin())
        .args(["hijack", &pid])
        .env("GUIEVICT_HIJACK", hijack_path())
        .output()?;
    let took = t0.elapsed();
    let first = h1.status.success();
    let msg = String::from_utf8_lossy(&h1.stderr).into_owned();
    if !first {
        ensure!(
            msg.contains("no safe point"),
            "hijack failed unexpectedly: {msg}"
        );
    } else {
        let h2 = Command::new(guievict_bin())
            .args(["hijack", &pid, "--json"])
            .env("GUIEVICT_HIJACK", hijack_path())
            .output()?;
        ensure!(h2.status.success(), "second hijack failed: {h2:?}");
        let v: serde_json::Value = serde_json::from_slice(&h2.stdout)?;
        ensure!(v["outcome"]["already_loaded"] == true, "{v}");
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest)?;
    let status = child.wait()?;
    if !status.success() || !rest.starts_with("OK") {
        bail!("client broken after hijack (first hijack ok: {first}, {msg}): {rest}");
    }
    eprintln!(
        "client pause {pause_us}µs delay {delay_ms}ms: hijacked={first} in {took:?} {}",
        rest.trim()
    );
    Ok((first, took))
}

#[test]
fn hijack_busy_threaded_xcb_clients() {
    assert!(
        hijack_path().exists() && guievict_bin().exists(),
        "build guievict and guievict-hijack first"
    );
    let Some(client) = hijack_common::build_stress_client("hijack_stress_client") else {
        skip("hijack_busy_threaded_xcb_clients: cannot compile the C client (needs cc and libxcb1-dev)");
        return;
    };
    with_timeout(240, move || -> Result<()> {
        let x = Xvfb::start_plain()?;
        let mut rng = Lcg(u64::from(std::process::id()) ^ 0x9e37_79b9_7f4a_7c15);
        let mut hijacked = 0;
        for _ in 0..5 {
            let delay = 20 + rng.next(400);
            if one(&x.display, &client, "2", "200", delay)?.0 {
                hijacked += 1;
            }
        }
        assert_eq!(hijacked, 5, "paced clients must all be hijacked");
        // Nonstop writers: every one hijacked, each within a second.
        let mut slow = Vec::new();
        hijacked = 0;
        for _ in 0..10 {
            let delay = 20 + rng.next(400);
            let (ok, took) = one(&x.display, &client, "3", "0", delay)?;
            hijacked += usize::from(ok);
            if took > Duration::from_secs(1) {
                slow.push(took);
            }
        }
        assert_eq!(hijacked, 10, "busy clients must all be hijacked");
        assert!(slow.is_empty(), "hijacks slower than 1 s: {slow:?}");
        Ok(())
    })
    .unwrap();
}
