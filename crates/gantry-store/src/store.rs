//! The `Store` handle: opening, closing, and what every method shares (the
//! pools, transactions, errors). The methods themselves live in one file per
//! kind of record (`pipelines.rs`, `executions.rs`, …). Every method is one
//! transaction; a method that changes several rows changes all or none.

use sqlx::AnyPool;
use sqlx::{Any, Transaction};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("{kind} {id:?} not found")]
    NotFound { kind: &'static str, id: String },
    #[error("{kind} {id:?} already exists")]
    Conflict { kind: &'static str, id: String },
    #[error("unsupported database url {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error(
        "the database is at schema version {applied}, this gantry's is {expected}: open it with the gantry that serves it"
    )]
    SchemaMismatch { applied: i64, expected: i64 },
    #[error("corrupt row in {table}: {message}")]
    Corrupt {
        table: &'static str,
        message: String,
    },
}

/// A handle on the database; cheap to clone (clones share the pools).
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) backend: Backend,
    /// Every write goes through this pool. On SQLite it holds exactly one
    /// connection: SQLite admits one writer at a time, and queueing writers
    /// here (fairly, in the pool) instead of in SQLite's busy handler means no
    /// write ever fails with `SQLITE_BUSY` however many tasks write at once.
    pub(crate) writer: AnyPool,
    /// Reads. On SQLite a separate pool of `query_only` connections, which WAL
    /// lets read while the writer writes; on PostgreSQL the same pool as
    /// `writer`.
    pub(crate) reader: AnyPool,
    /// Bumped after this process changed the applied pipelines; see
    /// [`Store::pipeline_changes`].
    pub(crate) pipeline_changes: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

impl Store {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH`,
    /// `sqlite:PATH` or `postgres://…`) and runs pending migrations.
    ///
    /// A SQLite `PATH` is a file path taken literally (relative to the current
    /// directory unless absolute); its directory must exist.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, crate::connect::Footprint::Server).await
    }

    /// [`Store::open`] for one command that runs and exits (`gantry apt
    /// --local`): fewer connections, smaller page caches.
    pub async fn open_for_command(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, crate::connect::Footprint::Command).await
    }

    /// Opens a database another process owns (a server's), read and
    /// written as it is: nothing is migrated, and a schema other than this
    /// binary's is refused.
    pub async fn open_existing(url: &str) -> Result<Store, StoreError> {
        let store = crate::connect::connect(url, crate::connect::Footprint::Command).await?;
        crate::migrate::check_current(&store).await?;
        Ok(store)
    }

    async fn open_with(
        url: &str,
        footprint: crate::connect::Footprint,
    ) -> Result<Store, StoreError> {
        let store = crate::connect::connect(url, footprint).await?;
        crate::migrate::run(&store).await?;
        tracing::debug!(backend = ?store.backend, "store open, migrations applied");
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Waits for the connections in use to be returned, then closes them all.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so that another process writing the same file
    /// makes it wait in the busy handler rather than fail halfway through.
    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Any>, StoreError> {
        let tx = match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writer.begin().await?,
        };
        Ok(tx)
    }
}
