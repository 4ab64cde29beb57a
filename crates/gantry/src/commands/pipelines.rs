//! `gantry pipeline list|show|delete`.

use std::process::ExitCode;

use gantry_wire::Deleted;
use gantry_wire::pipelines::{DeleteBody, Pipeline, PipelineList};
use serde_json::Value;

use crate::args::PipelineCommand;
use crate::client::{Client, segment};
use crate::output::{dash, field, print_wire, short, table};

pub async fn run(client: &Client, command: PipelineCommand) -> anyhow::Result<ExitCode> {
    match command {
        PipelineCommand::List { json } => {
            let answer: PipelineList = client.get_as("/api/v1/pipelines").await?;
            if json {
                print_wire(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = answer
                .pipelines
                .into_iter()
                .map(|p| {
                    vec![
                        p.name,
                        dash(p.application.as_deref()),
                        p.stages.to_string(),
                        p.version.to_string(),
                        short(Some(&p.updated_at)),
                    ]
                })
                .collect();
            table(
                &["NAME", "APPLICATION", "STAGES", "VERSION", "UPDATED"],
                &rows,
            );
        }
        PipelineCommand::Show { name, json } => {
            let pipeline = show(client, &name).await?;
            if json {
                print_wire(&pipeline);
                return Ok(ExitCode::SUCCESS);
            }
            println!("name:        {}", pipeline.name);
            println!("application: {}", dash(pipeline.application.as_deref()));
            println!("version:     {}", pipeline.version);
            println!("updated:     {}", short(Some(&pipeline.updated_at)));
            let spec = pipeline.spec.unwrap_or_default();
            if let Some(parameters) = spec.get("parameters").and_then(Value::as_array) {
                println!("parameters:");
                for p in parameters {
                    let default = p
                        .get("default")
                        .and_then(Value::as_str)
                        .map(|d| format!(" (default {d:?})"));
                    let required = if p.get("required").and_then(Value::as_bool) == Some(true) {
                        " required"
                    } else {
                        ""
                    };
                    println!(
                        "  {}{}{required}",
                        field(p, "name"),
                        default.unwrap_or_default()
                    );
                }
            }
            println!();
            let rows: Vec<Vec<String>> = spec["stages"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    let depends = s
                        .get("dependsOn")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(",")
                        })
                        .filter(|d| !d.is_empty())
                        .unwrap_or_else(|| "-".to_owned());
                    vec![field(s, "id"), field(s, "type"), depends]
                })
                .collect();
            table(&["STAGE", "TYPE", "DEPENDS ON"], &rows);
        }
        PipelineCommand::Delete { name } => {
            let _: Deleted = match path_of(&name) {
                Some(path) => client.delete_as(&path).await?,
                None => {
                    let body = DeleteBody { name: name.clone() };
                    client
                        .call(reqwest::Method::DELETE, "/api/v1/pipelines", Some(&body))
                        .await?
                }
            };
            println!("pipeline {name} deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The longest escaped name sent in a URL: far below what servers take in a request line
/// (hyper refuses URIs of 64 KiB), so that a name stored before names were checked can
/// always be reached some other way.
const LONGEST_SEGMENT: usize = 4096;

/// `/api/v1/pipelines/NAME`, or `None` for a name a path cannot carry: `.` and `..` are
/// resolved away by every HTTP client (escaped or not), and a very long name does not fit.
fn path_of(name: &str) -> Option<String> {
    let escaped = segment(name);
    let carried = !matches!(name, "." | "..") && escaped.len() <= LONGEST_SEGMENT;
    carried.then(|| format!("/api/v1/pipelines/{escaped}"))
}

/// One pipeline with its spec, by its path, or by the list's `name` query, or, for a name
/// too long even for that, from the whole list (without its spec).
async fn show(client: &Client, name: &str) -> anyhow::Result<Pipeline> {
    if let Some(path) = path_of(name) {
        return client.get_as(&path).await;
    }
    let listed: PipelineList = if segment(name).len() <= LONGEST_SEGMENT {
        client
            .get_as(&format!("/api/v1/pipelines?name={}", segment(name)))
            .await?
    } else {
        client.get_as("/api/v1/pipelines").await?
    };
    listed
        .pipelines
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| anyhow::anyhow!("pipeline {name:?} not found"))
}
