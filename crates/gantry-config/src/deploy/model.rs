//! The deploy family of the typed model: `applications:`, `loadBalancers:`,
//! the `deploy` stage and the server group stages. Every choice is an enum
//! and every canary step a [`CanaryStep`], read once here from the checked
//! file: the engine takes them as they are and parses nothing again.
//! Serde shapes are those the store has always kept as a pipeline's spec.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::{self, opt as duration_opt};
use crate::stages::{ManualJudgmentStage, RegistryAccess};

pub use super::strategies::DeployStrategy;

/// What a cluster runs on when its deploy names no `provider:`. Which other
/// names a file may use is the server's registry of providers
/// (`gantry_deploy::ProviderRegistry`), checked by [`crate::parse_document_for`].
pub const DEFAULT_PROVIDER: &str = "local";

/// `placement:` of a deploy to `provider: ssh`: which hosts may run the
/// group's instances (those with every label, not drained) and how many
/// of them one host may run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Placement {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_host: Option<u32>,
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
/// `keepalive_timeout` (75s), `client_body_timeout` (60s) and `send_timeout`
/// (60s).
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
    /// The longest a response may wait for the client to take more of it
    /// (nginx's `send_timeout`, 60s).
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub send: Option<Duration>,
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
    /// Where the cluster runs: a registered provider (default [`DEFAULT_PROVIDER`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Which fleet hosts run the instances (`provider: ssh`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
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
    /// Unset: the size of the cluster's current group (1 for its first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<DeploySize>,
    /// Pulling the image when this machine lacks it: as `bake` pushes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_verify: Option<bool>,
    /// A secret holding `user:password` for the image's registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    /// Deploy while another execution deploys the same cluster (unset: wait
    /// for it, so two rollouts never share the cluster's traffic).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overlap: bool,
    /// Unset: [`DeployStrategy::Redblack`] (see [`DeployStage::chosen_strategy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<DeployStrategy>,
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
    /// Unset: `true` for `rolling` (as Spinnaker's rolling red/black),
    /// `false` for the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<bool>,
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
    /// Rolling, instead of `targetPercentages`: how many instances (a
    /// whole number) or what share of them (`"25%"`) change at a time;
    /// with one instance per host, hosts at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<BatchSize>,
    /// Rolling: the share of the group's instances that may fail to start
    /// or become healthy before the deploy stops and rolls back (unset: 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fail_percentage: Option<u32>,
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub pause_between: Option<Duration>,
    /// Rolling: wait for a person between steps (`gantry promote … --stage`).
    #[serde(default)]
    pub wait_for_promotion: bool,
    /// Rolling: a manual judgment between steps (`gantry approve` goes on,
    /// `gantry reject` rolls back), recorded like a `manualJudgment`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judgment_between_steps: Option<ManualJudgmentStage>,
    /// Canary steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<CanaryStep>,
}

impl DeployStage {
    /// The strategy, `redblack` when the file names none.
    pub fn chosen_strategy(&self) -> DeployStrategy {
        self.strategy.unwrap_or_default()
    }

    /// The provider, `local` when the file names none.
    pub fn provider_name(&self) -> &str {
        self.provider.as_deref().unwrap_or(DEFAULT_PROVIDER)
    }

    /// Whether the older groups are scaled to 0 once the deploy succeeded.
    pub fn scales_down(&self) -> bool {
        self.scale_down
            .unwrap_or(self.chosen_strategy() == DeployStrategy::Rolling)
    }

    /// How the image's registry is reached, as `bake` reaches it.
    pub fn registry_access(&self) -> RegistryAccess {
        RegistryAccess {
            tls_verify: self.tls_verify,
            credentials: self.credentials.clone(),
        }
    }
}

/// `size:` of a deploy: a count, or an expression (`${{ parameters.replicas }}`)
/// rendered into one when the stage starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeploySize {
    Count(u32),
    Expression(String),
}

impl DeploySize {
    /// The count, once any expression was rendered.
    pub fn count(&self) -> Option<u32> {
        match self {
            DeploySize::Count(count) => Some(*count),
            DeploySize::Expression(_) => None,
        }
    }
}

impl Serialize for DeploySize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DeploySize::Count(count) => s.serialize_u32(*count),
            DeploySize::Expression(text) => s.serialize_str(text),
        }
    }
}

impl<'de> Deserialize<'de> for DeploySize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(u32),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Count(count) => Ok(DeploySize::Count(count)),
            // A rendered expression is text: "3" is the count 3.
            Raw::Text(text) => match text.trim().parse::<u32>() {
                Ok(count) => Ok(DeploySize::Count(count)),
                Err(_) if text.contains("${{") => Ok(DeploySize::Expression(text)),
                Err(_) => Err(serde::de::Error::custom(format!(
                    "size must be a whole number, not {text:?}"
                ))),
            },
        }
    }
}

/// One step of a canary: `{setWeight: 10}`, `{pause: 30s}`,
/// `{pause: untilPromoted}` or `{analysis: {window, marginal, pass}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum CanaryStep {
    /// The canary's share of traffic, 0 to 100.
    SetWeight(u32),
    Pause(CanaryPause),
    Analysis(CanaryAnalysis),
}

/// How long a canary step pauses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CanaryPause {
    For(Duration),
    /// Until a person promotes (`gantry promote EXECUTION --stage STAGE`).
    UntilPromoted,
}

const UNTIL_PROMOTED: &str = "untilPromoted";

impl Serialize for CanaryPause {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CanaryPause::For(d) => duration::serialize(d, s),
            CanaryPause::UntilPromoted => s.serialize_str(UNTIL_PROMOTED),
        }
    }
}

impl<'de> Deserialize<'de> for CanaryPause {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text == UNTIL_PROMOTED {
            return Ok(CanaryPause::UntilPromoted);
        }
        duration::parse(&text)
            .map(CanaryPause::For)
            .map_err(serde::de::Error::custom)
    }
}

/// A canary analysis: the canary's measurements compared with the
/// baseline's over `window`; scores are from 0 to 100.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CanaryAnalysis {
    #[serde(with = "duration")]
    pub window: Duration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marginal: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_error_rate_increase: Option<u32>,
}

impl CanaryAnalysis {
    /// Scores below this fail at once (default 50).
    pub fn marginal(&self) -> u32 {
        self.marginal.unwrap_or(50)
    }

    /// Scores at or above this pass (default 100).
    pub fn pass(&self) -> u32 {
        self.pass.unwrap_or(100)
    }

    /// Percentage points the canary's error rate may exceed the baseline's
    /// (default 1).
    pub fn max_error_rate_increase(&self) -> u32 {
        self.max_error_rate_increase.unwrap_or(1)
    }
}

/// Which server group of a cluster a stage acts on (`target:`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerGroupTarget {
    #[default]
    Newest,
    Previous,
    Oldest,
}

impl ServerGroupTarget {
    pub const NAMES: &'static [&'static str] = &["newest", "previous", "oldest"];

    pub fn name(self) -> &'static str {
        match self {
            ServerGroupTarget::Newest => "newest",
            ServerGroupTarget::Previous => "previous",
            ServerGroupTarget::Oldest => "oldest",
        }
    }
}

/// enable/disable/destroyServerGroup: a group of `cluster`, by `target` or name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerGroupStage {
    pub cluster: String,
    /// Unset: newest (when no `serverGroup` is named).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<ServerGroupTarget>,
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
    pub target: Option<ServerGroupTarget>,
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

/// How `clusterSize` compares the count of server groups with `expected`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    #[default]
    #[serde(rename = "==")]
    Equal,
    #[serde(rename = "!=")]
    NotEqual,
    #[serde(rename = "<")]
    Less,
    #[serde(rename = "<=")]
    LessOrEqual,
    #[serde(rename = ">")]
    Greater,
    #[serde(rename = ">=")]
    GreaterOrEqual,
}

impl Comparison {
    pub const SYMBOLS: &'static [&'static str] = &["==", "!=", "<", "<=", ">", ">="];

    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Equal => "==",
            Comparison::NotEqual => "!=",
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => ">=",
        }
    }

    pub fn holds(self, actual: u32, expected: u32) -> bool {
        match self {
            Comparison::Equal => actual == expected,
            Comparison::NotEqual => actual != expected,
            Comparison::Less => actual < expected,
            Comparison::LessOrEqual => actual <= expected,
            Comparison::Greater => actual > expected,
            Comparison::GreaterOrEqual => actual >= expected,
        }
    }
}

fn yes() -> bool {
    true
}

/// How many instances a rolling deploy changes at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BatchSize {
    Instances(u32),
    Percent(u32),
}
