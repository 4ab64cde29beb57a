//! The agent's half: what `gantry runner` does.
//!
//! It registers once with a registration token and keeps the credential it
//! gets in its work directory (`credential.json`, 0600), re-used on every
//! start. Then it leases jobs while it has free slots, heartbeats its
//! leases, streams each job's output from the last line the server
//! acknowledged, and kills a job's processes when the server says its
//! lease is gone. It only ever connects out to the server.
//!
//! Each job lives in `WORK_DIR/jobs/LEASE_ID/`: `lease.json` (the lease it
//! runs under), `output.log` (its output: the log stream reads it, so a
//! restarted agent resends what the server has not acknowledged and
//! nothing is held in memory but one batch) and what its [`JobRunner`]
//! keeps there. A job's processes outlive an agent killed with `-9`; the
//! agent, started again, finds them, renews their leases if still live, and
//! kills them if not.

mod backoff;
mod connection;
mod credential_file;
mod host_process;
mod job;
mod job_dir;
mod job_runner;
mod lease_loop;
mod log_stream;
mod transfer;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

pub use credential_file::path as credential_path;
pub use host_process::HostProcessRunner;
pub use job_dir::JobDir;
pub use job_runner::{JobOutcome, JobRunner, RunningJob};
pub use lease_loop::run;
pub use transfer::WorkspaceTransfer;

/// Between SIGTERM and SIGKILL when a job is canceled: with a heartbeat
/// every second, cancel reaches the job's processes within 2 s.
pub const KILL_GRACE: Duration = Duration::from_millis(500);

/// How `gantry runner` was started.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The server, `http://HOST:PORT`.
    pub url: String,
    /// Needed only to register: once registered, the credential in
    /// `work_dir` is used and the token ignored.
    pub token: Option<String>,
    pub name: String,
    pub labels: Vec<String>,
    /// Jobs run at once.
    pub capacity: u32,
    pub work_dir: PathBuf,
    /// This binary's version, reported at registration.
    pub version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(
        "the server refused this runner's credential ({reason}); it was disabled or removed: \
         enable it again (`gantry runner enable NAME`), or delete {} and register again with a new token",
        credential_file.display()
    )]
    CredentialRefused {
        reason: String,
        credential_file: PathBuf,
    },
    #[error("registration refused: {0}")]
    RegistrationRefused(String),
    #[error(
        "this runner is not registered yet ({} does not exist): pass --token with a token from `gantry runner token create`",
        .0.display()
    )]
    NoToken(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the server at {url} does not speak the runner protocol: {message}")]
    Protocol { url: String, message: String },
}
