//! Following an execution live over its event stream: stage progress for
//! `gantry run --follow`, log lines for `gantry logs`.

use std::collections::HashSet;
use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::client::{Client, segment};
use crate::output::field;

/// Prints stage status changes until the execution ends; returns its status.
pub async fn progress(client: &Client, id: &str) -> anyhow::Result<String> {
    let mut events = client
        .events(&format!("/api/v1/executions/{}/events", segment(id)))
        .await?;
    // (stage, status, attempt) already printed: the snapshot and the live
    // events overlap around the moment the stream opened.
    let mut printed: HashSet<(String, String, i64)> = HashSet::new();
    let mut last: Option<Value> = None;
    let mut print = |stage: &str, status: &str, attempt: i64| {
        if status == "pending" || !printed.insert((stage.to_owned(), status.to_owned(), attempt)) {
            return;
        }
        let again = if attempt > 1 {
            format!(" (attempt {attempt})")
        } else {
            String::new()
        };
        println!("{stage:<20} {status}{again}");
        let _ = std::io::stdout().flush();
    };
    while let Some(event) = events.next().await? {
        let data: Value = serde_json::from_str(&event.data)
            .with_context(|| format!("bad {} event", event.event))?;
        match event.event.as_str() {
            "execution" => {
                for stage in data["stages"].as_array().into_iter().flatten() {
                    let attempt = stage.get("attempt").and_then(Value::as_i64).unwrap_or(0);
                    print(&field(stage, "id"), &field(stage, "status"), attempt);
                }
                last = Some(data);
            }
            "stage" => {
                let attempt = data.get("attempt").and_then(Value::as_i64).unwrap_or(0);
                print(&field(&data, "stageId"), &field(&data, "status"), attempt);
                if field(&data, "status") == "waiting" {
                    println!("  waiting for a judgment: gantry approve {id} / gantry reject {id}");
                }
            }
            "end" => {
                let status = field(&data, "status");
                if let Some(execution) = &last {
                    for stage in execution["stages"].as_array().into_iter().flatten() {
                        if let Some(error) = stage.get("error").and_then(Value::as_str) {
                            println!("{}: {error}", field(stage, "id"));
                        }
                    }
                    if let Some(error) = execution.get("error").and_then(Value::as_str) {
                        println!("error: {error}");
                    }
                }
                println!("execution {id} {status}");
                return Ok(status);
            }
            "error" => bail!("{}", field(&data, "error")),
            _ => {}
        }
    }
    bail!(
        "the event stream of execution {id} closed before it ended (is the server shutting down?)"
    )
}

/// `gantry logs ID [--stage S] [-f]`.
pub async fn logs(
    client: &Client,
    id: &str,
    stage: Option<&str>,
    follow: bool,
) -> anyhow::Result<ExitCode> {
    let stage_query = stage
        .map(|s| format!("&stage={}", segment(s)))
        .unwrap_or_default();
    let prefix = stage.is_none();
    if follow {
        let path = format!(
            "/api/v1/executions/{}/events?after=0{stage_query}",
            segment(id)
        );
        let mut events = client.events(&path).await?;
        while let Some(event) = events.next().await? {
            match event.event.as_str() {
                "log" => {
                    let line: Value = serde_json::from_str(&event.data).context("bad log event")?;
                    print_line(&line, prefix);
                }
                "end" => return Ok(ExitCode::SUCCESS),
                "error" => {
                    let data: Value = serde_json::from_str(&event.data).unwrap_or_default();
                    bail!("{}", field(&data, "error"));
                }
                _ => {}
            }
        }
        bail!(
            "the event stream of execution {id} closed before it ended (is the server shutting down?)"
        );
    }
    let mut after = 0;
    loop {
        let path = format!(
            "/api/v1/executions/{}/logs?after={after}&limit=1000{stage_query}",
            segment(id)
        );
        let page = client.get(&path).await?;
        let lines = page["lines"].as_array().cloned().unwrap_or_default();
        for line in &lines {
            print_line(line, prefix);
        }
        after = page["next"].as_i64().unwrap_or(after);
        if lines.len() < 1000 {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

fn print_line(line: &Value, with_stage: bool) {
    let text = line.get("line").and_then(Value::as_str).unwrap_or("");
    let mut out = std::io::stdout().lock();
    let _ = if with_stage {
        writeln!(out, "[{}] {text}", field(line, "stageId"))
    } else {
        writeln!(out, "{text}")
    };
    let _ = out.flush();
}
