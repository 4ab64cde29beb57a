//! `webhook`: an HTTP request, optionally followed by polling a status URL.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{CheckStageType, SecretName, StageFields, StageType};
use crate::check::Checker;
use crate::duration;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookStage {
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// A string is sent as is; any other YAML value is sent as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Tries after a 5xx answer or a connection error.
    #[serde(default = "default_webhook_retries")]
    pub max_retries: u32,
    #[serde(default = "default_retry_delay", with = "duration")]
    pub retry_delay: Duration,
    /// Poll a status URL after the request until a terminal status.
    #[serde(default)]
    pub wait_for_completion: bool,
    /// Where to poll: this URL, or else by `statusUrlResolution`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_url: Option<String>,
    #[serde(default)]
    pub status_url_resolution: StatusUrlResolution,
    /// With `statusUrlResolution: webhookResponse`: where the URL is in the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_url_json_path: Option<String>,
    /// Where the status is in the polled JSON (an RFC 9535 JSONPath, e.g. `$.status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_json_path: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub success_statuses: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canceled_statuses: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub terminal_statuses: Vec<String>,
    #[serde(default = "default_poll_interval", with = "duration")]
    pub poll_interval: Duration,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StatusUrlResolution {
    /// Poll the request URL with GET.
    #[default]
    GetMethod,
    /// Poll the `Location` header of the response.
    LocationHeader,
    /// Poll the URL found at `statusUrlJsonPath` in the response body.
    WebhookResponse,
}

fn default_method() -> String {
    "GET".to_owned()
}
fn default_webhook_retries() -> u32 {
    3
}
fn default_retry_delay() -> Duration {
    Duration::from_secs(1)
}
fn default_poll_interval() -> Duration {
    Duration::from_secs(5)
}

/// The `webhook` stage type.
pub struct Webhook;

impl StageType for Webhook {
    type Spec = WebhookStage;
    const TYPED_FIELDS: &'static [&'static str] = &["body"];

    fn secret_names(_spec: &WebhookStage) -> Vec<SecretName> {
        Vec::new()
    }
}

impl CheckStageType for Webhook {
    fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
        check(stage, cx)
    }
}

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
