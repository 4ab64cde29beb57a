//! The lease clock: a task that marks lost the leases not renewed within
//! the lease TTL and hands their jobs back to their owners.
//!
//! It ticks every [`TICK`], so a dead runner's lease is lost between TTL and
//! TTL + TICK after its last heartbeat (5 to 5.25 s with the defaults). A
//! tick touches the store only when a lease in memory is past its expiry;
//! the store re-checks the expiry itself, so the decision is the database's.

use std::sync::Weak;
use std::time::Duration;

use gantry_store::{Millis, RunnerJobRecord, RunnerRecord};

use super::{Dispatcher, now_millis};
use crate::server::error::RunnerError;
use crate::server::job::JobEvent;

pub(super) const TICK: Duration = Duration::from_millis(250);

/// Runs until the dispatcher is dropped.
pub(super) fn start(dispatcher: &Dispatcher) {
    let weak: Weak<_> = std::sync::Arc::downgrade(&dispatcher.0);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(inner) = weak.upgrade() else { break };
            if let Err(error) = Dispatcher(inner).expire_leases().await {
                tracing::error!(%error, "the lease clock could not expire leases");
            }
        }
    });
}

/// Losing leases: by expiry (the clock's tick) or because their runner was
/// disabled or removed; either way the job goes back to its owner.
impl Dispatcher {
    /// Takes back every lease of a runner that was disabled or removed.
    pub(in crate::server) async fn take_back_leases_of(
        &self,
        runner: &RunnerRecord,
        now: Millis,
        reason: &str,
    ) -> Result<(), RunnerError> {
        let lost = self.0.store.lose_leases_of(&runner.id, now, reason).await?;
        for job in lost {
            self.hand_back(job, &runner.name, reason).await;
        }
        Ok(())
    }

    /// The lease clock's tick: marks lost the leases past their expiry. The
    /// store is written only when a lease in memory has expired.
    pub(in crate::server) async fn expire_leases(&self) -> Result<(), RunnerError> {
        let now = now_millis();
        if !self
            .state()
            .leases
            .values()
            .any(|live| live.expires_at < now)
        {
            return Ok(());
        }
        for job in self.0.store.lose_expired_leases(now).await? {
            let live = job.lease_id.as_ref().and_then(|lease| {
                self.state()
                    .leases
                    .get(lease)
                    .map(|l| (l.runner_id.clone(), l.runner_name.clone()))
            });
            if let Some(runner_id) = live
                .as_ref()
                .map(|(id, _)| id.clone())
                .or_else(|| job.runner_id.clone())
            {
                // Until it heartbeats again, the runner is handed no job.
                self.state().silent.insert(runner_id);
            }
            let runner = live
                .map(|(_, name)| name)
                .or_else(|| job.runner_id.clone())
                .unwrap_or_default();
            let reason = format!(
                "runner {runner} lost: no heartbeat for {:?}",
                Duration::from_millis(self.0.timing.lease_ttl_ms)
            );
            tracing::warn!(runner = %runner, job = %job.id, "{reason}");
            self.hand_back(job, &runner, &reason).await;
        }
        // What the store did not find expired was renewed or ended through
        // another server sharing the database: not this one's to watch.
        self.state().leases.retain(|_, live| live.expires_at >= now);
        Ok(())
    }

    async fn hand_back(&self, job: RunnerJobRecord, runner: &str, reason: &str) {
        if let Some(lease) = &job.lease_id {
            self.state().leases.remove(lease);
        }
        self.0.job_queued.notify_waiters();
        self.send(
            &job.id,
            JobEvent::Lost {
                runner: runner.into(),
                reason: reason.into(),
            },
        )
        .await;
    }
}
