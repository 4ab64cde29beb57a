//! The seam between the orchestrator and the stage implementations: the engine is given
//! the stage types it runs when it is built, and reaches a stage's implementation only
//! through them.

use std::sync::Arc;

use futures::future::BoxFuture;
use gantry_config::StageKind;

use crate::stages::{StageContext, StageFailure, StageResult};

/// The stage types an engine runs: dispatches a stage's kind to its implementation.
pub trait StageTypes: Send + Sync {
    /// Runs the stage type `kind` names with its rendered spec.
    fn run<'a>(&'a self, ctx: &'a StageContext, kind: &'a StageKind) -> BoxFuture<'a, StageResult>;
}

/// The stage types handed to an engine (`EngineConfig::stage_types`). The default has
/// none, for engines that never run a stage (applying files in tests): each stage then
/// fails saying so.
#[derive(Clone, Default)]
pub struct StageRegistry(Option<Arc<dyn StageTypes>>);

impl StageRegistry {
    pub fn new(stage_types: impl StageTypes + 'static) -> StageRegistry {
        StageRegistry(Some(Arc::new(stage_types)))
    }

    pub(crate) async fn run(&self, ctx: &StageContext, kind: &StageKind) -> StageResult {
        match &self.0 {
            Some(stage_types) => stage_types.run(ctx, kind).await,
            None => Err(StageFailure::Failed(format!(
                "this engine was built without stage types: it cannot run a {} stage",
                kind.type_name()
            ))),
        }
    }
}

impl std::fmt::Debug for StageRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "StageRegistry"
        } else {
            "StageRegistry(none)"
        })
    }
}

#[cfg(test)]
mod tests;
