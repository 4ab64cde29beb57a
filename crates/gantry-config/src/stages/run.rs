//! `run`: steps sharing one workspace, on the host or in containers, ordered
//! by Cloud Build's `waitFor` rules; or the steps of a Cloud Build file in
//! the workspace (`config`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::duration::opt as duration_opt;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

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
    #[serde(default)]
    pub steps: Vec<Step>,
    /// A Cloud Build file in the workspace whose steps the stage runs
    /// (instead of `steps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// Cloud Build substitutions for `config` (`_NAME: value`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub substitutions: BTreeMap<String, String>,
    /// Runs the steps on runners that have all these labels (steps may
    /// name their own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs_on: Vec<String>,
    /// How long a step waits for a runner before the stage fails
    /// (default: the server's `--runner-wait`).
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub runner_wait: Option<Duration>,
    /// How the `images` of the `config` file are pushed.
    #[serde(flatten)]
    pub registry: RegistryAccess,
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
    /// Runs the step in a container of this image, the workspace mounted at
    /// `/workspace`; without it the step runs on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Container steps: overrides the image's entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<String>,
    /// Container steps: arguments to the entrypoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Container steps: named volumes, shared by the stage's steps that mount them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<StepVolume>,
    /// The name `waitFor` refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Cloud Build's rule: absent, the step waits for every earlier step;
    /// `["-"]`, it starts at once; otherwise it waits for the named steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for: Option<Vec<String>>,
    /// A failure of this step does not fail the stage.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_failure: bool,
    /// Exit codes that count as success besides 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_exit_codes: Vec<i32>,
    /// Environment variables whose values come from the secret store, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_env: Vec<String>,
    /// Runs this step on runners with all these labels (instead of the
    /// stage's `runsOn`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs_on: Vec<String>,
}

/// A named volume mounted into a container step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepVolume {
    pub name: String,
    /// Absolute path inside the container.
    pub path: String,
}

/// The `run` stage type.
pub struct Run;

impl StageType for Run {
    type Spec = RunStage;

    fn secret_names(spec: &RunStage) -> Vec<SecretName> {
        run_secret_names(spec)
    }
}

impl CheckStageType for Run {
    fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
        check(stage, cx)
    }
}

use serde_json::Value as Json;

use super::RegistryAccess;
use super::{CheckStageType, SecretName, StageFields, StageType};
use crate::check::{Checker, Fields};
use crate::yaml::{Node, Value};

const ON_INTERRUPT: &[&str] = &["rerun", "fail"];

fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    super::bake::check_registry_access(stage, cx);
    let f = &mut stage.fields;
    f.text_map(cx, "env");
    f.choice(cx, "onInterrupt", ON_INTERRUPT);
    check_runs_on(cx, f);
    f.duration(cx, "runnerWait");
    let config = f.string(cx, "config");
    f.text_map(cx, "substitutions");
    if let Some((path, node)) = config {
        if path.trim().is_empty() {
            cx.error(
                node.span.start,
                format!("{} has an empty \"config\"", f.what),
            );
        }
        if let Some(key) = f.key("steps") {
            cx.error(
                key.span.start,
                format!("{} has both \"steps\" and \"config\"; give one", f.what),
            );
        }
        return;
    }
    // What only a Cloud Build file uses: its substitutions, and the
    // registry access for pushing its `images`.
    for name in ["substitutions", "tlsVerify", "credentials"] {
        if let Some(key) = f.key(name) {
            cx.error(
                key.span.start,
                format!("{}: {name:?} only applies with \"config\"", f.what),
            );
        }
    }
    let Some(steps_node) = f.get("steps") else {
        cx.error(
            f.at(),
            format!(
                "{} is missing \"steps\" (or a Cloud Build file in \"config\")",
                f.what
            ),
        );
        return;
    };
    let Some(steps) = cx.list(steps_node, "\"steps\"") else {
        return;
    };
    if steps.is_empty() {
        cx.error(steps_node.span.start, format!("{} has no steps", f.what));
    }
    let what = f.what.clone();
    let mut ids = HashSet::new();
    let steps: Vec<Json> = steps
        .iter()
        .enumerate()
        .filter_map(|(index, step)| {
            check_step(cx, step, format!("step {} of {what}", index + 1), &mut ids)
        })
        .collect();
    f.insert("steps", Json::Array(steps));
}

fn check_step(
    cx: &mut Checker<'_>,
    node: &Node,
    what: String,
    ids: &mut HashSet<String>,
) -> Option<Json> {
    let mut f = Fields::new(cx, node, what)?;
    if let Some((name, _)) = f.string(cx, "name") {
        let what = format!("step {name:?} ({})", f.what);
        f.rename(what);
    }
    let image = f.string(cx, "image").map(|(image, _)| image);
    let script = f.string(cx, "script");
    let command = f.texts(cx, "command");
    let args = f.texts(cx, "args");
    let entrypoint = f.string(cx, "entrypoint");
    if image.is_none() {
        for field in ["entrypoint", "args", "volumes"] {
            if let Some(key) = f.key(field) {
                cx.error(
                    key.span.start,
                    format!(
                        "{}: {field:?} only applies to a container step (one with an \"image\")",
                        f.what
                    ),
                );
            }
        }
    }
    let given: Vec<&str> = [
        ("script", script.is_some() || f.key("script").is_some()),
        ("command", command.is_some() || f.key("command").is_some()),
        (
            "args",
            image.is_some() && (args.is_some() || entrypoint.is_some()),
        ),
    ]
    .into_iter()
    .filter(|(_, given)| *given)
    .map(|(name, _)| name)
    .collect();
    if let [first, second, ..] = given.as_slice() {
        let at = f.key(second).map_or(f.at(), |key| key.span.start);
        cx.error(
            at,
            format!("{} has both {first:?} and {second:?}; give one", f.what),
        );
    } else if given.is_empty() && image.is_none() {
        cx.error(
            f.at(),
            format!(
                "{} needs a \"script\" (run by sh -e) or a \"command\" (a list of arguments)",
                f.what
            ),
        );
    }
    if let Some((script, node)) = script
        && script.trim().is_empty()
    {
        cx.error(node.span.start, format!("{} has an empty script", f.what));
    }
    if let Some(command) = &command
        && command.is_empty()
    {
        let at = f.get("command").map_or(f.at(), |node| node.span.start);
        cx.error(
            at,
            format!(
                "{} has an empty command; give the program and its arguments",
                f.what
            ),
        );
    }
    if let Some(image) = f.get("image")
        && image.as_str().is_some_and(|i| i.trim().is_empty())
    {
        cx.error(image.span.start, format!("{} has an empty image", f.what));
    }
    f.text_map(cx, "env");
    f.string(cx, "dir");
    f.duration(cx, "timeout");
    f.choice(cx, "onInterrupt", ON_INTERRUPT);
    f.bool(cx, "allowFailure");
    check_runs_on(cx, &mut f);
    check_exit_codes(cx, &mut f);
    check_secret_env(cx, &mut f);
    check_volumes(cx, &mut f);
    check_graph(cx, &mut f, ids);
    Some(f.finish(cx, true))
}

/// `runsOn`: runner labels, as `gantry runner --labels` takes them.
fn check_runs_on(cx: &mut Checker<'_>, f: &mut Fields<'_>) {
    let Some(labels) = f.strings(cx, "runsOn") else {
        return;
    };
    for (label, node) in labels {
        let plain = label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if label.is_empty() || label.len() > 64 || !plain {
            cx.error(
                node.span.start,
                format!(
                    "{}: runsOn label {label:?} must be 1 to 64 letters, digits or - _ .",
                    f.what
                ),
            );
        }
    }
}

fn check_exit_codes(cx: &mut Checker<'_>, f: &mut Fields<'_>) {
    let Some(node) = f.get("allowExitCodes") else {
        return;
    };
    let Some(items) = cx.list(node, "\"allowExitCodes\"") else {
        return;
    };
    let mut codes = Vec::new();
    for item in items {
        match item.value {
            Value::Int(code) if (0..=255).contains(&code) => codes.push(Json::from(code as i64)),
            _ => cx.error(
                item.span.start,
                format!(
                    "{}: an entry of \"allowExitCodes\" must be an exit code from 0 to 255, not {}",
                    f.what,
                    item.describe()
                ),
            ),
        }
    }
    f.insert("allowExitCodes", Json::Array(codes));
}

fn check_secret_env(cx: &mut Checker<'_>, f: &mut Fields<'_>) {
    let Some(names) = f.strings(cx, "secretEnv") else {
        return;
    };
    for (entry, node) in names {
        // `NAME`, or `VARIABLE=SECRET` when the two names differ.
        let (name, secret) = entry.split_once('=').unwrap_or((entry, entry));
        if !is_env_name(name) || secret.is_empty() {
            cx.error(
                node.span.start,
                format!(
                    "{}: secretEnv entry {entry:?} must be NAME or VARIABLE=SECRET",
                    f.what
                ),
            );
        }
    }
}

fn check_volumes(cx: &mut Checker<'_>, f: &mut Fields<'_>) {
    let Some(node) = f.get("volumes") else {
        return;
    };
    let Some(items) = cx.list(node, "\"volumes\"") else {
        return;
    };
    let what = f.what.clone();
    let mut volumes = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Some(mut v) = Fields::new(cx, item, format!("volume {} of {what}", index + 1)) else {
            continue;
        };
        if let Some((name, node)) = v.required_string(cx, "name")
            && !is_volume_name(name)
        {
            cx.error(
                node.span.start,
                format!(
                    "{}: volume name {name:?} must be letters, digits, '-', '_' or '.'",
                    v.what
                ),
            );
        }
        if let Some((path, node)) = v.required_string(cx, "path")
            && (!path.starts_with('/') || path == "/workspace" || path.starts_with("/workspace/"))
        {
            cx.error(
                node.span.start,
                format!(
                    "{}: path {path:?} must be absolute and outside /workspace",
                    v.what
                ),
            );
        }
        volumes.push(v.finish(cx, true));
    }
    f.insert("volumes", Json::Array(volumes));
}

/// `id` must be new; `waitFor` may only name earlier steps (Cloud Build's
/// rule, which also makes a cycle impossible) or be `["-"]`.
fn check_graph(cx: &mut Checker<'_>, f: &mut Fields<'_>, ids: &mut HashSet<String>) {
    if let Some(waits) = f.strings(cx, "waitFor") {
        let dash = waits.iter().any(|(w, _)| *w == "-");
        for (wait, node) in &waits {
            if *wait == "-" {
                if waits.len() > 1 {
                    cx.error(
                        node.span.start,
                        format!(
                            "{}: waitFor \"-\" (start at once) cannot be combined with step ids",
                            f.what
                        ),
                    );
                }
            } else if !ids.contains(*wait) && !dash {
                cx.error(
                    node.span.start,
                    format!(
                        "{} waits for {wait:?}, which is not the id of an earlier step",
                        f.what
                    ),
                );
            }
        }
    }
    if let Some((id, node)) = f.string(cx, "id") {
        if id == "-" || id.trim().is_empty() {
            cx.error(
                node.span.start,
                format!("{}: {id:?} is not a valid step id", f.what),
            );
        } else if !ids.insert(id.to_owned()) {
            cx.error(
                node.span.start,
                format!("{}: step id {id:?} is used twice", f.what),
            );
        }
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_volume_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The secrets a run stage names: its steps' `secretEnv` (`NAME` or `VAR=NAME`), the registry
/// credentials its Cloud Build file pushes with, and that file's own `secretEnv`.
fn run_secret_names(spec: &RunStage) -> Vec<SecretName> {
    let mut names: Vec<SecretName> = spec
        .steps
        .iter()
        .flat_map(|step| &step.secret_env)
        .map(|entry| {
            let name = entry
                .split_once('=')
                .map_or(entry.as_str(), |(_, name)| name);
            SecretName::Value(name.to_owned())
        })
        .collect();
    names.extend(SecretName::credentials(
        spec.registry.credentials.as_deref(),
    ));
    names.extend(spec.config.iter().cloned().map(SecretName::CloudBuildFile));
    names
}
