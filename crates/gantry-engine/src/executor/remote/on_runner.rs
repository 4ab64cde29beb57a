//! [`StepJobRunner`]: what `gantry runner` runs a leased step with. The
//! step goes through a `LocalExecutor` on the runner (prepare, spawn, wait,
//! drain, outputs, finish), in the runner's own copy of the stage's
//! directories (`WORK_DIR/workspaces/EXECUTION`, `WORK_DIR/runs/EXECUTION/STAGE`);
//! every line it prints is masked with the job's secret values before it
//! reaches the job's output file, the only thing the agent streams.
//!
//! The workspace: before the step, the runner's copy is made the snapshot
//! the job names (fetched only when the copy is another, as its marker
//! `WORK_DIR/workspaces/.EXECUTION.sha256` tells); after it, a changed
//! workspace is sent back as a new snapshot before the result.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gantry_container::ContainerEngine;
use gantry_runners::agent::{JobDir, JobOutcome, JobRunner, RunningJob};
use gantry_runners::protocol::LeasedJob;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::gate_on_runner::{GateHold, RunnerGates};
use super::push::PushRun;
use super::snapshot;
use super::wire::{
    PROGRAM, RunnerJob, StepJob, StepJobPrivate, StepJobResult, StepProgram, encode_line,
};
use crate::engine::HostSteps;
use crate::executor::StageSpec;
use crate::executor::local::{LocalConfig, LocalHandle};
use crate::executor::{LocalExecutor, LogLine, StepExecutor, StepHandle, StepSecrets};
use crate::logs::Masker;
use gantry_runners::agent::WorkspaceTransfer;

/// What a runner runs steps with.
#[derive(Clone)]
pub struct StepRunnerConfig {
    /// The runner's work directory: the stages' directories live beneath.
    pub work_dir: PathBuf,
    /// The runner's podman or docker; `None` refuses container steps.
    pub containers: Option<ContainerEngine>,
    /// Confines host steps, as on the server.
    pub sandbox: Option<gantry_sandbox::Sandbox>,
    pub host_steps: HostSteps,
}

/// Runs leased steps on this machine.
pub struct StepJobRunner {
    config: StepRunnerConfig,
    process_groups: Arc<Mutex<HashSet<i32>>>,
    /// One workspace is made current at a time.
    syncing: tokio::sync::Mutex<()>,
    /// How many steps run in each copy of a workspace now.
    copies_in_use: Arc<Mutex<std::collections::HashMap<PathBuf, usize>>>,
    /// The Docker API gates open for docker builder steps running here.
    gates: RunnerGates,
}

impl StepJobRunner {
    pub fn new(config: StepRunnerConfig) -> StepJobRunner {
        forget_copies(&config.work_dir.join("workspaces"));
        StepJobRunner {
            config,
            process_groups: Arc::default(),
            syncing: tokio::sync::Mutex::new(()),
            copies_in_use: Arc::default(),
            gates: RunnerGates::default(),
        }
    }

    fn executor(&self) -> LocalExecutor {
        LocalExecutor::new(LocalConfig {
            containers: self.config.containers.clone(),
            sandbox: self.config.sandbox.clone(),
            host_steps: self.config.host_steps,
            data_dir: self.config.work_dir.clone(),
            process_groups: self.process_groups.clone(),
        })
    }
}

/// A step running on this runner.
pub struct RunningStep(Run);

enum Run {
    Step(Box<StepRun>),
    /// A stage's clean-up, done already.
    Released(JobOutcome),
    /// A build's images, pushed from here.
    Push(Box<PushRun>),
}

struct StepRun {
    handle: LocalHandle,
    writer: JoinHandle<()>,
    workspace: Option<WorkspaceSync>,
    /// The stage's Docker API gate, for a docker builder step: held until the step ends.
    _gate: Option<GateHold>,
}

/// What sends the step's workspace back when it ends.
struct WorkspaceSync {
    transfer: WorkspaceTransfer,
    workspace: PathBuf,
    marker: PathBuf,
    job_root: PathBuf,
    /// The snapshot the step started from.
    base: String,
    /// Set once the step uses the copy; released when it ends.
    in_use: Option<CopyInUse>,
}

/// A step's use of its workspace copy, counted while it lives.
struct CopyInUse {
    copies: Arc<Mutex<std::collections::HashMap<PathBuf, usize>>>,
    copy: PathBuf,
}

impl Drop for CopyInUse {
    fn drop(&mut self) {
        let mut copies = self.copies.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = copies.get_mut(&self.copy) {
            *count -= 1;
            if *count == 0 {
                copies.remove(&self.copy);
            }
        }
    }
}

impl JobRunner for StepJobRunner {
    type Running = RunningStep;

    /// A step a previous agent process started cannot be taken over (its
    /// output went to that process's pipes): its processes are killed and
    /// its lease, given up, lets it run again elsewhere.
    async fn reattach(&self, dir: &JobDir) -> Option<RunningStep> {
        let record = std::fs::read(dir.root().join(LEFT_BEHIND)).ok()?;
        let left: LeftStep = serde_json::from_slice(&record).ok()?;
        // Its processes, then its container: `podman run`'s client dies with
        // the group, the container it started does not.
        let reaped = self
            .executor()
            .reap(&left.stage, left.index, left.group)
            .await;
        tracing::warn!(
            job = %dir.root().display(),
            killed = reaped.killed_processes,
            containers = reaped.removed_containers,
            errors = ?reaped.errors,
            "stopped a step the previous agent process left"
        );
        None
    }

    async fn start(&self, job: &LeasedJob, dir: &JobDir) -> Result<RunningStep, String> {
        let job_kind: RunnerJob = serde_json::from_value(job.payload.clone())
            .map_err(|error| format!("the job is not a step this runner can read: {error}"))?;
        let StepJob {
            stage,
            step,
            snapshot,
        } = match job_kind {
            RunnerJob::Step(step) => *step,
            RunnerJob::Release { release } => {
                let stage = self.localize(release)?;
                let result = match self.executor().release(&stage).await {
                    Ok(()) => json!({}),
                    Err(error) => json!({ "error": error.to_string() }),
                };
                return Ok(RunningStep(Run::Released(result.into())));
            }
            RunnerJob::Push { push } => {
                let push = PushRun::new(self.config.containers.clone(), push, &job.secrets)?;
                return Ok(RunningStep(Run::Push(Box::new(push))));
            }
        };
        let stage = self.localize(stage)?;
        let executor = self.executor();
        let root = &self.config.work_dir;
        for path in [&stage.workspace, &stage.run_dir] {
            tokio::fs::create_dir_all(path)
                .await
                .map_err(|error| format!("cannot create {}: {error}", path.display()))?;
        }
        let workspace = match (snapshot, dir.transfer()) {
            (Some(base), Some(transfer)) => {
                let mut sync = WorkspaceSync {
                    transfer: transfer.clone(),
                    workspace: stage.workspace.clone(),
                    marker: root
                        .join("workspaces")
                        .join(format!(".{}.sha256", stage.execution)),
                    job_root: dir.root().to_owned(),
                    base,
                    in_use: None,
                };
                let note = self.make_current(&mut sync).await?;
                tracing::info!(lease = %job.lease_id, snapshot = %sync.base, "{note}");
                Some(sync)
            }
            _ => None,
        };
        executor
            .prepare(&stage)
            .await
            .map_err(|error| error.to_string())?;
        // This runner opens the gate beside its copy of the stage's run directory.
        let gate = if step.goes_through_docker_gate() {
            let engine_api = root.join("engine-api");
            let hold = self
                .gates
                .hold(self.config.containers.as_ref(), &engine_api, &stage.run_dir)
                .await
                .map_err(|error| format!("{}: {error}", step.name))?;
            Some(hold)
        } else {
            None
        };
        let mut secrets = job.secrets.0.clone();
        let mut step = step;
        if let Some(program) = secrets.remove(PROGRAM) {
            serde_json::from_str::<StepProgram>(&program)
                .map_err(|error| {
                    format!("the job's program is not one this runner can read: {error}")
                })?
                .put(&mut step);
        }
        let masker = Masker::default();
        masker.add(secrets.values().cloned());
        let secrets = StepSecrets(secrets);
        let (handle, lines) = executor
            .spawn(&stage, &step, secrets)
            .await
            .map_err(|error| error.to_string())?;
        // For an agent started again after a `kill -9`: the step's group
        // outlives it and must go (its lease is lost, it runs elsewhere).
        let left = LeftStep {
            group: handle.left_behind(),
            stage: stage.clone(),
            index: step.index,
        };
        let record = serde_json::to_vec(&left).unwrap_or_default();
        let _ = tokio::fs::write(dir.root().join(LEFT_BEHIND), record).await;
        let output = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.output())
            .await
            .map_err(|error| format!("{}: {error}", dir.output().display()))?;
        let writer = tokio::spawn(write_lines(lines, output, masker));
        Ok(RunningStep(Run::Step(Box::new(StepRun {
            handle,
            writer,
            workspace,
            _gate: gate,
        }))))
    }
}

/// The stage's workspace and run directory beneath `root`, as a server's
/// data directory lays them out.
fn directories_beneath(root: &Path, stage: &StageSpec) -> Result<(PathBuf, PathBuf), String> {
    for (what, id) in [("execution", &stage.execution), ("stage", &stage.stage)] {
        if !safe_component(id) {
            return Err(format!("the job's {what} id {id:?} is not a plain name"));
        }
    }
    Ok((
        root.join("workspaces").join(&stage.execution),
        root.join("runs").join(&stage.execution).join(&stage.stage),
    ))
}

/// What a step leaves behind, in the job's directory.
const LEFT_BEHIND: &str = "step-process.json";

/// What an agent started again needs to stop a step the previous one left:
/// its process group and, for its container, its stage and index.
#[derive(serde::Serialize, serde::Deserialize)]
struct LeftStep {
    group: Option<crate::executor::LeftBehind>,
    stage: StageSpec,
    index: i64,
}

impl StepJobRunner {
    /// The stage with this runner's own directories for it.
    fn localize(&self, mut stage: StageSpec) -> Result<StageSpec, String> {
        (stage.workspace, stage.run_dir) = directories_beneath(&self.config.work_dir, &stage)?;
        Ok(stage)
    }

    /// Makes the runner's copy of the workspace the step's snapshot and
    /// counts the step as using it; says what it did, for the runner's log.
    /// A copy other steps of the execution (a parallel stage's) are using
    /// is never replaced under them: the step runs in it as it is, which
    /// holds what this runner's steps wrote.
    async fn make_current(&self, sync: &mut WorkspaceSync) -> Result<String, String> {
        let _one = self.syncing.lock().await;
        let have = tokio::fs::read_to_string(&sync.marker)
            .await
            .unwrap_or_default();
        let busy = self
            .copies_in_use
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&sync.workspace);
        let note = if have.trim() == sync.base {
            "workspace: this runner's copy is current".to_owned()
        } else if busy {
            "workspace: kept this runner's copy, which another step of the execution is using"
                .to_owned()
        } else {
            let tar = sync.job_root.join("workspace-in.tar");
            sync.transfer.download(&sync.base, &tar).await?;
            let size = tokio::fs::metadata(&tar)
                .await
                .map(|m| m.len())
                .unwrap_or(0);
            let (from, into) = (tar.clone(), sync.workspace.clone());
            snapshot::blocking(move || snapshot::unpack(&from, &into))
                .await
                .map_err(|error| format!("cannot unpack the workspace: {error}"))?;
            let _ = tokio::fs::remove_file(&tar).await;
            tokio::fs::write(&sync.marker, &sync.base)
                .await
                .map_err(|error| format!("{}: {error}", sync.marker.display()))?;
            format!("workspace: fetched from the server ({size} bytes)")
        };
        *self
            .copies_in_use
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(sync.workspace.clone())
            .or_default() += 1;
        sync.in_use = Some(CopyInUse {
            copies: self.copies_in_use.clone(),
            copy: sync.workspace.clone(),
        });
        Ok(note)
    }
}

/// A previous agent process may have left copies that steps changed and
/// never sent back: none of them counts as any snapshot any more.
fn forget_copies(workspaces: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(workspaces) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().ends_with(".sha256") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl WorkspaceSync {
    /// The copy no longer holds the snapshot its marker names.
    async fn forget(&self) {
        let _ = tokio::fs::remove_file(&self.marker).await;
    }

    /// Sends the workspace back if the step changed it; the new snapshot's
    /// name.
    async fn send_back(&self) -> Result<Option<String>, String> {
        let tar = self.job_root.join("workspace-out.tar");
        let (workspace, out) = (self.workspace.clone(), tar.clone());
        let sha256 = snapshot::blocking(move || snapshot::pack(&workspace, &out))
            .await
            .map_err(|error| format!("cannot pack the workspace: {error}"))?;
        if sha256 == self.base {
            let _ = tokio::fs::remove_file(&tar).await;
            return Ok(None);
        }
        let received = self.transfer.upload(&tar).await?;
        let _ = tokio::fs::remove_file(&tar).await;
        if received != sha256 {
            return Err(format!(
                "the server received workspace snapshot {received}, not {sha256}"
            ));
        }
        let _ = tokio::fs::write(&self.marker, &sha256).await;
        Ok(Some(sha256))
    }
}

impl RunningJob for RunningStep {
    async fn finish(self, cancel: CancellationToken) -> JobOutcome {
        match self.0 {
            Run::Step(step) => step.finish(cancel).await,
            Run::Released(outcome) => outcome,
            Run::Push(push) => push.finish(cancel).await,
        }
    }
}

impl StepRun {
    async fn finish(mut self, cancel: CancellationToken) -> JobOutcome {
        let exit = tokio::select! {
            exit = self.handle.wait() => Some(exit),
            () = cancel.cancelled() => None,
        };
        let Some(exit) = exit else {
            // The step may have changed the copy and sent nothing back.
            if let Some(sync) = &self.workspace {
                sync.forget().await;
            }
            self.handle.kill().await;
            let _ = self.handle.wait().await;
            self.handle.drain().await;
            let _ = self.writer.await;
            let _ = self.handle.finish().await;
            return json!(StepJobResult {
                canceled: true,
                ..Default::default()
            })
            .into();
        };
        self.handle.drain().await;
        let _ = self.writer.await;
        let (result, private) = match exit {
            Ok(exit) => {
                let private = match self.handle.outputs().await.map(bounded) {
                    Ok(Ok(outputs)) => StepJobPrivate {
                        outputs: Some(outputs),
                        outputs_error: None,
                    },
                    Ok(Err(error)) => StepJobPrivate {
                        outputs: None,
                        outputs_error: Some(error),
                    },
                    Err(error) => StepJobPrivate {
                        outputs: None,
                        outputs_error: Some(error.to_string()),
                    },
                };
                let result = match &self.workspace {
                    Some(sync) => match sync.send_back().await {
                        Ok(workspace) => StepJobResult {
                            exit: Some(exit),
                            workspace,
                            ..Default::default()
                        },
                        Err(error) => {
                            sync.forget().await;
                            StepJobResult {
                                error: Some(error),
                                ..Default::default()
                            }
                        }
                    },
                    None => StepJobResult {
                        exit: Some(exit),
                        ..Default::default()
                    },
                };
                (result, private)
            }
            Err(error) => (
                StepJobResult {
                    error: Some(error.to_string()),
                    ..Default::default()
                },
                StepJobPrivate::default(),
            ),
        };
        if let Err(error) = self.handle.finish().await {
            tracing::warn!(%error, "cannot clean up after a step");
        }
        JobOutcome {
            result: json!(result),
            private: json!(private),
        }
    }
}

/// Appends the step's lines, masked, to the job's output file, in batches
/// of what arrived together.
async fn write_lines(
    mut lines: mpsc::Receiver<LogLine>,
    mut output: tokio::fs::File,
    masker: Masker,
) {
    let mut batch = String::new();
    while let Some(line) = lines.recv().await {
        push(&mut batch, &line, &masker);
        while batch.len() < 64 << 10 {
            match lines.try_recv() {
                Ok(line) => push(&mut batch, &line, &masker),
                Err(_) => break,
            }
        }
        if let Err(error) = output.write_all(batch.as_bytes()).await {
            tracing::error!(%error, "cannot write a step's output; its lines are lost");
        }
        batch.clear();
    }
    let _ = output.flush().await;
}

fn push(batch: &mut String, line: &LogLine, masker: &Masker) {
    let line = LogLine {
        stream: line.stream,
        text: masker.mask(&line.text),
    };
    batch.push_str(&encode_line(&line));
    batch.push('\n');
}

fn safe_component(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The most bytes of outputs a runner sends back with a step's result: the
/// result is one JSON body, which the server takes up to 2 MiB. Beyond it the
/// step fails saying so, where the server's refusal would have looked like a
/// lost runner.
const MAX_SENT_OUTPUTS: usize = 1 << 20;

fn bounded(
    outputs: serde_json::Map<String, serde_json::Value>,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let size = serde_json::to_vec(&outputs).map_or(usize::MAX, |json| json.len());
    if size > MAX_SENT_OUTPUTS {
        return Err(format!(
            "the outputs are {size} bytes as JSON, over the {} KiB a runner sends back with a step's result",
            MAX_SENT_OUTPUTS >> 10
        ));
    }
    Ok(outputs)
}
