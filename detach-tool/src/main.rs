//! The `guievict` command line. Arguments flow in, get turned into control requests to hijacked
//! processes (or into local actions such as printing library paths), and results flow out as
//! human text on stderr/stdout or as JSON with `--json`.

mod cmd_checkpoint;
mod cmd_clients;
mod cmd_desktop;
mod cmd_doctor;
mod cmd_generate;
mod cmd_guard;
mod cmd_hijack;
mod cmd_mobility;
mod cmd_protect;
mod cmd_run;
mod cmd_session;
mod cmd_sheet;
mod group;
mod groupop;
mod inject;
mod paths;
mod pick;
mod private;
mod xauth;
mod xconn;

use clap::{Parser, Subcommand};
use cmd_mobility::EITHER_ORDER;

#[derive(Parser, Debug)]
#[command(
    name = "guievict",
    version,
    about = "Detach, re-attach, move and replicate the GUI of running X11 applications"
)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Print the absolute path of the GUIEVICT X server extension (for LD_PRELOAD into Xvfb).
    ExtPath,
    /// Print the absolute path of the hijack library that gets injected into applications.
    HijackPath,
    /// Inject the hijack library into a running X application (idempotent).
    Hijack(cmd_hijack::HijackArgs),
    /// State of one hijacked process (or all).
    Status(cmd_hijack::StatusArgs),
    /// Hijacked processes of this user; with --display D, every X client of D (PID, command,
    /// windows, whether hijacked).
    List(cmd_hijack::ListArgs),
    /// Describe a window-session file.
    Show(cmd_session::ShowArgs),
    /// Start a program with its X traffic going through guimux from its first byte.
    Run(cmd_run::RunArgs),
    /// Take an application's GUI off its display; the process keeps running.
    Detach(cmd_mobility::DetachArgs),
    /// Put a detached GUI on a display.
    #[command(after_help = EITHER_ORDER)]
    Attach(cmd_mobility::AttachArgs),
    /// Detach and attach to another display in one step.
    #[command(after_help = EITHER_ORDER)]
    Move(cmd_mobility::MoveArgs),
    /// Capture an application's window session to a file without detaching it.
    Snapshot(cmd_mobility::SnapshotArgs),
    /// Keep a hidden replica of the GUI on guievict's private headless server, so that the app
    /// outlives its X server (it is then detached, held there; attach brings it back).
    Guard(cmd_guard::GuardArgs),
    /// Show the same live GUI on one more display.
    #[command(after_help = EITHER_ORDER)]
    Replicate(cmd_mobility::ReplicateArgs),
    /// Stop showing the GUI on a replica display.
    #[command(after_help = EITHER_ORDER)]
    Unreplicate(cmd_mobility::UnreplicateArgs),
    /// Change the input policy of a replica display.
    #[command(after_help = EITHER_ORDER)]
    Policy(cmd_mobility::PolicyArgs),
    /// Detach the GUI, then checkpoint the process tree with CRIU into a directory.
    Checkpoint(cmd_checkpoint::CheckpointArgs),
    /// Restore a checkpointed process with CRIU and attach its GUI to a display.
    Restore(cmd_checkpoint::RestoreArgs),
    /// Keep every X client of a display that you own hijacked (also those that connect later):
    /// a small background watcher; `--status` shows what is protected, `--stop` ends it.
    Protect(cmd_protect::ProtectArgs),
    /// Check this machine and a display for what guievict needs; each problem with its fix.
    Doctor(cmd_doctor::DoctorArgs),
    /// Write man pages or shell completions (used to build the package).
    #[command(hide = true)]
    Generate(cmd_generate::GenerateArgs),
    /// Test hook: provoke a failure in a process started with GUIEVICT_TEST_FAULTS=1.
    #[command(hide = true)]
    DebugFault(cmd_hijack::FaultArgs),
}

/// Make sure `pid` runs the hijack library (inject it if needed).
pub fn ensure_hijacked(pid: u32) -> anyhow::Result<()> {
    cmd_hijack::ensure_hijacked(pid as i32, None).map(|_| ())
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GUIEVICT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::ExtPath => paths::find_library(paths::XEXT_ENV, paths::XEXT_FILE)
            .map(|p| println!("{}", p.display())),
        Cmd::HijackPath => paths::find_library(paths::HIJACK_ENV, paths::HIJACK_FILE)
            .map(|p| println!("{}", p.display())),
        Cmd::Hijack(a) => cmd_hijack::run_hijack(&a),
        Cmd::Status(a) => cmd_hijack::run_status(&a),
        Cmd::List(a) => cmd_hijack::run_list(&a),
        Cmd::Show(a) => cmd_session::show(a),
        Cmd::Run(a) => match cmd_run::run(a) {
            Ok(code) => std::process::exit(code),
            Err(e) => Err(e),
        },
        Cmd::Detach(a) => cmd_mobility::detach(a),
        Cmd::Attach(a) => cmd_mobility::attach(a),
        Cmd::Move(a) => cmd_mobility::r#move(a),
        Cmd::Snapshot(a) => cmd_mobility::snapshot(a),
        Cmd::Guard(a) => cmd_guard::guard(a),
        Cmd::Replicate(a) => cmd_mobility::replicate(a),
        Cmd::Unreplicate(a) => cmd_mobility::unreplicate(a),
        Cmd::Policy(a) => cmd_mobility::policy(a),
        Cmd::Checkpoint(a) => cmd_checkpoint::checkpoint(a),
        Cmd::Restore(a) => cmd_checkpoint::restore(a),
        Cmd::DebugFault(a) => cmd_hijack::run_fault(&a),
        Cmd::Doctor(a) => match cmd_doctor::doctor(&a) {
            Ok(code) => std::process::exit(code),
            Err(e) => Err(e),
        },
        Cmd::Generate(a) => cmd_generate::run(&a),
        Cmd::Protect(a) => cmd_protect::run(&a),
    };
    if let Err(e) = r {
        eprintln!("guievict: error: {e:#}");
        let code = if e.downcast_ref::<groupop::NotExact>().is_some() {
            groupop::NotExact::EXIT_CODE
        } else {
            1
        };
        std::process::exit(code);
    }
}
