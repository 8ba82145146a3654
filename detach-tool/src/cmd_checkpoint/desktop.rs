//! Desktop checkpoints (`checkpoint --all`, and `restore` of what it writes): the display's
//! apps in stacking order flow in from `cmd_desktop`; each is checkpointed by the one-process
//! path of the parent module into a subdirectory, and `desktop.json` (which subdirectories, in
//! which order, from which display) flows out; restore reads it back and restores each app.

use super::{
    checkpoint_pid, ms, restore_dir, CheckpointArgs, Dumped, RestoreArgs, FORMAT, MANIFEST, VERSION,
};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// What `checkpoint --all` writes beside the apps' directories.
pub const DESKTOP_MANIFEST: &str = "desktop.json";

/// `desktop.json`: the apps of a desktop checkpoint, bottom of the stack first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DesktopManifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// The display they were on.
    pub display: String,
    /// Each app's checkpoint subdirectory (relative to the desktop directory).
    pub apps: Vec<String>,
}

/// `checkpoint --all`: every app of the display, one after the other (CRIU dumps one tree at a
/// time), bottom of the stack first; a failure restores the ones already dumped.
pub(super) fn checkpoint_all(a: &CheckpointArgs) -> Result<()> {
    let t0 = Instant::now();
    let target = a.target.settled()?;
    if target.window.is_some() {
        bail!("checkpoint --all takes no WINDOW: it checkpoints every app of --display");
    }
    let desk = crate::cmd_desktop::apps_in_order(target.opts.display.as_deref())?;
    let dir = std::path::absolute(&a.dir)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    anyhow::ensure!(
        !dir.join(DESKTOP_MANIFEST).exists() && !dir.join(MANIFEST).exists(),
        "{} already holds a checkpoint; use an empty directory",
        dir.display()
    );
    let mut done: Vec<(String, Dumped)> = Vec::new();
    for (i, &pid) in desk.order.iter().enumerate() {
        let sub = format!("{i:02}-{pid}");
        eprintln!(
            "guievict: checkpointing {}/{}: pid {pid}",
            i + 1,
            desk.order.len()
        );
        match checkpoint_pid(pid, &dir.join(&sub), &a.criu, a.leave_running) {
            Ok(d) => done.push((sub, d)),
            Err(e) => {
                // All or none: the apps dumped (and so ended) come back onto the display.
                let mut back = Vec::new();
                if !a.leave_running {
                    for (sub, d) in done.iter().rev() {
                        let r = restore_dir(&dir.join(sub), Some(&desk.from), &a.criu);
                        back.push(match r {
                            Ok(r) => format!("{} restored", r.pid),
                            Err(re) => format!("{} NOT restored ({re:#})", d.manifest.pid),
                        });
                    }
                }
                let said = if back.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; the apps already checkpointed were put back: {}",
                        back.join(", ")
                    )
                };
                return Err(e.context(format!("checkpointing process {pid}{said}")));
            }
        }
    }
    let m = DesktopManifest {
        format: FORMAT.into(),
        version: VERSION,
        display: desk.from.clone(),
        apps: done.iter().map(|(s, _)| s.clone()).collect(),
    };
    std::fs::write(
        dir.join(DESKTOP_MANIFEST),
        serde_json::to_string_pretty(&m)?,
    )
    .with_context(|| format!("writing {}", dir.join(DESKTOP_MANIFEST).display()))?;
    let total = ms(t0);
    if a.target.json {
        let apps: Vec<serde_json::Value> = done
            .iter()
            .map(|(s, d)| serde_json::json!({"dir": s, "manifest": d.manifest, "detach": d.detach}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"result": "checkpointed", "display": desk.from, "apps": apps, "total_ms": total})
        );
    } else {
        eprintln!(
            "guievict: {} app(s) of {} checkpointed to {} in {total:.0} ms{}",
            done.len(),
            desk.from,
            dir.display(),
            if a.leave_running {
                "; still running"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// A desktop checkpoint (`checkpoint --all`): every app restored, bottom of the stack first,
/// and attached to `--display` (else detached); the restacking keeps the saved order.
pub(super) fn restore_desktop(a: &RestoreArgs, dir: &Path) -> Result<()> {
    let t0 = Instant::now();
    let text = std::fs::read_to_string(dir.join(DESKTOP_MANIFEST))
        .with_context(|| format!("reading {}", dir.join(DESKTOP_MANIFEST).display()))?;
    let m: DesktopManifest = serde_json::from_str(&text)
        .with_context(|| format!("{} is malformed", dir.join(DESKTOP_MANIFEST).display()))?;
    anyhow::ensure!(
        m.format == FORMAT && m.version == VERSION,
        "{} is of format {} version {}, not {FORMAT} {VERSION}",
        dir.join(DESKTOP_MANIFEST).display(),
        m.format,
        m.version
    );
    let mut restored = Vec::new();
    let mut failed = Vec::new();
    for sub in &m.apps {
        match restore_dir(&dir.join(sub), a.display.as_deref(), &a.criu) {
            Ok(r) => restored.push(r),
            Err(e) => failed.push(format!("{sub}: {e:#}")),
        }
    }
    let total = ms(t0);
    if a.json {
        let apps: Vec<serde_json::Value> = restored
            .iter()
            .map(|r| serde_json::json!({"pid": r.pid, "comm": r.comm, "timings_ms": r.timings}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"result": if failed.is_empty() { "restored" } else { "partly restored" },
                "display": a.display, "apps": apps, "failed": failed, "total_ms": total})
        );
    } else {
        eprintln!(
            "guievict: {} of {} app(s) restored from {} in {total:.0} ms{}",
            restored.len(),
            m.apps.len(),
            dir.display(),
            a.display
                .as_ref()
                .map_or(String::new(), |d| format!(", attached to {d}"))
        );
    }
    if !failed.is_empty() {
        bail!(
            "{} app(s) of the desktop were not restored: {}",
            failed.len(),
            failed.join("; ")
        );
    }
    Ok(())
}
