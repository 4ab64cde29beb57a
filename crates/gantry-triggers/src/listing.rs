//! What watches what: one row per trigger of every pipeline, for `gantry trigger list`, and
//! switching one off and on (`gantry trigger disable|enable PIPELINE#N`).

use gantry_config::{Pipeline, Trigger};
use serde::Serialize;

use crate::Triggers;
use crate::kinds::kind_of;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerView {
    /// `PIPELINE#N`: the pipeline and the trigger's 1-based position in its `triggers`.
    pub id: String,
    pub pipeline: String,
    pub position: u32,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Whether it fires: a person can switch it off without editing the file.
    pub enabled: bool,
    /// What it watches, in a few words (`repository app, branch ^main$, files src/**`).
    pub watches: String,
    /// The trigger as applied, without its secret.
    pub spec: serde_json::Value,
}

/// Why a trigger cannot be switched.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("no pipeline {0:?}")]
    NoPipeline(String),
    #[error("pipeline {pipeline:?} has {count} trigger(s); there is no trigger #{position}")]
    NoTrigger {
        pipeline: String,
        position: u32,
        count: usize,
    },
    #[error(transparent)]
    Store(#[from] gantry_store::StoreError),
}

impl Triggers {
    /// Every trigger of every applied pipeline, disabled ones included. Reads the store (not
    /// the watch, which leaves disabled triggers out).
    pub async fn list(&self) -> Result<Vec<TriggerView>, gantry_store::StoreError> {
        let mut views = Vec::new();
        for record in self.store.pipelines().await? {
            let Ok(pipeline) = serde_json::from_value::<Pipeline>(record.spec) else {
                continue;
            };
            for (index, trigger) in pipeline.triggers.iter().enumerate() {
                let position = u32::try_from(index + 1).unwrap_or(u32::MAX);
                views.push(view(
                    &pipeline.name,
                    position,
                    trigger,
                    !record.disabled_triggers.contains(&position),
                ));
            }
        }
        Ok(views)
    }

    /// Switches trigger `position` (1-based) of `pipeline` on or off; the watch sees it at
    /// once here, and on other servers sharing the database within its notice interval.
    pub async fn set_enabled(
        &self,
        pipeline: &str,
        position: u32,
        enabled: bool,
    ) -> Result<TriggerView, SwitchError> {
        let record = self
            .store
            .pipeline(pipeline)
            .await?
            .ok_or_else(|| SwitchError::NoPipeline(pipeline.to_owned()))?;
        let spec: Pipeline = serde_json::from_value(record.spec)
            .map_err(|_| SwitchError::NoPipeline(pipeline.to_owned()))?;
        let trigger = usize::try_from(position)
            .ok()
            .and_then(|p| p.checked_sub(1))
            .and_then(|index| spec.triggers.get(index))
            .ok_or(SwitchError::NoTrigger {
                pipeline: pipeline.to_owned(),
                position,
                count: spec.triggers.len(),
            })?;
        if self
            .store
            .set_trigger_enabled(pipeline, position, enabled)
            .await?
            .is_none()
        {
            return Err(SwitchError::NoPipeline(pipeline.to_owned()));
        }
        // Read at once, so that a push a moment later sees the switch.
        self.pipelines().await;
        Ok(view(pipeline, position, trigger, enabled))
    }
}

fn view(pipeline: &str, position: u32, trigger: &Trigger, enabled: bool) -> TriggerView {
    let mut spec = serde_json::to_value(trigger).unwrap_or_default();
    if let Some(map) = spec.as_object_mut()
        && map.contains_key("secret")
    {
        map.insert("secret".into(), "***".into());
    }
    let kind = kind_of(trigger);
    TriggerView {
        id: format!("{pipeline}#{position}"),
        pipeline: pipeline.to_owned(),
        position,
        kind: kind.map_or(trigger.type_name(), |k| k.name()),
        enabled,
        watches: kind.map(|k| k.describe(trigger)).unwrap_or_default(),
        spec,
    }
}
