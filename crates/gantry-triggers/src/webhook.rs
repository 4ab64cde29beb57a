//! What the webhook receivers share: the answer, header and field readers, and delivery-id
//! dedupe.

use gantry_config::{Pipeline, Trigger};
use http::HeaderMap;
use serde::Serialize;
use serde_json::Value;

use crate::push::{Push, Started, now};
use crate::{Triggers, WebhookError};

/// What a delivery did.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub started: Vec<Started>,
    /// Why nothing was started, when the delivery was accepted but not acted on (a
    /// redelivery, an event that is not a push).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
}

impl Delivery {
    pub(crate) fn ignored(reason: String) -> Delivery {
        Delivery {
            started: Vec::new(),
            ignored: Some(reason),
        }
    }
}

impl Triggers {
    /// Claims the delivery id (a redelivery is ignored), then dispatches the push.
    pub(crate) async fn deliver(
        &self,
        provider: &str,
        delivery_id: Option<String>,
        push: Push,
    ) -> Result<Delivery, WebhookError> {
        if let Some(id) = &delivery_id {
            let key = format!("delivery:{provider}:{id}");
            if !self
                .engine
                .store()
                .claim_trigger(&key, &push.update.new, now())
                .await?
            {
                return Ok(Delivery::ignored(format!(
                    "delivery {id} was already received"
                )));
            }
        }
        Ok(Delivery {
            started: self.dispatch(push).await,
            ignored: None,
        })
    }
}

pub(crate) fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// A required string field of the payload, or a 400 naming it.
pub(crate) fn str_field<'v>(payload: &'v Value, name: &str) -> Result<&'v str, WebhookError> {
    match payload.get(name) {
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(WebhookError::Invalid(format!(
            "payload field {name:?} must be a string, not {}",
            kind(other)
        ))),
        None => Err(WebhookError::Invalid(format!(
            "payload field {name:?} is missing"
        ))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The distinct secrets of `git` triggers on external repositories.
pub(crate) fn webhook_secrets(pipelines: &[Pipeline]) -> Vec<String> {
    let mut secrets: Vec<String> = pipelines
        .iter()
        .flat_map(|p| &p.triggers)
        .filter_map(|t| match t {
            Trigger::Git(git) if git.url.is_some() => git.secret.clone(),
            _ => None,
        })
        .collect();
    secrets.sort();
    secrets.dedup();
    secrets
}

/// The files the pushed commits touched, from `commits[].added/modified/removed` (GitHub and
/// GitLab share that shape); `None` when the payload lists no commits.
pub(crate) fn commit_files(payload: &Value) -> Option<Vec<String>> {
    let commits = payload.get("commits")?.as_array()?;
    if commits.is_empty() {
        return None;
    }
    let mut files: Vec<String> = commits
        .iter()
        .flat_map(|c| ["added", "modified", "removed"].map(|k| c.get(k)))
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    files.sort();
    files.dedup();
    Some(files)
}
