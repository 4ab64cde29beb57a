//! `deploy`: thin glue to `gantry-deploy`. Before anything is created the
//! stage records a request id and the cluster's enabled groups in its
//! durable state; a resumed stage passes the same ones, so the data plane
//! returns the group it already created and the strategy converges.
//! People act on a running deploy through `people`; the rollout records
//! the step it reached and its pauses' deadlines through `journal`, so a
//! resumed deploy goes on from there instead of from its first step.

mod claim;
mod image;
mod journal;
mod people;

use std::path::Path;
use std::time::Duration;

use gantry_config::DeployStage;
use gantry_deploy::model::{ServerGroupSpec, cluster_name};
use gantry_deploy::{DeployController, DeployRequest};
use serde_json::{Value, json};

use self::journal::StageJournal;
use self::people::{StagePeople, judgments_output};
use super::deploy_support::{controller, run_with_progress};
use super::{StageContext, StageFailure, StageResult};

const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) async fn run(ctx: &StageContext, spec: &DeployStage) -> StageResult {
    let deploy = controller(ctx)?;
    let cluster = cluster_name(
        &spec.application,
        spec.stack.as_deref(),
        spec.detail.as_deref(),
    );
    // The cluster is taken before its groups are read: a deploy that
    // waited replaces what the one before it left.
    if !spec.overlap {
        match claim::take_cluster(ctx, &cluster).await {
            Ok(()) => {}
            Err(claim::ClaimError::Canceled(_)) => {
                return Err(StageFailure::Canceled(ctx.cancel_reason().await));
            }
            Err(error) => return Err(StageFailure::Failed(error.to_string())),
        }
    }
    let outcome = deploy_to(ctx, spec, &deploy, &cluster).await;
    if !spec.overlap {
        claim::release_cluster(ctx, &cluster).await;
    }
    outcome
}

async fn deploy_to(
    ctx: &StageContext,
    spec: &DeployStage,
    deploy: &DeployController,
    cluster: &str,
) -> StageResult {
    let cluster = cluster.to_owned();
    let strategy = gantry_deploy::strategies::for_spec(spec);
    let (request_id, previous, size) = match recorded_request(ctx, spec, deploy, &cluster).await {
        Ok(request) => request,
        Err(message) => return Err(StageFailure::Failed(message)),
    };
    // A provider with hosts has each host pull the image with the stage's
    // access; otherwise this machine must hold it before the group exists.
    let hosts_pull = deploy
        .providers()
        .get(spec.provider_name())
        .is_ok_and(|provider| provider.instances.pulls_images());
    if !hosts_pull && let Err(message) = image::ensure_image(ctx, spec).await {
        return Err(StageFailure::Failed(message));
    }
    // Providers with hosts install the package there with apt-get.
    let host_package = match (&spec.package, &spec.repository) {
        (Some(query), Some(repository)) if spec.provider_name() == "ssh" => {
            match super::package_deb::install_on_hosts(ctx, repository, query).await {
                Ok(package) => Some(package),
                Err(error) => return Err(StageFailure::Failed(error.to_string())),
            }
        }
        _ => None,
    };
    let artifact = match (&spec.package, &spec.repository) {
        _ if host_package.is_some() => None,
        (Some(query), Some(repository)) => {
            match super::package_deb::unpack_for_deploy(ctx, repository, query).await {
                Ok(dir) => Some(dir),
                Err(error) => return Err(StageFailure::Failed(error.to_string())),
            }
        }
        _ => match &spec.artifact {
            Some(artifact) => match artifact_path(ctx, artifact).await {
                Ok(path) => Some(path),
                Err(message) => return Err(StageFailure::Failed(message)),
            },
            None => None,
        },
    };
    let request = DeployRequest {
        provider: spec.provider_name().to_owned(),
        request_id,
        application: spec.application.clone(),
        cluster: cluster.clone(),
        spec: ServerGroupSpec {
            command: spec.command.clone(),
            image: spec.image.clone(),
            artifact: artifact.map(|p| p.display().to_string()),
            env: spec.env.clone(),
            grace_seconds: spec.grace_period.map(|d| d.as_secs()).unwrap_or(10),
            placement: spec
                .placement
                .as_ref()
                .map(|p| gantry_deploy::model::Placement {
                    labels: p.labels.clone(),
                    max_per_host: p.max_per_host,
                }),
            package: host_package.map(Box::new),
            image_access: spec.image.as_ref().map(|_| {
                let access = spec.registry_access();
                gantry_deploy::model::ImageAccess {
                    credentials: access.credentials,
                    tls_verify: access.tls_verify,
                }
            }),
        },
        size,
        strategy,
        health_timeout: spec.health_timeout.unwrap_or(DEFAULT_HEALTH_TIMEOUT),
        previous,
    };
    let people = StagePeople::new(ctx, spec.judgment_between_steps.as_ref());
    let journal = StageJournal { ctx };
    let deploying = run_with_progress(ctx, |progress| {
        let deploy: DeployController = deploy.clone();
        let request = request.clone();
        let cancel = ctx.cancel.clone();
        let (people, journal) = (&people, &journal);
        async move {
            deploy
                .deploy(&request, &cancel, people, journal, &*progress)
                .await
        }
    });
    let result = with_people(ctx, &people, deploying).await;
    match result {
        Ok(group) => {
            let state = ctx.state().await;
            let mut outputs = judgments_output(&state);
            // A canary's analyses, as the rollout recorded them (a failed
            // stage keeps them in its state only).
            if let Some(analyses) = state.pointer("/rollout/analyses") {
                outputs.insert("analysis".into(), analyses.clone());
            }
            outputs.insert("cluster".into(), Value::String(cluster));
            outputs.insert("serverGroup".into(), Value::String(group.name));
            Ok(outputs)
        }
        Err(gantry_deploy::DeployError::Canceled) => {
            Err(StageFailure::Canceled(ctx.cancel_reason().await))
        }
        Err(error) => Err(StageFailure::Failed(error.to_string())),
    }
}

/// The request id, the cluster's enabled groups and the new group's size,
/// recorded before anything is created; a resumed stage reads them back.
/// Unless the file sets a size, the new group takes the size of the
/// cluster's current group (the largest enabled one), as Spinnaker's deploys
/// do; a cluster's first group has one instance.
async fn recorded_request(
    ctx: &StageContext,
    spec: &DeployStage,
    deploy: &DeployController,
    cluster: &str,
) -> Result<(String, Vec<String>, u32), String> {
    let size = match &spec.size {
        Some(size) => Some(
            size.count()
                .ok_or_else(|| format!("size {size:?} is not a whole number once rendered"))?,
        ),
        None => None,
    };
    if size == Some(0) {
        return Err("size of a deploy must be at least 1".to_owned());
    }
    let state = ctx.state().await;
    if let (Some(id), Some(previous)) = (
        state.get("requestId").and_then(Value::as_str),
        state.get("previous"),
    ) {
        let previous = serde_json::from_value::<Vec<String>>(previous.clone()).unwrap_or_default();
        // A stage recorded before sizes were kept had its size in the file.
        let recorded = state.get("size").and_then(Value::as_u64).map(|s| s as u32);
        return Ok((id.to_owned(), previous, recorded.or(size).unwrap_or(1)));
    }
    let snapshot = deploy.snapshot().await.map_err(|e| e.to_string())?;
    let enabled: Vec<_> = snapshot
        .cluster(cluster)
        .iter()
        .filter(|g| g.group.enabled)
        .map(|g| (g.group.name.clone(), g.group.size))
        .collect();
    let previous: Vec<String> = enabled.iter().map(|(name, _)| name.clone()).collect();
    let size = size.unwrap_or_else(|| {
        enabled
            .iter()
            .map(|(_, size)| *size)
            .max()
            .filter(|size| *size > 0)
            .unwrap_or(1)
    });
    let id = format!("{}-{}-{}", ctx.execution_id, ctx.stage_id, ctx.attempt);
    ctx.save_state(json!({"requestId": id, "previous": previous, "size": size}))
        .await
        .map_err(|e| e.to_string())?;
    Ok((id, previous, size))
}

/// Runs the deploy while handing people's skips (promotions) and
/// judgments to the rollout waiting for them. A signal is answered while
/// the deploy goes on being polled: the deploy may be in the middle of a
/// write of the execution's state, which the answer needs too.
async fn with_people<T>(
    ctx: &StageContext,
    people: &StagePeople<'_>,
    work: impl std::future::Future<Output = T>,
) -> T {
    tokio::pin!(work);
    let mut answering: Option<futures::future::BoxFuture<'_, ()>> = None;
    loop {
        tokio::select! {
            result = &mut work => return result,
            () = async {
                if let Some(answer) = answering.as_mut() {
                    answer.await
                }
            }, if answering.is_some() => {
                answering = None;
            }
            signal = ctx.next_signal(), if answering.is_none() => match signal {
                Some((signal, reply)) => answering = Some(Box::pin(people.take(signal, reply))),
                // Canceled: the deploy sees the same token and stops.
                None => return work.await,
            },
        }
    }
}

/// Where the data plane takes the artifact `artifact` from. A path in the workspace is
/// copied first, read beneath it (`crate::workspace_files`), into the stage's run directory,
/// which steps cannot write: a link a step planted cannot make the data plane copy the
/// server's files into an instance's directory, before or after the check. An absolute path
/// is the operator's, except inside the server's data directory.
async fn artifact_path(ctx: &StageContext, artifact: &str) -> Result<std::path::PathBuf, String> {
    let path = Path::new(artifact);
    if path.is_absolute() {
        let data_dir =
            std::fs::canonicalize(ctx.data_dir()).unwrap_or_else(|_| ctx.data_dir().to_owned());
        if std::fs::canonicalize(path).is_ok_and(|real| real.starts_with(&data_dir)) {
            return Err(format!(
                "artifact {artifact} is in the server's data directory, which deploys cannot read"
            ));
        }
        return Ok(path.to_path_buf());
    }
    let (workspace, dest) = (ctx.workspace(), ctx.run_dir().join("artifact"));
    let name = artifact.to_owned();
    let copy = dest.clone();
    tokio::task::spawn_blocking(move || {
        crate::workspace_files::Beneath::workspace(&workspace)?.copy_out(&name, &copy)
    })
    .await
    .map_err(|e| format!("artifact {artifact}: {e}"))?
    .map_err(|e| format!("artifact: {e}"))?;
    Ok(dest)
}
