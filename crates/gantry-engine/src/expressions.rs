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

/// Why a stage's expressions could not be evaluated or rendered. The messages are what
/// people see in the stage's outcome, unchanged from when these were strings.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A condition or template that does not parse or evaluate.
    #[error(transparent)]
    Expression(#[from] gantry_expr::ExprError),
    /// A typed field (a webhook `body`) that does not render.
    #[error("{field}: {source}")]
    Field {
        field: &'static str,
        source: gantry_expr::ExprError,
    },
    /// The rendered fields no longer fit the stage type's spec.
    #[error("after expressions were rendered: {0}")]
    Spec(serde_json::Error),
}

/// Evaluates an `if:` condition.
pub fn condition(expression: &str, context: &Value) -> Result<bool, RenderError> {
    let expression = gantry_expr::Expression::parse(expression)?;
    Ok(expression.eval_bool(&gantry_expr::Context::from_json(context))?)
}

/// Renders every `${{ … }}` in the stage's own fields. Fields are strings
/// after rendering, except the stage type's typed fields (a webhook `body`),
/// where an expression that is the whole value keeps its type (a number stays
/// a number in the JSON sent), and its verbatim fields (precondition
/// expressions), which are evaluated as a whole and not rendered.
pub(crate) fn render_stage(kind: &StageKind, context: &Value) -> Result<StageKind, RenderError> {
    let context = gantry_expr::Context::from_json(context);
    let mut raw = serde_json::to_value(kind).map_err(RenderError::Spec)?;
    let mut kept = serde_json::Map::new();
    if let Some(map) = raw.as_object_mut() {
        for field in kind.verbatim_fields() {
            if let Some(value) = map.remove(*field) {
                kept.insert((*field).to_owned(), value);
            }
        }
        for field in kind.typed_fields() {
            if let Some(value) = map.remove(*field) {
                let value = gantry_expr::render_value(&value, &context)
                    .map_err(|source| RenderError::Field { field, source })?;
                kept.insert((*field).to_owned(), value);
            }
        }
    }
    let mut rendered = render_each_string(raw, &context)?;
    if let Some(map) = rendered.as_object_mut() {
        map.extend(kept);
    }
    serde_json::from_value(rendered).map_err(RenderError::Spec)
}

fn render_each_string(value: Value, context: &gantry_expr::Context) -> Result<Value, RenderError> {
    Ok(match value {
        Value::String(text) if text.contains("${{") => {
            let template = gantry_expr::Template::parse(&text)?;
            Value::String(template.render(context)?)
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
                .collect::<Result<_, RenderError>>()?,
        ),
        other => other,
    })
}
