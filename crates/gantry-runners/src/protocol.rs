//! The protocol between `gantry runner` and the server: its messages are
//! `gantry_wire::runners`' types (so the OpenAPI document has their
//! schemas), re-exported here with the bounds both sides keep. JSON bodies
//! under `/api/v1/runners/…`; every request carries
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

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use gantry_wire::runners::{
    FinishRequest, FinishResponse, HeartbeatRequest, HeartbeatResponse, HeldLease, JobSecrets,
    LeaseQuery, LeaseRequest, LeaseResponse, LeasedJob, LogAck, LogBatch, RegisterRequest,
    RegisterResponse, RenewedLease, Timing, WorkspaceUploaded,
};

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

/// The bounds this server holds runners to ([`HEARTBEAT`], [`LEASE_TTL`],
/// [`LONG_POLL`]).
pub fn timing() -> Timing {
    Timing {
        heartbeat_ms: HEARTBEAT.as_millis() as u64,
        lease_ttl_ms: LEASE_TTL.as_millis() as u64,
        long_poll_ms: LONG_POLL.as_millis() as u64,
    }
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
