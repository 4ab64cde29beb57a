use serde_json::Value;

use crate::context::Context;
use crate::error::ExprError;
use crate::stack::on_big_stack;
use crate::template::Template;

/// Renders every string inside `value`, recursively; object keys stay as written.
///
/// A string that is exactly one `${{ expr }}` takes the expression's JSON type (a number, a
/// bool, a list, a map), so that `count: ${{ parameters.replicas }}` stays a number. Any other
/// string is rendered as text.
pub fn render_value(value: &Value, ctx: &Context) -> Result<Value, ExprError> {
    let (value, ctx) = (value.clone(), ctx.clone());
    on_big_stack(move || render_here(&value, &ctx))
        .unwrap_or_else(|failure| Err(ExprError::eval("", failure.message())))
}

fn render_here(value: &Value, ctx: &Context) -> Result<Value, ExprError> {
    Ok(match value {
        Value::String(text) => {
            let template = Template::parse(text)?;
            match template.sole_expression(false) {
                Some(expression) => expression.eval(ctx)?,
                None => Value::String(template.render(ctx)?),
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| render_here(item, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, field)| Ok((key.clone(), render_here(field, ctx)?)))
                .collect::<Result<_, ExprError>>()?,
        ),
        Value::Null | Value::Bool(_) | Value::Number(_) => value.clone(),
    })
}

/// How a value reads inside a rendered string: strings as they are, everything else as JSON
/// (so numbers plainly, `true`, `null`, `[1,2]`).
pub(crate) fn stringify(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
