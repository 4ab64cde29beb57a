//! `gantry artifact list|get`: the files an execution's stages kept in the artifact store
//! (a Cloud Build file's `artifacts.objects`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Subcommand;
use gantry_wire::executions::ArtifactList;

use crate::client::{Client, segment};
use crate::output::{print_wire, table};

#[derive(Debug, Subcommand)]
pub enum ArtifactCommand {
    /// The files an execution kept: stage, name, size, SHA-256, where it was.
    List {
        /// The execution's id.
        execution: String,
        /// Print the API's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Download one kept file.
    Get {
        /// The execution's id.
        execution: String,
        /// STAGE/NAME, as `artifact list` shows it (NAME alone when one stage kept it).
        artifact: String,
        /// Where to write it (default: NAME in the current directory).
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

pub async fn run(client: &Client, command: ArtifactCommand) -> anyhow::Result<ExitCode> {
    match command {
        ArtifactCommand::List { execution, json } => {
            let list = listed(client, &execution).await?;
            if json {
                print_wire(&list);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = list
                .artifacts
                .into_iter()
                .map(|a| {
                    vec![
                        format!("{}/{}", a.stage, a.name),
                        a.size.to_string(),
                        a.sha256,
                        a.path,
                        a.location,
                    ]
                })
                .collect();
            table(&["ARTIFACT", "SIZE", "SHA256", "PATH", "LOCATION"], &rows);
        }
        ArtifactCommand::Get {
            execution,
            artifact,
            output,
        } => {
            let (stage, name) = match artifact.split_once('/') {
                Some((stage, name)) => (stage.to_owned(), name.to_owned()),
                None => {
                    let list = listed(client, &execution).await?;
                    let stages: Vec<String> = list
                        .artifacts
                        .into_iter()
                        .filter(|a| a.name == artifact)
                        .map(|a| a.stage)
                        .collect();
                    match stages.as_slice() {
                        [stage] => (stage.clone(), artifact.clone()),
                        [] => bail!("execution {execution} kept no artifact {artifact:?}"),
                        _ => bail!(
                            "stages {} each kept an artifact {artifact:?}: write STAGE/{artifact}",
                            stages.join(", ")
                        ),
                    }
                }
            };
            let dest = output.unwrap_or_else(|| PathBuf::from(&name));
            let size = client
                .download(
                    &format!(
                        "/api/v1/executions/{}/artifacts/{}/{}",
                        segment(&execution),
                        segment(&stage),
                        segment(&name)
                    ),
                    &dest,
                )
                .await?;
            println!("{stage}/{name}: {size} bytes written to {}", dest.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn listed(client: &Client, execution: &str) -> anyhow::Result<ArtifactList> {
    client
        .get_as(&format!(
            "/api/v1/executions/{}/artifacts",
            segment(execution)
        ))
        .await
}
