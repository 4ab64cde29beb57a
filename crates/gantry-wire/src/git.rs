//! Hosted git repositories and the trigger listing.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    pub name: String,
    /// Anyone may clone and fetch; pushing always needs a token.
    pub public: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RepositoryList {
    pub repositories: Vec<Repository>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRepository {
    pub name: String,
    #[serde(default)]
    pub public: bool,
}

/// A trigger of a stored pipeline.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Trigger {
    pub pipeline: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// What it watches, in a few words (`repository app, branch ^main$`).
    pub watches: String,
    /// The trigger as applied, without its secret.
    #[schema(value_type = Object)]
    pub spec: Value,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TriggerList {
    pub triggers: Vec<Trigger>,
}
