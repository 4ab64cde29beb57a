//! Stage types, the engine side. The orchestrator reaches them only through the
//! [`StageTypes`] it is given at construction (`EngineConfig::stage_types`). Each type
//! implements [`StageRunner`] on the unit struct `gantry-config` registers it with
//! (`gantry_config::with_stage_types!`); [`BuiltInStages`] dispatches generated from that one
//! list, so a registered type without a runner does not compile.
//! The deploy family's runners are together in `deploy_family.rs`.
//!
//! A stage must be resumable: `run` is called again, with `ctx.resumed`,
//! after a server restart found the stage running. Whatever a stage must not
//! do twice (send a request, start a child pipeline, run a finished step) it
//! records first in its durable state (`ctx.save_state`) or in the store.

mod bake;
mod check_preconditions;
mod context;
mod deploy;
mod deploy_family;
mod deploy_support;
mod find_image;
mod git_commit;
mod git_promote;
mod manual_judgment;
mod package_deb;
mod pipeline;
mod prune_images;
mod release;
mod run;
mod server_group;
mod wait;
mod webhook;

use std::time::Duration;

use futures::future::BoxFuture;

use crate::stage_types::StageTypes;
use gantry_config::{StageKind, StageType};
use serde_json::{Map, Value};

pub use context::StageContext;
pub(crate) use context::stage_log;

use crate::expressions;

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

/// The engine side of a stage type: running it. The config side (its spec, secrets,
/// signals, rendering) is the [`StageType`] it extends.
pub(crate) trait StageRunner: StageType {
    /// Runs the stage with its rendered spec. Called again with `ctx.resumed` after a
    /// restart found the stage running.
    async fn run(ctx: &StageContext, spec: &Self::Spec) -> StageResult;
}

/// Gantry's stage types, one per line of `gantry_config::with_stage_types!`.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuiltInStages;

impl StageTypes for BuiltInStages {
    fn run<'a>(&'a self, ctx: &'a StageContext, kind: &'a StageKind) -> BoxFuture<'a, StageResult> {
        Box::pin(run_kind(ctx, kind))
    }
}

/// Runs a stage: renders its expressions, applies its timeout, and runs the
/// stage type.
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
            let message = format!("timed out after {}", humanize(timeout));
            ctx.log.system(&message).await;
            Err(StageFailure::Failed(message))
        }
    }
}

macro_rules! define_dispatch {
    ($($variant:ident = $name:literal => $marker:path,)*) => {
        /// Runs the stage type `kind` names with its spec.
        async fn run_kind(ctx: &StageContext, kind: &StageKind) -> StageResult {
            match kind {
                $(StageKind::$variant(spec) => <$marker as StageRunner>::run(ctx, spec).await,)*
            }
        }
    };
}

gantry_config::with_stage_types!(define_dispatch);

pub(crate) fn humanize(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}
