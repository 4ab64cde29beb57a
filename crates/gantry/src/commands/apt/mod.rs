//! `gantry apt …`: aptly's commands (`repo`, `snapshot`, `publish`, `db
//! cleanup`) plus `key`, through a server's API or (`--local`) on a data
//! directory directly: both behind one trait (`backend/`), each command's
//! printing in its own file.

mod args;
mod backend;
mod db;
mod keys;
mod publish;
mod repo;
mod snapshot;

use std::path::PathBuf;
use std::process::ExitCode;

use gantry_wire::apt::Package;

pub use args::*;
use backend::{AptBackend, HttpApt, LocalApt};

/// Runs one command against the server at `url` or, with `--local`, on the
/// data directory (`data_dir`: the `--data-dir` flag, if given).
pub async fn run(args: AptArgs, url: &str, data_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    if args.local {
        let local =
            LocalApt::open(&crate::paths::data_dir(data_dir)?, args.database.as_deref()).await?;
        run_on(&local, args.command, url).await?;
    } else {
        let client = crate::client::Client::new(url, crate::paths::data_dir(data_dir))?;
        run_on(&HttpApt::new(client), args.command, url).await?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_on(api: &impl AptBackend, command: AptCommand, url: &str) -> anyhow::Result<()> {
    match command {
        AptCommand::Repo(command) => repo::run(api, command).await,
        AptCommand::Snapshot(command) => snapshot::run(api, command).await,
        AptCommand::Publish(command) => publish::run(api, command, url).await,
        AptCommand::Key(command) => keys::run(api, command).await,
        AptCommand::Db(command) => db::run(api, command).await,
    }
}

fn print_packages(packages: &[Package]) {
    for p in packages {
        println!("  {}", p.key);
    }
}
