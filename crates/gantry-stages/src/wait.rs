//! `wait`: pauses for a duration; a person can skip the rest. The deadline is
//! recorded when the wait starts, so a restart resumes the remaining time.

use std::time::Duration;

use gantry_config::WaitStage;
use serde_json::{Map, Value, json};

use super::{StageContext, StageFailure, StageResult, StageRunner};
use crate::clock;
use gantry_engine::stage_kit::StageSignal;

impl StageRunner for gantry_config::stages::wait::Wait {
    async fn run(ctx: &StageContext, spec: &gantry_config::WaitStage) -> StageResult {
        run(ctx, spec).await
    }
}

pub(crate) async fn run(ctx: &StageContext, spec: &WaitStage) -> StageResult {
    let state = ctx.state().await;
    let deadline = match state.get("deadline").and_then(Value::as_i64) {
        Some(deadline) => deadline,
        None => {
            let deadline = ctx.started_at + spec.duration.as_millis() as i64;
            if let Err(error) = ctx.save_state(json!({ "deadline": deadline })).await {
                return Err(StageFailure::Failed(error.to_string()));
            }
            deadline
        }
    };
    let left = Duration::from_millis((deadline - clock::now()).max(0) as u64);
    let sleep = tokio::time::sleep(left);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = &mut sleep => return Ok(Map::new()),
            signal = ctx.next_signal() => match signal {
                None => return Err(StageFailure::Canceled(ctx.cancel_reason().await)),
                Some((StageSignal::Skip, reply)) => {
                    ctx.log.system("wait skipped").await;
                    let _ = reply.send(Ok(()));
                    let mut outputs = Map::new();
                    outputs.insert("skipped".into(), Value::Bool(true));
                    return Ok(outputs);
                }
                Some((StageSignal::Judgment(_), reply)) => {
                    let _ = reply.send(Err(crate::EngineError::Invalid("a wait stage takes no judgment".into())));
                }
            }
        }
    }
}
