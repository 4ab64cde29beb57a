//! Concurrency slots: a pipeline with `concurrency: {limit: N, onConflict: queue}` runs an
//! execution only in one of its N slots, a row claimed in a transaction. The row, not a lock
//! in one process, is what keeps servers sharing a database to N running executions.

use crate::model::{Millis, Status};

/// The terminal statuses as an SQL list (`'succeeded', 'failed', …`): a claim held by an
/// execution in one of them is free.
pub(crate) fn terminal_statuses_sql() -> String {
    let ended: Vec<String> = Status::ALL
        .iter()
        .filter(|s| s.is_terminal())
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    ended.join(", ")
}
use crate::store::{Store, StoreError};

/// What claiming a slot gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotClaim {
    /// The execution took a free slot now: it may start.
    Claimed,
    /// It held one already (it was admitted before a restart).
    Held,
    /// Every slot is taken by an execution that has not ended.
    Full,
}

impl Store {
    /// Claims one of the `limit` slots of `pipeline` for `execution`. Slots of executions
    /// that have ended are freed first, in the same transaction.
    pub async fn claim_concurrency_slot(
        &self,
        pipeline: &str,
        limit: u32,
        execution: &str,
        now: Millis,
    ) -> Result<SlotClaim, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(&format!(
            "DELETE FROM concurrency_slots WHERE pipeline = $1 AND execution_id NOT IN
                 (SELECT id FROM executions WHERE status NOT IN ({}))",
            terminal_statuses_sql()
        ))
        .bind(pipeline)
        .execute(&mut *tx)
        .await?;
        let held: Option<String> = sqlx::query_scalar(
            "SELECT execution_id FROM concurrency_slots WHERE execution_id = $1",
        )
        .bind(execution)
        .fetch_optional(&mut *tx)
        .await?;
        if held.is_some() {
            tx.commit().await?;
            return Ok(SlotClaim::Held);
        }
        for slot in 0..limit {
            let inserted = sqlx::query(
                "INSERT INTO concurrency_slots (pipeline, slot, execution_id, claimed_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(pipeline)
            .bind(i64::from(slot))
            .bind(execution)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() > 0 {
                tx.commit().await?;
                return Ok(SlotClaim::Claimed);
            }
        }
        tx.commit().await?;
        Ok(SlotClaim::Full)
    }
}

impl Store {
    /// Whether `execution` holds a concurrency slot (it was admitted).
    pub async fn holds_concurrency_slot(&self, execution: &str) -> Result<bool, StoreError> {
        let held: Option<String> = sqlx::query_scalar(
            "SELECT execution_id FROM concurrency_slots WHERE execution_id = $1",
        )
        .bind(execution)
        .fetch_optional(&self.reader)
        .await?;
        Ok(held.is_some())
    }
}
