//! `gantry run`, `gantry execution …`, `gantry approve|reject|skip`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::bail;
use serde_json::{Value, json};

use crate::args::ExecutionCommand;
use crate::client::{Client, segment};
use crate::commands::follow;
use crate::output::{duration, field, print_json, short_time, table, trigger};

pub async fn start(
    client: &Client,
    pipeline: &str,
    params: &[String],
    follow: bool,
    reference: Option<String>,
) -> anyhow::Result<ExitCode> {
    let mut parameters = BTreeMap::new();
    for param in params {
        let Some((key, value)) = param.split_once('=') else {
            bail!("parameter {param:?} must be written KEY=VALUE");
        };
        if key.is_empty() {
            bail!("parameter {param:?} has an empty name");
        }
        parameters.insert(key.to_owned(), value.to_owned());
    }
    let path = format!("/api/v1/pipelines/{}/executions", segment(pipeline));
    let mut body = json!({ "parameters": parameters });
    if let Some(reference) = reference {
        body["ref"] = json!(reference);
    }
    let execution = client.post(&path, &body).await?;
    let id = field(&execution, "id");
    println!("{id}");
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    let status = follow::progress(client, &id).await?;
    Ok(if status == "succeeded" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub async fn run(client: &Client, command: ExecutionCommand) -> anyhow::Result<ExitCode> {
    match command {
        ExecutionCommand::List {
            pipeline,
            status,
            trigger: trigger_type,
            limit,
            json,
        } => {
            let mut query = vec![format!("limit={limit}")];
            for (name, value) in [
                ("pipeline", pipeline),
                ("status", status),
                ("trigger", trigger_type),
            ] {
                if let Some(value) = value {
                    query.push(format!("{name}={}", segment(&value)));
                }
            }
            let answer = client
                .get(&format!("/api/v1/executions?{}", query.join("&")))
                .await?;
            if json {
                print_json(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = answer["executions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    vec![
                        field(e, "id"),
                        field(e, "pipeline"),
                        field(e, "status"),
                        trigger(e),
                        short_time(e, "createdAt"),
                        duration(e, "startedAt", "endedAt"),
                    ]
                })
                .collect();
            table(
                &["ID", "PIPELINE", "STATUS", "TRIGGER", "CREATED", "DURATION"],
                &rows,
            );
        }
        ExecutionCommand::Show { id, json } => {
            let execution = client
                .get(&format!("/api/v1/executions/{}", segment(&id)))
                .await?;
            if json {
                print_json(&execution);
            } else {
                show(&execution);
            }
        }
        ExecutionCommand::Cancel { id } => {
            let execution = client
                .post(
                    &format!("/api/v1/executions/{}/cancel", segment(&id)),
                    &json!({}),
                )
                .await?;
            println!("execution {id}: {}", field(&execution, "status"));
        }
        ExecutionCommand::Rerun { id } => {
            let path = format!("/api/v1/executions/{}/rerun", segment(&id));
            let execution = client.post(&path, &json!({})).await?;
            println!("{}", field(&execution, "id"));
        }
        ExecutionCommand::Restart { id, stage } => {
            let path = format!(
                "/api/v1/executions/{}/stages/{}/restart",
                segment(&id),
                segment(&stage)
            );
            let execution = client.post(&path, &json!({})).await?;
            println!(
                "execution {id}: stage {stage} restarted ({})",
                field(&execution, "status")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show(execution: &Value) {
    println!("id:         {}", field(execution, "id"));
    println!("pipeline:   {}", field(execution, "pipeline"));
    println!("status:     {}", field(execution, "status"));
    println!("trigger:    {}", trigger(execution));
    println!("created:    {}", short_time(execution, "createdAt"));
    println!(
        "duration:   {}",
        duration(execution, "startedAt", "endedAt")
    );
    if let Some(parent) = execution.get("parent").filter(|p| !p.is_null()) {
        println!(
            "parent:     {} (stage {})",
            field(parent, "execution"),
            field(parent, "stage")
        );
    }
    if let Some(params) = execution
        .get("parameters")
        .and_then(Value::as_object)
        .filter(|p| !p.is_empty())
    {
        println!("parameters:");
        for (name, value) in params {
            println!(
                "  {name}={}",
                value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned)
            );
        }
    }
    if let Some(error) = execution.get("error").and_then(Value::as_str) {
        println!("error:      {error}");
    }
    if let Some(by) = execution.get("canceledBy").and_then(Value::as_str) {
        println!("canceled by {by}");
    }
    println!();
    let stages: Vec<&Value> = execution["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let rows: Vec<Vec<String>> = stages
        .iter()
        .map(|s| {
            vec![
                field(s, "id"),
                field(s, "type"),
                field(s, "status"),
                field(s, "attempt"),
                short_time(s, "startedAt"),
                duration(s, "startedAt", "endedAt"),
            ]
        })
        .collect();
    table(
        &["STAGE", "TYPE", "STATUS", "ATTEMPT", "STARTED", "DURATION"],
        &rows,
    );
    for stage in stages {
        if let Some(error) = stage.get("error").and_then(Value::as_str) {
            println!("{}: {error}", field(stage, "id"));
        }
        for (key, value) in stage
            .get("outputs")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let value = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            println!("{}.outputs.{key} = {value}", field(stage, "id"));
        }
    }
}

pub async fn judge(
    client: &Client,
    id: &str,
    stage: Option<String>,
    proceed: bool,
    option: Option<String>,
) -> anyhow::Result<ExitCode> {
    let body = json!({
        "stage": stage,
        "judgment": if proceed { "continue" } else { "stop" },
        "option": option,
    });
    let execution = client
        .post(
            &format!("/api/v1/executions/{}/judgment", segment(id)),
            &body,
        )
        .await?;
    let verb = if proceed { "approved" } else { "rejected" };
    println!("execution {id}: {verb} ({})", field(&execution, "status"));
    Ok(ExitCode::SUCCESS)
}

pub async fn skip(client: &Client, id: &str, stage: Option<String>) -> anyhow::Result<ExitCode> {
    let execution = client
        .post(
            &format!("/api/v1/executions/{}/skip", segment(id)),
            &json!({ "stage": stage }),
        )
        .await?;
    println!(
        "execution {id}: wait skipped ({})",
        field(&execution, "status")
    );
    Ok(ExitCode::SUCCESS)
}
