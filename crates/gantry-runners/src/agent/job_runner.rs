//! How a leased job runs: the seam the step executor plugs into after the
//! merge (an adapter from `StepSpec`/`StepHandle` to this trait, with
//! `LocalExecutor` behind it). Until then [`HostProcessRunner`] runs
//! `{"argv": [...], "env": {...}}` payloads as host processes.
//!
//! [`HostProcessRunner`]: super::HostProcessRunner

use std::future::Future;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::job_dir::JobDir;
use crate::protocol::LeasedJob;

pub trait JobRunner: Send + Sync + 'static {
    type Running: RunningJob;

    /// Starts the job in `dir` (its workspace exists). Everything it prints
    /// must be appended to `dir.output()`, one line per log line: the agent
    /// streams that file to the server. An error is reported as the job's
    /// result.
    fn start(
        &self,
        job: &LeasedJob,
        dir: &JobDir,
    ) -> impl Future<Output = Result<Self::Running, String>> + Send;

    /// A job a previous agent process started and left running in `dir`,
    /// if this runner can take it over; `None` (the default) gives it up,
    /// and its lease is lost (the runner first stops what the job left).
    fn reattach(&self, _dir: &JobDir) -> impl Future<Output = Option<Self::Running>> + Send {
        async { None }
    }
}

pub trait RunningJob: Send + 'static {
    /// Waits for the job to end and returns its result; when `cancel` fires
    /// first, stops everything the job started (within
    /// [`super::KILL_GRACE`]) and returns.
    fn finish(self, cancel: CancellationToken) -> impl Future<Output = JobOutcome> + Send;
}

/// How a job ended, as reported to the server.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobOutcome {
    /// Stored with the job.
    pub result: Value,
    /// Handed to the job's owner only, never stored (outputs that may hold
    /// a secret).
    pub private: Value,
}

impl From<Value> for JobOutcome {
    fn from(result: Value) -> JobOutcome {
        JobOutcome {
            result,
            private: Value::Null,
        }
    }
}
