//! `gantry dataplane stop`: a data plane stopped gracefully, either the one
//! of a data directory named with `--data-dir` (no server involved: it may
//! be down) or the one of the server at `GANTRY_URL`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use gantry_dataplane::{self as dataplane, Stopped};
use gantry_wire::DataplaneStopped;
use serde_json::json;

use crate::client::Client;

#[derive(Debug, Subcommand)]
pub enum DataplaneCommand {
    /// Stop the data plane gracefully: its listeners close, requests in
    /// flight finish, instances get SIGTERM (SIGKILL after their grace
    /// period). Server groups are kept. A data plane stopped this way is
    /// not started again by the server's watch (which restarts one that
    /// died): only when the server next needs it. With `--data-dir`, the
    /// data plane of that directory (the server may be down); without it,
    /// the data plane of the server at `--url`/`GANTRY_URL` (an admin token).
    Stop,
}

pub async fn run_local(data_dir: &Path, command: DataplaneCommand) -> anyhow::Result<ExitCode> {
    let DataplaneCommand::Stop = command;
    match dataplane::stop(data_dir).await? {
        Stopped::Stopped => println!("data plane of {} stopped", data_dir.display()),
        Stopped::NotRunning => println!("no data plane is running for {}", data_dir.display()),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_remote(
    client: &Client,
    url: &str,
    command: DataplaneCommand,
) -> anyhow::Result<ExitCode> {
    let DataplaneCommand::Stop = command;
    let answer: DataplaneStopped = client
        .post_as("/api/v1/dataplane/stop", &json!({}))
        .await
        .with_context(|| {
            format!(
                "cannot ask the server at {url} to stop its data plane; to stop the data plane \
                 of a data directory whose server is down, give --data-dir DIR"
            )
        })?;
    if answer.stopped {
        println!("data plane of the server at {url} stopped");
    } else {
        println!("no data plane is running for the server at {url}");
    }
    Ok(ExitCode::SUCCESS)
}
