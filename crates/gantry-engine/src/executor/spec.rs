//! The plain values that cross the executor seam: what to run, what comes
//! back. Everything a runner elsewhere would need serializes; secret values
//! travel apart ([`StepSecrets`]) and never print.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use gantry_store::LogStream;
use serde::{Deserialize, Serialize};

use super::local::engine_cli::Allowed;

/// A stage, as its executor sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageSpec {
    pub execution: String,
    pub stage: String,
    /// Shared by every stage of the execution.
    pub workspace: PathBuf,
    /// The stage's own: step output files, scripts, temporary files.
    pub run_dir: PathBuf,
    /// Named volumes the stage's container steps mount.
    pub volumes: Vec<String>,
    /// Whether any step runs in a container (the stage then needs an engine).
    pub uses_containers: bool,
    /// The server restarted while the stage ran: a step may have left a
    /// container before its record was written.
    pub resumed: bool,
}

/// One step: a plain value, so that it can go to a runner.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSpec {
    pub index: i64,
    /// How messages name the step ("step 2 (build)").
    pub name: String,
    pub script: Option<String>,
    pub command: Option<Vec<String>>,
    pub image: Option<String>,
    pub entrypoint: Option<String>,
    pub args: Vec<String>,
    /// Variables with their values, lowest precedence first resolved
    /// already; the executor adds `GANTRY_OUTPUT` and the like.
    pub env: BTreeMap<String, String>,
    /// Variables whose values are secret: names only.
    pub secret_env: Vec<String>,
    pub volumes: Vec<StepVolume>,
    /// Relative to the workspace.
    pub dir: Option<String>,
    pub timeout: Option<Duration>,
    pub confinement: Confinement,
    /// Runners it may run on must have all these labels (`runsOn`).
    #[serde(default)]
    pub runs_on: Vec<String>,
    /// When its runner is lost: run it again once elsewhere (the stage's
    /// `onInterrupt: rerun`, and not re-run already), or fail.
    #[serde(default)]
    pub rerun_if_lost: bool,
}

impl StepSpec {
    /// Cloud Build's docker builder in a container: its `docker` talks to the Docker API
    /// gate in the stage's run directory (`DOCKER_HOST` at the gate's socket), which
    /// whoever runs the step starts beside it.
    pub(crate) fn goes_through_docker_gate(&self) -> bool {
        self.image.is_some()
            && self.env.get("DOCKER_HOST").map(String::as_str)
                == Some(gantry_cloudbuild::DOCKER_BUILDER_HOST)
    }

    /// The step drives the container engine of the machine it runs on (through the gate
    /// or as the engine's CLI): what it builds stays in that engine's storage.
    pub(crate) fn uses_the_engine(&self) -> bool {
        self.goes_through_docker_gate() || matches!(self.confinement, Confinement::EngineCli(_))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepVolume {
    pub name: String,
    pub path: String,
}

/// What a host step may reach.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Confinement {
    /// The executor's confinement for steps (the step user under Landlock
    /// when the server has one); a container for a step with an image.
    #[default]
    Step,
    /// The container engine's CLI, with the engine's own rights, within what
    /// its allow-list let through.
    EngineCli(Allowed),
}

/// The values of a step's secret variables.
#[derive(Clone, Default)]
pub struct StepSecrets(pub BTreeMap<String, String>);

impl std::fmt::Debug for StepSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// One line a step printed (or the executor said about it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub stream: LogStream,
    pub text: String,
}

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepExit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl StepExit {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// What a restarted server needs to find a step's leftovers: the process
/// group it ran in, and when its leader started (a pid alone may be reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftBehind {
    pub pgid: i64,
    pub start: i64,
}

/// What [`super::StepExecutor::reap`] found of an interrupted step.
#[derive(Debug, Default)]
pub struct Reaped {
    pub killed_processes: usize,
    pub removed_containers: usize,
    /// Leftovers it could not remove.
    pub errors: Vec<String>,
}

/// Why an executor could not do its part; every message names the step
/// when there is one.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The step cannot run here as it is written (no engine for its image,
    /// host steps refused, a path outside the workspace, …).
    #[error("{0}")]
    Refused(String),
    /// Everything was ready but its process could not start.
    #[error("{0}")]
    Start(String),
    /// Something of the executor's own failed.
    #[error("{0}")]
    Failed(String),
    /// The step failed with a message that names the step already (a
    /// runner's, from the executor that ran it there).
    #[error("{0}")]
    Named(String),
}
