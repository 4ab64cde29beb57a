//! The seam between the orchestrator and the stage implementations: the engine is given
//! the stage types it runs when it is built, and reaches a stage's implementation only
//! through them. What a stage returns ([`StageResult`]) is defined here, on the engine's
//! side, and so is what happens around every stage: rendering its expressions, its
//! timeout ([`execute`]).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use gantry_config::StageKind;
use serde_json::{Map, Value};

use crate::expressions;
use crate::stage_context::StageContext;

/// What a stage adds to its outputs when it succeeds.
pub type Outputs = Map<String, Value>;

/// How a stage ends: its outputs, or why it did not succeed.
pub type StageResult = Result<Outputs, StageFailure>;

/// Why a stage did not succeed; the message is shown to people as is.
#[derive(Debug, thiserror::Error)]
pub enum StageFailure {
    #[error("{0}")]
    Failed(String),
    /// Stopped on purpose (the execution was canceled, a child pipeline or a polled job
    /// was).
    #[error("{0}")]
    Canceled(String),
}

/// The stage types an engine runs: dispatches a stage's kind to its implementation.
pub trait StageTypes: Send + Sync {
    /// Runs the stage type `kind` names with its rendered spec. The context is shared so
    /// that an implementation may keep it beside services of its own for the stage's run.
    fn run<'a>(
        &'a self,
        ctx: &'a Arc<StageContext>,
        kind: &'a StageKind,
    ) -> BoxFuture<'a, StageResult>;
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

    pub(crate) async fn run(&self, ctx: &Arc<StageContext>, kind: &StageKind) -> StageResult {
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

/// Runs a stage: renders its expressions, applies its timeout, and runs the
/// stage type through the registry.
pub(crate) async fn execute(ctx: StageContext) -> StageResult {
    let kind = match expressions::render_stage(&ctx.spec.kind, &ctx.expressions) {
        Ok(kind) => kind,
        Err(error) => return Err(StageFailure::Failed(format!("expression: {error}"))),
    };
    if ctx.resumed {
        ctx.log
            .system("server restarted: resuming this stage")
            .await;
    }
    let ctx = Arc::new(ctx);
    let run = ctx.stage_types().run(&ctx, &kind);
    let Some(timeout) = ctx.spec.timeout else {
        return run.await;
    };
    let elapsed = Duration::from_millis((crate::clock::now() - ctx.started_at).max(0) as u64);
    let left = timeout.saturating_sub(elapsed);
    tokio::pin!(run);
    tokio::select! {
        result = &mut run => result,
        _ = tokio::time::sleep(left) => {
            // Let the stage stop what it started before reporting.
            ctx.cancel.cancel();
            let _ = run.await;
            let message = format!("timed out after {}", crate::clock::humanize(timeout));
            ctx.log.system(&message).await;
            Err(StageFailure::Failed(message))
        }
    }
}

#[cfg(test)]
mod tests;
