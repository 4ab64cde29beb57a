//! Per-pipeline `concurrency` (GitLab's `resource_group`): at most `limit` executions of a
//! pipeline run at once. A new one beyond the limit stays `pending` (queued) until one ends, or
//! cancels the oldest running ones (`cancelOlder`).
//!
//! "Running" here means driven by this engine. Admission decisions are taken under one lock
//! (`Inner::admission`), held until the admitted execution's driver is registered, so two
//! executions triggered at once cannot both take the last place.

use std::sync::atomic::Ordering;

use gantry_config::{OnConflict, Pipeline};
use gantry_store::{ExecutionRecord, Status};

use crate::engine::Engine;
use crate::error::EngineError;
use crate::state::ExecState;

pub(crate) enum Admission {
    Start,
    Queue,
}

/// Whether the pipeline's spec limits its concurrency.
pub(crate) fn limited(spec: &serde_json::Value) -> bool {
    spec.get("concurrency").is_some_and(|c| !c.is_null())
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
        let running = self.running_of(&pipeline.name, id).await?;
        let limit = concurrency.limit.max(1) as usize;
        if running.len() < limit {
            return Ok(Admission::Start);
        }
        match concurrency.on_conflict {
            OnConflict::Queue => {
                self.inner.queued.store(true, Ordering::SeqCst);
                tracing::info!(execution = %id, pipeline = %pipeline.name, running = running.len(), "execution queued");
                Ok(Admission::Queue)
            }
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
        if !self.inner.queued.swap(false, Ordering::SeqCst) {
            return;
        }
        let _admission = self.inner.admission.lock().await;
        let active = match self.inner.store.active_executions().await {
            Ok(active) => active,
            Err(error) => {
                tracing::error!(%error, "cannot read queued executions");
                self.inner.queued.store(true, Ordering::SeqCst);
                return;
            }
        };
        let mut queued: Vec<&ExecutionRecord> = active
            .iter()
            .filter(|e| e.status == Status::Pending && !self.is_driven(&e.id) && limited(&e.spec))
            .collect();
        queued.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        for exec in queued {
            let Ok(pipeline) = serde_json::from_value::<Pipeline>(exec.spec.clone()) else {
                continue;
            };
            let limit = pipeline.concurrency.as_ref().map_or(1, |c| c.limit.max(1)) as usize;
            let running = active
                .iter()
                .filter(|e| e.pipeline == exec.pipeline && self.is_driven(&e.id))
                .count();
            if running >= limit {
                // Still waiting: look again when the next execution ends.
                self.inner.queued.store(true, Ordering::SeqCst);
                continue;
            }
            match ExecState::load(&self.inner.store, &exec.id).await {
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

    /// The driven (running or waiting) executions of `pipeline` other than `except`, oldest first.
    async fn running_of(
        &self,
        pipeline: &str,
        except: &str,
    ) -> Result<Vec<ExecutionRecord>, EngineError> {
        let mut running: Vec<ExecutionRecord> = self
            .inner
            .store
            .active_executions()
            .await?
            .into_iter()
            .filter(|e| e.pipeline == pipeline && e.id != except && self.is_driven(&e.id))
            .collect();
        running.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(running)
    }
}
