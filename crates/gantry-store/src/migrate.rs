//! The schema migrations, embedded in the binary; see the crate docs for why
//! they are listed here rather than found by `sqlx::migrate!`.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use crate::store::{Backend, Store, StoreError};

/// `(version, description, sql)`, oldest first. A migration, once released, is
/// never edited (sqlx refuses to start on a changed checksum): add a new one,
/// to both lists.
type Embedded = &'static [(i64, &'static str, &'static str)];

const SQLITE: Embedded = &[
    (
        1,
        "initial",
        include_str!("../migrations/sqlite/0001_initial.sql"),
    ),
    (2, "git", include_str!("../migrations/sqlite/0002_git.sql")),
    (
        3,
        "steps",
        include_str!("../migrations/sqlite/0003_steps.sql"),
    ),
    (5, "apt", include_str!("../migrations/sqlite/0005_apt.sql")),
    (
        6,
        "concurrency",
        include_str!("../migrations/sqlite/0006_concurrency.sql"),
    ),
    (
        7,
        "apt_landed",
        include_str!("../migrations/sqlite/0007_apt_landed.sql"),
    ),
    (
        8,
        "apt_packs",
        include_str!("../migrations/sqlite/0008_apt_packs.sql"),
    ),
    (
        9,
        "token_roles",
        include_str!("../migrations/sqlite/0009_token_roles.sql"),
    ),
    (
        10,
        "runners",
        include_str!("../migrations/sqlite/0010_runners.sql"),
    ),
    (
        11,
        "cluster_claims",
        include_str!("../migrations/sqlite/0011_cluster_claims.sql"),
    ),
    (
        12,
        "trigger_switches",
        include_str!("../migrations/sqlite/0012_trigger_switches.sql"),
    ),
    (
        13,
        "ui_sessions",
        include_str!("../migrations/sqlite/0013_ui_sessions.sql"),
    ),
    (
        14,
        "hosts",
        include_str!("../migrations/sqlite/0014_hosts.sql"),
    ),
    (
        15,
        "stage_attempts",
        include_str!("../migrations/sqlite/0015_stage_attempts.sql"),
    ),
    (
        16,
        "webhook_deliveries",
        include_str!("../migrations/sqlite/0016_webhook_deliveries.sql"),
    ),
    (
        17,
        "stage_builders",
        include_str!("../migrations/sqlite/0017_stage_builders.sql"),
    ),
    (
        18,
        "trigger_deliveries",
        include_str!("../migrations/sqlite/0018_trigger_deliveries.sql"),
    ),
];

const POSTGRES: Embedded = &[
    (
        1,
        "initial",
        include_str!("../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "git",
        include_str!("../migrations/postgres/0002_git.sql"),
    ),
    (
        3,
        "steps",
        include_str!("../migrations/postgres/0003_steps.sql"),
    ),
    (
        5,
        "apt",
        include_str!("../migrations/postgres/0005_apt.sql"),
    ),
    (
        6,
        "concurrency",
        include_str!("../migrations/postgres/0006_concurrency.sql"),
    ),
    (
        7,
        "apt_landed",
        include_str!("../migrations/postgres/0007_apt_landed.sql"),
    ),
    (
        8,
        "apt_packs",
        include_str!("../migrations/postgres/0008_apt_packs.sql"),
    ),
    (
        9,
        "token_roles",
        include_str!("../migrations/postgres/0009_token_roles.sql"),
    ),
    (
        10,
        "runners",
        include_str!("../migrations/postgres/0010_runners.sql"),
    ),
    (
        11,
        "cluster_claims",
        include_str!("../migrations/postgres/0011_cluster_claims.sql"),
    ),
    (
        12,
        "trigger_switches",
        include_str!("../migrations/postgres/0012_trigger_switches.sql"),
    ),
    (
        13,
        "ui_sessions",
        include_str!("../migrations/postgres/0013_ui_sessions.sql"),
    ),
    (
        14,
        "hosts",
        include_str!("../migrations/postgres/0014_hosts.sql"),
    ),
    (
        15,
        "stage_attempts",
        include_str!("../migrations/postgres/0015_stage_attempts.sql"),
    ),
    (
        16,
        "webhook_deliveries",
        include_str!("../migrations/postgres/0016_webhook_deliveries.sql"),
    ),
    (
        17,
        "stage_builders",
        include_str!("../migrations/postgres/0017_stage_builders.sql"),
    ),
    (
        18,
        "trigger_deliveries",
        include_str!("../migrations/postgres/0018_trigger_deliveries.sql"),
    ),
];

/// Applies the migrations this database has not seen yet, each in its own
/// transaction (on PostgreSQL under an advisory lock, so that replicas
/// starting together apply each migration once).
pub(crate) async fn run(store: &Store) -> Result<(), StoreError> {
    let migrator = Migrator::new(Migrations(migrations(store.backend))).await?;
    migrator.run(&store.writer).await?;
    Ok(())
}

/// Checks, without changing anything, that the database has exactly this
/// binary's migrations applied: for a command that opens another process's
/// database (a server's), which must never migrate it from under that
/// process nor read it with a schema it does not know.
pub(crate) async fn check_current(store: &Store) -> Result<(), StoreError> {
    let expected = migrations(store.backend).last().map_or(0, |m| m.0);
    let applied: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE")
            .fetch_one(&store.reader)
            .await
            .unwrap_or(None);
    match applied {
        Some(applied) if applied == expected => Ok(()),
        applied => Err(StoreError::SchemaMismatch {
            applied: applied.unwrap_or(0),
            expected,
        }),
    }
}

fn migrations(backend: Backend) -> Embedded {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

#[derive(Debug)]
struct Migrations(Embedded);

impl<'s> MigrationSource<'s> for Migrations {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        let migrations = self
            .0
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    false,
                )
            })
            .collect();
        Box::pin(std::future::ready(Ok(migrations)))
    }
}

#[cfg(test)]
mod tests;
