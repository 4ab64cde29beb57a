//! One step, from its record to its end: its spec handed to the stage's
//! executor (`crate::executor`), its lines forwarded to the stage log, its
//! record written before the stage waits for it, its end decided by the
//! stage's rules (`allowExitCodes`, its timeout, the stage's stop).

use std::collections::{BTreeMap, HashMap};

use gantry_config::{OnInterrupt, Step};
use gantry_container::ContainerEngine;
use gantry_store::{Status, StepRecord};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::StageContext;
use crate::clock;
use crate::executor::local::engine_cli::Allowed;
use crate::executor::{
    Confinement, ExecutorError, StageExecutor, StageSpec, StepExecutor, StepHandle, StepSecrets,
    StepSpec, StepVolume,
};
use gantry_engine::stage_kit::StageLog;

pub(crate) enum StepEnd {
    Succeeded(Map<String, Value>),
    Failed(String),
    Canceled,
}

/// What the steps of one stage share. Steps reach their executor through
/// the `StepExecutor` trait alone (`E`), whichever executor it is.
pub(crate) struct StageRun<'a, E: StepExecutor = StageExecutor> {
    pub(crate) ctx: &'a StageContext,
    pub(crate) log: StageLog,
    pub(crate) stage_env: &'a BTreeMap<String, String>,
    /// The engine that pushes a Cloud Build file's `images`.
    pub(crate) containers: Option<ContainerEngine>,
    /// Values of every `secretEnv` name the stage's steps use.
    pub(crate) secrets: BTreeMap<String, String>,
    /// Cancelled when the execution stops or another step failed.
    pub(crate) stop: CancellationToken,
    /// Steps that run the container engine's CLI on the host (a Cloud
    /// Build file's `gcr.io/cloud-builders/docker`), as its allow-list let
    /// them through (see `cloudbuild.rs`).
    pub(crate) engine_cli: HashMap<usize, Allowed>,
    pub(crate) executor: E,
    /// The stage's rule for a step interrupted by a server restart, which
    /// also decides whether a step whose runner was lost runs again.
    pub(crate) on_interrupt: OnInterrupt,
    /// The stage's `runsOn`, for steps without their own.
    pub(crate) runs_on: Vec<String>,
    pub(crate) spec: StageSpec,
}

pub(crate) struct StepRun<'a, E: StepExecutor = StageExecutor> {
    pub(crate) stage: &'a StageRun<'a, E>,
    pub(crate) index: i64,
    pub(crate) step: &'a Step,
    pub(crate) interruptions: i64,
}

enum Ended {
    Exited,
    Canceled,
    TimedOut,
}

impl<E: StepExecutor> StepRun<'_, E> {
    pub(crate) async fn execute(&self) -> StepEnd {
        let stage = self.stage;
        let ctx = stage.ctx;
        let name = describe(self.index, self.step);
        let (spec, secrets) = self.spec(name.clone()).await;
        let (mut handle, mut lines) = match stage.executor.spawn(&stage.spec, &spec, secrets).await
        {
            Ok(spawned) => spawned,
            Err(error @ ExecutorError::Start(_)) => {
                return self.fail(error.to_string(), Some(clock::now())).await;
            }
            Err(error) => return self.fail(error.to_string(), None).await,
        };
        let forward = {
            let (log, index) = (stage.log.clone(), self.index);
            tokio::spawn(async move {
                while let Some(line) = lines.recv().await {
                    log.line(index, line.stream, &line.text).await;
                }
            })
        };
        let left = handle.left_behind();
        let mut record = StepRecord {
            execution_id: ctx.execution_id.clone(),
            stage_id: ctx.stage_id.clone(),
            step: self.index,
            status: Status::Running,
            started_at: Some(handle.started_at()),
            ended_at: None,
            exit_code: None,
            pgid: left.map(|l| l.pgid),
            proc_start: left.map(|l| l.start),
            interruptions: self.interruptions,
            error: None,
        };
        if let Err(error) = ctx.store().put_step(&record).await {
            handle.kill().await;
            let _ = handle.wait().await;
            handle.drain().await;
            let _ = forward.await;
            return StepEnd::Failed(format!("{name}: {error}"));
        }

        let timeout = async {
            match self.step.timeout {
                Some(timeout) => tokio::time::sleep(timeout).await,
                None => std::future::pending().await,
            }
        };
        let shown = std::sync::atomic::AtomicBool::new(false);
        let waiting = handle.waiting_for();
        let lost_runs = handle.lost_runs();
        let recorded = std::sync::atomic::AtomicUsize::new(0);
        let exited = tokio::select! {
            exit = handle.wait() => Some(exit),
            _ = stage.stop.cancelled() => None,
            _ = timeout => None,
            () = show_waiting(ctx, waiting, &shown) => None,
            () = record_lost_runs(ctx, lost_runs.clone(), &recorded) => None,
        };
        // A run lost just before the step's end is recorded all the same.
        if let Some(lost_runs) = lost_runs {
            let runs = lost_runs.borrow().clone();
            record_new_lost_runs(ctx, &runs, &recorded).await;
        }
        if shown.into_inner() {
            set_waiting_for(ctx, None).await;
        }
        let (ended, exit) = match exited {
            Some(exit) => (Ended::Exited, exit),
            None => {
                let ended = if stage.stop.is_cancelled() {
                    Ended::Canceled
                } else {
                    Ended::TimedOut
                };
                handle.kill().await;
                (ended, handle.wait().await)
            }
        };
        handle.drain().await;
        let _ = forward.await;

        record.pgid = None;
        record.proc_start = None;
        record.ended_at = Some(clock::now());
        record.exit_code = exit.as_ref().ok().and_then(|e| e.code).map(i64::from);
        let end = match (ended, exit) {
            (Ended::Canceled, _) => {
                record.status = Status::Canceled;
                StepEnd::Canceled
            }
            (Ended::TimedOut, _) => {
                let timeout = crate::humanize(self.step.timeout.unwrap_or_default());
                StepEnd::Failed(format!("{name} timed out after {timeout}"))
            }
            (Ended::Exited, Err(ExecutorError::Named(error))) => StepEnd::Failed(error),
            (Ended::Exited, Err(error)) => StepEnd::Failed(format!("{name}: {error}")),
            (Ended::Exited, Ok(exit))
                if exit.success()
                    || exit
                        .code
                        .is_some_and(|c| self.step.allow_exit_codes.contains(&c)) =>
            {
                match handle.outputs().await {
                    Ok(outputs) => StepEnd::Succeeded(outputs),
                    Err(error) => StepEnd::Failed(format!("{name}: $GANTRY_OUTPUT: {error}")),
                }
            }
            (Ended::Exited, Ok(exit)) => StepEnd::Failed(match exit.code {
                Some(125) if self.step.image.is_some() => format!(
                    "{name}: the container engine could not run the container (exit code 125; see the step's log)"
                ),
                Some(code) => format!("{name} exited with code {code}"),
                None => format!(
                    "{name} was killed by signal {}",
                    exit.signal.unwrap_or_default()
                ),
            }),
        };
        match &end {
            StepEnd::Succeeded(_) => record.status = Status::Succeeded,
            StepEnd::Failed(error) => {
                record.status = Status::Failed;
                record.error = Some(error.clone());
                stage.log.system(error).await;
            }
            StepEnd::Canceled => {}
        }
        stage.log.flush().await;
        if let Err(error) = handle.finish().await {
            stage.log.system(&error.to_string()).await;
        }
        if let Err(error) = ctx.store().put_step(&record).await {
            return StepEnd::Failed(format!("{name}: {error}"));
        }
        end
    }

    /// The step as its executor takes it, and the values of its secret
    /// variables: its `secretEnv`, and variables whose value holds a secret
    /// the execution knows (these go like `secretEnv`, never as plain
    /// values into a container's config).
    async fn spec(&self, name: String) -> (StepSpec, StepSecrets) {
        let stage = self.stage;
        let step = self.step;
        let mut env: BTreeMap<String, String> =
            crate::trigger_env::step_env(&stage.ctx.execution_record().await.trigger)
                .into_iter()
                .collect();
        env.extend(stage.stage_env.clone());
        env.extend(step.env.clone());
        let mut secrets = self.secret_env();
        env.retain(|name, value| {
            if stage.log.masker.reveals(value) {
                secrets.insert(name.clone(), value.clone());
                false
            } else {
                true
            }
        });
        let confinement = match stage.engine_cli.get(&(self.index as usize)) {
            Some(allowed) => Confinement::EngineCli(allowed.clone()),
            None => Confinement::Step,
        };
        let spec = StepSpec {
            index: self.index,
            name,
            script: step.script.clone(),
            command: step.command.clone(),
            image: step.image.clone(),
            entrypoint: step.entrypoint.clone(),
            args: step.args.clone(),
            env,
            secret_env: secrets.keys().cloned().collect(),
            volumes: step
                .volumes
                .iter()
                .map(|v| StepVolume {
                    name: v.name.clone(),
                    path: v.path.clone(),
                })
                .collect(),
            dir: step.dir.clone(),
            timeout: step.timeout,
            confinement,
            runs_on: self.runs_on(),
            rerun_if_lost: step.on_interrupt.unwrap_or(stage.on_interrupt) == OnInterrupt::Rerun
                && self.interruptions == 0,
        };
        (spec, StepSecrets(secrets))
    }

    /// The labels its runner needs: its own `runsOn`, else the stage's;
    /// sorted, as runners' labels are.
    fn runs_on(&self) -> Vec<String> {
        let mut labels = if self.step.runs_on.is_empty() {
            self.stage.runs_on.clone()
        } else {
            self.step.runs_on.clone()
        };
        labels.sort();
        labels.dedup();
        labels
    }

    fn secret_env(&self) -> BTreeMap<String, String> {
        self.step
            .secret_env
            .iter()
            .filter_map(|entry| {
                let (variable, secret) = super::secret_env_entry(entry);
                Some((variable.to_owned(), self.stage.secrets.get(secret)?.clone()))
            })
            .collect()
    }

    async fn fail(&self, error: String, started_at: Option<i64>) -> StepEnd {
        let ctx = self.stage.ctx;
        self.stage.log.system(&error).await;
        let record = StepRecord {
            execution_id: ctx.execution_id.clone(),
            stage_id: ctx.stage_id.clone(),
            step: self.index,
            status: Status::Failed,
            started_at,
            ended_at: Some(clock::now()),
            exit_code: None,
            pgid: None,
            proc_start: None,
            interruptions: self.interruptions,
            error: Some(error.clone()),
        };
        let _ = ctx.store().put_step(&record).await;
        StepEnd::Failed(error)
    }
}

pub(crate) fn describe(index: i64, step: &Step) -> String {
    match (&step.name, &step.id) {
        (Some(name), _) | (None, Some(name)) => format!("step {} ({name})", index + 1),
        (None, None) => format!("step {}", index + 1),
    }
}

/// Keeps the stage's `outputs.waitingFor` saying what the step waits for
/// (a runner with its labels) while it waits, and null once it no longer
/// does, as a deploy's is; `shown` tells whether it says something now.
/// Never ends. Parallel steps that wait share the one field: the last
/// change wins.
async fn show_waiting(
    ctx: &StageContext,
    waiting: Option<tokio::sync::watch::Receiver<Option<String>>>,
    shown: &std::sync::atomic::AtomicBool,
) {
    use std::sync::atomic::Ordering;
    if let Some(mut waiting) = waiting {
        loop {
            let note = waiting.borrow_and_update().clone();
            if note.is_some() || shown.load(Ordering::Relaxed) {
                shown.store(note.is_some(), Ordering::Relaxed);
                set_waiting_for(ctx, note).await;
            }
            if waiting.changed().await.is_err() {
                break;
            }
        }
    }
    std::future::pending().await
}

/// Records each run of the step a lost runner ended as an ended attempt of
/// the stage (the step runs again, in the next one), as it happens; never
/// returns.
async fn record_lost_runs(
    ctx: &StageContext,
    lost_runs: Option<tokio::sync::watch::Receiver<Vec<String>>>,
    recorded: &std::sync::atomic::AtomicUsize,
) {
    if let Some(mut lost_runs) = lost_runs {
        loop {
            let runs = lost_runs.borrow_and_update().clone();
            record_new_lost_runs(ctx, &runs, recorded).await;
            if lost_runs.changed().await.is_err() {
                break;
            }
        }
    }
    std::future::pending().await
}

async fn record_new_lost_runs(
    ctx: &StageContext,
    runs: &[String],
    recorded: &std::sync::atomic::AtomicUsize,
) {
    use std::sync::atomic::Ordering;
    for reason in runs.iter().skip(recorded.load(Ordering::Relaxed)) {
        recorded.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = ctx.end_attempt_interrupted(reason).await {
            tracing::warn!(%error, "cannot record a run a lost runner ended");
        }
    }
}

async fn set_waiting_for(ctx: &StageContext, note: Option<String>) {
    let mut outputs = Map::new();
    outputs.insert("waitingFor".into(), note.map_or(Value::Null, Value::String));
    if let Err(error) = ctx.add_outputs(outputs).await {
        tracing::warn!(%error, "cannot record what a step waits for");
    }
}
