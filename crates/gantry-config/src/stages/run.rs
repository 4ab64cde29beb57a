//! `run`: steps executed on the host, sharing one workspace.

use serde_json::Value as Json;

use super::{StageFields, StageType};
use crate::check::{Checker, Fields};

pub(super) const TYPE: StageType = StageType { name: "run", check };

const ON_INTERRUPT: &[&str] = &["rerun", "fail"];

fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    let f = &mut stage.fields;
    f.text_map(cx, "env");
    f.choice(cx, "onInterrupt", ON_INTERRUPT);
    let Some(steps_node) = f.require(cx, "steps") else {
        return;
    };
    let Some(steps) = cx.list(steps_node, "\"steps\"") else {
        return;
    };
    if steps.is_empty() {
        cx.error(steps_node.span.start, format!("{} has no steps", f.what));
    }
    let what = f.what.clone();
    let steps: Vec<Json> = steps
        .iter()
        .enumerate()
        .filter_map(|(index, step)| check_step(cx, step, format!("step {} of {what}", index + 1)))
        .collect();
    f.insert("steps", Json::Array(steps));
}

fn check_step(cx: &mut Checker<'_>, node: &crate::yaml::Node, what: String) -> Option<Json> {
    let mut f = Fields::new(cx, node, what)?;
    if let Some((name, _)) = f.string(cx, "name") {
        let what = format!("step {name:?} ({})", f.what);
        f.rename(what);
    }
    let script = f.string(cx, "script");
    let command = f.texts(cx, "command");
    match (&script, &command) {
        (Some(_), Some(_)) => {
            let at = f.key("command").map_or(f.at(), |key| key.span.start);
            cx.error(
                at,
                format!("{} has both \"script\" and \"command\"; give one", f.what),
            );
        }
        (None, None) if f.key("script").is_none() && f.key("command").is_none() => {
            cx.error(
                f.at(),
                format!(
                    "{} needs a \"script\" (run by sh -e) or a \"command\" (a list of arguments)",
                    f.what
                ),
            );
        }
        _ => {}
    }
    if let Some((script, node)) = script
        && script.trim().is_empty()
    {
        cx.error(node.span.start, format!("{} has an empty script", f.what));
    }
    if let Some(command) = &command
        && command.is_empty()
    {
        let at = f.get("command").map_or(f.at(), |node| node.span.start);
        cx.error(
            at,
            format!(
                "{} has an empty command; give the program and its arguments",
                f.what
            ),
        );
    }
    f.text_map(cx, "env");
    f.string(cx, "dir");
    f.duration(cx, "timeout");
    f.choice(cx, "onInterrupt", ON_INTERRUPT);
    Some(f.finish(cx, true))
}
