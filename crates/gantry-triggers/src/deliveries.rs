//! The delivery log: every webhook delivery, accepted or refused, is kept with what became of
//! it and why (the newest `gantry_store::WEBHOOK_DELIVERIES_KEPT`), as GitHub's and GitLab's
//! delivery logs show them, so a person can tell why a push started nothing. Written after the
//! delivery was decided; a log that cannot be written changes nothing of that decision.

use std::time::{SystemTime, UNIX_EPOCH};

use gantry_store::WebhookDeliveryRecord;
use serde_json::json;

use crate::kinds::WebhookRoute;
use crate::webhook::Delivery;
use crate::{Triggers, WebhookError};

/// The longest reason kept: a sender's error text can be long, the log stays small.
const REASON_LIMIT: usize = 500;

impl Triggers {
    /// The newest deliveries first, at most `limit`.
    pub async fn deliveries(
        &self,
        limit: i64,
    ) -> Result<Vec<WebhookDeliveryRecord>, gantry_store::StoreError> {
        self.store.webhook_deliveries(limit).await
    }

    pub(crate) async fn log_delivery(
        &self,
        route: WebhookRoute<'_>,
        result: &Result<Delivery, WebhookError>,
    ) {
        let record = record(route, result, now_millis());
        if let Err(error) = self.store.record_webhook_delivery(&record).await {
            tracing::warn!(%error, "cannot add a webhook delivery to the log");
        }
    }
}

fn record(
    route: WebhookRoute<'_>,
    result: &Result<Delivery, WebhookError>,
    received_at: i64,
) -> WebhookDeliveryRecord {
    let (outcome, reason) = match result {
        Ok(delivery) if delivery.duplicate => ("duplicate", delivery.ignored.clone()),
        Ok(delivery) if !delivery.started.is_empty() => ("started", None),
        Ok(delivery) => (
            "ignored",
            Some(
                delivery
                    .ignored
                    .clone()
                    .unwrap_or_else(|| "no trigger matched".to_owned()),
            ),
        ),
        Err(WebhookError::Unauthorized(m)) => ("unauthorized", Some(m.clone())),
        Err(WebhookError::Invalid(m)) => ("invalid", Some(m.clone())),
        Err(WebhookError::NotFound(m)) => ("unknown", Some(m.clone())),
        Err(WebhookError::Internal(m)) => ("failed", Some(m.clone())),
    };
    let started = match result {
        Ok(delivery) => delivery
            .started
            .iter()
            .map(|s| json!({"pipeline": s.pipeline, "execution": s.execution}))
            .collect(),
        Err(_) => Vec::new(),
    };
    WebhookDeliveryRecord {
        id: 0,
        received_at,
        provider: route.provider().to_owned(),
        source: match route {
            WebhookRoute::Generic { source } => Some(source.to_owned()),
            _ => None,
        },
        outcome: outcome.to_owned(),
        reason: reason.map(|r| r.chars().take(REASON_LIMIT).collect()),
        started: started.into(),
    }
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
