//! The deploy model as providers keep it and the API shows it. It names no
//! provider's types: the local data plane converts its load balancers to
//! the proxy's (`gantry-dataplane` `convert.rs`), and the serde shapes here
//! are those of `DATA/deploy/state.json` and of the API's JSON.

mod clusters;
mod load_balancer;
mod partial;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use clusters::{ClusterPage, ClusterQuery, ClusterSummary, InstanceCounts};
pub use load_balancer::{ClientTimeouts, ConnectionLimits, HealthCheck, LoadBalancer, RouteRule};
pub use partial::{ApplicationIndex, ClusterOf, GroupFigures};

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
    /// Which hosts may run the instances, for providers with hosts (`ssh`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// Instead of `artifact`, for providers with hosts (`ssh`): a package of
    /// the server's own APT repository, installed at this exact version by
    /// `apt-get` on each host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<Box<HostPackage>>,
    /// How hosts reach `image`'s registry, for providers whose hosts pull
    /// it themselves (`ssh`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_access: Option<ImageAccess>,
}

/// A registry account and how to reach the registry: the secret's name
/// only (its value stays in the server's secret store until a host pulls).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageAccess {
    /// The secret holding `user:password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    /// `false` allows a plain-HTTP or self-signed registry; unset verifies
    /// except for a loopback registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_verify: Option<bool>,
}

/// A package installed on hosts from the server's published APT tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostPackage {
    pub name: String,
    pub version: String,
    /// The publication's path under `/apt/` (empty for the default prefix).
    #[serde(default)]
    pub prefix: String,
    pub distribution: String,
    pub component: String,
    /// The armored public key the publication is signed with; `None` for
    /// an unsigned publication (trusted as the server's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
}

/// Hosts with every one of `labels` (and not drained) run the instances,
/// spread evenly, at most `max_per_host` on one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_host: Option<u32>,
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
    /// The provider whose instances these are when not the data plane's
    /// own (`ssh`): the data plane only routes to them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
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
    /// The fleet host it runs on (instances of the `ssh` provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Where the load balancer reaches it when not on this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The package version it runs (groups installed from a package).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The image it runs (groups of images on fleet hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// That image's manifest digest as its host pulled it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
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

/// The load balancer's traffic figures of one group.
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
