//! `artifact` triggers: when a package lands in an APT repository, start
//! every pipeline whose `artifact` trigger names that repository (and
//! package). The trigger is `{type: "artifact", repository, package,
//! version, architecture}`.
//!
//! Landings are read from the store, not handed over in process: whichever
//! process added the packages (this server through the API, the CLI or a
//! `publishDeb` stage, or `gantry apt --local` on the same data directory)
//! recorded them there, and a server claims each one before firing it, so
//! that servers sharing a database fire it once.

use std::time::Duration;

use gantry_api::now_millis;
use gantry_config::{Pipeline, Trigger};
use gantry_engine::{Engine, RunRequest};
use gantry_store::{AptLanded, AptLandedRecord};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// How often the store is asked for new landings: the trigger's latency.
const POLL: Duration = Duration::from_millis(250);
/// Fired landings are kept this long (for a look at what fired), then
/// forgotten.
const KEEP_FIRED: Duration = Duration::from_secs(24 * 3600);
/// How often fired landings older than [`KEEP_FIRED`] are deleted.
const FORGET_EVERY: Duration = Duration::from_secs(3600);

/// Fires landings until `shutdown`.
pub async fn run(engine: Engine, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut forgotten_at = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match engine.store().unfired_apt_landed(500).await {
            Ok(landed) if !landed.is_empty() => fire(&engine, landed).await,
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot read landed packages"),
        }
        if forgotten_at.elapsed() >= FORGET_EVERY {
            forgotten_at = tokio::time::Instant::now();
            let before = now_millis() - KEEP_FIRED.as_millis() as i64;
            if let Err(error) = engine.store().forget_fired_apt_landed(before).await {
                tracing::warn!(%error, "cannot forget fired landings");
            }
        }
    }
}

async fn fire(engine: &Engine, landed: Vec<AptLandedRecord>) {
    // The pipelines are read once for a batch, however many packages it has.
    let pipelines: Vec<Pipeline> = match engine.store().pipelines().await {
        Ok(records) => records
            .into_iter()
            .filter_map(|r| serde_json::from_value(r.spec).ok())
            .collect(),
        Err(error) => {
            tracing::error!(%error, "cannot read pipelines for artifact triggers");
            return;
        }
    };
    let ids: Vec<i64> = landed.iter().map(|record| record.id).collect();
    let claimed = match engine.store().claim_apt_landed(&ids, now_millis()).await {
        Ok(claimed) => claimed,
        Err(error) => {
            tracing::warn!(%error, "cannot claim landed packages");
            return;
        }
    };
    // What another server claimed first, it fires.
    for record in landed.iter().filter(|r| claimed.contains(&r.id)) {
        fire_one(engine, &pipelines, &record.landed).await;
    }
}

async fn fire_one(engine: &Engine, pipelines: &[Pipeline], landed: &AptLanded) {
    for pipeline in pipelines {
        let fires = pipeline.triggers.iter().any(|t| match t {
            Trigger::Artifact(a) => {
                a.repository == landed.repo && a.package.as_ref().is_none_or(|p| *p == landed.name)
            }
            _ => false,
        });
        if !fires {
            continue;
        }
        let request = RunRequest {
            pipeline: pipeline.name.clone(),
            parameters: Default::default(),
            trigger: json!({
                "type": "artifact",
                "repository": landed.repo,
                "package": landed.name,
                "version": landed.version,
                "architecture": landed.architecture,
            }),
            spec: None,
        };
        match engine.run(request).await {
            Ok(execution) => tracing::info!(
                pipeline = %pipeline.name,
                execution = %execution.id,
                package = %landed.name,
                version = %landed.version,
                "artifact trigger started an execution"
            ),
            Err(error) => {
                tracing::error!(pipeline = %pipeline.name, %error, "artifact trigger failed")
            }
        }
    }
}
