//! Runners: their registration tokens, the runners themselves, and the jobs
//! they lease. Secrets (registration tokens, runner credentials) are stored
//! as their SHA-256 only.
//!
//! A job changes state only through a conditional `UPDATE` on its state and,
//! once leased, its lease id and expiry: two runners racing for one job, or
//! a runner reporting on a lease that has expired or been taken back, find
//! no row to change. That is what makes "no job is ever held by two runners
//! at once" a property of the database, whatever the servers in front of it
//! do.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::error::ErrorKind;

use crate::model::Millis;
use crate::rows::{Row, json_text, read_error, violation};
use crate::store::{Store, StoreError};

/// A registration token: exchanged once per runner for its own credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerTokenRecord {
    pub id: String,
    #[serde(skip_serializing)]
    pub hash: String,
    pub created_at: Millis,
    /// Refused from this time on; `None` never expires.
    pub expires_at: Option<Millis>,
    /// How many more runners it may register; `None` is unlimited.
    pub uses_left: Option<i64>,
}

/// A registered runner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerRecord {
    pub id: String,
    pub name: String,
    pub labels: Vec<String>,
    pub capacity: i64,
    /// `enabled` or `disabled` (a disabled runner's credential is refused).
    pub state: String,
    #[serde(skip_serializing)]
    pub credential_hash: String,
    /// The `gantry` version the runner reported when it registered.
    pub version: String,
    pub created_at: Millis,
    pub last_contact_at: Option<Millis>,
}

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Leased,
    Finished,
    /// Its runner stopped renewing the lease (or was disabled or removed);
    /// the job's owner decides whether it runs again.
    Lost,
    Canceled,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Leased,
        JobState::Finished,
        JobState::Lost,
        JobState::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Leased => "leased",
            JobState::Finished => "finished",
            JobState::Lost => "lost",
            JobState::Canceled => "canceled",
        }
    }
}

impl std::str::FromStr for JobState {
    type Err = String;

    fn from_str(text: &str) -> Result<JobState, String> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| format!("unknown job state {text:?}"))
    }
}

/// A job for runners. The store knows nothing of what `payload` and
/// `result` hold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunnerJobRecord {
    pub id: String,
    pub payload: Value,
    /// A runner must have all of these to lease the job.
    pub labels: Vec<String>,
    pub state: JobState,
    pub runner_id: Option<String>,
    pub lease_id: Option<String>,
    pub lease_expires_at: Option<Millis>,
    /// How many times it was leased.
    pub attempt: i64,
    pub result: Option<Value>,
    /// Log lines `0..log_acked` of the current attempt were received.
    pub log_acked: i64,
    pub queued_at: Millis,
    pub ended_at: Option<Millis>,
    /// Why it was lost or canceled.
    pub reason: Option<String>,
}

const TOKEN_COLUMNS: &str = "id, hash, created_at, expires_at, uses_left";
const RUNNER_COLUMNS: &str =
    "id, name, labels, capacity, state, credential_hash, version, created_at, last_contact_at";
const JOB_COLUMNS: &str = "id, payload, labels, state, runner_id, lease_id, lease_expires_at, \
     attempt, result, log_acked, queued_at, ended_at, reason";

impl Store {
    // --- Registration tokens ------------------------------------------

    pub async fn create_runner_token(&self, token: &RunnerTokenRecord) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO runner_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
        ))
        .bind(&token.id)
        .bind(&token.hash)
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(token.uses_left)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Takes one use of the token with this hash if it has not expired and
    /// has uses left; `None` otherwise. One statement, so two runners
    /// registering with the last use of a token cannot both get it.
    pub async fn use_runner_token(
        &self,
        hash: &str,
        now: Millis,
    ) -> Result<Option<RunnerTokenRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE runner_tokens SET uses_left = uses_left - 1
             WHERE hash = $1 AND (expires_at IS NULL OR expires_at > $2)
               AND (uses_left IS NULL OR uses_left > 0)
             RETURNING {TOKEN_COLUMNS}"
        ))
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.writer)
        .await
        .map_err(read_error("runner_tokens"))?;
        row.as_ref().map(token_from_row).transpose()
    }

    // --- Runners -------------------------------------------------------

    /// `Conflict` (kind `"runner"`, with the name) if the name is taken.
    pub async fn create_runner(&self, runner: &RunnerRecord) -> Result<(), StoreError> {
        let inserted = sqlx::query(&format!(
            "INSERT INTO runners ({RUNNER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&runner.id)
        .bind(&runner.name)
        .bind(json_text(&Value::from(runner.labels.clone())))
        .bind(runner.capacity)
        .bind(&runner.state)
        .bind(&runner.credential_hash)
        .bind(&runner.version)
        .bind(runner.created_at)
        .bind(runner.last_contact_at)
        .execute(&self.writer)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(error) => Err(match violation(&error, ErrorKind::UniqueViolation) {
                Some(_) => StoreError::Conflict {
                    kind: "runner",
                    id: runner.name.clone(),
                },
                None => error.into(),
            }),
        }
    }

    /// Every runner, by name.
    pub async fn runners(&self) -> Result<Vec<RunnerRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUNNER_COLUMNS} FROM runners ORDER BY name"
        ))
        .fetch_all(&self.reader)
        .await
        .map_err(read_error("runners"))?;
        rows.iter().map(runner_from_row).collect()
    }

    pub async fn runner(&self, id: &str) -> Result<Option<RunnerRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RUNNER_COLUMNS} FROM runners WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await
        .map_err(read_error("runners"))?;
        row.as_ref().map(runner_from_row).transpose()
    }

    /// Sets a runner's state (`enabled`, `disabled`) by name; the runner as
    /// it is now, or `None` if there is none of that name.
    pub async fn set_runner_state(
        &self,
        name: &str,
        state: &str,
    ) -> Result<Option<RunnerRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE runners SET state = $2 WHERE name = $1 RETURNING {RUNNER_COLUMNS}"
        ))
        .bind(name)
        .bind(state)
        .fetch_optional(&self.writer)
        .await
        .map_err(read_error("runners"))?;
        row.as_ref().map(runner_from_row).transpose()
    }

    /// Deletes a runner by name; the runner it was, if any.
    pub async fn remove_runner(&self, name: &str) -> Result<Option<RunnerRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "DELETE FROM runners WHERE name = $1 RETURNING {RUNNER_COLUMNS}"
        ))
        .bind(name)
        .fetch_optional(&self.writer)
        .await
        .map_err(read_error("runners"))?;
        row.as_ref().map(runner_from_row).transpose()
    }

    /// Records that the runner was heard from at `now`.
    pub async fn touch_runner(&self, id: &str, now: Millis) -> Result<(), StoreError> {
        sqlx::query("UPDATE runners SET last_contact_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    // --- Jobs ----------------------------------------------------------

    /// Stores a new job as it is given (normally `queued`, attempt 0).
    pub async fn enqueue_job(&self, job: &RunnerJobRecord) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO runner_jobs ({JOB_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(&job.id)
        .bind(json_text(&job.payload))
        .bind(json_text(&Value::from(job.labels.clone())))
        .bind(job.state.as_str())
        .bind(&job.runner_id)
        .bind(&job.lease_id)
        .bind(job.lease_expires_at)
        .bind(job.attempt)
        .bind(job.result.as_ref().map(json_text))
        .bind(job.log_acked)
        .bind(job.queued_at)
        .bind(job.ended_at)
        .bind(&job.reason)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn runner_job(&self, id: &str) -> Result<Option<RunnerJobRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM runner_jobs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await
        .map_err(read_error("runner_jobs"))?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Jobs in one of `states`, oldest first.
    pub async fn runner_jobs_in(
        &self,
        states: &[JobState],
    ) -> Result<Vec<RunnerJobRecord>, StoreError> {
        let wanted: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM runner_jobs WHERE state IN ({}) ORDER BY queued_at, id",
            wanted.join(", ")
        ))
        .fetch_all(&self.reader)
        .await
        .map_err(read_error("runner_jobs"))?;
        rows.iter().map(job_from_row).collect()
    }

    /// Leases a queued job to an enabled runner; `None` if it is no longer
    /// queued (another runner took it, or it was canceled) or the runner
    /// was disabled or removed meanwhile.
    pub async fn lease_job(
        &self,
        job_id: &str,
        runner_id: &str,
        lease_id: &str,
        expires_at: Millis,
    ) -> Result<Option<RunnerJobRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE runner_jobs
             SET state = 'leased', runner_id = $2, lease_id = $3, lease_expires_at = $4,
                 attempt = attempt + 1, log_acked = 0
             WHERE id = $1 AND state = 'queued'
               AND EXISTS (SELECT 1 FROM runners WHERE id = $2 AND state = 'enabled')
             RETURNING {JOB_COLUMNS}"
        ))
        .bind(job_id)
        .bind(runner_id)
        .bind(lease_id)
        .bind(expires_at)
        .fetch_optional(&self.writer)
        .await
        .map_err(read_error("runner_jobs"))?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Extends a live lease held by `runner_id` to `expires_at`; the job, or
    /// `None` if the lease has expired, ended or is not that runner's.
    pub async fn renew_lease(
        &self,
        lease_id: &str,
        runner_id: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<Option<RunnerJobRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE runner_jobs SET lease_expires_at = $4
             WHERE lease_id = $1 AND runner_id = $2 AND state = 'leased' AND lease_expires_at >= $3
             RETURNING {JOB_COLUMNS}"
        ))
        .bind(lease_id)
        .bind(runner_id)
        .bind(now)
        .bind(expires_at)
        .fetch_optional(&self.writer)
        .await
        .map_err(read_error("runner_jobs"))?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Moves a live lease's acknowledged log sequence from `from` to `to`
    /// (compare and set: two batches of one lease can never both be taken);
    /// the job, or `None` if the lease is not live or its sequence is not
    /// `from` any more.
    pub async fn ack_job_logs(
        &self,
        lease_id: &str,
        runner_id: &str,
        now: Millis,
        from: i64,
        to: i64,
    ) -> Result<Option<RunnerJobRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE runner_jobs SET log_acked = $5
             WHERE lease_id = $1 AND runner_id = $2 AND state = 'leased' AND lease_expires_at >= $3
               AND log_acked = $4
             RETURNING {JOB_COLUMNS}"
        ))
        .bind(lease_id)
        .bind(runner_id)
        .bind(now)
        .bind(from)
        .bind(to)
        .fetch_optional(&self.writer)
        .await
        .map_err(read_error("runner_jobs"))?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// The job a lease is (or was) for.
    pub async fn job_of_lease(
        &self,
        lease_id: &str,
    ) -> Result<Option<RunnerJobRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM runner_jobs WHERE lease_id = $1"
        ))
        .bind(lease_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(read_error("runner_jobs"))?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Ends a live lease with its result; `None` (the result refused) if the
    /// lease has expired, ended or is not that runner's.
    pub async fn finish_job(
        &self,
        lease_id: &str,
        runner_id: &str,
        now: Millis,
        result: &Value,
    ) -> Result<Option<RunnerJobRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE runner_jobs SET state = 'finished', result = $4, ended_at = $3
             WHERE lease_id = $1 AND runner_id = $2 AND state = 'leased' AND lease_expires_at >= $3
             RETURNING {JOB_COLUMNS}"
        ))
        .bind(lease_id)
        .bind(runner_id)
        .bind(now)
        .bind(json_text(result))
        .fetch_optional(&self.writer)
        .await
        .map_err(read_error("runner_jobs"))?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Marks lost every leased job whose lease expired before `now`.
    pub async fn lose_expired_leases(
        &self,
        now: Millis,
    ) -> Result<Vec<RunnerJobRecord>, StoreError> {
        self.lose_jobs(
            "state = 'leased' AND lease_expires_at < $1",
            None,
            now,
            "lease expired",
        )
        .await
    }

    /// Marks lost every job leased to a runner (disabled or removed).
    pub async fn lose_leases_of(
        &self,
        runner_id: &str,
        now: Millis,
        reason: &str,
    ) -> Result<Vec<RunnerJobRecord>, StoreError> {
        self.lose_jobs(
            "state = 'leased' AND runner_id = $3",
            Some(runner_id),
            now,
            reason,
        )
        .await
    }

    /// Marks lost every queued or leased job: at start, the owners of the
    /// previous process's jobs are gone and decide again from their own
    /// state (an engine resumes its executions).
    pub async fn lose_unfinished_jobs(
        &self,
        now: Millis,
        reason: &str,
    ) -> Result<Vec<RunnerJobRecord>, StoreError> {
        self.lose_jobs("state IN ('queued', 'leased')", None, now, reason)
            .await
    }

    /// `condition` may use `$1` (now) and, when `runner_id` is given, `$3`.
    async fn lose_jobs(
        &self,
        condition: &str,
        runner_id: Option<&str>,
        now: Millis,
        reason: &str,
    ) -> Result<Vec<RunnerJobRecord>, StoreError> {
        let sql = format!(
            "UPDATE runner_jobs SET state = 'lost', ended_at = $1, reason = $2
             WHERE {condition}
             RETURNING {JOB_COLUMNS}"
        );
        let mut query = sqlx::query(&sql).bind(now).bind(reason);
        if let Some(runner_id) = runner_id {
            query = query.bind(runner_id);
        }
        let rows = query
            .fetch_all(&self.writer)
            .await
            .map_err(read_error("runner_jobs"))?;
        rows.iter().map(job_from_row).collect()
    }

    /// Cancels a queued or leased job; the job as canceled (with the runner
    /// that held it, if any), or `None` if it had already ended.
    pub async fn cancel_job(
        &self,
        job_id: &str,
        now: Millis,
        reason: &str,
    ) -> Result<Option<RunnerJobRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE runner_jobs SET state = 'canceled', ended_at = $2, reason = $3
             WHERE id = $1 AND state IN ('queued', 'leased')
             RETURNING {JOB_COLUMNS}"
        ))
        .bind(job_id)
        .bind(now)
        .bind(reason)
        .fetch_optional(&self.writer)
        .await
        .map_err(read_error("runner_jobs"))?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Queues a lost job again (its owner chose to re-run it); false if it
    /// is not lost.
    pub async fn requeue_lost_job(&self, job_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE runner_jobs
             SET state = 'queued', runner_id = NULL, lease_id = NULL, lease_expires_at = NULL,
                 ended_at = NULL, reason = NULL, log_acked = 0
             WHERE id = $1 AND state = 'lost'",
        )
        .bind(job_id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

fn labels(row: &Row<'_>) -> Result<Vec<String>, StoreError> {
    serde_json::from_value(row.json("labels")?).map_err(|e| StoreError::Corrupt {
        table: "runners",
        message: format!("column labels: {e}"),
    })
}

fn token_from_row(row: &AnyRow) -> Result<RunnerTokenRecord, StoreError> {
    let row = Row::new(row, "runner_tokens");
    Ok(RunnerTokenRecord {
        id: row.get("id")?,
        hash: row.get("hash")?,
        created_at: row.get("created_at")?,
        expires_at: row.get("expires_at")?,
        uses_left: row.get("uses_left")?,
    })
}

fn runner_from_row(row: &AnyRow) -> Result<RunnerRecord, StoreError> {
    let row = Row::new(row, "runners");
    Ok(RunnerRecord {
        id: row.get("id")?,
        name: row.get("name")?,
        labels: labels(&row)?,
        capacity: row.get("capacity")?,
        state: row.get("state")?,
        credential_hash: row.get("credential_hash")?,
        version: row.get("version")?,
        created_at: row.get("created_at")?,
        last_contact_at: row.get("last_contact_at")?,
    })
}

fn job_from_row(row: &AnyRow) -> Result<RunnerJobRecord, StoreError> {
    let row = Row::new(row, "runner_jobs");
    let state: String = row.get("state")?;
    let result: Option<String> = row.get("result")?;
    let corrupt = |column: &str, e: String| StoreError::Corrupt {
        table: "runner_jobs",
        message: format!("column {column}: {e}"),
    };
    Ok(RunnerJobRecord {
        id: row.get("id")?,
        payload: row.json("payload")?,
        labels: labels(&row)?,
        state: state.parse().map_err(|e| corrupt("state", e))?,
        runner_id: row.get("runner_id")?,
        lease_id: row.get("lease_id")?,
        lease_expires_at: row.get("lease_expires_at")?,
        attempt: row.get("attempt")?,
        result: result
            .map(|text| serde_json::from_str(&text).map_err(|e| corrupt("result", e.to_string())))
            .transpose()?,
        log_acked: row.get("log_acked")?,
        queued_at: row.get("queued_at")?,
        ended_at: row.get("ended_at")?,
        reason: row.get("reason")?,
    })
}
