//! Log lines of steps. A step may print millions of lines, so lines are
//! written many rows per statement, and read a page at a time.

use std::borrow::Cow;
use std::collections::BTreeSet;

use sqlx::any::AnyRow;

use crate::model::{LogLine, NewLogLine};
use crate::rows::{Row, read_error, stream_str, values};
use crate::store::{Backend, Store, StoreError};

/// Rows per `INSERT`: six bind parameters each, well below the limits of both
/// backends (32766 on SQLite, 65535 on PostgreSQL).
const ROWS_PER_INSERT: usize = 500;

/// `logs` never returns more than this many lines at once.
const MAX_PAGE: i64 = 10_000;

impl Store {
    /// Stores the lines in one transaction; returns their `seq`s in order.
    /// A NUL character in a line is stored as U+FFFD.
    ///
    /// On PostgreSQL, concurrent calls for the same execution are serialised
    /// (an advisory lock per execution, held until commit), so that lines of
    /// one execution become visible in `seq` order: a reader paging with
    /// `after` never skips a line that commits late. SQLite has one writer
    /// anyway.
    pub async fn append_logs(&self, lines: &[NewLogLine]) -> Result<Vec<i64>, StoreError> {
        if lines.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        if self.backend == Backend::Postgres {
            // Sorted, so that two transactions take their locks in the same
            // order and cannot deadlock.
            let executions: BTreeSet<&str> =
                lines.iter().map(|l| l.execution_id.as_str()).collect();
            let values: Vec<String> = (1..=executions.len()).map(|i| format!("(${i})")).collect();
            let sql = format!(
                "SELECT COUNT(*) FROM (VALUES {}) AS v(e), \
                 LATERAL pg_advisory_xact_lock(hashtextextended(v.e, 0)) AS l",
                values.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for execution in executions {
                query = query.bind(execution);
            }
            query.execute(&mut *tx).await?;
        }

        let mut seqs = Vec::with_capacity(lines.len());
        for chunk in lines.chunks(ROWS_PER_INSERT) {
            let texts: Vec<Cow<'_, str>> = chunk.iter().map(|l| storable(&l.line)).collect();
            let sql = insert_sql(self.backend, chunk.len());
            // Full chunks recur and are worth a prepared statement; the odd
            // sizes of the last chunk would only crowd the statement cache.
            let mut query =
                sqlx::query_scalar::<_, i64>(&sql).persistent(chunk.len() == ROWS_PER_INSERT);
            for (line, text) in chunk.iter().zip(&texts) {
                query = query
                    .bind(&line.execution_id)
                    .bind(&line.stage_id)
                    .bind(line.step)
                    .bind(line.ts)
                    .bind(stream_str(line.stream))
                    .bind(text.as_ref());
            }
            let mut chunk_seqs = query.fetch_all(&mut *tx).await?;
            // Both backends number the rows of a multi-row INSERT in the order
            // of its VALUES, but neither promises the order of RETURNING.
            chunk_seqs.sort_unstable();
            seqs.extend(chunk_seqs);
        }
        tx.commit().await?;
        Ok(seqs)
    }

    /// Lines of an execution (optionally one stage) with `seq > after`, oldest
    /// first, at most `limit` (and never more than 10 000).
    pub async fn logs(
        &self,
        execution_id: &str,
        stage_id: Option<&str>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<LogLine>, StoreError> {
        let limit = limit.min(MAX_PAGE);
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let query = match stage_id {
            None => sqlx::query(
                "SELECT seq, execution_id, stage_id, step, ts, stream, line FROM logs
                 WHERE execution_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(execution_id)
            .bind(after)
            .bind(limit),
            Some(stage_id) => sqlx::query(
                "SELECT seq, execution_id, stage_id, step, ts, stream, line FROM logs
                 WHERE execution_id = $1 AND stage_id = $2 AND seq > $3 ORDER BY seq LIMIT $4",
            )
            .bind(execution_id)
            .bind(stage_id)
            .bind(after)
            .bind(limit),
        };
        let rows = query
            .fetch_all(&self.reader)
            .await
            .map_err(read_error("logs"))?;
        rows.iter().map(log_from_row).collect()
    }
}

/// PostgreSQL's text cannot hold NUL, which a program's output may contain;
/// both backends store U+FFFD in its place, so a log reads the same on both.
fn storable(line: &str) -> Cow<'_, str> {
    if line.contains('\0') {
        Cow::Owned(line.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(line)
    }
}

fn insert_sql(backend: Backend, rows: usize) -> String {
    format!(
        "INSERT INTO logs (execution_id, stage_id, step, ts, stream, line) VALUES {} RETURNING seq",
        values(backend, rows, "(?, ?, ?, ?, ?, ?)")
    )
}

fn log_from_row(row: &AnyRow) -> Result<LogLine, StoreError> {
    let row = Row::new(row, "logs");
    Ok(LogLine {
        seq: row.get("seq")?,
        execution_id: row.get("execution_id")?,
        stage_id: row.get("stage_id")?,
        step: row.get("step")?,
        ts: row.get("ts")?,
        stream: row.stream("stream")?,
        line: row.get("line")?,
    })
}
