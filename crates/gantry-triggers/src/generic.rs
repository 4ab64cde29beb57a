//! The generic webhook (`POST /webhooks/generic/SOURCE`), Spinnaker's webhook trigger: any
//! JSON payload, a shared secret, and `payloadConstraints` (field → regex) that must all match.
//! The payload is available to the execution as `trigger.payload`.
//!
//! A trigger without a secret fires only if it says `public: true` (validation refuses it
//! otherwise; one stored before that rule is refused here). A delivery is accepted once: by
//! its delivery id header when the sender gives one, else by the digest of its body within
//! the replay window (`webhook::REPLAY_WINDOW`).

use gantry_config::{Trigger, WebhookTrigger};
use gantry_store::{Cause, TriggerData};
use http::HeaderMap;
use serde_json::{Value, json};

use crate::push::Started;
use crate::signature::token_valid;
use crate::webhook::{Delivery, header};
use crate::{Triggers, WebhookError};

/// The `webhook` kind: generic deliveries, which arrive as requests (`Triggers::generic`).
pub(crate) struct WebhookKind;

impl crate::kinds::TriggerKind for WebhookKind {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn webhook<'a>(
        &self,
        triggers: &'a Triggers,
        request: crate::kinds::WebhookRequest<'a>,
    ) -> Option<futures::future::BoxFuture<'a, Result<Delivery, WebhookError>>> {
        match request.route {
            crate::kinds::WebhookRoute::Generic { source } => Some(Box::pin(triggers.generic(
                source,
                request.headers,
                request.body,
            ))),
            _ => None,
        }
    }

    fn describe(&self, trigger: &Trigger) -> String {
        let Trigger::Webhook(w) = trigger else {
            return String::new();
        };
        format!("/webhooks/generic/{}", w.source)
    }
}

impl Triggers {
    pub(crate) async fn generic(
        &self,
        source: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Delivery, WebhookError> {
        let given = header(headers, "x-gantry-secret").or_else(|| {
            header(headers, "authorization")
                .and_then(|a| a.strip_prefix("Bearer ").map(str::to_owned))
        });
        let listening: Vec<(String, WebhookTrigger)> = self
            .pipelines()
            .await
            .iter()
            .flat_map(|p| {
                p.triggers.iter().filter_map(|t| match t {
                    Trigger::Webhook(w) if w.source == source => Some((p.name.clone(), w.clone())),
                    _ => None,
                })
            })
            .collect();
        if listening.is_empty() {
            return Err(WebhookError::NotFound(format!(
                "no pipeline has a webhook trigger with source {source:?}"
            )));
        }
        // Only triggers whose secret the request carries (or that are public) may fire. A
        // `secretFrom` that cannot be read lets nothing through, and neither does a trigger
        // without a secret that does not say it is public.
        let mut authorized: Vec<&(String, WebhookTrigger)> = Vec::new();
        for entry in &listening {
            let trigger = &entry.1;
            let open = trigger.public && trigger.secret.is_none() && trigger.secret_from.is_none();
            let secret = self
                .webhook_secret(trigger.secret.as_deref(), trigger.secret_from.as_deref())
                .await;
            let carried = matches!((&secret, &given), (Some(secret), Some(given)) if token_valid(secret, given));
            if open || carried {
                authorized.push(entry);
            }
        }
        if authorized.is_empty() {
            let unsecured = listening
                .iter()
                .all(|(_, t)| !t.public && t.secret.is_none() && t.secret_from.is_none());
            return Err(WebhookError::Unauthorized(if unsecured {
                format!(
                    "webhook source {source:?} has no secret and is not public: give its trigger a \
                     \"secret\" (or \"public: true\") and apply the file again"
                )
            } else {
                format!("webhook source {source:?} needs its secret in X-Gantry-Secret")
            }));
        }
        let payload: Value = if body.is_empty() {
            json!({})
        } else {
            serde_json::from_slice(body)
                .map_err(|e| WebhookError::Invalid(format!("payload is not json: {e}")))?
        };
        // Claimed only now: a refused or malformed delivery leaves nothing behind.
        if let Some(duplicate) = self.claim_generic(source, headers, body).await? {
            return Ok(duplicate);
        }
        let mut delivery = Delivery::default();
        for (pipeline, trigger) in authorized {
            if !constraints_hold(trigger, &payload) {
                continue;
            }
            let trigger = TriggerData::new(Cause::Webhook {
                source: source.to_owned(),
                payload: payload.clone(),
            });
            match self.start_execution(pipeline, trigger).await {
                Ok(execution) => delivery.started.push(Started {
                    pipeline: pipeline.clone(),
                    execution,
                }),
                Err(error) => {
                    tracing::error!(%pipeline, %error, "webhook trigger cannot start the pipeline")
                }
            }
        }
        if delivery.started.is_empty() {
            delivery.ignored = Some("the payload meets no trigger's payloadConstraints".to_owned());
        }
        Ok(delivery)
    }
}

/// What the receivers read of a delivery's body once it is verified, starting nothing:
/// `provider` is `github` or `gitlab` (the push is read) or anything else (a generic payload,
/// checked against `constraints` as `payloadConstraints`). The way in of the fuzz target
/// `fuzz/fuzz_targets/webhook_payload.rs`; not part of the API.
#[doc(hidden)]
pub fn read_delivery_body(
    provider: &str,
    body: &[u8],
    constraints: std::collections::BTreeMap<String, String>,
) -> Result<bool, WebhookError> {
    let payload: Value = if body.is_empty() && provider != "github" && provider != "gitlab" {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| WebhookError::Invalid(format!("payload is not json: {e}")))?
    };
    let shape = match provider {
        "github" => &crate::github::PUSH,
        "gitlab" => &crate::gitlab::PUSH,
        _ => {
            let trigger: WebhookTrigger = serde_json::from_value(
                json!({"source": provider, "payloadConstraints": constraints}),
            )
            .map_err(|e| WebhookError::Internal(e.to_string()))?;
            return Ok(constraints_hold(&trigger, &payload));
        }
    };
    crate::webhook::read_push(&payload, shape, String::new(), None).map(|_| true)
}

/// Every constraint's field (a dotted path) exists and its text matches the regex.
fn constraints_hold(trigger: &WebhookTrigger, payload: &Value) -> bool {
    trigger.payload_constraints.iter().all(|(path, pattern)| {
        let pointer = format!("/{}", path.replace('.', "/"));
        let Some(value) = payload.pointer(&pointer) else {
            return false;
        };
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        regex::Regex::new(pattern).is_ok_and(|re| re.is_match(&text))
    })
}
