//! The agent's desired instances and the process each runs as, in
//! `agent-state.json`, written (to a temporary name, then renamed) before
//! the agent acts on a change: an agent started again after a crash knows
//! what to run and which leftover processes are its own.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gantry_unix::ProcessId;
use serde::{Deserialize, Serialize};

use super::protocol::InstanceSpec;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Saved {
    instances: Vec<SavedInstance>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedInstance {
    spec: InstanceSpec,
    /// The process running it, by pid and start time.
    #[serde(default)]
    process: Option<(i32, i64)>,
}

#[derive(Clone)]
pub(crate) struct Recorder {
    path: PathBuf,
    saved: Arc<Mutex<Saved>>,
}

impl Recorder {
    pub fn load(dir: &Path) -> Recorder {
        let path = dir.join("agent-state.json");
        let saved = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Recorder {
            path,
            saved: Arc::new(Mutex::new(saved)),
        }
    }

    /// The instances to run, with the process each ran as last.
    pub fn instances(&self) -> Vec<(InstanceSpec, Option<ProcessId>)> {
        self.lock()
            .instances
            .iter()
            .map(|i| {
                let process = i.process.map(|(pid, start)| ProcessId { pid, start });
                (i.spec.clone(), process)
            })
            .collect()
    }

    pub fn put(&self, spec: &InstanceSpec) -> std::io::Result<()> {
        let mut saved = self.lock();
        saved.instances.retain(|i| i.spec.id != spec.id);
        saved.instances.push(SavedInstance {
            spec: spec.clone(),
            process: None,
        });
        self.write(&saved)
    }

    pub fn remove(&self, id: &str) -> std::io::Result<()> {
        let mut saved = self.lock();
        saved.instances.retain(|i| i.spec.id != id);
        self.write(&saved)
    }

    pub fn record_process(&self, id: &str, process: ProcessId) {
        let mut saved = self.lock();
        if let Some(instance) = saved.instances.iter_mut().find(|i| i.spec.id == id) {
            instance.process = Some((process.pid, process.start));
        }
        if let Err(error) = self.write(&saved) {
            tracing::error!(%error, "cannot record an instance's process");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Saved> {
        self.saved.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self, saved: &Saved) -> std::io::Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(saved)?)?;
        std::fs::rename(&tmp, &self.path)
    }
}
