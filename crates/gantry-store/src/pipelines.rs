//! Pipelines as applied by `gantry apply`.

use serde_json::Value;
use sqlx::any::AnyRow;

use crate::model::{Millis, PipelineRecord, Upsert};
use crate::rows::{Row, json_text, read_error};
use crate::store::{Store, StoreError};

const COLUMNS: &str = "name, application, spec, version, created_at, updated_at";

impl Store {
    /// Creates or updates; `version` and `updated_at` change only if `spec` or `application` did.
    pub async fn upsert_pipeline(
        &self,
        name: &str,
        application: Option<&str>,
        spec: &Value,
        now: Millis,
    ) -> Result<Upsert, StoreError> {
        // One statement: the conflict branch only updates (and returns a row)
        // when something changed, and only an insert returns version 1.
        let version: Option<i64> = sqlx::query_scalar(
            "INSERT INTO pipelines (name, application, spec, version, created_at, updated_at)
             VALUES ($1, $2, $3, 1, $4, $4)
             ON CONFLICT (name) DO UPDATE SET
                 application = excluded.application,
                 spec = excluded.spec,
                 version = pipelines.version + 1,
                 updated_at = excluded.updated_at
             WHERE pipelines.spec <> excluded.spec
                OR pipelines.application IS DISTINCT FROM excluded.application
             RETURNING version",
        )
        .bind(name)
        .bind(application)
        .bind(json_text(spec))
        .bind(now)
        .fetch_optional(&self.writer)
        .await?;
        Ok(Upsert::from_version(version))
    }

    pub async fn pipeline(&self, name: &str) -> Result<Option<PipelineRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM pipelines WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.reader)
            .await
            .map_err(read_error("pipelines"))?;
        row.as_ref().map(pipeline_from_row).transpose()
    }

    /// All pipelines, by name.
    pub async fn pipelines(&self) -> Result<Vec<PipelineRecord>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM pipelines ORDER BY name"))
            .fetch_all(&self.reader)
            .await
            .map_err(read_error("pipelines"))?;
        rows.iter().map(pipeline_from_row).collect()
    }

    /// A value that changes whenever a pipeline is created, changed or deleted, by this
    /// process or another sharing the database: one row of aggregates, so that watchers of
    /// the pipelines (triggers) can tell cheaply whether they must read them again.
    pub async fn pipelines_fingerprint(&self) -> Result<PipelinesFingerprint, StoreError> {
        // Deleting one pipeline and creating another still moves the latest `updated_at`.
        let (count, latest, versions): (i64, i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(MAX(updated_at), 0),
                    CAST(COALESCE(SUM(version), 0) AS BIGINT)
             FROM pipelines",
        )
        .fetch_one(&self.reader)
        .await
        .map_err(read_error("pipelines"))?;
        Ok(PipelinesFingerprint {
            count,
            latest,
            versions,
        })
    }

    /// Returns false if there was no such pipeline. Executions are kept.
    pub async fn delete_pipeline(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM pipelines WHERE name = $1")
            .bind(name)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

/// See [`Store::pipelines_fingerprint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipelinesFingerprint {
    count: i64,
    latest: Millis,
    versions: i64,
}

fn pipeline_from_row(row: &AnyRow) -> Result<PipelineRecord, StoreError> {
    let row = Row::new(row, "pipelines");
    Ok(PipelineRecord {
        name: row.get("name")?,
        application: row.get("application")?,
        spec: row.json("spec")?,
        version: row.get("version")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}
