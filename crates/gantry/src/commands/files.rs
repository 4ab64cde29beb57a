//! `gantry validate` (offline) and `gantry apply`. A file travels to the
//! server inside a JSON body, which the API takes up to
//! [`gantry_api::JSON_BODY_LIMIT`]: `apply` refuses a larger one before
//! sending anything, and `validate` warns about it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use gantry_wire::pipelines::{ApplyReport, FileBody};

use crate::client::Client;

pub fn validate(file: &Path) -> anyhow::Result<ExitCode> {
    let name = file.display().to_string();
    let text = read(file)?;
    if let Err(too_large) = fits_in_a_request(&name, &text) {
        eprintln!("warning: {too_large}");
    }
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
    let body =
        fits_in_a_request(&name, &content).map_err(|too_large| anyhow::anyhow!("{too_large}"))?;
    let report: ApplyReport = client.post_as("/api/v1/apply", &body).await?;
    let kinds = [
        ("application", &report.applications),
        ("load balancer", &report.load_balancers),
        ("pipeline", &report.pipelines),
        ("repository", &report.repositories),
        ("host", &report.hosts),
    ];
    for (kind, items) in kinds {
        for item in items {
            println!("{kind} {}: {}", item.name, item.result.as_str());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The body `apply` sends for the file, or why the server would refuse it as too large.
fn fits_in_a_request(name: &str, content: &str) -> Result<FileBody, String> {
    let body = FileBody {
        file: name.to_owned(),
        content: content.to_owned(),
    };
    // Escaping (quotes, newlines, control characters) makes the body larger than the file.
    let size = serde_json::to_string(&body).map_or(usize::MAX, |text| text.len());
    let limit = gantry_api::JSON_BODY_LIMIT;
    if size <= limit {
        return Ok(body);
    }
    Err(format!(
        "{name} is {} ({} bytes, {size} once encoded for the API); `gantry apply` cannot send it: \
         the server takes a request body of at most {} ({limit} bytes): split it into several files",
        human(content.len()),
        content.len(),
        human(limit),
    ))
}

/// `2.0 MiB`, `30.0 MiB`, `512 bytes`.
fn human(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / f64::from(1 << 10)),
        b => format!("{b} bytes"),
    }
}

fn read(file: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}
