//! The files of one job in the runner's work directory.

use std::path::{Path, PathBuf};

use super::transfer::WorkspaceTransfer;
use crate::protocol::LeasedJob;

/// `WORK_DIR/jobs/LEASE_ID/`.
#[derive(Clone, Debug)]
pub struct JobDir {
    root: PathBuf,
    transfer: Option<WorkspaceTransfer>,
}

impl JobDir {
    pub fn new(root: PathBuf) -> JobDir {
        JobDir {
            root,
            transfer: None,
        }
    }

    pub(crate) fn with_transfer(self, transfer: WorkspaceTransfer) -> JobDir {
        JobDir {
            transfer: Some(transfer),
            ..self
        }
    }

    /// Fetches and sends the job's workspace snapshots.
    pub fn transfer(&self) -> Option<&WorkspaceTransfer> {
        self.transfer.as_ref()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Everything the job prints, one line per log line, in order.
    pub fn output(&self) -> PathBuf {
        self.root.join("output.log")
    }

    /// The directory the job runs in.
    pub fn workspace(&self) -> PathBuf {
        self.root.join("workspace")
    }

    /// The lease the job runs under, written before it starts.
    pub fn lease_file(&self) -> PathBuf {
        self.root.join("lease.json")
    }

    pub(crate) fn write_lease(&self, job: &LeasedJob) -> std::io::Result<()> {
        std::fs::create_dir_all(self.workspace())?;
        // Secret values never reach the runner's disk.
        let job = LeasedJob {
            secrets: Default::default(),
            ..job.clone()
        };
        let text = serde_json::to_vec(&job).map_err(std::io::Error::other)?;
        std::fs::write(self.lease_file(), text)
    }

    pub(crate) fn read_lease(&self) -> Option<LeasedJob> {
        let text = std::fs::read(self.lease_file()).ok()?;
        serde_json::from_slice(&text).ok()
    }
}
