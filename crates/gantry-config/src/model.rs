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

// The deploy family lives in `deploy/model.rs`.
use crate::deploy::model::{
    Application, DeployStage, LoadBalancer, ResizeServerGroupStage, RollbackClusterStage,
    ScaleDownClusterStage, ServerGroupStage,
};

/// A whole `gantry.yaml`. Later kinds (applications, load balancers,
/// repositories) become further top-level lists beside `pipelines`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Document {
    #[serde(default)]
    pub pipelines: Vec<Pipeline>,
    /// Repositories Gantry hosts, created by `apply` when missing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<Repository>,
    /// Applications that clusters and server groups belong to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<Application>,
    /// Built-in load balancers routing to clusters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancers: Vec<LoadBalancer>,
}

/// A repository Gantry hosts, served at `/git/NAME.git`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Repository {
    pub name: String,
    /// Anyone may clone and fetch it; pushing always needs a token.
    #[serde(default)]
    pub public: bool,
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
    /// What starts the pipeline besides a person (see [`Trigger`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<Trigger>,
    /// How many executions may run at once, and what happens to the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
}

/// GitLab's `resource_group`: at most `limit` executions of the pipeline run at once; a new
/// one waits (`queue`, it stays `pending`) or cancels the oldest running one (`cancelOlder`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Concurrency {
    #[serde(default = "default_concurrency_limit")]
    pub limit: u32,
    #[serde(default)]
    pub on_conflict: OnConflict,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OnConflict {
    #[default]
    Queue,
    CancelOlder,
}

fn default_concurrency_limit() -> u32 {
    1
}

/// What starts a pipeline, selected by `type:`. Checked in `triggers.rs`.
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
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub poll: Option<Duration>,
    /// A pipeline file in the repository, read at the pushed commit: a `gantry.yaml` whose
    /// pipeline (of this name, or its only one) gives the execution's stages and parameters,
    /// or a Cloud Build file, run as one `run` stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
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
    Deploy(DeployStage),
    ResizeServerGroup(ResizeServerGroupStage),
    EnableServerGroup(ServerGroupStage),
    DisableServerGroup(ServerGroupStage),
    DestroyServerGroup(ServerGroupStage),
    RollbackCluster(RollbackClusterStage),
    ScaleDownCluster(ScaleDownClusterStage),
    Release(ReleaseStage),
    GitCommit(GitCommitStage),
    GitPromote(GitPromoteStage),
    PackageDeb(PackageDebStage),
    PublishDeb(PublishDebStage),
    Bake(BakeStage),
    FindImage(FindImageStage),
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
            StageKind::Deploy(_) => "deploy",
            StageKind::ResizeServerGroup(_) => "resizeServerGroup",
            StageKind::EnableServerGroup(_) => "enableServerGroup",
            StageKind::DisableServerGroup(_) => "disableServerGroup",
            StageKind::DestroyServerGroup(_) => "destroyServerGroup",
            StageKind::RollbackCluster(_) => "rollbackCluster",
            StageKind::ScaleDownCluster(_) => "scaleDownCluster",
            StageKind::Release(_) => "release",
            StageKind::GitCommit(_) => "gitCommit",
            StageKind::GitPromote(_) => "gitPromote",
            StageKind::PackageDeb(_) => "packageDeb",
            StageKind::PublishDeb(_) => "publishDeb",
            StageKind::Bake(_) => "bake",
            StageKind::FindImage(_) => "findImage",
        }
    }

    pub const TYPE_NAMES: &'static [&'static str] = &[
        "run",
        "wait",
        "manualJudgment",
        "pipeline",
        "webhook",
        "checkPreconditions",
        "deploy",
        "resizeServerGroup",
        "enableServerGroup",
        "disableServerGroup",
        "destroyServerGroup",
        "rollbackCluster",
        "scaleDownCluster",
        "release",
        "gitCommit",
        "gitPromote",
        "packageDeb",
        "publishDeb",
        "bake",
        "findImage",
    ];
}

/// `bake`: builds an OCI image from a Containerfile/Dockerfile in the workspace, tags
/// and pushes it; outputs `image` and `digest`. Skipped (outputs of the earlier bake)
/// when the same inputs were baked before, unless `rebake`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BakeStage {
    /// `registry/repository:tag` to build and push.
    pub image: String,
    /// The build context, relative to the workspace (default: the workspace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Relative to the context; default `Containerfile`, else `Dockerfile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containerfile: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub build_args: BTreeMap<String, String>,
    /// Build and push even when the same inputs were baked before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rebake: bool,
    #[serde(default = "yes")]
    pub push: bool,
    #[serde(flatten)]
    pub registry: RegistryAccess,
}

/// How `bake` and `findImage` reach a registry (fields of the stage itself).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryAccess {
    /// `false` skips TLS verification (and allows plain HTTP); the default
    /// verifies, except for loopback registries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_verify: Option<bool>,
    /// A secret holding `user:password` for the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
}

/// `findImage`: the newest tag of a repository matching `pattern` (semver-aware);
/// outputs `image`, `tag` and `version` (the pattern's first group, else the tag).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FindImageStage {
    /// `registry/repository`.
    pub repository: String,
    /// A regular expression a tag must match whole, e.g. `^order_v(\d+\.\d+\.\d+)$`.
    pub pattern: String,
    #[serde(flatten)]
    pub registry: RegistryAccess,
}

/// `release`: bumps the newest `vX.Y.Z[-suffix]` tag of a hosted repository by the strongest
/// `[major]`/`[minor]`/`[patch]` marker of the commits since the last version tag (or of a
/// pull request's title in the trigger's webhook payload) and tags the commit
/// `vX.Y.Z-<short sha>`. Outputs `released`, `version`, `tag`, `previous`, `bump`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseStage {
    /// A hosted repository; the trigger's repository when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// The commit to tag; the trigger's commit when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Where the marker is looked for; when not given, a pull request's title in the
    /// trigger's payload, else the messages of every commit since the last version tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The bump when no marker is found; none means no marker, no release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_bump: Option<Bump>,
    /// The first version, when the repository has no version tag yet.
    #[serde(default = "default_initial_version")]
    pub initial_version: String,
    #[serde(default = "default_tag_prefix")]
    pub prefix: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Bump {
    Patch,
    Minor,
    Major,
}

/// `gitCommit`: writes `files` (inline content) and `fromWorkspace` (files a step rendered)
/// on `branch` of a hosted repository (or an external `url`), commits and pushes (which
/// triggers what watches that branch). Outputs `commit`, `changed`, `branch`, `repository`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitCommitStage {
    #[serde(flatten)]
    pub target: GitTarget,
    pub branch: String,
    /// Path in the repository → content.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    /// Path in the repository → path in the execution's workspace. A workspace directory
    /// replaces the repository directory whole (files it no longer has are removed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub from_workspace: BTreeMap<String, String>,
    /// The commit message; by default names the source commit and its author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Which repository `gitCommit` and `gitPromote` push to (fields of the stage itself).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitTarget {
    /// A hosted repository's name; or give `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// An external repository's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// With `url`: a secret holding `user:password` (or a bare token) for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
}

/// `gitPromote`: copies files as they are at `from` (a commit or branch) onto `to`, commits
/// and pushes (the `candidate` → `production` promotion). A branch `from` stands for the
/// commit this execution knows on it: the one its own `gitCommit` pushed there, else the one
/// whose push triggered it (so a re-run promotes what it deployed), else the branch's tip.
/// Outputs `commit`, `changed`, `source` (the commit promoted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitPromoteStage {
    #[serde(flatten)]
    pub target: GitTarget,
    pub from: String,
    pub to: String,
    /// Paths to copy; every file of `from` when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn default_initial_version() -> String {
    "0.1.0".to_owned()
}
fn default_tag_prefix() -> String {
    "v".to_owned()
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
    #[serde(default)]
    pub steps: Vec<Step>,
    /// A Cloud Build file in the workspace whose steps the stage runs
    /// (instead of `steps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// Cloud Build substitutions for `config` (`_NAME: value`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub substitutions: BTreeMap<String, String>,
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
}

/// A named volume mounted into a container step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepVolume {
    pub name: String,
    /// Absolute path inside the container.
    pub path: String,
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

/// An expression that must be true (or, with `clusterSize`, a count of a
/// cluster's server groups); `message` is the failure reported otherwise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Precondition {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub expression: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_size: Option<ClusterSizePrecondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Spinnaker's `clusterSize`: the number of live server groups of `cluster`
/// compared with `expected` (`==` by default).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSizePrecondition {
    pub cluster: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<crate::deploy::Comparison>,
    pub expected: u32,
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
fn default_trigger_statuses() -> Vec<String> {
    vec!["succeeded".to_owned()]
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

pub(crate) mod duration_opt {
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

/// `packageDeb`: builds a `.deb` from a directory of the workspace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackageDebStage {
    /// The tree to package, relative to the workspace.
    pub directory: String,
    /// The package name (`name:` is every stage's display name).
    pub package: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintainer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Maintainer scripts, files relative to the workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preinst: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postinst: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prerm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postrm: Option<String>,
    /// Where to write it, relative to the workspace (`NAME_VERSION_ARCH.deb`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// `publishDeb`: adds a `.deb` of the workspace to an APT repository, then
/// updates the repository's publications.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublishDebStage {
    pub repository: String,
    /// The package file, relative to the workspace.
    pub file: String,
    #[serde(default)]
    pub force_replace: bool,
}
