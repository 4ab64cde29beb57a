//! `checkPreconditions`: every expression must be true; all failures are
//! reported together.

use gantry_config::CheckPreconditionsStage;
use serde_json::Map;

use super::{Outcome, StageContext};
use crate::expressions;

pub(crate) async fn run(ctx: &StageContext, spec: &CheckPreconditionsStage) -> Outcome {
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
        return Outcome::Succeeded(Map::new());
    }
    for failure in &failures {
        ctx.log
            .system(&format!("precondition failed: {failure}"))
            .await;
    }
    Outcome::Failed(format!("precondition failed: {}", failures.join("; ")))
}
