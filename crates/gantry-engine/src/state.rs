//! The state of one execution, shared by its driver and its stage tasks.
//!
//! Every change goes through [`Execution::update`], which applies it in
//! memory, derives the execution's status, writes the changed rows to the
//! store in one transaction and only then broadcasts events. Holding the lock
//! across the write keeps the store and memory in the same order of changes.

use std::sync::Arc;
use std::time::Instant;

use gantry_config::{Pipeline, Stage};
use gantry_store::{ExecutionRecord, StageRecord, Status, Store};
use tokio::sync::{Mutex, MutexGuard, broadcast};

use crate::clock;
use crate::error::EngineError;
use crate::event::Event;

pub(crate) struct ExecState {
    pub(crate) exec: ExecutionRecord,
    /// The spec the execution was created with.
    pub(crate) pipeline: Pipeline,
    /// One record per stage, in the order of `pipeline.stages`.
    pub(crate) stages: Vec<StageRecord>,
}

impl ExecState {
    pub(crate) async fn load(store: &Store, id: &str) -> Result<ExecState, EngineError> {
        let exec = store
            .execution(id)
            .await?
            .ok_or_else(|| EngineError::execution_not_found(id))?;
        let pipeline: Pipeline = serde_json::from_value(exec.spec.clone()).map_err(|e| {
            EngineError::Invalid(format!(
                "execution {id}: stored pipeline spec is unreadable: {e}"
            ))
        })?;
        let mut records = store.stages(id).await?;
        let mut stages = Vec::with_capacity(pipeline.stages.len());
        for spec in &pipeline.stages {
            let at = records
                .iter()
                .position(|r| r.stage_id == spec.id)
                .ok_or_else(|| {
                    EngineError::Invalid(format!(
                        "execution {id}: no stored state for stage {:?}",
                        spec.id
                    ))
                })?;
            stages.push(records.swap_remove(at));
        }
        Ok(ExecState {
            exec,
            pipeline,
            stages,
        })
    }

    pub(crate) fn index(&self, stage_id: &str) -> Option<usize> {
        self.pipeline.stages.iter().position(|s| s.id == stage_id)
    }

    pub(crate) fn spec(&self, index: usize) -> &Stage {
        &self.pipeline.stages[index]
    }

    /// While the execution is not finished: running if a stage runs, waiting
    /// if the only stages left active wait for a person.
    fn live_status(&self) -> Status {
        let active = |status| self.stages.iter().any(|r| r.status == status);
        if active(Status::Running) {
            Status::Running
        } else if active(Status::Waiting) {
            Status::Waiting
        } else {
            Status::Running
        }
    }
}

/// One execution: its id and its state behind the lock.
pub(crate) struct Execution {
    pub(crate) id: String,
    /// Every secret value this execution's logs mask, shared by the logs of
    /// all its stages (see `stage_context.rs`).
    pub(crate) masker: crate::logs::Masker,
    state: Mutex<ExecState>,
    store: Store,
    events: broadcast::Sender<Event>,
}

/// A change to apply; returns what the caller wants to know about it.
pub(crate) struct Change<'a> {
    pub(crate) state: &'a mut ExecState,
    touched: Vec<usize>,
}

impl Change<'_> {
    /// The stage record to change; it will be written.
    pub(crate) fn stage(&mut self, index: usize) -> &mut StageRecord {
        if !self.touched.contains(&index) {
            self.touched.push(index);
        }
        &mut self.state.stages[index]
    }
}

impl Execution {
    pub(crate) fn new(
        state: ExecState,
        store: Store,
        events: broadcast::Sender<Event>,
    ) -> Arc<Execution> {
        Arc::new(Execution {
            id: state.exec.id.clone(),
            masker: crate::logs::Masker::default(),
            state: Mutex::new(state),
            store,
            events,
        })
    }

    /// Read access (for decisions that do not change anything).
    pub(crate) async fn read(&self) -> MutexGuard<'_, ExecState> {
        self.state.lock().await
    }

    /// Applies `f`, derives the execution status (unless `f` finished the
    /// execution), persists every touched row and the execution row in one
    /// transaction, then broadcasts the status changes.
    pub(crate) async fn update<T>(
        &self,
        f: impl FnOnce(&mut Change<'_>) -> T,
    ) -> Result<T, EngineError> {
        let mut guard = self.state.lock().await;
        let before_exec = guard.exec.status;
        let before: Vec<Status> = guard.stages.iter().map(|r| r.status).collect();

        let mut change = Change {
            state: &mut guard,
            touched: Vec::new(),
        };
        let result = f(&mut change);
        let touched = std::mem::take(&mut change.touched);
        let state = &mut *guard;
        if !state.exec.status.is_terminal() {
            state.exec.status = state.live_status();
            if state.exec.started_at.is_none() {
                state.exec.started_at = Some(clock::now());
            }
        }

        let rows: Vec<StageRecord> = touched.iter().map(|&i| state.stages[i].clone()).collect();
        let started = Instant::now();
        self.store
            .update_stages_and_execution(&rows, &state.exec)
            .await?;
        metrics::histogram!("gantry_transition_seconds").record(started.elapsed().as_secs_f64());

        let at = clock::now();
        for &i in &touched {
            let record = &state.stages[i];
            if record.status != before[i] {
                if record.status.is_terminal() {
                    record_stage_metrics(record, state.pipeline.stages[i].kind.type_name());
                }
                let _ = self.events.send(Event::Stage {
                    execution_id: self.id.clone(),
                    stage_id: record.stage_id.clone(),
                    status: record.status,
                    attempt: record.attempt,
                    at,
                });
            }
        }
        if state.exec.status != before_exec {
            if state.exec.status.is_terminal() {
                metrics::counter!("gantry_executions_total", "status" => state.exec.status.as_str()).increment(1);
            }
            let _ = self.events.send(Event::Execution {
                execution_id: self.id.clone(),
                pipeline: state.exec.pipeline.clone(),
                status: state.exec.status,
                at,
            });
        }
        Ok(result)
    }
}

/// Counts finished stages by status and type, and how long they ran.
fn record_stage_metrics(record: &StageRecord, kind: &'static str) {
    let status = record.status.as_str();
    metrics::counter!("gantry_stages_total", "status" => status, "type" => kind).increment(1);
    if let (Some(start), Some(end)) = (record.started_at, record.ended_at) {
        let seconds = (end - start).max(0) as f64 / 1000.0;
        metrics::histogram!("gantry_stage_duration_seconds", "type" => kind, "status" => status)
            .record(seconds);
    }
}
