//! What starts executions besides a person: pushes to hosted repositories, GitHub, GitLab and
//! generic webhooks, and other pipelines ending. The engine runs what this crate starts; the
//! API only hands requests over.
//!
//! - `push`: one reported push (from the git server, a webhook or a poller), matched against
//!   every pipeline's `git` triggers and started once per pipeline and commit.
//! - `config`: a trigger's `config:`, the pipeline file read from the repository at the
//!   pushed commit (a `gantry.yaml` or a Cloud Build file).
//! - `filters`: branch and tag regexes, `includedFiles`/`ignoredFiles` globs (Cloud Build's
//!   semantics, see `glob`).
//! - `github`, `gitlab`, `generic`: verifying and reading webhook deliveries.
//! - `poll`: `ls-remote` on external repositories that cannot send webhooks.
//! - `cron`: 5-field schedules in a time zone.
//! - `chain`: `pipeline` triggers, fed by the engine's execution events. Pushes Gantry makes
//!   itself (release tags, GitOps commits) arrive through `Repositories::subscribe`.
//! - `listing`: what watches what, for `GET /api/v1/triggers`.

#![forbid(unsafe_code)]

mod chain;
mod config;
mod cron;
mod error;
mod filters;
mod generic;
mod github;
mod gitlab;
mod glob;
mod listing;
mod poll;
mod push;
mod signature;
mod webhook;

use gantry_config::Pipeline;
use gantry_engine::Engine;
use gantry_git::Repositories;

pub use error::WebhookError;
#[doc(hidden)]
pub use generic::read_delivery_body;
pub use listing::TriggerView;
pub use push::{Push, Source, Started};
pub use signature::github_signature;
pub use webhook::Delivery;

/// The trigger service; cheap to clone.
#[derive(Clone)]
pub struct Triggers {
    engine: Engine,
    repos: Repositories,
}

impl Triggers {
    pub fn new(engine: Engine, repos: Repositories) -> Triggers {
        Triggers { engine, repos }
    }

    pub fn repositories(&self) -> &Repositories {
        &self.repos
    }

    /// Starts the background work until `shutdown`: `pipeline` triggers follow the engine's
    /// events, pushes stages make are dispatched, pollers poll.
    pub fn start(&self, shutdown: tokio_util::sync::CancellationToken) {
        tokio::spawn(chain::follow(self.clone(), shutdown.clone()));
        tokio::spawn(push::follow_local_pushes(self.clone(), shutdown.clone()));
        tokio::spawn(poll::run(self.clone(), shutdown.clone()));
        tokio::spawn(cron::run(self.clone(), shutdown));
    }

    /// The credentials the secret-store secret `name` holds (`user:password`, or a token).
    async fn credentials(&self, name: &str) -> Result<gantry_git::Credentials, String> {
        self.engine.git_credentials(name).await
    }

    /// A trigger's webhook secret: the value in the file (`secret`), or the secret store's
    /// (`secretFrom`). `None` when it has neither, or its secret cannot be read (then no
    /// delivery can match it, and the server log says why).
    async fn webhook_secret(&self, literal: Option<&str>, from: Option<&str>) -> Option<String> {
        if let Some(literal) = literal {
            return Some(literal.to_owned());
        }
        let name = from?;
        match self.secret(name).await {
            Ok(Some(value)) => Some(value),
            Ok(None) => {
                tracing::warn!(secret = %name, "a trigger's secretFrom names a secret that does not exist");
                None
            }
            Err(error) => {
                tracing::warn!(secret = %name, %error, "cannot read a trigger's secret");
                None
            }
        }
    }

    async fn secret(&self, name: &str) -> Result<Option<String>, String> {
        let store = self.engine.secrets().ok_or_else(|| {
            format!("secret {name:?} needs a secret store, which this server lacks")
        })?;
        store
            .get(name)
            .await
            .map_err(|e| format!("secret {name:?}: {e}"))
    }

    /// Every applied pipeline that reads, with its spec; unreadable specs are skipped (the
    /// engine reports them when run).
    async fn pipelines(&self) -> Vec<Pipeline> {
        match self.engine.store().pipelines().await {
            Ok(records) => records
                .into_iter()
                .filter_map(|r| serde_json::from_value(r.spec).ok())
                .collect(),
            Err(error) => {
                tracing::error!(%error, "cannot read pipelines for triggers");
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests;
