//! `gantry pipeline list|show|delete`.

use std::process::ExitCode;

use serde_json::{Value, json};

use crate::args::PipelineCommand;
use crate::client::{Client, segment};
use crate::output::{field, print_json, short_time, table};

pub async fn run(client: &Client, command: PipelineCommand) -> anyhow::Result<ExitCode> {
    match command {
        PipelineCommand::List { json } => {
            let answer = client.get("/api/v1/pipelines").await?;
            if json {
                print_json(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = answer["pipelines"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    vec![
                        field(p, "name"),
                        field(p, "application"),
                        field(p, "stages"),
                        field(p, "version"),
                        short_time(p, "updatedAt"),
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
                print_json(&pipeline);
                return Ok(ExitCode::SUCCESS);
            }
            println!("name:        {}", field(&pipeline, "name"));
            println!("application: {}", field(&pipeline, "application"));
            println!("version:     {}", field(&pipeline, "version"));
            println!("updated:     {}", short_time(&pipeline, "updatedAt"));
            let spec = &pipeline["spec"];
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
            match path_of(&name) {
                Some(path) => client.delete(&path).await?,
                None => {
                    client
                        .delete_with("/api/v1/pipelines", &json!({ "name": name }))
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
async fn show(client: &Client, name: &str) -> anyhow::Result<Value> {
    if let Some(path) = path_of(name) {
        return client.get(&path).await;
    }
    let listed = if segment(name).len() <= LONGEST_SEGMENT {
        client
            .get(&format!("/api/v1/pipelines?name={}", segment(name)))
            .await?
    } else {
        client.get("/api/v1/pipelines").await?
    };
    listed["pipelines"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("pipeline {name:?} not found"))
}
