//! `checkPreconditions`: every expression must be true; all failures are
//! reported together.

use gantry_config::CheckPreconditionsStage;
use serde_json::Map;

use super::{StageContext, StageFailure, StageResult, StageRunner};
use crate::expressions;

impl StageRunner for gantry_config::stages::check_preconditions::CheckPreconditions {
    async fn run(ctx: &StageContext, spec: &gantry_config::CheckPreconditionsStage) -> StageResult {
        run(ctx, spec).await
    }
}

pub(crate) async fn run(ctx: &StageContext, spec: &CheckPreconditionsStage) -> StageResult {
    let mut failures = Vec::new();
    for precondition in &spec.preconditions {
        if let Some(size) = &precondition.cluster_size {
            if let Err(failure) = super::deploy_support::check_cluster_size(ctx, size).await {
                failures.push(precondition.message.clone().unwrap_or(failure));
            }
            continue;
        }
        match expressions::condition(&precondition.expression, &ctx.expressions) {
            Ok(true) => {}
            Ok(false) => failures.push(
                precondition
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("`{}` is false", precondition.expression)),
            ),
            Err(error) => failures.push(format!("`{}`: {error}", precondition.expression)),
        }
    }
    if failures.is_empty() {
        return Ok(Map::new());
    }
    for failure in &failures {
        ctx.log
            .system(&format!("precondition failed: {failure}"))
            .await;
    }
    Err(StageFailure::Failed(format!(
        "precondition failed: {}",
        failures.join("; ")
    )))
}
