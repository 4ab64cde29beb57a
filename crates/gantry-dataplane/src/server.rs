//! The data-plane process: its control socket and its life.

mod query;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gantry_proxy::Proxy;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Mutex;

use super::adopt::{Adoption, Records};
use super::handoff::{Sockets, handoff_socket_path};
use super::reconcile::{self, Instances, Parts};
use super::state::{self, DesiredState};
use crate::protocol::{BAD_REQUEST, ErrorKind, Request, Response};
use gantry_deploy::model::{ServerGroup, server_group_name};

/// `DATA/deploy`, where the data plane keeps its files.
pub fn deploy_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("deploy")
}

pub fn socket_path(data_dir: &Path) -> PathBuf {
    deploy_dir(data_dir).join("dataplane.sock")
}

/// Present while the data plane is stopped on purpose (`gantry dataplane
/// stop`): nothing starts it again by itself until it is next needed.
pub fn stopped_marker(data_dir: &Path) -> PathBuf {
    deploy_dir(data_dir).join("dataplane.stopped")
}

struct Dataplane {
    dir: PathBuf,
    proxy: Proxy,
    state: Mutex<DesiredState>,
    instances: std::sync::Mutex<Instances>,
    records: Arc<Records>,
    adoptable: std::sync::Mutex<HashMap<String, Adoption>>,
    sockets: Arc<Sockets>,
    /// How instances are kept out of the data directory (`None` where the
    /// machine offers nothing to confine them with).
    sandbox: Option<Arc<gantry_sandbox::Sandbox>>,
}

impl Dataplane {
    fn parts(&self) -> Parts<'_> {
        Parts {
            dir: &self.dir,
            proxy: &self.proxy,
            instances: &self.instances,
            records: &self.records,
            adoptable: &self.adoptable,
            sockets: &self.sockets,
            sandbox: self.sandbox.as_ref(),
        }
    }
}

type Failure = (ErrorKind, String);

/// Runs the data plane for `data_dir` until told to shut down or until the
/// data directory is removed.
pub async fn run(data_dir: &Path) -> std::io::Result<()> {
    let dir = deploy_dir(data_dir);
    std::fs::create_dir_all(dir.join("server-groups"))?;
    // Held until this function returns: the kernel releases it if we die.
    let Some(_lock) = gantry_unix::FileLock::try_now(&dir.join("dataplane.lock"))? else {
        return Err(std::io::Error::other(format!(
            "another data plane is running for {}",
            data_dir.display()
        )));
    };
    std::fs::write(dir.join("dataplane.pid"), std::process::id().to_string())?;
    let _ = std::fs::remove_file(stopped_marker(data_dir));
    let sockets = Arc::new(Sockets::inherit());
    let desired = state::load(&dir)?;
    let records = Arc::new(Records::load(&dir));
    let adoptable = find_adoptable(&desired, &records).await;
    let dataplane = Arc::new(Dataplane {
        proxy: Proxy::new(),
        state: Mutex::new(desired),
        instances: std::sync::Mutex::new(Instances::new()),
        records,
        adoptable: std::sync::Mutex::new(adoptable),
        sockets,
        sandbox: instance_sandbox(data_dir),
        dir,
    });
    // Before the control socket, so that whoever waits for that socket
    // finds this one open too.
    dataplane.sockets.serve(&handoff_socket_path(data_dir))?;
    {
        let state = dataplane.state.lock().await;
        for problem in reconcile::reconcile(&dataplane.parts(), &state).await {
            tracing::error!(%problem, "load balancer not listening");
        }
        stop_orphans(&dataplane, &state);
    }
    let socket = socket_path(data_dir);
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket)?;
    tracing::info!(socket = %socket.display(), "data plane ready");
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(1);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                tokio::spawn(serve_connection(dataplane.clone(), stream, done_tx.clone()));
            }
            _ = done_rx.recv() => {
                // Written first: a holder that sees this process go must
                // already know not to start another.
                let _ = std::fs::write(stopped_marker(data_dir), b"");
                break;
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                // Tests and uninstalls remove the data directory: nothing
                // left to serve, and nobody left to stop us.
                if !socket.exists() || !data_dir.exists() {
                    tracing::warn!("data directory removed, stopping");
                    break;
                }
            }
        }
    }
    stop_everything(&dataplane).await;
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(handoff_socket_path(data_dir));
    Ok(())
}

/// The recorded instances still running, each checked once (so that one
/// that answers takes traffic as soon as the listeners open).
async fn find_adoptable(state: &DesiredState, records: &Records) -> HashMap<String, Adoption> {
    let running = records.running().await;
    let checks = running
        .into_iter()
        .map(|(record, by_container)| async move {
            let health = state
                .server_groups
                .iter()
                .find(|g| g.name == record.group)
                .map(|g| reconcile::health_check_for(state, &g.cluster))
                .unwrap_or_default();
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], record.port));
            let healthy = gantry_proxy::health_check::probe(addr, &health).await;
            let id = super::adopt::instance_id(&record.group, record.index);
            (
                id,
                Adoption {
                    record,
                    by_container,
                    healthy,
                },
            )
        });
    futures::future::join_all(checks)
        .await
        .into_iter()
        .collect()
}

/// Stops the processes found running that no live group wanted.
fn stop_orphans(dataplane: &Dataplane, state: &DesiredState) {
    let orphans: Vec<Adoption> = dataplane
        .adoptable
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain()
        .map(|(_, adoption)| adoption)
        .collect();
    for orphan in orphans {
        let grace = state
            .server_groups
            .iter()
            .find(|g| g.name == orphan.record.group)
            .map_or(10, |g| g.spec.grace_seconds);
        let records = dataplane.records.clone();
        tokio::spawn(async move {
            let record = orphan.record;
            super::supervisor::stop_orphan(record.clone(), grace).await;
            records.remove(&record.group, record.index, record.pid);
        });
    }
}

/// The graceful stop: no new connections, requests in flight finish,
/// then every instance is stopped (each drains what it still holds).
async fn stop_everything(dataplane: &Dataplane) {
    dataplane.proxy.set_listeners(&[]).await;
    dataplane.sockets.release().await;
    let handles: Vec<_> = {
        let mut running = dataplane
            .instances
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        running.drain().flat_map(|(_, h)| h).collect()
    };
    dataplane.proxy.set_table(Default::default());
    for handle in &handles {
        handle.stop.cancel();
    }
    // Each instance drains for at most 30 s, then has its grace period.
    let deadline = std::time::Instant::now() + Duration::from_secs(50);
    while std::time::Instant::now() < deadline
        && handles.iter().any(|h| h.snapshot().state != "stopped")
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn serve_connection(
    dataplane: Arc<Dataplane>,
    stream: UnixStream,
    done: tokio::sync::mpsc::Sender<()>,
) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let (mut bytes, shutdown) = match serde_json::from_str::<Request>(&line) {
            Ok(Request::Shutdown) => (ok_line(br#"{"stopping":true}"#), true),
            Ok(request) => (
                match handle(&dataplane, request).await {
                    Ok(answer) => ok_line(&answer),
                    Err((kind, message)) => error_line(kind, message),
                },
                false,
            ),
            Err(error) => (
                error_line(ErrorKind::Invalid, format!("{BAD_REQUEST}{error}")),
                false,
            ),
        };
        bytes.push(b'\n');
        if write.write_all(&bytes).await.is_err() {
            return;
        }
        if shutdown {
            let _ = done.send(()).await;
            return;
        }
    }
}

async fn handle(dp: &Dataplane, request: Request) -> Result<Answer, Failure> {
    match request {
        Request::Status => Ok(to_json(
            &query::groups(dp, query::Owner::Anyone, &query::Only::default()).await,
        )),
        Request::Clusters { provider, query } => Ok(to_json(
            &query::clusters(dp, provider.as_deref(), &query).await,
        )),
        Request::Groups {
            provider,
            cluster,
            name,
            routed,
        } => {
            let only = query::Only {
                cluster: cluster.as_deref(),
                name: name.as_deref(),
                routed,
            };
            let owner = query::Owner::Provider(provider.as_deref());
            Ok(to_json(&query::groups(dp, owner, &only).await))
        }
        Request::Applications { provider } => {
            Ok(to_json(&query::applications(dp, provider.as_deref()).await))
        }
        Request::Figures { provider } => {
            Ok(to_json(&query::figures(dp, provider.as_deref()).await))
        }
        Request::Configure {
            applications,
            load_balancers,
        } => {
            let mut state = dp.state.lock().await;
            let mut next = state.clone();
            next.applications = applications;
            next.load_balancers = load_balancers;
            // A port another program holds is refused before it is saved.
            for lb in &next.load_balancers {
                let ours = state.load_balancers.iter().any(|o| o.port == lb.port)
                    || dp.proxy.listening().contains(&lb.name);
                if !ours && std::net::TcpListener::bind(("127.0.0.1", lb.port)).is_err() {
                    return Err((
                        ErrorKind::Invalid,
                        format!(
                            "load balancer {:?}: port {} is already in use",
                            lb.name, lb.port
                        ),
                    ));
                }
            }
            commit(dp, &mut state, next).await
        }
        Request::Create {
            request_id,
            application,
            cluster,
            spec,
            size,
            provider,
        } => {
            let mut state = dp.state.lock().await;
            if let Some(existing) = state
                .server_groups
                .iter()
                .find(|g| g.request_id == request_id)
            {
                return Ok(to_json(existing));
            }
            let version = state
                .server_groups
                .iter()
                .filter(|g| g.cluster == cluster)
                .map(|g| g.version + 1)
                .max()
                .unwrap_or(0);
            let name = server_group_name(&cluster, version);
            let group_dir = reconcile::group_dir(&dp.dir, &name);
            let remote = provider.is_some();
            if !remote && let Some(image) = &spec.image {
                check_image(image)
                    .await
                    .map_err(|e| (ErrorKind::Invalid, format!("server group {name:?}: {e}")))?;
            }
            if !remote {
                prepare_directory(&group_dir, spec.artifact.as_deref())
                    .await
                    .map_err(|e| (ErrorKind::Invalid, format!("server group {name:?}: {e}")))?;
            }
            let group = ServerGroup {
                name,
                application,
                cluster,
                version,
                request_id,
                spec,
                size,
                enabled: false,
                weight: 100,
                created_at: now_millis(),
                destroyed_at: None,
                provider,
            };
            let mut next = state.clone();
            if remote {
                next.remote_targets.insert(group.name.clone(), Vec::new());
            }
            next.server_groups.push(group.clone());
            commit(dp, &mut state, next).await?;
            Ok(to_json(&group))
        }
        Request::Update {
            name,
            size,
            enabled,
            weight,
        } => {
            let mut state = dp.state.lock().await;
            let mut next = state.clone();
            let group = live_group(&mut next, &name)?;
            if let Some(size) = size {
                group.size = size;
            }
            if let Some(enabled) = enabled {
                group.enabled = enabled;
            }
            if let Some(weight) = weight {
                group.weight = weight;
            }
            let group = group.clone();
            commit(dp, &mut state, next).await?;
            Ok(to_json(&group))
        }
        Request::Targets { name, targets } => {
            let mut state = dp.state.lock().await;
            let mut next = state.clone();
            let group = live_group(&mut next, &name)?.clone();
            if group.provider.is_none() {
                return Err((
                    ErrorKind::Invalid,
                    format!(
                        "server group {name:?} runs on this machine; its instances are not given"
                    ),
                ));
            }
            let leaving = crate::remote::leaving(&dp.instances, &name, &targets);
            next.remote_targets.insert(name, targets);
            commit(dp, &mut state, next).await?;
            drop(state);
            crate::remote::drained(&leaving).await;
            Ok(to_json(&group))
        }
        Request::Destroy { name } => {
            let mut state = dp.state.lock().await;
            let mut next = state.clone();
            let group = live_group(&mut next, &name)?;
            group.destroyed_at = Some(now_millis());
            group.enabled = false;
            group.size = 0;
            let group = group.clone();
            commit(dp, &mut state, next).await?;
            Ok(to_json(&group))
        }
        Request::Samples { name, window_ms } => {
            let now = std::time::Instant::now();
            let samples: Vec<gantry_deploy::analysis::Measurement> = dp
                .proxy
                .stats()
                .group(&name)
                .samples_since(Duration::from_millis(window_ms))
                .iter()
                .map(|s| gantry_deploy::analysis::Measurement {
                    micros: s.micros,
                    error: s.error,
                    ago_ms: u64::try_from(now.saturating_duration_since(s.at).as_millis())
                        .unwrap_or(u64::MAX),
                })
                .collect();
            Ok(to_json(&samples))
        }
        Request::Shutdown => Ok(b"null".to_vec()),
    }
}

fn live_group<'s>(state: &'s mut DesiredState, name: &str) -> Result<&'s mut ServerGroup, Failure> {
    state
        .server_groups
        .iter_mut()
        .find(|g| g.name == name && g.is_live())
        .ok_or_else(|| {
            (
                ErrorKind::NotFound,
                format!("server group {name:?} does not exist"),
            )
        })
}

/// Persists `next`, then acts on it.
async fn commit(
    dp: &Dataplane,
    state: &mut DesiredState,
    next: DesiredState,
) -> Result<Answer, Failure> {
    state::save(&dp.dir, &next).map_err(|e| {
        (
            ErrorKind::Internal,
            format!("cannot save the data plane state: {e}"),
        )
    })?;
    *state = next;
    let problems = reconcile::reconcile(&dp.parts(), state).await;
    if !problems.is_empty() {
        return Err((ErrorKind::Invalid, problems.join("; ")));
    }
    Ok(to_json(&json!({"ok": true})))
}

/// Refuses an image this machine does not hold: instances never pull, and
/// a group whose instances could never start is better never created.
async fn check_image(image: &str) -> Result<(), String> {
    let exists = tokio::process::Command::new("podman")
        .args(["image", "exists", image])
        .status()
        .await
        .map_err(|e| format!("cannot run podman to look for image {image:?}: {e}"))?;
    if exists.success() {
        Ok(())
    } else {
        Err(format!("image {image:?} does not exist on this machine"))
    }
}

/// Makes the server group's directory and puts its artifact in it.
async fn prepare_directory(dir: &Path, artifact: Option<&str>) -> Result<(), String> {
    if let Some(artifact) = artifact {
        let source = Path::new(artifact);
        if !source.exists() {
            return Err(format!("artifact {artifact} does not exist"));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let status = if source.is_dir() {
            tokio::process::Command::new("cp")
                .arg("-a")
                .arg(source.join("."))
                .arg(dir)
                .status()
                .await
        } else {
            tokio::process::Command::new("tar")
                .arg("-xf")
                .arg(source)
                .arg("-C")
                .arg(dir)
                .status()
                .await
        };
        match status {
            Ok(status) if status.success() => {}
            Ok(status) => return Err(format!("cannot unpack artifact {artifact}: {status}")),
            Err(e) => return Err(format!("cannot unpack artifact {artifact}: {e}")),
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// An answer's JSON, written from the typed value (a snapshot of many
/// groups is large: no `Value` in between).
type Answer = Vec<u8>;

fn to_json<T: serde::Serialize>(value: &T) -> Answer {
    serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec())
}

/// `Response::Ok` around an answer already serialized.
fn ok_line(answer: &[u8]) -> Vec<u8> {
    [br#"{"ok":"#.as_slice(), answer, b"}"].concat()
}

fn error_line(kind: ErrorKind, message: String) -> Vec<u8> {
    serde_json::to_vec(&Response::<()>::Error { kind, message }).unwrap_or_default()
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The confinement of instances: the step user and a Landlock ruleset that
/// keeps them out of the data directory, as build steps are kept out
/// (issue "Hardening": no instance the local provider starts may read the
/// server's tokens, keys or database).
fn instance_sandbox(data_dir: &Path) -> Option<Arc<gantry_sandbox::Sandbox>> {
    let config = gantry_sandbox::SandboxConfig {
        user: None,
        protected: vec![data_dir.to_owned()],
    };
    match gantry_sandbox::Sandbox::prepare(config) {
        Ok(sandbox) => {
            if let Some(warning) = sandbox.warning() {
                tracing::warn!("instances: {warning}");
            }
            sandbox.isolates().then(|| Arc::new(sandbox))
        }
        Err(error) => {
            tracing::warn!(%error, "instances run unconfined");
            None
        }
    }
}
