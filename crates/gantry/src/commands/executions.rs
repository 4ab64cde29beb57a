//! `gantry run`, `gantry execution …`, `gantry approve|reject|skip`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::bail;
use gantry_wire::executions::{Decision, Execution, ExecutionList, JudgmentBody, SkipBody};
use gantry_wire::pipelines::RunBody;
use serde_json::{Value, json};

use crate::args::ExecutionCommand;
use crate::client::{Client, segment};
use crate::commands::follow;
use crate::output::{elapsed, print_wire, short, table, trigger};

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
        parameters.insert(key.to_owned(), json!(value));
    }
    let path = format!("/api/v1/pipelines/{}/executions", segment(pipeline));
    let body = RunBody {
        parameters,
        reference,
    };
    let execution: Execution = client.post_as(&path, &body).await?;
    let id = execution.id;
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
            let answer: ExecutionList = client
                .get_as(&format!("/api/v1/executions?{}", query.join("&")))
                .await?;
            if json {
                print_wire(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = answer
                .executions
                .iter()
                .map(|e| {
                    vec![
                        e.id.clone(),
                        e.pipeline.clone(),
                        e.status.to_string(),
                        trigger(&e.trigger),
                        short(Some(&e.created_at)),
                        elapsed(e.started_at.as_deref(), e.ended_at.as_deref()),
                    ]
                })
                .collect();
            table(
                &["ID", "PIPELINE", "STATUS", "TRIGGER", "CREATED", "DURATION"],
                &rows,
            );
        }
        ExecutionCommand::Show { id, json } => {
            let execution: Execution = client
                .get_as(&format!("/api/v1/executions/{}", segment(&id)))
                .await?;
            if json {
                print_wire(&execution);
            } else {
                show(&execution);
            }
        }
        ExecutionCommand::Cancel { id } => {
            let execution: Execution = client
                .post_as(
                    &format!("/api/v1/executions/{}/cancel", segment(&id)),
                    &json!({}),
                )
                .await?;
            println!("execution {id}: {}", execution.status);
        }
        ExecutionCommand::Rerun { id } => {
            let path = format!("/api/v1/executions/{}/rerun", segment(&id));
            let execution: Execution = client.post_as(&path, &json!({})).await?;
            println!("{}", execution.id);
        }
        ExecutionCommand::Restart { id, stage } => {
            let path = format!(
                "/api/v1/executions/{}/stages/{}/restart",
                segment(&id),
                segment(&stage)
            );
            let execution: Execution = client.post_as(&path, &json!({})).await?;
            println!(
                "execution {id}: stage {stage} restarted ({})",
                execution.status
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show(execution: &Execution) {
    println!("id:         {}", execution.id);
    println!("pipeline:   {}", execution.pipeline);
    println!("status:     {}", execution.status);
    println!("trigger:    {}", trigger(&execution.trigger));
    println!("created:    {}", short(Some(&execution.created_at)));
    println!(
        "duration:   {}",
        elapsed(
            execution.started_at.as_deref(),
            execution.ended_at.as_deref()
        )
    );
    if let Some(parent) = &execution.parent {
        println!("parent:     {} (stage {})", parent.execution, parent.stage);
    }
    if let Some(params) = execution.parameters.as_object().filter(|p| !p.is_empty()) {
        println!("parameters:");
        for (name, value) in params {
            println!("  {name}={}", text(value));
        }
    }
    if let Some(error) = &execution.error {
        println!("error:      {error}");
    }
    if let Some(by) = &execution.canceled_by {
        println!("canceled by {by}");
    }
    println!();
    let stages = execution.stages.as_deref().unwrap_or_default();
    let rows: Vec<Vec<String>> = stages
        .iter()
        .map(|s| {
            vec![
                s.id.clone(),
                s.kind.clone().unwrap_or_else(|| "-".to_owned()),
                s.status.to_string(),
                s.attempt.to_string(),
                short(s.started_at.as_deref()),
                elapsed(s.started_at.as_deref(), s.ended_at.as_deref()),
            ]
        })
        .collect();
    table(
        &["STAGE", "TYPE", "STATUS", "ATTEMPT", "STARTED", "DURATION"],
        &rows,
    );
    for stage in stages {
        if let Some(error) = &stage.error {
            println!("{}: {error}", stage.id);
        }
        for (key, value) in stage.outputs.as_object().into_iter().flatten() {
            println!("{}.outputs.{key} = {}", stage.id, text(value));
        }
    }
}

/// A string as it is, anything else as JSON.
fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

pub async fn judge(
    client: &Client,
    id: &str,
    stage: Option<String>,
    proceed: bool,
    option: Option<String>,
) -> anyhow::Result<ExitCode> {
    let body = JudgmentBody {
        stage,
        judgment: if proceed {
            Decision::Continue
        } else {
            Decision::Stop
        },
        option,
    };
    let execution: Execution = client
        .post_as(
            &format!("/api/v1/executions/{}/judgment", segment(id)),
            &body,
        )
        .await?;
    let verb = if proceed { "approved" } else { "rejected" };
    println!("execution {id}: {verb} ({})", execution.status);
    Ok(ExitCode::SUCCESS)
}

pub async fn skip(client: &Client, id: &str, stage: Option<String>) -> anyhow::Result<ExitCode> {
    let execution: Execution = client
        .post_as(
            &format!("/api/v1/executions/{}/skip", segment(id)),
            &SkipBody { stage },
        )
        .await?;
    println!("execution {id}: wait skipped ({})", execution.status);
    Ok(ExitCode::SUCCESS)
}
