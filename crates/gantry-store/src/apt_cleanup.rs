//! What `gantry apt db cleanup` (`gantry-apt`'s `cleanup.rs`) asks of the
//! store: every package and where its bytes are, which ones a repository or
//! a snapshot lists, and, in one transaction, forgetting the unreferenced
//! ones and moving live ones to rewritten packs.

use std::collections::HashSet;

use crate::apt::{AptPackLocation, AptPackageKey, ROWS_PER_STATEMENT, placeholders};
use crate::rows::{Row, read_error};
use crate::store::{Store, StoreError};

/// A recorded package without its paragraph: what identifies it and where
/// its bytes are (`None`: a file in the content pool).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptStoredPackage {
    pub key: AptPackageKey,
    pub location: Option<AptPackLocation>,
}

impl Store {
    /// Every recorded package. Read from the writer's connection: the
    /// cleanup runs under the APT lock and must see every commit before it.
    pub async fn apt_stored_packages(&self) -> Result<Vec<AptStoredPackage>, StoreError> {
        let rows = sqlx::query(
            "SELECT sha256, name, version, architecture, size, pack, pack_offset FROM apt_packages",
        )
        .fetch_all(&self.writer)
        .await
        .map_err(read_error("apt_packages"))?;
        rows.iter()
            .map(|row| {
                let row = Row::new(row, "apt_packages");
                let pack: Option<String> = row.get("pack")?;
                let offset: Option<i64> = row.get("pack_offset")?;
                Ok(AptStoredPackage {
                    key: AptPackageKey {
                        name: row.get("name")?,
                        version: row.get("version")?,
                        architecture: row.get("architecture")?,
                        sha256: row.get("sha256")?,
                        size: row.get("size")?,
                    },
                    location: pack
                        .zip(offset)
                        .map(|(pack, offset)| AptPackLocation { pack, offset }),
                })
            })
            .collect()
    }

    /// The SHA-256 of every package a repository or a snapshot lists.
    pub async fn apt_listed_packages(&self) -> Result<HashSet<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT sha256 FROM apt_repo_packages UNION SELECT sha256 FROM apt_snapshot_packages",
        )
        .fetch_all(&self.writer)
        .await
        .map_err(read_error("apt_repo_packages"))?;
        rows.iter()
            .map(|row| Row::new(row, "apt_repo_packages").get("sha256"))
            .collect()
    }

    /// Forgets the packages `forget` (by SHA-256) and records the new
    /// locations `moves` of others, all in one transaction. A package a
    /// repository or a snapshot lists is never forgotten: if one of
    /// `forget` is listed (again), nothing changes and the answer is false,
    /// since the caller planned the removal of its bytes on it being gone.
    pub async fn forget_apt_packages(
        &self,
        forget: &[String],
        moves: &[(String, AptPackLocation)],
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let mut forgotten = 0;
        for chunk in forget.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "DELETE FROM apt_packages WHERE sha256 IN {}
                 AND NOT EXISTS (SELECT 1 FROM apt_repo_packages r WHERE r.sha256 = apt_packages.sha256)
                 AND NOT EXISTS (SELECT 1 FROM apt_snapshot_packages s WHERE s.sha256 = apt_packages.sha256)",
                placeholders(self.backend, 1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for sha256 in chunk {
                query = query.bind(sha256);
            }
            forgotten += query.execute(&mut *tx).await?.rows_affected();
        }
        if forgotten != forget.len() as u64 {
            // Dropping the transaction rolls it back.
            return Ok(false);
        }
        for (sha256, location) in moves {
            sqlx::query("UPDATE apt_packages SET pack = $1, pack_offset = $2 WHERE sha256 = $3")
                .bind(&location.pack)
                .bind(location.offset)
                .bind(sha256)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
