//! `manualJudgment`: waits, durably, until a person continues or stops the execution.

use super::{CheckStageType, SecretName, Signal, StageFields, StageType};
use crate::check::Checker;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManualJudgmentStage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// When non-empty, the person picks one; it becomes `outputs.judgment`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// The `manualJudgment` stage type.
pub struct ManualJudgment;

impl StageType for ManualJudgment {
    type Spec = ManualJudgmentStage;
    const SIGNALS: &'static [Signal] = &[Signal::Judgment];

    fn secret_names(_spec: &ManualJudgmentStage) -> Vec<SecretName> {
        Vec::new()
    }
}

impl CheckStageType for ManualJudgment {
    fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
        check(stage, cx)
    }
}

fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    let f = &mut stage.fields;
    f.string(cx, "instructions");
    if let Some(options) = f.texts(cx, "options") {
        let mut seen = Vec::new();
        for (option, node) in options {
            if seen.contains(&option) {
                cx.error(node.span.start, format!("duplicate option {option:?}"));
            }
            seen.push(option);
        }
    }
}
