//! `bake`: an image built from a Containerfile in the workspace and pushed.

use std::collections::BTreeMap;

use super::{CheckStageType, SecretName, StageFields, StageType};
use crate::check::Checker;
use crate::model::yes;
use serde::{Deserialize, Serialize};

/// `bake`: builds an OCI image from a Containerfile/Dockerfile in the workspace, tags
/// and pushes it; outputs `image` and `digest`. Skipped (outputs of the earlier bake)
/// when the same inputs were baked before, unless `rebake`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BakeStage {
    /// `registry/repository:tag` to build and push.
    pub image: String,
    /// The build context, relative to the workspace (default: the workspace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Relative to the context; default `Containerfile`, else `Dockerfile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containerfile: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub build_args: BTreeMap<String, String>,
    /// Build and push even when the same inputs were baked before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rebake: bool,
    #[serde(default = "yes")]
    pub push: bool,
    #[serde(flatten)]
    pub registry: RegistryAccess,
}

/// How `bake` and `findImage` reach a registry (fields of the stage itself).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryAccess {
    /// `false` skips TLS verification (and allows plain HTTP); the default
    /// verifies, except for loopback registries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_verify: Option<bool>,
    /// A secret holding `user:password` for the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
}

/// The `bake` stage type.
pub struct Bake;

impl StageType for Bake {
    type Spec = BakeStage;

    fn secret_names(spec: &BakeStage) -> Vec<SecretName> {
        SecretName::credentials(spec.registry.credentials.as_deref())
    }
}

impl CheckStageType for Bake {
    fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
        check(stage, cx)
    }
}

fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    let f = &mut stage.fields;
    if let Some((image, node)) = f.required_string(cx, "image")
        && !image.contains("${{")
        && !image.contains('/')
    {
        cx.error(
            node.span.start,
            format!(
                "{}: image {image:?} must name its registry, e.g. registry.example.com/app:1.0",
                f.what
            ),
        );
    }
    for field in ["context", "containerfile"] {
        if let Some((path, node)) = f.string(cx, field)
            && (path.starts_with('/') || path.split('/').any(|c| c == ".."))
        {
            cx.error(
                node.span.start,
                format!(
                    "{}: {field} {path:?} must be a relative path inside the workspace",
                    f.what
                ),
            );
        }
    }
    f.text_map(cx, "buildArgs");
    f.bool(cx, "rebake");
    f.bool(cx, "push");
    check_registry_access(stage, cx);
}

/// The fields of `RegistryAccess`, which `findImage` shares.
pub(super) fn check_registry_access(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    stage.fields.bool(cx, "tlsVerify");
    stage.fields.string(cx, "credentials");
}
