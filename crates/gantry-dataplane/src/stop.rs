//! `gantry dataplane stop`: asks the data plane of a data directory to stop
//! gracefully and waits until it has. The data plane closes its listeners
//! (no new connection), lets every instance drain its requests in flight,
//! stops the instances (SIGTERM, SIGKILL after their grace period), and
//! exits. Its desired state is kept: the next `gantry serve` request that
//! needs it starts it again with the same server groups.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::server::{deploy_dir, socket_path};
use crate::protocol::Request;
use gantry_deploy::DeployError;

/// Longest wait for the data plane to exit: draining (30 s) plus a grace.
const STOP_TIMEOUT: Duration = Duration::from_secs(70);

/// What `stop` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// It was running and has exited.
    Stopped,
    /// No data plane answered for this data directory.
    NotRunning,
}

pub async fn stop(data_dir: &Path) -> Result<Stopped, DeployError> {
    let socket = socket_path(data_dir);
    let Ok(mut stream) = UnixStream::connect(&socket).await else {
        return Ok(Stopped::NotRunning);
    };
    let mut request = serde_json::to_vec(&Request::Shutdown).unwrap_or_default();
    request.push(b'\n');
    stream
        .write_all(&request)
        .await
        .map_err(|e| DeployError::Dataplane(format!("cannot ask it to stop: {e}")))?;
    let mut answer = String::new();
    BufReader::new(&mut stream)
        .read_line(&mut answer)
        .await
        .map_err(|e| DeployError::Dataplane(format!("cannot read its answer: {e}")))?;
    let lock_path = deploy_dir(data_dir).join("dataplane.lock");
    let deadline = Instant::now() + STOP_TIMEOUT;
    // The data plane holds its lock until its last instance has stopped.
    while holds_lock(&lock_path)? {
        if Instant::now() > deadline {
            return Err(DeployError::Dataplane(format!(
                "the data plane of {} did not stop within {STOP_TIMEOUT:?}",
                data_dir.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Stopped::Stopped)
}

/// True while another process holds the data plane's lock.
fn holds_lock(path: &Path) -> Result<bool, DeployError> {
    gantry_unix::FileLock::is_held(path)
        .map_err(|e| DeployError::Dataplane(format!("cannot open {}: {e}", path.display())))
}
