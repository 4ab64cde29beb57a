//! Turning rows into records and database errors into `StoreError`s. A value
//! that does not decode (bad JSON, an unknown status, a wrong type) makes the
//! row `Corrupt`; nothing here panics.

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::error::ErrorKind;
use sqlx::{Any, Decode, Row as _, Type};

use crate::model::{LogStream, Status};
use crate::store::{Backend, StoreError};

/// One row of `table`, read column by column.
pub(crate) struct Row<'r> {
    row: &'r AnyRow,
    table: &'static str,
}

impl<'r> Row<'r> {
    pub(crate) fn new(row: &'r AnyRow, table: &'static str) -> Row<'r> {
        Row { row, table }
    }

    pub(crate) fn get<T>(&self, column: &'static str) -> Result<T, StoreError>
    where
        T: for<'a> Decode<'a, Any> + Type<Any>,
    {
        self.row.try_get(column).map_err(read_error(self.table))
    }

    pub(crate) fn json(&self, column: &'static str) -> Result<Value, StoreError> {
        let text: String = self.get(column)?;
        serde_json::from_str(&text).map_err(|e| self.corrupt(column, e))
    }

    pub(crate) fn status(&self, column: &'static str) -> Result<Status, StoreError> {
        let text: String = self.get(column)?;
        text.parse().map_err(|e| self.corrupt(column, e))
    }

    pub(crate) fn stream(&self, column: &'static str) -> Result<LogStream, StoreError> {
        let text: String = self.get(column)?;
        stream_from_str(&text)
            .ok_or_else(|| self.corrupt(column, format!("unknown stream {text:?}")))
    }

    fn corrupt(&self, column: &str, error: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            table: self.table,
            message: format!("column {column}: {error}"),
        }
    }
}

/// Maps an error from reading `table`: a value that cannot be decoded is a
/// corrupt row, anything else a database error.
pub(crate) fn read_error(table: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |error| match error {
        sqlx::Error::ColumnDecode { index, source } => StoreError::Corrupt {
            table,
            message: format!("column {index}: {source}"),
        },
        sqlx::Error::Decode(source) => StoreError::Corrupt {
            table,
            message: source.to_string(),
        },
        error => StoreError::Database(error),
    }
}

/// The database error of a violated constraint, with its message (which names
/// the constraint on PostgreSQL and the columns on SQLite).
pub(crate) fn violation(error: &sqlx::Error, kind: ErrorKind) -> Option<String> {
    match error {
        sqlx::Error::Database(db) if db.kind() == kind => Some(db.message().to_owned()),
        _ => None,
    }
}

/// The rows of a multi-row `VALUES`: `rows` copies of `row`, in which each `?`
/// is a bind parameter. PostgreSQL wants them numbered (`$1, $2, …` across
/// all rows); SQLite gets plain `?`s, because sqlx looks a `$N` up by name,
/// a linear search in SQLite that makes a statement with thousands of
/// parameters take quadratic time.
pub(crate) fn values(backend: Backend, rows: usize, row: &str) -> String {
    let mut sql = String::with_capacity(rows * (row.len() + 20));
    let mut n = 0;
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        match backend {
            Backend::Sqlite => sql.push_str(row),
            Backend::Postgres => {
                for c in row.chars() {
                    if c == '?' {
                        n += 1;
                        sql.push('$');
                        sql.push_str(&n.to_string());
                    } else {
                        sql.push(c);
                    }
                }
            }
        }
    }
    sql
}

/// JSON columns are stored as text on both backends.
pub(crate) fn json_text(value: &Value) -> String {
    value.to_string()
}

pub(crate) fn stream_str(stream: LogStream) -> &'static str {
    match stream {
        LogStream::Stdout => "stdout",
        LogStream::Stderr => "stderr",
        LogStream::System => "system",
    }
}

fn stream_from_str(text: &str) -> Option<LogStream> {
    [LogStream::Stdout, LogStream::Stderr, LogStream::System]
        .into_iter()
        .find(|s| stream_str(*s) == text)
}
