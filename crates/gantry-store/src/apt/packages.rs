//! Package files, known by their SHA-256, and the packages of a
//! repository or snapshot as an index lists them.

use sqlx::any::AnyRow;

use super::{
    AptPackageFile, AptPackageRecord, AptParagraph, AptSource, ROWS_PER_STATEMENT,
    location_from_row, placeholders, source_table,
};
use crate::rows::{Row, read_error};
use crate::store::{Store, StoreError};

impl Store {
    /// Records packages; ones already known (same SHA-256) are left as they
    /// are. Rows go in multi-row statements: one round trip per
    /// [`ROWS_PER_STATEMENT`] packages, all in one transaction.
    pub async fn add_apt_packages(&self, packages: &[&AptPackageRecord]) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for chunk in packages.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO apt_packages
                 (sha256, name, version, architecture, size, control, created_at, pack, pack_offset)
                 VALUES {} ON CONFLICT (sha256) DO NOTHING",
                placeholders(self.backend, chunk.len(), 9)
            );
            let mut query = sqlx::query(&sql);
            for package in chunk {
                let location = package.location.as_ref();
                query = query
                    .bind(&package.sha256)
                    .bind(&package.name)
                    .bind(&package.version)
                    .bind(&package.architecture)
                    .bind(package.size)
                    .bind(&package.control)
                    .bind(package.created_at)
                    .bind(location.map(|l| l.pack.clone()))
                    .bind(location.map(|l| l.offset));
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Which of `hashes` are recorded packages.
    pub async fn known_apt_packages(
        &self,
        hashes: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut known = std::collections::HashSet::new();
        for chunk in hashes.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT sha256 FROM apt_packages WHERE sha256 IN {}",
                placeholders(self.backend, 1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for sha256 in chunk {
                query = query.bind(sha256);
            }
            for row in query
                .fetch_all(&self.writer)
                .await
                .map_err(read_error("apt_packages"))?
            {
                known.insert(Row::new(&row, "apt_packages").get("sha256")?);
            }
        }
        Ok(known)
    }

    /// Where the file of the package with this SHA-256 is, if it is known.
    pub async fn apt_package_file(
        &self,
        sha256: &str,
    ) -> Result<Option<AptPackageFile>, StoreError> {
        let row = sqlx::query(
            "SELECT sha256, size, created_at, pack, pack_offset FROM apt_packages WHERE sha256 = $1",
        )
        .bind(sha256)
        .fetch_optional(&self.reader)
        .await
        .map_err(read_error("apt_packages"))?;
        row.as_ref().map(package_file_from_row).transpose()
    }

    /// Whether any package record points into `pack`: a failed add removes
    /// its pack only if none does.
    pub async fn apt_pack_in_use(&self, pack: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 AS used FROM apt_packages WHERE pack = $1 LIMIT 1")
            .bind(pack)
            .fetch_optional(&self.writer)
            .await
            .map_err(read_error("apt_packages"))?;
        Ok(row.is_some())
    }
    /// The architectures of the packages of a repository or snapshot.
    pub async fn apt_source_architectures(
        &self,
        source: AptSource<'_>,
    ) -> Result<Vec<String>, StoreError> {
        let (members, column, name) = source_table(source);
        let rows = sqlx::query(&format!(
            "SELECT DISTINCT p.architecture FROM {members} m
             JOIN apt_packages p ON p.sha256 = m.sha256 WHERE m.{column} = $1"
        ))
        .bind(name)
        .fetch_all(&self.reader)
        .await
        .map_err(read_error("apt_packages"))?;
        rows.iter()
            .map(|row| Row::new(row, "apt_packages").get("architecture"))
            .collect()
    }

    /// Calls `each` with every package of a repository or snapshot that an
    /// index of `architecture` lists (its own and `all`), ordered by name,
    /// architecture and version. Rows are read as they are used, so that an
    /// index of any size is written without holding its packages in memory.
    pub async fn each_apt_paragraph<E: From<StoreError>>(
        &self,
        source: AptSource<'_>,
        architecture: &str,
        mut each: impl FnMut(AptParagraph) -> Result<(), E>,
    ) -> Result<(), E> {
        use futures::TryStreamExt;
        let (members, column, name) = source_table(source);
        let sql = format!(
            "SELECT p.sha256, p.name, p.version, p.architecture, p.control FROM {members} m
             JOIN apt_packages p ON p.sha256 = m.sha256
             WHERE m.{column} = $1 AND p.architecture IN ($2, 'all')
             ORDER BY p.name, p.architecture, p.version, p.sha256"
        );
        let mut rows = sqlx::query(&sql)
            .bind(name)
            .bind(architecture)
            .fetch(&self.reader);
        while let Some(row) = rows.try_next().await.map_err(read_error("apt_packages"))? {
            let row = Row::new(&row, "apt_packages");
            each(AptParagraph {
                sha256: row.get("sha256")?,
                name: row.get("name")?,
                version: row.get("version")?,
                architecture: row.get("architecture")?,
                control: row.get("control")?,
            })?;
        }
        Ok(())
    }
}

fn package_file_from_row(row: &AnyRow) -> Result<AptPackageFile, StoreError> {
    let row = Row::new(row, "apt_packages");
    Ok(AptPackageFile {
        sha256: row.get("sha256")?,
        size: row.get("size")?,
        created_at: row.get("created_at")?,
        location: location_from_row(&row)?,
    })
}
