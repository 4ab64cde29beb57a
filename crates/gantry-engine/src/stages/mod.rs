//! Stage types. Each module has one `run(ctx, spec) -> Outcome` function.
//!
//! A stage must be resumable: `run` is called again, with `ctx.resumed`,
//! after a server restart found the stage running. Whatever a stage must not
//! do twice (send a request, start a child pipeline, run a finished step) it
//! records first in its durable state (`ctx.save_state`) or in the store.

mod check_preconditions;
mod context;
mod manual_judgment;
mod pipeline;
mod run;
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
        StageKind::Wait(spec) => wait::run(ctx, spec).await,
        StageKind::ManualJudgment(spec) => manual_judgment::run(ctx, spec).await,
        StageKind::Pipeline(spec) => pipeline::run(ctx, spec).await,
        StageKind::Webhook(spec) => webhook::run(ctx, spec).await,
        StageKind::CheckPreconditions(spec) => check_preconditions::run(ctx, spec).await,
    }
}

pub(crate) fn humanize(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}
