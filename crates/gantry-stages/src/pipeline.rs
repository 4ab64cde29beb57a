//! `pipeline`: starts another pipeline and, unless told not to, waits for it.
//!
//! The child is created with a unique reference to this stage's attempt, so
//! after a restart the stage finds its child instead of starting a second one.

use gantry_config::PipelineStage;
use gantry_store::{
    Cause, ChildOf, ExecutionRecord, ParentRef, PipelineCause, Status, StoreError, TriggerData,
};
use serde_json::{Map, Value};

use super::{StageContext, StageFailure, StageResult, StageRunner};
use gantry_engine::stage_kit::EngineError;
use gantry_engine::stage_kit::Event;
use gantry_engine::stage_kit::RunRequest;

impl StageRunner for gantry_config::stages::pipeline::Pipeline {
    async fn run(ctx: &StageContext, spec: &gantry_config::PipelineStage) -> StageResult {
        run(ctx, spec).await
    }
}

pub(crate) async fn run(ctx: &StageContext, spec: &PipelineStage) -> StageResult {
    // Subscribe before looking at the child, so its end cannot slip between.
    let mut events = ctx.subscribe();
    let child = match child(ctx, spec).await {
        Ok(child) => child,
        Err(error) => {
            return Err(StageFailure::Failed(format!(
                "cannot start pipeline {:?}: {error}",
                spec.pipeline
            )));
        }
    };
    let mut outputs = Map::new();
    outputs.insert("executionId".into(), Value::String(child.id.clone()));
    if !spec.wait_for_completion {
        ctx.log
            .system(&format!(
                "started pipeline {} as execution {}",
                spec.pipeline, child.id
            ))
            .await;
        return Ok(outputs);
    }
    if !ctx.resumed {
        ctx.log
            .system(&format!(
                "started pipeline {} as execution {}; waiting for it",
                spec.pipeline, child.id
            ))
            .await;
    }
    let mut status = child.status;
    while !status.is_terminal() {
        tokio::select! {
            event = events.recv() => match event {
                Ok(Event::Execution { execution_id, status: s, .. }) if execution_id == child.id => status = s,
                Ok(_) => {}
                // Missed events: read the truth from the store.
                Err(_) => {
                    events = events.resubscribe();
                    status = match ctx.store().execution(&child.id).await {
                        Ok(Some(record)) => record.status,
                        Ok(None) => return Err(StageFailure::Failed(format!("child execution {} disappeared", child.id))),
                        Err(error) => return Err(StageFailure::Failed(error.to_string())),
                    };
                }
            },
            _ = ctx.cancel.cancelled() => {
                let _ = ctx.cancel_execution(&child.id, "parent pipeline").await;
                return Err(StageFailure::Canceled(ctx.cancel_reason().await));
            }
        }
    }
    outputs.insert("status".into(), Value::String(status.as_str().to_owned()));
    if let Ok(stages) = ctx.store().stages(&child.id).await {
        let child_outputs: Map<String, Value> = stages
            .into_iter()
            .map(|s| (s.stage_id, s.outputs))
            .collect();
        outputs.insert("stages".into(), Value::Object(child_outputs));
    }
    match status {
        Status::Succeeded => Ok(outputs),
        Status::Canceled => Err(StageFailure::Canceled(format!(
            "child execution {} was canceled",
            child.id
        ))),
        other => Err(StageFailure::Failed(format!(
            "child pipeline {} execution {} {other}",
            spec.pipeline, child.id
        ))),
    }
}

/// This attempt's child execution, started now if it does not exist yet.
async fn child(ctx: &StageContext, spec: &PipelineStage) -> Result<ExecutionRecord, EngineError> {
    let parent = ParentRef {
        execution: ctx.execution_id.clone(),
        stage: ctx.stage_id.clone(),
        attempt: ctx.attempt,
    };
    if let Some(existing) = ctx.store().child_execution(&parent).await? {
        return Ok(existing);
    }
    let trigger = {
        let exec = ctx.execution_record().await;
        TriggerData::new(Cause::Pipeline(PipelineCause::Child(ChildOf {
            parent_execution: exec.id.clone(),
            parent_pipeline: exec.pipeline.clone(),
            parent_stage: ctx.stage_id.clone(),
            user: exec
                .trigger
                .get("user")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })))
    };
    let request = RunRequest {
        pipeline: spec.pipeline.clone(),
        parameters: spec.parameters.clone().into_iter().collect(),
        trigger,
        spec: None,
    };
    match ctx.start_child_execution(request, parent.clone()).await {
        Err(EngineError::Store(StoreError::Conflict { .. })) => ctx
            .store()
            .child_execution(&parent)
            .await?
            .ok_or_else(|| EngineError::Invalid("child execution vanished".into())),
        other => other,
    }
}
