//! The trigger kinds, one shape each: a [`TriggerKind`] says which of a pipeline's `triggers:`
//! it handles, describes one for the listing, follows its events (pushes, schedules,
//! executions ending, packages landing) to start what they trigger, and takes the webhook
//! deliveries sent to its routes. Adding a kind is its file
//! and one line in [`KINDS`] (and its spec in `gantry-config/src/triggers.rs`).

use futures::future::BoxFuture;
use gantry_config::Trigger;
use http::HeaderMap;
use tokio_util::sync::CancellationToken;

use crate::{Delivery, Triggers, WebhookError};

/// Where a webhook delivery was sent: `/webhooks/github`, `/webhooks/gitlab` or
/// `/webhooks/generic/SOURCE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookRoute<'a> {
    Github,
    Gitlab,
    Generic { source: &'a str },
}

impl WebhookRoute<'_> {
    /// The sender, as metrics and logs name it.
    pub fn provider(&self) -> &'static str {
        match self {
            WebhookRoute::Github => "github",
            WebhookRoute::Gitlab => "gitlab",
            WebhookRoute::Generic { .. } => "generic",
        }
    }
}

/// A webhook delivery as the API received it: the body read whole, not yet verified.
pub(crate) struct WebhookRequest<'a> {
    pub route: WebhookRoute<'a>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// One kind of trigger.
pub(crate) trait TriggerKind: Send + Sync {
    /// The `type` of the triggers it handles, as written in `gantry.yaml`.
    fn name(&self) -> &'static str;

    /// Whether `trigger` is one of its own: those whose `type` is its name.
    fn handles(&self, trigger: &Trigger) -> bool {
        trigger.type_name() == self.name()
    }

    /// What one of its triggers watches, in a few words (`repository app, branch ^main$`).
    fn describe(&self, trigger: &Trigger) -> String;

    /// Follows its events until `shutdown`, starting what they trigger; called once when the
    /// server starts. Kinds that only answer requests (webhook deliveries) follow nothing.
    fn follow(
        &self,
        triggers: Triggers,
        shutdown: CancellationToken,
    ) -> Option<BoxFuture<'static, ()>> {
        let _ = (triggers, shutdown);
        None
    }

    /// Takes a webhook delivery sent to one of its routes, verifying its signature or token
    /// before reading it; `None` when the route is not its own.
    fn webhook<'a>(
        &self,
        triggers: &'a Triggers,
        request: WebhookRequest<'a>,
    ) -> Option<BoxFuture<'a, Result<Delivery, WebhookError>>> {
        let _ = (triggers, request);
        None
    }
}

/// Every kind, one line each.
pub(crate) const KINDS: &[&dyn TriggerKind] = &[
    &crate::git::GitKind,
    &crate::generic::WebhookKind,
    &crate::cron::CronKind,
    &crate::chain::PipelineKind,
    &crate::artifact::ArtifactKind,
];

/// The names of every kind, as the delivery log and the API spell them.
pub fn trigger_kind_names() -> Vec<&'static str> {
    KINDS.iter().map(|kind| kind.name()).collect()
}

impl Triggers {
    /// A webhook delivery, taken by the kind whose route it was sent to,
    /// and added to the delivery log with what became of it.
    pub async fn webhook(
        &self,
        route: WebhookRoute<'_>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Delivery, WebhookError> {
        let result = self.take_webhook(route, headers, body).await;
        self.log_delivery(route, &result).await;
        result
    }

    async fn take_webhook(
        &self,
        route: WebhookRoute<'_>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Delivery, WebhookError> {
        for kind in KINDS {
            let request = WebhookRequest {
                route,
                headers,
                body,
            };
            if let Some(delivery) = kind.webhook(self, request) {
                return delivery.await;
            }
        }
        Err(WebhookError::NotFound(format!(
            "no trigger kind takes {} webhooks",
            route.provider()
        )))
    }
}

/// The kind that handles `trigger`.
pub(crate) fn kind_of(trigger: &Trigger) -> Option<&'static dyn TriggerKind> {
    KINDS.iter().copied().find(|kind| kind.handles(trigger))
}
