//! `cron` triggers: 5-field schedules in a time zone. The scheduler computes the next
//! occurrence of every schedule from the watched pipelines and sleeps until it comes, or until
//! the pipelines change; it reads no pipeline while it waits. Each occurrence is claimed in the
//! store (`cron:PIPELINE:INDEX:TIME`), so replicas sharing a database start it once.
//! Occurrences while no server ran are not made up afterwards, as with cron.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use gantry_config::{CronTrigger, Pipeline, Trigger};
use gantry_store::{Cause, TriggerData};
use tokio_util::sync::CancellationToken;

use crate::Triggers;
use crate::deliveries::{Outcome, Seen};
use crate::kinds::TriggerKind;
use crate::push::now;

/// The longest sleep: a wall clock that jumps is noticed within it.
const LONGEST_SLEEP: Duration = Duration::from_secs(60);

pub(crate) struct CronKind;

impl TriggerKind for CronKind {
    fn name(&self) -> &'static str {
        "cron"
    }

    fn describe(&self, trigger: &Trigger) -> String {
        let Trigger::Cron(c) = trigger else {
            return String::new();
        };
        format!(
            "{} ({})",
            c.schedule,
            c.time_zone.as_deref().unwrap_or("UTC")
        )
    }

    fn follow(
        &self,
        triggers: Triggers,
        shutdown: CancellationToken,
    ) -> Option<BoxFuture<'static, ()>> {
        Some(Box::pin(run(triggers, shutdown)))
    }
}

/// One `cron` trigger of one pipeline.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Schedule {
    pub pipeline: String,
    /// Its place among the pipeline's triggers.
    pub index: usize,
    pub cron: CronTrigger,
}

impl Schedule {
    /// A schedule changed in place is a new one: it counts from when it was seen.
    fn key(&self) -> String {
        format!("{}:{}:{}", self.pipeline, self.index, self.cron.schedule)
    }
}

/// Every `cron` trigger of `pipelines`.
pub(crate) fn schedules(pipelines: &[Pipeline]) -> Vec<Schedule> {
    pipelines
        .iter()
        .flat_map(|pipeline| {
            pipeline
                .triggers
                .iter()
                .enumerate()
                .filter_map(|(index, trigger)| match trigger {
                    Trigger::Cron(cron) => Some(Schedule {
                        pipeline: pipeline.name.clone(),
                        index,
                        cron: cron.clone(),
                    }),
                    _ => None,
                })
        })
        .collect()
}

/// When each schedule was last looked at: occurrences after it are due.
#[derive(Default)]
pub(crate) struct Looked(HashMap<String, DateTime<Utc>>);

impl Looked {
    /// Schedules seen for the first time count from `now`; those gone are forgotten.
    pub(crate) fn track(&mut self, schedules: &[Schedule], now: DateTime<Utc>) {
        let keys: Vec<String> = schedules.iter().map(Schedule::key).collect();
        self.0.retain(|key, _| keys.contains(key));
        for key in keys {
            self.0.entry(key).or_insert(now);
        }
    }

    /// The earliest occurrence of any schedule after it was last looked at.
    pub(crate) fn next_fire(&self, schedules: &[Schedule]) -> Option<DateTime<Utc>> {
        schedules
            .iter()
            .filter_map(|s| {
                let since = *self.0.get(&s.key())?;
                next_occurrence(&s.cron.schedule, s.cron.time_zone.as_deref(), since)
            })
            .min()
    }
}

async fn run(triggers: Triggers, shutdown: CancellationToken) {
    let mut watched = triggers.pipelines.subscribe();
    let mut looked = Looked::default();
    loop {
        let schedules = schedules(&watched.borrow_and_update());
        let current = Utc::now();
        looked.track(&schedules, current);
        let wait = looked
            .next_fire(&schedules)
            .map_or(LONGEST_SLEEP, |at| {
                (at - current).to_std().unwrap_or(Duration::ZERO)
            })
            .min(LONGEST_SLEEP);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = watched.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            _ = tokio::time::sleep(wait) => {}
        }
        let current = Utc::now();
        for schedule in &schedules {
            let since = looked.0[&schedule.key()];
            let cron = &schedule.cron;
            let Some(due) =
                occurrence_between(&cron.schedule, cron.time_zone.as_deref(), since, current)
            else {
                continue;
            };
            looked.0.insert(schedule.key(), current);
            fire(&triggers, schedule, due).await;
        }
    }
}

async fn fire(triggers: &Triggers, schedule: &Schedule, due: DateTime<Utc>) {
    let (pipeline, cron) = (&schedule.pipeline, &schedule.cron);
    let claim = format!("cron:{pipeline}:{}:{}", schedule.index, due.timestamp());
    if !matches!(
        triggers
            .store
            .claim_trigger(&claim, &cron.schedule, now())
            .await,
        Ok(true)
    ) {
        return;
    }
    let trigger = TriggerData::new(Cause::Cron {
        schedule: cron.schedule.clone(),
        time_zone: cron.time_zone.as_deref().unwrap_or("UTC").to_owned(),
        scheduled_at: due.to_rfc3339(),
    });
    let outcome = match triggers.start_execution(pipeline, trigger).await {
        Ok(execution) => {
            tracing::info!(%pipeline, %execution, schedule = %cron.schedule, "cron trigger started an execution");
            Outcome::Started(execution)
        }
        Err(error) => {
            tracing::error!(%pipeline, %error, "cron trigger cannot start the pipeline");
            Outcome::Failed(error.to_string())
        }
    };
    // The replica that claimed the occurrence logs it, once.
    let seen = Seen {
        kind: CronKind.name(),
        via: "cron",
        source: format!(
            "{} ({}) due {}",
            cron.schedule,
            cron.time_zone.as_deref().unwrap_or("UTC"),
            due.to_rfc3339()
        ),
        pipeline,
    };
    triggers.log_seen(seen, outcome).await;
}

/// The first occurrence of `schedule` after `since`.
fn next_occurrence(
    schedule: &str,
    zone: Option<&str>,
    since: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let cron: croner::Cron = schedule.parse().ok()?;
    let tz: chrono_tz::Tz = zone.unwrap_or("UTC").parse().ok()?;
    Some(
        cron.find_next_occurrence(&since.with_timezone(&tz), false)
            .ok()?
            .with_timezone(&Utc),
    )
}

/// The first occurrence of `schedule` in `(since, until]`, if any.
pub(crate) fn occurrence_between(
    schedule: &str,
    zone: Option<&str>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    next_occurrence(schedule, zone, since).filter(|next| *next <= until)
}
