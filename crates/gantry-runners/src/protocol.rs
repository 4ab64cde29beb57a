//! The messages between `gantry runner` and the server, shared by both.
//! JSON bodies under `/api/v1/runners/…`; every request carries
//! [`PROTOCOL_HEADER`] with [`PROTOCOL_VERSION`], and the server refuses a
//! version it does not speak, naming both.
//!
//! | request | route | answer |
//! |---|---|---|
//! | [`RegisterRequest`] (registration token) | `POST register` | [`RegisterResponse`] (credential) |
//! | [`LeaseRequest`] (long poll) | `POST lease` | [`LeaseResponse`] (a job or none) |
//! | [`HeartbeatRequest`] | `POST heartbeat` | [`HeartbeatResponse`] (renewed / cancel) |
//! | [`LogBatch`] | `POST logs` | [`LogAck`] |
//! | [`FinishRequest`] | `POST finish` | [`FinishResponse`] |
//! | `?lease=ID` | `GET workspace/SHA256` | the job's workspace snapshot (a tar) |
//! | a tar, `?lease=ID` | `PUT workspace` | [`WorkspaceUploaded`] |
//!
//! All but `register` authenticate with the runner's credential as a bearer
//! token. A refused credential (wrong, disabled or removed runner) is a 401:
//! the runner must kill what it runs. A lease the server no longer counts
//! as the runner's (expired, canceled) is a 409 on `logs` and `finish`, and
//! appears under `cancel` in a heartbeat's answer.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const PROTOCOL_VERSION: u32 = 1;
pub const PROTOCOL_HEADER: &str = "gantry-runner-protocol";

/// How often a runner renews its leases.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a lease lives without a heartbeat: five missed heartbeats, so a
/// busy network or a paused process does not lose work, yet a dead runner's
/// job runs again within seconds (GitLab waits an hour, Buildkite minutes).
pub const LEASE_TTL: Duration = Duration::from_secs(5);
/// How long a lease request waits for a job before answering "none"; below
/// the idle timeouts of common proxies (30 s and up).
pub const LONG_POLL: Duration = Duration::from_secs(25);
/// The most log lines, and bytes of them, in one batch: well within the
/// API's 2 MiB JSON body limit even when every byte needs escaping.
pub const MAX_BATCH_LINES: usize = 5_000;
pub const MAX_BATCH_BYTES: usize = 256 << 10;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timing {
    pub heartbeat_ms: u64,
    pub lease_ttl_ms: u64,
    pub long_poll_ms: u64,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            heartbeat_ms: HEARTBEAT.as_millis() as u64,
            lease_ttl_ms: LEASE_TTL.as_millis() as u64,
            long_poll_ms: LONG_POLL.as_millis() as u64,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeaseRequest {
    /// Jobs the runner can start now; the server hands out at most one per
    /// request and never more than the runner's registered capacity.
    pub free_slots: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseResponse {
    /// `None` when the long poll ended with nothing to do.
    pub job: Option<LeasedJob>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeasedJob {
    pub lease_id: String,
    pub job_id: String,
    /// What to run; opaque to the protocol (a step spec after the merge).
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
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeartbeatRequest {
    pub leases: Vec<HeldLease>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeldLease {
    pub lease_id: String,
    /// How many log lines the runner has of this job so far.
    pub log_lines: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatResponse {
    pub renewed: Vec<RenewedLease>,
    /// Leases the runner no longer holds (expired, canceled, unknown): it
    /// kills their jobs and forgets them.
    pub cancel: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenewedLease {
    pub lease_id: String,
    /// Log lines `0..log_acked` reached the server: the runner sends from here.
    pub log_acked: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogBatch {
    pub lease_id: String,
    /// The sequence number (0-based line number) of `lines[0]`.
    pub first: u64,
    pub lines: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogAck {
    /// Lines `0..acked` are the server's; a batch starting past it was not
    /// taken (a gap) and is sent again from `acked`.
    pub acked: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FinishRequest {
    pub lease_id: String,
    /// What the job ended with; opaque to the protocol.
    pub result: Value,
    /// What only the job's owner may read (a step's outputs, which may
    /// hold a secret): handed over, never stored in the jobs table.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub private: Value,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinishResponse {
    pub job_id: String,
}

/// The snapshot a runner uploaded, named by its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceUploaded {
    pub sha256: String,
}

/// The lease a workspace transfer is for (its query string).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseQuery {
    pub lease: String,
}

/// Whether `name` is a snapshot's name: 64 lowercase hex digits.
pub fn is_sha256(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The error body every refusal has (the API's own shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub error: String,
}
