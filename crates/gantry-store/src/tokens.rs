//! API tokens. Only the SHA-256 of a token's secret is stored; a name is
//! unique among unrevoked tokens and free again once its token is revoked.
//! A token's role is stored as its word (`admin`, `operator`, `viewer`).

use sqlx::any::AnyRow;
use sqlx::error::ErrorKind;

use crate::model::{Millis, TokenRecord};
use crate::rows::{Row, read_error, violation};
use crate::store::{Store, StoreError};

const COLUMNS: &str = "id, name, hash, created_at, revoked_at, last_used_at, role";

impl Store {
    /// `Conflict` (kind `"token"`) if the id or the hash exists, with the id,
    /// or if an unrevoked token has the same name, with the name.
    pub async fn create_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let inserted = sqlx::query(&format!(
            "INSERT INTO tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&token.id)
        .bind(&token.name)
        .bind(&token.hash)
        .bind(token.created_at)
        .bind(token.revoked_at)
        .bind(token.last_used_at)
        .bind(&token.role)
        .execute(&self.writer)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(error) => Err(match violation(&error, ErrorKind::UniqueViolation) {
                Some(message) if message.contains("name") => StoreError::Conflict {
                    kind: "token",
                    id: token.name.clone(),
                },
                Some(_) => StoreError::Conflict {
                    kind: "token",
                    id: token.id.clone(),
                },
                None => error.into(),
            }),
        }
    }

    /// All tokens, revoked ones included, oldest first.
    pub async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tokens ORDER BY created_at, id"
        ))
        .fetch_all(&self.reader)
        .await
        .map_err(read_error("tokens"))?;
        rows.iter().map(token_from_row).collect()
    }

    /// The unrevoked token with this hash; also records `last_used_at = now`.
    pub async fn use_token(
        &self,
        hash: &str,
        now: Millis,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE tokens SET last_used_at = $2 WHERE hash = $1 AND revoked_at IS NULL RETURNING {COLUMNS}"
        ))
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.writer)
        .await
        .map_err(read_error("tokens"))?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Revokes by id or name (an id wins over another token's name); false if
    /// none matched or it was already revoked.
    pub async fn revoke_token(&self, id_or_name: &str, now: Millis) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE tokens SET revoked_at = $2
             WHERE revoked_at IS NULL
               AND (id = $1 OR (name = $1 AND NOT EXISTS (SELECT 1 FROM tokens WHERE id = $1)))",
        )
        .bind(id_or_name)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The number of unrevoked tokens (zero at the first start, or after every
    /// token was revoked: then a new admin token is due).
    pub async fn token_count(&self) -> Result<i64, StoreError> {
        let count = sqlx::query_scalar("SELECT COUNT(*) FROM tokens WHERE revoked_at IS NULL")
            .fetch_one(&self.reader)
            .await
            .map_err(read_error("tokens"))?;
        Ok(count)
    }
}

fn token_from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    let row = Row::new(row, "tokens");
    Ok(TokenRecord {
        id: row.get("id")?,
        name: row.get("name")?,
        hash: row.get("hash")?,
        created_at: row.get("created_at")?,
        revoked_at: row.get("revoked_at")?,
        last_used_at: row.get("last_used_at")?,
        role: row.get("role")?,
    })
}
