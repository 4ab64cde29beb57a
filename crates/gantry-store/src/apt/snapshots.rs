//! Snapshots: frozen package lists.

use sqlx::any::AnyRow;

use super::{
    AptPackageRecord, AptSnapshotRecord, PACKAGE_COLUMNS, conflict_as, insert_members,
    package_from_row,
};
use crate::rows::{Row, read_error};
use crate::store::{Store, StoreError};

impl Store {
    /// `Conflict` (kind `"snapshot"`) if the name is taken.
    pub async fn create_apt_snapshot(
        &self,
        snapshot: &AptSnapshotRecord,
        packages: &[String],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO apt_snapshots (name, description, created_at) VALUES ($1, $2, $3)",
        )
        .bind(&snapshot.name)
        .bind(&snapshot.description)
        .bind(snapshot.created_at)
        .execute(&mut *tx)
        .await;
        conflict_as(inserted, "snapshot", &snapshot.name)?;
        insert_members(
            self.backend,
            &mut tx,
            "apt_snapshot_packages",
            "snapshot",
            &snapshot.name,
            packages,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn apt_snapshots(&self) -> Result<Vec<AptSnapshotRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT name, description, created_at FROM apt_snapshots ORDER BY name")
                .fetch_all(&self.reader)
                .await
                .map_err(read_error("apt_snapshots"))?;
        rows.iter().map(snapshot_from_row).collect()
    }

    pub async fn apt_snapshot(&self, name: &str) -> Result<Option<AptSnapshotRecord>, StoreError> {
        let row =
            sqlx::query("SELECT name, description, created_at FROM apt_snapshots WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.reader)
                .await
                .map_err(read_error("apt_snapshots"))?;
        row.as_ref().map(snapshot_from_row).transpose()
    }

    pub async fn apt_snapshot_packages(
        &self,
        snapshot: &str,
    ) -> Result<Vec<AptPackageRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {PACKAGE_COLUMNS} FROM apt_snapshot_packages s JOIN apt_packages p ON p.sha256 = s.sha256
             WHERE s.snapshot = $1 ORDER BY p.name, p.version, p.architecture"
        ))
        .bind(snapshot)
        .fetch_all(&self.reader)
        .await
        .map_err(read_error("apt_packages"))?;
        rows.iter().map(package_from_row).collect()
    }

    pub async fn delete_apt_snapshot(&self, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM apt_snapshot_packages WHERE snapshot = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM apt_snapshots WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}

fn snapshot_from_row(row: &AnyRow) -> Result<AptSnapshotRecord, StoreError> {
    let row = Row::new(row, "apt_snapshots");
    Ok(AptSnapshotRecord {
        name: row.get("name")?,
        description: row.get("description")?,
        created_at: row.get("created_at")?,
    })
}
