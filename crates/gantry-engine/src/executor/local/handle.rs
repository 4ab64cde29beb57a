//! A running local step: its process (group), its pipes' readers, its
//! container, and the files it leaves for the stage to read.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use gantry_container::ContainerEngine;
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::output::{OutputsError, read_outputs};
use crate::executor::{ExecutorError, LeftBehind, LogLine, StepExit, StepHandle};
use crate::process::{self, ProcessId};

pub struct LocalHandle {
    pub(super) process_groups: Arc<Mutex<HashSet<i32>>>,
    /// Gets back what a container step created in the workspace.
    pub(super) sandbox: Option<gantry_sandbox::Sandbox>,
    pub(super) child: tokio::process::Child,
    pub(super) started_at: i64,
    /// The step's process group (its leader's pid).
    pub(super) pid: i32,
    pub(super) leader: Option<ProcessId>,
    pub(super) readers: Vec<JoinHandle<()>>,
    pub(super) output_file: PathBuf,
    pub(super) script_file: Option<PathBuf>,
    /// The engine and name of the step's container, for a step with an image.
    pub(super) container: Option<(ContainerEngine, String)>,
    /// Whether a shell reads the step's secrets before its command.
    pub(super) wrapped: bool,
    pub(super) image: Option<String>,
    pub(super) workspace: PathBuf,
    /// Kept until the step drained, for lines of the executor's own.
    pub(super) sender: Option<mpsc::Sender<LogLine>>,
}

impl StepHandle for LocalHandle {
    fn started_at(&self) -> i64 {
        self.started_at
    }

    fn left_behind(&self) -> Option<LeftBehind> {
        self.leader.map(|leader| LeftBehind {
            pgid: i64::from(self.pid),
            start: leader.start,
        })
    }

    async fn wait(&mut self) -> Result<StepExit, ExecutorError> {
        use std::os::unix::process::ExitStatusExt;
        let status = self
            .child
            .wait()
            .await
            .map_err(|error| ExecutorError::Failed(format!("cannot wait for it: {error}")))?;
        let exit = StepExit {
            code: status.code(),
            signal: status.signal(),
        };
        if self.wrapped && matches!(exit.code, Some(126 | 127)) && !self.image_has_shell().await {
            return Err(ExecutorError::Refused(format!(
                "image {:?} has no /bin/sh, which a container step with secrets needs: podman hands the secrets to a shell through a memory file, never on a command line or in the container's config",
                self.image.as_deref().unwrap_or_default()
            )));
        }
        Ok(exit)
    }

    async fn drain(&mut self) {
        // Whatever the step left behind in its group goes with it; this also
        // closes pipes a background process would otherwise hold open.
        process::kill_group(self.pid);
        self.process_groups.lock().unwrap().remove(&self.pid);
        for mut reader in self.readers.drain(..) {
            let waited = tokio::time::timeout(std::time::Duration::from_secs(5), &mut reader).await;
            // A pipe still held open after its group was killed (a process
            // that left the group) must not keep the log open.
            if waited.is_err() {
                reader.abort();
            }
        }
        self.sender = None;
    }

    async fn kill(&mut self) {
        // The engine client going away does not stop a container: remove
        // the container itself first.
        if let Some((engine, name)) = &self.container
            && let Err(error) = engine.remove_container(name).await
            && let Some(sender) = &self.sender
        {
            let line = LogLine {
                stream: gantry_store::LogStream::System,
                text: format!("cannot remove container {name}: {error}"),
            };
            let _ = sender.send(line).await;
        }
        process::terminate_group(self.pid, process::GRACE).await;
    }

    async fn outputs(&mut self) -> Result<Map<String, Value>, OutputsError> {
        read_outputs(&self.output_file).await
    }

    async fn finish(self) -> Result<(), ExecutorError> {
        let mut result = Ok(());
        // After a container step: its script goes, and what its container
        // created in the workspace (as root) is given back to the step user.
        if self.container.is_some() {
            if let Some(path) = &self.script_file {
                let _ = tokio::fs::remove_file(path).await;
            }
            if let Some(sandbox) = self.sandbox.clone() {
                let workspace = self.workspace.clone();
                let handed =
                    tokio::task::spawn_blocking(move || sandbox.hand_over(&workspace)).await;
                if let Ok(Err(error)) = handed {
                    result = Err(ExecutorError::Failed(error.to_string()));
                }
            }
        }
        // Read already: an output may hold a secret, sealed in the store
        // from now on, and never left on disk in the clear.
        let _ = tokio::fs::remove_file(&self.output_file).await;
        result
    }
}

impl LocalHandle {
    /// Whether the step's image can start `/bin/sh` (asked after a wrapped
    /// step could not start its command, to tell which was missing).
    async fn image_has_shell(&self) -> bool {
        let (Some(image), Some((engine, _))) = (&self.image, &self.container) else {
            return true;
        };
        let probe = [
            "run",
            "--rm",
            "--pull=never",
            "--log-driver=none",
            "--entrypoint",
            "/bin/sh",
            image.as_str(),
            "-c",
            ":",
        ];
        engine.output("probe /bin/sh", &probe).await.is_ok()
    }
}
