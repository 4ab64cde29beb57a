//! What watches what: one row per trigger of every pipeline, for `gantry trigger list`.

use gantry_config::Trigger;
use serde::Serialize;

use crate::Triggers;

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
        for pipeline in self.pipelines().await {
            for trigger in &pipeline.triggers {
                let mut spec = serde_json::to_value(trigger).unwrap_or_default();
                if let Some(map) = spec.as_object_mut()
                    && map.contains_key("secret")
                {
                    map.insert("secret".into(), "***".into());
                }
                views.push(TriggerView {
                    pipeline: pipeline.name.clone(),
                    kind: trigger.type_name(),
                    watches: describe(trigger),
                    spec,
                });
            }
        }
        views
    }
}

fn describe(trigger: &Trigger) -> String {
    match trigger {
        Trigger::Git(git) => {
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
                parts.push(format!("polled every {}", humantime_like(poll)));
            }
            parts.join(", ")
        }
        Trigger::Webhook(w) => format!("/webhooks/generic/{}", w.source),
        Trigger::Pipeline(p) => format!("pipeline {} ({})", p.pipeline, p.status.join("|")),
        Trigger::Cron(c) => format!(
            "{} ({})",
            c.schedule,
            c.time_zone.as_deref().unwrap_or("UTC")
        ),
        Trigger::Artifact(a) => format!(
            "apt repository {} ({})",
            a.repository,
            a.package.as_deref().unwrap_or("any package")
        ),
    }
}

fn humantime_like(duration: std::time::Duration) -> String {
    format!("{}s", duration.as_secs())
}
