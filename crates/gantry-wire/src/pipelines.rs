//! Pipeline files (validate, apply) and stored pipelines.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A pipeline file sent for validation or apply.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileBody {
    /// The name used in diagnostics.
    #[serde(default = "default_file")]
    #[schema(default = "gantry.yaml")]
    pub file: String,
    pub content: String,
}

fn default_file() -> String {
    "gantry.yaml".to_owned()
}

/// What `validate` found: the pipelines of a valid file.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ValidateReport {
    pub pipelines: Vec<ValidPipeline>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ValidPipeline {
    pub name: String,
    /// How many stages it has.
    pub stages: usize,
}

/// What `apply` did, one list per kind of the file. Later kinds add their
/// own lists; empty ones are left out, except pipelines.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport {
    pub pipelines: Vec<Applied>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<Applied>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancers: Vec<Applied>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<Applied>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<Applied>,
}

/// One thing of an applied file (a pipeline, an application, a load
/// balancer, a repository), and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Applied {
    pub name: String,
    pub result: Upsert,
}

/// What applying did to one thing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Upsert {
    Created,
    Updated,
    Unchanged,
}

impl Upsert {
    /// The word the API spells it with.
    pub fn as_str(self) -> &'static str {
        match self {
            Upsert::Created => "created",
            Upsert::Updated => "updated",
            Upsert::Unchanged => "unchanged",
        }
    }
}

/// A stored pipeline; `spec` only when one pipeline is shown.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pipeline {
    pub name: String,
    pub application: Option<String>,
    pub version: i64,
    /// How many stages the pipeline has.
    pub stages: usize,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub spec: Option<Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PipelineList {
    pub pipelines: Vec<Pipeline>,
}

/// `DELETE /api/v1/pipelines` with a name no URL path can carry.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteBody {
    pub name: String,
}

/// Starts an execution of a pipeline.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunBody {
    /// Strings, numbers or booleans.
    #[serde(default)]
    pub parameters: BTreeMap<String, Value>,
    /// A branch or tag of the repository the pipeline's git trigger watches:
    /// the execution runs on that commit, as if it had been pushed.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}
