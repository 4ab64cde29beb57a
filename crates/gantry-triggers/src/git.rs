//! The `git` kind: pushes to a repository. Deliveries (GitHub, GitLab, the git server) come in
//! as requests and reach `Triggers::dispatch`; what it follows itself is Gantry's own pushes
//! (release tags, GitOps commits, `push::follow_local_pushes`) and the polling of external
//! repositories that cannot send webhooks (`poll`).

use futures::future::BoxFuture;
use gantry_config::Trigger;
use tokio_util::sync::CancellationToken;

use crate::kinds::{TriggerKind, WebhookRequest, WebhookRoute};
use crate::{Delivery, Triggers, WebhookError};

pub(crate) struct GitKind;

impl TriggerKind for GitKind {
    fn name(&self) -> &'static str {
        "git"
    }

    /// GitHub's and GitLab's push events.
    fn webhook<'a>(
        &self,
        triggers: &'a Triggers,
        request: WebhookRequest<'a>,
    ) -> Option<BoxFuture<'a, Result<Delivery, WebhookError>>> {
        let WebhookRequest { headers, body, .. } = request;
        match request.route {
            WebhookRoute::Github => Some(Box::pin(triggers.github(headers, body))),
            WebhookRoute::Gitlab => Some(Box::pin(triggers.gitlab(headers, body))),
            WebhookRoute::Generic { .. } => None,
        }
    }

    fn describe(&self, trigger: &Trigger) -> String {
        let Trigger::Git(git) = trigger else {
            return String::new();
        };
        let mut parts = Vec::new();
        if let Some(repo) = &git.repository {
            parts.push(format!("repository {repo}"));
        }
        if let Some(url) = &git.url {
            parts.push(url.clone());
        }
        match (&git.branch, &git.tag) {
            (Some(b), _) => parts.push(format!("branch {b}")),
            (None, Some(t)) => parts.push(format!("tag {t}")),
            (None, None) => parts.push("any branch".to_owned()),
        }
        if let Some(poll) = git.poll {
            parts.push(format!("polled every {}s", poll.as_secs()));
        }
        if !git.included_files.is_empty() {
            parts.push(format!("files {}", git.included_files.join(" ")));
        }
        if !git.ignored_files.is_empty() {
            parts.push(format!("ignoring {}", git.ignored_files.join(" ")));
        }
        if let Some(config) = &git.config {
            parts.push(format!("pipeline from {config}"));
        }
        parts.join(", ")
    }

    fn follow(
        &self,
        triggers: Triggers,
        shutdown: CancellationToken,
    ) -> Option<BoxFuture<'static, ()>> {
        Some(Box::pin(async move {
            tokio::join!(
                crate::push::follow_local_pushes(triggers.clone(), shutdown.clone()),
                crate::poll::run(triggers, shutdown),
            );
        }))
    }
}
