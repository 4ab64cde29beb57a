//! The delivery log: every webhook delivery, accepted or refused, is kept with what became of
//! it and why (the newest `gantry_store::WEBHOOK_DELIVERIES_KEPT`), as GitHub's and GitLab's
//! delivery logs show them, so a person can tell why a push started nothing. The other kinds
//! write what they saw for each pipeline with a trigger of theirs ([`Seen`]): a push to a
//! hosted repository or a polled one (`git`), a cron firing, a landed package (`artifact`),
//! started, ignored with why, or failed. Written after the delivery was decided; a log that
//! cannot be written changes nothing of that decision.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use gantry_store::{DeliveryFilter, WebhookDeliveryRecord};
use serde_json::json;

use crate::kinds::{TriggerKind, WebhookRoute};
use crate::webhook::Delivery;
use crate::{Triggers, WebhookError};

/// The longest reason kept: a sender's error text can be long, the log stays small.
const REASON_LIMIT: usize = 500;

/// Refused deliveries come from anyone, unauthenticated: at most this many a second are
/// written to the log, so a flood of bad signatures costs the store no more writes than
/// that. The rest are counted, and the next refusal written says how many were left out.
const REFUSED_PER_SECOND: u32 = 10;

/// The write budget of refused deliveries (see [`REFUSED_PER_SECOND`]), shared by the
/// clones of one `Triggers`.
#[derive(Clone, Debug, Default)]
pub(crate) struct RefusedBudget(Arc<Mutex<BudgetState>>);

#[derive(Debug, Default)]
struct BudgetState {
    second: i64,
    written: u32,
    left_out: u64,
}

impl RefusedBudget {
    /// Whether a refusal received at `now` (ms) may be written: `Some` with the number of
    /// refusals left out of the log since the last one written, or `None`.
    fn take(&self, now: i64) -> Option<u64> {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let second = now.div_euclid(1000);
        if state.second != second {
            state.second = second;
            state.written = 0;
        }
        if state.written >= REFUSED_PER_SECOND {
            state.left_out += 1;
            return None;
        }
        state.written += 1;
        Some(std::mem::take(&mut state.left_out))
    }
}

/// What a trigger kind other than a webhook saw, for one pipeline.
pub(crate) struct Seen<'a> {
    /// The kind's name (`TriggerKind::name`): `git`, `cron`, `artifact`.
    pub kind: &'static str,
    /// How it came: `git`, `poll`, `cron`, `artifact`.
    pub via: &'a str,
    /// What it saw, in a few words (`app refs/heads/main 1a2b3c4`, a schedule, a package).
    pub source: String,
    pub pipeline: &'a str,
}

/// What became of it.
pub(crate) enum Outcome {
    /// The execution it started.
    Started(String),
    /// Why the pipeline's trigger let it pass.
    Ignored(String),
    /// Why nothing was started for what started the pipeline already.
    Duplicate(String),
    /// Why the pipeline could not be started.
    Failed(String),
}

impl Triggers {
    /// The newest deliveries first, at most `limit`, as `filter` says.
    pub async fn deliveries(
        &self,
        filter: &DeliveryFilter,
        limit: i64,
    ) -> Result<Vec<WebhookDeliveryRecord>, gantry_store::StoreError> {
        self.store.webhook_deliveries(filter, limit).await
    }

    /// Adds what a trigger kind saw to the log.
    pub(crate) async fn log_seen(&self, seen: Seen<'_>, outcome: Outcome) {
        let (word, reason, started) = match outcome {
            Outcome::Started(execution) => (
                "started",
                None,
                vec![json!({"pipeline": seen.pipeline, "execution": execution})],
            ),
            Outcome::Ignored(why) => ("ignored", Some(why), Vec::new()),
            Outcome::Duplicate(why) => ("duplicate", Some(why), Vec::new()),
            Outcome::Failed(why) => ("failed", Some(why), Vec::new()),
        };
        let record = WebhookDeliveryRecord {
            id: 0,
            received_at: now_millis(),
            kind: seen.kind.to_owned(),
            provider: seen.via.to_owned(),
            source: Some(seen.source),
            pipeline: Some(seen.pipeline.to_owned()),
            outcome: word.to_owned(),
            reason: reason.map(|r| r.chars().take(REASON_LIMIT).collect()),
            started: started.into(),
        };
        if let Err(error) = self.store.record_webhook_delivery(&record).await {
            tracing::warn!(%error, kind = seen.kind, "cannot add a delivery to the log");
        }
    }

    pub(crate) async fn log_delivery(
        &self,
        route: WebhookRoute<'_>,
        result: &Result<Delivery, WebhookError>,
    ) {
        let now = now_millis();
        let mut record = record(route, result, now);
        let refused = matches!(
            result,
            Err(WebhookError::Unauthorized(_)
                | WebhookError::Invalid(_)
                | WebhookError::NotFound(_))
        );
        if refused {
            match self.refused.take(now) {
                None => return,
                Some(0) => {}
                Some(left_out) => {
                    let reason = record.reason.get_or_insert_with(String::new);
                    reason.push_str(&format!(
                        " ({left_out} more refused deliveries before this one were not logged)"
                    ));
                }
            }
        }
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
        kind: crate::generic::WebhookKind.name().to_owned(),
        provider: route.provider().to_owned(),
        source: match route {
            WebhookRoute::Generic { source } => Some(source.to_owned()),
            _ => None,
        },
        pipeline: None,
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

#[cfg(test)]
mod tests {
    use super::{REFUSED_PER_SECOND, RefusedBudget};

    #[test]
    fn refusals_beyond_the_budget_of_a_second_are_counted_and_told_by_the_next_one_written() {
        let budget = RefusedBudget::default();
        for _ in 0..REFUSED_PER_SECOND {
            assert_eq!(budget.take(5_000), Some(0));
        }
        assert_eq!(budget.take(5_500), None);
        assert_eq!(budget.take(5_999), None);
        assert_eq!(budget.take(6_000), Some(2));
        assert_eq!(budget.take(6_001), Some(0));
    }
}
