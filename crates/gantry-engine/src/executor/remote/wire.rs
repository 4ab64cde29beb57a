//! What travels between the remote executor and a runner: the job's
//! payload, its result, and its log lines (one line of the job's output per
//! log line, its stream in a two-character prefix).

use gantry_store::LogStream;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::executor::{LogLine, StageSpec, StepExit, StepSpec};

/// A runner job's payload: one step and the stage it belongs to.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StepJob {
    pub(crate) stage: StageSpec,
    pub(crate) step: StepSpec,
    /// The workspace snapshot the step starts from (its SHA-256).
    #[serde(default)]
    pub(crate) snapshot: Option<String>,
}

/// The job's secrets hold the step's program under this name (not a
/// variable's: no variable name has a colon), never its stored payload: a
/// script may hold a secret value an expression put there, and the jobs
/// table is on disk.
pub(crate) const PROGRAM: &str = "gantry:program";

/// What a step runs, which travels with its secrets.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StepProgram {
    #[serde(default)]
    script: Option<String>,
    #[serde(default)]
    command: Option<Vec<String>>,
    #[serde(default)]
    entrypoint: Option<String>,
    #[serde(default)]
    args: Vec<String>,
}

impl StepProgram {
    /// Takes the program out of `step`, which keeps the rest.
    pub(crate) fn take(step: &mut StepSpec) -> StepProgram {
        StepProgram {
            script: step.script.take(),
            command: step.command.take(),
            entrypoint: step.entrypoint.take(),
            args: std::mem::take(&mut step.args),
        }
    }

    /// Puts the program back into `step`.
    pub(crate) fn put(self, step: &mut StepSpec) {
        step.script = self.script;
        step.command = self.command;
        step.entrypoint = self.entrypoint;
        step.args = self.args;
    }
}

/// What a runner job of the remote executor asks: a step, or the removal
/// of what a stage's steps left on the runner.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum RunnerJob {
    // Boxed: read once per job, and a step is large.
    Step(Box<StepJob>),
    Release { release: StageSpec },
    Push { push: PushJob },
}

/// A runner job that pushes a Cloud Build file's `images` from the runner whose engine
/// built them, after the build's steps.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct PushJob {
    /// The stage whose build made the images (for the runner's log).
    pub(crate) stage: StageSpec,
    pub(crate) images: Vec<ImageToPush>,
}

/// One image to push, and whether its registry's TLS certificate is checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageToPush {
    pub image: String,
    pub tls_verify: bool,
}

/// The job's secrets hold the registry account of a push job under this name
/// (`user:password`, as a secret holds it): never in the stored payload, never on a
/// command line.
pub(crate) const REGISTRY_CREDENTIALS: &str = "gantry:registry-credentials";

/// A push job's result: the images pushed with their digests, in order, or why they
/// were not (`error`, the agent's own shape for a job that failed).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PushJobResult {
    #[serde(default)]
    pub(crate) pushed: Vec<PushedImage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// The registry answered 401: the stage's account is missing or wrong.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) unauthorized: bool,
}

/// Why a push on a runner failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PushFailure {
    pub message: String,
    /// The registry answered 401 (so the stage's account is missing or wrong).
    pub unauthorized: bool,
}

impl From<String> for PushFailure {
    fn from(message: String) -> PushFailure {
        PushFailure {
            message,
            unauthorized: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedImage {
    pub image: String,
    pub digest: String,
}

/// A runner job's result, stored with the job: how the step ended. A job
/// that could not start reports `{"error": …}` (the agent's own shape).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StepJobResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) exit: Option<StepExit>,
    /// The step could not run on the runner (no container engine, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) canceled: bool,
    /// The snapshot of the workspace the step left, when it changed it
    /// (sent to the server before this result).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) workspace: Option<String>,
}

/// What only the step's owner reads: its outputs, which may hold a secret
/// (the server seals those before it stores them).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StepJobPrivate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) outputs: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) outputs_error: Option<String>,
}

pub(crate) fn encode_line(line: &LogLine) -> String {
    let tag = match line.stream {
        LogStream::Stdout => "o ",
        LogStream::Stderr => "e ",
        LogStream::System => "s ",
    };
    // One log line is one line of the job's output.
    let mut text = String::with_capacity(tag.len() + line.text.len());
    text.push_str(tag);
    text.push_str(&line.text.replace('\n', " "));
    text
}

pub(crate) fn decode_line(text: &str) -> LogLine {
    let (stream, rest) = match text.split_at_checked(2) {
        Some(("o ", rest)) => (LogStream::Stdout, rest),
        Some(("e ", rest)) => (LogStream::Stderr, rest),
        Some(("s ", rest)) => (LogStream::System, rest),
        _ => (LogStream::Stdout, text),
    };
    LogLine {
        stream,
        text: rest.to_owned(),
    }
}
