//! Store records in the wire model's shapes (`gantry_wire`): timestamps as
//! RFC 3339 strings with milliseconds (`null` when absent), secrets masked.
//! Nothing here touches the store.

use std::time::{Duration, UNIX_EPOCH};

use gantry_config::{Signal, StageKind};
use gantry_store::{
    ExecutionRecord, LogLine, LogStream, Millis, PipelineRecord, StageAttemptRecord, StageRecord,
    Status, TokenRecord,
};
use gantry_wire::Status as WireStatus;
use gantry_wire::executions::{
    Execution, JudgmentPrompt, LogLine as LogLineView, Parent, Stage, StageAttempt, StageSignal,
};
use gantry_wire::pipelines::Pipeline;
use gantry_wire::tokens::Token;
use serde_json::Value;

/// What a secret parameter's value is replaced with in every view.
pub const MASK: &str = "********";

pub fn timestamp(millis: Millis) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

fn opt_timestamp(millis: Option<Millis>) -> Option<String> {
    millis.map(timestamp)
}

/// A stored pipeline; its spec only when `with_spec`.
pub fn pipeline(record: PipelineRecord, with_spec: bool) -> Pipeline {
    Pipeline {
        stages: record
            .spec
            .get("stages")
            .and_then(Value::as_array)
            .map_or(0, Vec::len),
        name: record.name,
        application: record.application,
        version: record.version,
        created_at: timestamp(record.created_at),
        updated_at: timestamp(record.updated_at),
        spec: with_spec.then_some(record.spec),
    }
}

/// The execution with its stages, in the order of the pipeline file.
pub fn execution(record: ExecutionRecord, stages: Option<Vec<StageRecord>>) -> Execution {
    let stages = stages.map(|stages| stage_views(&record.spec, stages));
    Execution {
        parameters: mask_sealed(mask_secrets(&record.spec, record.parameters)),
        id: record.id,
        pipeline: record.pipeline,
        status: status(record.status),
        trigger: record.trigger,
        created_at: timestamp(record.created_at),
        started_at: opt_timestamp(record.started_at),
        ended_at: opt_timestamp(record.ended_at),
        error: record.error,
        canceled_by: record.canceled_by,
        parent: record.parent.map(|p| Parent {
            execution: p.execution,
            stage: p.stage,
            attempt: p.attempt,
        }),
        stages,
    }
}

/// Hands each stage of `execution` its attempts.
pub fn with_attempts(execution: &mut Execution, attempts: Vec<StageAttemptRecord>) {
    let Some(stages) = execution.stages.as_mut() else {
        return;
    };
    for record in attempts {
        if let Some(stage) = stages.iter_mut().find(|s| s.id == record.stage_id) {
            // The stage's row is the truth of its current attempt, even ended.
            if record.attempt == stage.attempt && stage.status != WireStatus::Pending {
                continue;
            }
            stage.attempts.push(StageAttempt {
                attempt: record.attempt,
                status: status(record.status),
                started_at: opt_timestamp(record.started_at),
                ended_at: opt_timestamp(record.ended_at),
                error: record.error,
            });
        }
    }
    // The current attempt, from the stage row: the store keeps attempts once
    // they ended. A stage set back to pending has none yet.
    for stage in stages.iter_mut() {
        if stage.attempt > 0 && stage.status != WireStatus::Pending {
            stage.attempts.push(StageAttempt {
                attempt: stage.attempt,
                status: stage.status,
                started_at: stage.started_at.clone(),
                ended_at: stage.ended_at.clone(),
                error: stage.error.clone(),
            });
        }
        stage.attempts.sort_by_key(|a| a.attempt);
    }
}

/// Joins the stage rows with the stage definitions of the execution's spec.
/// The spec is read loosely (as JSON, not as `gantry_config::Pipeline`) so
/// that old executions still display after the file format grows.
fn stage_views(spec: &Value, mut rows: Vec<StageRecord>) -> Vec<Stage> {
    let defs: Vec<&Value> = spec
        .get("stages")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let position = |id: &str| {
        defs.iter()
            .position(|d| d.get("id").and_then(Value::as_str) == Some(id))
    };
    rows.sort_by_key(|row| position(&row.stage_id).unwrap_or(usize::MAX));
    rows.into_iter()
        .map(|row| {
            let def = position(&row.stage_id).map(|i| defs[i]);
            let text = |field: &str| {
                def.and_then(|d| d.get(field))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            let depends_on = def
                .and_then(|d| d.get("dependsOn"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let signals = StageKind::signals_of(text("type").as_deref().unwrap_or_default());
            let accepts: Vec<StageSignal> = signals
                .iter()
                .map(|signal| match signal {
                    Signal::Judgment => StageSignal::Judgment,
                    Signal::Skip => StageSignal::Skip,
                })
                .collect();
            let judgment = accepts
                .contains(&StageSignal::Judgment)
                .then(|| JudgmentPrompt {
                    instructions: text("instructions"),
                    options: def
                        .and_then(|d| d.get("options"))
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                });
            Stage {
                judgment,
                name: text("name"),
                kind: text("type"),
                depends_on,
                id: row.stage_id,
                status: status(row.status),
                attempt: row.attempt,
                started_at: opt_timestamp(row.started_at),
                ended_at: opt_timestamp(row.ended_at),
                outputs: mask_sealed(row.outputs),
                error: row.error,
                state: row.state,
                attempts: Vec::new(),
                accepts,
            }
        })
        .collect()
}

/// Replaces every value the engine stored sealed (a step output holding a
/// secret, see `gantry_engine::SEALED_KEY`) with the mask.
fn mask_sealed(value: Value) -> Value {
    match value {
        Value::Object(object)
            if object.len() == 1 && object.contains_key(gantry_engine::SEALED_KEY) =>
        {
            Value::String(MASK.to_owned())
        }
        Value::Object(object) => Value::Object(
            object
                .into_iter()
                .map(|(key, value)| (key, mask_sealed(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(mask_sealed).collect()),
        other => other,
    }
}

/// Replaces the values of parameters declared `secret: true`.
fn mask_secrets(spec: &Value, mut parameters: Value) -> Value {
    let secrets = spec
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p.get("secret").and_then(Value::as_bool) == Some(true))
        .filter_map(|p| p.get("name").and_then(Value::as_str));
    if let Some(values) = parameters.as_object_mut() {
        for name in secrets {
            if let Some(value) = values.get_mut(name) {
                *value = Value::String(MASK.to_owned());
            }
        }
    }
    parameters
}

pub fn log_line(line: LogLine) -> LogLineView {
    LogLineView {
        seq: line.seq,
        stage_id: line.stage_id,
        step: line.step,
        ts: timestamp(line.ts),
        stream: match line.stream {
            LogStream::Stdout => gantry_wire::executions::LogStream::Stdout,
            LogStream::Stderr => gantry_wire::executions::LogStream::Stderr,
            LogStream::System => gantry_wire::executions::LogStream::System,
        },
        line: line.line,
    }
}

pub fn token(token: TokenRecord) -> Token {
    Token {
        id: token.id,
        name: token.name,
        created_at: timestamp(token.created_at),
        revoked_at: opt_timestamp(token.revoked_at),
        last_used_at: opt_timestamp(token.last_used_at),
        role: token.role,
    }
}

/// The store's status in the wire model's enum (the same lowercase words).
pub fn status(status: Status) -> gantry_wire::Status {
    match status {
        Status::Pending => gantry_wire::Status::Pending,
        Status::Running => gantry_wire::Status::Running,
        Status::Waiting => gantry_wire::Status::Waiting,
        Status::Succeeded => gantry_wire::Status::Succeeded,
        Status::Failed => gantry_wire::Status::Failed,
        Status::Canceled => gantry_wire::Status::Canceled,
        Status::Skipped => gantry_wire::Status::Skipped,
    }
}
