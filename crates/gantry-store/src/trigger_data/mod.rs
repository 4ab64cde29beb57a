//! What started an execution, as the execution's `trigger` records it: one typed value built by
//! whoever starts an execution (a person through the API, a trigger, a `pipeline` stage, a
//! re-run) and read by the engine (step environment, workspace checkout). It lives here, beside
//! the execution records that store it, because the engine, the triggers and the API all depend
//! on this crate and on nothing heavier to share it.
//!
//! Its JSON is exactly the shape executions have always stored and the API has always shown
//! (`{"type": "git", "commit": …}`), so stored executions read back unchanged; `tests.rs`
//! holds each shape.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An execution's `trigger`: its cause, and the re-run that repeated it, if any.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriggerData {
    #[serde(flatten)]
    pub cause: Cause,
    /// Set on a re-run (a rollback re-runs an earlier deploy): the execution repeated.
    #[serde(rename = "rerunOf", default, skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<String>,
    /// Who asked for the re-run.
    #[serde(rename = "rerunBy", default, skip_serializing_if = "Option::is_none")]
    pub rerun_by: Option<String>,
}

/// Why an execution started, tagged by `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Cause {
    /// A person (`gantry run`); with `--ref`, the commit of that ref as a push would give it.
    Manual {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        #[serde(flatten)]
        source: Option<GitPush>,
    },
    /// A push to a watched repository (hosted, webhook or polled).
    Git(GitPush),
    /// A generic webhook delivery whose payload met the trigger's constraints.
    Webhook { source: String, payload: Value },
    /// A schedule's occurrence.
    #[serde(rename_all = "camelCase")]
    Cron {
        schedule: String,
        time_zone: String,
        /// RFC 3339, UTC.
        scheduled_at: String,
    },
    /// A package landed in an APT repository.
    Artifact {
        repository: String,
        package: String,
        version: String,
        architecture: String,
    },
    /// Another execution: a `pipeline` stage's child, or a `pipeline` trigger's downstream.
    Pipeline(PipelineCause),
}

/// A push, as a `git` trigger records it: what `${{ trigger.* }}` and the step environment read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitPush {
    /// `git` (a hosted push), `github`, `gitlab`, `poll`, `manual` (`gantry run --ref`).
    pub via: String,
    /// A short name for `REPO_NAME`.
    pub repository: String,
    /// The clone URL of an external repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The full ref name (`refs/heads/main`).
    #[serde(rename = "ref")]
    pub reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    pub commit: String,
    /// The commit the ref pointed at before (forty zeros for a new ref).
    pub before: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pusher: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    /// The name of the secret the workspace checkout reads credentials from (never the value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    /// The trigger's `config:` file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// Why the `config:` file cannot run: the execution fails with it before any stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_error: Option<String>,
}

/// The two ways another execution starts one, told apart by their fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PipelineCause {
    /// A `pipeline` trigger: the upstream execution ended with a watched status. Tried first:
    /// only it has `upstream`, and an upstream that was itself a child passes its `parent*`
    /// fields on.
    Upstream(UpstreamEnded),
    /// A `pipeline` stage started it as its child.
    Child(ChildOf),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildOf {
    pub parent_execution: String,
    pub parent_pipeline: String,
    pub parent_stage: String,
    /// Who started the parent, `null` when no person did (kept as `null`, as stored).
    pub user: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpstreamEnded {
    pub upstream: Upstream,
    /// What started the upstream execution (its commit, …), field by field, so that the
    /// downstream one sees the same `trigger.commit`. Its `type` was replaced by `pipeline`,
    /// so it is kept as the fields it had rather than as a typed cause.
    #[serde(flatten)]
    pub inherited: Map<String, Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Upstream {
    pub pipeline: String,
    pub execution: String,
    pub status: String,
}

/// A stored trigger that none of the shapes above reads.
#[derive(Debug, thiserror::Error)]
#[error("unreadable trigger: {0}")]
pub struct UnreadableTrigger(#[from] serde_json::Error);

impl TriggerData {
    pub fn new(cause: Cause) -> TriggerData {
        TriggerData {
            cause,
            rerun_of: None,
            rerun_by: None,
        }
    }

    /// A person's run.
    pub fn manual(user: Option<String>) -> TriggerData {
        TriggerData::new(Cause::Manual { user, source: None })
    }

    /// Reads a stored execution's `trigger`.
    pub fn from_stored(value: &Value) -> Result<TriggerData, UnreadableTrigger> {
        Ok(TriggerData::deserialize(value)?)
    }

    /// The JSON stored with the execution.
    pub fn to_stored(&self) -> Value {
        // Serialising these types cannot fail: every key is a string, every value plain data.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The `type` field.
    pub fn type_name(&self) -> &'static str {
        match &self.cause {
            Cause::Manual { .. } => "manual",
            Cause::Git(_) => "git",
            Cause::Webhook { .. } => "webhook",
            Cause::Cron { .. } => "cron",
            Cause::Artifact { .. } => "artifact",
            Cause::Pipeline(_) => "pipeline",
        }
    }

    /// The person who started it, if one did.
    pub fn user(&self) -> Option<&str> {
        match &self.cause {
            Cause::Manual { user, .. } => user.as_deref(),
            Cause::Pipeline(PipelineCause::Child(child)) => child.user.as_deref(),
            Cause::Pipeline(PipelineCause::Upstream(upstream)) => {
                upstream.inherited.get("user").and_then(Value::as_str)
            }
            _ => None,
        }
    }

    /// The commit it names, for the step environment: a push's (or `--ref`'s), or the one an
    /// upstream execution's trigger named.
    pub fn git(&self) -> Option<GitPush> {
        match &self.cause {
            Cause::Git(push) => Some(push.clone()),
            Cause::Manual { source, .. } => source.clone(),
            Cause::Pipeline(PipelineCause::Upstream(upstream)) => {
                let text = |name: &str| {
                    upstream
                        .inherited
                        .get(name)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                Some(GitPush {
                    via: text("via").unwrap_or_default(),
                    repository: text("repository").unwrap_or_default(),
                    url: text("url"),
                    reference: text("ref").unwrap_or_default(),
                    branch: text("branch"),
                    tag: text("tag"),
                    commit: text("commit").unwrap_or_default(),
                    before: text("before").unwrap_or_default(),
                    author: text("author"),
                    message: text("message"),
                    pusher: text("pusher"),
                    delivery_id: text("deliveryId"),
                    credentials: text("credentials"),
                    config: text("config"),
                    config_error: text("configError"),
                })
            }
            _ => None,
        }
    }
}

impl Default for TriggerData {
    /// A run by hand with nobody named: what an API call without a trigger records.
    fn default() -> TriggerData {
        TriggerData::manual(None)
    }
}

#[cfg(test)]
mod tests;
