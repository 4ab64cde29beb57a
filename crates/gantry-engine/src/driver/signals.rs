//! Judgments and skips: what a person sends to a running stage, and which stage takes it.

use gantry_config::{Signal, Stage};
use gantry_store::Status;

use crate::engine::Judgment;
use crate::error::EngineError;
use crate::state::ExecState;

/// What a person sends to a running stage.
pub enum StageSignal {
    Judgment(Judgment),
    Skip,
}

impl StageSignal {
    /// Whether a stage of this type, in this status, takes this signal.
    pub(super) fn accepted_by(&self, stage: &Stage, status: Status) -> bool {
        match self {
            // Which types take which signal is theirs to say (`StageType::SIGNALS`); when
            // is the engine's: a judgment to a stage waiting for one, a skip to a running one.
            StageSignal::Judgment(_) => {
                stage.kind.accepts(Signal::Judgment) && status == Status::Waiting
            }
            StageSignal::Skip => stage.kind.accepts(Signal::Skip) && status == Status::Running,
        }
    }

    pub(super) fn describe(&self) -> &'static str {
        match self {
            StageSignal::Judgment(_) => "waiting for a judgment",
            StageSignal::Skip => "a running wait or deploy",
        }
    }
}

/// The stage a judgment or a skip is meant for.
pub(super) fn signal_target(
    state: &ExecState,
    stage: Option<&str>,
    signal: &StageSignal,
) -> Result<usize, EngineError> {
    let id = &state.exec.id;
    if let Some(stage) = stage {
        let index = state.index(stage).ok_or_else(|| EngineError::NotFound {
            kind: "stage",
            id: stage.to_owned(),
        })?;
        let status = state.stages[index].status;
        if !signal.accepted_by(state.spec(index), status) {
            return Err(EngineError::Invalid(format!(
                "stage {stage} of execution {id} is not {} (it is a {} stage, {status})",
                signal.describe(),
                state.spec(index).kind.type_name()
            )));
        }
        return Ok(index);
    }
    let candidates: Vec<usize> = (0..state.stages.len())
        .filter(|&i| signal.accepted_by(state.spec(i), state.stages[i].status))
        .collect();
    match candidates[..] {
        [index] => Ok(index),
        [] => Err(EngineError::Invalid(format!(
            "no stage of execution {id} is {}",
            signal.describe()
        ))),
        _ => {
            let names: Vec<&str> = candidates
                .iter()
                .map(|&i| state.stages[i].stage_id.as_str())
                .collect();
            Err(EngineError::Invalid(format!(
                "several stages of execution {id} are {}: {}; name one with --stage",
                signal.describe(),
                names.join(", ")
            )))
        }
    }
}
