//! The JSON shapes the API answers with: camelCase fields, timestamps as
//! RFC 3339 strings with milliseconds (`null` when absent). Views are built
//! from store records; nothing here touches the store.

use std::time::{Duration, UNIX_EPOCH};

use gantry_store::{
    ExecutionRecord, LogLine, LogStream, Millis, PipelineRecord, StageRecord, Status, TokenRecord,
};
use serde::Serialize;
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

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineView {
    pub name: String,
    pub application: Option<String>,
    pub version: i64,
    /// How many stages the pipeline has.
    pub stages: usize,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<Value>,
}

impl PipelineView {
    pub fn new(record: PipelineRecord, with_spec: bool) -> PipelineView {
        PipelineView {
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
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionView {
    pub id: String,
    pub pipeline: String,
    pub status: Status,
    pub trigger: Value,
    pub parameters: Value,
    pub created_at: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub error: Option<String>,
    pub canceled_by: Option<String>,
    pub parent: Option<ParentView>,
    /// Left out of lists; always present for a single execution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<StageView>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentView {
    pub execution: String,
    pub stage: String,
    pub attempt: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageView {
    pub id: String,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub status: Status,
    pub attempt: i64,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub outputs: Value,
    pub error: Option<String>,
    pub depends_on: Vec<String>,
    pub state: Value,
}

impl ExecutionView {
    /// The execution with its stages, in the order of the pipeline file.
    pub fn new(record: ExecutionRecord, stages: Option<Vec<StageRecord>>) -> ExecutionView {
        let stages = stages.map(|stages| stage_views(&record.spec, stages));
        ExecutionView {
            parameters: mask_sealed(mask_secrets(&record.spec, record.parameters)),
            id: record.id,
            pipeline: record.pipeline,
            status: record.status,
            trigger: record.trigger,
            created_at: timestamp(record.created_at),
            started_at: opt_timestamp(record.started_at),
            ended_at: opt_timestamp(record.ended_at),
            error: record.error,
            canceled_by: record.canceled_by,
            parent: record.parent.map(|p| ParentView {
                execution: p.execution,
                stage: p.stage,
                attempt: p.attempt,
            }),
            stages,
        }
    }
}

/// Joins the stage rows with the stage definitions of the execution's spec.
/// The spec is read loosely (as JSON, not as `gantry_config::Pipeline`) so
/// that old executions still display after the file format grows.
fn stage_views(spec: &Value, mut rows: Vec<StageRecord>) -> Vec<StageView> {
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
            StageView {
                name: text("name"),
                kind: text("type"),
                depends_on,
                id: row.stage_id,
                status: row.status,
                attempt: row.attempt,
                started_at: opt_timestamp(row.started_at),
                ended_at: opt_timestamp(row.ended_at),
                outputs: mask_sealed(row.outputs),
                error: row.error,
                state: row.state,
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

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLineView {
    pub seq: i64,
    pub stage_id: String,
    pub step: i64,
    pub ts: String,
    pub stream: LogStream,
    pub line: String,
}

impl From<LogLine> for LogLineView {
    fn from(line: LogLine) -> LogLineView {
        LogLineView {
            seq: line.seq,
            stage_id: line.stage_id,
            step: line.step,
            ts: timestamp(line.ts),
            stream: line.stream,
            line: line.line,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
    pub role: String,
}

impl From<TokenRecord> for TokenView {
    fn from(token: TokenRecord) -> TokenView {
        TokenView {
            id: token.id,
            name: token.name,
            created_at: timestamp(token.created_at),
            revoked_at: opt_timestamp(token.revoked_at),
            last_used_at: opt_timestamp(token.last_used_at),
            role: token.role,
        }
    }
}
