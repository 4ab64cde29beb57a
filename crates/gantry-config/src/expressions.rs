//! Expressions in stages: every string of a stage is a template (`${{ … }}`), `if:` and
//! precondition expressions are whole conditions. Each must parse, and each reference must
//! name something that will exist when the stage runs.

use std::collections::BTreeSet;

use gantry_expr::{Expression, ROOTS, Reference, Template};

use crate::check::{Checker, did_you_mean};
use crate::stages::CheckedStage;
use crate::yaml::{Node, Value};

/// What a stage's expressions may read.
pub(crate) struct Scope<'a> {
    pub parameters: &'a [&'a str],
    /// Every stage id of the pipeline.
    pub stages: &'a [&'a str],
    /// The stage being checked, if its id is valid.
    pub stage: Option<&'a str>,
    /// The ids of the stages that finish before this one starts.
    pub upstream: &'a BTreeSet<&'a str>,
}

pub(crate) fn check_stage(cx: &mut Checker<'_>, stage: &CheckedStage<'_>, scope: &Scope<'_>) {
    let skip: Vec<*const Node> = stage
        .literals
        .iter()
        .map(|node| *node as *const Node)
        .chain(
            stage
                .conditions
                .iter()
                .map(|(_, node)| *node as *const Node),
        )
        .collect();
    walk(cx, stage.node, &skip, scope);
    for (text, node) in &stage.conditions {
        match Expression::parse(text) {
            Ok(expression) => {
                for reference in expression.references() {
                    check_reference(cx, node, &reference, scope);
                }
            }
            Err(error) => report_syntax(cx, node, &error),
        }
    }
}

fn walk(cx: &mut Checker<'_>, node: &Node, skip: &[*const Node], scope: &Scope<'_>) {
    if skip.contains(&(node as *const Node)) {
        return;
    }
    match &node.value {
        Value::Str(text, _) => {
            if !text.contains("${{") {
                return;
            }
            match Template::parse(text) {
                Ok(template) => {
                    for reference in template.references() {
                        check_reference(cx, node, &reference, scope);
                    }
                }
                Err(error) => report_syntax(cx, node, &error),
            }
        }
        Value::Seq(items) => items.iter().for_each(|item| walk(cx, item, skip, scope)),
        Value::Map(entries) => entries
            .iter()
            .for_each(|(_, value)| walk(cx, value, skip, scope)),
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {}
    }
}

fn report_syntax(cx: &mut Checker<'_>, node: &Node, error: &gantry_expr::ExprError) {
    let at = node.source_offset(cx.source, error.offset().unwrap_or(0));
    cx.error(at, format!("invalid expression: {}", error.message()));
}

fn check_reference(cx: &mut Checker<'_>, node: &Node, reference: &Reference, scope: &Scope<'_>) {
    let at = node.source_offset(cx.source, reference.offset);
    let path = &reference.path;
    let root = path[0].as_str();
    match root {
        "parameters" => {
            let Some(name) = path.get(1) else { return };
            if !scope.parameters.contains(&name.as_str()) {
                let hint = match did_you_mean(name, scope.parameters) {
                    hint if !hint.is_empty() => hint,
                    _ if scope.parameters.is_empty() => {
                        "; the pipeline declares no parameters".to_owned()
                    }
                    _ => format!("; the pipeline declares {}", scope.parameters.join(", ")),
                };
                cx.error(
                    at,
                    format!("unknown parameter {name:?} in parameters.{name}{hint}"),
                );
            }
        }
        "stages" => {
            let Some(id) = path.get(1) else { return };
            let this = scope
                .stage
                .map_or_else(|| "this stage".to_owned(), |s| format!("stage {s:?}"));
            if !scope.stages.contains(&id.as_str()) {
                cx.error(
                    at,
                    format!(
                        "unknown stage {id:?} in stages.{id}{}",
                        did_you_mean(id, scope.stages)
                    ),
                );
            } else if scope.stage == Some(id.as_str()) {
                cx.error(at, format!("{this} reads its own stages.{id}, which only exists once the stage has ended"));
            } else if !scope.upstream.contains(id.as_str()) {
                cx.error(
                    at,
                    format!(
                        "{this} reads stages.{id}, but {id:?} is not upstream of it, so it may not have run yet; \
                         add {id:?} to dependsOn"
                    ),
                );
            } else if let Some(field) = path.get(2)
                && field != "outputs"
                && field != "status"
            {
                cx.error(
                    at,
                    format!("stages.{id} has \"outputs\" and \"status\", not {field:?}"),
                );
            }
        }
        "trigger" | "execution" => {}
        _ => {
            let hint = match did_you_mean(root, &ROOTS) {
                hint if !hint.is_empty() => hint,
                _ => format!("; expressions read {}", ROOTS.join(", ")),
            };
            cx.error(at, format!("unknown name {root:?} in expression{hint}"));
        }
    }
}
