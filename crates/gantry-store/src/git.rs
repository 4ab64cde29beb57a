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

    /// Takes `key` unless someone took it at or after `since`: a claim older than
    /// that has expired and is taken again (a webhook body's digest is a duplicate only
    /// within the replay window). Expired claims of keys starting with `prefix` (a `LIKE`
    /// pattern: keep it free of `%` and `_`) are forgotten on the way, so that digests do
    /// not pile up.
    pub async fn claim_trigger_since(
        &self,
        key: &str,
        value: &str,
        now: Millis,
        since: Millis,
        prefix: &str,
    ) -> Result<bool, StoreError> {
        sqlx::query(
            "DELETE FROM trigger_claims WHERE key LIKE $1 AND created_at < $2 AND key <> $3",
        )
        .bind(format!("{prefix}%"))
        .bind(since)
        .bind(key)
        .execute(&self.writer)
        .await?;
        let done = sqlx::query(
            "INSERT INTO trigger_claims (key, value, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, created_at = excluded.created_at
             WHERE trigger_claims.created_at < $4",
        )
        .bind(key)
        .bind(value)
        .bind(now)
        .bind(since)
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
