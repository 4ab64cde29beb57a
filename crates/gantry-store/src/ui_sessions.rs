//! Browser sessions of the web UI. The cookie carries a random session id;
//! the store keeps only its SHA-256, the token the person signed in with and
//! the CSRF token the session's pages send back. A session is only as good
//! as its token: looking one up joins the token and ignores a revoked one.

use sqlx::any::AnyRow;

use crate::model::{Millis, TokenRecord};
use crate::rows::{Row, read_error};
use crate::store::{Store, StoreError};

/// One signed-in browser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UiSessionRecord {
    /// SHA-256 (hex) of the session id in the cookie.
    pub hash: String,
    pub token_id: String,
    pub csrf: String,
    pub created_at: Millis,
    pub expires_at: Millis,
}

impl Store {
    /// Stores a new session, and forgets the sessions that expired before
    /// `record.created_at`, so the table holds only live ones.
    pub async fn create_ui_session(&self, record: &UiSessionRecord) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM ui_sessions WHERE expires_at <= $1")
            .bind(record.created_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO ui_sessions (hash, token_id, csrf, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&record.hash)
        .bind(&record.token_id)
        .bind(&record.csrf)
        .bind(record.created_at)
        .bind(record.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The unexpired session with this hash and its token, unless the token
    /// was revoked.
    pub async fn ui_session(
        &self,
        hash: &str,
        now: Millis,
    ) -> Result<Option<(UiSessionRecord, TokenRecord)>, StoreError> {
        let row = sqlx::query(
            "SELECT s.hash, s.token_id, s.csrf, s.created_at AS session_created_at, s.expires_at,
                    t.id, t.name, t.hash AS token_hash, t.created_at, t.revoked_at,
                    t.last_used_at, t.role
             FROM ui_sessions s JOIN tokens t ON t.id = s.token_id
             WHERE s.hash = $1 AND s.expires_at > $2 AND t.revoked_at IS NULL",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.reader)
        .await
        .map_err(read_error("ui_sessions"))?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// Ends a session (sign-out); false if there was none.
    pub async fn delete_ui_session(&self, hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM ui_sessions WHERE hash = $1")
            .bind(hash)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

fn session_from_row(row: &AnyRow) -> Result<(UiSessionRecord, TokenRecord), StoreError> {
    let row = Row::new(row, "ui_sessions");
    let session = UiSessionRecord {
        hash: row.get("hash")?,
        token_id: row.get("token_id")?,
        csrf: row.get("csrf")?,
        created_at: row.get("session_created_at")?,
        expires_at: row.get("expires_at")?,
    };
    let token = TokenRecord {
        id: row.get("id")?,
        name: row.get("name")?,
        hash: row.get("token_hash")?,
        created_at: row.get("created_at")?,
        revoked_at: row.get("revoked_at")?,
        last_used_at: row.get("last_used_at")?,
        role: row.get("role")?,
    };
    Ok((session, token))
}
