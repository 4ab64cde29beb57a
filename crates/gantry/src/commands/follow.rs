//! Following an execution live over its event stream: stage progress for
//! `gantry run --follow`, log lines for `gantry logs`.

use std::collections::HashSet;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use gantry_wire::executions::{LogLine, LogPage};
use serde_json::Value;

use crate::client::{Client, Unreachable, segment};
use crate::output::field;
use crate::sse::SseEvent;

/// How long a follower keeps trying to reconnect to a server that went away
/// (a restart, a kill -9 and a restart) before giving up.
const RECONNECT_FOR: Duration = Duration::from_secs(60);

/// Reads an execution's event stream until `on_event` returns a result. When
/// the stream breaks or the server cannot be reached, it reconnects (for up
/// to `RECONNECT_FOR`) and resumes after the last log line seen, so a server
/// restart neither stops the follower nor repeats or loses a line.
async fn follow_stream<T>(
    client: &Client,
    id: &str,
    query: &str,
    from_first_line: bool,
    mut on_event: impl FnMut(&SseEvent) -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let mut after: Option<String> = from_first_line.then(|| "0".to_owned());
    let mut lost_since: Option<Instant> = None;
    loop {
        let resume = after
            .as_deref()
            .map(|seq| format!("after={seq}&"))
            .unwrap_or_default();
        let path = format!("/api/v1/executions/{}/events?{resume}{query}", segment(id));
        let broken = match client.events(&path).await {
            Ok(mut events) => loop {
                match events.next().await {
                    Ok(Some(event)) => {
                        lost_since = None;
                        if event.event == "log" {
                            after.clone_from(&event.id);
                        }
                        if let Some(done) = on_event(&event)? {
                            return Ok(done);
                        }
                    }
                    Ok(None) => break "the event stream closed".to_owned(),
                    Err(error) => break format!("{error:#}"),
                }
            },
            Err(error) if error.downcast_ref::<Unreachable>().is_some() => format!("{error:#}"),
            Err(error) => return Err(error),
        };
        let since = *lost_since.get_or_insert_with(|| {
            eprintln!("{broken}; reconnecting…");
            Instant::now()
        });
        if since.elapsed() > RECONNECT_FOR {
            bail!("lost the event stream of execution {id} for {RECONNECT_FOR:?}: {broken}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Prints stage status changes until the execution ends; returns its status.
pub async fn progress(client: &Client, id: &str) -> anyhow::Result<String> {
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
    follow_stream(client, id, "", false, |event: &SseEvent| {
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
                return Ok(Some(status));
            }
            "error" => bail!("{}", field(&data, "error")),
            _ => {}
        }
        Ok(None)
    })
    .await
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
        let query = stage_query.trim_start_matches('&').to_owned();
        return follow_stream(client, id, &query, true, |event: &SseEvent| {
            match event.event.as_str() {
                "log" => {
                    let line: LogLine =
                        serde_json::from_str(&event.data).context("bad log event")?;
                    print_line(&line, prefix);
                    Ok(None)
                }
                "end" => Ok(Some(ExitCode::SUCCESS)),
                "error" => {
                    let data: Value = serde_json::from_str(&event.data).unwrap_or_default();
                    bail!("{}", field(&data, "error"));
                }
                _ => Ok(None),
            }
        })
        .await;
    }
    let mut after = 0;
    loop {
        let path = format!(
            "/api/v1/executions/{}/logs?after={after}&limit=1000{stage_query}",
            segment(id)
        );
        let page: LogPage = client.get_as(&path).await?;
        for line in &page.lines {
            print_line(line, prefix);
        }
        after = page.next;
        if page.lines.len() < 1000 {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

fn print_line(line: &LogLine, with_stage: bool) {
    let text = &line.line;
    let mut out = std::io::stdout().lock();
    let _ = if with_stage {
        writeln!(out, "[{}] {text}", line.stage_id)
    } else {
        writeln!(out, "{text}")
    };
    let _ = out.flush();
}
