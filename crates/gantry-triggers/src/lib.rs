//! What starts executions besides a person: pushes to hosted repositories, GitHub, GitLab and
//! generic webhooks, schedules, packages landing in APT repositories, and other pipelines
//! ending. The orchestrator runs what this crate starts, through the narrow [`Orchestrator`]
//! trait; the API only hands requests over.
//!
//! - `kinds`: the [`kinds::TriggerKind`] trait and the registry of kinds (`git`, `webhook`,
//!   `cron`, `pipeline`, `artifact`), each in its own file.
//! - `watch`: the one watch of the applied pipelines all kinds read.
//! - `push`: one reported push (from the git server, a webhook or a poller), matched against
//!   every pipeline's `git` triggers and started once per pipeline and commit.
//! - `config`: a trigger's `config:`, the pipeline file read from the repository at the
//!   pushed commit (a `gantry.yaml` or a Cloud Build file).
//! - `filters`: branch and tag regexes, `includedFiles`/`ignoredFiles` globs (Cloud Build's
//!   semantics, see `gantry_config::glob`).
//! - `github`, `gitlab`, `generic`: verifying and reading webhook deliveries.
//! - `git`: the `git` kind: Gantry's own pushes (release tags, GitOps commits, through
//!   `Repositories::subscribe`) and `poll` (`ls-remote` on repositories that cannot send
//!   webhooks).
//! - `cron`: 5-field schedules in a time zone.
//! - `chain`: `pipeline` triggers, fed by the orchestrator's endings.
//! - `artifact`: `artifact` triggers, fed by the packages the store records as landed.
//! - `listing`: what watches what, for `GET /api/v1/triggers`.

#![forbid(unsafe_code)]

mod artifact;
mod chain;
mod config;
mod cron;
mod deliveries;
mod error;
mod filters;
mod generic;
mod git;
mod github;
mod gitlab;
mod kinds;
mod listing;
mod orchestrator;
mod poll;
mod push;
mod signature;
mod watch;
mod webhook;

use std::sync::Arc;

use gantry_git::Repositories;
use gantry_store::Store;

pub use error::{ManualRefError, WebhookError};
#[doc(hidden)]
pub use generic::read_delivery_body;
pub use kinds::{WebhookRoute, trigger_kind_names};
pub use listing::{SwitchError, TriggerView};
pub use orchestrator::{Ended, Orchestrator, SecretError, StartError, StartRequest};
pub use push::{Push, Source, Started};
pub use signature::github_signature;
pub use watch::{PipelineWatch, Pipelines};
pub use webhook::Delivery;

/// The trigger service; cheap to clone (clones share one [`PipelineWatch`]).
#[derive(Clone)]
pub struct Triggers {
    orchestrator: Arc<dyn Orchestrator>,
    store: Store,
    repos: Repositories,
    pipelines: PipelineWatch,
    refused: deliveries::RefusedBudget,
}

impl Triggers {
    pub fn new(orchestrator: Arc<dyn Orchestrator>, store: Store, repos: Repositories) -> Triggers {
        Triggers {
            orchestrator,
            pipelines: PipelineWatch::new(store.clone()),
            store,
            repos,
            refused: Default::default(),
        }
    }

    pub fn repositories(&self) -> &Repositories {
        &self.repos
    }

    /// Starts the background work until `shutdown`: the watch of the pipelines, and what
    /// every kind follows.
    pub fn start(&self, shutdown: tokio_util::sync::CancellationToken) {
        tokio::spawn(self.pipelines.clone().follow(shutdown.clone()));
        for kind in kinds::KINDS {
            if let Some(follow) = kind.follow(self.clone(), shutdown.clone()) {
                tokio::spawn(follow);
            }
        }
    }

    /// Starts one execution; the trigger kind that asked logs what became of it.
    async fn start_execution(
        &self,
        pipeline: &str,
        trigger: gantry_store::TriggerData,
    ) -> Result<String, StartError> {
        self.orchestrator
            .start(StartRequest {
                pipeline: pipeline.to_owned(),
                trigger,
                spec: None,
                parameters: Default::default(),
            })
            .await
    }

    /// The credentials the secret-store secret `name` holds (`user:password`, or a token).
    async fn credentials(&self, name: &str) -> Result<gantry_git::Credentials, String> {
        match self.orchestrator.secret(name).await {
            Ok(Some(value)) => Ok(gantry_git::Credentials::from_secret(&value)),
            Ok(None) => Err(format!("credentials secret {name:?} does not exist")),
            Err(SecretError::NoStore) => Err(format!(
                "credentials secret {name:?} needs a secret store, which this server lacks"
            )),
            Err(SecretError::Unreadable(error)) => {
                Err(format!("credentials secret {name:?}: {error}"))
            }
        }
    }

    /// A trigger's webhook secret: the value in the file (`secret`), or the secret store's
    /// (`secretFrom`). `None` when it has neither, or its secret cannot be read (then no
    /// delivery can match it, and the server log says why).
    async fn webhook_secret(&self, literal: Option<&str>, from: Option<&str>) -> Option<String> {
        if let Some(literal) = literal {
            return Some(literal.to_owned());
        }
        let name = from?;
        match self.orchestrator.secret(name).await {
            Ok(Some(value)) => Some(value),
            Ok(None) => {
                tracing::warn!(secret = %name, "a trigger's secretFrom names a secret that does not exist");
                None
            }
            Err(SecretError::NoStore) => {
                let error =
                    format!("secret {name:?} needs a secret store, which this server lacks");
                tracing::warn!(secret = %name, %error, "cannot read a trigger's secret");
                None
            }
            Err(SecretError::Unreadable(error)) => {
                let error = format!("secret {name:?}: {error}");
                tracing::warn!(secret = %name, %error, "cannot read a trigger's secret");
                None
            }
        }
    }

    /// Every applied pipeline that reads, with its spec, as the shared watch has them now.
    async fn pipelines(&self) -> Pipelines {
        self.pipelines.current().await
    }
}

#[cfg(test)]
mod tests;
