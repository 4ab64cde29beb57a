//! Applying a pipeline file: the use case behind `POST /api/v1/apply`,
//! apart from HTTP so that anything holding an engine can apply a parsed
//! document (tests do, without a server).
//!
//! The ordering rule: load balancers and applications first, so that a
//! port in use or an instance count over the ceiling fails the apply before
//! anything else is written; then repositories, so that no trigger watches
//! one that does not exist; hosts; pipelines last.

use gantry_config::Document;
use gantry_deploy::DeployController;
use gantry_engine::Engine;
use gantry_store::Millis;
use gantry_wire::pipelines::{Applied, ApplyReport, Upsert};

use crate::error::ApiError;

#[cfg(test)]
mod tests;

/// Applies `document` (already parsed and validated) at time `now`, and
/// says what became of each thing it names. Applications and load balancers go to
/// `deploy`, the server's deploy controller (a document naming any fails without one).
pub async fn apply(
    engine: &Engine,
    deploy: Option<&DeployController>,
    document: &Document,
    now: Millis,
) -> Result<ApplyReport, ApiError> {
    let mut report = ApplyReport::default();
    (report.applications, report.load_balancers) =
        crate::routes::deploy::apply(deploy, document).await?;
    for repository in &document.repositories {
        let created = engine
            .git()
            .ensure(&repository.name, repository.public)
            .await
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        report.repositories.push(Applied {
            name: repository.name.clone(),
            result: if created {
                Upsert::Created
            } else {
                Upsert::Unchanged
            },
        });
    }
    for host in &document.hosts {
        let spec = serde_json::to_value(host)
            .map_err(|e| ApiError::internal(format!("cannot encode host {:?}: {e}", host.name)))?;
        let result = engine.store().upsert_host(&host.name, &spec, now).await?;
        tracing::info!(host = %host.name, ?result, "host applied");
        report.hosts.push(Applied {
            name: host.name.clone(),
            result: upsert(result),
        });
    }
    for pipeline in &document.pipelines {
        let spec = serde_json::to_value(pipeline).map_err(|e| {
            ApiError::internal(format!("cannot encode pipeline {:?}: {e}", pipeline.name))
        })?;
        let result = engine
            .store()
            .upsert_pipeline(&pipeline.name, pipeline.application.as_deref(), &spec, now)
            .await?;
        tracing::info!(pipeline = %pipeline.name, ?result, "pipeline applied");
        report.pipelines.push(Applied {
            name: pipeline.name.clone(),
            result: upsert(result),
        });
    }
    Ok(report)
}

fn upsert(result: gantry_store::Upsert) -> Upsert {
    match result {
        gantry_store::Upsert::Created => Upsert::Created,
        gantry_store::Upsert::Updated => Upsert::Updated,
        gantry_store::Upsert::Unchanged => Upsert::Unchanged,
    }
}
