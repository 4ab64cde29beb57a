//! `RemoteExecutor`: steps on runners. Each step becomes a job on
//! `gantry-runners`' `Dispatcher`, its payload a [`StepJob`] (the stage and
//! step specs, plain data), its secret values and its program (script,
//! command: an expression may have put a secret there) handed to the
//! dispatcher apart, which gives them only to the runner that leases the job and
//! never stores them. The job's events become the step's log lines, its
//! exit and its outputs ([`RemoteHandle`]). On the runner, [`StepJobRunner`]
//! runs the job with a `LocalExecutor` and streams back what it prints,
//! masked.
//!
//! The runner `gantry serve` starts beside itself is a runner like any
//! other, under its own user and in its own work directory: steps without
//! `runsOn` go to it alone ([`RunnerPool::local_runner`]), their workspace
//! going there and back in snapshots as to any runner.
//!
//! A lost lease (the runner died or lost the network) runs the step again
//! once on another runner when the stage's `onInterrupt` allows it, else
//! the step fails with "runner NAME lost"; the dispatcher refuses what a
//! lost runner sends late and has it kill the step's processes.

mod gate_on_runner;
mod handle;
mod merge;
mod on_runner;
mod push;
mod snapshot;
mod wire;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_merge;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gantry_runners::protocol::{HEARTBEAT, JobSecrets, LEASE_TTL};
use gantry_runners::server::{Dispatcher, JobSpec};

use super::{
    ExecutorError, LeftBehind, LogLine, Reaped, StageSpec, StepExecutor, StepSecrets, StepSpec,
};
pub use handle::RemoteHandle;
pub use on_runner::{StepJobRunner, StepRunnerConfig};
pub(crate) use wire::StepJob;
pub use wire::{ImageToPush, PushFailure, PushedImage};

/// The runners a server hands steps to.
#[derive(Clone)]
pub struct RunnerPool {
    pub dispatcher: Dispatcher,
    /// How long a step waits for a runner with its labels before its stage
    /// fails (`gantry serve --runner-wait`; a stage's `runnerWait` wins).
    pub wait: Duration,
    /// The runner `gantry serve --local-runner on` started beside the
    /// server: steps without `runsOn` run on it (the server then runs no
    /// step itself). `None`: such steps run in the server's own
    /// `LocalExecutor`.
    pub local_runner: Option<String>,
}

impl std::fmt::Debug for RunnerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerPool")
            .field("wait", &self.wait)
            .field("local_runner", &self.local_runner)
            .finish_non_exhaustive()
    }
}

/// Runs a stage's steps on runners.
pub struct RemoteExecutor {
    dispatcher: Dispatcher,
    wait: Duration,
    /// `DATA_DIR/runner-workspaces`: a directory of snapshots per stage.
    snapshots: PathBuf,
    /// The snapshot that holds the server's workspace as it is now.
    current: Arc<Mutex<Option<String>>>,
    /// The runners the stage's steps ran on: each removes what the stage
    /// left there (containers, volumes) when it ends.
    ran_on: Arc<Mutex<std::collections::BTreeSet<String>>>,
    /// The runners whose engine the stage's steps built in (docker builder
    /// steps): its later such steps go to the same one, and its `images` are
    /// pushed from there.
    built_on: Arc<Mutex<std::collections::BTreeSet<String>>>,
    /// Where `built_on` is kept (`stage_builders`), so that a server restarted
    /// between a build and its push still pushes from the runner that built.
    store: gantry_store::Store,
    /// Whether `built_on` was read back from the store.
    recalled: tokio::sync::OnceCell<()>,
    /// Held by the first step that builds in an engine until a runner took it, so that
    /// parallel such steps wait to learn which runner that is and go there too.
    placing_builder: Arc<tokio::sync::Mutex<()>>,
    /// The one runner every step goes to (the local runner, for a stage
    /// without `runsOn`), whatever the step's labels.
    pinned: Option<String>,
}

impl RemoteExecutor {
    pub(crate) fn new(
        dispatcher: Dispatcher,
        store: gantry_store::Store,
        wait: Duration,
        snapshots: PathBuf,
        pinned: Option<String>,
    ) -> RemoteExecutor {
        RemoteExecutor {
            dispatcher,
            wait,
            snapshots,
            current: Arc::default(),
            ran_on: Arc::default(),
            built_on: Arc::default(),
            store,
            recalled: tokio::sync::OnceCell::new(),
            placing_builder: Arc::default(),
            pinned,
        }
    }

    fn snapshots_of(&self, stage: &StageSpec) -> Snapshots {
        Snapshots {
            dir: self.snapshots.join(&stage.execution).join(&stage.stage),
            workspace: stage.workspace.clone(),
            base: self
                .current
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            current: self.current.clone(),
        }
    }
}

impl RemoteExecutor {
    /// Reads back, once, the runners a previous server process saw the
    /// stage's docker steps build in (its steps that succeeded do not run
    /// again after a restart, so nothing else would say).
    async fn recall_builders(&self, stage: &StageSpec) {
        self.recalled
            .get_or_init(|| async {
                match self.store.stage_builders(&stage.execution, &stage.stage).await {
                    Ok(runners) => self
                        .built_on
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend(runners),
                    Err(error) => {
                        tracing::warn!(execution = %stage.execution, stage = %stage.stage, %error, "cannot read which runners hold the stage's builds")
                    }
                }
            })
            .await;
    }

    /// The one runner the stage's docker steps built in so far.
    fn builder(&self) -> Option<String> {
        let built_on = self.built_on.lock().unwrap_or_else(|e| e.into_inner());
        match built_on.len() {
            1 => built_on.first().cloned(),
            _ => None,
        }
    }

    /// Pushes a build's `images` from the runner whose engine built them.
    pub(crate) async fn push_images(
        &self,
        stage: &StageSpec,
        images: Vec<ImageToPush>,
        credentials: Option<&gantry_container::Credentials>,
        stop: &tokio_util::sync::CancellationToken,
    ) -> Option<Result<Vec<PushedImage>, PushFailure>> {
        self.recall_builders(stage).await;
        let runners: Vec<String> = {
            let built_on = self.built_on.lock().unwrap_or_else(|e| e.into_inner());
            let ran_on = self.ran_on.lock().unwrap_or_else(|e| e.into_inner());
            // Without a docker step, the images can only be where the steps ran.
            let candidates = if built_on.is_empty() {
                &*ran_on
            } else {
                &*built_on
            };
            candidates.iter().cloned().collect()
        };
        let runner = match runners.as_slice() {
            [runner] => runner,
            [] => {
                return Some(Err(
                    "no runner is known to hold them: the build's steps ran on none this server still counts (it may have restarted since, or lost the runner): run the stage again".to_owned().into(),
                ));
            }
            several => {
                return Some(Err(format!(
                    "the build's steps ran on runners {}, and an image is only on the runner that built it: give the stage runsOn labels that one runner has",
                    several.join(", ")
                ).into()));
            }
        };
        Some(
            push::push_on(
                &self.dispatcher,
                runner,
                stage,
                images,
                credentials,
                self.wait,
                stop,
            )
            .await,
        )
    }
}

/// How long a runner gets to remove what a stage left on it.
const RELEASE_WAIT: Duration = Duration::from_secs(30);

/// Asks `runner` (and no other) to remove what the stage's steps left there.
async fn release_on(
    dispatcher: &Dispatcher,
    runner: &str,
    stage: &StageSpec,
) -> Result<(), String> {
    use gantry_runners::server::JobEvent;
    let payload = serde_json::to_value(wire::RunnerJob::Release {
        release: stage.clone(),
    })
    .map_err(|error| error.to_string())?;
    let mut job = dispatcher
        .enqueue(JobSpec {
            payload,
            labels: vec![gantry_runners::server::only_runner(runner)],
            secrets: JobSecrets::default(),
            workspace: None,
        })
        .await
        .map_err(|error| format!("runner {runner}: cannot queue the stage's clean-up: {error}"))?;
    let ended = tokio::time::timeout(RELEASE_WAIT, async {
        while let Some(event) = job.events.recv().await {
            match event {
                JobEvent::Finished { result, .. } => {
                    return match result.get("error").and_then(|e| e.as_str()) {
                        Some(error) => Err(format!("runner {runner}: {error}")),
                        None => Ok(()),
                    };
                }
                JobEvent::Lost { reason, .. } | JobEvent::Canceled { reason } => {
                    return Err(format!(
                        "runner {runner}: the stage's clean-up did not run: {reason}"
                    ));
                }
                JobEvent::Leased { .. } | JobEvent::Log { .. } => {}
            }
        }
        Err(format!("runner {runner}: the stage's clean-up was dropped"))
    })
    .await;
    match ended {
        Ok(ended) => ended,
        Err(_) => {
            let _ = dispatcher
                .cancel(&job.id, "the runner did not clean up in time")
                .await;
            Err(format!(
                "runner {runner} did not remove the stage's containers and volumes within {}",
                crate::clock::humanize(RELEASE_WAIT)
            ))
        }
    }
}

/// A stage's workspace snapshots on the server: the one runners start
/// from, and where those they send back land.
#[derive(Clone)]
pub(crate) struct Snapshots {
    dir: PathBuf,
    workspace: PathBuf,
    /// The snapshot a step starts from: the server's workspace when it was
    /// queued.
    base: Option<String>,
    current: Arc<Mutex<Option<String>>>,
}

impl Snapshots {
    /// Makes the snapshot a runner sent (`sha256`, taken from the step's
    /// base) the server's workspace, keeping what other steps brought home
    /// meanwhile where this one changed nothing.
    async fn bring_home(&self, sha256: &str) -> Result<(), snapshot::SnapshotError> {
        let tar = self.dir.join(format!("{sha256}.tar"));
        let base = self
            .base
            .as_ref()
            .map(|base| self.dir.join(format!("{base}.tar")))
            .filter(|base| base.is_file());
        let workspace = self.workspace.clone();
        let merged =
            snapshot::blocking(move || snapshot::bring_home(&tar, base.as_deref(), &workspace))
                .await?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(merged.unwrap_or_else(|| sha256.to_owned()));
        Ok(())
    }
}

impl StepExecutor for RemoteExecutor {
    type Handle = RemoteHandle;

    /// Takes a snapshot of the server's workspace for the stage's runners
    /// to start from (each runner prepares its own directories).
    async fn prepare(&self, stage: &StageSpec) -> Result<(), ExecutorError> {
        let snapshots = self.snapshots_of(stage);
        let dir = snapshots.dir.clone();
        let workspace = stage.workspace.clone();
        let packed = snapshot::blocking(move || snapshot::pack_workspace(&workspace, &dir))
            .await
            .map_err(|error| {
                ExecutorError::Failed(format!(
                    "cannot take a snapshot of the workspace for runners: {error}"
                ))
            })?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(packed);
        Ok(())
    }

    async fn spawn(
        &self,
        stage: &StageSpec,
        step: &StepSpec,
        secrets: StepSecrets,
    ) -> Result<(RemoteHandle, tokio::sync::mpsc::Receiver<LogLine>), ExecutorError> {
        let snapshots = self.snapshots_of(stage);
        let placing = if step.uses_the_engine() {
            self.recall_builders(stage).await;
            let placing = self.placing_builder.clone().lock_owned().await;
            self.builder().is_none().then_some(placing)
        } else {
            None
        };
        let mut labels = match &self.pinned {
            Some(runner) => vec![gantry_runners::server::only_runner(runner)],
            None => step.runs_on.clone(),
        };
        // What an earlier docker step built is in that runner's engine only.
        if step.uses_the_engine()
            && self.pinned.is_none()
            && let Some(runner) = self.builder()
        {
            labels.push(gantry_runners::server::only_runner(&runner));
        }
        let workspace = Some(snapshots.dir.clone());
        let mut stored = step.clone();
        let program = serde_json::to_string(&wire::StepProgram::take(&mut stored))
            .map_err(|error| ExecutorError::Failed(format!("{}: {error}", step.name)))?;
        let mut secrets = secrets.0;
        secrets.insert(wire::PROGRAM.to_owned(), program);
        let payload = serde_json::to_value(StepJob {
            stage: stage.clone(),
            step: stored,
            snapshot: snapshots.base.clone(),
        })
        .map_err(|error| ExecutorError::Failed(format!("{}: {error}", step.name)))?;
        let job = self
            .dispatcher
            .enqueue(JobSpec {
                payload,
                labels,
                secrets: JobSecrets(secrets),
                workspace,
            })
            .await
            .map_err(|error| {
                ExecutorError::Failed(format!(
                    "{}: cannot queue it for a runner: {error}",
                    step.name
                ))
            })?;
        Ok(handle::start(
            self.dispatcher.clone(),
            job,
            step,
            self.wait,
            snapshots,
            self.ran_on.clone(),
            step.uses_the_engine().then(|| handle::Builder {
                built_on: self.built_on.clone(),
                placing,
                kept: handle::KeptBuilders {
                    store: self.store.clone(),
                    execution: stage.execution.clone(),
                    stage: stage.stage.clone(),
                },
            }),
        ))
    }

    /// The jobs of a previous server process were marked lost when the
    /// dispatcher started, and their runners kill them at their next
    /// heartbeat; a runner that cannot reach the server kills them itself
    /// once its lease has expired. Waiting out one lease lifetime (and a
    /// heartbeat) before the step runs again means it never runs twice at
    /// once. What the step left (its containers) is the runner's to remove.
    async fn reap(&self, _stage: &StageSpec, _index: i64, _left: Option<LeftBehind>) -> Reaped {
        tokio::time::sleep(LEASE_TTL + HEARTBEAT).await;
        Reaped::default()
    }

    /// Each runner removes what a step left when the step ends; the
    /// stage's snapshots go (the workspace holds the last one).
    async fn release(&self, stage: &StageSpec) -> Result<(), ExecutorError> {
        let runners: Vec<String> = self
            .ran_on
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        let mut problems = Vec::new();
        for runner in runners {
            if let Err(problem) = release_on(&self.dispatcher, &runner, stage).await {
                problems.push(problem);
            }
        }
        if let Err(error) = self
            .store
            .forget_stage_builders(&stage.execution, &stage.stage)
            .await
        {
            problems.push(format!("cannot forget where the stage built: {error}"));
        }
        let dir = self.snapshots_of(stage).dir;
        match tokio::fs::remove_dir_all(&dir).await {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                problems.push(format!("cannot remove {}: {error}", dir.display()));
            }
            _ => {}
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ExecutorError::Failed(problems.join("; ")))
        }
    }
}
