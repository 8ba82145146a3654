//! The `guievict` command line. Arguments flow in, get turned into control requests to hijacked
//! processes (or into local actions such as printing library paths), and results flow out as
//! human text on stderr/stdout or as JSON with `--json`.
mod paths;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "guievict", version, about = "Detach, re-attach, move and replicate the GUI of running X11 applications")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Print the absolute path of the GUIEVICT X server extension (for LD_PRELOAD into Xvfb).
    ExtPath,
    /// Print the absolute path of the hijack library that gets injected into applications.
    HijackPath,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GUIEVICT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::ExtPath => println!("{}", paths::find_library(paths::XEXT_ENV, paths::XEXT_FILE)?.display()),
        Cmd::HijackPath => {
            println!("{}", paths::find_library(paths::HIJACK_ENV, paths::HIJACK_FILE)?.display())
        }
    }
    Ok(())
}
