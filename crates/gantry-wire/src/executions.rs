//! Executions, their stages and their logs.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The status of an execution, a stage or a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Running,
    /// Paused until a person acts (manual judgment).
    Waiting,
    Succeeded,
    Failed,
    Canceled,
    Skipped,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Pending,
        Status::Running,
        Status::Waiting,
        Status::Succeeded,
        Status::Failed,
        Status::Canceled,
        Status::Skipped,
    ];

    /// The word the API spells it with.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Waiting => "waiting",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Canceled => "canceled",
            Status::Skipped => "skipped",
        }
    }

    /// Whether nothing will change it any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Succeeded | Status::Failed | Status::Canceled | Status::Skipped
        )
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One run of a pipeline. Timestamps are RFC 3339 with milliseconds.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub id: String,
    pub pipeline: String,
    pub status: Status,
    /// What started it: `{type, …}`.
    #[schema(value_type = Object)]
    pub trigger: Value,
    /// Its parameters, secret ones masked.
    #[schema(value_type = Object)]
    pub parameters: Value,
    pub created_at: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub error: Option<String>,
    pub canceled_by: Option<String>,
    pub parent: Option<Parent>,
    /// Left out of lists; always present for a single execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<Stage>>,
}

/// The stage of another execution that started this one.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Parent {
    pub execution: String,
    pub stage: String,
    pub attempt: i64,
}

/// One stage of an execution, in the order of the pipeline file.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub id: String,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub status: Status,
    pub attempt: i64,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    /// Sealed values are masked.
    #[schema(value_type = Object)]
    pub outputs: Value,
    pub error: Option<String>,
    pub depends_on: Vec<String>,
    #[schema(value_type = Object)]
    pub state: Value,
    /// What a `manualJudgment` stage asks of the person who decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judgment: Option<JudgmentPrompt>,
    /// Every attempt begun, first to last (the last is the stage's own
    /// status): a retry or a restart begins the next. Only in the answer
    /// for one execution.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<StageAttempt>,
    /// The signals a stage of this type takes (a judgment while it waits, a
    /// skip while it runs), so a client offers only what the server accepts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepts: Vec<StageSignal>,
}

/// A signal a person sends a stage (`gantry approve|reject`, `gantry skip`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StageSignal {
    /// Approve or reject, while the stage waits for a judgment.
    Judgment,
    /// Skip, while the stage runs.
    Skip,
}

/// One attempt of a stage, as it ended (or is, for the current one).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageAttempt {
    /// 1 for the first.
    pub attempt: i64,
    pub status: Status,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub error: Option<String>,
}

/// The instructions and options of a `manualJudgment` stage, from the
/// execution's copy of the pipeline.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct JudgmentPrompt {
    pub instructions: Option<String>,
    /// When not empty, the decision names one of these.
    pub options: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ExecutionList {
    pub executions: Vec<Execution>,
    /// When the page is full, the `before` that lists the next (older) page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Which stream a log line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
    /// Lines Gantry itself writes into a stage's log.
    System,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    pub seq: i64,
    pub stage_id: String,
    pub step: i64,
    pub ts: String,
    pub stream: LogStream,
    pub line: String,
}

/// A page of stored log lines; `next` is the `after` of the next page.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LogPage {
    pub lines: Vec<LogLine>,
    pub next: i64,
}

/// A stage changed status (the `stage` event of an execution stream).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageEvent {
    pub execution_id: String,
    pub stage_id: String,
    pub status: Status,
    pub attempt: i64,
    pub at: String,
}

/// The last event of a stream: the execution ended.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct EndEvent {
    pub id: String,
    pub status: Status,
}

/// An event stream that failed.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorEvent {
    pub error: String,
}

/// A person's decision on a stage waiting for a manual judgment.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JudgmentBody {
    /// May be left out when exactly one stage waits for a judgment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    pub judgment: Decision,
    /// One of the stage's `options`; it becomes `outputs.judgment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Continue,
    Stop,
}

/// Skips a running `wait` stage.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkipBody {
    /// May be left out when exactly one `wait` stage is running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

/// A file a stage kept in the artifact store (a Cloud Build file's `artifacts.objects`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    pub stage: String,
    /// Its file name; `GET /api/v1/executions/{id}/artifacts/{stage}/{name}` downloads it.
    pub name: String,
    /// Where it was in the workspace.
    pub path: String,
    /// The Cloud Build file's `location` (`gs://bucket/dir/`).
    pub location: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ArtifactList {
    pub artifacts: Vec<Artifact>,
}
