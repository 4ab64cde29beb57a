//! Secret values kept in an execution's rows (secret parameters, step
//! outputs that hold a secret) are sealed with the secret store's key: the
//! JSON holds `{"$gantrySealed": "…"}` in place of the value. They are
//! opened only in memory, where expressions read them; the API shows them
//! masked and the database never holds them in the clear.

use gantry_secrets::SecretStore;
use serde_json::{Map, Value};

/// The key of the object that stands for a sealed value.
pub const SEALED_KEY: &str = "$gantrySealed";

/// The sealed form of `value`; the value itself without a secret store
/// (an engine for tests or `gantry build`, which keeps nothing).
pub fn seal(secrets: Option<&SecretStore>, value: &str) -> Value {
    match secrets {
        Some(store) => {
            let mut object = Map::new();
            object.insert(
                SEALED_KEY.to_owned(),
                Value::String(store.seal_value(value)),
            );
            Value::Object(object)
        }
        None => Value::String(value.to_owned()),
    }
}

/// `value` with every sealed value in it opened. One that cannot be opened
/// (the key was replaced) reads as an empty string.
pub(crate) fn open(secrets: Option<&SecretStore>, value: &Value) -> Value {
    match value {
        Value::Object(object) => match sealed_text(object) {
            Some(sealed) => Value::String(
                secrets
                    .and_then(|store| store.open_sealed(sealed).ok())
                    .unwrap_or_default(),
            ),
            None => Value::Object(
                object
                    .iter()
                    .map(|(key, value)| (key.clone(), open(secrets, value)))
                    .collect(),
            ),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| open(secrets, v)).collect()),
        other => other.clone(),
    }
}

/// The text of a sealed value, when `object` is one.
fn sealed_text(object: &Map<String, Value>) -> Option<&str> {
    if object.len() != 1 {
        return None;
    }
    object.get(SEALED_KEY)?.as_str()
}

/// The parameters as stored: those the pipeline declares `secret: true`
/// sealed, the others as they are.
pub(crate) fn seal_parameters(
    pipeline: &gantry_config::Pipeline,
    parameters: std::collections::BTreeMap<String, String>,
    secrets: Option<&SecretStore>,
) -> Value {
    let secret = |name: &str| {
        pipeline
            .parameters
            .iter()
            .any(|p| p.name == name && p.secret)
    };
    Value::Object(
        parameters
            .into_iter()
            .map(|(name, value)| {
                let stored = if secret(&name) {
                    seal(secrets, &value)
                } else {
                    Value::String(value)
                };
                (name, stored)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests;
