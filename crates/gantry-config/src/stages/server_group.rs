//! The server group operations: `resizeServerGroup`, `enableServerGroup`,
//! `disableServerGroup`, `destroyServerGroup`, `rollbackCluster` and
//! `scaleDownCluster`. They share the way a group is named: a `cluster`
//! and a `target` (newest, previous, oldest) or a `serverGroup` by name.

use super::{StageCheck, StageFields};
use crate::check::Checker;
use crate::deploy::model::ServerGroupTarget;

pub(super) const RESIZE: StageCheck = StageCheck {
    name: "resizeServerGroup",
    check: check_resize,
};
pub(super) const ENABLE: StageCheck = StageCheck {
    name: "enableServerGroup",
    check: check_target,
};
pub(super) const DISABLE: StageCheck = StageCheck {
    name: "disableServerGroup",
    check: check_disable,
};
pub(super) const DESTROY: StageCheck = StageCheck {
    name: "destroyServerGroup",
    check: check_target,
};
pub(super) const ROLLBACK: StageCheck = StageCheck {
    name: "rollbackCluster",
    check: check_rollback,
};
pub(super) const SCALE_DOWN: StageCheck = StageCheck {
    name: "scaleDownCluster",
    check: check_scale_down,
};

fn check_target(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    let f = &mut stage.fields;
    f.required_string(cx, "cluster");
    let target = f.choice(cx, "target", ServerGroupTarget::NAMES);
    if let (Some(_), Some(node)) = (target, f.string(cx, "serverGroup").map(|(_, n)| n)) {
        cx.error(
            node.span.start,
            "give one of \"target\" and \"serverGroup\", not both",
        );
    }
}

/// `force: true` disables even the last enabled group of the cluster.
fn check_disable(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    check_target(stage, cx);
    stage.fields.bool(cx, "force");
}

fn check_resize(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    check_target(stage, cx);
    let f = &mut stage.fields;
    let given: Vec<&str> = [
        "size",
        "scaleUp",
        "scaleDown",
        "scaleUpPercent",
        "scaleDownPercent",
    ]
    .into_iter()
    .filter(|name| f.count(cx, name).is_some())
    .collect();
    if given.len() != 1 {
        cx.error(
            f.at(),
            format!(
                "{} needs exactly one of size, scaleUp, scaleDown, scaleUpPercent, scaleDownPercent{}",
                f.what,
                if given.is_empty() { String::new() } else { format!(" (has {})", given.join(", ")) }
            ),
        );
    }
}

fn check_rollback(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    let f = &mut stage.fields;
    f.required_string(cx, "cluster");
    f.duration(cx, "healthTimeout");
}

fn check_scale_down(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    let f = &mut stage.fields;
    f.required_string(cx, "cluster");
    f.count(cx, "remainingFullSizeServerGroups");
}
