//! `wait`: a pause of a given duration, which a person can skip through the API.

use super::{StageFields, StageType};
use crate::check::Checker;

pub(super) const TYPE: StageType = StageType {
    name: "wait",
    check,
};

fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    let f = &mut stage.fields;
    if f.get("duration").is_some() {
        f.duration(cx, "duration");
    } else {
        f.require(cx, "duration");
    }
}
