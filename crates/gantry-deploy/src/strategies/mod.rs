//! Deploy strategies: how a new server group replaces the older ones. Each
//! is one file implementing [`Strategy`], whose methods are the phases of a
//! deploy, called in order by `DeployController::deploy`:
//!
//! 1. `initial_size`: the size the new group is created with;
//! 2. `deploy`: bring the new group to health and move traffic to it;
//! 3. `clean_up`: what happens to the older groups afterwards;
//! 4. `abort` (only on failure): undo, leaving older groups as they were.
//!
//! Every phase is idempotent: a deploy resumed after a server restart runs
//! them again and they converge on the same state. A strategy with steps
//! records the step it begins and the deadline of a pause it begins in the
//! rollout's [`Journal`] before acting, so a resumed rollout goes on from
//! the step it reached (run again, idempotently) instead of its first, and
//! its pauses keep their deadlines.
//!
//! The list of strategies is `gantry_config::with_deploy_strategies!`, one
//! line per strategy naming its file here; [`for_spec`] is generated from
//! it, and each file builds its strategy from the checked `deploy` stage
//! ([`FromSpec`]), so the engine translates nothing.

mod canary;
mod highlander;
mod journal;
mod none;
mod redblack;
mod rolling;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use gantry_config::{DeployStage, DeployStrategy};
use tokio_util::sync::CancellationToken;

pub use canary::{CanaryOptions, CanaryStep};
pub use journal::{Journal, RolloutRecord};
pub use redblack::RedBlackOptions;
pub use rolling::{Batch, RollingOptions};

use crate::controller::{DeployController, DeployRequest, DisableConfig, FULL_WEIGHT, Progress};
use crate::error::DeployError;
use crate::providers::ServerGroupUpdate;

/// What a strategy works with during one deploy.
pub struct Rollout<'a> {
    pub controller: &'a DeployController,
    pub request: &'a DeployRequest,
    /// The new server group.
    pub group: String,
    pub cancel: &'a CancellationToken,
    /// Who promotes or judges a rollout that waits for people.
    pub people: &'a dyn People,
    /// Where the rollout records how far it got.
    pub journal: &'a dyn Journal,
    /// What the journal holds (read when the deploy started).
    pub(crate) record: std::sync::Mutex<RolloutRecord>,
    pub progress: Progress<'a>,
}

/// The people a rollout may wait for between its steps. The engine's deploy
/// stage answers for them (`gantry promote` promotes, `gantry approve` and
/// `gantry reject` judge) and records their decisions durably, so each
/// method answers at once for a decision taken before a restart.
pub trait People: Send + Sync {
    /// Resolves when a person promotes the rollout. `why` says what the
    /// promotion lets go on (`a promotion of canary shop-web-v001 …`), for
    /// the people asked.
    fn promotion<'a>(&'a self, why: &'a str) -> BoxFuture<'a, ()>;

    /// The judgment on the step that put the new group at `percent`:
    /// `Ok` goes on, [`DeployError::Rejected`] stops and rolls back. `why`
    /// says what is judged (`a judgment before rolling step 2 of 3 …`).
    fn judgment<'a>(&'a self, percent: u32, why: &'a str)
    -> BoxFuture<'a, Result<(), DeployError>>;
}

pub trait Strategy: Send + Sync + std::fmt::Debug {
    fn initial_size(&self, target: u32) -> u32 {
        target
    }

    fn deploy<'a>(&'a self, rollout: &'a Rollout<'a>) -> BoxFuture<'a, Result<(), DeployError>>;

    fn clean_up<'a>(&'a self, _rollout: &'a Rollout<'a>) -> BoxFuture<'a, Result<(), DeployError>> {
        async { Ok(()) }.boxed()
    }

    /// The default: the new group goes, the previous groups are enabled at
    /// full weight again (they were never scaled down before success).
    fn abort<'a>(&'a self, rollout: &'a Rollout<'a>) -> BoxFuture<'a, ()> {
        abort_to_previous(rollout)
    }
}

/// What [`Strategy::abort`] does by default: the previous groups enabled
/// again, the new group destroyed.
pub(crate) fn abort_to_previous<'a>(rollout: &'a Rollout<'a>) -> BoxFuture<'a, ()> {
    async move {
        for name in &rollout.request.previous {
            let _ = rollout.controller.enable(name).await;
        }
        if let Err(error) = rollout.controller.destroy(&rollout.group).await {
            (rollout.progress)(format!(
                "cannot remove server group {}: {error}",
                rollout.group
            ));
        } else {
            (rollout.progress)(format!("server group {} removed", rollout.group));
        }
    }
    .boxed()
}

/// A registered strategy: built from the checked `deploy` stage, with the
/// defaults the config documents and nothing parsed again.
pub(crate) trait FromSpec: Strategy + Sized + 'static {
    fn from_spec(spec: &DeployStage) -> Self;
}

macro_rules! define_for_spec {
    ($($variant:ident = $name:literal => $strategy:path,)*) => {
        /// The strategy `spec` chose (`strategy:`), its options read from the spec.
        pub fn for_spec(spec: &DeployStage) -> Arc<dyn Strategy> {
            match spec.chosen_strategy() {
                $(DeployStrategy::$variant => Arc::new(<$strategy as FromSpec>::from_spec(spec)),)*
            }
        }
    };
}

gantry_config::with_deploy_strategies!(define_for_spec);

impl Rollout<'_> {
    pub async fn update(&self, name: &str, update: ServerGroupUpdate) -> Result<(), DeployError> {
        self.controller.update(name, update).await.map(|_| ())
    }

    pub async fn wait_healthy(&self, count: u32) -> Result<(), DeployError> {
        (self.progress)(format!(
            "waiting for {count} healthy instances of {}",
            self.group
        ));
        self.controller
            .wait_healthy(
                &self.group,
                count as usize,
                self.request.health_timeout,
                self.cancel,
            )
            .await?;
        (self.progress)(format!("{} is healthy", self.group));
        Ok(())
    }

    /// Enables the new group at `weight` (the controller's
    /// [`FULL_WEIGHT`](crate::controller::FULL_WEIGHT) for all of its share).
    pub async fn enable_new(&self, weight: u32) -> Result<(), DeployError> {
        self.controller
            .set_weight(&self.group, weight)
            .await
            .map(|_| ())
    }

    /// Splits traffic: the new group at `weight`, the previous groups at
    /// the rest.
    pub async fn shift_traffic(&self, weight: u32) -> Result<(), DeployError> {
        let weight = weight.min(FULL_WEIGHT);
        self.enable_new(weight).await?;
        for name in &self.request.previous {
            self.controller.reweigh(name, FULL_WEIGHT - weight).await?;
        }
        Ok(())
    }

    /// Disables the groups that were enabled before this deploy.
    pub async fn disable_previous(&self) -> Result<(), DeployError> {
        for name in &self.request.previous {
            // The new group is enabled by now: the cluster keeps serving.
            match self
                .controller
                .disable(name, DisableConfig { force: true })
                .await
            {
                Ok(_) => (self.progress)(format!("{name} disabled")),
                // Destroyed by this rollout's clean-up before a restart
                // resumed it: nothing left to disable.
                Err(DeployError::NotFound(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Shrinks the groups that were enabled before this deploy so that
    /// together they keep at most `capacity` instances (the first listed
    /// keeping theirs longest).
    pub async fn shrink_previous(&self, capacity: u32) -> Result<(), DeployError> {
        let snapshot = self.controller.snapshot().await?;
        let mut left = capacity;
        for name in &self.request.previous {
            let Some(size) = snapshot
                .server_groups
                .iter()
                .find(|g| g.group.name == *name)
                .map(|g| g.group.size)
            else {
                continue;
            };
            let keep = size.min(left);
            left -= keep;
            if keep < size {
                self.update(
                    name,
                    ServerGroupUpdate {
                        size: Some(keep),
                        ..Default::default()
                    },
                )
                .await?;
                (self.progress)(format!("{name} down to {keep} instances"));
            }
        }
        Ok(())
    }

    /// Gives the groups enabled before this deploy the deploy's size back
    /// where they had less (after [`Rollout::shrink_previous`]), so that an
    /// aborted rollout leaves the cluster at full capacity.
    pub async fn restore_previous(&self) -> Result<(), DeployError> {
        let snapshot = self.controller.snapshot().await?;
        for name in &self.request.previous {
            let shrunk = snapshot
                .server_groups
                .iter()
                .any(|g| g.group.name == *name && g.group.size < self.request.size);
            if shrunk {
                self.update(
                    name,
                    ServerGroupUpdate {
                        size: Some(self.request.size),
                        ..Default::default()
                    },
                )
                .await?;
                (self.progress)(format!("{name} back to {} instances", self.request.size));
            }
        }
        Ok(())
    }

    /// Scales the groups that were enabled before this deploy to 0 (they
    /// are kept, disabled and empty, for a rollback).
    pub async fn scale_down_previous(&self) -> Result<(), DeployError> {
        for name in &self.request.previous {
            let scaled = self
                .update(
                    name,
                    ServerGroupUpdate {
                        size: Some(0),
                        ..Default::default()
                    },
                )
                .await;
            match scaled {
                Ok(()) => (self.progress)(format!("{name} scaled down to 0")),
                // Destroyed before a restart resumed the rollout.
                Err(DeployError::NotFound(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// The step reached before a restart (0 on a first attempt): the
    /// strategy skips the steps before it.
    pub fn resumed_step(&self) -> usize {
        self.lock_record().step
    }

    /// Records that step `index` begins, before anything of it is done.
    pub async fn begin_step(&self, index: usize) -> Result<(), DeployError> {
        let record = {
            let mut record = self.lock_record();
            if record.step == index {
                return Ok(());
            }
            record.step = index;
            record.clone()
        };
        self.journal.save(record).await
    }

    /// Records an analysis that ended, before the rollout acts on its
    /// verdict. Analysing again the same step after a restart replaces its
    /// record.
    pub async fn record_analysis(
        &self,
        analysis: gantry_wire::deploy::CanaryAnalysis,
    ) -> Result<(), DeployError> {
        let record = {
            let mut record = self.lock_record();
            record.analyses.retain(|a| a.step != analysis.step);
            record.analyses.push(analysis);
            record.clone()
        };
        self.journal.save(record).await
    }

    /// Pauses until `duration` after the pause called `name` first began:
    /// its deadline is recorded before the wait, so a rollout resumed after
    /// a restart waits only for what is left of it.
    pub async fn pause(&self, name: &str, duration: Duration) -> Result<(), DeployError> {
        if duration.is_zero() {
            return Ok(());
        }
        let (deadline, record) = {
            let mut record = self.lock_record();
            let (deadline, new) = record.deadline(name, duration);
            (deadline, new.then(|| record.clone()))
        };
        if let Some(record) = record {
            self.journal.save(record).await?;
        }
        let left = journal::until(deadline);
        if left < duration {
            (self.progress)(format!(
                "{name}: {:.1}s left of {:.1}s",
                left.as_secs_f64(),
                duration.as_secs_f64()
            ));
        }
        tokio::select! {
            _ = self.cancel.cancelled() => Err(DeployError::Canceled),
            _ = tokio::time::sleep(left) => Ok(()),
        }
    }

    fn lock_record(&self) -> std::sync::MutexGuard<'_, RolloutRecord> {
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until a person promotes the rollout; `why` says what for.
    pub async fn wait_for_promotion(&self, why: &str) -> Result<(), DeployError> {
        let why = format!("{why}{}", self.first_deploy_note());
        (self.progress)(format!("{} waits for a person: {why}", self.group));
        tokio::select! {
            _ = self.cancel.cancelled() => Err(DeployError::Canceled),
            _ = self.people.promotion(&why) => {
                (self.progress)("promoted".to_owned());
                Ok(())
            }
        }
    }

    /// Waits for a person's judgment on the step at `percent`; `why` says
    /// what is judged.
    pub async fn wait_for_judgment(&self, percent: u32, why: &str) -> Result<(), DeployError> {
        let why = format!("{why}{}", self.first_deploy_note());
        tokio::select! {
            _ = self.cancel.cancelled() => Err(DeployError::Canceled),
            decision = self.people.judgment(percent, &why) => decision,
        }
    }

    /// On a cluster's first deploy no older group shares the traffic: the
    /// people asked should know the new group serves all of it meanwhile.
    fn first_deploy_note(&self) -> String {
        if self.request.previous.is_empty() {
            format!(
                " (the first deploy of cluster {}: {} serves all of its traffic meanwhile)",
                self.request.cluster, self.group
            )
        } else {
            String::new()
        }
    }

    /// Live groups of the cluster older than the new one, oldest first.
    pub async fn older_groups(&self) -> Result<Vec<String>, DeployError> {
        let snapshot = self.controller.snapshot().await?;
        let version = snapshot
            .group(&self.group)
            .map(|g| g.group.version)
            .unwrap_or(u32::MAX);
        Ok(snapshot
            .cluster(&self.request.cluster)
            .iter()
            .filter(|g| g.group.version < version)
            .map(|g| g.group.name.clone())
            .collect())
    }
}
