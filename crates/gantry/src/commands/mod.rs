//! One file per group of commands; each talks to the API through
//! [`Client`] and prints plain text (or the API's JSON with `--json`).

pub mod apt;
pub mod artifacts;
pub mod build;
pub mod builders;
pub mod dataplane;
pub mod deb;
pub mod deploy;
mod executions;
mod files;
mod follow;
pub mod git;
pub mod host;
mod pipelines;
mod promote;
pub mod runner;
pub mod secrets;
mod tokens;

use std::process::ExitCode;

use crate::args::{Cli, Command};
use crate::client::Client;
use crate::paths;

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let data_dir = || paths::data_dir(cli.data_dir.clone());
    let client = || Client::new(&cli.url, data_dir());
    match cli.command {
        Command::Serve(args) => crate::serve::serve(args, data_dir()?)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Dataplane { command: None } => crate::serve::dataplane(data_dir()?)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Dataplane {
            command: Some(command),
        } => match &cli.data_dir {
            // A data directory named: its data plane, whether or not a
            // server runs; otherwise the data plane of the server at URL.
            Some(dir) => dataplane::run_local(dir, command).await,
            None => dataplane::run_remote(&client()?, &cli.url, command).await,
        },
        Command::App(command) => deploy::app(&client()?, command).await,
        Command::Cluster(command) => deploy::cluster(&client()?, command).await,
        Command::ServerGroup(command) => deploy::server_group(&client()?, command).await,
        Command::Rollback { cluster } => deploy::rollback(&client()?, &cluster).await,
        Command::Lb(command) => deploy::lb(&client()?, command).await,
        Command::Validate { file } => files::validate(&file),
        Command::Apply { file } => files::apply(&client()?, &file).await,
        Command::Pipeline(command) => pipelines::run(&client()?, command).await,
        Command::Run {
            pipeline,
            params,
            follow,
            reference,
        } => executions::start(&client()?, &pipeline, &params, follow, reference).await,
        Command::Execution(command) => executions::run(&client()?, command).await,
        Command::Logs { id, stage, follow } => {
            follow::logs(&client()?, &id, stage.as_deref(), follow).await
        }
        Command::Approve { id, stage, option } => {
            executions::judge(&client()?, &id, stage, true, option).await
        }
        Command::Reject { id, stage } => {
            executions::judge(&client()?, &id, stage, false, None).await
        }
        Command::Skip { id, stage } => executions::skip(&client()?, &id, stage).await,
        Command::Promote { id, stage } => promote::promote(&client()?, &id, stage).await,
        Command::Token(command) => tokens::run(&client()?, command).await,
        Command::Deb(command) => deb::run(command),
        Command::Apt(args) => apt::run(args, &cli.url, cli.data_dir.clone()).await,
        Command::Build(args) => build::run(args, data_dir().ok()).await,
        Command::Runner(args) => match args.command {
            None => runner::agent(args.agent, &cli.url).await,
            Some(command) => runner::manage(&client()?, command).await,
        },
        Command::Secret(command) => secrets::run(&client()?, command).await,
        Command::Repo(command) => git::repo(&client()?, &cli.url, command).await,
        Command::Trigger(command) => git::trigger(&client()?, command).await,
        Command::Artifact(command) => artifacts::run(&client()?, command).await,
        Command::Builders(command) => builders::run(command).await,
        Command::Host(command) => host::run(&client()?, command).await,
        Command::Agent(args) => host::agent(args).await,
    }
}
