//! The server group stage types: `resizeServerGroup`, `enable…`,
//! `disable…`, `destroyServerGroup`, `rollbackCluster`, `scaleDownCluster`.
//! Each resolves its target once and records it (and a resize its new
//! size) before acting, so that a resumed stage does not act on another
//! group or scale twice.

use std::time::Duration;

use gantry_config::{
    ResizeServerGroupStage, RollbackClusterStage, ScaleDownClusterStage, ServerGroupStage,
    ServerGroupTarget,
};
use gantry_deploy::providers::ServerGroupUpdate;
use gantry_deploy::{DeployController, DisableConfig};
use serde_json::{Map, Value, json};

use super::deploy_support::{controller, run_with_progress};
use super::{StageContext, StageFailure, StageResult};

#[derive(Clone, Copy, Debug)]
pub(crate) enum Action {
    Enable,
    Disable,
    Destroy,
}

pub(crate) async fn run_action(
    ctx: &StageContext,
    spec: &ServerGroupStage,
    action: Action,
) -> StageResult {
    let deploy = controller(ctx)?;
    let name = resolve(
        ctx,
        &deploy,
        &spec.cluster,
        spec.target,
        spec.server_group.as_deref(),
    )
    .await
    .map_err(StageFailure::Failed)?;
    let result = match action {
        Action::Enable => deploy.enable(&name).await.map(|_| ()),
        Action::Disable => deploy
            .disable(&name, DisableConfig { force: spec.force })
            .await
            .map(|_| ()),
        Action::Destroy => match deploy.destroy(&name).await {
            // Destroyed by this stage before a restart: done.
            Err(gantry_deploy::DeployError::NotFound(_)) if ctx.resumed => Ok(()),
            other => other.map(|_| ()),
        },
    };
    match result {
        Ok(()) => {
            ctx.log.system(&format!("{name}: {action:?} done")).await;
            outputs(&name)
        }
        Err(error) => Err(StageFailure::Failed(error.to_string())),
    }
}

pub(crate) async fn resize(ctx: &StageContext, spec: &ResizeServerGroupStage) -> StageResult {
    let deploy = controller(ctx)?;
    let name = resolve(
        ctx,
        &deploy,
        &spec.cluster,
        spec.target,
        spec.server_group.as_deref(),
    )
    .await
    .map_err(StageFailure::Failed)?;
    let state = ctx.state().await;
    let size = match state.get("size").and_then(Value::as_u64) {
        Some(size) => size as u32,
        None => {
            let current = match deploy.snapshot().await {
                Ok(snapshot) => snapshot.group(&name).map(|g| g.group.size).unwrap_or(0),
                Err(error) => return Err(StageFailure::Failed(error.to_string())),
            };
            let size = match new_size(spec, current) {
                Ok(size) => size,
                Err(message) => {
                    return Err(StageFailure::Failed(format!(
                        "server group {name:?}: {message}"
                    )));
                }
            };
            if let Err(error) = deploy.check_size(&format!("server group {name:?}"), size) {
                return Err(StageFailure::Failed(error.to_string()));
            }
            let mut state = state.as_object().cloned().unwrap_or_default();
            state.insert("size".into(), json!(size));
            if let Err(error) = ctx.save_state(Value::Object(state)).await {
                return Err(StageFailure::Failed(error.to_string()));
            }
            size
        }
    };
    if let Err(error) = deploy
        .update(
            &name,
            ServerGroupUpdate {
                size: Some(size),
                ..Default::default()
            },
        )
        .await
    {
        return Err(StageFailure::Failed(error.to_string()));
    }
    ctx.log.system(&format!("{name} resized to {size}")).await;
    if size > 0 {
        let wait = deploy
            .wait_healthy(&name, size as usize, Duration::from_secs(120), &ctx.cancel)
            .await;
        if let Err(error) = wait {
            return Err(StageFailure::Failed(error.to_string()));
        }
    }
    let mut out = Map::new();
    out.insert("serverGroup".into(), Value::String(name));
    out.insert("size".into(), json!(size));
    Ok(out)
}

/// `gcloud … resize`-like arithmetic: an exact size, or up/down by a count
/// or a percentage of the current size (rounded up).
fn new_size(spec: &ResizeServerGroupStage, current: u32) -> Result<u32, String> {
    let percent = |p: u32| (u64::from(current) * u64::from(p)).div_ceil(100) as u32;
    match (
        spec.size,
        spec.scale_up,
        spec.scale_down,
        spec.scale_up_percent,
        spec.scale_down_percent,
    ) {
        (Some(size), ..) => Ok(size),
        (_, Some(up), ..) => Ok(current.saturating_add(up)),
        (_, _, Some(down), ..) => current
            .checked_sub(down)
            .ok_or_else(|| format!("cannot scale down by {down}: it has {current} instances")),
        (_, _, _, Some(p), _) => Ok(current.saturating_add(percent(p))),
        (_, _, _, _, Some(p)) => current
            .checked_sub(percent(p))
            .ok_or_else(|| format!("cannot scale down by {p}%: it has {current} instances")),
        _ => Err("give a size, scaleUp, scaleDown, scaleUpPercent or scaleDownPercent".into()),
    }
}

pub(crate) async fn rollback(ctx: &StageContext, spec: &RollbackClusterStage) -> StageResult {
    let deploy = controller(ctx)?;
    let state = ctx.state().await;
    let (current, previous) = match (
        state.get("from").and_then(Value::as_str),
        state.get("to").and_then(Value::as_str),
    ) {
        (Some(from), Some(to)) => (from.to_owned(), to.to_owned()),
        _ => match deploy.rollback_plan(&spec.cluster).await {
            Ok((from, to)) => {
                if let Err(error) = ctx.save_state(json!({"from": from, "to": to})).await {
                    return Err(StageFailure::Failed(error.to_string()));
                }
                (from, to)
            }
            Err(error) => return Err(StageFailure::Failed(error.to_string())),
        },
    };
    let timeout = spec.health_timeout.unwrap_or(Duration::from_secs(120));
    let result = run_with_progress(ctx, |progress| {
        let deploy = deploy.clone();
        let cancel = ctx.cancel.clone();
        let (current, previous) = (current.clone(), previous.clone());
        async move {
            deploy
                .rollback_to(&current, &previous, timeout, &cancel, &*progress)
                .await
        }
    })
    .await;
    match result {
        Ok(()) => outputs(&previous),
        Err(gantry_deploy::DeployError::Canceled) => {
            Err(StageFailure::Canceled(ctx.cancel_reason().await))
        }
        Err(error) => Err(StageFailure::Failed(error.to_string())),
    }
}

pub(crate) async fn scale_down_cluster(
    ctx: &StageContext,
    spec: &ScaleDownClusterStage,
) -> StageResult {
    let deploy = controller(ctx)?;
    let keep = spec.remaining_full_size_server_groups.unwrap_or(1) as usize;
    let snapshot = match deploy.snapshot().await {
        Ok(snapshot) => snapshot,
        Err(error) => return Err(StageFailure::Failed(error.to_string())),
    };
    let groups = snapshot.cluster(&spec.cluster);
    if groups.is_empty() {
        return Err(StageFailure::Failed(format!(
            "cluster {:?} has no server group",
            spec.cluster
        )));
    }
    let older = groups.len().saturating_sub(keep);
    for group in &groups[..older] {
        if group.group.enabled {
            // Scaling an enabled group to 0 would take its traffic away.
            ctx.log
                .system(&format!("{} is enabled: left as it is", group.group.name))
                .await;
            continue;
        }
        let update = ServerGroupUpdate {
            size: Some(0),
            ..Default::default()
        };
        if let Err(error) = deploy.update(&group.group.name, update).await {
            return Err(StageFailure::Failed(error.to_string()));
        }
        ctx.log
            .system(&format!("{} scaled down to 0", group.group.name))
            .await;
    }
    Ok(Map::new())
}

fn outputs(name: &str) -> StageResult {
    let mut out = Map::new();
    out.insert("serverGroup".into(), Value::String(name.to_owned()));
    Ok(out)
}

/// The group a stage acts on, resolved once and kept in the stage state.
async fn resolve(
    ctx: &StageContext,
    deploy: &DeployController,
    cluster: &str,
    target: Option<ServerGroupTarget>,
    by_name: Option<&str>,
) -> Result<String, String> {
    let state = ctx.state().await;
    if let Some(name) = state.get("serverGroup").and_then(Value::as_str) {
        return Ok(name.to_owned());
    }
    let snapshot = deploy.snapshot().await.map_err(|e| e.to_string())?;
    let groups = snapshot.cluster(cluster);
    let name = match by_name {
        Some(name) => groups
            .iter()
            .find(|g| g.group.name == name)
            .map(|g| g.group.name.clone())
            .ok_or_else(|| format!("cluster {cluster:?} has no server group {name:?}"))?,
        None => {
            let target = target.unwrap_or_default();
            let index = match target {
                ServerGroupTarget::Newest => groups.len().checked_sub(1),
                ServerGroupTarget::Previous => groups.len().checked_sub(2),
                ServerGroupTarget::Oldest => (!groups.is_empty()).then_some(0),
            };
            index.map(|i| groups[i].group.name.clone()).ok_or_else(|| {
                format!("cluster {cluster:?} has no {} server group", target.name())
            })?
        }
    };
    let mut state = state.as_object().cloned().unwrap_or_default();
    state.insert("serverGroup".into(), Value::String(name.clone()));
    ctx.save_state(Value::Object(state))
        .await
        .map_err(|e| e.to_string())?;
    Ok(name)
}
