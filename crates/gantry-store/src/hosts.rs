//! Fleet hosts, as `gantry apply` last wrote them, and whether a person
//! drained each. The spec is the host's JSON from the file; the store does
//! not read it (the `gantry-fleet` crate does).

use serde_json::Value;
use sqlx::any::AnyRow;

use crate::model::{Millis, Upsert};
use crate::rows::{Row, json_text, read_error};
use crate::store::{Store, StoreError};

const COLUMNS: &str = "name, spec, drained_at, version, created_at, updated_at";

/// One row of `hosts`.
#[derive(Clone, Debug, PartialEq)]
pub struct HostRecord {
    pub name: String,
    pub spec: Value,
    /// When `gantry host drain` made it unschedulable; `None` when in use.
    pub drained_at: Option<Millis>,
    /// 1 when created, one more at each change of its spec.
    pub version: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Store {
    /// Creates the host or replaces its spec; a drained host stays drained.
    pub async fn upsert_host(
        &self,
        name: &str,
        spec: &Value,
        now: Millis,
    ) -> Result<Upsert, StoreError> {
        let version: Option<i64> = sqlx::query_scalar(
            "INSERT INTO hosts (name, spec, version, created_at, updated_at)
             VALUES ($1, $2, 1, $3, $3)
             ON CONFLICT (name) DO UPDATE SET
                 spec = excluded.spec,
                 version = hosts.version + 1,
                 updated_at = excluded.updated_at
             WHERE hosts.spec <> excluded.spec
             RETURNING version",
        )
        .bind(name)
        .bind(json_text(spec))
        .bind(now)
        .fetch_optional(&self.writer)
        .await?;
        Ok(Upsert::from_version(version))
    }

    pub async fn host(&self, name: &str) -> Result<Option<HostRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM hosts WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.reader)
            .await
            .map_err(read_error("hosts"))?;
        row.as_ref().map(host_from_row).transpose()
    }

    /// Every host, by name.
    pub async fn hosts(&self) -> Result<Vec<HostRecord>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM hosts ORDER BY name"))
            .fetch_all(&self.reader)
            .await
            .map_err(read_error("hosts"))?;
        rows.iter().map(host_from_row).collect()
    }

    /// Marks the host drained (`Some(now)`) or back in use (`None`); false
    /// when no host has that name.
    pub async fn set_host_drained(
        &self,
        name: &str,
        drained_at: Option<Millis>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE hosts SET drained_at = $2 WHERE name = $1")
            .bind(name)
            .bind(drained_at)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

fn host_from_row(row: &AnyRow) -> Result<HostRecord, StoreError> {
    let row = Row::new(row, "hosts");
    Ok(HostRecord {
        name: row.get("name")?,
        spec: row.json("spec")?,
        drained_at: row.get("drained_at")?,
        version: row.get("version")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}
