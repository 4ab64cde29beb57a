//! Making the running instances, the routing table and the listeners match
//! the desired state. Order matters for zero dropped requests: new
//! instances start, then the routing table is swapped, and only then are
//! removed instances stopped (they drain what they still hold). An
//! instance a previous data plane left running keeps its port and process
//! (see `adopt.rs`); listeners accept on the sockets `handoff.rs` keeps.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gantry_proxy::{GroupBackend, HealthCheckConfig, ListenerConfig, Proxy, RoutingTable};

use super::adopt::{Adoption, Records, instance_id};
use super::handoff::Sockets;
use super::state::DesiredState;
use super::supervisor::{self, InstanceHandle, Launch};

pub(crate) type Instances = HashMap<String, Vec<InstanceHandle>>;

/// What reconciling acts on, besides the desired state.
pub(crate) struct Parts<'a> {
    pub dir: &'a Path,
    pub proxy: &'a Proxy,
    pub instances: &'a Mutex<Instances>,
    pub records: &'a Arc<Records>,
    /// Processes found running at start, by instance id, not yet adopted.
    pub adoptable: &'a Mutex<HashMap<String, Adoption>>,
    pub sockets: &'a Sockets,
    pub sandbox: Option<&'a Arc<gantry_sandbox::Sandbox>>,
}

pub(crate) fn group_dir(dir: &Path, group: &str) -> PathBuf {
    dir.join("server-groups").join(group)
}

/// Returns the problems of listeners that could not open.
pub(crate) async fn reconcile(parts: &Parts<'_>, state: &DesiredState) -> Vec<String> {
    let Parts {
        dir,
        proxy,
        instances,
        ..
    } = *parts;
    let mut to_stop = Vec::new();
    {
        let mut running = instances.lock().unwrap_or_else(|e| e.into_inner());
        for group in &state.server_groups {
            let handles = running.entry(group.name.clone()).or_default();
            if group.provider.is_some() {
                let targets = match (group.is_live(), state.remote_targets.get(&group.name)) {
                    (true, Some(targets)) => targets.as_slice(),
                    _ => &[],
                };
                let health = health_check_for(state, &group.cluster);
                to_stop.extend(remote_handles(handles, &group.name, targets, &health));
                continue;
            }
            let size = if group.is_live() {
                group.size as usize
            } else {
                0
            };
            if handles.len() > size {
                to_stop.extend(handles.split_off(size));
            }
            while handles.len() < size {
                let index = handles.len() as u32;
                let adopt = parts
                    .adoptable
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&instance_id(&group.name, index));
                let Some(port) = adopt.as_ref().map(|a| a.record.port).or_else(free_port) else {
                    tracing::error!(group = %group.name, "no free port for an instance");
                    break;
                };
                handles.push(supervisor::start(Launch {
                    group: group.name.clone(),
                    index,
                    port,
                    dir: group_dir(dir, &group.name),
                    spec: group.spec.clone(),
                    health: health_check_for(state, &group.cluster),
                    adopt,
                    records: parts.records.clone(),
                    sandbox: parts.sandbox.cloned(),
                }));
            }
        }
        let known: Vec<&str> = state
            .server_groups
            .iter()
            .map(|g| g.name.as_str())
            .collect();
        let unknown: Vec<String> = running
            .keys()
            .filter(|name| !known.contains(&name.as_str()))
            .cloned()
            .collect();
        for name in unknown {
            to_stop.extend(running.remove(&name).unwrap_or_default());
        }
        running.retain(|_, handles| !handles.is_empty());
        proxy.set_table(routing_table(proxy, state, &running));
    }
    for handle in to_stop {
        handle.stop.cancel();
    }
    let listeners: Vec<ListenerConfig> = state
        .load_balancers
        .iter()
        .map(|lb| ListenerConfig {
            name: lb.name.clone(),
            port: lb.port,
            rules: lb.rules.iter().map(crate::convert::route_rule).collect(),
            response_timeout: lb.response_timeout,
            client_timeouts: crate::convert::client_timeouts(&lb.client_timeouts),
            limits: crate::convert::connection_limits(&lb.limits),
        })
        .collect();
    let ports: Vec<u16> = listeners.iter().map(|l| l.port).collect();
    parts.sockets.prepare(&ports, proxy);
    let problems = proxy
        .set_listeners(&listeners)
        .await
        .into_iter()
        .map(|e| e.to_string())
        .collect();
    parts.sockets.publish();
    problems
}

/// Makes `handles` match `targets`; returns the handles to stop.
fn remote_handles(
    handles: &mut Vec<InstanceHandle>,
    group: &str,
    targets: &[crate::protocol::RemoteTarget],
    health: &HealthCheckConfig,
) -> Vec<InstanceHandle> {
    let (kept, gone): (Vec<_>, Vec<_>) = std::mem::take(handles)
        .into_iter()
        .partition(|h| targets.iter().any(|t| crate::remote::matches(h, t)));
    *handles = kept;
    for (index, target) in targets.iter().enumerate() {
        if !handles.iter().any(|h| crate::remote::matches(h, target)) {
            handles.push(crate::remote::start(
                group,
                index as u32,
                target,
                health.clone(),
            ));
        }
    }
    gone
}

fn routing_table(proxy: &Proxy, state: &DesiredState, running: &Instances) -> RoutingTable {
    let mut clusters: HashMap<String, Vec<GroupBackend>> = HashMap::new();
    for group in state.server_groups.iter().filter(|g| g.is_live()) {
        let entry = clusters.entry(group.cluster.clone()).or_default();
        if !group.enabled || group.weight == 0 {
            continue;
        }
        let upstreams = running
            .get(&group.name)
            .map(|handles| handles.iter().map(|h| h.upstream.clone()).collect())
            .unwrap_or_default();
        entry.push(GroupBackend {
            name: group.name.clone(),
            weight: group.weight,
            upstreams,
            stats: proxy.stats().group(&group.name),
        });
    }
    RoutingTable::new(clusters)
}

/// The health check of the first load balancer routing to the cluster.
pub(crate) fn health_check_for(state: &DesiredState, cluster: &str) -> HealthCheckConfig {
    state
        .load_balancers
        .iter()
        .find(|lb| lb.rules.iter().any(|r| r.cluster == cluster))
        .map(|lb| crate::convert::health_check(&lb.health_check))
        .unwrap_or_default()
}

/// A port the kernel just handed out; the instance binds it moments later.
fn free_port() -> Option<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).ok()?;
    listener.local_addr().ok().map(|a| a.port())
}
