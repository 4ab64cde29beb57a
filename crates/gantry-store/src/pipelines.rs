//! Pipelines as applied by `gantry apply`.

use serde_json::Value;
use sqlx::any::AnyRow;

use crate::model::{Millis, PipelineRecord, Upsert};
use crate::rows::{Row, json_text, read_error};
use crate::store::{Store, StoreError};

const COLUMNS: &str = "name, application, spec, version, created_at, updated_at, disabled_triggers";

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
        if version.is_some() {
            self.pipelines_changed();
        }
        Ok(Upsert::from_version(version))
    }

    /// Wakes (`changed()`) after this process applied or deleted a pipeline or switched a
    /// trigger, once the change is committed. Another process sharing a PostgreSQL database
    /// changes them unseen by it: see [`Store::pipelines_fingerprint`].
    pub fn pipeline_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.pipeline_changes.subscribe()
    }

    fn pipelines_changed(&self) {
        self.pipeline_changes.send_modify(|count| *count += 1);
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
        let (count, latest, versions, switches): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(MAX(updated_at), 0),
                    CAST(COALESCE(SUM(version), 0) AS BIGINT),
                    CAST(COALESCE(SUM(switches), 0) AS BIGINT)
             FROM pipelines",
        )
        .fetch_one(&self.reader)
        .await
        .map_err(read_error("pipelines"))?;
        Ok(PipelinesFingerprint {
            count,
            latest,
            versions,
            switches,
        })
    }

    /// Switches the trigger at `position` (1-based, in the pipeline's
    /// `triggers`) on or off; it stays so across applies. `None` when there
    /// is no such pipeline; `Some(false)` when it already was so.
    pub async fn set_trigger_enabled(
        &self,
        pipeline: &str,
        position: u32,
        enabled: bool,
    ) -> Result<Option<bool>, StoreError> {
        // Read, then write only if nobody switched another trigger of the
        // pipeline in between (the list is compared whole); else read again.
        loop {
            let Some(record) = self.pipeline(pipeline).await? else {
                return Ok(None);
            };
            let mut disabled = record.disabled_triggers.clone();
            if enabled {
                disabled.retain(|p| *p != position);
            } else if !disabled.contains(&position) {
                disabled.push(position);
                disabled.sort_unstable();
            }
            if disabled == record.disabled_triggers {
                return Ok(Some(false));
            }
            let done = sqlx::query(
                "UPDATE pipelines SET disabled_triggers = $1, switches = switches + 1
                 WHERE name = $2 AND disabled_triggers = $3",
            )
            .bind(positions_text(&disabled))
            .bind(pipeline)
            .bind(positions_text(&record.disabled_triggers))
            .execute(&self.writer)
            .await?;
            if done.rows_affected() == 1 {
                self.pipelines_changed();
                return Ok(Some(true));
            }
        }
    }

    /// Returns false if there was no such pipeline. Executions are kept.
    pub async fn delete_pipeline(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM pipelines WHERE name = $1")
            .bind(name)
            .execute(&self.writer)
            .await?;
        let deleted = done.rows_affected() > 0;
        if deleted {
            self.pipelines_changed();
        }
        Ok(deleted)
    }
}

/// See [`Store::pipelines_fingerprint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipelinesFingerprint {
    count: i64,
    latest: Millis,
    versions: i64,
    switches: i64,
}

/// The stored form of a set of trigger positions: a JSON array, sorted.
fn positions_text(positions: &[u32]) -> String {
    serde_json::to_string(positions).unwrap_or_else(|_| "[]".to_owned())
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
        disabled_triggers: serde_json::from_value(row.json("disabled_triggers")?)
            .unwrap_or_default(),
    })
}
