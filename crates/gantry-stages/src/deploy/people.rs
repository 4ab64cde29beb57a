//! The people a deploy waits for: a promotion (`gantry promote`, or `gantry skip`) and the
//! judgments between the steps of a rolling deploy (`gantry approve`,
//! `gantry reject`). A judgment is checked and recorded exactly as a
//! `manualJudgment` stage's is, in the stage's durable state keyed by its
//! step, before the person is answered: a deploy resumed after a restart
//! runs its steps again and finds the judgments already taken. The step
//! waited for is recorded too (`awaiting`), so that a person may judge a
//! resumed deploy while it is still converging back to that step.

use std::sync::Mutex;

use futures::future::{BoxFuture, FutureExt};
use gantry_config::ManualJudgmentStage;
use gantry_deploy::DeployError;
use gantry_deploy::strategies::People;
use gantry_store::Status;
use serde_json::{Map, Value};
use tokio::sync::{Notify, oneshot};

use super::super::StageContext;
use super::super::manual_judgment;
use super::journal::edit_state;
use gantry_engine::stage_kit::EngineError;
use gantry_engine::stage_kit::Judgment;
use gantry_engine::stage_kit::{Reply, StageSignal};

pub(super) struct StagePeople<'a> {
    ctx: &'a StageContext,
    /// `judgmentBetweenSteps` of the stage: its instructions and options.
    judgment: ManualJudgmentStage,
    promote: Notify,
    /// The judgment the rollout waits for now, if any.
    pending: Mutex<Option<Pending>>,
}

struct Pending {
    percent: u32,
    decided: oneshot::Sender<Value>,
}

impl<'a> StagePeople<'a> {
    pub(super) fn new(ctx: &'a StageContext, judgment: Option<&ManualJudgmentStage>) -> Self {
        StagePeople {
            ctx,
            judgment: judgment.cloned().unwrap_or(ManualJudgmentStage {
                instructions: None,
                options: Vec::new(),
            }),
            promote: Notify::new(),
            pending: Mutex::new(None),
        }
    }

    /// Answers a person's signal to the running deploy stage.
    pub(super) async fn take(&self, signal: StageSignal, reply: Reply) {
        match signal {
            StageSignal::Skip => {
                self.ctx.log.system("promoted by a person").await;
                self.promote.notify_one();
                let _ = reply.send(Ok(()));
            }
            StageSignal::Judgment(judgment) => self.judge(judgment, reply).await,
        }
    }

    async fn judge(&self, judgment: Judgment, reply: Reply) {
        let pending = self.lock().take();
        let awaiting = self
            .ctx
            .state()
            .await
            .get("awaiting")
            .and_then(Value::as_u64)
            .map(|p| p as u32);
        let Some(percent) = pending.as_ref().map(|p| p.percent).or(awaiting) else {
            let _ = reply.send(Err(EngineError::Invalid(format!(
                "deploy stage {} is not waiting for a judgment",
                self.ctx.stage_id
            ))));
            return;
        };
        match self.record(percent, &judgment).await {
            Ok(record) => {
                let _ = reply.send(Ok(()));
                let verb = if judgment.proceed {
                    "continued"
                } else {
                    "rejected"
                };
                self.ctx
                    .log
                    .system(&format!(
                        "judgment at {percent}%: {verb} by {}",
                        judgment.user
                    ))
                    .await;
                // The rollout runs while a judgment is recorded: it may have
                // begun waiting for this step meanwhile (after it last read
                // the state), and is then answered here.
                let pending = pending.or_else(|| {
                    let mut waiting = self.lock();
                    match waiting.as_ref() {
                        Some(p) if p.percent == percent => waiting.take(),
                        _ => None,
                    }
                });
                if let Some(pending) = pending {
                    let _ = pending.decided.send(record);
                }
            }
            Err(error) => {
                // Still waiting: the person may try again.
                *self.lock() = pending;
                let _ = reply.send(Err(error));
            }
        }
    }

    /// Checks the judgment, then persists it (state and outputs) and puts
    /// the stage back to running.
    async fn record(&self, percent: u32, judgment: &Judgment) -> Result<Value, EngineError> {
        let mut record = manual_judgment::record(&self.judgment, judgment)?;
        record["step"] = Value::from(percent);
        let state = edit_state(self.ctx, |fields| {
            fields.remove("awaiting");
            let judgments = fields
                .entry("judgments")
                .or_insert_with(|| Value::Object(Map::new()));
            judgments[percent.to_string()] = record.clone();
        })
        .await?;
        self.ctx.add_outputs(judgments_output(&state)).await?;
        self.ctx.set_status(Status::Running).await?;
        Ok(record)
    }

    /// Says what the rollout waits for, in the stage's log and in its
    /// `outputs.waitingFor`, where `gantry show` and the API show it.
    async fn say_waiting(&self, note: &str) {
        self.ctx.log.system(note).await;
        let mut outputs = Map::new();
        outputs.insert("waitingFor".into(), Value::String(note.to_owned()));
        if let Err(error) = self.ctx.add_outputs(outputs).await {
            self.ctx
                .log
                .system(&format!("cannot record what the deploy waits for: {error}"))
                .await;
        }
    }

    /// Once the wait is over, `outputs.waitingFor` names nothing.
    async fn clear_waiting(&self) {
        let mut outputs = Map::new();
        outputs.insert("waitingFor".into(), Value::Null);
        let _ = self.ctx.add_outputs(outputs).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl People for StagePeople<'_> {
    fn promotion<'a>(&'a self, why: &'a str) -> BoxFuture<'a, ()> {
        async move {
            // Registered before anything is awaited: a promotion sent while
            // the note is written is not lost.
            let promoted = self.promote.notified();
            let command = format!(
                "gantry promote {} --stage {}",
                self.ctx.execution_id, self.ctx.stage_id
            );
            self.say_waiting(&format!("waiting for {why}: `{command}`"))
                .await;
            promoted.await;
            self.clear_waiting().await;
        }
        .boxed()
    }

    fn judgment<'a>(
        &'a self,
        percent: u32,
        why: &'a str,
    ) -> BoxFuture<'a, Result<(), DeployError>> {
        async move {
            let failed = |error: EngineError| DeployError::Failed(error.to_string());
            if let Some(record) = recorded(&self.ctx.state().await, percent) {
                return decision(&record, percent);
            }
            edit_state(self.ctx, |fields| {
                fields.insert("awaiting".to_owned(), Value::from(percent));
            })
            .await
            .map_err(failed)?;
            self.ctx.set_status(Status::Waiting).await.map_err(failed)?;
            let (decided, decision_made) = oneshot::channel();
            *self.lock() = Some(Pending { percent, decided });
            // A judgment taken while this step was being reached (after a
            // restart, through `awaiting`) is already recorded.
            if let Some(record) = recorded(&self.ctx.state().await, percent) {
                self.lock().take();
                self.ctx.set_status(Status::Running).await.map_err(failed)?;
                return decision(&record, percent);
            }
            let instructions = self
                .judgment
                .instructions
                .as_deref()
                .map(|i| format!(": {i}"))
                .unwrap_or_default();
            let (execution, stage) = (&self.ctx.execution_id, &self.ctx.stage_id);
            self.say_waiting(&format!(
                "at {percent}%, waiting for {why}: `gantry approve {execution} --stage {stage}` \
                 goes on, `gantry reject {execution} --stage {stage}` rolls back{instructions}"
            ))
            .await;
            let decided = match decision_made.await {
                Ok(record) => decision(&record, percent),
                Err(_) => Err(DeployError::Canceled),
            };
            self.clear_waiting().await;
            decided
        }
        .boxed()
    }
}

fn recorded(state: &Value, percent: u32) -> Option<Value> {
    state
        .get("judgments")
        .and_then(|j| j.get(percent.to_string()))
        .cloned()
}

/// `Ok` for a recorded "continue"; a rejection names who and where.
fn decision(record: &Value, percent: u32) -> Result<(), DeployError> {
    if record.get("judgment").and_then(Value::as_str) == Some("continue") {
        return Ok(());
    }
    let by = record
        .get("judgedBy")
        .and_then(Value::as_str)
        .unwrap_or("someone");
    Err(DeployError::Rejected(format!(
        "rejected by {by} at the judgment after {percent}%"
    )))
}

/// `outputs.judgments`: every judgment taken, by step.
pub(super) fn judgments_output(state: &Value) -> Map<String, Value> {
    let mut list: Vec<Value> = state
        .get("judgments")
        .and_then(Value::as_object)
        .map(|j| j.values().cloned().collect())
        .unwrap_or_default();
    list.sort_by_key(|r| r.get("step").and_then(Value::as_u64).unwrap_or(0));
    let mut outputs = Map::new();
    if !list.is_empty() {
        outputs.insert("judgments".into(), Value::Array(list));
    }
    outputs
}
