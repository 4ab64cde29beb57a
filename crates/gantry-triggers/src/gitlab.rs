//! GitLab push webhooks (`POST /webhooks/gitlab`): Push Hook and Tag Push Hook, with
//! `X-Gitlab-Token` compared in constant time against every `git` trigger secret.

use http::HeaderMap;
use serde_json::Value;

use crate::signature::token_valid;
use crate::webhook::{Delivery, PushShape, header, read_push};
use crate::{Triggers, WebhookError};

/// Where GitLab's Push Hook and Tag Push Hook keep the project and the pusher.
pub(crate) const PUSH: PushShape = PushShape {
    provider: "gitlab",
    repository: "project",
    urls: &["git_http_url", "web_url", "git_ssh_url", "http_url", "url"],
    pushers: &["/user_username", "/user_name"],
};

impl Triggers {
    pub(crate) async fn gitlab(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Delivery, WebhookError> {
        let token = header(headers, "x-gitlab-token").ok_or_else(|| {
            WebhookError::Unauthorized("missing X-Gitlab-Token header".to_owned())
        })?;
        let secret = self
            .verified_secret(
                |secret| token_valid(secret, &token),
                "X-Gitlab-Token matches no trigger secret",
            )
            .await?;
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
        let push = read_push(&payload, &PUSH, secret, delivery_id.clone())?;
        self.deliver("gitlab", delivery_id, push).await
    }
}
