//! Instances that outlive the data plane. Every running instance is recorded
//! in `DATA/deploy/instances.json` (group, index, port, pid and the pid's
//! start time, so that a reused pid is never taken for it) before it is put
//! in rotation. A new data plane finds the ones still alive, routes to them
//! at once (after one health check) and supervises them through a `pidfd`,
//! without being their parent. A container instance whose `podman run`
//! client is gone is adopted through its container name while the
//! container runs.

use std::collections::BTreeMap;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::io::unix::AsyncFd;

/// One running instance, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Record {
    pub group: String,
    pub index: u32,
    pub port: u16,
    pub pid: u32,
    /// Field 22 of `/proc/PID/stat`: clock ticks after boot.
    pub start_time: u64,
    /// The container of an `image:` instance.
    #[serde(default)]
    pub container: Option<String>,
}

/// A recorded instance found alive by a new data plane.
#[derive(Clone, Debug)]
pub(crate) struct Adoption {
    pub record: Record,
    /// Only its container runs (its recorded process is gone).
    pub by_container: bool,
    /// It answered its health check when found: it takes traffic at once.
    pub healthy: bool,
}

pub(crate) fn instance_id(group: &str, index: u32) -> String {
    format!("{group}-i{index}")
}

/// The recorded instances, saved on every change.
pub(crate) struct Records {
    path: PathBuf,
    records: Mutex<BTreeMap<String, Record>>,
}

impl Records {
    /// The records a previous data plane left (none after a bad file: its
    /// instances are then started afresh).
    pub fn load(dir: &Path) -> Records {
        let path = dir.join("instances.json");
        let records: Vec<Record> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                tracing::warn!(path = %path.display(), %error, "instance records unreadable, ignored");
                Vec::new()
            }),
            Err(_) => Vec::new(),
        };
        let records = records
            .into_iter()
            .map(|r| (instance_id(&r.group, r.index), r))
            .collect();
        Records {
            path,
            records: Mutex::new(records),
        }
    }

    /// The recorded instances still running, each with whether only its
    /// container is left; the others are forgotten.
    pub async fn running(&self) -> Vec<(Record, bool)> {
        let recorded: Vec<Record> = self
            .records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let mut running = Vec::new();
        for record in recorded {
            if is_alive(record.pid, record.start_time) {
                running.push((record, false));
            } else if let Some(name) = &record.container
                && container_running(name).await
            {
                running.push((record, true));
            }
        }
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.retain(|id, _| {
            running
                .iter()
                .any(|(r, _)| instance_id(&r.group, r.index) == *id)
        });
        self.save(&records);
        running
    }

    pub fn put(&self, record: Record) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.insert(instance_id(&record.group, record.index), record);
        self.save(&records);
    }

    /// Forgets an instance's process (only that process: a new one may
    /// already be recorded under the same id).
    pub fn remove(&self, group: &str, index: u32, pid: u32) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let id = instance_id(group, index);
        if records.get(&id).is_some_and(|r| r.pid == pid) {
            records.remove(&id);
            self.save(&records);
        }
    }

    fn save(&self, records: &BTreeMap<String, Record>) {
        let list: Vec<&Record> = records.values().collect();
        let temporary = self.path.with_extension("json.tmp");
        let written = serde_json::to_vec_pretty(&list)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&temporary, bytes))
            .and_then(|()| std::fs::rename(&temporary, &self.path));
        if let Err(error) = written {
            tracing::warn!(path = %self.path.display(), %error, "cannot save the instance records");
        }
    }
}

/// Field 22 of `/proc/PID/stat`, `None` when the process is gone or a zombie.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields
    // are counted after its closing parenthesis, from field 3 on.
    let (_, rest) = stat.rsplit_once(") ")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(22 - 3)?.parse().ok()
}

pub(crate) fn is_alive(pid: u32, started: u64) -> bool {
    start_time(pid) == Some(started)
}

async fn container_running(name: &str) -> bool {
    let inspect = tokio::process::Command::new("podman")
        .args([
            "container",
            "inspect",
            "--format",
            "{{.State.Running}}",
            name,
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    match tokio::time::timeout(std::time::Duration::from_secs(10), inspect).await {
        Ok(Ok(output)) => output.status.success() && output.stdout.trim_ascii() == b"true",
        _ => false,
    }
}

/// Becomes ready when the process exits, whoever its parent is.
pub(crate) struct ExitWatch {
    fd: AsyncFd<OwnedFd>,
}

impl ExitWatch {
    /// Watches the recorded process; fails when it is no longer the one
    /// recorded.
    pub fn open(pid: u32, started: u64) -> std::io::Result<ExitWatch> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the descriptor was just created and is ours alone.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        // Checked after opening: the pidfd now pins this very process.
        if !is_alive(pid, started) {
            return Err(std::io::Error::other(format!(
                "process {pid} is not the one recorded"
            )));
        }
        // SAFETY: the OwnedFd is moved into the AsyncFd, which owns it
        // (open, the same descriptor) until it is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(std::io::Error::from)?;
        Ok(ExitWatch { fd })
    }

    pub async fn exited(&self) {
        // A pidfd becomes readable once, for good, when the process exits.
        let _ = self.fd.readable().await;
    }
}
