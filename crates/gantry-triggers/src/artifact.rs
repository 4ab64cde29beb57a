//! `artifact` triggers: when a package lands in an APT repository, start every pipeline whose
//! `artifact` trigger names that repository (and package). The trigger is
//! `{type: "artifact", repository, package, version, architecture}`.
//!
//! Landings are read from the store, not handed over in process: whichever process added the
//! packages (this server through the API, the CLI or a `publishDeb` stage, or
//! `gantry apt --local` on the same data directory) recorded them there, and a server claims
//! each one before firing it, so that servers sharing a database fire it once.

use std::time::Duration;

use futures::future::BoxFuture;
use gantry_config::{Pipeline, Trigger};
use gantry_store::{AptLanded, AptLandedRecord, Cause, TriggerData};
use tokio_util::sync::CancellationToken;

use crate::Triggers;
use crate::deliveries::{Outcome, Seen};
use crate::kinds::TriggerKind;
use crate::push::now;

/// How often the store is asked for new landings: the trigger's latency.
const POLL: Duration = Duration::from_millis(250);
/// Fired landings are kept this long (for a look at what fired), then forgotten.
const KEEP_FIRED: Duration = Duration::from_secs(24 * 3600);
/// How often fired landings older than [`KEEP_FIRED`] are deleted.
const FORGET_EVERY: Duration = Duration::from_secs(3600);
/// The most landings fired in one round.
const BATCH: i64 = 500;

pub(crate) struct ArtifactKind;

impl TriggerKind for ArtifactKind {
    fn name(&self) -> &'static str {
        "artifact"
    }

    fn describe(&self, trigger: &Trigger) -> String {
        let Trigger::Artifact(a) = trigger else {
            return String::new();
        };
        format!(
            "apt repository {} ({})",
            a.repository,
            a.package.as_deref().unwrap_or("any package")
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

/// Fires landings until `shutdown`.
async fn run(triggers: Triggers, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut forgotten_at = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match triggers.store.unfired_apt_landed(BATCH).await {
            Ok(landed) if !landed.is_empty() => fire(&triggers, landed).await,
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot read landed packages"),
        }
        if forgotten_at.elapsed() >= FORGET_EVERY {
            forgotten_at = tokio::time::Instant::now();
            let before = now() - KEEP_FIRED.as_millis() as i64;
            if let Err(error) = triggers.store.forget_fired_apt_landed(before).await {
                tracing::warn!(%error, "cannot forget fired landings");
            }
        }
    }
}

async fn fire(triggers: &Triggers, landed: Vec<AptLandedRecord>) {
    // The pipelines are looked at once for a batch, however many packages it has.
    let pipelines = triggers.pipelines().await;
    let ids: Vec<i64> = landed.iter().map(|record| record.id).collect();
    let claimed = match triggers.store.claim_apt_landed(&ids, now()).await {
        Ok(claimed) => claimed,
        Err(error) => {
            tracing::warn!(%error, "cannot claim landed packages");
            return;
        }
    };
    // What another server claimed first, it fires.
    for record in landed.iter().filter(|r| claimed.contains(&r.id)) {
        fire_one(triggers, &pipelines, &record.landed).await;
    }
}

/// Starts every pipeline with an `artifact` trigger for the package, and logs what became
/// of it for each pipeline with one on its repository (one for another package is ignored,
/// with why).
async fn fire_one(triggers: &Triggers, pipelines: &[Pipeline], landed: &AptLanded) {
    let source = format!(
        "apt {} {} {} ({})",
        landed.repo, landed.name, landed.version, landed.architecture
    );
    for pipeline in pipelines {
        let on_repository: Vec<&Option<String>> = pipeline
            .triggers
            .iter()
            .filter_map(|t| match t {
                Trigger::Artifact(a) if a.repository == landed.repo => Some(&a.package),
                _ => None,
            })
            .collect();
        if on_repository.is_empty() {
            continue;
        }
        let seen = Seen {
            kind: ArtifactKind.name(),
            via: "artifact",
            source: source.clone(),
            pipeline: &pipeline.name,
        };
        let fires = on_repository
            .iter()
            .any(|package| package.as_ref().is_none_or(|p| *p == landed.name));
        if !fires {
            let wanted: Vec<&str> = on_repository.iter().filter_map(|p| p.as_deref()).collect();
            let why = format!(
                "package {} is not the trigger's {}",
                landed.name,
                wanted.join(", ")
            );
            triggers.log_seen(seen, Outcome::Ignored(why)).await;
            continue;
        }
        let trigger = TriggerData::new(Cause::Artifact {
            repository: landed.repo.clone(),
            package: landed.name.clone(),
            version: landed.version.clone(),
            architecture: landed.architecture.clone(),
        });
        let outcome = match triggers.start_execution(&pipeline.name, trigger).await {
            Ok(execution) => {
                tracing::info!(
                    pipeline = %pipeline.name,
                    %execution,
                    package = %landed.name,
                    version = %landed.version,
                    "artifact trigger started an execution"
                );
                Outcome::Started(execution)
            }
            Err(error) => {
                tracing::error!(pipeline = %pipeline.name, %error, "artifact trigger failed");
                Outcome::Failed(error.to_string())
            }
        };
        triggers.log_seen(seen, outcome).await;
    }
}
