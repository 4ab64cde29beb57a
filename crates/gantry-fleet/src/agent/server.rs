//! The agent process (`gantry agent serve`): one per host user, held by a
//! lock, listening on a Unix socket in its directory that only the host
//! user can open. It does not depend on any SSH connection: the control
//! plane reaches it through `gantry agent --stdio` on a channel, and the
//! agent keeps supervising its instances when that channel drops.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gantry_unix::ProcessGroup;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Mutex;

use super::instance::{self, Running};
use super::protocol::{AgentRequest, AgentResponse, AgentStatus, InstanceSpec, Started};
use super::state::Recorder;

pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join("agent.sock")
}

struct Agent {
    version: String,
    logs: PathBuf,
    recorder: Recorder,
    running: Mutex<HashMap<String, Running>>,
}

/// Runs the agent for `dir` until the directory is removed. Returns at
/// once, successfully, when another agent holds the directory.
pub async fn serve(dir: &Path, version: String) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("logs"))?;
    let Some(_lock) = gantry_unix::FileLock::try_now(&dir.join("agent.lock"))? else {
        return Ok(());
    };
    std::fs::write(dir.join("agent.pid"), std::process::id().to_string())?;
    let recorder = Recorder::load(dir);
    let agent = Arc::new(Agent {
        version,
        logs: dir.join("logs"),
        recorder: recorder.clone(),
        running: Mutex::new(HashMap::new()),
    });
    {
        let mut running = agent.running.lock().await;
        for (spec, process) in recorder.instances() {
            // A previous agent's process still holds the port: it goes,
            // and the instance starts again under this agent.
            if let Some(leader) = process {
                ProcessGroup::kill_leftovers_of(leader);
            }
            let id = spec.id.clone();
            running.insert(
                id,
                instance::start(spec, agent.logs.clone(), recorder.clone()),
            );
        }
    }
    let socket = socket_path(dir);
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket)?;
    tracing::info!(socket = %socket.display(), "agent ready");
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(serve_connection(agent.clone(), stream));
                }
            }
            _ = tokio::time::sleep(Duration::from_secs(2)) => {
                if !socket.exists() {
                    tracing::warn!("agent directory removed, stopping");
                    return Ok(());
                }
            }
        }
    }
}

async fn serve_connection(agent: Arc<Agent>, stream: UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let response = match serde_json::from_str::<AgentRequest>(&line) {
            Ok(request) => match handle(&agent, request).await {
                Ok(value) => AgentResponse::Ok(value),
                Err(message) => AgentResponse::Error { message },
            },
            Err(error) => AgentResponse::Error {
                message: format!("bad request: {error}"),
            },
        };
        let mut bytes = serde_json::to_vec(&response).unwrap_or_default();
        bytes.push(b'\n');
        if write.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

async fn handle(agent: &Agent, request: AgentRequest) -> Result<Value, String> {
    match request {
        AgentRequest::Status => Ok(serde_json::to_value(status(agent).await).unwrap_or_default()),
        AgentRequest::Start { instance } => start(agent, instance).await,
        AgentRequest::Stop { id } => stop(agent, &id).await,
        AgentRequest::Pull {
            image,
            tls_verify,
            login,
        } => {
            let pulled = super::container::pull(&image, tls_verify, login).await?;
            serde_json::to_value(pulled).map_err(|e| e.to_string())
        }
    }
}

async fn start(agent: &Agent, mut spec: InstanceSpec) -> Result<Value, String> {
    if spec.image.is_none() && !Path::new(&spec.release).is_dir() {
        return Err(format!(
            "instance {}: release directory {} does not exist",
            spec.id, spec.release
        ));
    }
    let mut running = agent.running.lock().await;
    if let Some(current) = running.get(&spec.id)
        && (spec.port == 0 || spec.port == current.spec.port)
        && (InstanceSpec {
            port: current.spec.port,
            ..spec.clone()
        }) == current.spec
    {
        return started(current.spec.port);
    }
    if spec.port == 0 {
        spec.port = free_port(&spec.address).map_err(|e| {
            format!(
                "instance {}: no free port on {}: {e}",
                spec.id, spec.address
            )
        })?;
    }
    // Ports are the agent's to hand out only through the control plane;
    // a port another instance of this host holds is refused.
    if let Some(other) = running
        .values()
        .find(|r| r.spec.port == spec.port && r.spec.id != spec.id)
    {
        return Err(format!(
            "port {} is already used by instance {}",
            spec.port, other.spec.id
        ));
    }
    if let Some(old) = running.remove(&spec.id) {
        stop_running(old).await;
    }
    agent
        .recorder
        .put(&spec)
        .map_err(|e| format!("cannot record instance {}: {e}", spec.id))?;
    let (id, port) = (spec.id.clone(), spec.port);
    running.insert(
        id,
        instance::start(spec, agent.logs.clone(), agent.recorder.clone()),
    );
    started(port)
}

fn started(port: u16) -> Result<Value, String> {
    serde_json::to_value(Started { port }).map_err(|e| e.to_string())
}

/// A port the kernel just handed out on `address`; the instance binds it
/// moments later.
fn free_port(address: &str) -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind((address, 0))?;
    Ok(listener.local_addr()?.port())
}

async fn stop(agent: &Agent, id: &str) -> Result<Value, String> {
    agent
        .recorder
        .remove(id)
        .map_err(|e| format!("cannot record instance {id}: {e}"))?;
    let old = agent.running.lock().await.remove(id);
    if let Some(old) = old {
        stop_running(old).await;
    }
    Ok(Value::Bool(true))
}

async fn stop_running(old: Running) {
    let stopped = old.stopped.notified();
    old.stop.cancel();
    let limit = Duration::from_secs(old.spec.grace_seconds + 5);
    let _ = tokio::time::timeout(limit, stopped).await;
}

async fn status(agent: &Agent) -> AgentStatus {
    let running = agent.running.lock().await;
    let mut instances: Vec<_> = running
        .values()
        .map(|r| r.state.lock().unwrap_or_else(|e| e.into_inner()).clone())
        .collect();
    instances.sort_by(|a, b| a.id.cmp(&b.id));
    AgentStatus {
        version: agent.version.clone(),
        pid: std::process::id(),
        rss_kib: own_memory_kib("VmRSS:"),
        private_kib: own_memory_kib("RssAnon:"),
        load: load_average(),
        instances,
    }
}

/// A memory figure of `/proc/self/status`, in KiB.
fn own_memory_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}
