//! The log of recent webhook deliveries, accepted or refused (`webhook_deliveries`).

use serde_json::Value;
use sqlx::any::AnyRow;

use crate::model::Millis;
use crate::rows::{Row, json_text, read_error};
use crate::store::{Store, StoreError};

/// How many deliveries the log keeps; older ones are dropped as new ones arrive.
pub const WEBHOOK_DELIVERIES_KEPT: i64 = 500;

/// One delivery as the log keeps it: who sent it, what became of it, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookDeliveryRecord {
    /// Set by the store; 0 in a record not yet written.
    pub id: i64,
    pub received_at: Millis,
    /// `github`, `gitlab` or `generic`.
    pub provider: String,
    /// The generic webhook's source, from its URL.
    pub source: Option<String>,
    /// `started`, `ignored` or `duplicate` when accepted; `unauthorized`,
    /// `invalid`, `unknown` or `failed` when refused.
    pub outcome: String,
    /// Why it was refused or ignored, as the sender was told.
    pub reason: Option<String>,
    /// The executions it started, `[{"pipeline": …, "execution": …}]`.
    pub started: Value,
}

impl Store {
    /// Adds a delivery to the log, dropping those past the newest
    /// [`WEBHOOK_DELIVERIES_KEPT`].
    pub async fn record_webhook_delivery(
        &self,
        delivery: &WebhookDeliveryRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO webhook_deliveries (received_at, provider, source, outcome, reason, started)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(delivery.received_at)
        .bind(&delivery.provider)
        .bind(delivery.source.as_deref())
        .bind(&delivery.outcome)
        .bind(delivery.reason.as_deref())
        .bind(json_text(&delivery.started))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM webhook_deliveries WHERE id <= (
                 SELECT id FROM webhook_deliveries ORDER BY id DESC LIMIT 1 OFFSET $1)",
        )
        .bind(WEBHOOK_DELIVERIES_KEPT)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest deliveries first, at most `limit`.
    pub async fn webhook_deliveries(
        &self,
        limit: i64,
    ) -> Result<Vec<WebhookDeliveryRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, received_at, provider, source, outcome, reason, started
             FROM webhook_deliveries ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.reader)
        .await
        .map_err(read_error("webhook_deliveries"))?;
        rows.iter().map(delivery_from_row).collect()
    }
}

fn delivery_from_row(row: &AnyRow) -> Result<WebhookDeliveryRecord, StoreError> {
    let row = Row::new(row, "webhook_deliveries");
    Ok(WebhookDeliveryRecord {
        id: row.get("id")?,
        received_at: row.get("received_at")?,
        provider: row.get("provider")?,
        source: row.get("source")?,
        outcome: row.get("outcome")?,
        reason: row.get("reason")?,
        started: row.json("started")?,
    })
}
