//! APT repositories' metadata (see `gantry-apt`): packages known by their
//! SHA-256, the repositories and snapshots listing them, publications.
//! Package files live on disk (in packs); their paragraphs and where their
//! bytes are, here.

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::error::ErrorKind;

use crate::model::Millis;
use crate::rows::{Row, read_error, values, violation};
use crate::store::{Backend, Store, StoreError};

/// One package file, stored once whatever holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptPackageRecord {
    pub sha256: String,
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub size: i64,
    /// The Packages paragraph without `Filename`.
    pub control: String,
    pub created_at: Millis,
    /// Where its bytes are; `None` for a file in the content pool (packages
    /// recorded before packs).
    pub location: Option<AptPackLocation>,
}

/// A package's bytes in a pack: `size` bytes from `offset` in
/// `DATA_DIR/apt/packs/PACK.pack`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptPackLocation {
    pub pack: String,
    pub offset: i64,
}

/// What it takes to read a package's file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptPackageFile {
    pub sha256: String,
    pub size: i64,
    pub created_at: Millis,
    pub location: Option<AptPackLocation>,
}

/// An [`AptPackageRecord`] without its paragraph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptPackageKey {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub sha256: String,
    pub size: i64,
}

/// Where a publication's packages come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AptSource<'a> {
    Repo(&'a str),
    Snapshot(&'a str),
}

/// One package as an index lists it: its paragraph and what names its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptParagraph {
    pub sha256: String,
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub control: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptRepoRecord {
    pub name: String,
    pub distribution: String,
    pub component: String,
    pub comment: String,
    pub created_at: Millis,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptSnapshotRecord {
    pub name: String,
    pub description: String,
    pub created_at: Millis,
}

/// A publication at `prefix`/dists/`distribution`; `spec` is gantry-apt's.
#[derive(Clone, Debug, PartialEq)]
pub struct AptPublicationRecord {
    pub prefix: String,
    pub distribution: String,
    pub spec: Value,
    pub updated_at: Millis,
}

const PACKAGE_COLUMNS: &str = "p.sha256, p.name, p.version, p.architecture, p.size, p.control, \
     p.created_at, p.pack, p.pack_offset";

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

    /// `Conflict` (kind `"repository"`) if the name is taken.
    pub async fn create_apt_repo(&self, repo: &AptRepoRecord) -> Result<(), StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO apt_repos (name, distribution, component, comment, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&repo.name)
        .bind(&repo.distribution)
        .bind(&repo.component)
        .bind(&repo.comment)
        .bind(repo.created_at)
        .execute(&self.writer)
        .await;
        conflict_as(inserted, "repository", &repo.name)
    }

    pub async fn apt_repos(&self) -> Result<Vec<AptRepoRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, distribution, component, comment, created_at FROM apt_repos ORDER BY name",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(read_error("apt_repos"))?;
        rows.iter().map(repo_from_row).collect()
    }

    pub async fn apt_repo(&self, name: &str) -> Result<Option<AptRepoRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT name, distribution, component, comment, created_at FROM apt_repos WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.reader)
        .await
        .map_err(read_error("apt_repos"))?;
        row.as_ref().map(repo_from_row).transpose()
    }

    /// Drops the repository and its package list; false if there was none.
    pub async fn delete_apt_repo(&self, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM apt_repo_packages WHERE repo = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM apt_repos WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// The packages of a repository, by name then version text.
    pub async fn apt_repo_packages(&self, repo: &str) -> Result<Vec<AptPackageRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {PACKAGE_COLUMNS} FROM apt_repo_packages r JOIN apt_packages p ON p.sha256 = r.sha256
             WHERE r.repo = $1 ORDER BY p.name, p.version, p.architecture"
        ))
        .bind(repo)
        .fetch_all(&self.reader)
        .await
        .map_err(read_error("apt_packages"))?;
        rows.iter().map(package_from_row).collect()
    }

    /// What identifies each package of a repository, without its
    /// paragraph: cheaper than [`Store::apt_repo_packages`] when only
    /// collisions are looked for.
    pub async fn apt_repo_package_keys(
        &self,
        repo: &str,
    ) -> Result<Vec<AptPackageKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.name, p.version, p.architecture, p.sha256, p.size FROM apt_repo_packages r
             JOIN apt_packages p ON p.sha256 = r.sha256 WHERE r.repo = $1",
        )
        .bind(repo)
        .fetch_all(&self.reader)
        .await
        .map_err(read_error("apt_packages"))?;
        rows.iter().map(package_key_from_row).collect()
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

    /// How many packages a repository lists.
    pub async fn apt_repo_package_count(&self, repo: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM apt_repo_packages WHERE repo = $1")
            .bind(repo)
            .fetch_one(&self.reader)
            .await
            .map_err(read_error("apt_repo_packages"))?;
        Row::new(&row, "apt_repo_packages").get("n")
    }

    /// Adds and removes packages (by SHA-256) of a repository in one
    /// transaction.
    pub async fn change_apt_repo_packages(
        &self,
        repo: &str,
        add: &[&str],
        remove: &[String],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for chunk in remove.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "DELETE FROM apt_repo_packages WHERE repo = $1 AND sha256 IN ({})",
                (2..chunk.len() + 2)
                    .map(|n| format!("${n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut query = sqlx::query(&sql).bind(repo);
            for sha256 in chunk {
                query = query.bind(sha256);
            }
            query.execute(&mut *tx).await?;
        }
        insert_members(
            self.backend,
            &mut tx,
            "apt_repo_packages",
            "repo",
            repo,
            add,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

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

/// Rows per multi-row statement: well under SQLite's and PostgreSQL's
/// limits on bound parameters (32,766 and 65,535) at 7 columns a row.
pub(crate) const ROWS_PER_STATEMENT: usize = 100;

/// `(?, ?), (?, ?), …` for `rows` rows of `columns` parameters, as the
/// backend numbers them (see [`values`]).
pub(crate) fn placeholders(backend: Backend, rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    values(backend, rows, &row)
}

/// Adds `(owner, sha256)` rows to a membership table (repository or
/// snapshot contents), skipping ones already there.
async fn insert_members(
    backend: Backend,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    table: &str,
    owner_column: &str,
    owner: &str,
    hashes: &[impl AsRef<str>],
) -> Result<(), StoreError> {
    for chunk in hashes.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO {table} ({owner_column}, sha256) VALUES {} ON CONFLICT ({owner_column}, sha256) DO NOTHING",
            placeholders(backend, chunk.len(), 2)
        );
        let mut query = sqlx::query(&sql);
        for sha256 in chunk {
            query = query.bind(owner).bind(sha256.as_ref());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

fn conflict_as(
    result: Result<sqlx::any::AnyQueryResult, sqlx::Error>,
    kind: &'static str,
    id: &str,
) -> Result<(), StoreError> {
    match result {
        Ok(_) => Ok(()),
        Err(error) => Err(match violation(&error, ErrorKind::UniqueViolation) {
            Some(_) => StoreError::Conflict {
                kind,
                id: id.to_owned(),
            },
            None => error.into(),
        }),
    }
}

/// The membership table of a source, its name column, and the name.
fn source_table(source: AptSource<'_>) -> (&'static str, &'static str, &str) {
    match source {
        AptSource::Repo(name) => ("apt_repo_packages", "repo", name),
        AptSource::Snapshot(name) => ("apt_snapshot_packages", "snapshot", name),
    }
}

fn package_key_from_row(row: &AnyRow) -> Result<AptPackageKey, StoreError> {
    let row = Row::new(row, "apt_packages");
    Ok(AptPackageKey {
        name: row.get("name")?,
        version: row.get("version")?,
        architecture: row.get("architecture")?,
        sha256: row.get("sha256")?,
        size: row.get("size")?,
    })
}

fn package_from_row(row: &AnyRow) -> Result<AptPackageRecord, StoreError> {
    let row = Row::new(row, "apt_packages");
    Ok(AptPackageRecord {
        sha256: row.get("sha256")?,
        name: row.get("name")?,
        version: row.get("version")?,
        architecture: row.get("architecture")?,
        size: row.get("size")?,
        control: row.get("control")?,
        created_at: row.get("created_at")?,
        location: location_from_row(&row)?,
    })
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

fn location_from_row(row: &Row<'_>) -> Result<Option<AptPackLocation>, StoreError> {
    let pack: Option<String> = row.get("pack")?;
    let offset: Option<i64> = row.get("pack_offset")?;
    Ok(pack
        .zip(offset)
        .map(|(pack, offset)| AptPackLocation { pack, offset }))
}

fn repo_from_row(row: &AnyRow) -> Result<AptRepoRecord, StoreError> {
    let row = Row::new(row, "apt_repos");
    Ok(AptRepoRecord {
        name: row.get("name")?,
        distribution: row.get("distribution")?,
        component: row.get("component")?,
        comment: row.get("comment")?,
        created_at: row.get("created_at")?,
    })
}

fn snapshot_from_row(row: &AnyRow) -> Result<AptSnapshotRecord, StoreError> {
    let row = Row::new(row, "apt_snapshots");
    Ok(AptSnapshotRecord {
        name: row.get("name")?,
        description: row.get("description")?,
        created_at: row.get("created_at")?,
    })
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
