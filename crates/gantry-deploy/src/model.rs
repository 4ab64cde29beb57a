//! The deploy model as the data plane keeps it and the API shows it.

use std::collections::BTreeMap;

use gantry_proxy::{GroupStatsSnapshot, HealthCheckConfig, RouteRule};
use serde::{Deserialize, Serialize};

/// `app`, `app-stack`, `app-stack-detail`, or `app--detail` (Spinnaker's naming).
pub fn cluster_name(application: &str, stack: Option<&str>, detail: Option<&str>) -> String {
    match (
        stack.filter(|s| !s.is_empty()),
        detail.filter(|d| !d.is_empty()),
    ) {
        (None, None) => application.to_owned(),
        (Some(stack), None) => format!("{application}-{stack}"),
        (stack, Some(detail)) => format!("{application}-{}-{detail}", stack.unwrap_or("")),
    }
}

/// `cluster-v003`.
pub fn server_group_name(cluster: &str, version: u32) -> String {
    format!("{cluster}-v{version:03}")
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancer {
    pub name: String,
    pub port: u16,
    /// Tried in order; the first that matches host and path wins.
    pub rules: Vec<RouteRule>,
    pub health_check: HealthCheckConfig,
    /// Unset: the proxy's default (`gantry_proxy::DEFAULT_RESPONSE_TIMEOUT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_timeout: Option<std::time::Duration>,
    /// Header, keep-alive and body timeouts of client connections; unset
    /// ones are nginx's defaults.
    #[serde(default)]
    pub client_timeouts: gantry_proxy::ClientTimeouts,
    /// Caps on client connections; unset ones are the proxy's defaults.
    #[serde(default)]
    pub limits: gantry_proxy::ConnectionLimits,
}

/// What runs: one immutable version of the software.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerGroupSpec {
    /// A shell command run in the server group's directory (host process).
    #[serde(default)]
    pub command: Option<String>,
    /// A container image run with podman.
    #[serde(default)]
    pub image: Option<String>,
    /// A directory or tarball copied into the server group's directory.
    #[serde(default)]
    pub artifact: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Seconds between SIGTERM and SIGKILL.
    #[serde(default = "default_grace")]
    pub grace_seconds: u64,
}

fn default_grace() -> u64 {
    10
}

/// A server group as the data plane keeps it (also after it is destroyed: history).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerGroup {
    pub name: String,
    pub application: String,
    pub cluster: String,
    pub version: u32,
    /// Set by the deploy that created it, so that a resumed deploy finds it.
    pub request_id: String,
    pub spec: ServerGroupSpec,
    pub size: u32,
    /// Takes traffic from the cluster's load balancers.
    pub enabled: bool,
    /// Relative traffic weight among the enabled groups of its cluster.
    pub weight: u32,
    pub created_at: u64,
    #[serde(default)]
    pub destroyed_at: Option<u64>,
}

impl ServerGroup {
    pub fn is_live(&self) -> bool {
        self.destroyed_at.is_none()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    pub id: String,
    pub port: u16,
    pub pid: Option<u32>,
    /// `starting`, `running`, `crashed`, `stopping`.
    pub state: String,
    pub healthy: bool,
    pub in_flight: usize,
    pub restarts: u32,
    pub crash_looping: bool,
}

/// A server group with its live instances and traffic figures.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerGroupStatus {
    #[serde(flatten)]
    pub group: ServerGroup,
    pub instances: Vec<Instance>,
    #[serde(default)]
    pub stats: Option<GroupStatsSnapshotView>,
}

impl ServerGroupStatus {
    pub fn healthy_instances(&self) -> usize {
        self.instances.iter().filter(|i| i.healthy).count()
    }
}

/// [`GroupStatsSnapshot`] in a form that deserializes too.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupStatsSnapshotView {
    pub requests: u64,
    pub status_5xx: u64,
    pub connect_errors: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub rate: f64,
}

impl From<GroupStatsSnapshot> for GroupStatsSnapshotView {
    fn from(s: GroupStatsSnapshot) -> Self {
        GroupStatsSnapshotView {
            requests: s.requests,
            status_5xx: s.status_5xx,
            connect_errors: s.connect_errors,
            p50_ms: s.p50_ms,
            p95_ms: s.p95_ms,
            p99_ms: s.p99_ms,
            rate: s.rate,
        }
    }
}

/// Everything the data plane knows, as one answer.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub applications: Vec<Application>,
    pub load_balancers: Vec<LoadBalancerStatus>,
    pub server_groups: Vec<ServerGroupStatus>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerStatus {
    #[serde(flatten)]
    pub load_balancer: LoadBalancer,
    pub listening: bool,
}

impl Snapshot {
    /// Live server groups of a cluster, oldest first.
    pub fn cluster(&self, cluster: &str) -> Vec<&ServerGroupStatus> {
        let mut groups: Vec<&ServerGroupStatus> = self
            .server_groups
            .iter()
            .filter(|g| g.group.cluster == cluster && g.group.is_live())
            .collect();
        groups.sort_by_key(|g| g.group.version);
        groups
    }

    pub fn group(&self, name: &str) -> Option<&ServerGroupStatus> {
        self.server_groups.iter().find(|g| g.group.name == name)
    }
}
