//! The Docker API gate on a runner. A Cloud Build docker builder step a runner leases
//! finds the gate where it finds it on the server: `docker.sock` in the stage's run
//! directory (the runner's own copy, mounted at `/gantry`), forwarding image work to the
//! runner's own container engine under the same rules and bounds (`gantry_container::
//! api_gate`). Parallel steps of one stage on one runner share its gate, which stops
//! (its socket removed) when the last of them ends.
//!
//! Jobs that run in place (the local runner, sharing the server's disk) find the gate the
//! server's `run` stage started, and start none.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gantry_container::ContainerEngine;
use gantry_container::api_gate::{ApiGate, GATE_SOCKET_NAME, engine_api_socket};

/// The gates this runner holds open, by socket.
#[derive(Clone, Default)]
pub(super) struct RunnerGates {
    open: Arc<Mutex<HashMap<PathBuf, OpenGate>>>,
}

struct OpenGate {
    /// Stops listening and removes its socket when dropped.
    _gate: ApiGate,
    /// The running steps that use it.
    holders: usize,
}

/// A step's use of its stage's gate: the gate stops when the last one is dropped.
pub(super) struct GateHold {
    open: Arc<Mutex<HashMap<PathBuf, OpenGate>>>,
    socket: PathBuf,
}

impl RunnerGates {
    /// Opens the gate in `run_dir` (or joins the one open there) for one step, forwarding
    /// to `engine`'s Docker API, whose service (podman's, started on demand) keeps its
    /// socket in `engine_api_dir`, a directory of the runner's that no step mounts.
    pub(super) async fn hold(
        &self,
        engine: Option<&ContainerEngine>,
        engine_api_dir: &Path,
        run_dir: &Path,
    ) -> Result<GateHold, String> {
        let socket = run_dir.join(GATE_SOCKET_NAME);
        if self.join(&socket) {
            return Ok(self.hold_of(socket));
        }
        let Some(engine) = engine else {
            return Err(
                "the docker builder needs a container engine (podman or docker), and this runner has none"
                    .to_owned(),
            );
        };
        let upstream = engine_api_socket(engine, engine_api_dir)
            .await
            .map_err(|error| format!("the docker builder: {error}"))?;
        // Sockets are made and removed only under the lock, so a gate stopping as the
        // next step starts never removes the socket of the one that replaces it.
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        match open.get_mut(&socket) {
            Some(gate) => gate.holders += 1,
            None => {
                let gate = ApiGate::start(&socket, &upstream)
                    .map_err(|error| format!("the docker builder: {error}"))?;
                tracing::info!(socket = %socket.display(), "opened the Docker API gate");
                open.insert(
                    socket.clone(),
                    OpenGate {
                        _gate: gate,
                        holders: 1,
                    },
                );
            }
        }
        drop(open);
        Ok(self.hold_of(socket))
    }

    /// Counts one more step on the gate open at `socket`, if one is.
    fn join(&self, socket: &Path) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        match open.get_mut(socket) {
            Some(gate) => {
                gate.holders += 1;
                true
            }
            None => false,
        }
    }

    fn hold_of(&self, socket: PathBuf) -> GateHold {
        GateHold {
            open: self.open.clone(),
            socket,
        }
    }

    /// How many gates are open (for tests).
    #[cfg(test)]
    pub(super) fn open_count(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Drop for GateHold {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let last = match open.get_mut(&self.socket) {
            Some(gate) => {
                gate.holders -= 1;
                gate.holders == 0
            }
            None => false,
        };
        if last {
            open.remove(&self.socket);
            tracing::info!(socket = %self.socket.display(), "closed the Docker API gate");
        }
    }
}
