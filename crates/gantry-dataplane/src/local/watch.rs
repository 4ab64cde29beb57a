//! The server's watch over its data plane. It stays connected to the data
//! plane's `listeners.sock`, keeping the copies of the listening sockets it
//! is sent; the connection ends the moment the data plane dies, and a new
//! one is started at once with those sockets (connections that arrived in
//! between wait in their backlog). It also starts the data plane when none
//! runs but the desired state holds load balancers or server groups (after
//! a reboot, or when both processes were killed). A data plane stopped on
//! purpose (`gantry dataplane stop`) is left stopped until it is next
//! needed.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixStream;

use super::client::DataplaneClient;
use crate::{FrameReader, deploy_dir, handoff_socket_path, stopped_marker};

/// How often the watch looks for a data plane it is not connected to.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// The wait after a failed start before the next try.
const RETRY: Duration = Duration::from_secs(1);

/// Runs for the life of the server.
pub(crate) async fn watch(client: Arc<DataplaneClient>) {
    let data_dir = client.config().data_dir.clone();
    let handoff = handoff_socket_path(&data_dir);
    // A data plane that answers but hands over no sockets (one of an older
    // version) must not make this loop spin.
    let mut started_last = false;
    loop {
        match UnixStream::connect(&handoff).await {
            Ok(stream) => {
                started_last = false;
                if follow(&client, stream).await == Ended::Stopping {
                    // It is draining: do not reconnect to it in a loop.
                    tokio::time::sleep(IDLE_POLL).await;
                }
            }
            Err(_) if should_start(&data_dir) => {
                let again = started_last;
                started_last = true;
                if again {
                    tokio::time::sleep(IDLE_POLL).await;
                } else {
                    tracing::warn!(data_dir = %data_dir.display(), "data plane not running, starting it");
                }
                match client.ensure_running().await {
                    Ok(()) if !again => tracing::info!("data plane running"),
                    Ok(()) => {}
                    Err(error) => {
                        tracing::error!(%error, "cannot start the data plane");
                        tokio::time::sleep(RETRY).await;
                    }
                }
            }
            Err(_) => tokio::time::sleep(IDLE_POLL).await,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The connection ended without a word: the data plane died.
    Lost,
    /// It is stopping on purpose and let go of its sockets.
    Stopping,
}

/// Keeps the sockets the data plane sends until the connection ends.
async fn follow(client: &DataplaneClient, stream: UnixStream) -> Ended {
    let mut reader = FrameReader::new();
    loop {
        match reader.next(&stream).await {
            Ok(Some(received)) => {
                tracing::debug!(
                    sockets = received.sockets.len(),
                    "holding the data plane's sockets"
                );
                client.hold(received.sockets);
                if received.stopping {
                    return Ended::Stopping;
                }
            }
            Ok(None) => return Ended::Lost,
            Err(error) => {
                tracing::warn!(%error, "lost the data plane's socket hand-over");
                return Ended::Lost;
            }
        }
    }
}

/// A data plane should run when the data directory is there, nobody
/// stopped it on purpose, and there is something for it to serve.
fn should_start(data_dir: &std::path::Path) -> bool {
    let dir = deploy_dir(data_dir);
    if !dir.exists() || stopped_marker(data_dir).exists() {
        return false;
    }
    match crate::load_desired_state(&dir) {
        Ok(state) => {
            !state.load_balancers.is_empty() || state.server_groups.iter().any(|g| g.is_live())
        }
        Err(error) => {
            tracing::warn!(%error, "cannot read the data plane's desired state");
            false
        }
    }
}
