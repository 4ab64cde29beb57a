//! The runners of the deploy family (`deploy` and the server group stages): each names the
//! function in `deploy.rs` or `server_group.rs` that runs the stage type.

use gantry_config::stages::deploy_family::{
    DestroyServerGroup, DisableServerGroup, EnableServerGroup, ResizeServerGroup, RollbackCluster,
    ScaleDownCluster,
};
use gantry_config::{DeployStage, ServerGroupStage};
use gantry_config::{ResizeServerGroupStage, RollbackClusterStage, ScaleDownClusterStage, stages};

use super::server_group::{self, Action};
use super::{StageContext, StageResult, StageRunner, deploy};

impl StageRunner for stages::deploy_family::Deploy {
    async fn run(ctx: &StageContext, spec: &DeployStage) -> StageResult {
        deploy::run(ctx, spec).await
    }
}

impl StageRunner for ResizeServerGroup {
    async fn run(ctx: &StageContext, spec: &ResizeServerGroupStage) -> StageResult {
        server_group::resize(ctx, spec).await
    }
}

impl StageRunner for EnableServerGroup {
    async fn run(ctx: &StageContext, spec: &ServerGroupStage) -> StageResult {
        server_group::run_action(ctx, spec, Action::Enable).await
    }
}

impl StageRunner for DisableServerGroup {
    async fn run(ctx: &StageContext, spec: &ServerGroupStage) -> StageResult {
        server_group::run_action(ctx, spec, Action::Disable).await
    }
}

impl StageRunner for DestroyServerGroup {
    async fn run(ctx: &StageContext, spec: &ServerGroupStage) -> StageResult {
        server_group::run_action(ctx, spec, Action::Destroy).await
    }
}

impl StageRunner for RollbackCluster {
    async fn run(ctx: &StageContext, spec: &RollbackClusterStage) -> StageResult {
        server_group::rollback(ctx, spec).await
    }
}

impl StageRunner for ScaleDownCluster {
    async fn run(ctx: &StageContext, spec: &ScaleDownClusterStage) -> StageResult {
        server_group::scale_down_cluster(ctx, spec).await
    }
}
