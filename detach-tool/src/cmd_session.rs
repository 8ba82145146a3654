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
}

/// `guievict show FILE [--json]`.
pub fn show(a: ShowArgs) -> Result<()> {
    let session = winsession::read_file(&a.file)
        .with_context(|| format!("cannot read session file {}", a.file.display()))?;
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
