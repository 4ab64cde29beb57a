//! `checkPreconditions`: conditions that must all hold, each with the message shown otherwise.

use crate::model::CheckPreconditionsStage;
use serde_json::Value as Json;

/// The `checkPreconditions` stage type.
pub struct CheckPreconditions;

impl StageType for CheckPreconditions {
    type Spec = CheckPreconditionsStage;
    const VERBATIM_FIELDS: &'static [&'static str] = &["preconditions"];

    fn secret_names(_spec: &CheckPreconditionsStage) -> Vec<SecretName> {
        Vec::new()
    }
}

impl CheckStageType for CheckPreconditions {
    fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
        check(stage, cx)
    }
}

use super::{CheckStageType, SecretName, StageFields, StageType};
use crate::check::{Checker, Fields};

fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    let f = &mut stage.fields;
    let Some(list_node) = f.require(cx, "preconditions") else {
        return;
    };
    let Some(items) = cx.list(list_node, "\"preconditions\"") else {
        return;
    };
    if items.is_empty() {
        cx.error(
            list_node.span.start,
            format!("{} has no preconditions", f.what),
        );
    }
    let what = f.what.clone();
    let mut preconditions = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Some(mut p) = Fields::new(cx, item, format!("precondition {} of {what}", index + 1))
        else {
            continue;
        };
        if let Some(node) = p.get("clusterSize") {
            if let Some(key) = p.key("expression") {
                cx.error(
                    key.span.start,
                    "give one of \"expression\" and \"clusterSize\", not both",
                );
            }
            if let Some(mut c) = Fields::new(
                cx,
                node,
                format!("clusterSize of precondition {} of {what}", index + 1),
            ) {
                c.required_string(cx, "cluster");
                c.choice(cx, "comparison", &["==", "!=", "<", "<=", ">", ">="]);
                if c.get("expected").is_some() {
                    c.count(cx, "expected");
                } else {
                    c.require(cx, "expected");
                }
                let json = c.finish(cx, true);
                p.insert("clusterSize", json);
            }
        } else if p.get("expression").is_some() {
            if let Some((text, node)) = p.text(cx, "expression") {
                stage.conditions.push((text, node));
            }
        } else {
            p.require(cx, "expression");
        }
        p.string(cx, "message");
        preconditions.push(p.finish(cx, true));
    }
    stage
        .fields
        .insert("preconditions", Json::Array(preconditions));
}
