//! One task per instance: runs its process, restarts it with backoff when it
//! exits, marks it crash-looping when it keeps failing, and stops it
//! gracefully (out of rotation, drain, SIGTERM, SIGKILL after the grace).
//! A crash-looping instance is restarted on probation: out of rotation,
//! even when its health checks pass, until it has stayed up `STABLE_RUN`.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gantry_proxy::{HealthCheckConfig, Upstream};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::model::{Instance, ServerGroupSpec};

/// Exits within this window count towards the crash-loop mark.
const CRASH_WINDOW: Duration = Duration::from_secs(60);
const CRASH_LOOP_EXITS: usize = 5;
/// A run this long ends a crash loop and resets the backoff.
const STABLE_RUN: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// Longest wait for in-flight requests before SIGTERM.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct InstanceHandle {
    pub index: u32,
    pub upstream: Arc<Upstream>,
    pub info: Arc<Mutex<Instance>>,
    /// Canceled to stop the instance gracefully.
    pub stop: CancellationToken,
}

pub(crate) struct Launch {
    pub group: String,
    pub index: u32,
    pub port: u16,
    pub dir: PathBuf,
    pub spec: ServerGroupSpec,
    pub health: HealthCheckConfig,
}

pub(crate) fn start(launch: Launch) -> InstanceHandle {
    let id = format!("{}-i{}", launch.group, launch.index);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], launch.port));
    let health = Arc::new(gantry_proxy::UpstreamHealth::default());
    let upstream = Arc::new(Upstream::new(id.clone(), addr, health.clone()));
    let info = Arc::new(Mutex::new(Instance {
        id,
        port: launch.port,
        state: "starting".into(),
        ..Instance::default()
    }));
    let stop = CancellationToken::new();
    let checks = CancellationToken::new();
    tokio::spawn(gantry_proxy::health_check::run(
        addr,
        launch.health.clone(),
        health,
        checks.clone(),
    ));
    tokio::spawn(supervise(
        launch,
        upstream.clone(),
        info.clone(),
        stop.clone(),
        checks,
    ));
    InstanceHandle {
        index: 0,
        upstream,
        info,
        stop,
    }
    .with_index()
}

impl InstanceHandle {
    fn with_index(mut self) -> Self {
        let id = self.upstream.id.clone();
        self.index = id
            .rsplit_once("-i")
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or(0);
        self
    }

    pub fn snapshot(&self) -> Instance {
        let mut instance = self.info.lock().unwrap_or_else(|e| e.into_inner()).clone();
        instance.healthy = self.upstream.health.is_routable();
        instance.in_flight = self.upstream.in_flight();
        instance
    }
}

async fn supervise(
    launch: Launch,
    upstream: Arc<Upstream>,
    info: Arc<Mutex<Instance>>,
    stop: CancellationToken,
    checks: CancellationToken,
) {
    let set = |f: &dyn Fn(&mut Instance)| f(&mut info.lock().unwrap_or_else(|e| e.into_inner()));
    let mut exits: Vec<Instant> = Vec::new();
    let mut consecutive = 0u32;
    'supervise: loop {
        if stop.is_cancelled() {
            break;
        }
        let started = Instant::now();
        let mut child = match spawn(&launch) {
            Ok(child) => child,
            Err(error) => {
                tracing::warn!(instance = %upstream.id, %error, "cannot start instance");
                set(&|i| i.state = "crashed".into());
                consecutive += 1;
                if wait_or_stop(&stop, backoff(consecutive)).await {
                    break;
                }
                continue;
            }
        };
        let pid = child.id();
        set(&|i| {
            i.pid = pid;
            i.state = "running".into();
        });
        let mut on_probation = exits.len() >= CRASH_LOOP_EXITS;
        if !on_probation {
            upstream.health.set_alive(true);
        }
        let probation = tokio::time::sleep(STABLE_RUN);
        tokio::pin!(probation);
        loop {
            tokio::select! {
                status = child.wait() => {
                    upstream.health.set_alive(false);
                    let ran = started.elapsed();
                    tracing::warn!(instance = %upstream.id, ?status, ?ran, "instance exited");
                    let now = Instant::now();
                    exits.retain(|at| now.duration_since(*at) < CRASH_WINDOW);
                    exits.push(now);
                    consecutive = if ran > STABLE_RUN { 1 } else { consecutive + 1 };
                    let looping = exits.len() >= CRASH_LOOP_EXITS;
                    if looping {
                        tracing::warn!(instance = %upstream.id, exits = exits.len(), "instance is crash-looping, out of rotation");
                    }
                    set(&|i| {
                        i.pid = None;
                        i.state = "crashed".into();
                        i.restarts += 1;
                        i.crash_looping = looping;
                    });
                    if wait_or_stop(&stop, backoff(consecutive)).await {
                        break 'supervise;
                    }
                    continue 'supervise;
                }
                _ = stop.cancelled() => {
                    set(&|i| i.state = "stopping".into());
                    let container = launch
                        .spec
                        .image
                        .is_some()
                        .then(|| container_name(&launch));
                    graceful_stop(&mut child, &upstream, container, launch.spec.grace_seconds).await;
                    break 'supervise;
                }
                _ = &mut probation, if on_probation => {
                    on_probation = false;
                    exits.clear();
                    consecutive = 0;
                    set(&|i| i.crash_looping = false);
                    upstream.health.set_alive(true);
                    tracing::info!(instance = %upstream.id, "instance stayed up, back in rotation");
                }
            }
        }
    }
    upstream.health.set_alive(false);
    checks.cancel();
    set(&|i| {
        i.pid = None;
        i.state = "stopped".into();
    });
}

fn backoff(consecutive: u32) -> Duration {
    let millis = 250u64.saturating_mul(1 << consecutive.saturating_sub(1).min(6));
    Duration::from_millis(millis).min(MAX_BACKOFF)
}

/// True when stopped during the wait.
async fn wait_or_stop(stop: &CancellationToken, wait: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(wait) => false,
    }
}

/// The instance is already out of the routing table: wait for its in-flight
/// requests, then SIGTERM its process group, then SIGKILL after the grace.
/// A container is stopped through podman: its main process is PID 1 of its
/// namespace, which ignores a SIGTERM it has no handler for, and killing
/// the `podman run` client would leave the container running.
async fn graceful_stop(
    child: &mut Child,
    upstream: &Upstream,
    container: Option<String>,
    grace_seconds: u64,
) {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while upstream.in_flight() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    upstream.health.set_alive(false);
    if let Some(name) = container {
        let stopped = Command::new("podman")
            .args([
                "stop",
                "--ignore",
                "--time",
                &grace_seconds.to_string(),
                &name,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        if !matches!(stopped, Ok(status) if status.success()) {
            tracing::warn!(instance = %upstream.id, ?stopped, "podman stop failed");
        }
    }
    let Some(pid) = child.id() else {
        return;
    };
    signal_group(pid, libc::SIGTERM);
    let grace = Duration::from_secs(grace_seconds);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        tracing::warn!(instance = %upstream.id, "instance ignored SIGTERM, killing it");
        signal_group(pid, libc::SIGKILL);
        let _ = child.wait().await;
    }
    // Leftovers of the group (children of the command's shell).
    signal_group(pid, libc::SIGKILL);
}

fn signal_group(pid: u32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals the process group we created.
    unsafe {
        libc::kill(-(pid as i32), signal);
    }
}

/// The container of an instance. The port makes it unique on the machine:
/// two data planes (two data directories) may have groups of one name,
/// and `--replace` must only ever replace this instance's own leftover.
fn container_name(launch: &Launch) -> String {
    format!("gantry-{}-i{}-{}", launch.group, launch.index, launch.port)
}

fn spawn(launch: &Launch) -> std::io::Result<Child> {
    let log_path = launch.dir.join(format!("instance-{}.log", launch.index));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let mut command = match (&launch.spec.command, &launch.spec.image) {
        (Some(line), _) => {
            let mut command = Command::new("sh");
            command.arg("-c").arg(format!("exec {line}"));
            command
        }
        (None, Some(image)) => {
            // A container on the host's network: it listens on `PORT` like
            // a host process does, on loopback. (A published port would
            // reach the container's own interface, not the 127.0.0.1 most
            // servers bind, and would put a copying process in between.)
            // `--pull never`: only images of this machine run; a missing
            // one was refused when the group was created.
            let mut command = Command::new("podman");
            command.args([
                "run",
                "--rm",
                "--replace",
                "--pull",
                "never",
                "--network",
                "host",
            ]);
            command.arg("--name").arg(container_name(launch));
            command.arg("-e").arg(format!("PORT={}", launch.port));
            for (name, value) in &launch.spec.env {
                command.arg("-e").arg(format!("{name}={value}"));
            }
            command.arg(image);
            command
        }
        (None, None) => return Err(std::io::Error::other("no command and no image")),
    };
    command
        .current_dir(&launch.dir)
        .envs(&launch.spec.env)
        .env("PORT", launch.port.to_string())
        .env("GANTRY_SERVER_GROUP", &launch.group)
        .env("GANTRY_INSTANCE", launch.index.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(false);
    // SAFETY: setsid and prctl are async-signal-safe.
    // - Its own session (and so its own process group, which stop signals)
    //   also gives the instance its own CPU share under the kernel's
    //   autogroup scheduling, as systemd's per-service cgroups do: a busy
    //   instance competes with the load balancer as one party, not with its
    //   every thread inside the data plane's share.
    // - The instance dies with the data plane rather than living on
    //   unsupervised.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command.spawn()
}
