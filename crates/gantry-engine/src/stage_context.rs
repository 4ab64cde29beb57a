//! What a running stage gets from the engine: the one way a stage implementation
//! (`gantry-stages`) reaches the orchestrator. Its data fields are public and read-only
//! (a stage holds `&StageContext`); everything else is a method, so what a stage may do
//! is the list below and nothing more.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gantry_config::{SecretName, Stage, StageKind};
use gantry_container::ContainerEngine;
use gantry_secrets::SecretStore;
use gantry_store::{
    ExecutionRecord, GitPush, Millis, ParentRef, StageRecord, Status, Store, TriggerData,
};
use serde_json::{Map, Value};
use tokio::sync::{Mutex, broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::driver::{Reply, StageSignal};
use crate::engine::{self, Engine, RunRequest};
use crate::error::EngineError;
use crate::event::Event;
use crate::executor::StageExecutor;
use crate::expressions;
use crate::logs::StageLog;
use crate::state::Execution;

/// Everything a stage may use of the engine: its own spec, state, outputs, log and signals,
/// and the capabilities below (store, secrets, repositories, the container engine, the
/// step executor, child executions). Stage types reach the engine only through these;
/// services only stages use are held by the stage types themselves.
pub struct StageContext {
    /// Private: stage types reach the engine only through the accessors below.
    engine: Engine,
    /// Private: a stage reads and changes its execution only through the methods below.
    execution: Arc<Execution>,
    index: usize,
    /// The execution's id.
    pub execution_id: String,
    pub stage_id: String,
    pub spec: Stage,
    pub attempt: i64,
    pub started_at: Millis,
    /// True when the server restarted while this stage was running.
    pub resumed: bool,
    /// Canceled when the stage must stop: the execution was canceled or
    /// is failing, or the stage timed out.
    pub cancel: CancellationToken,
    /// Judgments and skips from people.
    signals: Mutex<mpsc::Receiver<(StageSignal, Reply)>>,
    pub log: StageLog,
    /// What expressions see (rendered when the stage started).
    pub expressions: Value,
}

impl StageContext {
    pub(crate) async fn new(
        engine: &Engine,
        execution: &Arc<Execution>,
        index: usize,
        resumed: bool,
        cancel: CancellationToken,
        signals: mpsc::Receiver<(StageSignal, Reply)>,
    ) -> StageContext {
        let state = execution.read().await;
        let record = &state.stages[index];
        let masker = execution_masker(engine, execution, &state).await;
        StageContext {
            engine: engine.clone(),
            execution: execution.clone(),
            index,
            execution_id: execution.id.clone(),
            stage_id: record.stage_id.clone(),
            spec: state.spec(index).clone(),
            attempt: record.attempt,
            started_at: record.started_at.unwrap_or_else(crate::clock::now),
            resumed,
            cancel,
            signals: Mutex::new(signals),
            log: StageLog {
                sink: engine.logs().clone(),
                masker,
                execution_id: execution.id.clone(),
                stage_id: record.stage_id.clone(),
            },
            expressions: expressions::context(&state, engine.secrets()),
        }
    }

    /// The stage types the engine was given.
    pub(crate) fn stage_types(&self) -> &crate::StageRegistry {
        self.engine.stage_types()
    }

    pub fn store(&self) -> &Store {
        self.engine.store()
    }

    /// The secret store, when the server has one.
    pub fn secrets(&self) -> Option<&SecretStore> {
        self.engine.secrets()
    }

    /// The repositories this server hosts.
    pub fn git(&self) -> &gantry_git::Repositories {
        self.engine.git()
    }

    /// The credentials a secret holds for an external git repository.
    pub async fn git_credentials(
        &self,
        name: &str,
    ) -> Result<gantry_git::Credentials, crate::GitCredentialsError> {
        self.engine.git_credentials(name).await
    }

    /// The container engine, when one is installed.
    pub fn containers(&self) -> Option<&ContainerEngine> {
        self.engine.containers()
    }

    /// The server's data directory, which steps must not reach.
    pub fn data_dir(&self) -> &Path {
        self.engine.data_dir()
    }

    /// Whether this stage's steps run in the server's own process tree (no
    /// `runsOn`, and no local runner to take them).
    pub fn runs_steps_itself(&self, on_runners: bool) -> bool {
        !on_runners
            && self
                .engine
                .runners()
                .is_none_or(|pool| pool.local_runner.is_none())
    }

    /// The step executor for this stage: runners when the stage asks for them
    /// (`on_runners`, its `runsOn`) or the server runs no steps itself, else
    /// this machine with the server's container engine, sandbox and data directory.
    /// A new one per call: it remembers the images it found for one stage.
    /// `runner_wait` overrides the server's bound on waiting for a runner.
    pub fn step_executor(
        &self,
        on_runners: bool,
        runner_wait: Option<std::time::Duration>,
    ) -> Result<StageExecutor, String> {
        use crate::executor::remote::RemoteExecutor;
        let local =
            || crate::executor::local::LocalExecutor::new(self.engine.local_executor_config());
        match self.engine.runners() {
            Some(pool) if on_runners || pool.local_runner.is_some() => {
                Ok(StageExecutor::Remote(RemoteExecutor::new(
                    pool.dispatcher.clone(),
                    self.store().clone(),
                    runner_wait.unwrap_or(pool.wait),
                    self.engine.data_dir().join("runner-workspaces"),
                    pool.local_runner.clone().filter(|_| !on_runners),
                )))
            }
            None if on_runners => Err(
                "\"runsOn\" needs runners, and this engine has none (`gantry build` runs steps on this machine)"
                    .to_owned(),
            ),
            _ => Ok(StageExecutor::Local(local())),
        }
    }

    /// Execution events, to follow a child execution.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.engine.subscribe()
    }

    /// Starts a child execution of this one (the `pipeline` stage).
    pub async fn start_child_execution(
        &self,
        request: RunRequest,
        parent: ParentRef,
    ) -> Result<ExecutionRecord, EngineError> {
        self.engine.start_execution(request, Some(parent)).await
    }

    /// Cancels another execution (a child this stage started).
    pub async fn cancel_execution(&self, id: &str, user: &str) -> Result<(), EngineError> {
        self.engine.cancel(id, user).await
    }

    /// What started the execution, typed; `None` for a stored trigger of no known shape
    /// (it names no commit, no repository, no pull request).
    pub async fn trigger(&self) -> Option<TriggerData> {
        let stored = self.execution.read().await.exec.trigger.clone();
        match TriggerData::from_stored(&stored) {
            Ok(trigger) => Some(trigger),
            Err(error) => {
                tracing::warn!(execution = %self.execution.id, stage = %self.stage_id, %error, "the trigger is read as naming nothing");
                None
            }
        }
    }

    /// The push (or `--ref`, or an upstream's push) that started the execution, if one did.
    pub async fn trigger_push(&self) -> Option<GitPush> {
        self.trigger().await.and_then(|trigger| trigger.git())
    }

    /// The stage's durable state (a JSON object).
    pub async fn state(&self) -> Value {
        self.execution.read().await.stages[self.index].state.clone()
    }

    /// Edits the stage's durable state in place, in one transition: parts of a stage that
    /// write into the same state concurrently (a rollout and the people answering it) do
    /// not lose each other's fields, as a read-then-replace would. Persisted before it
    /// returns what `edit` returned.
    pub async fn edit_state<T>(
        &self,
        edit: impl FnOnce(&mut Value) -> T,
    ) -> Result<T, EngineError> {
        self.execution
            .update(|change| edit(&mut change.stage(self.index).state))
            .await
    }

    /// The execution's record as it is now: its pipeline, who or what started it (the
    /// stored trigger, as step variables read it).
    pub async fn execution_record(&self) -> ExecutionRecord {
        self.execution.read().await.exec.clone()
    }

    /// Every other stage of the execution, as it is now, with its spec's kind.
    pub async fn other_stages(&self) -> Vec<(StageRecord, StageKind)> {
        let state = self.execution.read().await;
        state
            .stages
            .iter()
            .enumerate()
            .filter(|(index, _)| *index != self.index)
            .map(|(index, record)| (record.clone(), state.spec(index).kind.clone()))
            .collect()
    }

    /// Replaces the stage's durable state; persisted before it returns.
    pub async fn save_state(&self, state: Value) -> Result<(), EngineError> {
        self.execution
            .update(|c| c.stage(self.index).state = state)
            .await
    }

    /// Merges outputs into the stage's outputs now (they survive a restart).
    pub async fn add_outputs(&self, outputs: Map<String, Value>) -> Result<(), EngineError> {
        self.execution
            .update(|c| {
                let record = c.stage(self.index);
                if let Some(map) = record.outputs.as_object_mut() {
                    map.extend(outputs);
                } else {
                    record.outputs = Value::Object(outputs);
                }
            })
            .await
    }

    /// Ends the stage's current attempt as failed with `error` (a step's
    /// runner was lost and the step runs again elsewhere) and begins the
    /// next one in place: outputs, state and steps stay, the attempt's
    /// history shows the lost run. Like a retry's, the new attempt counts
    /// against the stage's `retries`.
    pub async fn end_attempt_interrupted(&self, error: &str) -> Result<(), EngineError> {
        let (attempt, started_at) = {
            let state = self.execution.read().await;
            let record = &state.stages[self.index];
            (record.attempt, record.started_at)
        };
        let now = crate::clock::now();
        self.store()
            .end_stage_attempt(&gantry_store::StageAttemptRecord {
                execution_id: self.execution_id.clone(),
                stage_id: self.stage_id.clone(),
                attempt,
                status: Status::Failed,
                started_at,
                ended_at: Some(now),
                error: Some(error.to_owned()),
            })
            .await?;
        self.execution
            .update(|c| {
                let record = c.stage(self.index);
                record.attempt = attempt + 1;
                record.started_at = Some(now);
            })
            .await
    }

    /// Running ↔ waiting (for a person).
    pub async fn set_status(&self, status: Status) -> Result<(), EngineError> {
        self.execution
            .update(|c| c.stage(self.index).status = status)
            .await
    }

    /// Waits for a signal from a person, or for cancellation (`None`).
    pub async fn next_signal(&self) -> Option<(StageSignal, Reply)> {
        let mut signals = self.signals.lock().await;
        tokio::select! {
            signal = signals.recv() => signal,
            _ = self.cancel.cancelled() => None,
        }
    }

    /// The execution's workspace, shared by all its stages.
    pub fn workspace(&self) -> PathBuf {
        workspace_of(&self.engine, &self.execution.id)
    }

    /// Gantry's own files for this stage (step outputs), outside the workspace.
    pub fn run_dir(&self) -> PathBuf {
        self.engine
            .data_dir()
            .join("runs")
            .join(&self.execution.id)
            .join(&self.stage_id)
    }

    /// Why the stage is being stopped, for its outcome.
    pub async fn cancel_reason(&self) -> String {
        let state = self.execution.read().await;
        match &state.exec.canceled_by {
            Some(user) => format!("canceled by {user}"),
            None => "canceled: the execution is stopping".to_owned(),
        }
    }
}

/// An execution's workspace, shared by all its stages.
fn workspace_of(engine: &Engine, execution_id: &str) -> PathBuf {
    engine.data_dir().join("workspaces").join(execution_id)
}

/// A log writer for a stage outside a running stage task (the driver's own
/// notes, such as retries).
pub(crate) async fn stage_log(
    engine: &Engine,
    execution_id: &str,
    stage_id: &str,
    execution: &Execution,
) -> StageLog {
    let state = execution.read().await;
    StageLog {
        sink: engine.logs().clone(),
        masker: execution_masker(engine, execution, &state).await,
        execution_id: execution_id.to_owned(),
        stage_id: stage_id.to_owned(),
    }
}

/// The execution's masker, knowing every secret the execution can reach
/// now (see [`execution_secrets`]).
async fn execution_masker(
    engine: &Engine,
    execution: &Execution,
    state: &crate::state::ExecState,
) -> crate::logs::Masker {
    execution
        .masker
        .add(execution_secrets(engine, &execution.id, state).await);
    execution.masker.clone()
}

/// Every secret value the execution can reach: its secret parameters, the
/// secret-store values any of its steps names in `secretEnv` or a `bake`,
/// `findImage`, `gitCommit` or `gitPromote` uses as credentials (and the
/// password alone), and
/// those the Cloud Build files of its `config:` stages name, when they are
/// in the workspace already (a `config:` stage adds its own when it reads
/// its file). All are masked in every stage's log, since a value one stage
/// receives can reach another (through the workspace, say). A secret that
/// does not exist is left to the stage that names it to report.
async fn execution_secrets(
    engine: &Engine,
    execution_id: &str,
    state: &crate::state::ExecState,
) -> Vec<String> {
    let mut values = engine::secret_values(state, engine.secrets());
    let Some(store) = engine.secrets() else {
        return values;
    };
    let mut names = std::collections::BTreeSet::new();
    let mut credentials = std::collections::BTreeSet::new();
    for stage in &state.pipeline.stages {
        // Every stage type lists the secrets it names (`StageType::secret_names`, required),
        // so a new type cannot leave one unmasked.
        for secret in stage.kind.secret_names() {
            match secret {
                SecretName::Value(name) => {
                    names.insert(name);
                }
                SecretName::Credentials(name) => {
                    credentials.insert(name);
                }
                SecretName::CloudBuildFile(config) => {
                    let workspace = workspace_of(engine, execution_id);
                    names.extend(crate::cloudbuild_file::secret_names(&workspace, &config).await);
                }
            }
        }
    }
    for name in names.iter().chain(&credentials) {
        if let Ok(Some(value)) = store.get(name).await {
            if credentials.contains(name)
                && let Some((_, password)) = value.split_once(':')
            {
                values.push(password.to_owned());
            }
            values.push(value);
        }
    }
    values
}
