//! The trigger kinds, one shape each: a [`TriggerKind`] says which of a pipeline's `triggers:`
//! it handles, describes one for the listing, and follows its events (pushes, schedules,
//! executions ending, packages landing) to start what they trigger. Adding a kind is its file
//! and one line in [`KINDS`] (and its spec in `gantry-config/src/triggers.rs`).

use futures::future::BoxFuture;
use gantry_config::Trigger;
use tokio_util::sync::CancellationToken;

use crate::Triggers;

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
}

/// Every kind, one line each.
pub(crate) const KINDS: &[&dyn TriggerKind] = &[
    &crate::git::GitKind,
    &crate::generic::WebhookKind,
    &crate::cron::CronKind,
    &crate::chain::PipelineKind,
    &crate::artifact::ArtifactKind,
];

/// The kind that handles `trigger`.
pub(crate) fn kind_of(trigger: &Trigger) -> Option<&'static dyn TriggerKind> {
    KINDS.iter().copied().find(|kind| kind.handles(trigger))
}
