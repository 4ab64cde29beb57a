//! Where the engine's own Docker API listens, for the gate to forward to: podman's is
//! started on demand (`podman system service` on a socket in a directory of the caller's,
//! kept for the life of this process and started again if it died); docker's is its
//! daemon's (`DOCKER_HOST`, else `/var/run/docker.sock`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::{ContainerEngine, ContainerError, EngineKind};

/// How long a new `podman system service` may take to answer.
const STARTUP: Duration = Duration::from_secs(20);

/// The services this process started, by socket.
static SERVICES: Mutex<Option<HashMap<PathBuf, Child>>> = Mutex::new(None);

/// The socket of `engine`'s Docker API; for podman, under `dir` (the server's private
/// directory, never one a step can write).
pub async fn engine_api_socket(
    engine: &ContainerEngine,
    dir: &Path,
) -> Result<PathBuf, ContainerError> {
    match engine.kind {
        EngineKind::Docker => Ok(docker_socket()),
        EngineKind::Podman => podman_service(engine, dir).await,
    }
}

fn docker_socket() -> PathBuf {
    std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|host| host.strip_prefix("unix://").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"))
}

async fn podman_service(engine: &ContainerEngine, dir: &Path) -> Result<PathBuf, ContainerError> {
    let socket = dir.join("engine-api.sock");
    let running = {
        let mut services = SERVICES.lock().unwrap_or_else(|e| e.into_inner());
        let services = services.get_or_insert_with(HashMap::new);
        let alive = services
            .get_mut(&socket)
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)));
        if !alive {
            std::fs::create_dir_all(dir).map_err(|e| failed(&socket, &e.to_string()))?;
            let _ = std::fs::remove_file(&socket);
            let child = Command::new(&engine.program)
                .args(["system", "service", "--time=0"])
                .arg(format!("unix://{}", socket.display()))
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| failed(&socket, &e.to_string()))?;
            services.insert(socket.clone(), child);
        }
        alive
    };
    if running {
        return Ok(socket);
    }
    let deadline = Instant::now() + STARTUP;
    while tokio::net::UnixStream::connect(&socket).await.is_err() {
        if Instant::now() > deadline {
            return Err(failed(&socket, "it did not answer within 20 s"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(socket)
}

fn failed(socket: &Path, why: &str) -> ContainerError {
    ContainerError::Command {
        program: "podman".to_owned(),
        action: format!("system service at {}", socket.display()),
        message: why.to_owned(),
    }
}
