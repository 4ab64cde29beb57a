//! `artifact` triggers: when a package lands in an APT repository (added
//! through the API, the CLI or a `publishDeb` stage), start every pipeline
//! whose `artifact` trigger names that repository (and package). The
//! trigger is `{type: "artifact", repository, package, version, architecture}`.

use gantry_apt::{Apt, Landed};
use gantry_config::{Pipeline, Trigger};
use gantry_engine::{Engine, RunRequest};
use serde_json::json;

pub fn install(apt: &Apt, engine: Engine) {
    let runtime = tokio::runtime::Handle::current();
    // One task per add, however many packages it carries: the pipelines
    // are read once for all of them.
    apt.set_landed_hook(std::sync::Arc::new(move |landed: Vec<Landed>| {
        let engine = engine.clone();
        runtime.spawn(async move { fire(&engine, landed).await });
    }));
}

async fn fire(engine: &Engine, landed: Vec<Landed>) {
    let pipelines: Vec<Pipeline> = match engine.store().pipelines().await {
        Ok(records) => records
            .into_iter()
            .filter_map(|r| serde_json::from_value(r.spec).ok())
            .collect(),
        Err(error) => {
            tracing::error!(%error, "cannot read pipelines for artifact triggers");
            return;
        }
    };
    for landed in &landed {
        fire_one(engine, &pipelines, landed).await;
    }
}

async fn fire_one(engine: &Engine, pipelines: &[Pipeline], landed: &Landed) {
    for pipeline in pipelines {
        let fires = pipeline.triggers.iter().any(|t| match t {
            Trigger::Artifact(a) => {
                a.repository == landed.repository
                    && a.package.as_ref().is_none_or(|p| *p == landed.package)
            }
            _ => false,
        });
        if !fires {
            continue;
        }
        let request = RunRequest {
            pipeline: pipeline.name.clone(),
            parameters: Default::default(),
            trigger: json!({
                "type": "artifact",
                "repository": landed.repository,
                "package": landed.package,
                "version": landed.version,
                "architecture": landed.architecture,
            }),
            spec: None,
        };
        match engine.run(request).await {
            Ok(execution) => tracing::info!(
                pipeline = %pipeline.name,
                execution = %execution.id,
                package = %landed.package,
                version = %landed.version,
                "artifact trigger started an execution"
            ),
            Err(error) => {
                tracing::error!(pipeline = %pipeline.name, %error, "artifact trigger failed")
            }
        }
    }
}
