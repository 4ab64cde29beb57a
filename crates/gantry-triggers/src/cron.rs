//! `cron` triggers: 5-field schedules in a time zone. Every second the scheduler looks for an
//! occurrence that has come since it last looked; each occurrence is claimed in the store
//! (`cron:PIPELINE:INDEX:TIME`), so replicas sharing a database start it once. Occurrences
//! while no server ran are not made up afterwards, as with cron.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gantry_config::Trigger;
use gantry_engine::RunRequest;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::Triggers;
use crate::push::now;

const TICK: Duration = Duration::from_secs(1);

pub(crate) async fn run(triggers: Triggers, shutdown: CancellationToken) {
    // When each schedule was last looked at: occurrences after it are due.
    let mut looked: HashMap<String, DateTime<Utc>> = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(TICK) => {}
        }
        let current = Utc::now();
        for pipeline in triggers.pipelines().await {
            for (index, trigger) in pipeline.triggers.iter().enumerate() {
                let Trigger::Cron(cron) = trigger else {
                    continue;
                };
                let key = format!("{}:{index}:{}", pipeline.name, cron.schedule);
                let since = *looked.entry(key).or_insert(current);
                let Some(due) =
                    occurrence_between(&cron.schedule, cron.time_zone.as_deref(), since, current)
                else {
                    continue;
                };
                looked.insert(
                    format!("{}:{index}:{}", pipeline.name, cron.schedule),
                    current,
                );
                let claim = format!("cron:{}:{index}:{}", pipeline.name, due.timestamp());
                if !matches!(
                    triggers
                        .engine
                        .store()
                        .claim_trigger(&claim, &cron.schedule, now())
                        .await,
                    Ok(true)
                ) {
                    continue;
                }
                let request = RunRequest {
                    pipeline: pipeline.name.clone(),
                    parameters: Default::default(),
                    trigger: json!({
                        "type": "cron",
                        "schedule": cron.schedule,
                        "timeZone": cron.time_zone.as_deref().unwrap_or("UTC"),
                        "scheduledAt": due.to_rfc3339(),
                    }),
                    spec: None,
                };
                match triggers.engine.run(request).await {
                    Ok(exec) => {
                        tracing::info!(pipeline = %pipeline.name, execution = %exec.id, schedule = %cron.schedule, "cron trigger started an execution")
                    }
                    Err(error) => {
                        tracing::error!(pipeline = %pipeline.name, %error, "cron trigger cannot start the pipeline")
                    }
                }
            }
        }
    }
}

/// The latest occurrence of `schedule` in `(since, until]`, if any.
pub(crate) fn occurrence_between(
    schedule: &str,
    zone: Option<&str>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let cron: croner::Cron = schedule.parse().ok()?;
    let tz: chrono_tz::Tz = zone.unwrap_or("UTC").parse().ok()?;
    let next = cron
        .find_next_occurrence(&since.with_timezone(&tz), false)
        .ok()?
        .with_timezone(&Utc);
    (next <= until).then_some(next)
}
