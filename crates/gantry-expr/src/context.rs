use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;

/// The names an expression can start from.
pub const ROOTS: [&str; 4] = ["parameters", "trigger", "execution", "stages"];

/// What expressions read: the four [`ROOTS`], each a JSON value. A root that was not given is
/// an empty map, so reading a key of it fails with "no such key" like any other missing key.
#[derive(Clone, Debug)]
pub struct Context {
    roots: BTreeMap<String, cel::Value>,
}

impl Default for Context {
    fn default() -> Context {
        let empty = Value::Object(serde_json::Map::new());
        Context {
            roots: ROOTS
                .iter()
                .map(|root| (root.to_string(), to_cel(&empty)))
                .collect(),
        }
    }
}

impl Context {
    /// A context from a JSON object such as
    /// `{"parameters": {…}, "trigger": {…}, "execution": {…}, "stages": {"build": {"outputs": {…}, "status": "succeeded"}}}`.
    /// Every key of the object becomes a name expressions can read; a value that is not an
    /// object gives the default context.
    pub fn from_json(value: &Value) -> Context {
        let mut ctx = Context::default();
        if let Value::Object(fields) = value {
            for (name, field) in fields {
                ctx.set(name, field);
            }
        }
        ctx
    }

    /// Sets one root (or any other top-level name).
    pub fn set(&mut self, name: &str, value: &Value) {
        self.roots.insert(name.to_owned(), to_cel(value));
    }

    pub(crate) fn to_cel(&self, env: Arc<cel::Env>) -> cel::Context<'static, 'static> {
        let mut ctx = cel::Context::with_env(env);
        for (name, value) in &self.roots {
            ctx.add_variable_from_value(name.clone(), value.clone());
        }
        ctx
    }
}

/// JSON to CEL: objects become maps, arrays lists; a number becomes an int when it fits, else a
/// uint, else a double.
pub(crate) fn to_cel(value: &Value) -> cel::Value {
    match value {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            (None, None) => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(items) => cel::Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(fields) => {
            let map: HashMap<cel::objects::Key, cel::Value> = fields
                .iter()
                .map(|(key, field)| {
                    (
                        cel::objects::Key::String(Arc::new(key.clone())),
                        to_cel(field),
                    )
                })
                .collect();
            cel::Value::Map(cel::objects::Map { map: Arc::new(map) })
        }
    }
}

/// CEL to JSON, the reverse of [`to_cel`]; map keys that are not strings are written as text.
/// Values JSON has no form for (bytes, functions, non-finite doubles, …) are an error naming
/// their type.
pub(crate) fn to_json(value: &cel::Value) -> Result<Value, String> {
    Ok(match value {
        cel::Value::Null => Value::Null,
        cel::Value::Bool(b) => Value::Bool(*b),
        cel::Value::Int(i) => Value::from(*i),
        cel::Value::UInt(u) => Value::from(*u),
        cel::Value::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => Value::Number(n),
            None => return Err(format!("the result {f} has no json form")),
        },
        cel::Value::String(s) => Value::String(s.to_string()),
        cel::Value::List(items) => {
            Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?)
        }
        cel::Value::Map(map) => {
            let mut fields: Vec<(String, Value)> = map
                .map
                .iter()
                .map(|(key, field)| Ok((key_text(key), to_json(field)?)))
                .collect::<Result<_, String>>()?;
            // CEL maps are unordered; sorting makes rendered output stable.
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(fields.into_iter().collect())
        }
        other => return Err(format!("a {} value has no json form", other.type_of())),
    })
}

fn key_text(key: &cel::objects::Key) -> String {
    match key {
        cel::objects::Key::Int(i) => i.to_string(),
        cel::objects::Key::Uint(u) => u.to_string(),
        cel::objects::Key::Bool(b) => b.to_string(),
        cel::objects::Key::String(s) => s.to_string(),
    }
}
