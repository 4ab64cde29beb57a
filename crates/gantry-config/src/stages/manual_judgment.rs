//! `manualJudgment`: waits, durably, until a person continues or stops the execution.

use super::{StageFields, StageType};
use crate::check::Checker;

pub(super) const TYPE: StageType = StageType {
    name: "manualJudgment",
    check,
};

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
