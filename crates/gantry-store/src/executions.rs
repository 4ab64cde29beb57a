//! Executions, and the pending stage rows created with them.

use std::collections::HashSet;

use sqlx::any::AnyRow;
use sqlx::error::ErrorKind;

use crate::model::{ExecutionFilter, ExecutionRecord, NewExecution, ParentRef, Status};
use crate::rows::{Row, json_text, read_error, values, violation};
use crate::store::{Store, StoreError};

const COLUMNS: &str = "id, pipeline, spec, status, parameters, trigger, parent_execution, parent_stage, \
                       parent_attempt, created_at, started_at, ended_at, error, canceled_by";

/// `executions` lists this many unless told otherwise…
const DEFAULT_LIMIT: i64 = 100;
/// …and never more than this.
const MAX_LIMIT: i64 = 1000;

/// Stage rows per `INSERT` statement (three bind parameters each).
const STAGE_ROWS_PER_INSERT: usize = 500;

impl Store {
    /// Inserts the execution (status pending) and one pending stage row per
    /// `stage_ids`. `Conflict` if the id, or the `parent` reference, exists
    /// (kind `"execution"` with the id, or kind `"child execution"` with
    /// `EXECUTION/STAGE/ATTEMPT` of the parent), or if a stage id repeats
    /// (kind `"stage"`).
    pub async fn create_execution(
        &self,
        new: &NewExecution,
    ) -> Result<ExecutionRecord, StoreError> {
        let mut seen = HashSet::new();
        if let Some(repeated) = new.stage_ids.iter().find(|id| !seen.insert(id.as_str())) {
            return Err(StoreError::Conflict {
                kind: "stage",
                id: repeated.clone(),
            });
        }
        let trigger_type = new.trigger.get("type").and_then(|t| t.as_str());
        let parent = new.parent.as_ref();

        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO executions (id, pipeline, spec, status, parameters, trigger, trigger_type,
                 parent_execution, parent_stage, parent_attempt, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&new.id)
        .bind(&new.pipeline)
        .bind(json_text(&new.spec))
        .bind(Status::Pending.as_str())
        .bind(json_text(&new.parameters))
        .bind(json_text(&new.trigger))
        .bind(trigger_type)
        .bind(parent.map(|p| p.execution.as_str()))
        .bind(parent.map(|p| p.stage.as_str()))
        .bind(parent.map(|p| p.attempt))
        .bind(new.created_at)
        .execute(&mut *tx)
        .await;
        if let Err(error) = inserted {
            return Err(
                match (violation(&error, ErrorKind::UniqueViolation), parent) {
                    (Some(message), Some(parent)) if message.contains("parent") => {
                        StoreError::Conflict {
                            kind: "child execution",
                            id: format!("{}/{}/{}", parent.execution, parent.stage, parent.attempt),
                        }
                    }
                    (Some(_), _) => StoreError::Conflict {
                        kind: "execution",
                        id: new.id.clone(),
                    },
                    (None, _) => error.into(),
                },
            );
        }

        let positioned: Vec<(i64, &String)> = (0..).zip(&new.stage_ids).collect();
        for chunk in positioned.chunks(STAGE_ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO stages (execution_id, stage_id, position, status, attempt, outputs, state) VALUES {}",
                values(
                    self.backend,
                    chunk.len(),
                    "(?, ?, ?, 'pending', 0, '{}', '{}')"
                )
            );
            let mut query = sqlx::query(&sql);
            for &(position, stage_id) in chunk {
                query = query.bind(&new.id).bind(stage_id).bind(position);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;

        Ok(ExecutionRecord {
            id: new.id.clone(),
            pipeline: new.pipeline.clone(),
            spec: new.spec.clone(),
            status: Status::Pending,
            parameters: new.parameters.clone(),
            trigger: new.trigger.clone(),
            parent: new.parent.clone(),
            created_at: new.created_at,
            started_at: None,
            ended_at: None,
            error: None,
            canceled_by: None,
        })
    }

    pub async fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM executions WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .map_err(read_error("executions"))?;
        row.as_ref().map(execution_from_row).transpose()
    }

    /// Newest first; `limit` defaults to 100 and is capped at 1000. With
    /// `before`, only executions older than that one (keyset pagination: a
    /// page costs the same at any depth, on the `(…, created_at, id)` indexes).
    pub async fn executions(
        &self,
        filter: &ExecutionFilter,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        let mut conditions = Vec::new();
        let mut params = Vec::new();
        let filters = [
            ("pipeline", filter.pipeline.as_deref()),
            ("status", filter.status.map(Status::as_str)),
            ("trigger_type", filter.trigger_type.as_deref()),
        ];
        for (column, value) in filters {
            if let Some(value) = value {
                params.push(value);
                conditions.push(format!("{column} = ${}", params.len()));
            }
        }
        if filter.before.is_some() {
            let (at, id) = (params.len() + 1, params.len() + 2);
            conditions.push(format!(
                "(created_at < ${at} OR (created_at = ${at} AND id < ${id}))"
            ));
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let limit_param = params.len() + 1 + if filter.before.is_some() { 2 } else { 0 };
        let sql = format!(
            "SELECT {COLUMNS} FROM executions {where_clause} ORDER BY created_at DESC, id DESC LIMIT ${limit_param}"
        );
        let mut query = sqlx::query(&sql);
        for param in params {
            query = query.bind(param);
        }
        if let Some(before) = &filter.before {
            query = query.bind(before.created_at).bind(before.id.as_str());
        }
        let limit = filter.limit.unwrap_or(DEFAULT_LIMIT).clamp(0, MAX_LIMIT);
        let rows = query
            .bind(limit)
            .fetch_all(&self.reader)
            .await
            .map_err(read_error("executions"))?;
        rows.iter().map(execution_from_row).collect()
    }

    /// Executions whose status is not terminal, oldest first (resumed at start).
    pub async fn active_executions(&self) -> Result<Vec<ExecutionRecord>, StoreError> {
        let active: Vec<String> = Status::ALL
            .iter()
            .filter(|s| !s.is_terminal())
            .map(|s| format!("'{s}'"))
            .collect();
        let sql = format!(
            "SELECT {COLUMNS} FROM executions WHERE status IN ({}) ORDER BY created_at, id",
            active.join(", ")
        );
        let rows = sqlx::query(&sql)
            .fetch_all(&self.reader)
            .await
            .map_err(read_error("executions"))?;
        rows.iter().map(execution_from_row).collect()
    }

    pub async fn child_execution(
        &self,
        parent: &ParentRef,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM executions
             WHERE parent_execution = $1 AND parent_stage = $2 AND parent_attempt = $3"
        );
        let row = sqlx::query(&sql)
            .bind(&parent.execution)
            .bind(&parent.stage)
            .bind(parent.attempt)
            .fetch_optional(&self.reader)
            .await
            .map_err(read_error("executions"))?;
        row.as_ref().map(execution_from_row).transpose()
    }

    /// Writes status, started_at, ended_at, error and canceled_by of `exec`.
    pub async fn update_execution(&self, exec: &ExecutionRecord) -> Result<(), StoreError> {
        let mut conn = self.writer.acquire().await?;
        update_execution_in(&mut conn, exec).await
    }

    /// Counts by status, for metrics: every status, in `Status::ALL` order,
    /// zero included.
    pub async fn execution_counts(&self) -> Result<Vec<(Status, i64)>, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM executions GROUP BY status")
            .fetch_all(&self.reader)
            .await
            .map_err(read_error("executions"))?;
        let mut counts: Vec<(Status, i64)> = Status::ALL.iter().map(|&s| (s, 0)).collect();
        for row in &rows {
            let row = Row::new(row, "executions");
            let status = row.status("status")?;
            let n: i64 = row.get("n")?;
            if let Some(count) = counts.iter_mut().find(|(s, _)| *s == status) {
                count.1 = n;
            }
        }
        Ok(counts)
    }
}

/// The `UPDATE` behind `update_execution`, on a connection or in a transaction.
pub(crate) async fn update_execution_in(
    conn: &mut sqlx::AnyConnection,
    exec: &ExecutionRecord,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE executions SET status = $2, started_at = $3, ended_at = $4, error = $5, canceled_by = $6
         WHERE id = $1",
    )
    .bind(&exec.id)
    .bind(exec.status.as_str())
    .bind(exec.started_at)
    .bind(exec.ended_at)
    .bind(exec.error.as_deref())
    .bind(exec.canceled_by.as_deref())
    .execute(conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            kind: "execution",
            id: exec.id.clone(),
        });
    }
    Ok(())
}

fn execution_from_row(row: &AnyRow) -> Result<ExecutionRecord, StoreError> {
    let row = Row::new(row, "executions");
    let parent = match (
        row.get::<Option<String>>("parent_execution")?,
        row.get::<Option<String>>("parent_stage")?,
        row.get::<Option<i64>>("parent_attempt")?,
    ) {
        (None, None, None) => None,
        (Some(execution), Some(stage), Some(attempt)) => Some(ParentRef {
            execution,
            stage,
            attempt,
        }),
        _ => {
            return Err(StoreError::Corrupt {
                table: "executions",
                message:
                    "parent_execution, parent_stage and parent_attempt must be all set or all null"
                        .to_owned(),
            });
        }
    };
    Ok(ExecutionRecord {
        id: row.get("id")?,
        pipeline: row.get("pipeline")?,
        spec: row.json("spec")?,
        status: row.status("status")?,
        parameters: row.json("parameters")?,
        trigger: row.json("trigger")?,
        parent,
        created_at: row.get("created_at")?,
        started_at: row.get("started_at")?,
        ended_at: row.get("ended_at")?,
        error: row.get("error")?,
        canceled_by: row.get("canceled_by")?,
    })
}
