//! `webhook`: an HTTP request, optionally followed by polling a status URL.

use super::{StageFields, StageType};
use crate::check::Checker;

pub(super) const TYPE: StageType = StageType {
    name: "webhook",
    check,
};

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const RESOLUTIONS: &[&str] = &["getMethod", "locationHeader", "webhookResponse"];
const STATUS_LISTS: &[&str] = &["successStatuses", "canceledStatuses", "terminalStatuses"];

fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    let f = &mut stage.fields;
    f.required_string(cx, "url");
    if let Some((method, node)) = f.string(cx, "method") {
        // A method computed by an expression can only be checked when it runs.
        if !method.contains("${{") && !METHODS.contains(&method) {
            let hint = if METHODS.contains(&method.to_uppercase().as_str()) {
                format!("; write {:?}", method.to_uppercase())
            } else {
                format!("; use one of {}", METHODS.join(", "))
            };
            cx.error(
                node.span.start,
                format!("{method:?} is not an http method{hint}"),
            );
        }
    }
    f.text_map(cx, "headers");
    f.any(cx, "body");
    f.count(cx, "maxRetries");
    f.duration(cx, "retryDelay");
    let wait = f.bool(cx, "waitForCompletion").unwrap_or(false);
    f.string(cx, "statusUrl");
    let resolution = f.choice(cx, "statusUrlResolution", RESOLUTIONS);
    let url_path = f.string(cx, "statusUrlJsonPath");
    let status_path = f.string(cx, "statusJsonPath");
    let lists = STATUS_LISTS
        .iter()
        .filter(|name| f.texts(cx, name).is_some_and(|list| !list.is_empty()))
        .count();
    f.duration(cx, "pollInterval");

    if let Some(("webhookResponse", node)) = resolution
        && url_path.is_none()
    {
        cx.error(node.span.start, "statusUrlResolution: webhookResponse needs \"statusUrlJsonPath\", where the status url is in the response");
    }
    if wait {
        let at = f
            .key("waitForCompletion")
            .map_or(f.at(), |key| key.span.start);
        if status_path.is_none() {
            cx.error(at, "waitForCompletion: true needs \"statusJsonPath\", where the status is in the polled response");
        }
        if lists == 0 {
            cx.error(
                at,
                format!(
                    "waitForCompletion: true needs at least one of {}",
                    STATUS_LISTS.join(", ")
                ),
            );
        }
    }
}
