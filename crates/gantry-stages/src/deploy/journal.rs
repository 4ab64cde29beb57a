//! The rollout's journal in the deploy stage's durable state (`rollout`):
//! the step reached and the deadlines of the pauses begun, written before
//! the rollout acts on them, so a deploy resumed after a restart goes on
//! from its step and its pauses keep their deadlines.

use futures::future::{BoxFuture, FutureExt};
use gantry_deploy::DeployError;
use gantry_deploy::strategies::{Journal, RolloutRecord};
use serde_json::{Map, Value};

use super::super::StageContext;
use gantry_engine::stage_kit::EngineError;

/// The field of the stage state that holds the [`RolloutRecord`].
const FIELD: &str = "rollout";

pub(super) struct StageJournal<'a> {
    pub(super) ctx: &'a StageContext,
}

impl Journal for StageJournal<'_> {
    fn load(&self) -> BoxFuture<'_, Result<RolloutRecord, DeployError>> {
        async move {
            match self.ctx.state().await.get(FIELD) {
                Some(record) => serde_json::from_value(record.clone()).map_err(|e| {
                    DeployError::Failed(format!("the recorded rollout cannot be read: {e}"))
                }),
                None => Ok(RolloutRecord::default()),
            }
        }
        .boxed()
    }

    fn save(&self, record: RolloutRecord) -> BoxFuture<'_, Result<(), DeployError>> {
        async move {
            let record = serde_json::to_value(record)
                .map_err(|e| DeployError::Failed(format!("cannot record the rollout: {e}")))?;
            edit_state(self.ctx, |state| {
                state.insert(FIELD.to_owned(), record);
            })
            .await
            .map(|_| ())
            .map_err(|e| DeployError::Failed(format!("cannot record the rollout: {e}")))
        }
        .boxed()
    }
}

/// Changes fields of the stage's durable state in place, in one
/// transition: the rollout and the people answering it write into the same
/// state concurrently, and a read-then-replace would lose the other's
/// fields. Returns the state as saved.
pub(super) async fn edit_state(
    ctx: &StageContext,
    edit: impl FnOnce(&mut Map<String, Value>),
) -> Result<Value, EngineError> {
    ctx.edit_state(|state| {
        if !state.is_object() {
            *state = Value::Object(Map::new());
        }
        if let Value::Object(fields) = state {
            edit(fields);
        }
        state.clone()
    })
    .await
}
