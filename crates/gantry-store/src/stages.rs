//! Stages of executions, and the steps of `run` stages.

use sqlx::any::AnyRow;
use sqlx::error::ErrorKind;

use crate::executions::update_execution_in;
use crate::model::{ExecutionRecord, StageAttemptRecord, StageRecord, StepRecord};
use crate::rows::{Row, json_text, read_error, violation};
use crate::store::{Store, StoreError};

const STAGE_COLUMNS: &str =
    "execution_id, stage_id, status, attempt, started_at, ended_at, outputs, error, state";

const STEP_COLUMNS: &str = "execution_id, stage_id, step, status, started_at, ended_at, exit_code, pgid, \
                            proc_start, interruptions, error";

impl Store {
    /// The stages of an execution, in pipeline file order.
    pub async fn stages(&self, execution_id: &str) -> Result<Vec<StageRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {STAGE_COLUMNS} FROM stages WHERE execution_id = $1 ORDER BY position"
        ))
        .bind(execution_id)
        .fetch_all(&self.reader)
        .await
        .map_err(read_error("stages"))?;
        rows.iter().map(stage_from_row).collect()
    }

    pub async fn stage(
        &self,
        execution_id: &str,
        stage_id: &str,
    ) -> Result<Option<StageRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {STAGE_COLUMNS} FROM stages WHERE execution_id = $1 AND stage_id = $2"
        ))
        .bind(execution_id)
        .bind(stage_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(read_error("stages"))?;
        row.as_ref().map(stage_from_row).transpose()
    }

    /// Writes every column of the stage row (it must exist: `NotFound`
    /// otherwise, with kind `"stage"` and id `EXECUTION/STAGE`).
    /// Its attempt's row is written in the same transaction.
    pub async fn update_stage(&self, stage: &StageRecord) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        update_stage_in(&mut tx, stage).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records how an attempt ended when its stage row goes straight on to
    /// the next attempt (a retry), which alone would leave it running.
    pub async fn end_stage_attempt(&self, attempt: &StageAttemptRecord) -> Result<(), StoreError> {
        let mut conn = self.writer.acquire().await?;
        put_attempt_in(&mut conn, attempt).await
    }

    /// Every attempt of every stage of an execution that has begun one, by
    /// stage and attempt: the past ones as they ended, the current one as
    /// its stage row is.
    pub async fn stage_attempts(
        &self,
        execution_id: &str,
    ) -> Result<Vec<StageAttemptRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT execution_id, stage_id, attempt, status, started_at, ended_at, error
             FROM stage_attempts WHERE execution_id = $1 ORDER BY stage_id, attempt",
        )
        .bind(execution_id)
        .fetch_all(&self.reader)
        .await
        .map_err(read_error("stage_attempts"))?;
        rows.iter().map(attempt_from_row).collect()
    }

    /// Writes the stage rows and the execution row in one transaction.
    pub async fn update_stages_and_execution(
        &self,
        stages: &[StageRecord],
        exec: &ExecutionRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for stage in stages {
            update_stage_in(&mut tx, stage).await?;
        }
        update_execution_in(&mut tx, exec).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The steps of a stage, in order.
    pub async fn steps(
        &self,
        execution_id: &str,
        stage_id: &str,
    ) -> Result<Vec<StepRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {STEP_COLUMNS} FROM steps WHERE execution_id = $1 AND stage_id = $2 ORDER BY step"
        ))
        .bind(execution_id)
        .bind(stage_id)
        .fetch_all(&self.reader)
        .await
        .map_err(read_error("steps"))?;
        rows.iter().map(step_from_row).collect()
    }

    /// Insert or replace by (execution_id, stage_id, step). `NotFound` (kind
    /// `"stage"`) if the stage does not exist.
    pub async fn put_step(&self, step: &StepRecord) -> Result<(), StoreError> {
        let done = sqlx::query(&format!(
            "INSERT INTO steps ({STEP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (execution_id, stage_id, step) DO UPDATE SET
                 status = excluded.status,
                 started_at = excluded.started_at,
                 ended_at = excluded.ended_at,
                 exit_code = excluded.exit_code,
                 pgid = excluded.pgid,
                 proc_start = excluded.proc_start,
                 interruptions = excluded.interruptions,
                 error = excluded.error"
        ))
        .bind(&step.execution_id)
        .bind(&step.stage_id)
        .bind(step.step)
        .bind(step.status.as_str())
        .bind(step.started_at)
        .bind(step.ended_at)
        .bind(step.exit_code)
        .bind(step.pgid)
        .bind(step.proc_start)
        .bind(step.interruptions)
        .bind(step.error.as_deref())
        .execute(&self.writer)
        .await;
        match done {
            Ok(_) => Ok(()),
            Err(error) if violation(&error, ErrorKind::ForeignKeyViolation).is_some() => {
                Err(StoreError::NotFound {
                    kind: "stage",
                    id: format!("{}/{}", step.execution_id, step.stage_id),
                })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes the steps of a stage (a restarted stage runs all its steps again).
    pub async fn clear_steps(&self, execution_id: &str, stage_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM steps WHERE execution_id = $1 AND stage_id = $2")
            .bind(execution_id)
            .bind(stage_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}

async fn update_stage_in(
    conn: &mut sqlx::AnyConnection,
    stage: &StageRecord,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE stages SET status = $3, attempt = $4, started_at = $5, ended_at = $6, outputs = $7,
             error = $8, state = $9
         WHERE execution_id = $1 AND stage_id = $2",
    )
    .bind(&stage.execution_id)
    .bind(&stage.stage_id)
    .bind(stage.status.as_str())
    .bind(stage.attempt)
    .bind(stage.started_at)
    .bind(stage.ended_at)
    .bind(json_text(&stage.outputs))
    .bind(stage.error.as_deref())
    .bind(json_text(&stage.state))
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            kind: "stage",
            id: format!("{}/{}", stage.execution_id, stage.stage_id),
        });
    }
    // An attempt is kept once it ended: the current one is the stage row
    // itself, so a stage's start and its steps cost no second write. A retry
    // that goes straight on to the next attempt records the one it ends
    // itself (`end_stage_attempt`).
    if stage.attempt > 0 && stage.status.is_terminal() {
        let attempt = StageAttemptRecord {
            execution_id: stage.execution_id.clone(),
            stage_id: stage.stage_id.clone(),
            attempt: stage.attempt,
            status: stage.status,
            started_at: stage.started_at,
            ended_at: stage.ended_at,
            error: stage.error.clone(),
        };
        put_attempt_in(conn, &attempt).await?;
    }
    Ok(())
}

async fn put_attempt_in(
    conn: &mut sqlx::AnyConnection,
    attempt: &StageAttemptRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO stage_attempts (execution_id, stage_id, attempt, status, started_at, ended_at, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (execution_id, stage_id, attempt) DO UPDATE SET
             status = excluded.status,
             started_at = excluded.started_at,
             ended_at = excluded.ended_at,
             error = excluded.error",
    )
    .bind(&attempt.execution_id)
    .bind(&attempt.stage_id)
    .bind(attempt.attempt)
    .bind(attempt.status.as_str())
    .bind(attempt.started_at)
    .bind(attempt.ended_at)
    .bind(attempt.error.as_deref())
    .execute(conn)
    .await?;
    Ok(())
}

fn attempt_from_row(row: &AnyRow) -> Result<StageAttemptRecord, StoreError> {
    let row = Row::new(row, "stage_attempts");
    Ok(StageAttemptRecord {
        execution_id: row.get("execution_id")?,
        stage_id: row.get("stage_id")?,
        attempt: row.get("attempt")?,
        status: row.status("status")?,
        started_at: row.get("started_at")?,
        ended_at: row.get("ended_at")?,
        error: row.get("error")?,
    })
}

fn stage_from_row(row: &AnyRow) -> Result<StageRecord, StoreError> {
    let row = Row::new(row, "stages");
    Ok(StageRecord {
        execution_id: row.get("execution_id")?,
        stage_id: row.get("stage_id")?,
        status: row.status("status")?,
        attempt: row.get("attempt")?,
        started_at: row.get("started_at")?,
        ended_at: row.get("ended_at")?,
        outputs: row.json("outputs")?,
        error: row.get("error")?,
        state: row.json("state")?,
    })
}

fn step_from_row(row: &AnyRow) -> Result<StepRecord, StoreError> {
    let row = Row::new(row, "steps");
    Ok(StepRecord {
        execution_id: row.get("execution_id")?,
        stage_id: row.get("stage_id")?,
        step: row.get("step")?,
        status: row.status("status")?,
        started_at: row.get("started_at")?,
        ended_at: row.get("ended_at")?,
        exit_code: row.get("exit_code")?,
        pgid: row.get("pgid")?,
        proc_start: row.get("proc_start")?,
        interruptions: row.get("interruptions")?,
        error: row.get("error")?,
    })
}
