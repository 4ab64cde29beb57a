//! `gantry promote`: lets a deploy waiting for a person go on (a canary paused until
//! promoted, a rolling deploy with `waitForPromotion`). The deploy stage takes it as the
//! skip of its wait, which `gantry skip` also sends.

use std::process::ExitCode;

use serde_json::json;

use crate::client::Client;

pub async fn promote(client: &Client, id: &str, stage: Option<String>) -> anyhow::Result<ExitCode> {
    client
        .post(
            &format!("/api/v1/executions/{}/skip", crate::client::segment(id)),
            &json!({ "stage": stage }),
        )
        .await?;
    let stage = stage.map(|s| format!(" (stage {s})")).unwrap_or_default();
    println!("execution {id}: deploy promoted{stage}");
    Ok(ExitCode::SUCCESS)
}
