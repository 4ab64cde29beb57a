//! Gantry's persistent state: pipelines, executions, stages, steps, logs and
//! API tokens, on SQLite (embedded default) or PostgreSQL.
//!
//! Only this crate writes SQL. Callers see typed records (`model`) and typed
//! errors; JSON columns stay opaque `serde_json::Value`s so the store never
//! depends on the pipeline format or the engine.
//!
//! # One implementation, two databases
//!
//! Every query goes through sqlx's `Any` driver as runtime SQL (no query
//! macros, so building needs no database). The SQL is the subset both
//! databases speak: `$N` placeholders (which SQLite accepts too), `BIGINT`
//! millisecond timestamps, JSON as `TEXT`, statuses as `TEXT`,
//! `INSERT … ON CONFLICT … RETURNING`. Where the two differ in substance it
//! is said where it happens:
//!
//! - SQLite (`sqlite://PATH`, `sqlite:PATH`; the file is created if missing)
//!   runs in WAL mode with `synchronous = NORMAL`: a committed transaction
//!   survives a crash of the process. It has one writer: all writes share a
//!   pool of one connection, so concurrent writers queue in the pool instead
//!   of failing with `SQLITE_BUSY`; reads use a pool of `query_only`
//!   connections beside it (see `connect.rs`).
//! - PostgreSQL (`postgres://…`) uses one pool of a few connections for both.
//!
//! # Migrations
//!
//! `migrations/sqlite` and `migrations/postgres` hold the schema, one file per
//! version in each, kept in step. `Store::open` applies what a database has
//! not seen yet. The files are embedded with `include_str!` and listed in
//! `migrate.rs` rather than found by `sqlx::migrate!`: that macro needs sqlx's
//! `macros` feature, which compiles sqlx and both database drivers (bundled
//! SQLite included) a second time, for the proc-macro, on every clean build.
//! A unit test checks that the lists match the folders.

#![forbid(unsafe_code)]

mod apt;
mod apt_cleanup;
mod apt_landed;
mod bakes;
mod cluster_claims;
mod concurrency;
mod connect;
mod executions;
mod git;
mod hosts;
mod logs;
mod migrate;
mod model;
mod pipelines;
mod rows;
mod runners;
mod secrets;
mod stage_builders;
mod stages;
mod store;
mod tokens;
mod trigger_data;
mod ui_sessions;
mod webhook_deliveries;

pub use apt::{
    AptPackLocation, AptPackageFile, AptPackageKey, AptPackageRecord, AptParagraph,
    AptPublicationRecord, AptRepoRecord, AptSnapshotRecord, AptSource,
};
pub use apt_cleanup::AptStoredPackage;
pub use apt_landed::{AptLanded, AptLandedRecord};
pub use bakes::BakeRecord;
pub use cluster_claims::ClusterClaim;
pub use concurrency::SlotClaim;
pub use hosts::HostRecord;
pub use model::*;
pub use pipelines::PipelinesFingerprint;
pub use runners::{JobState, RunnerJobRecord, RunnerRecord, RunnerTokenRecord};
pub use secrets::SecretRecord;
pub use store::{Backend, Store, StoreError};
pub use trigger_data::{
    Cause, ChildOf, GitPush, PipelineCause, TriggerData, UnreadableTrigger, Upstream, UpstreamEnded,
};
pub use ui_sessions::UiSessionRecord;
pub use webhook_deliveries::{DeliveryFilter, WEBHOOK_DELIVERIES_KEPT, WebhookDeliveryRecord};
