//! The lease clock: a task that marks lost the leases not renewed within
//! the lease TTL and hands their jobs back to their owners.
//!
//! It ticks every [`TICK`], so a dead runner's lease is lost between TTL and
//! TTL + TICK after its last heartbeat (5 to 5.25 s with the defaults). A
//! tick touches the store only when a lease in memory is past its expiry;
//! the store re-checks the expiry itself, so the decision is the database's.

use std::sync::Weak;
use std::time::Duration;

use super::dispatcher::Dispatcher;

pub(super) const TICK: Duration = Duration::from_millis(250);

/// Runs until the dispatcher is dropped.
pub(super) fn start(dispatcher: &Dispatcher) {
    let weak: Weak<_> = std::sync::Arc::downgrade(&dispatcher.0);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(inner) = weak.upgrade() else { break };
            if let Err(error) = Dispatcher(inner).expire_leases().await {
                tracing::error!(%error, "the lease clock could not expire leases");
            }
        }
    });
}
