//! A run's parameters checked against the pipeline's definitions, with their defaults.

use std::collections::BTreeMap;

use gantry_config::Pipeline;

use crate::error::EngineError;

/// Applies defaults and checks values against the pipeline's parameters;
/// reports every problem at once.
pub(crate) fn resolve(
    pipeline: &Pipeline,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, EngineError> {
    let mut problems = Vec::new();
    for name in given.keys() {
        if !pipeline.parameters.iter().any(|p| &p.name == name) {
            let known: Vec<&str> = pipeline
                .parameters
                .iter()
                .map(|p| p.name.as_str())
                .collect();
            problems.push(format!(
                "unknown parameter {name:?} (pipeline {:?} takes: {})",
                pipeline.name,
                known.join(", ")
            ));
        }
    }
    let mut values = BTreeMap::new();
    for parameter in &pipeline.parameters {
        let value = given
            .get(&parameter.name)
            .cloned()
            .or_else(|| parameter.default.clone());
        match value {
            None if parameter.required => {
                problems.push(format!("parameter {:?} is required", parameter.name))
            }
            None => {
                values.insert(parameter.name.clone(), String::new());
            }
            Some(value) => {
                if !parameter.options.is_empty() && !parameter.options.contains(&value) {
                    problems.push(format!(
                        "parameter {:?} must be one of {}, not {value:?}",
                        parameter.name,
                        parameter.options.join(", ")
                    ));
                } else if parameter.required && value.is_empty() {
                    problems.push(format!("parameter {:?} is required", parameter.name));
                }
                values.insert(parameter.name.clone(), value);
            }
        }
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(EngineError::Invalid(problems.join("; ")))
    }
}
