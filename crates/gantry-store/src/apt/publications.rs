//! Publications: where a tree is published and its spec.

use sqlx::any::AnyRow;

use super::{AptPublicationRecord, conflict_as};
use crate::rows::{Row, read_error};
use crate::store::{Store, StoreError};

impl Store {
    /// `Conflict` (kind `"publication"`, id `PREFIX/DISTRIBUTION`) if taken.
    pub async fn create_apt_publication(
        &self,
        publication: &AptPublicationRecord,
    ) -> Result<(), StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO apt_publications (prefix, distribution, spec, updated_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&publication.prefix)
        .bind(&publication.distribution)
        .bind(publication.spec.to_string())
        .bind(publication.updated_at)
        .execute(&self.writer)
        .await;
        conflict_as(
            inserted,
            "publication",
            &format!("{}/{}", publication.prefix, publication.distribution),
        )
    }

    /// Replaces the spec of an existing publication; false if there is none.
    pub async fn update_apt_publication(
        &self,
        publication: &AptPublicationRecord,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE apt_publications SET spec = $3, updated_at = $4 WHERE prefix = $1 AND distribution = $2",
        )
        .bind(&publication.prefix)
        .bind(&publication.distribution)
        .bind(publication.spec.to_string())
        .bind(publication.updated_at)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn apt_publications(&self) -> Result<Vec<AptPublicationRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT prefix, distribution, spec, updated_at FROM apt_publications ORDER BY prefix, distribution",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(read_error("apt_publications"))?;
        rows.iter().map(publication_from_row).collect()
    }

    pub async fn delete_apt_publication(
        &self,
        prefix: &str,
        distribution: &str,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("DELETE FROM apt_publications WHERE prefix = $1 AND distribution = $2")
                .bind(prefix)
                .bind(distribution)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() > 0)
    }
}

fn publication_from_row(row: &AnyRow) -> Result<AptPublicationRecord, StoreError> {
    let row = Row::new(row, "apt_publications");
    Ok(AptPublicationRecord {
        prefix: row.get("prefix")?,
        distribution: row.get("distribution")?,
        spec: row.json("spec")?,
        updated_at: row.get("updated_at")?,
    })
}
