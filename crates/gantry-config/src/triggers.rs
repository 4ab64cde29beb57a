//! A pipeline's `triggers:` list: the spec of each trigger type (`Trigger`), and one check per
//! type, selected by `type:`. Patterns (branch and tag regexes, payload constraints) are
//! compiled here, so that one that does not parse is reported with its position instead of
//! failing when the first push arrives.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::check::{Checker, Fields, did_you_mean};
use crate::yaml::Node;

/// What starts a pipeline, selected by `type:`. Checked below (`check_triggers`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Trigger {
    /// A push to a repository Gantry hosts (`repository`), or to an external one (`url`)
    /// reported by a GitHub or GitLab webhook or found by polling (`poll`).
    Git(GitTrigger),
    /// A POST to `/webhooks/generic/SOURCE` (Spinnaker's webhook trigger).
    Webhook(WebhookTrigger),
    /// Another pipeline's execution ended with one of `status`.
    Pipeline(PipelineTrigger),
    /// A new package landed in an APT repository of this server.
    Artifact(ArtifactTrigger),
    /// A 5-field cron schedule in a time zone.
    Cron(CronTrigger),
}

impl Trigger {
    pub fn type_name(&self) -> &'static str {
        match self {
            Trigger::Git(_) => "git",
            Trigger::Webhook(_) => "webhook",
            Trigger::Pipeline(_) => "pipeline",
            Trigger::Artifact(_) => "artifact",
            Trigger::Cron(_) => "cron",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitTrigger {
    /// A hosted repository's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// An external repository's clone URL, as GitHub or GitLab report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A regex matched against the branch name (`^main$`); with neither `branch` nor `tag`,
    /// every branch matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// A regex matched against the tag name (`^v.*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Globs (`src/**`): the push must change at least one matching file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_files: Vec<String>,
    /// Globs: a push that changes only matching files is ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_files: Vec<String>,
    /// The webhook secret (GitHub: the HMAC key; GitLab: the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The webhook secret is the value of this secret-store secret (instead of `secret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_from: Option<String>,
    /// A secret holding `user:password` (or a bare token) that git answers an external `url`
    /// with when polling, reading `config` and checking out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    /// Checks an external `url` with `ls-remote` this often.
    #[serde(
        default,
        with = "crate::duration::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub poll: Option<Duration>,
    /// A pipeline file in the repository, read at the pushed commit: a `gantry.yaml` whose
    /// pipeline (of this name, or its only one) gives the execution's stages and parameters,
    /// or a Cloud Build file, run as one `run` stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// Parameters of the executions it starts (over the pipeline's defaults).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    /// Cloud Build user substitutions (`_NAME: value`) for the Cloud Build files its
    /// executions run (`config:` here, or a `run` stage's), under the stage's own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub substitutions: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookTrigger {
    /// The last segment of `/webhooks/generic/SOURCE`.
    pub source: String,
    /// When set, the request must carry it as `X-Gantry-Secret` or a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The secret is the value of this secret-store secret (instead of `secret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_from: Option<String>,
    /// Payload field (a dotted path) → regex the field's value must match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub payload_constraints: BTreeMap<String, String>,
    /// Anyone may start it: the trigger has no secret on purpose. Without a
    /// secret and without this, the trigger is refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub public: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArtifactTrigger {
    /// The APT repository (`gantry apt repo create NAME`).
    pub repository: String,
    /// Only this package; every package when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CronTrigger {
    /// `MIN HOUR DAY MONTH WEEKDAY`, e.g. `0 3 * * 1-5`.
    pub schedule: String,
    /// An IANA time zone (`Europe/Paris`); UTC when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineTrigger {
    pub pipeline: String,
    /// End statuses that start this pipeline; `succeeded` when not given.
    #[serde(default = "default_trigger_statuses")]
    pub status: Vec<String>,
}

fn default_trigger_statuses() -> Vec<String> {
    vec!["succeeded".to_owned()]
}

/// The `type:` names, as in `Trigger`'s serde names.
const TYPES: &[&str] = &["git", "webhook", "pipeline", "artifact", "cron"];

/// Execution statuses a `pipeline` trigger may wait for.
const END_STATUSES: &[&str] = &["succeeded", "failed", "canceled"];

/// `parameters`: the names the pipeline declares, which a trigger's `parameters` may set.
pub(crate) fn check_triggers(cx: &mut Checker<'_>, items: &[Node], parameters: &[&str]) -> Json {
    Json::Array(
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| check_trigger(cx, item, i, parameters))
            .collect(),
    )
}

fn check_trigger(
    cx: &mut Checker<'_>,
    node: &Node,
    index: usize,
    parameters: &[&str],
) -> Option<Json> {
    let mut f = Fields::new(cx, node, format!("trigger {}", index + 1))?;
    let (kind, kind_node) = f.required_string(cx, "type")?;
    match kind {
        "git" => {
            check_git(cx, &mut f);
            check_passed_values(cx, &mut f, parameters);
        }
        "webhook" => check_webhook(cx, &mut f),
        "pipeline" => check_pipeline(cx, &mut f),
        "cron" => check_cron(cx, &mut f),
        "artifact" => {
            f.required_string(cx, "repository");
            f.string(cx, "package");
        }
        _ => {
            let hint = match did_you_mean(kind, TYPES) {
                hint if !hint.is_empty() => hint,
                _ => format!("; known types: {}", TYPES.join(", ")),
            };
            cx.error(
                kind_node.span.start,
                format!("unknown trigger type {kind:?}{hint}"),
            );
            return Some(f.finish(cx, false));
        }
    }
    Some(f.finish(cx, true))
}

/// A trigger's `parameters` name declared parameters (unless a `config:` file brings its
/// own, checked when it is read), and its `substitutions` are Cloud Build user
/// substitutions (`_NAME`).
fn check_passed_values(cx: &mut Checker<'_>, f: &mut Fields<'_>, declared: &[&str]) {
    let from_file = f.key("config").is_some();
    if let Some(node) = f.get("parameters") {
        f.text_map(cx, "parameters");
        if let crate::yaml::Value::Map(entries) = &node.value {
            for (key, _) in entries {
                let name = key.scalar_text(cx.source).unwrap_or_default();
                if !from_file && !declared.contains(&name.as_ref()) {
                    let hint = match did_you_mean(&name, declared) {
                        hint if !hint.is_empty() => hint,
                        _ if declared.is_empty() => "; the pipeline declares none".to_owned(),
                        _ => format!("; it declares: {}", declared.join(", ")),
                    };
                    cx.error(
                        key.span.start,
                        format!("{}: the pipeline has no parameter {name:?}{hint}", f.what),
                    );
                }
            }
        }
    }
    if let Some(node) = f.get("substitutions") {
        f.text_map(cx, "substitutions");
        if let crate::yaml::Value::Map(entries) = &node.value {
            for (key, _) in entries {
                let name = key.scalar_text(cx.source).unwrap_or_default();
                let user = name.strip_prefix('_').is_some_and(|rest| {
                    !rest.is_empty()
                        && rest
                            .chars()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                });
                if !user {
                    cx.error(
                        key.span.start,
                        format!(
                            "{}: substitution {name:?} must be a user substitution: '_' then capitals, digits or '_' (as Cloud Build's _NAME)",
                            f.what
                        ),
                    );
                }
            }
        }
    }
}

fn check_git(cx: &mut Checker<'_>, f: &mut Fields<'_>) {
    let external = check_repository_or_url(cx, f);
    let branch = f.string(cx, "branch");
    let tag = f.string(cx, "tag");
    if let (Some(_), Some((_, node))) = (&branch, &tag) {
        cx.error(
            node.span.start,
            format!(
                "{} takes \"branch\" or \"tag\", not both (use two triggers)",
                f.what
            ),
        );
    }
    for (pattern, node) in branch.into_iter().chain(tag) {
        check_regex(cx, pattern, node);
    }
    for name in ["includedFiles", "ignoredFiles"] {
        for (glob, node) in f.strings(cx, name).unwrap_or_default() {
            if glob.trim().is_empty() {
                cx.error(node.span.start, format!("an entry of {name:?} is empty"));
            }
        }
    }
    check_secret(cx, f);
    if let Some((path, node)) = f.string(cx, "config")
        && !is_relative_path(path)
    {
        cx.error(
            node.span.start,
            format!("config {path:?} must be a relative path inside the repository"),
        );
    }
    if let Some(poll) = f.duration(cx, "poll") {
        if !external && let Some(key) = f.key("poll") {
            cx.error(
                key.span.start,
                "\"poll\" checks an external \"url\"; a hosted repository reports its pushes itself",
            );
        }
        if poll < std::time::Duration::from_secs(1)
            && let Some(key) = f.key("poll")
        {
            cx.error(key.span.start, "\"poll\" must be at least 1s");
        }
    }
}

fn check_webhook(cx: &mut Checker<'_>, f: &mut Fields<'_>) {
    if let Some((source, node)) = f.required_string(cx, "source")
        && (source.is_empty()
            || !source
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        cx.error(
            node.span.start,
            format!(
                "webhook source {source:?} must be letters, digits, '-', '_' or '.' (it is a url segment)"
            ),
        );
    }
    let has_secret = check_secret(cx, f);
    let public = f.bool(cx, "public");
    match (has_secret, public) {
        (false, None | Some(false)) => cx.error(
            f.at(),
            format!(
                "{} has no \"secret\" or \"secretFrom\", so anyone could start it: give it one, \
                 or say \"public: true\" if that is what you want",
                f.what
            ),
        ),
        (true, Some(true)) => {
            if let Some(key) = f.key("public") {
                cx.error(
                    key.span.start,
                    format!("{} has a secret, so it cannot be \"public\"", f.what),
                );
            }
        }
        _ => {}
    }
    if let Some(node) = f.get("payloadConstraints") {
        if let crate::yaml::Value::Map(entries) = &node.value {
            for (_, value) in entries {
                if let Some(pattern) = cx.string(value, "a payload constraint") {
                    check_regex(cx, pattern, value);
                }
            }
        }
        f.text_map(cx, "payloadConstraints");
    }
}

fn check_pipeline(cx: &mut Checker<'_>, f: &mut Fields<'_>) {
    f.required_string(cx, "pipeline");
    if let Some(statuses) = f.strings(cx, "status") {
        for (status, node) in statuses {
            if !END_STATUSES.contains(&status) {
                cx.error(
                    node.span.start,
                    format!(
                        "status {status:?} is not an end status: use {}{}",
                        END_STATUSES.join(", "),
                        did_you_mean(status, END_STATUSES)
                    ),
                );
            }
        }
    }
}

fn check_cron(cx: &mut Checker<'_>, f: &mut Fields<'_>) {
    if let Some((schedule, node)) = f.required_string(cx, "schedule") {
        let fields = schedule.split_whitespace().count();
        if fields != 5 {
            cx.error(
                node.span.start,
                format!(
                    "schedule {schedule:?} has {fields} fields; a cron schedule has 5: minute hour day-of-month month day-of-week"
                ),
            );
        } else if let Err(error) = schedule.parse::<croner::Cron>() {
            cx.error(
                node.span.start,
                format!("schedule {schedule:?} does not parse: {error}"),
            );
        }
    }
    if let Some((zone, node)) = f.string(cx, "timeZone")
        && zone.parse::<chrono_tz::Tz>().is_err()
    {
        cx.error(
            node.span.start,
            format!("unknown time zone {zone:?}; use an IANA name such as Europe/Paris or UTC"),
        );
    }
}

/// `repository` (hosted) or `url` (external, with optional `credentials`: a secret's name, as
/// `bake` names its registry credentials); true when it is a `url`. Git triggers and the
/// GitOps stages share these fields.
pub(crate) fn check_repository_or_url(cx: &mut Checker<'_>, f: &mut Fields<'_>) -> bool {
    let repository = f.string(cx, "repository");
    let url = f.string(cx, "url");
    match (&repository, &url) {
        (None, None) => cx.error(
            f.at(),
            format!(
                "{} needs \"repository\" (a hosted repository) or \"url\" (an external one)",
                f.what
            ),
        ),
        (Some(_), Some((_, node))) => cx.error(
            node.span.start,
            format!("{} takes \"repository\" or \"url\", not both", f.what),
        ),
        _ => {}
    }
    if let Some((_, node)) = f.string(cx, "credentials")
        && url.is_none()
    {
        cx.error(
            node.span.start,
            format!(
                "{}: \"credentials\" are for an external \"url\"; a hosted repository needs none",
                f.what
            ),
        );
    }
    url.is_some()
}

/// `secret` (the value, in the file) or `secretFrom` (the name of a secret-store secret);
/// true when either is given.
fn check_secret(cx: &mut Checker<'_>, f: &mut Fields<'_>) -> bool {
    let literal = f.string(cx, "secret");
    let from = f.string(cx, "secretFrom");
    let given = literal.is_some() || from.is_some();
    if let (Some(_), Some((_, node))) = (literal, from) {
        cx.error(
            node.span.start,
            format!(
                "{} takes \"secret\" (the value) or \"secretFrom\" (a secret's name), not both",
                f.what
            ),
        );
    }
    given
}

/// A path inside a repository: relative, without `..`.
fn is_relative_path(path: &str) -> bool {
    !path.is_empty() && !path.starts_with('/') && !path.split('/').any(|c| c == "..")
}

fn check_regex(cx: &mut Checker<'_>, pattern: &str, node: &Node) {
    if let Err(error) = regex::Regex::new(pattern) {
        // The regex crate's message spans several lines with a caret; its last line says what.
        let reason = error.to_string();
        let reason = reason
            .lines()
            .last()
            .unwrap_or("")
            .trim_start_matches("error: ");
        cx.error(
            node.span.start,
            format!("regex {pattern:?} does not parse: {reason}"),
        );
    }
}

/// The rule for names that are a segment of URLs and paths (repositories, pipelines): 1 to
/// 100 letters, digits, `.`, `_` and `-`, not starting with `.` or `-` (so never `.`, `..`
/// or an option of a command).
pub(crate) fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The top-level `repositories:` list: hosted repositories the file declares.
pub(crate) fn check_repositories(cx: &mut Checker<'_>, items: &[Node]) -> Json {
    let mut names = Vec::new();
    let mut out = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Some(mut f) = Fields::new(cx, item, format!("repository {}", index + 1)) else {
            continue;
        };
        if let Some((name, node)) = f.required_string(cx, "name") {
            f.rename(format!("repository {name:?}"));
            if !is_plain_name(name) || name.ends_with(".git") {
                cx.error(
                    node.span.start,
                    format!(
                        "repository name {name:?} must be letters, digits, '.', '_' and '-', not starting with '.' or '-' nor ending with .git"
                    ),
                );
            }
            names.push((name, node));
        }
        f.bool(cx, "public");
        out.push(f.finish(cx, true));
    }
    crate::pipeline::report_duplicates(cx, &names, "repository name");
    Json::Array(out)
}

/// A pipeline's `concurrency:` mapping.
pub(crate) fn check_concurrency(cx: &mut Checker<'_>, node: &Node) -> Json {
    let Some(mut f) = Fields::new(cx, node, "\"concurrency\"") else {
        return Json::Null;
    };
    if let Some(limit) = f.count(cx, "limit")
        && limit == 0
        && let Some(key) = f.key("limit")
    {
        cx.error(key.span.start, "\"limit\" must be at least 1");
    }
    f.choice(cx, "onConflict", &["queue", "cancelOlder"]);
    f.finish(cx, true)
}
