//! The `StageType`s of the deploy family. Their specs are in `deploy/model.rs` and their checks in
//! `deploy.rs` and `server_group.rs`; this file only gives them the shape every stage type
//! has.

use super::{CheckStageType, SecretName, Signal, StageCheck, StageFields, StageType};
use crate::check::Checker;
use crate::deploy::model::{
    DeployStage, ResizeServerGroupStage, RollbackClusterStage, ScaleDownClusterStage,
    ServerGroupStage,
};

macro_rules! deploy_family {
    ($($(#[$doc:meta])* $marker:ident: $spec:ty = $check:expr, signals $signals:expr;)*) => {$(
        $(#[$doc])*
        pub struct $marker;

        impl StageType for $marker {
            type Spec = $spec;
            const SIGNALS: &'static [Signal] = $signals;

            fn secret_names(_spec: &$spec) -> Vec<SecretName> {
                Vec::new()
            }
        }

        impl CheckStageType for $marker {
            fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
                const CHECK: StageCheck = $check;
                (CHECK.check)(stage, cx)
            }
        }
    )*};
}

/// `deploy`. It takes a judgment between the steps of a rolling rollout, and a skip as the
/// promotion of a paused one; it names the credentials it pulls its image with.
pub struct Deploy;

impl StageType for Deploy {
    type Spec = DeployStage;
    const SIGNALS: &'static [Signal] = &[Signal::Judgment, Signal::Skip];

    fn secret_names(spec: &DeployStage) -> Vec<SecretName> {
        SecretName::credentials(spec.credentials.as_deref())
    }
}

impl CheckStageType for Deploy {
    fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
        (super::deploy::TYPE.check)(stage, cx)
    }
}

deploy_family! {
    /// `resizeServerGroup`.
    ResizeServerGroup: ResizeServerGroupStage = super::server_group::RESIZE, signals &[];
    /// `enableServerGroup`.
    EnableServerGroup: ServerGroupStage = super::server_group::ENABLE, signals &[];
    /// `disableServerGroup`.
    DisableServerGroup: ServerGroupStage = super::server_group::DISABLE, signals &[];
    /// `destroyServerGroup`.
    DestroyServerGroup: ServerGroupStage = super::server_group::DESTROY, signals &[];
    /// `rollbackCluster`.
    RollbackCluster: RollbackClusterStage = super::server_group::ROLLBACK, signals &[];
    /// `scaleDownCluster`.
    ScaleDownCluster: ScaleDownClusterStage = super::server_group::SCALE_DOWN, signals &[];
}
