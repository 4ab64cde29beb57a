//! Sealed secrets. The store keeps what gantry-secrets gives it (a hex
//! string of nonce, ciphertext and tag) and never sees a value in the clear.

use sqlx::any::AnyRow;

use crate::model::Millis;
use crate::rows::{Row, read_error};
use crate::store::{Store, StoreError};

/// One secret as stored: its name and its sealed value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRecord {
    pub name: String,
    pub sealed: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Store {
    /// Creates or replaces a secret; `created_at` of an existing one is kept.
    pub async fn put_secret(&self, secret: &SecretRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO secrets (name, sealed, created_at, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
        )
        .bind(&secret.name)
        .bind(&secret.sealed)
        .bind(secret.created_at)
        .bind(secret.updated_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn secret(&self, name: &str) -> Result<Option<SecretRecord>, StoreError> {
        let row =
            sqlx::query("SELECT name, sealed, created_at, updated_at FROM secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.reader)
                .await
                .map_err(read_error("secrets"))?;
        row.as_ref().map(secret_from_row).transpose()
    }

    /// Every secret, by name.
    pub async fn secrets(&self) -> Result<Vec<SecretRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT name, sealed, created_at, updated_at FROM secrets ORDER BY name")
                .fetch_all(&self.reader)
                .await
                .map_err(read_error("secrets"))?;
        rows.iter().map(secret_from_row).collect()
    }

    /// false if there was no such secret.
    pub async fn delete_secret(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM secrets WHERE name = $1")
            .bind(name)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

fn secret_from_row(row: &AnyRow) -> Result<SecretRecord, StoreError> {
    let row = Row::new(row, "secrets");
    Ok(SecretRecord {
        name: row.get("name")?,
        sealed: row.get("sealed")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}
