//! [`StepJobRunner`]: what `gantry runner` runs a leased step with. The
//! step goes through a `LocalExecutor` on the runner (prepare, spawn, wait,
//! drain, outputs, finish), in the runner's own copy of the stage's
//! directories (`WORK_DIR/workspaces/EXECUTION`, `WORK_DIR/runs/EXECUTION/STAGE`);
//! every line it prints is masked with the job's secret values before it
//! reaches the job's output file, the only thing the agent streams.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use gantry_container::ContainerEngine;
use gantry_runners::agent::{JobDir, JobOutcome, JobRunner, RunningJob};
use gantry_runners::protocol::LeasedJob;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::wire::{StepJob, StepJobPrivate, StepJobResult, encode_line};
use crate::engine::HostSteps;
use crate::executor::local::{LocalConfig, LocalHandle};
use crate::executor::{LocalExecutor, LogLine, StepExecutor, StepHandle, StepSecrets};
use crate::logs::Masker;

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
}

impl StepJobRunner {
    pub fn new(config: StepRunnerConfig) -> StepJobRunner {
        StepJobRunner {
            config,
            process_groups: Arc::default(),
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
pub struct RunningStep {
    handle: LocalHandle,
    writer: JoinHandle<()>,
}

impl JobRunner for StepJobRunner {
    type Running = RunningStep;

    async fn start(&self, job: &LeasedJob, dir: &JobDir) -> Result<RunningStep, String> {
        let StepJob { mut stage, step } = serde_json::from_value(job.payload.clone())
            .map_err(|error| format!("the job is not a step this runner can read: {error}"))?;
        for (what, id) in [("execution", &stage.execution), ("stage", &stage.stage)] {
            if !safe_component(id) {
                return Err(format!("the job's {what} id {id:?} is not a plain name"));
            }
        }
        let root = &self.config.work_dir;
        stage.workspace = root.join("workspaces").join(&stage.execution);
        stage.run_dir = root.join("runs").join(&stage.execution).join(&stage.stage);
        for path in [&stage.workspace, &stage.run_dir] {
            tokio::fs::create_dir_all(path)
                .await
                .map_err(|error| format!("cannot create {}: {error}", path.display()))?;
        }
        let executor = self.executor();
        executor
            .prepare(&stage)
            .await
            .map_err(|error| error.to_string())?;
        let masker = Masker::default();
        masker.add(job.secrets.0.values().cloned());
        let secrets = StepSecrets(job.secrets.0.clone());
        let (handle, lines) = executor
            .spawn(&stage, &step, secrets)
            .await
            .map_err(|error| error.to_string())?;
        let output = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.output())
            .await
            .map_err(|error| format!("{}: {error}", dir.output().display()))?;
        let writer = tokio::spawn(write_lines(lines, output, masker));
        Ok(RunningStep { handle, writer })
    }
}

impl RunningJob for RunningStep {
    async fn finish(mut self, cancel: CancellationToken) -> JobOutcome {
        let exit = tokio::select! {
            exit = self.handle.wait() => Some(exit),
            () = cancel.cancelled() => None,
        };
        let Some(exit) = exit else {
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
                let private = match self.handle.outputs().await {
                    Ok(outputs) => StepJobPrivate {
                        outputs: Some(outputs),
                        outputs_error: None,
                    },
                    Err(error) => StepJobPrivate {
                        outputs: None,
                        outputs_error: Some(error.to_string()),
                    },
                };
                let result = StepJobResult {
                    exit: Some(exit),
                    ..Default::default()
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
