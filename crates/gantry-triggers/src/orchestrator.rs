//! What triggers need from the orchestrator, and nothing more: start an execution, hear when
//! one ends, read a secret, and find the data directory. The engine implements it where the
//! server is wired (`gantry/src/serve.rs`), so this crate does not depend on the engine and
//! the stage implementations, registries and data plane behind it.

use std::path::Path;

use futures::future::BoxFuture;
use gantry_config::Pipeline;
use gantry_store::{Status, TriggerData};
use tokio::sync::mpsc;

/// The orchestrator, as triggers see it.
pub trait Orchestrator: Send + Sync + 'static {
    /// Validates and starts an execution; its id.
    fn start(&self, request: StartRequest) -> BoxFuture<'_, Result<String, StartError>>;

    /// Executions ending (any terminal status), from now on, for as long as the receiver is
    /// kept; the orchestrator says in its log when it had to drop some.
    fn endings(&self) -> mpsc::Receiver<Ended>;

    /// The secret store's secret `name`: `Ok(None)` when it does not exist.
    fn secret<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<String>, SecretError>>;

    /// The server's data directory (the fetch cache of external repositories lives there).
    fn data_dir(&self) -> &Path;
}

/// An execution a trigger starts.
#[derive(Clone, Debug)]
pub struct StartRequest {
    pub pipeline: String,
    pub trigger: TriggerData,
    /// What it runs instead of the applied pipeline (a trigger's `config:` file, read at the
    /// pushed commit and checked; or the applied one with the trigger's substitutions).
    pub spec: Option<Pipeline>,
    /// Parameters the trigger sets, over the pipeline's defaults.
    pub parameters: std::collections::BTreeMap<String, String>,
}

/// An execution that ended.
#[derive(Clone, Debug)]
pub struct Ended {
    pub execution: String,
    pub pipeline: String,
    pub status: Status,
}

/// Why the orchestrator did not start an execution, in its words.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// Why a secret cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("this server has no secret store")]
    NoStore,
    #[error("{0}")]
    Unreadable(String),
}
