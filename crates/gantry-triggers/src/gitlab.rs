//! GitLab push webhooks (`POST /webhooks/gitlab`): Push Hook and Tag Push Hook, with
//! `X-Gitlab-Token` compared in constant time against every `git` trigger secret.

use http::HeaderMap;
use serde_json::Value;

use crate::push::{Push, Source};
use crate::signature::token_valid;
use crate::webhook::{Delivery, header, str_field, webhook_secrets};
use crate::{Triggers, WebhookError};

impl Triggers {
    pub async fn gitlab(&self, headers: &HeaderMap, body: &[u8]) -> Result<Delivery, WebhookError> {
        let token = header(headers, "x-gitlab-token").ok_or_else(|| {
            WebhookError::Unauthorized("missing X-Gitlab-Token header".to_owned())
        })?;
        let secret = webhook_secrets(&self.pipelines().await)
            .into_iter()
            .find(|secret| token_valid(secret, &token))
            .ok_or_else(|| {
                WebhookError::Unauthorized("X-Gitlab-Token matches no trigger secret".to_owned())
            })?;
        let event = header(headers, "x-gitlab-event").unwrap_or_default();
        let delivery_id =
            header(headers, "x-gitlab-event-uuid").or_else(|| header(headers, "idempotency-key"));
        let payload: Value = serde_json::from_slice(body)
            .map_err(|e| WebhookError::Invalid(format!("payload is not json: {e}")))?;
        if event != "Push Hook" && event != "Tag Push Hook" {
            return Ok(Delivery::ignored(format!(
                "event {event:?} is not a Push Hook or Tag Push Hook"
            )));
        }
        let push = read_push(&payload, secret, delivery_id.clone())?;
        self.deliver("gitlab", delivery_id, push).await
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
    let project = payload
        .get("project")
        .filter(|p| p.is_object())
        .ok_or_else(|| WebhookError::Invalid("payload field \"project\" is missing".to_owned()))?;
    let urls: Vec<String> = ["git_http_url", "web_url", "git_ssh_url", "http_url", "url"]
        .iter()
        .filter_map(|k| project.get(*k).and_then(Value::as_str).map(str::to_owned))
        .collect();
    if urls.is_empty() {
        return Err(WebhookError::Invalid(
            "payload field \"project.git_http_url\" is missing".to_owned(),
        ));
    }
    // The pushed commit is the last of `commits` (GitLab lists them oldest first).
    let head = payload
        .get("commits")
        .and_then(Value::as_array)
        .and_then(|commits| {
            commits
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
        source: Source::Webhook {
            urls: urls.clone(),
            secret,
        },
        repository: project
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        url: project
            .get("git_http_url")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| urls.first().cloned()),
        update: gantry_git::RefUpdate {
            old: before.to_owned(),
            new: after.to_owned(),
            name: reference.to_owned(),
        },
        via: "gitlab",
        pusher: payload
            .get("user_username")
            .or_else(|| payload.get("user_name"))
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
