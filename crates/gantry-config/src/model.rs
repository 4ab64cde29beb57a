//! The validated shape of `gantry.yaml`. These types are what the engine
//! runs; they serialize to the JSON the store keeps as a pipeline's `spec`.
//!
//! Field names follow the file (camelCase). Every string field may hold
//! `${{ … }}` expressions; they are kept verbatim here and rendered by the
//! engine when a stage starts.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A whole `gantry.yaml`. Later kinds (applications, load balancers,
/// repositories) become further top-level lists beside `pipelines`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Document {
    #[serde(default)]
    pub pipelines: Vec<Pipeline>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pipeline {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
    pub stages: Vec<Stage>,
    /// Added by the triggers issue; kept opaque until then.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Parameter {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// When non-empty, the value must be one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    #[serde(default)]
    pub required: bool,
    /// A secret parameter's value is masked in every log line.
    #[serde(default)]
    pub secret: bool,
}

/// What a stage does when it fails (Spinnaker's three flags, same meanings).
/// - `failPipeline: true` (default): the execution fails, other branches are canceled.
/// - `continuePipeline: true`: the failure is ignored; downstream stages run.
/// - `failPipeline: false`: this branch stops; the others complete, and the
///   execution succeeds unless `completeOtherBranchesThenFail: true`.
///
/// No `deny_unknown_fields` here: serde does not support it together with `flatten`, and
/// `parse_document` reports unknown fields itself, with positions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// A condition (a CEL expression, bare or inside `${{ }}`); false skips the stage.
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// How many times a failed stage is tried again.
    #[serde(default)]
    pub retries: u32,
    #[serde(default = "yes")]
    pub fail_pipeline: bool,
    #[serde(default, alias = "continueOnFailure")]
    pub continue_pipeline: bool,
    #[serde(default)]
    pub complete_other_branches_then_fail: bool,
    #[serde(flatten)]
    pub kind: StageKind,
}

/// The stage types and their own fields, selected by `type:`.
// Stages are few and long-lived; boxing the large webhook variant would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum StageKind {
    Run(RunStage),
    Wait(WaitStage),
    ManualJudgment(ManualJudgmentStage),
    Pipeline(PipelineStage),
    Webhook(WebhookStage),
    CheckPreconditions(CheckPreconditionsStage),
}

impl StageKind {
    /// The `type:` name as written in the file.
    pub fn type_name(&self) -> &'static str {
        match self {
            StageKind::Run(_) => "run",
            StageKind::Wait(_) => "wait",
            StageKind::ManualJudgment(_) => "manualJudgment",
            StageKind::Pipeline(_) => "pipeline",
            StageKind::Webhook(_) => "webhook",
            StageKind::CheckPreconditions(_) => "checkPreconditions",
        }
    }

    pub const TYPE_NAMES: &'static [&'static str] = &[
        "run",
        "wait",
        "manualJudgment",
        "pipeline",
        "webhook",
        "checkPreconditions",
    ];
}

/// What happens to a step that was running when the server died.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OnInterrupt {
    /// Kill what is left of it and run it again from its start, once.
    #[default]
    Rerun,
    /// Fail the step (and so the stage).
    Fail,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunStage {
    /// Environment for every step (a step's own `env` wins).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub on_interrupt: OnInterrupt,
    pub steps: Vec<Step>,
}

/// One step: exactly one of `script` (run by `sh -e`) or `command` (argv).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Step {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Working directory relative to the workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// Overrides the stage's `onInterrupt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_interrupt: Option<OnInterrupt>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaitStage {
    #[serde(with = "duration")]
    pub duration: Duration,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManualJudgmentStage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// When non-empty, the person picks one; it becomes `outputs.judgment`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineStage {
    pub pipeline: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub wait_for_completion: bool,
}

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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckPreconditionsStage {
    pub preconditions: Vec<Precondition>,
}

/// An expression that must be true; `message` is the failure reported otherwise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Precondition {
    pub expression: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn yes() -> bool {
    true
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

/// Durations are written the human way (`90s`, `5m`, `1h30m`) and stored the same way.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(serde::de::Error::custom)
    }

    /// Parses `90s`, `5m`, `1h30m`, `250ms`; a bare number is refused, so that
    /// "30" is never silently taken as seconds or milliseconds.
    pub fn parse(text: &str) -> Result<Duration, String> {
        humantime::parse_duration(text.trim())
            .map_err(|e| format!("bad duration {text:?} ({e}); write e.g. 30s, 5m, 1h30m"))
    }
}

mod duration_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| super::duration::parse(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}
