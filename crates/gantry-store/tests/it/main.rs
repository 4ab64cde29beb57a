//! The store's integration tests. Each test is an `async fn(TestDb)` listed in
//! a `both!` line, which runs it twice: `…::sqlite` on a file in a temporary
//! directory and `…::postgres` in a fresh schema of the database named by
//! `GANTRY_TEST_POSTGRES_URL` (see `db.rs`; `scripts/start-postgres` prints a
//! URL that fits).

mod db;

mod apt_cleanup;
mod apt_landed;
mod apt_packs;
mod concurrency;
mod crash;
mod executions;
mod hosts;
mod logs;
mod open;
mod pipelines;
mod runners;
mod stages;
mod timing;
mod tokens;
mod ui_sessions;
