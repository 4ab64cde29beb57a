//! The data plane's desired state, in `DATA/deploy/state.json`, written
//! atomically (temporary file, then rename) before anything acts on it, so
//! that a restarted data plane brings back the same instances and listeners.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::protocol::RemoteTarget;
use gantry_deploy::model::{Application, LoadBalancer, ServerGroup};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DesiredState {
    pub applications: Vec<Application>,
    pub load_balancers: Vec<LoadBalancer>,
    /// Every server group ever created, destroyed ones included (history).
    pub server_groups: Vec<ServerGroup>,
    /// The instances of other providers' groups, by group.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub remote_targets: BTreeMap<String, Vec<RemoteTarget>>,
}

pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

pub(crate) fn load(dir: &Path) -> std::io::Result<DesiredState> {
    match std::fs::read(path(dir)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", path(dir).display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DesiredState::default()),
        Err(e) => Err(e),
    }
}

pub(crate) fn save(dir: &Path, state: &DesiredState) -> std::io::Result<()> {
    let temporary = dir.join("state.json.tmp");
    let bytes = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    std::fs::write(&temporary, bytes)?;
    std::fs::File::open(&temporary)?.sync_all()?;
    std::fs::rename(&temporary, path(dir))
}
