//! What a job's owner hands the dispatcher and gets back.

use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::protocol::JobSecrets;

/// What to run and where it may run.
#[derive(Clone, Debug, PartialEq)]
pub struct JobSpec {
    pub payload: Value,
    /// A runner must have every one of these.
    pub labels: Vec<String>,
    /// Handed to the runner that leases the job, in its lease answer only:
    /// kept in this process's memory, never in the store.
    pub secrets: JobSecrets,
    /// The directory of workspace snapshots the job's runner may read and
    /// add to (`GET`/`PUT workspace`), while it holds the job's lease.
    pub workspace: Option<std::path::PathBuf>,
}

/// A queued job as its owner holds it.
pub struct JobHandle {
    pub id: String,
    pub events: mpsc::Receiver<JobEvent>,
}

/// What happens to a job, in order, as its owner sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum JobEvent {
    Leased {
        runner: String,
        attempt: i64,
    },
    /// Lines `first..first + lines.len()` of the current attempt, each once.
    Log {
        first: u64,
        lines: Vec<String>,
    },
    Finished {
        result: Value,
        /// What the runner sent for the owner only (never stored).
        private: Value,
    },
    /// The runner stopped renewing the lease, or was disabled or removed.
    /// The owner decides: [`Dispatcher::retry`] or [`Dispatcher::give_up`].
    Lost {
        runner: String,
        reason: String,
    },
    Canceled {
        reason: String,
    },
}

/// A job waiting for a runner (the API's shape).
pub use gantry_wire::runners::QueuedRunnerJob as QueuedJob;
