//! The runner's identity, kept in `WORK_DIR/credential.json` (0600) so that
//! a restart re-uses it instead of registering again.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::AgentError;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Identity {
    pub runner_id: String,
    pub name: String,
    pub credential: String,
}

/// Where a runner keeps its credential in its work directory.
pub fn path(work_dir: &Path) -> PathBuf {
    work_dir.join("credential.json")
}

pub(crate) fn load(work_dir: &Path) -> Result<Option<Identity>, AgentError> {
    let path = path(work_dir);
    let io = |source| AgentError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::read(&path) {
        Ok(text) => serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| io(std::io::Error::other(e))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(e)),
    }
}

/// Written to a new 0600 file, then renamed over the old one.
pub(crate) fn save(work_dir: &Path, identity: &Identity) -> Result<(), AgentError> {
    let path = path(work_dir);
    let temporary = work_dir.join("credential.json.tmp");
    let write = || -> std::io::Result<()> {
        let _ = std::fs::remove_file(&temporary);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(&serde_json::to_vec_pretty(identity).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path)
    };
    write().map_err(|source| AgentError::Io { path, source })
}
