//! Applications, clusters, server groups and load balancers
//! (`/api/v1/applications`, `/clusters`, `/server-groups`,
//! `/load-balancers`): what `gantry app|cluster|servergroup|lb` print and
//! the web UI's clusters view draws, and the bodies of the operations people
//! run by hand. A canary's analysis, as the deploy stage records it in its
//! outputs, is here too: the UI draws it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationList {
    pub applications: Vec<ApplicationSummary>,
}

/// An application: declared in a file, or known only from its server groups.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSummary {
    pub name: String,
    pub description: Option<String>,
    /// The clusters its live server groups belong to, sorted.
    pub clusters: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterList {
    pub clusters: Vec<ClusterSummary>,
    /// How many clusters matched the filter, beyond this page too.
    pub total: usize,
    /// The `after` that reads the next page, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A cluster in a list: its live groups by name, and its instances' health.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSummary {
    pub name: String,
    pub application: Option<String>,
    pub server_groups: Vec<String>,
    pub enabled: Vec<String>,
    pub instances: usize,
    pub healthy: usize,
}

/// One cluster: its live groups oldest first, the load balancers routing to
/// it and its destroyed groups.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub name: String,
    pub application: Option<String>,
    pub load_balancers: Vec<String>,
    pub server_groups: Vec<ServerGroupStatus>,
    pub history: Vec<ServerGroup>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerGroupList {
    pub server_groups: Vec<ServerGroupStatus>,
}

/// A server group with its instances and the load balancer's figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerGroupStatus {
    #[serde(flatten)]
    #[schema(inline)]
    pub group: ServerGroup,
    pub instances: Vec<Instance>,
    pub stats: Option<GroupStats>,
}

impl ServerGroupStatus {
    pub fn healthy_instances(&self) -> usize {
        self.instances.iter().filter(|i| i.healthy).count()
    }
}

/// One immutable version of an application (`CLUSTER-vNNN`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerGroup {
    pub name: String,
    pub application: String,
    pub cluster: String,
    pub version: u32,
    /// `EXECUTION-STAGE-ATTEMPT` of the deploy that created it.
    pub request_id: String,
    pub spec: ServerGroupSpec,
    pub size: u32,
    pub enabled: bool,
    /// Its share of the cluster's traffic against the other enabled groups.
    pub weight: u32,
    /// Milliseconds since the Unix epoch.
    pub created_at: u64,
    /// Milliseconds since the Unix epoch; `null` while it lives.
    pub destroyed_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

impl ServerGroup {
    pub fn is_live(&self) -> bool {
        self.destroyed_at.is_none()
    }
}

/// What every instance of a group runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerGroupSpec {
    pub command: Option<String>,
    pub image: Option<String>,
    pub artifact: Option<String>,
    pub env: BTreeMap<String, String>,
    pub grace_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    pub labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_host: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The package version it runs (groups installed from a package on fleet hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The image it runs (groups of images on fleet hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// That image's manifest digest as its host pulled it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// The load balancer's figures for a group since it started.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupStats {
    pub requests: u64,
    pub status_5xx: u64,
    pub connect_errors: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Requests per second over the last ten seconds.
    pub rate: f64,
}

/// `POST /api/v1/server-groups/{name}/resize`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResizeRequest {
    /// From 0 (stops every instance) to the server's ceiling.
    pub size: i64,
}

/// `POST /api/v1/server-groups/{name}/disable`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DisableRequest {
    /// Also disable the last enabled server group of its cluster (its
    /// traffic then has nowhere to go).
    #[serde(default)]
    pub force: bool,
}

/// `POST /api/v1/clusters/{name}/rollback`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    pub cluster: String,
    /// The group enabled again.
    pub enabled: String,
    /// What the rollback did, step by step.
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerList {
    pub load_balancers: Vec<LoadBalancer>,
}

/// A load balancer with, per cluster it routes to, the groups taking
/// traffic, their weights, instance health and live request rates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancer {
    pub name: String,
    pub port: u16,
    pub listening: bool,
    pub rules: Vec<RouteRule>,
    pub health_check: HealthCheck,
    pub clusters: Vec<LoadBalancerCluster>,
}

/// Which requests go to which cluster (the first rule that matches).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RouteRule {
    pub host: Option<String>,
    pub path_prefix: Option<String>,
    pub cluster: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    pub path: String,
    /// Milliseconds.
    pub interval: u64,
    /// Milliseconds.
    pub timeout: u64,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerCluster {
    pub cluster: String,
    pub server_groups: Vec<GroupTraffic>,
}

/// A live group as a load balancer routes to it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupTraffic {
    pub name: String,
    pub enabled: bool,
    pub weight: u32,
    /// The share of the cluster's requests it takes now, 0 to 100.
    pub traffic_percent: f64,
    pub size: u32,
    pub instances: Vec<Instance>,
    pub stats: Option<GroupStats>,
}

/// One analysis step of a canary deploy, as the deploy stage records it
/// (`outputs.analysis`, and `state.rollout.analyses` while it runs or when
/// it failed): the load balancer's figures for the canary and its baseline
/// over the window, interval by interval, and the judgment on the whole.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryAnalysis {
    /// The 1-based step of the canary's `steps` that ran it.
    pub step: usize,
    pub canary: String,
    pub baseline: String,
    /// Milliseconds.
    pub window_ms: u64,
    /// When the window ended, in milliseconds since the Unix epoch.
    pub ended_at: u64,
    /// The window in equal intervals, oldest first.
    pub intervals: Vec<AnalysisInterval>,
    /// The share of metrics that passed, 0 to 100.
    pub score: f64,
    /// The score at or above which the canary passes.
    pub pass_score: f64,
    /// The score below which the canary fails at once.
    pub marginal_score: f64,
    pub verdict: CanaryVerdict,
    pub metrics: Vec<AnalysisMetric>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum CanaryVerdict {
    #[default]
    Pass,
    Marginal,
    Fail,
}

impl CanaryVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            CanaryVerdict::Pass => "pass",
            CanaryVerdict::Marginal => "marginal",
            CanaryVerdict::Fail => "fail",
        }
    }
}

/// The figures of one interval of an analysis window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisInterval {
    /// Milliseconds from the start of the window.
    pub start_ms: u64,
    pub end_ms: u64,
    pub canary: IntervalFigures,
    pub baseline: IntervalFigures,
}

/// One group's requests within an interval; the latencies are `null`
/// when it had none.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntervalFigures {
    pub requests: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Percent of its requests answered 5xx or not reached.
    pub error_rate: Option<f64>,
}

/// One metric of the judgment over the whole window (Kayenta's shape).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisMetric {
    /// `errorRate` (percent) or `latencyMs` (the median).
    pub metric: String,
    /// `pass`, `high`, `low` or `noData`.
    pub judgment: String,
    pub canary: f64,
    pub baseline: f64,
}
