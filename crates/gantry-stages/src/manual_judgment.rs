//! `manualJudgment`: waits, durably, until a person continues or stops the
//! execution. The decision is persisted before the person is answered.

use gantry_config::ManualJudgmentStage;
use gantry_store::Status;
use serde_json::{Map, Value, json};

use super::{StageContext, StageFailure, StageResult, StageRunner};
use crate::clock;
use gantry_engine::stage_kit::EngineError;
use gantry_engine::stage_kit::Judgment;
use gantry_engine::stage_kit::StageSignal;

impl StageRunner for gantry_config::stages::manual_judgment::ManualJudgment {
    async fn run(ctx: &StageContext, spec: &gantry_config::ManualJudgmentStage) -> StageResult {
        run(ctx, spec).await
    }
}

pub(crate) async fn run(ctx: &StageContext, spec: &ManualJudgmentStage) -> StageResult {
    // A decision persisted just before a crash is still the decision.
    if let Some(outcome) = decided(&ctx.state().await) {
        return outcome;
    }
    if let Err(error) = ctx.set_status(Status::Waiting).await {
        return Err(StageFailure::Failed(error.to_string()));
    }
    if let Some(instructions) = &spec.instructions
        && !ctx.resumed
    {
        ctx.log
            .system(&format!("waiting for a judgment: {instructions}"))
            .await;
    }
    loop {
        let Some((signal, reply)) = ctx.next_signal().await else {
            return Err(StageFailure::Canceled(ctx.cancel_reason().await));
        };
        let StageSignal::Judgment(judgment) = signal else {
            let _ = reply.send(Err(EngineError::Invalid(
                "a manual judgment cannot be skipped; approve or reject it".into(),
            )));
            continue;
        };
        let state = match record(spec, &judgment) {
            Ok(state) => state,
            Err(error) => {
                let _ = reply.send(Err(error));
                continue;
            }
        };
        if let Err(error) = ctx.save_state(state.clone()).await {
            let _ = reply.send(Err(error));
            continue;
        }
        if let Err(error) = ctx.set_status(Status::Running).await {
            let _ = reply.send(Err(error));
            continue;
        }
        let _ = reply.send(Ok(()));
        let verb = if judgment.proceed {
            "continued"
        } else {
            "stopped"
        };
        ctx.log
            .system(&format!("judgment: {verb} by {}", judgment.user))
            .await;
        return decided(&state).expect("a recorded judgment is decided");
    }
}

/// The durable record of a judgment, after checking the chosen option.
pub(super) fn record(
    spec: &ManualJudgmentStage,
    judgment: &Judgment,
) -> Result<Value, EngineError> {
    let option = match (&judgment.option, spec.options.is_empty()) {
        (Some(option), false) if !spec.options.contains(option) => {
            return Err(EngineError::Invalid(format!(
                "option {option:?} is not one of {}",
                spec.options.join(", ")
            )));
        }
        (Some(option), true) => {
            return Err(EngineError::Invalid(format!(
                "this judgment offers no options, got {option:?}"
            )));
        }
        (None, false) if judgment.proceed => {
            return Err(EngineError::Invalid(format!(
                "choose an option: {}",
                spec.options.join(", ")
            )));
        }
        (option, _) => option.clone(),
    };
    Ok(json!({
        "judgment": if judgment.proceed { "continue" } else { "stop" },
        "option": option,
        "judgedBy": judgment.user,
        "judgedAt": clock::now(),
    }))
}

fn decided(state: &Value) -> Option<StageResult> {
    let judgment = state.get("judgment")?.as_str()?;
    let by = state
        .get("judgedBy")
        .and_then(Value::as_str)
        .unwrap_or("someone");
    let mut outputs = Map::new();
    let chosen = state
        .get("option")
        .and_then(Value::as_str)
        .unwrap_or(judgment);
    outputs.insert("judgment".into(), Value::String(chosen.to_owned()));
    outputs.insert("judgedBy".into(), Value::String(by.to_owned()));
    if let Some(at) = state.get("judgedAt") {
        outputs.insert("judgedAt".into(), at.clone());
    }
    Some(match judgment {
        "continue" => Ok(outputs),
        _ => Err(StageFailure::Failed(format!(
            "stopped by {by} at the manual judgment"
        ))),
    })
}
