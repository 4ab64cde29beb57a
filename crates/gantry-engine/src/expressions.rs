//! The data `${{ … }}` expressions see, and rendering a stage with it.

use gantry_config::StageKind;
use serde_json::{Value, json};

use crate::state::ExecState;

/// `parameters`, `trigger`, `execution` and `stages.<id>.{status,outputs}`
/// as they are now, sealed values opened (see `sealed.rs`).
pub(crate) fn context(state: &ExecState, secrets: Option<&gantry_secrets::SecretStore>) -> Value {
    let exec = &state.exec;
    let stages: serde_json::Map<String, Value> = state
        .stages
        .iter()
        .map(|r| {
            (
                r.stage_id.clone(),
                json!({
                    "status": r.status.as_str(),
                    "outputs": crate::sealed::open(secrets, &r.outputs),
                }),
            )
        })
        .collect();
    json!({
        "parameters": crate::sealed::open(secrets, &exec.parameters),
        "trigger": exec.trigger,
        "execution": {
            "id": exec.id,
            "pipeline": exec.pipeline,
            "application": state.pipeline.application,
            "createdAt": exec.created_at,
            "startedAt": exec.started_at,
        },
        "stages": stages,
    })
}

/// Evaluates an `if:` condition.
pub(crate) fn condition(expression: &str, context: &Value) -> Result<bool, String> {
    let expression = gantry_expr::Expression::parse(expression).map_err(|e| e.to_string())?;
    expression
        .eval_bool(&gantry_expr::Context::from_json(context))
        .map_err(|e| e.to_string())
}

/// Renders every `${{ … }}` in the stage's own fields. Fields are strings
/// after rendering, except a webhook `body`, where an expression that is the
/// whole value keeps its type (a number stays a number in the JSON sent).
/// Precondition expressions are not rendered: they are evaluated as a whole.
pub(crate) fn render_stage(kind: &StageKind, context: &Value) -> Result<StageKind, String> {
    let context = gantry_expr::Context::from_json(context);
    let mut raw = serde_json::to_value(kind).map_err(|e| e.to_string())?;
    match kind {
        StageKind::CheckPreconditions(_) => Ok(kind.clone()),
        StageKind::Webhook(webhook) => {
            let body = match &webhook.body {
                Some(body) => Some(
                    gantry_expr::render_value(body, &context).map_err(|e| format!("body: {e}"))?,
                ),
                None => None,
            };
            if let Some(map) = raw.as_object_mut() {
                map.remove("body");
            }
            let mut rendered: StageKind = render_strings(raw, &context)?;
            if let StageKind::Webhook(webhook) = &mut rendered {
                webhook.body = body;
            }
            Ok(rendered)
        }
        _ => render_strings(raw, &context),
    }
}

fn render_strings(raw: Value, context: &gantry_expr::Context) -> Result<StageKind, String> {
    let rendered = render_each_string(raw, context)?;
    serde_json::from_value(rendered).map_err(|e| format!("after expressions were rendered: {e}"))
}

fn render_each_string(value: Value, context: &gantry_expr::Context) -> Result<Value, String> {
    Ok(match value {
        Value::String(text) if text.contains("${{") => {
            let template = gantry_expr::Template::parse(&text).map_err(|e| e.to_string())?;
            Value::String(template.render(context).map_err(|e| e.to_string())?)
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| render_each_string(v, context))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| Ok((k, render_each_string(v, context)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other,
    })
}
