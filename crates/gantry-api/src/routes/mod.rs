//! Request handlers, one file per resource.

pub mod events;
pub mod executions;
pub mod pipelines;
pub mod system;
pub mod tokens;
