//! Stage types. Each module has one `run(ctx, spec) -> Outcome` function.
//!
//! A stage must be resumable: `run` is called again, with `ctx.resumed`,
//! after a server restart found the stage running. Whatever a stage must not
//! do twice (send a request, start a child pipeline, run a finished step) it
//! records first in its durable state (`ctx.save_state`) or in the store.

mod bake;
mod check_preconditions;
mod context;
mod deploy;
mod deploy_support;
mod find_image;
mod git_commit;
mod git_promote;
mod manual_judgment;
mod package_deb;
mod pipeline;
mod release;
mod run;
mod server_group;
mod wait;
mod webhook;

use std::time::Duration;

use gantry_config::StageKind;
use serde_json::{Map, Value};

pub(crate) use context::{StageContext, stage_log};

use crate::expressions;

/// How a stage ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Outputs are merged into the stage's outputs.
    Succeeded(Map<String, Value>),
    Failed(String),
    Canceled(String),
}

/// Runs a stage: renders its expressions, applies its timeout, and runs the
/// stage type.
pub(crate) async fn execute(ctx: StageContext) -> Outcome {
    let kind = match expressions::render_stage(&ctx.spec.kind, &ctx.expressions) {
        Ok(kind) => kind,
        Err(error) => return Outcome::Failed(format!("expression: {error}")),
    };
    if ctx.resumed {
        ctx.log
            .system("server restarted: resuming this stage")
            .await;
    }
    let run = run_kind(&ctx, &kind);
    let Some(timeout) = ctx.spec.timeout else {
        return run.await;
    };
    let elapsed = Duration::from_millis((crate::clock::now() - ctx.started_at).max(0) as u64);
    let left = timeout.saturating_sub(elapsed);
    tokio::pin!(run);
    tokio::select! {
        outcome = &mut run => outcome,
        _ = tokio::time::sleep(left) => {
            // Let the stage stop what it started before reporting.
            ctx.cancel.cancel();
            let _ = run.await;
            let message = format!("timed out after {}", humanize(timeout));
            ctx.log.system(&message).await;
            Outcome::Failed(message)
        }
    }
}

async fn run_kind(ctx: &StageContext, kind: &StageKind) -> Outcome {
    match kind {
        StageKind::Run(spec) => run::run(ctx, spec).await,
        StageKind::Release(spec) => release::run(ctx, spec).await,
        StageKind::GitCommit(spec) => git_commit::commit(ctx, spec).await,
        StageKind::GitPromote(spec) => git_promote::run(ctx, spec).await,
        StageKind::Wait(spec) => wait::run(ctx, spec).await,
        StageKind::ManualJudgment(spec) => manual_judgment::run(ctx, spec).await,
        StageKind::Pipeline(spec) => pipeline::run(ctx, spec).await,
        StageKind::Webhook(spec) => webhook::run(ctx, spec).await,
        StageKind::CheckPreconditions(spec) => check_preconditions::run(ctx, spec).await,
        StageKind::Deploy(spec) => deploy::run(ctx, spec).await,
        StageKind::ResizeServerGroup(spec) => server_group::resize(ctx, spec).await,
        StageKind::EnableServerGroup(spec) => {
            server_group::run_action(ctx, spec, server_group::Action::Enable).await
        }
        StageKind::DisableServerGroup(spec) => {
            server_group::run_action(ctx, spec, server_group::Action::Disable).await
        }
        StageKind::DestroyServerGroup(spec) => {
            server_group::run_action(ctx, spec, server_group::Action::Destroy).await
        }
        StageKind::RollbackCluster(spec) => server_group::rollback(ctx, spec).await,
        StageKind::ScaleDownCluster(spec) => server_group::scale_down_cluster(ctx, spec).await,
        StageKind::PackageDeb(spec) => package_deb::package(ctx, spec).await,
        StageKind::PublishDeb(spec) => package_deb::publish(ctx, spec).await,
        StageKind::Bake(spec) => bake::run(ctx, spec).await,
        StageKind::FindImage(spec) => find_image::run(ctx, spec).await,
    }
}

pub(crate) fn humanize(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}
