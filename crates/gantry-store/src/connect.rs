//! From a database URL to the pools of a `Store`.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnectionMetadata;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyConnection, ConnectOptions, Connection, Executor};

use crate::store::{Backend, Store, StoreError};

/// Readers on SQLite; WAL lets them run next to the one writer.
const SQLITE_READERS: u32 = 4;
/// Connections to PostgreSQL, shared by reads and writes.
const POSTGRES_CONNECTIONS: u32 = 8;

/// Set on every SQLite connection. WAL with `synchronous = NORMAL` makes a
/// commit durable against a crash of the process (kill -9), though not of the
/// machine, and keeps commits free of fsync; the busy timeout covers another
/// process holding the lock (the pool already serialises our own writers).
const SQLITE_WRITER_PRAGMAS: &str = "PRAGMA busy_timeout = 10000;
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA foreign_keys = ON;";

/// What a store opened for one command sets on every SQLite connection: a
/// page cache of 512 KiB instead of SQLite's 2 MiB default. A command
/// streams through its rows once; the caches were most of the memory a
/// `gantry apt --local` publish held beyond its code.
const SQLITE_COMMAND_PRAGMAS: &str = "PRAGMA cache_size = -512;";

/// Who the store is opened for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Footprint {
    /// A long-running server: several readers, default caches.
    Server,
    /// One command that runs and exits: one reader, small caches.
    Command,
}

/// `query_only` makes sure nothing but the writer pool ever writes.
const SQLITE_READER_PRAGMAS: &str = "PRAGMA busy_timeout = 10000;
PRAGMA query_only = ON;";

pub(crate) async fn connect(url: &str, footprint: Footprint) -> Result<Store, StoreError> {
    sqlx::any::install_default_drivers();
    if let Some(path) = sqlite_path(url) {
        if path.is_empty() || path == ":memory:" || path.contains('?') {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        }
        connect_sqlite(Path::new(path), footprint).await
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        connect_postgres(url, footprint).await
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

fn sqlite_path(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
}

async fn connect_sqlite(path: &Path, footprint: Footprint) -> Result<Store, StoreError> {
    let (readers, extra_pragmas) = match footprint {
        Footprint::Server => (SQLITE_READERS, ""),
        Footprint::Command => (1, SQLITE_COMMAND_PRAGMAS),
    };
    // sqlx's `Any` driver only takes URLs. sqlx builds one from the absolute
    // path that it parses back into the same file name (percent-encoding
    // spaces, `?`, `#`…), which the URL we were given, perhaps relative,
    // would not always be. It leaves `%` alone but decodes it when parsing,
    // hence the escape.
    let path = std::path::absolute(path).map_err(sqlx::Error::Io)?;
    let escaped = path.to_string_lossy().replace('%', "%25");
    let file = SqliteConnectOptions::new().filename(escaped);
    let writer_url = file.clone().create_if_missing(true).to_url_lossy();
    let reader_url = file.to_url_lossy();

    // The writer connects first: it creates the file and switches it to WAL,
    // which readers then find in place.
    let writer = AnyPoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .after_release(outside_any_transaction)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                conn.execute(SQLITE_WRITER_PRAGMAS).await?;
                if !extra_pragmas.is_empty() {
                    conn.execute(extra_pragmas).await?;
                }
                Ok(())
            })
        })
        .connect_with(AnyConnectOptions::from_url(&writer_url)?)
        .await?;
    let reader = AnyPoolOptions::new()
        .max_connections(readers)
        .idle_timeout(Duration::from_secs(600))
        .max_lifetime(None)
        .after_release(outside_any_transaction)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                conn.execute(SQLITE_READER_PRAGMAS).await?;
                if !extra_pragmas.is_empty() {
                    conn.execute(extra_pragmas).await?;
                }
                Ok(())
            })
        })
        .connect_with(AnyConnectOptions::from_url(&reader_url)?)
        .await?;
    Ok(Store {
        backend: Backend::Sqlite,
        writer,
        reader,
        pipeline_changes: Default::default(),
    })
}

/// Whether a connection handed back may serve the next caller: only outside
/// a transaction. sqlx ends a dropped transaction by queueing a `ROLLBACK`,
/// which the ping waits for. If that `ROLLBACK` fails (SQLite has already
/// ended the transaction itself, as it does after some errors), sqlx still
/// counts the connection as inside one and refuses every later `BEGIN` on
/// it; with one writer connection that stopped every write of the server
/// until restart. Such a connection is closed, and the pool opens another.
fn outside_any_transaction(
    conn: &mut AnyConnection,
    _: PoolConnectionMetadata,
) -> BoxFuture<'_, Result<bool, sqlx::Error>> {
    Box::pin(async move {
        // The common case, a connection outside any transaction, costs no round trip to
        // the connection's worker: the one SQLite writer is released after every write.
        if !conn.is_in_transaction() {
            return Ok(true);
        }
        conn.ping().await?;
        if conn.is_in_transaction() {
            tracing::warn!("a database connection came back inside a transaction; closing it");
            return Ok(false);
        }
        Ok(true)
    })
}

async fn connect_postgres(url: &str, footprint: Footprint) -> Result<Store, StoreError> {
    let options = AnyConnectOptions::from_str(url)?;
    // The pool retries a failed connection until its acquire timeout (30 s);
    // a server that is not there, or a wrong password, should fail the start
    // at once instead.
    AnyConnection::connect_with(&options).await?.close().await?;
    let pool = AnyPoolOptions::new()
        .max_connections(match footprint {
            Footprint::Server => POSTGRES_CONNECTIONS,
            Footprint::Command => 4,
        })
        .after_release(outside_any_transaction)
        .connect_with(options)
        .await?;
    Ok(Store {
        backend: Backend::Postgres,
        writer: pool.clone(),
        reader: pool,
        pipeline_changes: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    /// The failure CI met: a transaction's `ROLLBACK` failing left the one
    /// writer connection counted as inside a transaction, and every later
    /// write failed with "attempted to call begin_with at non-zero
    /// transaction depth". Ending the transaction behind sqlx's back makes
    /// its own `ROLLBACK` fail the same way.
    #[tokio::test]
    async fn a_write_after_a_failed_rollback_gets_a_clean_connection() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("gantry.db").display());
        let store = crate::Store::open(&url).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        sqlx::query("ROLLBACK").execute(&mut *tx).await.unwrap();
        drop(tx);
        let tx = store.begin().await.expect("a later write begins");
        tx.commit().await.unwrap();
    }
}
