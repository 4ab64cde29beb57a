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
    /// `PIPELINE#N`: its pipeline and its 1-based position in the pipeline's `triggers`.
    pub id: String,
    pub pipeline: String,
    pub position: u32,
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether it fires (`gantry trigger disable|enable ID`); kept across applies.
    pub enabled: bool,
    /// What it watches, in a few words (`repository app, branch ^main$, files src/**`).
    pub watches: String,
    /// The trigger as applied, without its secret.
    #[schema(value_type = Object)]
    pub spec: Value,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TriggerList {
    pub triggers: Vec<Trigger>,
}

/// The answer to a webhook delivery: 202 when it started executions, 200
/// when it was accepted but started nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookDelivery {
    pub started: Vec<StartedExecution>,
    /// Why nothing was started (a redelivery, an event that is not a push).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    /// The same delivery was received before: nothing was started for this one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

/// An execution a delivery started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StartedExecution {
    pub pipeline: String,
    pub execution: String,
}

/// The recent webhook deliveries, newest first (`GET /api/v1/webhook-deliveries`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct WebhookDeliveryLog {
    pub deliveries: Vec<WebhookDeliveryEntry>,
}

/// One delivery received at `/webhooks/…`, accepted or refused, with why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDeliveryEntry {
    pub id: i64,
    pub received_at: String,
    /// `github`, `gitlab` or `generic`.
    pub provider: String,
    /// The generic webhook's source, from its URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Accepted: `started`, `ignored`, `duplicate`. Refused: `unauthorized` (bad signature or
    /// token), `invalid` (an unreadable payload), `unknown` (no trigger listens there),
    /// `failed` (the server's fault).
    pub outcome: String,
    /// Why it was refused or ignored, as the sender was told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub started: Vec<StartedExecution>,
}
