//! Integration tests: the real `gantry serve` on a free port, driven through
//! the real CLI and the HTTP API.
//!
//! Engine scenarios run on SQLite and, when `GANTRY_TEST_POSTGRES_URL` names
//! a PostgreSQL server (any database on it; each test creates its own), on
//! PostgreSQL too.

mod harness;
mod webhook_target;

mod api;
mod auth;
mod engine;
mod files;
