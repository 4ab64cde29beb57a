//! A pipeline: its own fields, its parameters, its stages, and the checks that span stages
//! (unique ids, the dependency graph, what expressions read).

use std::collections::{BTreeSet, HashMap};

use serde_json::Value as Json;

use crate::check::{Checker, Fields, check_identifier};
use crate::expressions::{self, Scope};
use crate::graph::Graph;
use crate::stages::{CheckedStage, check_stage};
use crate::yaml::{Node, line_col};

/// Checks one entry of `pipelines:`; returns its name (for the duplicate check) and JSON.
pub(crate) fn check_pipeline<'n>(
    cx: &mut Checker<'_>,
    node: &'n Node,
    index: usize,
) -> Option<(Option<(&'n str, &'n Node)>, Json)> {
    let mut f = Fields::new(cx, node, format!("pipeline {}", index + 1))?;
    let name = f.required_string(cx, "name");
    if let Some((name, node)) = name {
        if name.trim().is_empty() {
            cx.error(node.span.start, "a pipeline name cannot be empty");
        } else if name.contains('/') || name.chars().any(char::is_control) {
            // The name is a path segment of the API and an argument of the CLI.
            cx.error(
                node.span.start,
                format!("pipeline name {name:?} cannot hold / or control characters"),
            );
        } else if !crate::triggers::is_plain_name(name) {
            cx.error(
                node.span.start,
                format!(
                    "pipeline name {} must be 1 to 100 letters, digits, '.', '_' and '-', not starting with '.' or '-'",
                    shortened(name)
                ),
            );
        }
        f.rename(format!("pipeline {name:?}"));
    }
    f.string(cx, "application");
    f.string(cx, "description");

    let mut parameters = Vec::new();
    if let Some(list) = f
        .get("parameters")
        .and_then(|node| cx.list(node, "\"parameters\""))
    {
        let mut json = Vec::new();
        for (i, item) in list.iter().enumerate() {
            if let Some((name, parameter)) = check_parameter(cx, item, i) {
                parameters.extend(name);
                json.push(parameter);
            }
        }
        f.insert("parameters", Json::Array(json));
    }
    report_duplicates(cx, &parameters, "parameter");

    let mut stages = Vec::new();
    if let Some(stages_node) = f.require(cx, "stages")
        && let Some(list) = cx.list(stages_node, "\"stages\"")
    {
        if list.is_empty() {
            cx.error(stages_node.span.start, format!("{} has no stages", f.what));
        }
        stages = list
            .iter()
            .enumerate()
            .filter_map(|(i, item)| check_stage(cx, item, i))
            .collect();
    }
    let ids: Vec<(&str, &Node)> = stages.iter().filter_map(|stage| stage.id).collect();
    report_duplicates(cx, &ids, "stage id");
    check_stage_references(cx, &stages, &parameters);
    f.insert(
        "stages",
        Json::Array(stages.into_iter().map(|stage| stage.json).collect()),
    );

    if let Some(list) = f
        .get("triggers")
        .and_then(|node| cx.list(node, "\"triggers\""))
    {
        let declared: Vec<&str> = parameters.iter().map(|(name, _)| *name).collect();
        let triggers = crate::triggers::check_triggers(cx, list, &declared);
        f.insert("triggers", triggers);
    }
    if let Some(node) = f.get("concurrency") {
        let concurrency = crate::triggers::check_concurrency(cx, node);
        f.insert("concurrency", concurrency);
    }
    Some((name, f.finish(cx, true)))
}

/// `name` quoted, cut to its first 40 characters and its length when it is longer: a
/// message names the mistake without repeating a name of a hundred thousand characters.
fn shortened(name: &str) -> String {
    match name.char_indices().nth(40) {
        Some((end, _)) => format!("{:?}… ({} characters)", &name[..end], name.chars().count()),
        None => format!("{name:?}"),
    }
}

fn check_parameter<'n>(
    cx: &mut Checker<'_>,
    node: &'n Node,
    index: usize,
) -> Option<(Option<(&'n str, &'n Node)>, Json)> {
    let mut f = Fields::new(cx, node, format!("parameter {}", index + 1))?;
    let name = f.required_string(cx, "name");
    if let Some((name, node)) = name {
        f.rename(format!("parameter {name:?}"));
        check_identifier(cx, node, name, "parameter name", "parameters");
    }
    f.string(cx, "description");
    let default = f.text(cx, "default");
    let options = f.texts(cx, "options");
    f.bool(cx, "required");
    f.bool(cx, "secret");
    if let (Some((default, node)), Some(options)) = (&default, &options)
        && !options.is_empty()
        && !options.iter().any(|(option, _)| option == default)
    {
        let list: Vec<&str> = options.iter().map(|(option, _)| option.as_str()).collect();
        cx.error(
            node.span.start,
            format!(
                "default {default:?} is not one of the options: {}",
                list.join(", ")
            ),
        );
    }
    Some((name, f.finish(cx, true)))
}

/// Reports each name given a second time, at the second place, naming the line of the first.
pub(crate) fn report_duplicates(cx: &mut Checker<'_>, names: &[(&str, &Node)], what: &str) {
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (name, node) in names {
        match first.get(name) {
            Some(&at) => {
                let (line, _) = line_col(cx.source, at);
                cx.error(
                    node.span.start,
                    format!("duplicate {what} {name:?} (first at line {line})"),
                );
            }
            None => {
                first.insert(name, node.span.start);
            }
        }
    }
}

fn check_stage_references(
    cx: &mut Checker<'_>,
    stages: &[CheckedStage<'_>],
    parameters: &[(&str, &Node)],
) {
    let graph = Graph::check(cx, stages);
    let parameter_names: Vec<&str> = parameters.iter().map(|(name, _)| *name).collect();
    let stage_ids: Vec<&str> = stages
        .iter()
        .filter_map(|stage| stage.id.map(|(id, _)| id))
        .collect();
    for (i, stage) in stages.iter().enumerate() {
        let upstream: BTreeSet<&str> = graph
            .upstream(i)
            .into_iter()
            .filter_map(|j| stages[j].id.map(|(id, _)| id))
            .collect();
        let scope = Scope {
            parameters: &parameter_names,
            stages: &stage_ids,
            stage: stage.id.map(|(id, _)| id),
            upstream: &upstream,
        };
        expressions::check_stage(cx, stage, &scope);
    }
}
