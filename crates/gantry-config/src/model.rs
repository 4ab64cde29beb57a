//! The validated shape of `gantry.yaml`. These types are what the engine
//! runs; they serialize to the JSON the store keeps as a pipeline's `spec`.
//!
//! The stage types' own specs live with their checks in `stages/<name>.rs`; the deploy
//! family's stay here for now.
//!
//! Field names follow the file (camelCase). Every string field may hold
//! `${{ … }}` expressions; they are kept verbatim here and rendered by the
//! engine when a stage starts.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::duration::opt as duration_opt;
use crate::stages::ManualJudgmentStage;
pub use crate::stages::StageKind;
use crate::triggers::Trigger;

/// A whole `gantry.yaml`. Later kinds (applications, load balancers,
/// repositories) become further top-level lists beside `pipelines`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Document {
    #[serde(default)]
    pub pipelines: Vec<Pipeline>,
    /// Repositories Gantry hosts, created by `apply` when missing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<Repository>,
    /// Applications that clusters and server groups belong to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<Application>,
    /// Built-in load balancers routing to clusters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancers: Vec<LoadBalancer>,
}

/// A repository Gantry hosts, served at `/git/NAME.git`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Repository {
    pub name: String,
    /// Anyone may clone and fetch it; pushing always needs a token.
    #[serde(default)]
    pub public: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pipeline {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
    pub stages: Vec<Stage>,
    /// What starts the pipeline besides a person (see [`Trigger`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<Trigger>,
    /// How many executions may run at once, and what happens to the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
}

/// GitLab's `resource_group`: at most `limit` executions of the pipeline run at once; a new
/// one waits (`queue`, it stays `pending`) or cancels the oldest running one (`cancelOlder`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Concurrency {
    #[serde(default = "default_concurrency_limit")]
    pub limit: u32,
    #[serde(default)]
    pub on_conflict: OnConflict,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OnConflict {
    #[default]
    Queue,
    CancelOlder,
}

fn default_concurrency_limit() -> u32 {
    1
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Parameter {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// When non-empty, the value must be one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    #[serde(default)]
    pub required: bool,
    /// A secret parameter's value is masked in every log line.
    #[serde(default)]
    pub secret: bool,
}

/// What a stage does when it fails (Spinnaker's three flags, same meanings).
/// - `failPipeline: true` (default): the execution fails, other branches are canceled.
/// - `continuePipeline: true`: the failure is ignored; downstream stages run.
/// - `failPipeline: false`: this branch stops; the others complete, and the
///   execution succeeds unless `completeOtherBranchesThenFail: true`.
///
/// No `deny_unknown_fields` here: serde does not support it together with `flatten`, and
/// `parse_document` reports unknown fields itself, with positions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// A condition (a CEL expression, bare or inside `${{ }}`); false skips the stage.
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// How many times a failed stage is tried again.
    #[serde(default)]
    pub retries: u32,
    #[serde(default = "yes")]
    pub fail_pipeline: bool,
    #[serde(default, alias = "continueOnFailure")]
    pub continue_pipeline: bool,
    #[serde(default)]
    pub complete_other_branches_then_fail: bool,
    #[serde(flatten)]
    pub kind: StageKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckPreconditionsStage {
    pub preconditions: Vec<Precondition>,
}

/// An expression that must be true (or, with `clusterSize`, a count of a
/// cluster's server groups); `message` is the failure reported otherwise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Precondition {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub expression: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_size: Option<ClusterSizePrecondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Spinnaker's `clusterSize`: the number of live server groups of `cluster`
/// compared with `expected` (`==` by default).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSizePrecondition {
    pub cluster: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<String>,
    pub expected: u32,
}

/// An application of `applications:`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Application {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A load balancer of `loadBalancers:`: a loopback listener routing to the
/// enabled server groups of clusters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancer {
    pub name: String,
    pub port: u16,
    /// Where requests go that no rule takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<LoadBalancerRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// How long an instance may take to start answering a request before
    /// the client gets a 504 (default 60s).
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_timeout: Option<Duration>,
    /// How long a client may take to send a request and stay idle between
    /// requests (defaults as nginx's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<LoadBalancerTimeouts>,
    /// How many client connections the listener holds at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LoadBalancerLimits>,
}

/// `timeouts:` of a load balancer: nginx's `client_header_timeout` (60s),
/// `keepalive_timeout` (75s) and `client_body_timeout` (60s).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancerTimeouts {
    /// From the connection (or a later request's first byte) to the end
    /// of the request's header.
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub header: Option<Duration>,
    /// How long a kept-alive connection may wait for its next request.
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub keep_alive: Option<Duration>,
    /// The longest wait between two reads of a request body.
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub body: Option<Duration>,
}

/// `limits:` of a load balancer: connections open at once, in all and from
/// one client address (default 10000 and 1000).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancerLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_address: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancerRule {
    pub cluster: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub interval: Option<Duration>,
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_threshold: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_threshold: Option<u32>,
}

/// `deploy`: a new server group of the cluster `application-stack-detail`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeployStage {
    pub application: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// A directory or tarball (relative paths: in the execution's workspace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    /// Instead of `artifact`: the newest package of APT repository
    /// `repository` matching this query (`hello (= 1.2.3)`), unpacked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default = "one")]
    pub size: u32,
    /// redblack (default), highlander, rolling, canary or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub health_timeout: Option<Duration>,
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub grace_period: Option<Duration>,
    #[serde(default)]
    pub scale_down: bool,
    #[serde(default)]
    pub max_remaining_server_groups: u32,
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub delay_before_disable: Option<Duration>,
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub delay_before_scale_down: Option<Duration>,
    /// Failed deploys always remove the new group; `false` is refused for clarity.
    #[serde(default = "yes")]
    pub rollback_on_failure: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_percentages: Vec<u32>,
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub pause_between: Option<Duration>,
    /// Rolling: wait for a person between steps (`gantry skip … --stage`).
    #[serde(default)]
    pub wait_for_promotion: bool,
    /// Rolling: a manual judgment between steps (`gantry approve` goes on,
    /// `gantry reject` rolls back), recorded like a `manualJudgment`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judgment_between_steps: Option<ManualJudgmentStage>,
    /// Canary steps: `{setWeight}`, `{pause}`, `{analysis}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Value>,
}

fn one() -> u32 {
    1
}

/// enable/disable/destroyServerGroup: a group of `cluster`, by `target` or name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerGroupStage {
    pub cluster: String,
    /// newest, previous or oldest (default newest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_group: Option<String>,
    /// `disableServerGroup` only: also disable the last enabled group of
    /// the cluster, whose traffic then has nowhere to go.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResizeServerGroupStage {
    pub cluster: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up_percent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_percent: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollbackClusterStage {
    pub cluster: String,
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub health_timeout: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaleDownClusterStage {
    pub cluster: String,
    /// The newest groups left at full size (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_full_size_server_groups: Option<u32>,
}

pub(crate) fn yes() -> bool {
    true
}
