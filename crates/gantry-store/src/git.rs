//! Trigger claims: keys taken once, so that a commit starts a pipeline once and a redelivered
//! webhook is ignored, however many servers or reporters race for them.

use crate::model::Millis;
use crate::store::{Store, StoreError};

impl Store {
    /// Takes `key` (recording `value` with it); false if someone took it before.
    pub async fn claim_trigger(
        &self,
        key: &str,
        value: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO trigger_claims (key, value, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Sets `key` to `value` whoever held it (a poller's last seen commit).
    pub async fn set_trigger_value(
        &self,
        key: &str,
        value: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO trigger_claims (key, value, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn trigger_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        let value = sqlx::query_scalar("SELECT value FROM trigger_claims WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.reader)
            .await?;
        Ok(value)
    }
}
