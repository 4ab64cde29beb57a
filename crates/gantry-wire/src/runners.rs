//! Runners: the messages between `gantry runner` and the server (JSON
//! bodies under `/api/v1/runners/…`, authenticated with the runner's
//! credential), and the admin's view of runners. `gantry-runners` uses the
//! protocol messages on both sides and adds the protocol's bounds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

// --- The agent's protocol ----------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterRequest {
    pub protocol: u32,
    /// The registration token from `gantry runner token create`.
    pub token: String,
    pub name: String,
    pub labels: Vec<String>,
    pub capacity: u32,
    /// The runner's `gantry` version.
    pub version: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterResponse {
    pub runner_id: String,
    pub name: String,
    /// The runner's own secret; shown once, kept in its work directory.
    pub credential: String,
    pub timing: Timing,
}

/// The bounds the server holds runners to, sent at registration and with
/// every lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Timing {
    pub heartbeat_ms: u64,
    pub lease_ttl_ms: u64,
    pub long_poll_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeaseRequest {
    /// Jobs the runner can start now; the server hands out at most one per
    /// request and never more than the runner's registered capacity.
    pub free_slots: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaseResponse {
    /// `null` when the long poll ended with nothing to do.
    pub job: Option<LeasedJob>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeasedJob {
    pub lease_id: String,
    pub job_id: String,
    /// What to run; opaque to the protocol (a step and its stage).
    #[schema(value_type = Object)]
    pub payload: Value,
    /// 1 for the first run of the job, 2 for a re-run elsewhere, …
    pub attempt: i64,
    pub timing: Timing,
    /// The values of the secrets the job names: only in this answer, to
    /// the runner that leased the job; never stored by the server, never
    /// written to the runner's disk.
    #[serde(default, skip_serializing_if = "JobSecrets::is_empty")]
    pub secrets: JobSecrets,
}

/// Secret values by name; their `Debug` shows the names only.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct JobSecrets(pub BTreeMap<String, String>);

impl JobSecrets {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for JobSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeartbeatRequest {
    pub leases: Vec<HeldLease>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeldLease {
    pub lease_id: String,
    /// How many log lines the runner has of this job so far.
    pub log_lines: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatResponse {
    pub renewed: Vec<RenewedLease>,
    /// Leases the runner no longer holds (expired, canceled, unknown): it
    /// kills their jobs and forgets them.
    pub cancel: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RenewedLease {
    pub lease_id: String,
    /// Log lines `0..logAcked` reached the server: the runner sends from here.
    pub log_acked: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogBatch {
    pub lease_id: String,
    /// The sequence number (0-based line number) of `lines[0]`.
    pub first: u64,
    pub lines: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogAck {
    /// Lines `0..acked` are the server's; a batch starting past it was not
    /// taken (a gap) and is sent again from `acked`.
    pub acked: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FinishRequest {
    pub lease_id: String,
    /// What the job ended with; opaque to the protocol.
    #[schema(value_type = Object)]
    pub result: Value,
    /// What only the job's owner may read (a step's outputs, which may
    /// hold a secret): handed over, never stored in the jobs table.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    #[schema(value_type = Object)]
    pub private: Value,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FinishResponse {
    pub job_id: String,
}

/// The snapshot a runner uploaded, named by its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceUploaded {
    pub sha256: String,
}

/// The lease a workspace transfer is for (its query string).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseQuery {
    pub lease: String,
}

// --- The admin's view --------------------------------------------------------

/// A runner as `gantry runner list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Runner {
    pub name: String,
    /// `enabled` or `disabled`.
    pub state: String,
    pub labels: Vec<String>,
    pub capacity: i64,
    /// Jobs it holds now.
    pub load: u64,
    /// The `gantry` version it registered with.
    pub version: String,
    pub created_at: String,
    pub last_contact_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunnerList {
    pub runners: Vec<Runner>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRunnerToken {
    /// How long the token may be used, e.g. `1h` or `7d`; forever if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// How many runners may register with it; unlimited if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<i64>,
}

/// A new registration token, with its secret: the only time it is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedRunnerToken {
    pub id: String,
    pub token: String,
    pub expires_at: Option<String>,
    pub uses_left: Option<i64>,
}

/// A runner enabled or disabled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunnerState {
    pub name: String,
    pub state: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RemovedRunner {
    pub removed: String,
}

/// A job waiting for a runner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueuedRunnerJob {
    pub id: String,
    pub labels: Vec<String>,
    /// Milliseconds since the epoch.
    pub queued_at: i64,
    /// False when no enabled runner has all its labels: it waits for one.
    pub placeable: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueuedRunnerJobs {
    pub jobs: Vec<QueuedRunnerJob>,
}
