//! `gantry repo create|list|delete` (hosted git repositories) and `gantry trigger list`.

use std::process::ExitCode;

use clap::Subcommand;
use gantry_wire::Deleted;
use gantry_wire::git::{CreateRepository, Repository, RepositoryList, Trigger, TriggerList};

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
    /// Switch a trigger off without editing the file: PIPELINE#N, as `trigger list` shows
    /// it (N counts the pipeline's triggers from 1). It stays off across applies.
    Disable {
        /// PIPELINE#N
        id: String,
    },
    /// Switch a trigger back on.
    Enable {
        /// PIPELINE#N
        id: String,
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
                .map(|t| {
                    let state = if t.enabled { "enabled" } else { "disabled" };
                    vec![t.id, t.kind, state.to_owned(), t.watches]
                })
                .collect();
            table(&["ID", "TYPE", "STATE", "WATCHES"], &rows);
        }
        TriggerCommand::Disable { id } => switch(client, &id, false).await?,
        TriggerCommand::Enable { id } => switch(client, &id, true).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn switch(client: &Client, id: &str, enabled: bool) -> anyhow::Result<()> {
    let Some((pipeline, position)) = id
        .rsplit_once('#')
        .and_then(|(pipeline, n)| Some((pipeline, n.parse::<u32>().ok()?)))
    else {
        anyhow::bail!(
            "{id:?} is not a trigger id: write PIPELINE#N, as `gantry trigger list` shows it"
        );
    };
    let action = if enabled { "enable" } else { "disable" };
    let trigger: Trigger = client
        .post_as(
            &format!(
                "/api/v1/pipelines/{}/triggers/{position}/{action}",
                segment(pipeline)
            ),
            &serde_json::json!({}),
        )
        .await?;
    println!(
        "trigger {} ({}: {}) {action}d",
        trigger.id, trigger.kind, trigger.watches
    );
    Ok(())
}
