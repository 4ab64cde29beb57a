//! Gantry's stage types: one module per type, each implementing [`StageRunner`] on the
//! unit struct `gantry-config` registers it with (`gantry_config::with_stage_types!`);
//! [`BuiltInStages`] dispatches generated from that one list, so a registered type without
//! a runner does not compile. The binary hands [`BuiltInStages`] to the engine
//! (`EngineConfig::stage_types`); the orchestrator reaches a stage only through it.
//! The deploy family's runners are together in `deploy_family.rs`.
//!
//! Stages reach the engine only through `gantry_engine::stage_kit`: the kit's modules are
//! imported once below, under the names the stage files use (`crate::clock`,
//! `crate::workspace_files`, …).
//!
//! A stage must be resumable: `run` is called again, with `ctx.resumed`,
//! after a server restart found the stage running. Whatever a stage must not
//! do twice (send a request, start a child pipeline, run a finished step) it
//! records first in its durable state (`ctx.save_state`) or in the store.

#![forbid(unsafe_code)]

mod bake;
mod check_preconditions;
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
mod services;
mod wait;
mod webhook;

use std::sync::Arc;

use futures::future::BoxFuture;
use gantry_config::{StageKind, StageType};

use gantry_engine::stage_kit::{
    EngineError, GitCredentialsError, StageTypes, artifact_store, builders, clock, clock::humanize,
    cloudbuild_file, executor, expressions, process, sealed, secret_lookup, trigger_env,
    workspace_files,
};
pub use gantry_engine::stage_kit::{Outputs, StageFailure, StageResult};
pub(crate) use services::StageContext;
pub use services::{ServicesError, StageServices};

/// A stage type's implementation: running it. The config side (its spec, secrets,
/// signals, rendering) is the [`StageType`] it extends.
pub(crate) trait StageRunner: StageType {
    /// Runs the stage with its rendered spec. Called again with `ctx.resumed` after a
    /// restart found the stage running.
    async fn run(ctx: &StageContext, spec: &Self::Spec) -> StageResult;
}

/// Gantry's stage types, one per line of `gantry_config::with_stage_types!`, with the
/// services they use.
#[derive(Clone, Debug)]
pub struct BuiltInStages {
    services: Arc<services::Services>,
}

impl BuiltInStages {
    pub fn new(services: StageServices) -> Result<BuiltInStages, ServicesError> {
        Ok(BuiltInStages {
            services: Arc::new(services::Services::new(services)?),
        })
    }
}

impl StageTypes for BuiltInStages {
    fn run<'a>(
        &'a self,
        ctx: &'a Arc<gantry_engine::stage_kit::StageContext>,
        kind: &'a StageKind,
    ) -> BoxFuture<'a, StageResult> {
        let ctx = StageContext::new(ctx.clone(), self.services.clone());
        Box::pin(async move { run_kind(&ctx, kind).await })
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

#[cfg(test)]
mod tests;
