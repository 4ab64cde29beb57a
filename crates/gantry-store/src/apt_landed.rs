//! Packages that landed in an APT repository, kept until a server fires the
//! `artifact` triggers they start. Whichever process adds packages (a
//! server, or `gantry apt --local` on its data directory) records them; a
//! server claims each row before firing it, so that two servers on one
//! database never fire one landing twice.

use sqlx::any::AnyRow;

use crate::apt::{ROWS_PER_STATEMENT, placeholders};
use crate::model::Millis;
use crate::rows::{Row, read_error};
use crate::store::{Store, StoreError};

/// One package that landed in one repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptLanded {
    pub repo: String,
    pub name: String,
    pub version: String,
    pub architecture: String,
}

/// A recorded landing not fired yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptLandedRecord {
    pub id: i64,
    pub landed: AptLanded,
}

impl Store {
    pub async fn record_apt_landed(
        &self,
        landed: &[AptLanded],
        at: Millis,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for chunk in landed.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO apt_landed (repo, name, version, architecture, landed_at) VALUES {}",
                placeholders(self.backend, chunk.len(), 5)
            );
            let mut query = sqlx::query(&sql);
            for package in chunk {
                query = query
                    .bind(&package.repo)
                    .bind(&package.name)
                    .bind(&package.version)
                    .bind(&package.architecture)
                    .bind(at);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The oldest landings no server has fired, at most `limit`.
    pub async fn unfired_apt_landed(&self, limit: i64) -> Result<Vec<AptLandedRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, repo, name, version, architecture FROM apt_landed
             WHERE fired_at IS NULL ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.reader)
        .await
        .map_err(read_error("apt_landed"))?;
        rows.iter().map(landed_from_row).collect()
    }

    /// Marks landings fired; returns those this call marked (another
    /// server may have marked the others first).
    pub async fn claim_apt_landed(&self, ids: &[i64], at: Millis) -> Result<Vec<i64>, StoreError> {
        let mut claimed = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let list = (0..chunk.len())
                .map(|n| format!("${}", n + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "UPDATE apt_landed SET fired_at = $1 WHERE fired_at IS NULL AND id IN ({list}) RETURNING id"
            );
            let mut query = sqlx::query(&sql).bind(at);
            for id in chunk {
                query = query.bind(id);
            }
            for row in query.fetch_all(&self.writer).await? {
                claimed.push(Row::new(&row, "apt_landed").get("id")?);
            }
        }
        Ok(claimed)
    }

    /// Forgets landings fired before `before`.
    pub async fn forget_fired_apt_landed(&self, before: Millis) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM apt_landed WHERE fired_at IS NOT NULL AND fired_at < $1")
            .bind(before)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}

fn landed_from_row(row: &AnyRow) -> Result<AptLandedRecord, StoreError> {
    let row = Row::new(row, "apt_landed");
    Ok(AptLandedRecord {
        id: row.get("id")?,
        landed: AptLanded {
            repo: row.get("repo")?,
            name: row.get("name")?,
            version: row.get("version")?,
            architecture: row.get("architecture")?,
        },
    })
}
