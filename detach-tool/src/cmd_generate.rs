//! `guievict generate man DIR` / `guievict generate completions SHELL [DIR]` (hidden; the
//! package build runs it). The clap definition of the command line flows in; roff man pages (one
//! per visible subcommand, `guievict-move.1`, …) or a shell's completion script flow out, so the
//! manual and the completions always agree with `--help`.

use anyhow::{Context, Result};
use clap::{Args, CommandFactory, Subcommand};
use std::path::PathBuf;

/// `guievict generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand, Debug)]
enum What {
    /// Write guievict.1 and one page per subcommand into DIR.
    Man {
        /// Output directory (created if missing).
        dir: PathBuf,
    },
    /// Write the completion script for SHELL into DIR (default: stdout).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
        /// Output directory (created if missing).
        dir: Option<PathBuf>,
    },
}

/// Run `guievict generate`.
pub fn run(a: &GenerateArgs) -> Result<()> {
    let cmd = crate::Cli::command();
    match &a.what {
        What::Man { dir } => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))?;
        }
        What::Completions { shell, dir } => {
            let mut cmd = cmd;
            match dir {
                Some(dir) => {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                    let p = clap_complete::generate_to(*shell, &mut cmd, "guievict", dir)
                        .with_context(|| format!("writing completions into {}", dir.display()))?;
                    eprintln!("{}", p.display());
                }
                None => {
                    clap_complete::generate(*shell, &mut cmd, "guievict", &mut std::io::stdout())
                }
            }
        }
    }
    Ok(())
}
