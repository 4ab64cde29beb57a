//! [`WorkspaceTransfer`]: how a job's runner fetches and sends workspace
//! snapshots through the server, with its credential, under the job's lease.

use std::path::Path;
use std::sync::Arc;

use super::connection::Connection;

#[derive(Clone)]
pub struct WorkspaceTransfer {
    pub(crate) connection: Arc<Connection>,
    pub(crate) lease_id: String,
}

impl std::fmt::Debug for WorkspaceTransfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkspaceTransfer")
            .field("lease_id", &self.lease_id)
            .finish_non_exhaustive()
    }
}

impl WorkspaceTransfer {
    /// Writes the snapshot `sha256` to `dest`.
    pub async fn download(&self, sha256: &str, dest: &Path) -> Result<(), String> {
        self.connection
            .download_workspace(&self.lease_id, sha256, dest)
            .await
            .map_err(|error| format!("cannot fetch workspace snapshot {sha256}: {error}"))
    }

    /// Sends the snapshot in `src`; answers its SHA-256 as the server
    /// computed it.
    pub async fn upload(&self, src: &Path) -> Result<String, String> {
        self.connection
            .upload_workspace(&self.lease_id, src)
            .await
            .map(|uploaded| uploaded.sha256)
            .map_err(|error| format!("cannot send the workspace back: {error}"))
    }
}
