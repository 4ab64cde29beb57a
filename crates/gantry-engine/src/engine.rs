//! The engine's handle: what the API (and the `pipeline` stage) call.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use gantry_config::Pipeline;
use gantry_store::{ExecutionRecord, NewExecution, ParentRef, Store};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock;
use crate::driver::{self, Command, StageSignal};
use crate::error::EngineError;
use crate::event::Event;
use crate::logs::LogSink;
use crate::process;
use crate::secret_lookup::{self, GitCredentialsError};
use crate::state::{ExecState, Execution};

/// What the engine needs from the rest of the server: the services the orchestrator and
/// the step executor use (secrets, containers, repositories, the sandbox, runners), each
/// with a default. Services only stages use (APT, the deploy controller, Cloud Build's
/// maps) are the stage types' own (`gantry_stages::StageServices`).
#[derive(Clone, Debug, Default)]
pub struct EngineConfig {
    /// Workspaces live in `DATA_DIR/workspaces/EXECUTION_ID`, step outputs
    /// and other per-run files in `DATA_DIR/runs/EXECUTION_ID`.
    pub data_dir: PathBuf,
    /// Runs container steps (`image:`), bakes; `None` where no container
    /// engine is installed (host steps still run).
    pub containers: Option<gantry_container::ContainerEngine>,
    /// Values for steps' `secretEnv` and registry credentials.
    pub secrets: Option<gantry_secrets::SecretStore>,
    /// Hosted git repositories (`DATA_DIR/repos`): workspaces check out their
    /// commits, `release` and `gitCommit` push to them.
    pub git: gantry_git::Repositories,
    /// Confines host steps (a step user, Landlock, a clean environment);
    /// `None` runs them with the engine's own rights (tests, `gantry build`).
    pub sandbox: Option<gantry_sandbox::Sandbox>,
    /// Whether steps without an `image:` may run at all.
    pub host_steps: HostSteps,
    /// The runners `run` stages hand their steps to (those with `runsOn`,
    /// or all of them); `None` runs every step on this machine.
    pub runners: Option<crate::executor::remote::RunnerPool>,
    /// The stage types this engine runs; the binary hands in
    /// `gantry_stages::BuiltInStages`.
    pub stage_types: crate::StageRegistry,
}

/// `gantry serve --host-steps`: on a machine that cannot confine them, host
/// steps can be refused, so that only container steps run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HostSteps {
    #[default]
    On,
    Off,
}

/// A request to start an execution.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunRequest {
    pub pipeline: String,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// What started it; a run by hand with nobody named when not given.
    #[serde(default)]
    pub trigger: gantry_store::TriggerData,
    /// What this execution runs instead of the applied pipeline (a trigger's `config:` file,
    /// read at the pushed commit): copied into the execution like the applied spec would be.
    /// Never read from a request body: only code that validated it may set it.
    #[serde(skip)]
    pub spec: Option<Pipeline>,
}

/// A person's decision on a `manualJudgment` stage.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Judgment {
    /// true: continue; false: stop (the stage fails).
    pub proceed: bool,
    pub option: Option<String>,
    pub user: String,
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: EngineConfig,
    events: broadcast::Sender<Event>,
    logs: LogSink,
    /// The driver of every execution this process is driving.
    drivers: Mutex<HashMap<String, mpsc::Sender<Command>>>,
    /// Held while deciding whether an execution of a pipeline with `concurrency` may start.
    admission: tokio::sync::Mutex<()>,
    /// Set when an execution was queued: ending executions then look for queued ones.
    queued: std::sync::atomic::AtomicBool,
    /// Process groups of running host steps, stopped on shutdown.
    process_groups: Arc<Mutex<HashSet<i32>>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Engine {
    /// Starts the engine and resumes every execution that was not finished.
    pub async fn start(store: Store, config: EngineConfig) -> Result<Engine, EngineError> {
        let (events, _) = broadcast::channel(4096);
        let engine = Engine {
            inner: Arc::new(Inner {
                logs: LogSink::start(store.clone(), events.clone()),
                store,
                config,
                events,
                drivers: Mutex::new(HashMap::new()),
                admission: tokio::sync::Mutex::new(()),
                // True at start: executions queued before a restart are looked for once.
                queued: std::sync::atomic::AtomicBool::new(true),
                process_groups: Arc::default(),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
        };
        let active = engine.inner.store.active_executions().await?;
        if !active.is_empty() {
            tracing::info!(executions = active.len(), "resuming unfinished executions");
        }
        for exec in active {
            // A queued execution (pending, of a pipeline with `concurrency`)
            // waits for its turn: `start_queued` below decides.
            if exec.status == gantry_store::Status::Pending
                && crate::concurrency::queues(&exec.spec)
                && !engine.was_admitted(&exec).await
            {
                continue;
            }
            // One unreadable execution must not keep the others (or the
            // server) from starting; it stays as it is, and says why.
            match ExecState::load(&engine.inner.store, &exec.id).await {
                Ok(state) => engine.spawn_driver(engine.execution(state), true),
                Err(error) => {
                    tracing::error!(execution = %exec.id, %error, "cannot resume execution")
                }
            }
        }
        engine.start_queued().await;
        engine.inner.tasks.spawn(engine.clone().poll_queue());
        Ok(engine)
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The server's secret store, if it has one.
    pub fn secrets(&self) -> Option<&gantry_secrets::SecretStore> {
        self.inner.config.secrets.as_ref()
    }

    /// The git credentials a `credentials:` field names: the secret-store
    /// secret `name`, holding `user:password` or a bare token.
    pub async fn git_credentials(
        &self,
        name: &str,
    ) -> Result<gantry_git::Credentials, GitCredentialsError> {
        match secret_lookup::lookup(self.secrets(), name).await {
            Ok(value) => Ok(gantry_git::Credentials::from_secret(&value)),
            Err(reason) => Err(GitCredentialsError {
                name: name.to_owned(),
                reason,
            }),
        }
    }

    /// The hosted git repositories.
    pub fn git(&self) -> &gantry_git::Repositories {
        &self.inner.config.git
    }

    /// The server's data directory (`EngineConfig::data_dir`).
    pub fn data_dir(&self) -> &std::path::Path {
        &self.inner.config.data_dir
    }

    /// The container engine, when one is installed.
    pub(crate) fn containers(&self) -> Option<&gantry_container::ContainerEngine> {
        self.inner.config.containers.as_ref()
    }

    /// Where stage logs go.
    pub(crate) fn logs(&self) -> &LogSink {
        &self.inner.logs
    }

    /// Canceled when the engine shuts down.
    pub(crate) fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// Held while deciding whether an execution of a pipeline with `concurrency` may start.
    pub(crate) fn admission(&self) -> &tokio::sync::Mutex<()> {
        &self.inner.admission
    }

    /// Set when an execution was queued: ending executions then look for queued ones.
    pub(crate) fn queued(&self) -> &std::sync::atomic::AtomicBool {
        &self.inner.queued
    }

    /// What the local step executor uses of the server: its container engine, sandbox,
    /// data directory, and the process groups stopped on shutdown.
    pub(crate) fn local_executor_config(&self) -> crate::executor::local::LocalConfig {
        let config = &self.inner.config;
        crate::executor::local::LocalConfig {
            containers: config.containers.clone(),
            sandbox: config.sandbox.clone(),
            host_steps: config.host_steps,
            data_dir: config.data_dir.clone(),
            process_groups: self.inner.process_groups.clone(),
        }
    }

    /// The runners steps can go to, when the server has them.
    pub(crate) fn runners(&self) -> Option<&crate::executor::remote::RunnerPool> {
        self.inner.config.runners.as_ref()
    }

    pub(crate) fn stage_types(&self) -> &crate::StageRegistry {
        &self.inner.config.stage_types
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Validates the parameters against the pipeline, creates the execution and starts it.
    pub async fn run(&self, request: RunRequest) -> Result<ExecutionRecord, EngineError> {
        self.start_execution(request, None).await
    }

    pub(crate) async fn start_execution(
        &self,
        request: RunRequest,
        parent: Option<ParentRef>,
    ) -> Result<ExecutionRecord, EngineError> {
        let record = self
            .inner
            .store
            .pipeline(&request.pipeline)
            .await?
            .ok_or_else(|| EngineError::NotFound {
                kind: "pipeline",
                id: request.pipeline.clone(),
            })?;
        let (pipeline, spec) = match request.spec {
            Some(pipeline) => {
                let spec = serde_json::to_value(&pipeline).map_err(|e| {
                    EngineError::Invalid(format!("pipeline {:?}: {e}", request.pipeline))
                })?;
                (pipeline, spec)
            }
            None => {
                let pipeline = serde_json::from_value(record.spec.clone()).map_err(|e| {
                    EngineError::Invalid(format!(
                        "pipeline {:?}: stored spec is unreadable: {e}",
                        request.pipeline
                    ))
                })?;
                (pipeline, record.spec)
            }
        };
        let parameters = crate::parameters::resolve(&pipeline, &request.parameters)?;
        let parameters = crate::sealed::seal_parameters(&pipeline, parameters, self.secrets());
        let trigger = request.trigger.to_stored();
        let new = NewExecution {
            id: uuid::Uuid::now_v7().to_string(),
            pipeline: record.name,
            spec,
            parameters,
            trigger,
            parent,
            stage_ids: pipeline.stages.iter().map(|s| s.id.clone()).collect(),
            created_at: clock::now(),
        };
        let exec = self.inner.store.create_execution(&new).await?;
        tracing::info!(execution = %exec.id, pipeline = %exec.pipeline, "execution created");
        // Held until the driver is registered, so that the next admission counts it.
        let _admission = self.inner.admission.lock().await;
        if let crate::concurrency::Admission::Queue = self.admit(&pipeline, &exec.id).await? {
            return Ok(exec);
        }
        let state = ExecState::load(&self.inner.store, &exec.id).await?;
        self.spawn_driver(self.execution(state), false);
        Ok(exec)
    }

    /// Starts a new execution with the pipeline spec, parameters and trigger of an earlier one
    /// (a rollback re-runs an earlier deploy). The trigger records `rerunOf` and who asked.
    pub async fn rerun(&self, execution: &str, user: &str) -> Result<ExecutionRecord, EngineError> {
        let earlier = self
            .inner
            .store
            .execution(execution)
            .await?
            .ok_or_else(|| EngineError::execution_not_found(execution))?;
        let pipeline: Pipeline = serde_json::from_value(earlier.spec.clone()).map_err(|e| {
            EngineError::Invalid(format!(
                "execution {execution}: stored spec is unreadable: {e}"
            ))
        })?;
        let mut trigger = gantry_store::TriggerData::from_stored(&earlier.trigger)
            .map_err(|e| EngineError::Invalid(format!("execution {execution}: {e}")))?;
        trigger.rerun_of = Some(execution.to_owned());
        trigger.rerun_by = Some(user.to_owned());
        let new = NewExecution {
            id: uuid::Uuid::now_v7().to_string(),
            pipeline: earlier.pipeline,
            spec: earlier.spec,
            parameters: earlier.parameters,
            trigger: trigger.to_stored(),
            parent: None,
            stage_ids: pipeline.stages.iter().map(|s| s.id.clone()).collect(),
            created_at: clock::now(),
        };
        let exec = self.inner.store.create_execution(&new).await?;
        tracing::info!(execution = %exec.id, rerun_of = %execution, %user, "execution re-run");
        let _admission = self.inner.admission.lock().await;
        if let crate::concurrency::Admission::Queue = self.admit(&pipeline, &exec.id).await? {
            return Ok(exec);
        }
        let state = ExecState::load(&self.inner.store, &exec.id).await?;
        self.spawn_driver(self.execution(state), false);
        Ok(exec)
    }

    /// Cancels a running execution: running steps are killed (their whole process group).
    pub async fn cancel(&self, execution: &str, user: &str) -> Result<(), EngineError> {
        let user = user.to_owned();
        self.ask(execution, |reply| Command::Cancel { user, reply })
            .await
    }

    /// Decides the waiting manual judgment (`stage` may be omitted when exactly one waits).
    pub async fn judge(
        &self,
        execution: &str,
        stage: Option<&str>,
        judgment: Judgment,
    ) -> Result<(), EngineError> {
        let stage = stage.map(str::to_owned);
        self.ask(execution, |reply| Command::Signal {
            stage,
            signal: StageSignal::Judgment(judgment),
            reply,
        })
        .await
    }

    /// Ends a running `wait` stage now, successfully.
    pub async fn skip_wait(&self, execution: &str, stage: Option<&str>) -> Result<(), EngineError> {
        let stage = stage.map(str::to_owned);
        self.ask(execution, |reply| Command::Signal {
            stage,
            signal: StageSignal::Skip,
            reply,
        })
        .await
    }

    /// Runs a failed or canceled stage again, with every stage downstream of it.
    pub async fn restart_stage(
        &self,
        execution: &str,
        stage: &str,
        user: &str,
    ) -> Result<(), EngineError> {
        let (stage, user) = (stage.to_owned(), user.to_owned());
        let command = |reply| Command::Restart {
            stage: stage.clone(),
            user: user.clone(),
            reply,
        };
        if let Some(result) = self.ask_driver(execution, command).await {
            return result;
        }
        // Nobody drives it: it has finished. Reset it and drive it again.
        let state = ExecState::load(&self.inner.store, execution).await?;
        let execution = Execution::new(state, self.inner.store.clone(), self.inner.events.clone());
        driver::restart(&execution, &self.inner.store, &stage).await?;
        tracing::info!(execution = %execution.id, stage = %stage, user = %user, "stage restarted");
        self.spawn_driver(execution, false);
        Ok(())
    }

    /// Stops driving executions (they stay resumable) and stops running steps.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        let groups: Vec<i32> = self.inner.process_groups.lock().unwrap().drain().collect();
        for pgid in groups {
            process::terminate_group(pgid, process::GRACE).await;
        }
        self.inner.logs.flush().await;
    }

    /// Sends a command to the execution's driver and waits for its answer.
    async fn ask(
        &self,
        execution: &str,
        command: impl FnOnce(oneshot::Sender<Result<(), EngineError>>) -> Command,
    ) -> Result<(), EngineError> {
        if let Some(result) = self.ask_driver(execution, command).await {
            return result;
        }
        match self.inner.store.execution(execution).await? {
            None => Err(EngineError::execution_not_found(execution)),
            Some(exec) => Err(EngineError::Invalid(format!(
                "execution {} is {}: nothing is running",
                exec.id, exec.status
            ))),
        }
    }

    /// `None` when no driver (still) runs the execution.
    async fn ask_driver(
        &self,
        execution: &str,
        command: impl FnOnce(oneshot::Sender<Result<(), EngineError>>) -> Command,
    ) -> Option<Result<(), EngineError>> {
        let sender = self.inner.drivers.lock().unwrap().get(execution).cloned()?;
        let (reply, answer) = oneshot::channel();
        sender.send(command(reply)).await.ok()?;
        // A dropped reply means the driver ended before reading the command.
        answer.await.ok()
    }

    /// Whether a driver (of this process) runs the execution.
    pub(crate) fn is_driven(&self, id: &str) -> bool {
        self.inner.drivers.lock().unwrap().contains_key(id)
    }

    pub(crate) fn execution(&self, state: ExecState) -> Arc<Execution> {
        Execution::new(state, self.inner.store.clone(), self.inner.events.clone())
    }

    pub(crate) fn spawn_driver(&self, execution: Arc<Execution>, resumed: bool) {
        let id = execution.id.clone();
        let (sender, commands) = mpsc::channel(16);
        {
            let mut drivers = self.inner.drivers.lock().unwrap();
            if drivers.contains_key(&id) {
                return; // Already driven (a race between two restarts).
            }
            drivers.insert(id.clone(), sender);
        }
        let engine = self.clone();
        self.inner.tasks.spawn(async move {
            driver::drive(engine, execution, commands, resumed).await;
        });
    }

    /// Called by a driver that is about to end. Refuses (returns false) while
    /// commands are queued, so that none is lost between the check and the end.
    pub(crate) fn retire_driver(&self, id: &str, commands: &mut mpsc::Receiver<Command>) -> bool {
        let mut drivers = self.inner.drivers.lock().unwrap();
        if !commands.is_empty() {
            return false;
        }
        drivers.remove(id);
        if self.inner.queued.load(std::sync::atomic::Ordering::SeqCst) {
            // A place is free: a queued execution may start.
            let engine = self.clone();
            self.inner
                .tasks
                .spawn(async move { engine.start_queued().await });
        }
        commands.close();
        true
    }
}

/// The values of the execution's secret parameters, masked in its logs.
pub(crate) fn secret_values(
    state: &ExecState,
    secrets: Option<&gantry_secrets::SecretStore>,
) -> Vec<String> {
    state
        .pipeline
        .parameters
        .iter()
        .filter(|p| p.secret)
        .filter_map(|p| {
            let value = state.exec.parameters.get(&p.name)?;
            crate::sealed::open(secrets, value)
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}
