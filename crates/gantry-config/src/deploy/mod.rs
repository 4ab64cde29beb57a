//! The deploy kinds of a gantry file: `applications:` and `loadBalancers:`
//! (checked here), and the typed model of the deploy family (`model.rs`).

pub mod model;
pub mod strategies;

pub use model::Comparison;

#[cfg(test)]
mod tests;

use serde_json::Value as Json;

use crate::check::{Checker, Fields};
use crate::yaml::Node;

/// `applications:`: names (and descriptions) that clusters belong to.
pub(crate) fn check_applications(cx: &mut Checker<'_>, items: &[Node]) -> Json {
    let mut names = Vec::new();
    let mut out = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Some(mut f) = Fields::new(cx, item, format!("application {}", index + 1)) else {
            continue;
        };
        if let Some((name, node)) = f.required_string(cx, "name") {
            f.rename(format!("application {name:?}"));
            check_name_part(cx, node, name, "application name");
            names.push((name, node));
        }
        f.string(cx, "description");
        out.push(f.finish(cx, true));
    }
    crate::pipeline::report_duplicates(cx, &names, "application name");
    Json::Array(out)
}

/// `loadBalancers:`: a listener on a loopback port routing to clusters.
pub(crate) fn check_load_balancers(cx: &mut Checker<'_>, items: &[Node]) -> Json {
    let mut names = Vec::new();
    let mut ports = Vec::new();
    let mut out = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Some(mut f) = Fields::new(cx, item, format!("load balancer {}", index + 1)) else {
            continue;
        };
        if let Some((name, node)) = f.required_string(cx, "name") {
            f.rename(format!("load balancer {name:?}"));
            names.push((name, node));
        }
        if let Some(node) = f.require(cx, "port") {
            match f.count(cx, "port") {
                Some(port) if (1..=65535).contains(&port) => {
                    if ports.contains(&port) {
                        cx.error(
                            node.span.start,
                            format!("{}: port {port} is used by another load balancer", f.what),
                        );
                    }
                    ports.push(port);
                }
                Some(port) => cx.error(
                    node.span.start,
                    format!("{}: port must be from 1 to 65535, not {port}", f.what),
                ),
                None => {}
            }
        }
        let cluster = f.string(cx, "cluster");
        f.string(cx, "host");
        check_path(cx, &mut f, "path");
        let mut has_rules = false;
        if let Some(list) = f.get("rules") {
            let what = f.what.clone();
            if let Some(rules) = cx.list(list, "\"rules\"") {
                has_rules = !rules.is_empty();
                let mut json = Vec::new();
                for (i, rule) in rules.iter().enumerate() {
                    let Some(mut r) = Fields::new(cx, rule, format!("rule {} of {what}", i + 1))
                    else {
                        continue;
                    };
                    r.required_string(cx, "cluster");
                    r.string(cx, "host");
                    check_path(cx, &mut r, "path");
                    json.push(r.finish(cx, true));
                }
                f.insert("rules", Json::Array(json));
            }
        }
        if cluster.is_none() && !has_rules {
            cx.error(
                f.at(),
                format!("{} needs a \"cluster\" or \"rules\" to route to", f.what),
            );
        }
        if let (Some(timeout), Some(node)) =
            (f.duration(cx, "responseTimeout"), f.get("responseTimeout"))
            && timeout.is_zero()
        {
            cx.error(
                node.span.start,
                format!("{}: \"responseTimeout\" must be longer than 0s", f.what),
            );
        }
        check_client_bounds(cx, &mut f);
        if let Some(node) = f.get("healthCheck") {
            let what = format!("healthCheck of {}", f.what);
            if let Some(mut h) = Fields::new(cx, node, what) {
                check_path(cx, &mut h, "path");
                h.duration(cx, "interval");
                h.duration(cx, "timeout");
                for name in ["healthyThreshold", "unhealthyThreshold"] {
                    if let (Some(0), Some(node)) = (h.count(cx, name), h.key(name)) {
                        cx.error(node.span.start, format!("{name:?} must be at least 1"));
                    }
                }
                let json = h.finish(cx, true);
                f.insert("healthCheck", json);
            }
        }
        out.push(f.finish(cx, true));
    }
    crate::pipeline::report_duplicates(cx, &names, "load balancer name");
    Json::Array(out)
}

/// A load balancer's `timeouts:` (how long a client may take) and
/// `limits:` (how many connections it may hold).
fn check_client_bounds(cx: &mut Checker<'_>, f: &mut Fields<'_>) {
    if let Some(node) = f.get("timeouts") {
        let what = format!("timeouts of {}", f.what);
        if let Some(mut t) = Fields::new(cx, node, what) {
            for name in ["header", "keepAlive", "body", "send"] {
                if let (Some(timeout), Some(node)) = (t.duration(cx, name), t.get(name))
                    && timeout.is_zero()
                {
                    cx.error(
                        node.span.start,
                        format!("{}: {name:?} must be longer than 0s", t.what),
                    );
                }
            }
            let json = t.finish(cx, true);
            f.insert("timeouts", json);
        }
    }
    if let Some(node) = f.get("limits") {
        let what = format!("limits of {}", f.what);
        if let Some(mut l) = Fields::new(cx, node, what) {
            let connections = l.count(cx, "connections");
            let per_address = l.count(cx, "perAddress");
            for (name, value) in [("connections", connections), ("perAddress", per_address)] {
                if let (Some(0), Some(node)) = (value, l.get(name)) {
                    cx.error(
                        node.span.start,
                        format!("{}: {name:?} must be at least 1", l.what),
                    );
                }
            }
            if let (Some(connections), Some(per_address), Some(node)) =
                (connections, per_address, l.get("perAddress"))
                && per_address > connections
            {
                cx.error(
                    node.span.start,
                    format!(
                        "{}: \"perAddress\" ({per_address}) cannot be more than \"connections\" ({connections})",
                        l.what
                    ),
                );
            }
            let json = l.finish(cx, true);
            f.insert("limits", json);
        }
    }
}

fn check_path(cx: &mut Checker<'_>, f: &mut Fields<'_>, name: &'static str) {
    if let Some((path, node)) = f.string(cx, name)
        && !path.starts_with('/')
    {
        cx.error(
            node.span.start,
            format!("{name:?} must start with /, not {path:?}"),
        );
    }
}

/// Applications, stacks and details become parts of `app-stack-detail`
/// names: letters and digits only, so that the name splits back.
pub(crate) fn check_name_part(cx: &mut Checker<'_>, node: &Node, name: &str, what: &str) {
    let ok =
        !name.is_empty() && name.len() <= 50 && name.chars().all(|c| c.is_ascii_alphanumeric());
    if !ok {
        cx.error(
            node.span.start,
            format!("{what} {name:?} must be 1 to 50 letters or digits (it becomes part of cluster names)"),
        );
    }
}
