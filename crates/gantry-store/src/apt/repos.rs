//! Repositories and the packages they list.

use sqlx::any::AnyRow;

use super::{
    AptPackageKey, AptPackageRecord, AptRepoRecord, PACKAGE_COLUMNS, ROWS_PER_STATEMENT,
    conflict_as, insert_members, package_from_row,
};
use crate::rows::{Row, read_error};
use crate::store::{Store, StoreError};

impl Store {
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
