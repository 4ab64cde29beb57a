//! One task per instance: runs its command (or its image's container, in
//! the foreground) in its own process group, restarts it with backoff when
//! it exits, and stops it with SIGTERM then SIGKILL after its grace.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gantry_unix::{ProcessGroup, ProcessId};
use tokio_util::sync::CancellationToken;

use super::container;
use super::protocol::{InstanceSpec, InstanceState};
use super::state::Recorder;

const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub(crate) struct Running {
    pub spec: InstanceSpec,
    pub state: Arc<Mutex<InstanceState>>,
    pub stop: CancellationToken,
    pub stopped: Arc<tokio::sync::Notify>,
}

pub(crate) fn start(spec: InstanceSpec, logs: std::path::PathBuf, recorder: Recorder) -> Running {
    let state = Arc::new(Mutex::new(InstanceState {
        id: spec.id.clone(),
        group: spec.group.clone(),
        port: spec.port,
        pid: None,
        state: "starting".into(),
        restarts: 0,
    }));
    let stop = CancellationToken::new();
    let stopped = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(supervise(
        spec.clone(),
        logs,
        recorder,
        state.clone(),
        stop.clone(),
        stopped.clone(),
    ));
    Running {
        spec,
        state,
        stop,
        stopped,
    }
}

async fn supervise(
    spec: InstanceSpec,
    logs: std::path::PathBuf,
    recorder: Recorder,
    state: Arc<Mutex<InstanceState>>,
    stop: CancellationToken,
    stopped: Arc<tokio::sync::Notify>,
) {
    let set =
        |f: &dyn Fn(&mut InstanceState)| f(&mut state.lock().unwrap_or_else(|e| e.into_inner()));
    let mut failures = 0u32;
    // A container a previous agent left running is adopted, once: it
    // serves on, and the next exit starts it anew.
    let mut adopt = spec.image.is_some() && container::is_running(&spec).await;
    while !stop.is_cancelled() {
        if spec.image.is_some() && !adopt {
            // A container of this name that exited or was left half way.
            container::remove(&spec).await;
        }
        let child = spawn(&spec, &logs, std::mem::take(&mut adopt));
        let mut child = match child {
            Ok(child) => child,
            Err(error) => {
                tracing::warn!(instance = %spec.id, %error, "cannot start instance");
                set(&|s| s.state = "crashed".into());
                failures += 1;
                if wait_or_stop(&stop, backoff(failures)).await {
                    break;
                }
                continue;
            }
        };
        let pid = child.id();
        if let Some(process) = pid.and_then(|p| ProcessId::of(p as i32)) {
            recorder.record_process(&spec.id, process);
        }
        set(&|s| {
            s.pid = pid;
            s.state = "running".into();
        });
        let started = tokio::time::Instant::now();
        tokio::select! {
            _ = child.wait() => {
                set(&|s| { s.state = "crashed".into(); s.pid = None; s.restarts += 1; });
                // Whatever it left in its group goes with it.
                if let Some(pid) = pid { ProcessGroup(pid as i32).kill(); }
                failures = if started.elapsed() > Duration::from_secs(10) { 1 } else { failures + 1 };
                tracing::warn!(instance = %spec.id, "instance exited, restarting");
                if wait_or_stop(&stop, backoff(failures)).await {
                    break;
                }
            }
            _ = stop.cancelled() => {
                set(&|s| s.state = "stopping".into());
                // The engine stops the container; its `run` then ends.
                if spec.image.is_some() {
                    container::stop(&spec).await;
                }
                if let Some(pid) = pid {
                    ProcessGroup(pid as i32)
                        .terminate(Duration::from_secs(spec.grace_seconds))
                        .await;
                }
                let _ = child.wait().await;
                break;
            }
        }
    }
    set(&|s| {
        s.state = "stopped".into();
        s.pid = None;
    });
    stopped.notify_waiters();
}

fn spawn(
    spec: &InstanceSpec,
    logs: &std::path::Path,
    adopt: bool,
) -> std::io::Result<tokio::process::Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logs.join(format!("{}.log", spec.id)))?;
    let mut command = match &spec.image {
        Some(_) if adopt => container::wait_command(spec)?,
        Some(image) => container::run_command(spec, image)?,
        None => {
            let mut command = tokio::process::Command::new("sh");
            command
                .arg("-c")
                .arg(&spec.command)
                .current_dir(&spec.release)
                .envs(&spec.env)
                .env("PORT", spec.port.to_string())
                .env("HOST", &spec.address);
            command
        }
    };
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own group: stopping it stops what it started too, and it
        // does not die with the agent.
        .process_group(0)
        .kill_on_drop(false);
    command.spawn()
}

fn backoff(failures: u32) -> Duration {
    (Duration::from_millis(100) * 2u32.saturating_pow(failures.min(8))).min(MAX_BACKOFF)
}

/// Waits `delay`; true if told to stop meanwhile.
async fn wait_or_stop(stop: &CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => false,
        _ = stop.cancelled() => true,
    }
}
