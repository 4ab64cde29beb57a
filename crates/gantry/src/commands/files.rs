//! `gantry validate` (offline) and `gantry apply`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Value, json};

use crate::client::Client;

pub fn validate(file: &Path) -> anyhow::Result<ExitCode> {
    let name = file.display().to_string();
    let text = read(file)?;
    match gantry_config::parse_document(&name, &text) {
        Ok(document) => {
            let count = document.pipelines.len();
            let noun = if count == 1 { "pipeline" } else { "pipelines" };
            println!("{name}: ok ({count} {noun})");
            Ok(ExitCode::SUCCESS)
        }
        Err(diagnostics) => {
            let text = diagnostics.to_string();
            eprintln!("{}", text.trim_end());
            Ok(ExitCode::FAILURE)
        }
    }
}

pub async fn apply(client: &Client, file: &Path) -> anyhow::Result<ExitCode> {
    let name = file.display().to_string();
    let content = read(file)?;
    let report = client
        .post("/api/v1/apply", &json!({"file": name, "content": content}))
        .await?;
    let results = report.as_object().into_iter().flatten();
    for (kind, items) in results {
        let kind = match kind.as_str() {
            "loadBalancers" => "load balancer",
            kind => kind.trim_end_matches('s'),
        };
        for item in items.as_array().into_iter().flatten() {
            let name = item.get("name").and_then(Value::as_str).unwrap_or("?");
            let result = item.get("result").and_then(Value::as_str).unwrap_or("?");
            println!("{kind} {name}: {result}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read(file: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}
