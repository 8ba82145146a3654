//! Shared by the hijack tests (`hijack_basic.rs`, `hijack_inline.rs`, `hijack_stress.rs`):
//! running the CLI with the library under test and extra environment, showing its output in a
//! failure message, and compiling the three-thread xcb stress client. What flows through: the
//! CLI's output, and `hijack_stress_client.c` into a binary under the target directory.
#![allow(dead_code)]

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::{Command, Output};
use xvfb_harness::{guievict_bin, hijack_path, target_dir};

/// `guievict ARGS` with the hijack library of this build and `env` set.
pub fn guievict(args: &[&str], env: &[(&str, &str)]) -> Result<Output> {
    let mut cmd = Command::new(guievict_bin());
    cmd.args(args).env("GUIEVICT_HIJACK", hijack_path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output()
        .with_context(|| format!("running {}", guievict_bin().display()))
}

/// A command's exit status and output, for a failure message.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Compile `hijack_stress_client.c` (`cc … -lxcb`) into the target directory as `name`.
pub fn build_stress_client(name: &str) -> Option<PathBuf> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/hijack_stress_client.c");
    let out = target_dir().join(name);
    let ok = Command::new("cc")
        .args(["-O2", "-pthread"])
        .arg(&src)
        .args(["-lxcb", "-o"])
        .arg(&out)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok.then_some(out)
}
