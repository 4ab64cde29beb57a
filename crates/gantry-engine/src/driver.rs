//! One execution's driver: starts the stages whose dependencies are done,
//! records what they end with, and decides when the execution is over.
//!
//! Nothing the driver decides lives only in its memory: whether the execution
//! is being canceled or failing is read back from the persisted records, so a
//! driver started after a crash takes the same decisions.
//!
//! `signals.rs` finds the stage a judgment or a skip is for, `failure_options.rs` applies
//! Spinnaker's failure options to the records, `restart.rs` reopens a stage and what follows it.

mod failure_options;
mod restart;
mod signals;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gantry_store::Status;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::expressions;
use crate::stage_context::{self, StageContext};
use crate::stage_types::{self, StageFailure, StageResult};
use crate::state::{Change, ExecState, Execution};
use failure_options::{final_status, halt, ready_stages};
pub(crate) use restart::restart;
pub use signals::StageSignal;
use signals::signal_target;

pub type Reply = oneshot::Sender<Result<(), EngineError>>;

/// What the engine asks of a driver.
pub(crate) enum Command {
    Cancel {
        user: String,
        reply: Reply,
    },
    Signal {
        stage: Option<String>,
        signal: StageSignal,
        reply: Reply,
    },
    Restart {
        stage: String,
        user: String,
        reply: Reply,
    },
}

struct Running {
    cancel: CancellationToken,
    signals: mpsc::Sender<(StageSignal, Reply)>,
}

struct Driver {
    engine: Engine,
    execution: Arc<Execution>,
    tasks: JoinSet<StageResult>,
    /// Running stage tasks by stage index.
    running: HashMap<usize, Running>,
    /// Which stage each task runs, to attribute a panic.
    task_stage: HashMap<tokio::task::Id, usize>,
}

pub(crate) async fn drive(
    engine: Engine,
    execution: Arc<Execution>,
    mut commands: mpsc::Receiver<Command>,
    resumed: bool,
) {
    let id = execution.id.clone();
    let shutdown = engine.shutdown_token().clone();
    let (mut execution, mut resumed, mut backoff) =
        (execution, resumed, Duration::from_millis(250));
    loop {
        let mut driver = Driver {
            engine: engine.clone(),
            execution,
            tasks: JoinSet::new(),
            running: HashMap::new(),
            task_stage: HashMap::new(),
        };
        let result = tokio::select! {
            result = driver.run(&mut commands, resumed) => result,
            // Dropping the driver aborts its stage tasks; their records stay as
            // they are and the next start resumes them.
            _ = shutdown.cancelled() => return,
        };
        let Err(error) = result else { return };
        // A write failed (the database went away, a disk filled up): what is
        // in memory may be ahead of the store. Drop it all, wait, and resume
        // from what was persisted, as after a restart.
        tracing::error!(execution = %id, %error, retry_in = ?backoff, "execution driver failed; resuming from the store");
        drop(driver);
        execution = loop {
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.cancelled() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
            match ExecState::load(engine.store(), &id).await {
                Ok(state) => {
                    break engine.execution(state);
                }
                Err(error) => tracing::error!(execution = %id, %error, "cannot reload execution"),
            }
        };
        resumed = true;
    }
}

impl Driver {
    async fn run(
        &mut self,
        commands: &mut mpsc::Receiver<Command>,
        resumed: bool,
    ) -> Result<(), EngineError> {
        // Persists `running` and `startedAt` for a new execution.
        self.execution.update(|_| ()).await?;
        if let Err(reason) = crate::workspace::prepare(&self.engine, &self.execution).await {
            return self.fail_before_start(reason.to_string(), commands).await;
        }
        if resumed {
            self.resume_active_stages().await?;
        }
        loop {
            if self.halt().await.is_none() {
                self.start_ready_stages().await?;
            }
            if self.running.is_empty() {
                self.finish().await?;
                if self.engine.retire_driver(&self.execution.id, commands) {
                    return Ok(());
                }
            }
            tokio::select! {
                Some(command) = commands.recv() => self.handle(command).await?,
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    let (index, outcome) = match joined {
                        Ok((task, outcome)) => (self.task_stage.remove(&task), outcome),
                        Err(error) => (self.task_stage.remove(&error.id()), Err(StageFailure::Failed(panic_message(error)))),
                    };
                    if let Some(index) = index {
                        self.running.remove(&index);
                        self.complete(index, outcome).await?;
                    }
                }
            }
        }
    }

    /// Ends an execution that could not start (its workspace could not be prepared).
    async fn fail_before_start(
        &mut self,
        reason: String,
        commands: &mut mpsc::Receiver<Command>,
    ) -> Result<(), EngineError> {
        tracing::warn!(execution = %self.execution.id, %reason, "execution cannot start");
        let now = clock::now();
        self.execution
            .update(|c| {
                let state = &mut *c.state;
                state.exec.status = Status::Failed;
                state.exec.error = Some(reason);
                state.exec.ended_at = Some(now);
            })
            .await?;
        // Commands that arrived meanwhile find a finished execution.
        while !self.engine.retire_driver(&self.execution.id, commands) {
            if let Some(command) = commands.recv().await {
                self.handle(command).await?;
            }
        }
        Ok(())
    }

    /// Stages that were running or waiting when the previous server stopped.
    async fn resume_active_stages(&mut self) -> Result<(), EngineError> {
        let active: Vec<usize> = {
            let state = self.execution.read().await;
            (0..state.stages.len())
                .filter(|&i| matches!(state.stages[i].status, Status::Running | Status::Waiting))
                .collect()
        };
        for index in active {
            tracing::info!(execution = %self.execution.id, stage = index, "resuming stage");
            self.spawn(index, true).await;
        }
        Ok(())
    }

    /// Why the execution is stopping, if it is: canceled by a person, or a
    /// stage failed that fails the pipeline.
    async fn halt(&self) -> Option<(Status, String)> {
        let state = self.execution.read().await;
        halt(&state)
    }

    async fn start_ready_stages(&mut self) -> Result<(), EngineError> {
        // Skipping a stage can make others ready: go round until nothing changes.
        loop {
            let ready = {
                let state = self.execution.read().await;
                ready_stages(&state)
            };
            if ready.is_empty() {
                return Ok(());
            }
            for index in ready {
                self.start(index).await?;
            }
        }
    }

    async fn start(&mut self, index: usize) -> Result<(), EngineError> {
        let condition = {
            let state = self.execution.read().await;
            state
                .spec(index)
                .condition
                .clone()
                .map(|c| (c, expressions::context(&state, self.engine.secrets())))
        };
        if let Some((condition, context)) = condition {
            match expressions::condition(&condition, &context) {
                Ok(true) => {}
                Ok(false) => {
                    let now = clock::now();
                    return self
                        .execution
                        .update(|c| {
                            let record = c.stage(index);
                            record.status = Status::Skipped;
                            record.started_at = Some(now);
                            record.ended_at = Some(now);
                            record.error = None;
                        })
                        .await;
                }
                Err(error) => {
                    self.execution.update(|c| begin_attempt(c, index)).await?;
                    return self
                        .complete(
                            index,
                            Err(StageFailure::Failed(format!(
                                "condition `if: {condition}`: {error}"
                            ))),
                        )
                        .await;
                }
            }
        }
        self.execution.update(|c| begin_attempt(c, index)).await?;
        self.spawn(index, false).await;
        Ok(())
    }

    async fn spawn(&mut self, index: usize, resumed: bool) {
        let cancel = CancellationToken::new();
        let (signals, signal_rx) = mpsc::channel(4);
        let ctx = StageContext::new(
            &self.engine,
            &self.execution,
            index,
            resumed,
            cancel.clone(),
            signal_rx,
        )
        .await;
        let task = self.tasks.spawn(stage_types::execute(ctx));
        self.task_stage.insert(task.id(), index);
        self.running.insert(index, Running { cancel, signals });
    }

    /// Records how a stage ended, and what that means for the execution.
    async fn complete(&mut self, index: usize, outcome: StageResult) -> Result<(), EngineError> {
        let (spec, attempt, stage_id, started_at) = {
            let state = self.execution.read().await;
            (
                state.spec(index).clone(),
                state.stages[index].attempt,
                state.stages[index].stage_id.clone(),
                state.stages[index].started_at,
            )
        };
        let halting = self.halt().await.is_some();
        if let Err(StageFailure::Failed(error)) = &outcome
            && attempt <= i64::from(spec.retries)
            && !halting
        {
            let log = stage_context::stage_log(
                &self.engine,
                &self.execution.id,
                &stage_id,
                &self.execution,
            )
            .await;
            log.system(&format!(
                "attempt {attempt} failed: {error}; retrying ({} left)",
                i64::from(spec.retries) - attempt + 1
            ))
            .await;
            // The attempt's history keeps how it ended; the stage row goes
            // straight on to the next one.
            self.engine
                .store()
                .end_stage_attempt(&gantry_store::StageAttemptRecord {
                    execution_id: self.execution.id.clone(),
                    stage_id: stage_id.clone(),
                    attempt,
                    status: Status::Failed,
                    started_at,
                    ended_at: Some(clock::now()),
                    error: Some(error.clone()),
                })
                .await?;
            self.engine
                .store()
                .clear_steps(&self.execution.id, &stage_id)
                .await?;
            self.execution.update(|c| begin_attempt(c, index)).await?;
            self.spawn(index, false).await;
            return Ok(());
        }

        // The stage's last lines are stored before it is seen ended: a reader
        // of its log after its end finds them all.
        self.engine.logs().flush().await;
        let now = clock::now();
        self.execution
            .update(|c| {
                let record = c.stage(index);
                record.ended_at = Some(now);
                match outcome {
                    Ok(outputs) => {
                        record.status = Status::Succeeded;
                        merge_outputs(&mut record.outputs, outputs);
                    }
                    Err(StageFailure::Failed(error)) => {
                        record.status = Status::Failed;
                        record.error = Some(error);
                    }
                    Err(StageFailure::Canceled(reason)) => {
                        record.status = Status::Canceled;
                        record.error = Some(reason);
                    }
                }
            })
            .await?;
        if !halting && let Some((_, reason)) = self.halt().await {
            // This stage fails the pipeline: stop the other branches.
            for running in self.running.values() {
                running.cancel.cancel();
            }
            tracing::info!(execution = %self.execution.id, stage = %stage_id, %reason, "execution halting");
        }
        Ok(())
    }

    /// Persists the final status once nothing runs any more.
    async fn finish(&mut self) -> Result<(), EngineError> {
        // As for a stage: every line is stored before the execution ends.
        self.engine.logs().flush().await;
        let now = clock::now();
        self.execution
            .update(|c| {
                let state = &mut *c.state;
                if state.exec.status.is_terminal() {
                    return;
                }
                let (status, error) = final_status(state);
                state.exec.status = status;
                state.exec.error = error;
                state.exec.ended_at = Some(now);
            })
            .await?;
        let state = self.execution.read().await;
        tracing::info!(execution = %state.exec.id, status = %state.exec.status, "execution finished");
        Ok(())
    }

    async fn handle(&mut self, command: Command) -> Result<(), EngineError> {
        match command {
            Command::Cancel { user, reply } => {
                let result = self.cancel(&user).await;
                let _ = reply.send(result);
            }
            Command::Signal {
                stage,
                signal,
                reply,
            } => {
                let target = {
                    let state = self.execution.read().await;
                    signal_target(&state, stage.as_deref(), &signal)
                };
                match target {
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                    Ok(index) => match self.running.get(&index) {
                        // The stage task answers once the decision is persisted.
                        Some(running) => {
                            if let Err(mpsc::error::SendError((_, reply))) =
                                running.signals.send((signal, reply)).await
                            {
                                let _ = reply.send(Err(EngineError::Invalid(
                                    "the stage has just ended".into(),
                                )));
                            }
                        }
                        None => {
                            let _ = reply
                                .send(Err(EngineError::Invalid("the stage is not running".into())));
                        }
                    },
                }
            }
            Command::Restart { stage, user, reply } => {
                let result = restart(&self.execution, self.engine.store(), &stage).await;
                if result.is_ok() {
                    tracing::info!(execution = %self.execution.id, stage = %stage, user = %user, "stage restarted");
                }
                let _ = reply.send(result);
            }
        }
        Ok(())
    }

    async fn cancel(&mut self, user: &str) -> Result<(), EngineError> {
        let user = user.to_owned();
        let finished = self
            .execution
            .update(|c| {
                let exec = &mut c.state.exec;
                if exec.status.is_terminal() {
                    return Some(exec.status);
                }
                exec.canceled_by.get_or_insert(user);
                None
            })
            .await?;
        if let Some(status) = finished {
            return Err(EngineError::Invalid(format!(
                "execution {} has already {status}",
                self.execution.id
            )));
        }
        for running in self.running.values() {
            running.cancel.cancel();
        }
        Ok(())
    }
}

/// Starts attempt N+1 of a stage: fresh outputs, state and timestamps.
fn begin_attempt(c: &mut Change<'_>, index: usize) {
    let record = c.stage(index);
    record.attempt += 1;
    record.status = Status::Running;
    record.started_at = Some(clock::now());
    record.ended_at = None;
    record.error = None;
    record.outputs = serde_json::json!({});
    record.state = serde_json::json!({});
}

fn merge_outputs(
    into: &mut serde_json::Value,
    outputs: serde_json::Map<String, serde_json::Value>,
) {
    if !into.is_object() {
        *into = serde_json::json!({});
    }
    if let Some(map) = into.as_object_mut() {
        map.extend(outputs);
    }
}

fn panic_message(error: tokio::task::JoinError) -> String {
    if error.is_cancelled() {
        return "stage task was aborted".to_owned();
    }
    let payload = error.into_panic();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    format!("stage panicked: {message}")
}

#[cfg(test)]
mod tests;
