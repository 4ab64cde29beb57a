//! [`HostProcessRunner`]: runs a job payload `{"argv": [...], "env": {...}}`
//! as a host process in the job's workspace. It stands in for the step
//! executor until the merge replaces it by `LocalExecutor`; the tests use
//! it.
//!
//! The command runs under a small `sh` wrapper in a process group of its
//! own, with its output appended to `output.log` and its exit code written
//! to `exit-code` when it ends: the job does not depend on the agent's
//! pipes, so it survives an agent killed with `-9`, and a restarted agent
//! can take it over ([`JobRunner::reattach`]) from `process.json`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use gantry_unix::{ProcessGroup, ProcessId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::KILL_GRACE;
use super::job_dir::JobDir;
use super::job_runner::{JobOutcome, JobRunner, RunningJob};
use crate::protocol::LeasedJob;

/// Appends the command's output to `$1`, then writes its exit code to `$2`
/// (through a rename, so a reader never sees half of it).
const WRAPPER: &str = r#"out=$1; status=$2; shift 2; "$@" >>"$out" 2>&1; code=$?; echo "$code" >"$status.tmp" && mv "$status.tmp" "$status""#;

/// How often a running job is looked at for its end.
const POLL: Duration = Duration::from_millis(20);

pub struct HostProcessRunner;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    argv: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct ProcessFile {
    pid: i32,
    start: i64,
}

pub struct HostProcess {
    group: ProcessGroup,
    leader: ProcessId,
    /// Ours to reap; `None` for a process taken over after a restart.
    child: Option<tokio::process::Child>,
    exit_file: PathBuf,
}

impl JobRunner for HostProcessRunner {
    type Running = HostProcess;

    async fn start(&self, job: &LeasedJob, dir: &JobDir) -> Result<HostProcess, String> {
        let payload: Payload = serde_json::from_value(job.payload.clone()).map_err(|e| {
            format!("the job's payload is not {{\"argv\": [...], \"env\": {{...}}}}: {e}")
        })?;
        if payload.argv.is_empty() {
            return Err("the job's argv is empty".into());
        }
        let exit_file = dir.root().join("exit-code");
        let child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(WRAPPER)
            .arg("gantry-job")
            .arg(dir.output())
            .arg(&exit_file)
            .args(&payload.argv)
            .envs(&payload.env)
            .current_dir(dir.workspace())
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start /bin/sh for the job: {e}"))?;
        let pid = child.id().ok_or("the job's process ended at once")? as i32;
        let leader = ProcessId::of(pid).ok_or("the job's process ended at once")?;
        let record = ProcessFile {
            pid,
            start: leader.start,
        };
        let path = dir.root().join("process.json");
        std::fs::write(&path, serde_json::to_vec(&record).unwrap_or_default())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(HostProcess {
            group: ProcessGroup(pid),
            leader,
            child: Some(child),
            exit_file,
        })
    }

    async fn reattach(&self, dir: &JobDir) -> Option<HostProcess> {
        let text = std::fs::read(dir.root().join("process.json")).ok()?;
        let record: ProcessFile = serde_json::from_slice(&text).ok()?;
        Some(HostProcess {
            group: ProcessGroup(record.pid),
            leader: ProcessId {
                pid: record.pid,
                start: record.start,
            },
            child: None,
            exit_file: dir.root().join("exit-code"),
        })
    }
}

impl RunningJob for HostProcess {
    async fn finish(self, cancel: CancellationToken) -> JobOutcome {
        self.result(cancel).await.into()
    }
}

impl HostProcess {
    async fn result(mut self, cancel: CancellationToken) -> Value {
        loop {
            if let Some(code) = self.exit_code() {
                // What the command left behind in its group goes with it.
                self.group.kill();
                self.reap().await;
                return json!({ "exitCode": code });
            }
            if !self.running() {
                return match self.exit_code() {
                    Some(code) => json!({ "exitCode": code }),
                    None => {
                        json!({ "error": "the job's processes ended without an exit status (killed?)" })
                    }
                };
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = cancel.cancelled() => {
                    self.group.terminate(KILL_GRACE).await;
                    self.reap().await;
                    return json!({ "canceled": true });
                }
            }
        }
    }

    fn exit_code(&self) -> Option<i32> {
        std::fs::read_to_string(&self.exit_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Whether the wrapper is still running (a reused pid does not count).
    fn running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            // Not our child: once it exits, it is a zombie until whoever
            // adopted it reaps it, and a zombie does not count.
            None => ProcessId::of(self.leader.pid) == Some(self.leader) && self.group.alive(),
        }
    }

    async fn reap(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.wait().await;
        }
    }
}
