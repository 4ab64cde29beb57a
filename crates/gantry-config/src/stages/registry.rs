//! The one list of stage types, and what is generated from it.

use serde::{Deserialize, Serialize};

use super::{CheckStageType, SecretName, Signal, StageCheck, StageType};

/// Calls `$callback!` with every stage type, one `Variant = "typeName" => path::Marker` line
/// each, the marker implementing [`StageType`](crate::StageType). This list is the registry:
/// the config generates `StageKind` and its table of checks from it, the engine its dispatch,
/// so a stage type missing its engine implementation does not compile.
#[macro_export]
macro_rules! with_stage_types {
    ($callback:ident) => {
        $callback! {
            Run = "run" => $crate::stages::run::Run,
            Wait = "wait" => $crate::stages::wait::Wait,
            ManualJudgment = "manualJudgment" => $crate::stages::manual_judgment::ManualJudgment,
            Pipeline = "pipeline" => $crate::stages::pipeline::Pipeline,
            Webhook = "webhook" => $crate::stages::webhook::Webhook,
            CheckPreconditions = "checkPreconditions" => $crate::stages::check_preconditions::CheckPreconditions,
            Deploy = "deploy" => $crate::stages::deploy_family::Deploy,
            ResizeServerGroup = "resizeServerGroup" => $crate::stages::deploy_family::ResizeServerGroup,
            EnableServerGroup = "enableServerGroup" => $crate::stages::deploy_family::EnableServerGroup,
            DisableServerGroup = "disableServerGroup" => $crate::stages::deploy_family::DisableServerGroup,
            DestroyServerGroup = "destroyServerGroup" => $crate::stages::deploy_family::DestroyServerGroup,
            RollbackCluster = "rollbackCluster" => $crate::stages::deploy_family::RollbackCluster,
            ScaleDownCluster = "scaleDownCluster" => $crate::stages::deploy_family::ScaleDownCluster,
            Release = "release" => $crate::stages::git::Release,
            GitCommit = "gitCommit" => $crate::stages::git::GitCommit,
            GitPromote = "gitPromote" => $crate::stages::git::GitPromote,
            PackageDeb = "packageDeb" => $crate::stages::package_deb::PackageDeb,
            PublishDeb = "publishDeb" => $crate::stages::package_deb::PublishDeb,
            Bake = "bake" => $crate::stages::bake::Bake,
            FindImage = "findImage" => $crate::stages::find_image::FindImage,
            PruneImages = "pruneImages" => $crate::stages::prune_images::PruneImages,
        }
    };
}

macro_rules! define_stage_kind {
    ($($variant:ident = $name:literal => $marker:path,)*) => {
        /// The stage types and their own fields, selected by `type:`.
        // Stages are few and long-lived; boxing the large webhook variant would only add noise.
        #[allow(clippy::large_enum_variant)]
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type")]
        pub enum StageKind {
            $(
                #[serde(rename = $name)]
                $variant(<$marker as StageType>::Spec),
            )*
        }

        impl StageKind {
            /// Every `type:` name, in registry order.
            pub const TYPE_NAMES: &'static [&'static str] = &[$($name),*];

            /// The `type:` name as written in the file.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(StageKind::$variant(_) => $name,)*
                }
            }

            /// Every secret-store secret this stage names.
            pub fn secret_names(&self) -> Vec<SecretName> {
                match self {
                    $(StageKind::$variant(spec) => <$marker as StageType>::secret_names(spec),)*
                }
            }

            /// Whether a stage of this type takes `signal` at all (the engine decides in
            /// which status).
            pub fn accepts(&self, signal: Signal) -> bool {
                match self {
                    $(StageKind::$variant(_) => <$marker as StageType>::SIGNALS.contains(&signal),)*
                }
            }

            /// The signals the stage type called `name` takes; none for a name no type
            /// has. For readers of a stored execution, which hold its stages as JSON.
            pub fn signals_of(name: &str) -> &'static [Signal] {
                match name {
                    $($name => <$marker as StageType>::SIGNALS,)*
                    _ => &[],
                }
            }

            /// See [`StageType::VERBATIM_FIELDS`].
            pub fn verbatim_fields(&self) -> &'static [&'static str] {
                match self {
                    $(StageKind::$variant(_) => <$marker as StageType>::VERBATIM_FIELDS,)*
                }
            }

            /// See [`StageType::TYPED_FIELDS`].
            pub fn typed_fields(&self) -> &'static [&'static str] {
                match self {
                    $(StageKind::$variant(_) => <$marker as StageType>::TYPED_FIELDS,)*
                }
            }
        }

        /// The checks, one per stage type, in registry order.
        pub(crate) const STAGE_TYPES: &[StageCheck] = &[
            $(StageCheck { name: $name, check: <$marker as CheckStageType>::check },)*
        ];
    };
}

crate::with_stage_types!(define_stage_kind);
