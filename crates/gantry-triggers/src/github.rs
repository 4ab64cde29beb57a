//! GitHub push webhooks (`POST /webhooks/github`): `X-Hub-Signature-256` is checked against
//! every `git` trigger secret before the body is read; `X-GitHub-Delivery` is claimed once, so
//! a redelivery starts nothing.

use http::HeaderMap;
use serde_json::Value;

use crate::signature::github_signature_valid;
use crate::webhook::{Delivery, PushShape, header, read_push};
use crate::{Triggers, WebhookError};

/// Where GitHub's push payload keeps the repository and the pusher.
pub(crate) const PUSH: PushShape = PushShape {
    provider: "github",
    repository: "repository",
    urls: &["clone_url", "html_url", "ssh_url", "git_url", "url"],
    pushers: &["/pusher/name"],
};

impl Triggers {
    pub(crate) async fn github(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Delivery, WebhookError> {
        let signature = header(headers, "x-hub-signature-256").ok_or_else(|| {
            WebhookError::Unauthorized("missing X-Hub-Signature-256 header".to_owned())
        })?;
        let secret = self
            .verified_secret(
                |secret| github_signature_valid(secret, body, &signature),
                "X-Hub-Signature-256 does not match the body under any trigger secret",
            )
            .await?;
        let event = header(headers, "x-github-event").unwrap_or_default();
        let delivery_id = header(headers, "x-github-delivery");
        let payload: Value = serde_json::from_slice(body)
            .map_err(|e| WebhookError::Invalid(format!("payload is not json: {e}")))?;
        if event != "push" {
            return Ok(Delivery::ignored(format!("event {event:?} is not a push")));
        }
        let push = read_push(&payload, &PUSH, secret, delivery_id.clone())?;
        self.deliver("github", delivery_id, push).await
    }
}
