//! `deploy`: a new server group of a cluster, and the strategy that puts it
//! in place of the older ones.

use super::{StageCheck, StageFields};
use crate::check::{Checker, Fields};
use crate::deploy::check_name_part;
use crate::deploy::model::DeployStrategy;
use crate::yaml::Value;

pub(super) const TYPE: StageCheck = StageCheck {
    name: "deploy",
    check,
};

fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    let f = &mut stage.fields;
    if let Some((name, node)) = f.required_string(cx, "application") {
        check_name_part(cx, node, name, "application");
    }
    for part in ["stack", "detail"] {
        if let Some((name, node)) = f.string(cx, part) {
            check_name_part(cx, node, name, part);
        }
    }
    // A name the server registers a provider under, checked against its registry when the
    // file is checked for a server (the list is in the message); otherwise the deploy
    // reports an unknown provider when it runs.
    let provider = match cx.providers {
        Some(registered) => f.choice(cx, "provider", registered).map(|(name, _)| name),
        None => f.string(cx, "provider").map(|(name, _)| name),
    };
    if let Some(node) = f.get("placement") {
        if provider != Some("ssh") {
            cx.error(
                node.span.start,
                "\"placement\" places instances on fleet hosts: it goes with \"provider: ssh\"",
            );
        }
        let what = format!("placement of {}", f.what);
        if let Some(mut p) = Fields::new(cx, node, what) {
            p.strings(cx, "labels");
            if let (Some(0), Some(node)) = (p.count(cx, "maxPerHost"), p.key("maxPerHost")) {
                cx.error(node.span.start, "\"maxPerHost\" must be at least 1");
            }
            let json = p.finish(cx, true);
            f.insert("placement", json);
        }
    }
    let command = f.string(cx, "command");
    let image = f.string(cx, "image");
    match (command, image) {
        (None, None) => cx.error(
            f.at(),
            format!("{} needs a \"command\" or an \"image\"", f.what),
        ),
        (Some(_), Some((_, node))) => cx.error(
            node.span.start,
            "give one of \"command\" and \"image\", not both",
        ),
        _ => {}
    }
    let artifact = f.string(cx, "artifact");
    let package = f.string(cx, "package");
    let repository = f.string(cx, "repository");
    match (&artifact, &package, &repository) {
        (Some(_), Some((_, node)), _) => cx.error(
            node.span.start,
            "give one of \"artifact\" and \"package\", not both",
        ),
        (_, Some(_), None) => cx.error(
            f.at(),
            format!(
                "{} takes \"package\" from a \"repository\": name it",
                f.what
            ),
        ),
        (_, None, Some((_, node))) => {
            cx.error(node.span.start, "\"repository\" goes with \"package\"")
        }
        _ => {}
    }
    f.text_map(cx, "env");
    // An expression (`${{ parameters.replicas }}`) is checked once rendered.
    let size_expression = f
        .get("size")
        .and_then(|node| node.as_str())
        .filter(|text| text.contains("${{"));
    if let Some(expression) = size_expression {
        f.insert("size", serde_json::Value::String(expression.to_owned()));
    } else if let (Some(0), Some(node)) = (f.count(cx, "size"), f.key("size")) {
        // An enabled group without instances would answer 503 for the cluster.
        cx.error(node.span.start, "\"size\" of a deploy must be at least 1");
    }
    f.bool(cx, "overlap");
    super::bake::check_registry_access(stage, cx);
    let f = &mut stage.fields;
    f.duration(cx, "healthTimeout");
    f.duration(cx, "gracePeriod");
    let strategy = f
        .choice(cx, "strategy", DeployStrategy::NAMES)
        .map(|(s, _)| s)
        .unwrap_or(DeployStrategy::default().name());
    f.bool(cx, "scaleDown");
    f.count(cx, "maxRemainingServerGroups");
    f.duration(cx, "delayBeforeDisable");
    f.duration(cx, "delayBeforeScaleDown");
    if let (Some(false), Some(node)) = (f.bool(cx, "rollbackOnFailure"), f.key("rollbackOnFailure"))
    {
        cx.error(
            node.span.start,
            "\"rollbackOnFailure: false\" is not supported: a failed deploy always removes its new server group",
        );
    }
    f.duration(cx, "pauseBetween");
    f.bool(cx, "waitForPromotion");
    let what = f.what.clone();
    if let Some(node) = f.get("judgmentBetweenSteps") {
        if strategy != "rolling" {
            cx.error(
                node.span.start,
                format!("{what}: \"judgmentBetweenSteps\" is for the rolling strategy"),
            );
        }
        if let Some(judgment) = check_judgment(cx, node, &format!("judgment of {what}")) {
            f.insert("judgmentBetweenSteps", judgment);
        }
    }
    if let Some(node) = f.key("targetPercentages") {
        let node_at = node.span.start;
        if strategy != "rolling" {
            cx.error(
                node_at,
                format!("{what}: \"targetPercentages\" is for the rolling strategy"),
            );
        }
        if let Some(texts) = f.texts(cx, "targetPercentages") {
            let mut last = 0;
            let mut values = Vec::new();
            for (text, item) in &texts {
                match text.parse::<u32>() {
                    Ok(p) if p > last && p <= 100 => {
                        last = p;
                        values.push(serde_json::Value::from(p));
                    }
                    _ => cx.error(
                        item.span.start,
                        format!(
                            "target percentages must increase, each from 1 to 100, not {text:?}"
                        ),
                    ),
                }
            }
            if last != 100 && !texts.is_empty() {
                cx.error(node_at, "the last target percentage must be 100");
            }
            f.insert("targetPercentages", serde_json::Value::Array(values));
        }
    } else if strategy == "rolling" && f.key("maxUnavailable").is_none() {
        cx.error(
            f.at(),
            format!(
                "{what}: the rolling strategy needs \"targetPercentages\" (e.g. [10, 50, 100]) or \"maxUnavailable\" (e.g. 1 or \"25%\")"
            ),
        );
    }
    if let Some(node) = f.key("steps") {
        if strategy != "canary" {
            cx.error(
                node.span.start,
                format!("{what}: \"steps\" are for the canary strategy"),
            );
        }
        let node = f.get("steps").unwrap_or(node);
        if let Some(items) = cx.list(node, "\"steps\"") {
            let mut steps = Vec::new();
            for (index, item) in items.iter().enumerate() {
                if let Some(step) =
                    check_canary_step(cx, item, &format!("step {} of {what}", index + 1))
                {
                    steps.push(step);
                }
            }
            f.insert("steps", serde_json::Value::Array(steps));
        }
    } else if strategy == "canary" {
        cx.error(
            f.at(),
            format!("{what}: the canary strategy needs \"steps\""),
        );
    }
    let rolling = strategy == "rolling";
    check_batches(stage, cx, rolling);
}

/// `{instructions, options}`: the fields of a `manualJudgment` stage.
fn check_judgment(
    cx: &mut Checker<'_>,
    node: &crate::yaml::Node,
    what: &str,
) -> Option<serde_json::Value> {
    let mut j = Fields::new(cx, node, what.to_owned())?;
    j.string(cx, "instructions");
    if let Some(options) = j.texts(cx, "options") {
        let mut seen = Vec::new();
        for (option, node) in options {
            if seen.contains(&option) {
                cx.error(node.span.start, format!("duplicate option {option:?}"));
            }
            seen.push(option);
        }
    }
    Some(j.finish(cx, true))
}

/// `{setWeight: 10}`, `{pause: 30s}` or `{analysis: {window, marginal, pass}}`.
fn check_canary_step(
    cx: &mut Checker<'_>,
    node: &crate::yaml::Node,
    what: &str,
) -> Option<serde_json::Value> {
    let mut s = Fields::new(cx, node, what.to_owned())?;
    if let (Some(weight), Some(key)) = (s.count(cx, "setWeight"), s.key("setWeight"))
        && weight > 100
    {
        cx.error(
            key.span.start,
            format!("{what}: \"setWeight\" must be from 0 to 100, not {weight}"),
        );
    }
    // `pause: untilPromoted` waits for a person; otherwise a duration.
    if s.get("pause").and_then(|n| n.as_str()) == Some("untilPromoted") {
        s.string(cx, "pause");
    } else {
        s.duration(cx, "pause");
    }
    if let Some(analysis) = s.get("analysis")
        && let Some(mut a) = Fields::new(cx, analysis, format!("analysis of {what}"))
    {
        if a.get("window").is_some() {
            a.duration(cx, "window");
        } else {
            a.require(cx, "window");
        }
        let marginal = a.count(cx, "marginal");
        let pass = a.count(cx, "pass");
        for (value, name) in [(marginal, "marginal"), (pass, "pass")] {
            if let (Some(v), Some(key)) = (value, a.key(name))
                && v > 100
            {
                cx.error(
                    key.span.start,
                    format!("{name:?} is a score from 0 to 100, not {v}"),
                );
            }
        }
        if let (Some(m), Some(p), Some(key)) = (marginal, pass, a.key("marginal"))
            && m > p
        {
            cx.error(
                key.span.start,
                format!("\"marginal\" ({m}) must not be above \"pass\" ({p})"),
            );
        }
        a.count(cx, "maxErrorRateIncrease");
        let json = a.finish(cx, true);
        s.insert("analysis", json);
    }
    let json = s.finish(cx, true);
    let kinds = json.as_object().map(|o| o.len()).unwrap_or(0);
    if kinds != 1 {
        cx.error(
            node.span.start,
            format!("{what} must have exactly one of setWeight, pause, analysis"),
        );
    }
    Some(json)
}

/// `maxUnavailable` (a count or `"N%"`) and `maxFailPercentage`: the
/// rolling strategy's host batches.
fn check_batches(stage: &mut StageFields<'_>, cx: &mut Checker<'_>, rolling: bool) {
    let f = &mut stage.fields;
    let what = f.what.clone();
    for name in ["maxUnavailable", "maxFailPercentage"] {
        if let (Some(key), false) = (f.key(name), rolling) {
            cx.error(
                key.span.start,
                format!("{what}: {name:?} is for the rolling strategy"),
            );
        }
    }
    if let (Some(a), Some(_)) = (f.key("maxUnavailable"), f.key("targetPercentages")) {
        cx.error(
            a.span.start,
            format!("{what}: give \"targetPercentages\" or \"maxUnavailable\", not both"),
        );
    }
    if let Some(node) = f.get("maxUnavailable") {
        let batch = match &node.value {
            Value::Int(n) if *n >= 1 && u32::try_from(*n).is_ok() => {
                Some(serde_json::json!({"instances": *n}))
            }
            Value::Str(text, _) => text
                .strip_suffix('%')
                .and_then(|p| p.trim().parse::<u32>().ok())
                .filter(|p| (1..=100).contains(p))
                .map(|p| serde_json::json!({"percent": p})),
            _ => None,
        };
        match batch {
            Some(batch) => f.insert("maxUnavailable", batch),
            None => cx.error(
                node.span.start,
                format!(
                    "\"maxUnavailable\" must be a number of instances (at least 1) or a share such as \"25%\", not {}",
                    node.describe()
                ),
            ),
        }
    }
    if let Some(percent) = f.count(cx, "maxFailPercentage")
        && percent > 100
    {
        let at = f.key("maxFailPercentage").map_or(f.at(), |k| k.span.start);
        cx.error(
            at,
            format!("\"maxFailPercentage\" is a share from 0 to 100, not {percent}"),
        );
    }
}
