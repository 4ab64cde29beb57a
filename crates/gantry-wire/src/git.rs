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

/// The recent deliveries, newest first: webhook deliveries (`GET
/// /api/v1/webhook-deliveries`), or those of every trigger kind (`GET
/// /api/v1/trigger-deliveries`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct WebhookDeliveryLog {
    pub deliveries: Vec<WebhookDeliveryEntry>,
}

/// One delivery: received at `/webhooks/…`, accepted or refused, with why; or what another
/// trigger kind saw for one pipeline (a push to a hosted repository, a cron firing, a landed
/// package), started, ignored with why, or failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDeliveryEntry {
    pub id: i64,
    pub received_at: String,
    /// The trigger kind that received it: `webhook` (any `/webhooks/…` route), `git` (a
    /// push to a hosted repository, or a polled one), `cron`, `artifact`.
    pub kind: String,
    /// `github`, `gitlab` or `generic` for a webhook; how it came for the others (`git`,
    /// `poll`, `cron`, `artifact`).
    pub provider: String,
    /// The generic webhook's source, from its URL; what was seen for the others (the
    /// repository, ref and commit; the schedule and when it was due; the package).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The pipeline it is about (not for a webhook: see `started`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// Accepted: `started`, `ignored`, `duplicate`. Refused: `unauthorized` (bad signature or
    /// token), `invalid` (an unreadable payload), `unknown` (no trigger listens there),
    /// `failed` (the server's fault, or a pipeline that could not be started).
    pub outcome: String,
    /// Why it was refused or ignored, as the sender was told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub started: Vec<StartedExecution>,
}
