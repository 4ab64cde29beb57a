//! How far a rollout got, recorded durably before it acts: the step it is
//! on and the absolute deadlines of the pauses it began. A rollout resumed
//! after a restart of the server reads the record back and goes on from
//! the step it reached, and a pause ends when it would have ended had the
//! server not stopped.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::error::DeployError;

/// Where a rollout keeps its [`RolloutRecord`]. The engine's deploy stage
/// keeps it in the stage's durable state (`gantry-engine`
/// `stages/deploy/journal.rs`).
pub trait Journal: Send + Sync {
    /// What an earlier attempt of this deploy recorded (the default record
    /// on a first attempt).
    fn load(&self) -> BoxFuture<'_, Result<RolloutRecord, DeployError>>;

    /// Persists `record`; it is durable once the future resolves.
    fn save(&self, record: RolloutRecord) -> BoxFuture<'_, Result<(), DeployError>>;
}

/// What a rollout has reached.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutRecord {
    /// The index of the step being acted on: the steps before it are done
    /// and are not run again; this one is run again (every step is
    /// idempotent).
    #[serde(default)]
    pub step: usize,
    /// When each pause begun ends, in milliseconds since the Unix epoch
    /// (wall-clock time, so that it means the same after a restart), by
    /// the pause's name in its strategy.
    #[serde(default)]
    pub pauses: BTreeMap<String, u64>,
    /// The canary analyses that ended, oldest first: what people see of
    /// them, kept whether they passed or not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub analyses: Vec<gantry_wire::deploy::CanaryAnalysis>,
}

impl RolloutRecord {
    /// The deadline of pause `name`, recorded now if it was not yet.
    /// Returns the deadline and whether it is new (to be saved).
    pub(crate) fn deadline(&mut self, name: &str, duration: Duration) -> (u64, bool) {
        if let Some(deadline) = self.pauses.get(name) {
            return (*deadline, false);
        }
        let deadline = now_millis().saturating_add(duration.as_millis() as u64);
        self.pauses.insert(name.to_owned(), deadline);
        (deadline, true)
    }
}

pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// How long until `deadline` (zero once it has passed).
pub(crate) fn until(deadline: u64) -> Duration {
    Duration::from_millis(deadline.saturating_sub(now_millis()))
}
