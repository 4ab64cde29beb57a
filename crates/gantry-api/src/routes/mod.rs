//! Request handlers, one file per resource.

pub mod apt;
pub mod artifacts;
pub mod deploy;
mod deploy_views;
pub mod events;
pub mod executions;
pub mod git;
pub mod hosts;
pub mod pipelines;
pub mod runners;
pub mod secrets;
pub mod system;
pub mod tokens;
pub mod webhooks;
