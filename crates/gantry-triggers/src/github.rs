//! GitHub push webhooks (`POST /webhooks/github`): `X-Hub-Signature-256` is checked against
//! every `git` trigger secret before the body is read; `X-GitHub-Delivery` is claimed once, so
//! a redelivery starts nothing.

use http::HeaderMap;
use serde_json::Value;

use crate::push::{Push, Source};
use crate::signature::github_signature_valid;
use crate::webhook::{Delivery, header, str_field, webhook_secrets};
use crate::{Triggers, WebhookError};

impl Triggers {
    pub async fn github(&self, headers: &HeaderMap, body: &[u8]) -> Result<Delivery, WebhookError> {
        let signature = header(headers, "x-hub-signature-256").ok_or_else(|| {
            WebhookError::Unauthorized("missing X-Hub-Signature-256 header".to_owned())
        })?;
        let secret = webhook_secrets(&self.pipelines().await)
            .into_iter()
            .find(|secret| github_signature_valid(secret, body, &signature))
            .ok_or_else(|| {
                WebhookError::Unauthorized(
                    "X-Hub-Signature-256 does not match the body under any trigger secret"
                        .to_owned(),
                )
            })?;
        let event = header(headers, "x-github-event").unwrap_or_default();
        let delivery_id = header(headers, "x-github-delivery");
        let payload: Value = serde_json::from_slice(body)
            .map_err(|e| WebhookError::Invalid(format!("payload is not json: {e}")))?;
        if event != "push" {
            return Ok(Delivery::ignored(format!("event {event:?} is not a push")));
        }
        let push = read_push(&payload, secret, delivery_id.clone())?;
        self.deliver("github", delivery_id, push).await
    }
}

fn read_push(
    payload: &Value,
    secret: String,
    delivery_id: Option<String>,
) -> Result<Push, WebhookError> {
    let reference = str_field(payload, "ref")?;
    let before = str_field(payload, "before")?;
    let after = str_field(payload, "after")?;
    let repo = payload
        .get("repository")
        .filter(|r| r.is_object())
        .ok_or_else(|| {
            WebhookError::Invalid("payload field \"repository\" is missing".to_owned())
        })?;
    let urls: Vec<String> = ["clone_url", "html_url", "ssh_url", "git_url", "url"]
        .iter()
        .filter_map(|k| repo.get(*k).and_then(Value::as_str).map(str::to_owned))
        .collect();
    if urls.is_empty() {
        return Err(WebhookError::Invalid(
            "payload field \"repository.clone_url\" is missing".to_owned(),
        ));
    }
    let head = payload.get("head_commit").filter(|h| h.is_object());
    let author = head.and_then(|h| {
        let a = h.get("author")?;
        Some(format!(
            "{} <{}>",
            a.get("name")?.as_str()?,
            a.get("email").and_then(Value::as_str).unwrap_or("")
        ))
    });
    Ok(Push {
        source: Source::Webhook {
            urls: urls.clone(),
            secret,
        },
        repository: repo
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        url: repo
            .get("clone_url")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| urls.first().cloned()),
        update: gantry_git::RefUpdate {
            old: before.to_owned(),
            new: after.to_owned(),
            name: reference.to_owned(),
        },
        via: "github",
        pusher: payload
            .pointer("/pusher/name")
            .and_then(Value::as_str)
            .map(str::to_owned),
        author,
        message: head
            .and_then(|h| h.get("message"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        changed_files: crate::webhook::commit_files(payload),
        delivery_id,
    })
}
