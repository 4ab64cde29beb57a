//! The whole file: a mapping of kinds (`pipelines:` now; `applications:`, `loadBalancers:`,
//! `repositories:` later), each a list checked by its own function. Keys starting with `x-`
//! are left to the user (as in Compose files), typically to hold YAML anchors.

use serde_json::{Map, Value as Json};

use crate::check::{Checker, did_you_mean};
use crate::pipeline::{check_pipeline, report_duplicates};
use crate::yaml::{Node, Value};

/// One top-level kind: its key and the check of its list, which returns the list's JSON.
struct Kind {
    key: &'static str,
    check: fn(&mut Checker<'_>, &[Node]) -> Json,
}

const KINDS: &[Kind] = &[
    Kind {
        key: "pipelines",
        check: check_pipelines,
    },
    Kind {
        key: "repositories",
        check: crate::triggers::check_repositories,
    },
    Kind {
        key: "applications",
        check: crate::deploy::check_applications,
    },
    Kind {
        key: "loadBalancers",
        check: crate::deploy::check_load_balancers,
    },
    Kind {
        key: "hosts",
        check: crate::hosts::check_hosts,
    },
];

pub(crate) fn check_document(cx: &mut Checker<'_>, root: Option<&Node>) -> Json {
    let mut out = Map::new();
    // An empty file (or one holding only comments) is an empty document.
    let Some(root) = root.filter(|node| !matches!(node.value, Value::Null)) else {
        return Json::Object(out);
    };
    let Value::Map(entries) = &root.value else {
        cx.error(
            root.span.start,
            format!(
                "a gantry file is a mapping with {}, not {}",
                keys(),
                root.describe()
            ),
        );
        return Json::Object(out);
    };
    for (key, value) in entries {
        let name = key.scalar_text(cx.source).unwrap_or_default();
        if name.starts_with("x-") {
            // Free for the user, e.g. to hold anchors shared by several stages.
            continue;
        }
        let Some(kind) = KINDS.iter().find(|kind| kind.key == name) else {
            let names: Vec<&str> = KINDS.iter().map(|kind| kind.key).collect();
            let hint = match did_you_mean(&name, &names) {
                hint if !hint.is_empty() => hint,
                _ => format!(
                    "; a gantry file has {} (and x-… keys of your own, e.g. for anchors)",
                    keys()
                ),
            };
            cx.error(
                key.span.start,
                format!("unknown top-level field {name:?}{hint}"),
            );
            continue;
        };
        if matches!(value.value, Value::Null) {
            continue;
        }
        if let Some(items) = cx.list(value, &format!("{name:?}")) {
            out.insert(name, (kind.check)(cx, items));
        }
    }
    Json::Object(out)
}

/// The top-level kinds a gantry file may hold.
#[cfg(test)]
pub(crate) fn kind_names() -> Vec<&'static str> {
    KINDS.iter().map(|kind| kind.key).collect()
}

fn keys() -> String {
    KINDS
        .iter()
        .map(|kind| format!("{}:", kind.key))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_pipelines(cx: &mut Checker<'_>, items: &[Node]) -> Json {
    let mut names = Vec::new();
    let mut pipelines = Vec::new();
    for (index, item) in items.iter().enumerate() {
        if let Some((name, json)) = check_pipeline(cx, item, index) {
            names.extend(name);
            pipelines.push(json);
        }
    }
    report_duplicates(cx, &names, "pipeline name");
    Json::Array(pipelines)
}
