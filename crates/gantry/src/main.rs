//! `gantry`: the server (`gantry serve`) and the command-line client that
//! talks to it over the HTTP API.

mod apt_files;
mod args;
mod client;
mod commands;
mod local_runner;
mod output;
mod paths;
mod private_files;
mod serve;
mod sse;
mod step_isolation;
mod trigger_orchestrator;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Usage errors exit 1 like every other error; --help and --version 0.
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("unknown panic");
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: internal error{place}: {message}");
    }));
    let serving = matches!(
        cli.command,
        Command::Serve(_) | Command::Dataplane { command: None }
    );
    if !serving {
        restore_default_sigpipe();
    }
    // What the server, the data plane and `apt --local` write in the data
    // directory is theirs alone.
    if serving || matches!(cli.command, Command::Apt(_)) {
        private_files::set_umask();
    }
    let runtime = if serving {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Rust ignores SIGPIPE, so a CLI whose output is piped into `head` would
/// fail writing to stdout. Like every Unix command, the CLI ends quietly
/// instead. (The server keeps ignoring it: a closed socket is an error to
/// handle there, not a reason to stop.)
fn restore_default_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: called before any thread starts; SIG_DFL installs no handler code.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}
