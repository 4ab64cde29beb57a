//! Instances the data plane routes to but does not run: another provider's
//! (`ssh`: processes on fleet hosts). Each is an upstream at its host's
//! address with the load balancer's own health checks, exactly as a local
//! instance is, minus the process: when removed it leaves the routing table
//! at once and is considered stopped once its requests in flight are done,
//! so its provider stops the process only after it drained.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gantry_deploy::model::Instance;
use gantry_proxy::{HealthCheckConfig, Upstream};
use tokio_util::sync::CancellationToken;

use crate::protocol::RemoteTarget;
use crate::reconcile::Instances;
use crate::supervisor::InstanceHandle;

/// Longest wait for a removed target's requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn start(
    group: &str,
    index: u32,
    target: &RemoteTarget,
    health: HealthCheckConfig,
) -> InstanceHandle {
    let checked = Arc::new(gantry_proxy::UpstreamHealth::default());
    // There is no process for the data plane to watch: the target counts
    // as alive, and only its health checks take it in and out of rotation.
    checked.set_alive(true);
    let upstream = Arc::new(Upstream::new(
        target.id.clone(),
        target.address,
        checked.clone(),
    ));
    let info = Arc::new(Mutex::new(Instance {
        id: target.id.clone(),
        port: target.address.port(),
        state: "running".into(),
        host: Some(target.host.clone()),
        address: Some(target.address.to_string()),
        ..Instance::default()
    }));
    let stop = CancellationToken::new();
    let checks = CancellationToken::new();
    tokio::spawn(gantry_proxy::health_check::run(
        target.address,
        health,
        checked,
        checks.clone(),
    ));
    tokio::spawn({
        let (stop, upstream, info) = (stop.clone(), upstream.clone(), info.clone());
        let group = group.to_owned();
        async move {
            stop.cancelled().await;
            wait_drained(&upstream).await;
            checks.cancel();
            info.lock().unwrap_or_else(|e| e.into_inner()).state = "stopped".into();
            tracing::debug!(%group, instance = %upstream.id, "remote instance left rotation");
        }
    });
    InstanceHandle {
        index,
        upstream,
        info,
        stop,
    }
}

/// Whether a running handle still matches its target.
pub(crate) fn matches(handle: &InstanceHandle, target: &RemoteTarget) -> bool {
    handle.upstream.id == target.id && handle.upstream.addr == target.address
}

/// The upstreams of `group` that `targets` no longer lists.
pub(crate) fn leaving(
    instances: &Mutex<Instances>,
    group: &str,
    targets: &[RemoteTarget],
) -> Vec<Arc<Upstream>> {
    let running = instances.lock().unwrap_or_else(|e| e.into_inner());
    running
        .get(group)
        .map(|handles| {
            handles
                .iter()
                .filter(|h| !targets.iter().any(|t| matches(h, t)))
                .map(|h| h.upstream.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until none of `upstreams` has a request in flight (or the drain
/// timeout passed).
pub(crate) async fn drained(upstreams: &[Arc<Upstream>]) {
    for upstream in upstreams {
        wait_drained(upstream).await;
    }
}

async fn wait_drained(upstream: &Upstream) {
    let started = Instant::now();
    while upstream.in_flight() > 0 && started.elapsed() < DRAIN_TIMEOUT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
