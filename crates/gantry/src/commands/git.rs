//! `gantry repo create|list|delete` (hosted git repositories) and `gantry trigger list`.

use std::process::ExitCode;

use clap::Subcommand;
use gantry_wire::Deleted;
use gantry_wire::git::{CreateRepository, Repository, RepositoryList, TriggerList};

use crate::client::{Client, segment};
use crate::output::{print_wire, table};

#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Create a hosted repository, served at URL/git/NAME.git.
    Create {
        name: String,
        /// Anyone may clone it (pushing always needs a token).
        #[arg(long)]
        public: bool,
    },
    /// List hosted repositories.
    List {
        /// Print the API's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a hosted repository and its whole history.
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum TriggerCommand {
    /// What watches what: every trigger of every pipeline.
    List {
        /// Print the API's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub async fn repo(client: &Client, url: &str, command: RepoCommand) -> anyhow::Result<ExitCode> {
    match command {
        RepoCommand::Create { name, public } => {
            let body = CreateRepository {
                name: name.clone(),
                public,
            };
            let _: Repository = client.post_as("/api/v1/repos", &body).await?;
            println!("{}/git/{name}.git", url.trim_end_matches('/'));
            eprintln!("repository {name:?} created; push with a token as the password");
        }
        RepoCommand::List { json } => {
            let answer: RepositoryList = client.get_as("/api/v1/repos").await?;
            if json {
                print_wire(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = answer
                .repositories
                .into_iter()
                .map(|r| {
                    let name = r.name;
                    let access = if r.public { "public" } else { "token" };
                    vec![
                        name.clone(),
                        access.to_owned(),
                        format!("{}/git/{name}.git", url.trim_end_matches('/')),
                    ]
                })
                .collect();
            table(&["NAME", "READ", "URL"], &rows);
        }
        RepoCommand::Delete { name } => {
            let _: Deleted = client
                .delete_as(&format!("/api/v1/repos/{}", segment(&name)))
                .await?;
            println!("repository {name} deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn trigger(client: &Client, command: TriggerCommand) -> anyhow::Result<ExitCode> {
    match command {
        TriggerCommand::List { json } => {
            let answer: TriggerList = client.get_as("/api/v1/triggers").await?;
            if json {
                print_wire(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = answer
                .triggers
                .into_iter()
                .map(|t| vec![t.pipeline, t.kind, t.watches])
                .collect();
            table(&["PIPELINE", "TYPE", "WATCHES"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}
