//! `pipeline`: starts another pipeline with parameters, and by default waits for its result.

use super::{StageFields, StageType};
use crate::check::Checker;

pub(super) const TYPE: StageType = StageType {
    name: "pipeline",
    check,
};

fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    let f = &mut stage.fields;
    if let Some((name, node)) = f.required_string(cx, "pipeline")
        && name.trim().is_empty()
    {
        cx.error(node.span.start, "\"pipeline\" names no pipeline");
    }
    f.text_map(cx, "parameters");
    f.bool(cx, "waitForCompletion");
}
