//! What watches what: one row per trigger of every pipeline, for `gantry trigger list`.

use serde::Serialize;

use crate::Triggers;
use crate::kinds::kind_of;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerView {
    pub pipeline: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// What it watches, in a few words (`repository app, branch ^main$`).
    pub watches: String,
    /// The trigger as applied, without its secret.
    pub spec: serde_json::Value,
}

impl Triggers {
    pub async fn list(&self) -> Vec<TriggerView> {
        let mut views = Vec::new();
        for pipeline in self.pipelines().await.iter() {
            for trigger in &pipeline.triggers {
                let mut spec = serde_json::to_value(trigger).unwrap_or_default();
                if let Some(map) = spec.as_object_mut()
                    && map.contains_key("secret")
                {
                    map.insert("secret".into(), "***".into());
                }
                let kind = kind_of(trigger);
                views.push(TriggerView {
                    pipeline: pipeline.name.clone(),
                    kind: kind.map_or(trigger.type_name(), |k| k.name()),
                    watches: kind.map(|k| k.describe(trigger)).unwrap_or_default(),
                    spec,
                });
            }
        }
        views
    }
}
