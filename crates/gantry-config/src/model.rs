//! The validated shape of `gantry.yaml`. These types are what the engine
//! runs; they serialize to the JSON the store keeps as a pipeline's `spec`.
//!
//! The stage types' own specs live with their checks in `stages/<name>.rs`; the deploy
//! family's stay here for now.
//!
//! Field names follow the file (camelCase). Every string field may hold
//! `${{ … }}` expressions; they are kept verbatim here and rendered by the
//! engine when a stage starts.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::opt as duration_opt;
pub use crate::stages::StageKind;
use crate::triggers::Trigger;
// The deploy family lives in `deploy/model.rs`.
use crate::deploy::model::{Application, LoadBalancer};

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
    /// Machines the `ssh` provider deploys to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<crate::hosts::Host>,
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
    pub comparison: Option<crate::deploy::Comparison>,
    pub expected: u32,
}

pub(crate) fn yes() -> bool {
    true
}
