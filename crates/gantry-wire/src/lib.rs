//! The request and response types of Gantry's HTTP API, shared by the server
//! (`gantry-api`), the CLI and the web UI. The JSON these types serialize to
//! is the wire format: renaming a field here changes the API, and the OpenAPI
//! document (generated from their `ToSchema` derives) changes with it.
//!
//! This crate holds shapes only: no I/O, no domain logic, and no dependency
//! heavier than serde and utoipa, so that any client can take it.

#![forbid(unsafe_code)]

pub mod apt;
pub mod deploy;
pub mod executions;
pub mod git;
pub mod hosts;
pub mod pipelines;
pub mod runners;
pub mod secrets;
pub mod tokens;

mod answers;

pub use answers::{DataplaneStopped, Deleted, Dropped, Revoked};
pub use executions::Status;

#[cfg(test)]
mod tests;
