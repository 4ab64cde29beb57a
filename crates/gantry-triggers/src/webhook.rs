//! What the webhook receivers share: the answer, header and field readers, and dedupe of
//! deliveries (by delivery id, or by the digest of the body within [`REPLAY_WINDOW`]).

use std::time::Duration;

use gantry_config::{Pipeline, Trigger};
use http::HeaderMap;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::push::{Push, Source, Started, now};
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
    /// The same delivery was received before: nothing was started for this one.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

/// How long the same body to the same generic webhook counts as a replay when the sender
/// names no delivery id: long enough for any sender's retries (GitHub and GitLab retry
/// within minutes), short enough that a sender may post the same payload again later on
/// purpose.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Headers that carry a generic sender's delivery id, first found wins.
const DELIVERY_ID_HEADERS: &[&str] = &["x-gantry-delivery", "x-delivery-id", "idempotency-key"];

impl Delivery {
    pub(crate) fn ignored(reason: String) -> Delivery {
        Delivery {
            ignored: Some(reason),
            ..Delivery::default()
        }
    }

    fn duplicate(reason: String) -> Delivery {
        Delivery {
            duplicate: true,
            ..Delivery::ignored(reason)
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
                .store
                .claim_trigger(&key, &push.update.new, now())
                .await?
            {
                return Ok(Delivery::duplicate(format!(
                    "delivery {id} was already received"
                )));
            }
        }
        Ok(Delivery {
            started: self.dispatch(push).await,
            ..Delivery::default()
        })
    }

    /// Claims a verified generic delivery: by its delivery id header for good, or else by
    /// the SHA-256 of its body for [`REPLAY_WINDOW`]. The answer to a duplicate, or `None`
    /// when this delivery is the first.
    pub(crate) async fn claim_generic(
        &self,
        source: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Option<Delivery>, WebhookError> {
        let store = &self.store;
        let now = now();
        if let Some(id) = DELIVERY_ID_HEADERS.iter().find_map(|h| header(headers, h)) {
            let key = format!("delivery:generic:{source}:{id}");
            if store.claim_trigger(&key, "", now).await? {
                return Ok(None);
            }
            tracing::info!(%source, delivery = %id, "generic webhook delivery received again; ignored");
            return Ok(Some(Delivery::duplicate(format!(
                "delivery {id} was already received"
            ))));
        }
        let digest = hex::encode(Sha256::digest(body));
        let key = format!("digest:generic:{source}:{digest}");
        let since = now - REPLAY_WINDOW.as_millis() as i64;
        if store
            .claim_trigger_since(&key, "", now, since, "digest:")
            .await?
        {
            return Ok(None);
        }
        tracing::info!(%source, %digest, "generic webhook body received again within the replay window; ignored");
        Ok(Some(Delivery::duplicate(format!(
            "the same body was received less than {} minutes ago (sha256 {digest}); send a delivery id header (X-Gantry-Delivery) to tell deliveries apart",
            REPLAY_WINDOW.as_secs() / 60
        ))))
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

impl Triggers {
    /// The secret of a `git` trigger on an external repository that verifies a delivery
    /// (`valid`), or a 401 saying `refusal`.
    pub(crate) async fn verified_secret(
        &self,
        valid: impl Fn(&str) -> bool,
        refusal: &str,
    ) -> Result<String, WebhookError> {
        self.webhook_secrets(&self.pipelines().await)
            .await
            .into_iter()
            .find(|secret| valid(secret))
            .ok_or_else(|| WebhookError::Unauthorized(refusal.to_owned()))
    }

    /// The distinct secrets of `git` triggers on external repositories, from the file or
    /// the secret store.
    async fn webhook_secrets(&self, pipelines: &[Pipeline]) -> Vec<String> {
        let mut secrets = Vec::new();
        for trigger in pipelines.iter().flat_map(|p| &p.triggers) {
            if let Trigger::Git(git) = trigger
                && git.url.is_some()
                && let Some(secret) = self
                    .webhook_secret(git.secret.as_deref(), git.secret_from.as_deref())
                    .await
            {
                secrets.push(secret);
            }
        }
        secrets.sort();
        secrets.dedup();
        secrets
    }
}

/// Where a provider's push payload keeps what a `Push` needs. GitHub and GitLab share the
/// rest: `ref`, `before`, `after`, and `commits[]` with `id`, `message`, `author` and the
/// files each touched.
pub(crate) struct PushShape {
    /// `Push::via`.
    pub provider: &'static str,
    /// The repository's object (`repository`, `project`).
    pub repository: &'static str,
    /// Its URLs, clone URL first: a trigger's `url` may name any of them.
    pub urls: &'static [&'static str],
    /// JSON pointers to the pusher's name, first found wins.
    pub pushers: &'static [&'static str],
}

/// Reads a push delivery of a provider; a 400 naming the field that is missing or wrong.
pub(crate) fn read_push(
    payload: &Value,
    shape: &PushShape,
    secret: String,
    delivery_id: Option<String>,
) -> Result<Push, WebhookError> {
    let reference = str_field(payload, "ref")?;
    let before = str_field(payload, "before")?;
    let after = str_field(payload, "after")?;
    let repo = payload
        .get(shape.repository)
        .filter(|r| r.is_object())
        .ok_or_else(|| {
            WebhookError::Invalid(format!("payload field {:?} is missing", shape.repository))
        })?;
    let urls: Vec<String> = shape
        .urls
        .iter()
        .filter_map(|k| repo.get(*k).and_then(Value::as_str).map(str::to_owned))
        .collect();
    let Some(url) = urls.first().cloned() else {
        return Err(WebhookError::Invalid(format!(
            "payload field \"{}.{}\" is missing",
            shape.repository, shape.urls[0]
        )));
    };
    // GitHub names the pushed commit `head_commit`; GitLab only lists it in `commits`.
    let head = payload
        .get("head_commit")
        .filter(|h| h.is_object())
        .or_else(|| {
            payload
                .get("commits")
                .and_then(Value::as_array)?
                .iter()
                .find(|c| c.get("id").and_then(Value::as_str) == Some(after))
        });
    let author = head.and_then(|h| {
        let a = h.get("author")?;
        Some(format!(
            "{} <{}>",
            a.get("name")?.as_str()?,
            a.get("email").and_then(Value::as_str).unwrap_or("")
        ))
    });
    Ok(Push {
        source: Source::Webhook { urls, secret },
        repository: repo
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        url: Some(url),
        update: gantry_git::RefUpdate {
            old: before.to_owned(),
            new: after.to_owned(),
            name: reference.to_owned(),
        },
        via: shape.provider,
        pusher: shape
            .pushers
            .iter()
            .find_map(|pointer| payload.pointer(pointer).and_then(Value::as_str))
            .map(str::to_owned),
        author,
        message: head
            .and_then(|h| h.get("message"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        changed_files: commit_files(payload),
        delivery_id,
    })
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
