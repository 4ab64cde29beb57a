//! The log of recent trigger deliveries (`webhook_deliveries`): webhook deliveries,
//! accepted or refused, and what the other kinds saw (a push to a hosted repository, a cron
//! firing, a landed package), each with what became of it.

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
    /// The trigger kind that received it: `webhook` (any webhook route), `git` (a push
    /// to a hosted repository, or a polled one), `cron`, `artifact`.
    pub kind: String,
    /// `github`, `gitlab` or `generic` for a webhook; how it came for the others
    /// (`git`, `poll`, `cron`, `artifact`).
    pub provider: String,
    /// The generic webhook's source, from its URL; the repository, the schedule or the
    /// package for the other kinds.
    pub source: Option<String>,
    /// The pipeline it is about, when one (a webhook delivery is about every pipeline
    /// listening there: see `started`).
    pub pipeline: Option<String>,
    /// `started`, `ignored` or `duplicate` when accepted; `unauthorized`,
    /// `invalid`, `unknown` or `failed` when refused (`failed` also when a trigger could
    /// not start its pipeline).
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
            "INSERT INTO webhook_deliveries
                 (received_at, kind, provider, source, pipeline, outcome, reason, started)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(delivery.received_at)
        .bind(&delivery.kind)
        .bind(&delivery.provider)
        .bind(delivery.source.as_deref())
        .bind(delivery.pipeline.as_deref())
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

    /// The newest deliveries first, at most `limit`, of one kind and one pipeline when
    /// `filter` says so.
    pub async fn webhook_deliveries(
        &self,
        filter: &DeliveryFilter,
        limit: i64,
    ) -> Result<Vec<WebhookDeliveryRecord>, StoreError> {
        // Only the conditions asked for, so no parameter is left untyped.
        let mut conditions = Vec::new();
        let mut binds = Vec::new();
        for (column, value) in [("kind", &filter.kind), ("pipeline", &filter.pipeline)] {
            if let Some(value) = value {
                binds.push(value.as_str());
                conditions.push(format!("{column} = ${}", binds.len()));
            }
        }
        let sql = format!(
            "SELECT id, received_at, kind, provider, source, pipeline, outcome, reason, started
             FROM webhook_deliveries {} ORDER BY id DESC LIMIT ${}",
            if conditions.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", conditions.join(" AND "))
            },
            binds.len() + 1
        );
        let mut query = sqlx::query(&sql);
        for value in binds {
            query = query.bind(value);
        }
        let rows = query
            .bind(limit)
            .fetch_all(&self.reader)
            .await
            .map_err(read_error("webhook_deliveries"))?;
        rows.iter().map(delivery_from_row).collect()
    }
}

/// Which deliveries a listing holds; `None` is any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub kind: Option<String>,
    pub pipeline: Option<String>,
}

fn delivery_from_row(row: &AnyRow) -> Result<WebhookDeliveryRecord, StoreError> {
    let row = Row::new(row, "webhook_deliveries");
    Ok(WebhookDeliveryRecord {
        id: row.get("id")?,
        received_at: row.get("received_at")?,
        kind: row.get("kind")?,
        provider: row.get("provider")?,
        source: row.get("source")?,
        pipeline: row.get("pipeline")?,
        outcome: row.get("outcome")?,
        reason: row.get("reason")?,
        started: row.json("started")?,
    })
}
