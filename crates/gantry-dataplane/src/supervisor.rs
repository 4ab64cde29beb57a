//! One task per instance: runs its process, restarts it with backoff when it
//! exits, marks it crash-looping when it keeps failing, and stops it
//! gracefully (out of rotation, drain, SIGTERM, SIGKILL after the grace).
//! A crash-looping instance is restarted on probation: out of rotation,
//! even when its health checks pass, until it has stayed up `STABLE_RUN`.
//! An instance is not a child that dies with the data plane: it runs in its
//! own session, writes to its log file, and is recorded (`adopt.rs`) so
//! that the next data plane supervises it where this one left off.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gantry_proxy::{HealthCheckConfig, Upstream};
use gantry_unix::{ProcessGroup, Signal};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use super::adopt::{self, Adoption, ExitWatch, Record, Records};
use super::handoff::INHERITED_ENV;
use gantry_deploy::model::{Instance, ServerGroupSpec};

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
    /// The process a previous data plane left running for this instance.
    pub adopt: Option<Adoption>,
    pub records: Arc<Records>,
    /// Confines a command instance (never a container: podman's own
    /// isolation keeps it out of the data directory).
    pub sandbox: Option<Arc<gantry_sandbox::Sandbox>>,
}

pub(crate) fn start(launch: Launch) -> InstanceHandle {
    let id = format!("{}-i{}", launch.group, launch.index);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], launch.port));
    let health = Arc::new(gantry_proxy::UpstreamHealth::default());
    if launch.adopt.as_ref().is_some_and(|a| a.healthy) {
        // It passed a check moments ago: back in rotation without waiting
        // for `healthy_threshold` more (the checks go on as usual).
        for _ in 0..launch.health.healthy_threshold.max(1) {
            health.record(true, &launch.health);
        }
    }
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
    let mut adopt = launch.adopt.clone();
    'supervise: loop {
        if stop.is_cancelled() {
            break;
        }
        let started = Instant::now();
        let adopted = adopt.take().and_then(|adoption| {
            let record = adoption.record;
            if adoption.by_container {
                let name = record.container.as_deref().unwrap_or_default();
                return match wait_for_container(name) {
                    Ok(waiter) => {
                        tracing::info!(instance = %upstream.id, container = name, "container instance adopted");
                        Some(Process::Container {
                            recorded_pid: record.pid,
                            waiter,
                        })
                    }
                    Err(error) => {
                        tracing::warn!(instance = %upstream.id, %error, "cannot follow the container, starting it again");
                        None
                    }
                };
            }
            match ExitWatch::open(record.pid, record.start_time) {
                Ok(watch) => {
                    tracing::info!(instance = %upstream.id, pid = record.pid, "instance adopted");
                    Some(Process::Adopted {
                        pid: record.pid,
                        watch,
                    })
                }
                Err(error) => {
                    tracing::warn!(instance = %upstream.id, %error, "cannot adopt instance, starting it again");
                    None
                }
            }
        });
        let spawned = match adopted {
            Some(process) => Ok(process),
            None => spawn(&launch).map(Process::Spawned),
        };
        let mut child = match spawned {
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
        let recorded_pid = child.recorded_pid();
        // Recorded before it is relied on, so that the next data plane
        // adopts it if this one dies.
        if let Some(pid) = pid
            && let Some(start_time) = adopt::start_time(pid)
        {
            launch.records.put(Record {
                group: launch.group.clone(),
                index: launch.index,
                port: launch.port,
                pid,
                start_time,
                container: launch.spec.image.is_some().then(|| container_name(&launch)),
            });
        }
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
                    if let Some(pid) = recorded_pid {
                        launch.records.remove(&launch.group, launch.index, pid);
                    }
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
                    if let Some(pid) = recorded_pid {
                        launch.records.remove(&launch.group, launch.index, pid);
                    }
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
    child: &mut Process,
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
    ProcessGroup(pid as i32).signal(Signal::SIGTERM);
    let grace = Duration::from_secs(grace_seconds);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        tracing::warn!(instance = %upstream.id, "instance ignored SIGTERM, killing it");
        ProcessGroup(pid as i32).kill();
        let _ = child.wait().await;
    }
    // Leftovers of the group (children of the command's shell).
    ProcessGroup(pid as i32).kill();
}

/// A process a previous data plane left running, whose group this one no
/// longer wants: stopped like any other (SIGTERM, SIGKILL after the grace).
pub(crate) async fn stop_orphan(record: Record, grace_seconds: u64) {
    let mut process = match ExitWatch::open(record.pid, record.start_time) {
        Ok(watch) => Process::Adopted {
            pid: record.pid,
            watch,
        },
        // Only its container is left: `podman stop` below is all it takes.
        Err(_) if record.container.is_some() => Process::Gone,
        Err(_) => return,
    };
    tracing::info!(instance = %adopt::instance_id(&record.group, record.index), pid = record.pid, "stopping an instance no group wants");
    let upstream = Upstream::new(
        adopt::instance_id(&record.group, record.index),
        std::net::SocketAddr::from(([127, 0, 0, 1], record.port)),
        Default::default(),
    );
    graceful_stop(
        &mut process,
        &upstream,
        record.container.clone(),
        grace_seconds,
    )
    .await;
}

/// An instance's process: one this data plane started, or one it adopted
/// (not its child: its exit is learnt through a pidfd), or only the
/// container of an instance whose `podman run` client is gone (its exit is
/// learnt through `podman wait`).
enum Process {
    Spawned(Child),
    Adopted {
        pid: u32,
        watch: ExitWatch,
    },
    Container {
        /// The process recorded for it, which its record is kept under.
        recorded_pid: u32,
        waiter: Child,
    },
    /// Nothing left to wait for.
    Gone,
}

impl Process {
    /// The instance's own process, when there is one to signal.
    fn id(&self) -> Option<u32> {
        match self {
            Process::Spawned(child) => child.id(),
            Process::Adopted { pid, .. } => Some(*pid),
            Process::Container { .. } | Process::Gone => None,
        }
    }

    /// The pid its record is kept under.
    fn recorded_pid(&self) -> Option<u32> {
        match self {
            Process::Container { recorded_pid, .. } => Some(*recorded_pid),
            _ => self.id(),
        }
    }

    /// Waits for the exit; the status is known only for a child.
    async fn wait(&mut self) -> Option<std::process::ExitStatus> {
        match self {
            Process::Spawned(child) => child.wait().await.ok(),
            Process::Adopted { watch, .. } => {
                watch.exited().await;
                None
            }
            Process::Container { waiter, .. } => {
                let _ = waiter.wait().await;
                None
            }
            Process::Gone => None,
        }
    }
}

/// Follows a container this data plane did not start: `podman wait`
/// returns when it exits.
fn wait_for_container(name: &str) -> std::io::Result<Child> {
    Command::new("podman")
        .args(["wait", name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
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
            if let Some(sandbox) = &launch.sandbox {
                // First: it clears the environment the lines below fill.
                sandbox
                    .confine_instance(command.as_std_mut(), &launch.dir)
                    .map_err(std::io::Error::other)?;
            }
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
            // By name only: podman reads each value from its own
            // environment (set below), so none is on a command line.
            for name in launch.spec.env.keys() {
                command.arg("-e").arg(name);
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
        .env_remove(INHERITED_ENV)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(false);
    gantry_sandbox::ordinary_umask(command.as_std_mut());
    // SAFETY: setsid is async-signal-safe.
    // Its own session (and so its own process group, which stop signals)
    // also gives the instance its own CPU share under the kernel's
    // autogroup scheduling, as systemd's per-service cgroups do: a busy
    // instance competes with the load balancer as one party, not with its
    // every thread inside the data plane's share. It outlives the data
    // plane (no parent-death signal): the next one adopts it.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn()
}
