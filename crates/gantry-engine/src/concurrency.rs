//! Per-pipeline `concurrency` (GitLab's `resource_group`): at most `limit` executions of a
//! pipeline run at once. A new one beyond the limit stays `pending` (queued) until one ends, or
//! cancels the oldest running ones (`cancelOlder`).
//!
//! With `queue`, a place is a row of the store's `concurrency_slots`, claimed in a transaction
//! (`Store::claim_concurrency_slot`): the limit holds across servers sharing a database. A
//! queued execution starts when a claim succeeds: after an execution of this engine ends, and
//! every `QUEUE_POLL` while any waits, since another server's execution may have ended.
//!
//! `cancelOlder` can only cancel what this engine drives: there, "running" means driven by
//! this engine, and the limit holds within one server. Admission decisions are taken under one
//! lock (`Inner::admission`), held until the admitted execution's driver is registered, so two
//! executions triggered at once cannot both take the last place.

use std::sync::atomic::Ordering;
use std::time::Duration;

use gantry_config::{OnConflict, Pipeline};
use gantry_store::{ExecutionRecord, SlotClaim, Status};

use crate::engine::Engine;
use crate::error::EngineError;
use crate::state::ExecState;

/// How often queued executions look for a free place another server may have left.
const QUEUE_POLL: Duration = Duration::from_millis(500);

pub(crate) enum Admission {
    Start,
    Queue,
}

/// Whether executions beyond the limit wait (`onConflict: queue`, the default).
pub(crate) fn queues(spec: &serde_json::Value) -> bool {
    serde_json::from_value::<Pipeline>(spec.clone()).is_ok_and(|p| {
        p.concurrency
            .is_some_and(|c| c.on_conflict == OnConflict::Queue)
    })
}

impl Engine {
    /// Decides whether the new execution `id` of `pipeline` starts now; call with the
    /// admission lock held.
    pub(crate) async fn admit(
        &self,
        pipeline: &Pipeline,
        id: &str,
    ) -> Result<Admission, EngineError> {
        let Some(concurrency) = &pipeline.concurrency else {
            return Ok(Admission::Start);
        };
        if concurrency.on_conflict == OnConflict::Queue {
            return match self.claim_slot(pipeline, id).await? {
                SlotClaim::Claimed => Ok(Admission::Start),
                // Another server sharing the database found it queued and started it.
                SlotClaim::Held => Ok(Admission::Queue),
                SlotClaim::Full => {
                    self.queued().store(true, Ordering::SeqCst);
                    tracing::info!(execution = %id, pipeline = %pipeline.name, "execution queued");
                    Ok(Admission::Queue)
                }
            };
        }
        let running = self.running_of(&pipeline.name, id).await?;
        let limit = concurrency.limit.max(1) as usize;
        if running.len() < limit {
            return Ok(Admission::Start);
        }
        match concurrency.on_conflict {
            OnConflict::Queue => Ok(Admission::Queue),
            OnConflict::CancelOlder => {
                for older in &running[..running.len() + 1 - limit] {
                    tracing::info!(execution = %older.id, newer = %id, "canceling an older execution (concurrency)");
                    if let Err(error) = self
                        .cancel(&older.id, "concurrency: a newer execution started")
                        .await
                    {
                        tracing::warn!(execution = %older.id, %error, "cannot cancel the older execution");
                    }
                }
                Ok(Admission::Start)
            }
        }
    }

    /// Starts queued executions, oldest first, while their pipelines have room. Called when an
    /// execution ends and when the engine starts.
    pub(crate) async fn start_queued(&self) {
        if !self.queued().swap(false, Ordering::SeqCst) {
            return;
        }
        let _admission = self.admission().lock().await;
        let active = match self.store().active_executions().await {
            Ok(active) => active,
            Err(error) => {
                tracing::error!(%error, "cannot read queued executions");
                self.queued().store(true, Ordering::SeqCst);
                return;
            }
        };
        let mut queued: Vec<&ExecutionRecord> = active
            .iter()
            .filter(|e| e.status == Status::Pending && !self.is_driven(&e.id) && queues(&e.spec))
            .collect();
        queued.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        for exec in queued {
            let Ok(pipeline) = serde_json::from_value::<Pipeline>(exec.spec.clone()) else {
                continue;
            };
            // Only the server whose claim succeeds starts it: another that sees it queued
            // finds the slot held (`Held`) and leaves it.
            let turn = match self.claim_slot(&pipeline, &exec.id).await {
                Ok(SlotClaim::Claimed) => true,
                Ok(SlotClaim::Held | SlotClaim::Full) => false,
                Err(error) => {
                    tracing::error!(execution = %exec.id, %error, "cannot claim a concurrency slot");
                    false
                }
            };
            if !turn {
                // Still waiting: look again when an execution ends, or at the next poll.
                self.queued().store(true, Ordering::SeqCst);
                continue;
            }
            match ExecState::load(self.store(), &exec.id).await {
                Ok(state) => {
                    tracing::info!(execution = %exec.id, pipeline = %exec.pipeline, "starting a queued execution");
                    self.spawn_driver(self.execution(state), false);
                }
                Err(error) => {
                    tracing::error!(execution = %exec.id, %error, "cannot start a queued execution")
                }
            }
        }
    }

    /// Claims a place for `id` among its pipeline's `limit` slots.
    async fn claim_slot(&self, pipeline: &Pipeline, id: &str) -> Result<SlotClaim, EngineError> {
        let limit = pipeline.concurrency.as_ref().map_or(1, |c| c.limit.max(1));
        Ok(self
            .store()
            .claim_concurrency_slot(&pipeline.name, limit, id, crate::clock::now())
            .await?)
    }

    /// Whether a pending execution found at start-up was admitted before the restart (it
    /// holds its slot) and is to be resumed rather than left queued.
    pub(crate) async fn was_admitted(&self, exec: &ExecutionRecord) -> bool {
        matches!(
            self.store().holds_concurrency_slot(&exec.id).await,
            Ok(true)
        )
    }

    /// While executions are queued, looks for a place every `QUEUE_POLL` (another server's
    /// execution may have ended), until shutdown.
    pub(crate) async fn poll_queue(self) {
        loop {
            tokio::select! {
                _ = self.shutdown_token().cancelled() => return,
                _ = tokio::time::sleep(QUEUE_POLL) => {}
            }
            self.start_queued().await;
        }
    }

    /// The driven (running or waiting) executions of `pipeline` other than `except`, oldest first.
    async fn running_of(
        &self,
        pipeline: &str,
        except: &str,
    ) -> Result<Vec<ExecutionRecord>, EngineError> {
        let mut running: Vec<ExecutionRecord> = self
            .store()
            .active_executions()
            .await?
            .into_iter()
            .filter(|e| e.pipeline == pipeline && e.id != except && self.is_driven(&e.id))
            .collect();
        running.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(running)
    }
}
