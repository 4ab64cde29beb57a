//! `LocalExecutor`: steps on this machine. A host step runs in its own
//! process group, confined by `gantry-sandbox` when the server has a step
//! user; a step with an image runs through the container engine's CLI
//! (podman or docker), whose client process also gets a group so that a
//! restarted server can kill it, and whose container carries the stage's
//! labels so that it can be found and removed. Scripts (and, under podman,
//! secret values) travel in a memory file (`fd_delivery`), outputs through
//! the `$GANTRY_OUTPUT` file in the stage's run directory.
//!
//! API boundary: the `run` stage reaches this module through
//! `crate::executor::StepExecutor` only, plus [`engine_cli::check`], the
//! allow-list it applies to Cloud Build's docker builder before the stage
//! runs.

mod command;
mod command_error;
pub mod container;
pub mod engine_cli;
mod fd_delivery;
mod handle;
pub mod output;
mod prepare;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use gantry_container::ContainerEngine;

use super::{
    ExecutorError, LeftBehind, LogLine, Reaped, StageSpec, StepExecutor, StepSecrets, StepSpec,
};
use crate::engine::HostSteps;
use crate::process::{self, ProcessId};
use container::StageLabels;
pub use handle::LocalHandle;

/// What the local executor uses of the server.
#[derive(Clone, Default)]
pub struct LocalConfig {
    pub containers: Option<ContainerEngine>,
    pub sandbox: Option<gantry_sandbox::Sandbox>,
    pub host_steps: HostSteps,
    pub data_dir: PathBuf,
    /// The process groups of running steps, killed when the server shuts
    /// down.
    pub process_groups: Arc<Mutex<HashSet<i32>>>,
}

/// Runs steps on this machine with the server's container engine and
/// sandbox.
pub struct LocalExecutor {
    config: LocalConfig,
    /// Images found (or pulled) already: each is checked once per
    /// executor, that is per stage, not once per step (an `image exists` is
    /// a whole engine process, ~50 ms here).
    images: Mutex<HashSet<String>>,
}

impl LocalExecutor {
    pub fn new(config: LocalConfig) -> LocalExecutor {
        LocalExecutor {
            config,
            images: Mutex::default(),
        }
    }

    fn containers(&self) -> Option<&ContainerEngine> {
        self.config.containers.as_ref()
    }

    fn sandbox(&self) -> Option<&gantry_sandbox::Sandbox> {
        self.config.sandbox.as_ref()
    }
}

fn labels(stage: &StageSpec) -> StageLabels {
    StageLabels {
        execution: stage.execution.clone(),
        stage: stage.stage.clone(),
    }
}

impl StepExecutor for LocalExecutor {
    type Handle = LocalHandle;

    async fn prepare(&self, stage: &StageSpec) -> Result<(), ExecutorError> {
        prepare::confinement(self, stage)
            .await
            .map_err(|error| ExecutorError::Failed(error.to_string()))?;
        prepare::volumes(self, stage)
            .await
            .map_err(|error| ExecutorError::Failed(error.to_string()))
    }

    async fn spawn(
        &self,
        stage: &StageSpec,
        step: &StepSpec,
        secrets: StepSecrets,
    ) -> Result<(LocalHandle, tokio::sync::mpsc::Receiver<LogLine>), ExecutorError> {
        command::spawn(self, stage, step, secrets).await
    }

    async fn reap(&self, stage: &StageSpec, index: i64, left: Option<LeftBehind>) -> Reaped {
        let mut reaped = Reaped::default();
        if let Some(left) = left {
            reaped.killed_processes = process::kill_orphans(ProcessId {
                pid: left.pgid as i32,
                start: left.start,
            });
        }
        if let Some(engine) = self.containers().filter(|_| stage.uses_containers) {
            match labels(stage).remove_step_containers(engine, index).await {
                Ok(removed) => reaped.removed_containers = removed,
                Err(error) => reaped.errors.push(error.to_string()),
            }
        }
        reaped
    }

    async fn release(&self, stage: &StageSpec) -> Result<(), ExecutorError> {
        let mut result = Ok(());
        if let Some(engine) = self.containers() {
            result = prepare::remove_leftovers(stage, engine)
                .await
                .map_err(|error| {
                    ExecutorError::Failed(format!(
                        "cannot remove the stage's containers and volumes: {error}"
                    ))
                });
        }
        let _ = tokio::fs::remove_dir_all(prepare::tmp_dir(stage)).await;
        result
    }
}
