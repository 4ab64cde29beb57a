//! The runners' operations (`gantry-runners`): the agent's routes authenticate with the
//! runner's credential as a bearer token and the header `gantry-runner-protocol: 1`, not
//! with an API token; their messages are `gantry_wire::runners`' types. The admin routes
//! take API tokens as every other route.

use axum::http::Method;
use gantry_wire::runners;

use super::super::schema;
use super::{Operation, op};

/// The runners' operations, in the order of the route table (after every other route).
pub(super) fn all() -> Vec<Operation> {
    vec![
        // POST /api/v1/runners/register
        op(
            Method::POST,
            "/api/v1/runners/register",
            "registerRunner",
            "runners",
            "Register a runner with a registration token; answers its credential",
        )
        .body(schema::<runners::RegisterRequest>)
        .answers(
            201,
            "the runner's id, name and credential",
            schema::<runners::RegisterResponse>,
        )
        .errors(&[400, 401]),
        // POST /api/v1/runners/lease
        op(
            Method::POST,
            "/api/v1/runners/lease",
            "leaseRunnerJob",
            "runners",
            "Lease a job (long poll, at most 25 s)",
        )
        .body(schema::<runners::LeaseRequest>)
        .answers(
            200,
            "a leased job, or none",
            schema::<runners::LeaseResponse>,
        )
        .errors(&[400, 401]),
        // POST /api/v1/runners/heartbeat
        op(
            Method::POST,
            "/api/v1/runners/heartbeat",
            "runnerHeartbeat",
            "runners",
            "Renew the leases a runner holds; answers those to cancel",
        )
        .body(schema::<runners::HeartbeatRequest>)
        .answers(
            200,
            "renewed leases and leases to cancel",
            schema::<runners::HeartbeatResponse>,
        )
        .errors(&[400, 401]),
        // POST /api/v1/runners/logs
        op(
            Method::POST,
            "/api/v1/runners/logs",
            "runnerLogs",
            "runners",
            "Send a job's log lines from a sequence number; answers what is acknowledged",
        )
        .body(schema::<runners::LogBatch>)
        .answers(200, "the last acknowledged line", schema::<runners::LogAck>)
        .errors(&[400, 401, 409]),
        // POST /api/v1/runners/finish
        op(
            Method::POST,
            "/api/v1/runners/finish",
            "finishRunnerJob",
            "runners",
            "Report a job's result",
        )
        .body(schema::<runners::FinishRequest>)
        .answers(200, "the finished job", schema::<runners::FinishResponse>)
        .errors(&[400, 401, 409]),
        // GET /api/v1/runners/workspace/{sha256}
        op(
            Method::GET,
            "/api/v1/runners/workspace/{sha256}",
            "downloadRunnerWorkspace",
            "runners",
            "A snapshot (tar) of the workspace of the job a runner leases (`?lease=ID`)",
        )
        .binary(200, "the snapshot, a tar")
        .errors(&[400, 401, 404, 409]),
        // PUT /api/v1/runners/workspace
        op(
            Method::PUT,
            "/api/v1/runners/workspace",
            "uploadRunnerWorkspace",
            "runners",
            "A runner's new snapshot (tar) of its leased job's workspace (`?lease=ID`)",
        )
        // A tar, sent as bytes: OpenAPI tools cannot generate `application/x-tar`.
        .raw_body(&["application/octet-stream"])
        .answers(
            200,
            "the snapshot's SHA-256",
            schema::<runners::WorkspaceUploaded>,
        )
        .errors(&[400, 401, 409, 413]),
        // GET /api/v1/runners
        op(
            Method::GET,
            "/api/v1/runners",
            "listRunners",
            "runners",
            "Runners with their state, labels, load and last contact",
        )
        .answers(200, "runners", schema::<runners::RunnerList>)
        .errors(&[401, 403]),
        // POST /api/v1/runners/tokens
        op(
            Method::POST,
            "/api/v1/runners/tokens",
            "createRunnerToken",
            "runners",
            "Create a runner registration token",
        )
        .body(schema::<runners::CreateRunnerToken>)
        .answers(
            201,
            "the token, shown once",
            schema::<runners::CreatedRunnerToken>,
        )
        .errors(&[400, 401, 403]),
        // GET /api/v1/runners/jobs
        op(
            Method::GET,
            "/api/v1/runners/jobs",
            "listQueuedRunnerJobs",
            "runners",
            "Jobs waiting for a runner, and whether any runner can take them",
        )
        .answers(200, "queued jobs", schema::<runners::QueuedRunnerJobs>)
        .errors(&[401, 403]),
        // POST /api/v1/runners/{name}/disable
        op(
            Method::POST,
            "/api/v1/runners/{name}/disable",
            "disableRunner",
            "runners",
            "Disable a runner: its leases are handed back and it is refused",
        )
        .answers(200, "the runner", schema::<runners::RunnerState>)
        .errors(&[400, 401, 403, 404]),
        // POST /api/v1/runners/{name}/enable
        op(
            Method::POST,
            "/api/v1/runners/{name}/enable",
            "enableRunner",
            "runners",
            "Enable a runner",
        )
        .answers(200, "the runner", schema::<runners::RunnerState>)
        .errors(&[400, 401, 403, 404]),
        // DELETE /api/v1/runners/{name}
        op(
            Method::DELETE,
            "/api/v1/runners/{name}",
            "removeRunner",
            "runners",
            "Remove a runner and revoke its credential",
        )
        .answers(200, "the removed runner", schema::<runners::RemovedRunner>)
        .errors(&[400, 401, 403, 404]),
    ]
}
