//! The order of a stage's steps, by Cloud Build's rules: a step without
//! `waitFor` waits for every earlier step; `waitFor: ["-"]` starts at once;
//! `waitFor: [ids]` waits for those steps, which must come earlier.

use std::collections::HashMap;

use gantry_config::Step;

/// Why the steps cannot be ordered; `step` counts from 1, as people do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StepOrderError {
    #[error("step {step} waits for {id:?}, which is not the id of an earlier step")]
    UnknownWait { step: usize, id: String },
    #[error("step {step}: step id {id:?} is used twice")]
    DuplicateId { step: usize, id: String },
}

/// For each step, the indexes of the steps it waits for.
pub(crate) fn dependencies(steps: &[Step]) -> Result<Vec<Vec<usize>>, StepOrderError> {
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut all = Vec::with_capacity(steps.len());
    for (index, step) in steps.iter().enumerate() {
        let waits = match &step.wait_for {
            None => (0..index).collect(),
            Some(list) if list.iter().any(|w| w == "-") => Vec::new(),
            Some(list) => list
                .iter()
                .map(|id| {
                    ids.get(id.as_str())
                        .copied()
                        .ok_or_else(|| StepOrderError::UnknownWait {
                            step: index + 1,
                            id: id.clone(),
                        })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        if let Some(id) = &step.id
            && ids.insert(id, index).is_some()
        {
            return Err(StepOrderError::DuplicateId {
                step: index + 1,
                id: id.clone(),
            });
        }
        all.push(waits);
    }
    Ok(all)
}
