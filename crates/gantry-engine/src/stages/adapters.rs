//! The runners of the stage types whose implementations other work owns (`run`, whose step
//! executor is being reshaped, and the deploy family): each calls the existing function and
//! turns its `Outcome` into a [`StageResult`].

use gantry_config::stages::deploy_family::{
    DestroyServerGroup, DisableServerGroup, EnableServerGroup, ResizeServerGroup, RollbackCluster,
    ScaleDownCluster,
};
use gantry_config::{DeployStage, RunStage, ServerGroupStage};
use gantry_config::{ResizeServerGroupStage, RollbackClusterStage, ScaleDownClusterStage, stages};

use super::server_group::{self, Action};
use super::{StageContext, StageResult, StageRunner, deploy, run};

impl StageRunner for stages::run::Run {
    async fn run(ctx: &StageContext, spec: &RunStage) -> StageResult {
        run::run(ctx, spec).await.into()
    }
}

impl StageRunner for stages::deploy_family::Deploy {
    async fn run(ctx: &StageContext, spec: &DeployStage) -> StageResult {
        deploy::run(ctx, spec).await.into()
    }
}

impl StageRunner for ResizeServerGroup {
    async fn run(ctx: &StageContext, spec: &ResizeServerGroupStage) -> StageResult {
        server_group::resize(ctx, spec).await.into()
    }
}

impl StageRunner for EnableServerGroup {
    async fn run(ctx: &StageContext, spec: &ServerGroupStage) -> StageResult {
        server_group::run_action(ctx, spec, Action::Enable)
            .await
            .into()
    }
}

impl StageRunner for DisableServerGroup {
    async fn run(ctx: &StageContext, spec: &ServerGroupStage) -> StageResult {
        server_group::run_action(ctx, spec, Action::Disable)
            .await
            .into()
    }
}

impl StageRunner for DestroyServerGroup {
    async fn run(ctx: &StageContext, spec: &ServerGroupStage) -> StageResult {
        server_group::run_action(ctx, spec, Action::Destroy)
            .await
            .into()
    }
}

impl StageRunner for RollbackCluster {
    async fn run(ctx: &StageContext, spec: &RollbackClusterStage) -> StageResult {
        server_group::rollback(ctx, spec).await.into()
    }
}

impl StageRunner for ScaleDownCluster {
    async fn run(ctx: &StageContext, spec: &ScaleDownClusterStage) -> StageResult {
        server_group::scale_down_cluster(ctx, spec).await.into()
    }
}
