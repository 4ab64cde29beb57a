//! `gantry dataplane stop`: the data plane of this machine's data directory
//! (no server involved: it may be down), stopped gracefully.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use gantry_dataplane::{self as dataplane, Stopped};

#[derive(Debug, Subcommand)]
pub enum DataplaneCommand {
    /// Stop the data plane gracefully: its listeners close, requests in
    /// flight finish, instances get SIGTERM (SIGKILL after their grace
    /// period). Server groups are kept. A data plane stopped this way is
    /// not started again by the server's watch (which restarts one that
    /// died): only when the server next needs it.
    Stop,
}

pub async fn run(data_dir: &Path, command: DataplaneCommand) -> anyhow::Result<ExitCode> {
    match command {
        DataplaneCommand::Stop => {
            match dataplane::stop(data_dir).await? {
                Stopped::Stopped => println!("data plane of {} stopped", data_dir.display()),
                Stopped::NotRunning => {
                    println!("no data plane is running for {}", data_dir.display())
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
