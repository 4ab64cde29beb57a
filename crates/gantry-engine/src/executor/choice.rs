//! The executor a stage runs its steps with, chosen per stage by
//! `StageContext::step_executor`: this machine, or runners.

use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::local::output::OutputsError;
use super::local::{LocalExecutor, LocalHandle};
use super::remote::{RemoteExecutor, RemoteHandle};
use super::{
    ExecutorError, LeftBehind, LogLine, Reaped, StageSpec, StepExecutor, StepExit, StepHandle,
    StepSecrets, StepSpec,
};

pub enum StageExecutor {
    Local(LocalExecutor),
    Remote(RemoteExecutor),
}

pub enum StageHandle {
    // Boxed: a handle is made once per step, and the local one is large.
    Local(Box<LocalHandle>),
    Remote(RemoteHandle),
}

impl StageExecutor {
    /// Pushes a build's `images` from the runner that built them; `None` when this
    /// machine's engine holds them (steps in the server's own process tree), and the
    /// server pushes them itself.
    pub async fn push_on_runner(
        &self,
        stage: &StageSpec,
        images: Vec<super::remote::ImageToPush>,
        credentials: Option<&gantry_container::Credentials>,
        stop: &tokio_util::sync::CancellationToken,
    ) -> Option<Result<Vec<super::remote::PushedImage>, super::remote::PushFailure>> {
        match self {
            StageExecutor::Local(_) => None,
            StageExecutor::Remote(executor) => {
                executor.push_images(stage, images, credentials, stop).await
            }
        }
    }
}

impl StepExecutor for StageExecutor {
    type Handle = StageHandle;

    async fn prepare(&self, stage: &StageSpec) -> Result<(), ExecutorError> {
        match self {
            StageExecutor::Local(executor) => executor.prepare(stage).await,
            StageExecutor::Remote(executor) => executor.prepare(stage).await,
        }
    }

    async fn spawn(
        &self,
        stage: &StageSpec,
        step: &StepSpec,
        secrets: StepSecrets,
    ) -> Result<(StageHandle, mpsc::Receiver<LogLine>), ExecutorError> {
        match self {
            StageExecutor::Local(executor) => {
                let (handle, lines) = executor.spawn(stage, step, secrets).await?;
                Ok((StageHandle::Local(Box::new(handle)), lines))
            }
            StageExecutor::Remote(executor) => {
                let (handle, lines) = executor.spawn(stage, step, secrets).await?;
                Ok((StageHandle::Remote(handle), lines))
            }
        }
    }

    async fn reap(&self, stage: &StageSpec, index: i64, left: Option<LeftBehind>) -> Reaped {
        match self {
            StageExecutor::Local(executor) => executor.reap(stage, index, left).await,
            StageExecutor::Remote(executor) => executor.reap(stage, index, left).await,
        }
    }

    async fn release(&self, stage: &StageSpec) -> Result<(), ExecutorError> {
        match self {
            StageExecutor::Local(executor) => executor.release(stage).await,
            StageExecutor::Remote(executor) => executor.release(stage).await,
        }
    }
}

impl StepHandle for StageHandle {
    fn started_at(&self) -> i64 {
        match self {
            StageHandle::Local(handle) => handle.started_at(),
            StageHandle::Remote(handle) => handle.started_at(),
        }
    }

    fn left_behind(&self) -> Option<LeftBehind> {
        match self {
            StageHandle::Local(handle) => handle.left_behind(),
            StageHandle::Remote(handle) => handle.left_behind(),
        }
    }

    fn waiting_for(&self) -> Option<tokio::sync::watch::Receiver<Option<String>>> {
        match self {
            StageHandle::Local(handle) => handle.waiting_for(),
            StageHandle::Remote(handle) => handle.waiting_for(),
        }
    }

    fn lost_runs(&self) -> Option<tokio::sync::watch::Receiver<Vec<String>>> {
        match self {
            StageHandle::Local(handle) => handle.lost_runs(),
            StageHandle::Remote(handle) => handle.lost_runs(),
        }
    }

    async fn wait(&mut self) -> Result<StepExit, ExecutorError> {
        match self {
            StageHandle::Local(handle) => handle.wait().await,
            StageHandle::Remote(handle) => handle.wait().await,
        }
    }

    async fn drain(&mut self) {
        match self {
            StageHandle::Local(handle) => handle.drain().await,
            StageHandle::Remote(handle) => handle.drain().await,
        }
    }

    async fn kill(&mut self) {
        match self {
            StageHandle::Local(handle) => handle.kill().await,
            StageHandle::Remote(handle) => handle.kill().await,
        }
    }

    async fn outputs(&mut self) -> Result<Map<String, Value>, OutputsError> {
        match self {
            StageHandle::Local(handle) => handle.outputs().await,
            StageHandle::Remote(handle) => handle.outputs().await,
        }
    }

    async fn finish(self) -> Result<(), ExecutorError> {
        match self {
            StageHandle::Local(handle) => (*handle).finish().await,
            StageHandle::Remote(handle) => handle.finish().await,
        }
    }
}
