//! `guievict show`: a saved window session (`.gws`) flows in from a file and out as a human
//! summary or, with `--json`, as one JSON object whose top-level arrays (`windows`, `pixmaps`,
//! `gcs`, `fonts`, `cursors`, `colormaps`, …) scripts rely on.

use anyhow::{Context, Result};
use std::path::PathBuf;

/// Arguments of `guievict show`.
#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// Session file written by `guievict snapshot` / `detach --save`.
    pub file: PathBuf,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    pub json: bool,
    /// Also draw the session's windows as a contact sheet into this PNG: the session is
    /// regenerated on a private headless Xvfb (windows, backgrounds, pixmaps; not what the
    /// application draws at run time) and each top-level window is shown with its ID, size and
    /// title.
    #[arg(long, value_name = "OUT.png")]
    pub png: Option<PathBuf>,
}

/// Largest session file `show` reads: far above any real session (they are compressed), far
/// below what would exhaust memory.
pub const MAX_SESSION_FILE: u64 = 1 << 30;

/// Refuse what cannot be a session file before reading it: a device, pipe, directory or socket
/// (`/dev/zero` would be read without end) and files over [`MAX_SESSION_FILE`].
pub fn check_session_file(path: &std::path::Path) -> Result<()> {
    let md = std::fs::metadata(path)
        .with_context(|| format!("cannot read session file {}", path.display()))?;
    let ft = md.file_type();
    if !ft.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let what = if ft.is_dir() {
            "a directory"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else if ft.is_fifo() {
            "a pipe"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        anyhow::bail!(
            "{} is {what}, not a session file: give a .gws file written by `guievict snapshot` \
             or `guievict detach --save`",
            path.display()
        );
    }
    anyhow::ensure!(
        md.len() <= MAX_SESSION_FILE,
        "{} is {} bytes; session files are far smaller (over {} MiB is refused): is it really a \
         .gws file?",
        path.display(),
        md.len(),
        MAX_SESSION_FILE >> 20
    );
    Ok(())
}

/// `guievict show FILE [--json]`.
pub fn show(a: ShowArgs) -> Result<()> {
    check_session_file(&a.file)?;
    let session = winsession::read_file(&a.file)
        .with_context(|| format!("cannot read session file {}", a.file.display()))?;
    if let Some(out) = &a.png {
        let sheet = crate::cmd_sheet::render(&session, out).with_context(|| {
            format!(
                "drawing the windows of {} into {}",
                a.file.display(),
                out.display()
            )
        })?;
        eprintln!(
            "wrote {} ({}×{}): {} window(s) of {}, regenerated on a private Xvfb{}",
            out.display(),
            sheet.width,
            sheet.height,
            sheet.windows,
            a.file.display(),
            if sheet.warnings.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} not recreated exactly: {})",
                    sheet.warnings.len(),
                    sheet.warnings.join("; ")
                )
            }
        );
        if !a.json {
            return Ok(());
        }
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&winsession::to_json(&session))?
        );
    } else {
        print!("{}", winsession::summary(&session));
    }
    Ok(())
}
