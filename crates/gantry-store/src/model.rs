//! The records Gantry persists. Plain data: no behaviour beyond parsing and
//! printing statuses. JSON columns are `serde_json::Value` so that the store
//! never needs to know the shape of a pipeline, a trigger or a stage's state.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Milliseconds since the Unix epoch. Every timestamp in the store uses it, so
/// both backends store a plain `BIGINT`.
pub type Millis = i64;

/// The status of an execution, a stage or a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not started yet.
    Pending,
    Running,
    /// Paused until a person acts (manual judgment).
    Waiting,
    Succeeded,
    Failed,
    Canceled,
    /// Not run because its condition was false (or, for an execution, never).
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

    /// A terminal status never changes again (except by an explicit restart).
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

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown status {s:?}"))
    }
}

/// A pipeline as applied by `gantry apply`: its name and its validated spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PipelineRecord {
    pub name: String,
    pub application: Option<String>,
    /// The pipeline spec as JSON (the `gantry-config` shape, opaque here).
    pub spec: Value,
    /// Bumped on every change of `spec`; starts at 1.
    pub version: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// The 1-based positions of the triggers a person switched off
    /// ([`Store::set_trigger_enabled`](crate::Store::set_trigger_enabled)).
    pub disabled_triggers: Vec<u32>,
}

/// What `Store::upsert_pipeline` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Upsert {
    Created,
    Updated,
    Unchanged,
}

impl Upsert {
    /// What an upsert returning the row's version did: no row, nothing
    /// changed; version 1, created; a later one, updated.
    pub(crate) fn from_version(version: Option<i64>) -> Upsert {
        match version {
            None => Upsert::Unchanged,
            Some(1) => Upsert::Created,
            Some(_) => Upsert::Updated,
        }
    }
}

/// One run of a pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    pub id: String,
    pub pipeline: String,
    /// A copy of the pipeline spec taken when the execution was created, so a
    /// later `apply` never changes a running execution.
    pub spec: Value,
    pub status: Status,
    /// Parameter values after defaults were applied.
    pub parameters: Value,
    /// What started it (`{"type": "manual", "user": …}` and later git, cron, …).
    pub trigger: Value,
    /// Set when a `pipeline` stage started this execution.
    pub parent: Option<ParentRef>,
    pub created_at: Millis,
    pub started_at: Option<Millis>,
    pub ended_at: Option<Millis>,
    /// Why it failed or who canceled it.
    pub error: Option<String>,
    pub canceled_by: Option<String>,
}

/// The `pipeline` stage (and its attempt) that started a child execution. Unique:
/// creating a child twice for the same parent stage attempt is refused, which
/// makes starting a child idempotent across crashes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentRef {
    pub execution: String,
    pub stage: String,
    pub attempt: i64,
}

/// Everything needed to create an execution and its pending stages at once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewExecution {
    pub id: String,
    pub pipeline: String,
    pub spec: Value,
    pub parameters: Value,
    pub trigger: Value,
    pub parent: Option<ParentRef>,
    /// The ids of the stages, in file order; each starts `pending`.
    pub stage_ids: Vec<String>,
    pub created_at: Millis,
}

/// Filters for listing executions; `None` means any.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecutionFilter {
    pub pipeline: Option<String>,
    pub status: Option<Status>,
    /// Matches `trigger.type`.
    pub trigger_type: Option<String>,
    /// Newest first; at most this many (the store caps it at 1000).
    pub limit: Option<i64>,
    /// Only executions older than this one: the next page after it.
    pub before: Option<ExecutionCursor>,
}

/// Where a page of executions ends: the last one's creation time and id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionCursor {
    pub created_at: Millis,
    pub id: String,
}

/// The persisted state of one stage of one execution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    pub execution_id: String,
    pub stage_id: String,
    pub status: Status,
    /// 0 before the first start; incremented by every start (retries, restarts).
    pub attempt: i64,
    pub started_at: Option<Millis>,
    pub ended_at: Option<Millis>,
    /// `key -> value` outputs, a JSON object.
    pub outputs: Value,
    pub error: Option<String>,
    /// The stage type's own durable state (a wait's deadline, a judgment, a
    /// child execution id, …), a JSON object.
    pub state: Value,
}

/// One attempt of a stage: a retry or a restart begins the next, and the
/// ones before stay as they ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageAttemptRecord {
    pub execution_id: String,
    pub stage_id: String,
    /// 1 for the first.
    pub attempt: i64,
    pub status: Status,
    pub started_at: Option<Millis>,
    pub ended_at: Option<Millis>,
    pub error: Option<String>,
}

/// The persisted state of one step of a `run` stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub execution_id: String,
    pub stage_id: String,
    /// Position of the step in the stage (0-based).
    pub step: i64,
    pub status: Status,
    pub started_at: Option<Millis>,
    pub ended_at: Option<Millis>,
    pub exit_code: Option<i64>,
    /// Process group of the running step, so that a restarted server can kill
    /// what a crashed one left behind.
    pub pgid: Option<i64>,
    /// Start time of that process (from /proc), to avoid killing a reused pid.
    pub proc_start: Option<i64>,
    /// How many times the step was re-run after an interrupted server.
    pub interruptions: i64,
    pub error: Option<String>,
}

/// A log line to store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewLogLine {
    pub execution_id: String,
    pub stage_id: String,
    pub step: i64,
    pub ts: Millis,
    pub stream: LogStream,
    pub line: String,
}

/// A stored log line; `seq` increases with every line stored, across executions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub seq: i64,
    pub execution_id: String,
    pub stage_id: String,
    pub step: i64,
    pub ts: Millis,
    pub stream: LogStream,
    pub line: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
    /// Lines Gantry itself writes into a stage's log (retries, interruptions).
    System,
}

/// An API token; only the SHA-256 of the secret is stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing)]
    pub hash: String,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
    /// `admin`, `operator` or `viewer`; the API gives the words their meaning.
    #[serde(default = "default_token_role")]
    pub role: String,
}

/// Tokens made before roles existed could do everything.
fn default_token_role() -> String {
    "admin".to_owned()
}
