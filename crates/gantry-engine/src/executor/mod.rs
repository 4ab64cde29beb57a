//! The step executor seam: what a `run` stage asks of whatever executes its
//! steps. The stage decides (order, failure rules, records, resume policy);
//! an executor only runs: [`StepExecutor::prepare`] makes a stage's
//! directories and volumes ready, [`StepExecutor::spawn`] starts one step
//! from a plain [`StepSpec`] and hands back a [`StepHandle`] that streams
//! its log lines, waits for it, kills it and yields its outputs, and
//! [`StepExecutor::reap`] deals with what a step left behind when the
//! server stopped under it. [`LocalExecutor`] runs steps on this machine
//! (host processes and podman/docker containers); `remote::RemoteExecutor`
//! hands them to runners as jobs, where a `LocalExecutor` runs them, which
//! is why a [`StepSpec`] is data that serializes. A stage gets one or the
//! other ([`StageExecutor`]) from `StageContext::step_executor`.
//!
//! Architecture invariant: the `run` stage talks to steps only through this
//! trait; nothing under `executor/` reads the execution's state or writes
//! step records.

mod choice;
pub mod local;
pub mod remote;
mod spec;

use std::future::Future;

use serde_json::{Map, Value};

pub use choice::{StageExecutor, StageHandle};
pub use local::LocalExecutor;
pub use spec::{
    Confinement, ExecutorError, LeftBehind, LogLine, Reaped, StageSpec, StepExit, StepSecrets,
    StepSpec, StepVolume,
};

/// Runs the steps of `run` stages somewhere.
pub trait StepExecutor: Send + Sync {
    type Handle: StepHandle;

    /// Makes the stage's workspace, run directory and volumes ready; runs
    /// before its first step (again after a restart).
    fn prepare(&self, stage: &StageSpec) -> impl Future<Output = Result<(), ExecutorError>> + Send;

    /// Starts one step; its log lines arrive on the returned receiver until
    /// the step's output ends. `secrets` holds the values of the variables
    /// [`StepSpec::secret_env`] names, which never travel with the spec.
    fn spawn(
        &self,
        stage: &StageSpec,
        step: &StepSpec,
        secrets: StepSecrets,
    ) -> impl Future<
        Output = Result<(Self::Handle, tokio::sync::mpsc::Receiver<LogLine>), ExecutorError>,
    > + Send;

    /// After a server restart: kills (or removes) what step `index` of the
    /// stage left behind in its interrupted run, and says what it found.
    fn reap(
        &self,
        stage: &StageSpec,
        index: i64,
        left: Option<LeftBehind>,
    ) -> impl Future<Output = Reaped> + Send;

    /// Removes what the stage's steps leave once they all ended (containers,
    /// volumes, temporary files).
    fn release(&self, stage: &StageSpec) -> impl Future<Output = Result<(), ExecutorError>> + Send;
}

/// One running step.
pub trait StepHandle: Send {
    /// When the step's process started (milliseconds since the epoch, by
    /// the executor's clock), after its image was found or pulled.
    fn started_at(&self) -> i64;

    /// What a restarted server needs to find the step's leftovers, written
    /// into the step's record before the stage waits for it.
    fn left_behind(&self) -> Option<LeftBehind>;

    /// Waits for the step's main process to end; cancel-safe, so that a
    /// stage can race it against its stop and the step's timeout.
    fn wait(&mut self) -> impl Future<Output = Result<StepExit, ExecutorError>> + Send;

    /// What the step waits for before it can start (a runner with its
    /// labels), as it changes: `None` while it waits for nothing. The stage
    /// shows it in its `outputs.waitingFor`. A step that starts at once
    /// has no such thing to say.
    fn waiting_for(&self) -> Option<tokio::sync::watch::Receiver<Option<String>>> {
        None
    }

    /// The runs of the step that a lost runner ended while the step runs
    /// again elsewhere, as they happen: for each, why (`runner NAME lost
    /// …`). The stage records each as an ended attempt. A step that runs
    /// here loses no runner.
    fn lost_runs(&self) -> Option<tokio::sync::watch::Receiver<Vec<String>>> {
        None
    }

    /// After [`StepHandle::wait`]: kills what the step left running and
    /// waits until every line of its output was sent.
    fn drain(&mut self) -> impl Future<Output = ()> + Send;

    /// Stops the step (its container first, then its processes, with a
    /// grace period); [`StepHandle::wait`] then reports its end.
    fn kill(&mut self) -> impl Future<Output = ()> + Send;

    /// The `key=value` outputs the step left, read once it ended.
    fn outputs(
        &mut self,
    ) -> impl Future<Output = Result<Map<String, Value>, local::output::OutputsError>> + Send;

    /// Removes what only this step used (its output file, its script file),
    /// after its outputs were read; an error is worth a line in the log,
    /// not a failed step.
    fn finish(self) -> impl Future<Output = Result<(), ExecutorError>> + Send;
}

#[cfg(test)]
mod tests;
