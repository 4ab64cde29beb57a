//! `RemoteExecutor`: steps on runners. Each step becomes a job on
//! `gantry-runners`' `Dispatcher`, its payload a [`StepJob`] (the stage and
//! step specs, plain data), its secret values handed to the dispatcher
//! apart, which gives them only to the runner that leases the job and
//! never stores them. The job's events become the step's log lines, its
//! exit and its outputs ([`RemoteHandle`]). On the runner, [`StepJobRunner`]
//! runs the job with a `LocalExecutor` and streams back what it prints,
//! masked.
//!
//! A lost lease (the runner died or lost the network) runs the step again
//! once on another runner when the stage's `onInterrupt` allows it, else
//! the step fails with "runner NAME lost"; the dispatcher refuses what a
//! lost runner sends late and has it kill the step's processes.

mod handle;
mod on_runner;
mod wire;

use std::time::Duration;

use gantry_runners::protocol::{HEARTBEAT, JobSecrets, LEASE_TTL};
use gantry_runners::server::{Dispatcher, JobSpec};

use super::{
    ExecutorError, LeftBehind, LogLine, Reaped, StageSpec, StepExecutor, StepSecrets, StepSpec,
};
pub(crate) use handle::RemoteHandle;
pub use on_runner::{StepJobRunner, StepRunnerConfig};
pub(crate) use wire::StepJob;

/// The runners a server hands steps to.
#[derive(Clone)]
pub struct RunnerPool {
    pub dispatcher: Dispatcher,
    /// How long a step waits for a runner with its labels before its stage
    /// fails (`gantry serve --runner-wait`; a stage's `runnerWait` wins).
    pub wait: Duration,
    /// Every `run` stage goes to runners, not only those with `runsOn`
    /// (the server then runs no step itself).
    pub all_steps: bool,
}

impl std::fmt::Debug for RunnerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerPool")
            .field("wait", &self.wait)
            .field("all_steps", &self.all_steps)
            .finish_non_exhaustive()
    }
}

/// Runs a stage's steps on runners.
pub(crate) struct RemoteExecutor {
    dispatcher: Dispatcher,
    wait: Duration,
}

impl RemoteExecutor {
    pub(crate) fn new(dispatcher: Dispatcher, wait: Duration) -> RemoteExecutor {
        RemoteExecutor { dispatcher, wait }
    }
}

impl StepExecutor for RemoteExecutor {
    type Handle = RemoteHandle;

    /// The runner prepares its own copy of the stage's directories.
    async fn prepare(&self, _stage: &StageSpec) -> Result<(), ExecutorError> {
        Ok(())
    }

    async fn spawn(
        &self,
        stage: &StageSpec,
        step: &StepSpec,
        secrets: StepSecrets,
    ) -> Result<(RemoteHandle, tokio::sync::mpsc::Receiver<LogLine>), ExecutorError> {
        let payload = serde_json::to_value(StepJob {
            stage: stage.clone(),
            step: step.clone(),
        })
        .map_err(|error| ExecutorError::Failed(format!("{}: {error}", step.name)))?;
        let job = self
            .dispatcher
            .enqueue(JobSpec {
                payload,
                labels: step.runs_on.clone(),
                secrets: JobSecrets(secrets.0),
            })
            .await
            .map_err(|error| {
                ExecutorError::Failed(format!(
                    "{}: cannot queue it for a runner: {error}",
                    step.name
                ))
            })?;
        Ok(handle::start(self.dispatcher.clone(), job, step, self.wait))
    }

    /// The jobs of a previous server process were marked lost when the
    /// dispatcher started, and their runners kill them at their next
    /// heartbeat; a runner that cannot reach the server kills them itself
    /// once its lease has expired. Waiting out one lease lifetime (and a
    /// heartbeat) before the step runs again means it never runs twice at
    /// once.
    async fn reap(&self, _stage: &StageSpec, _index: i64, _left: Option<LeftBehind>) -> Reaped {
        tokio::time::sleep(LEASE_TTL + HEARTBEAT).await;
        Reaped::default()
    }

    /// Each runner removes what a step left when the step ends.
    async fn release(&self, _stage: &StageSpec) -> Result<(), ExecutorError> {
        Ok(())
    }
}
