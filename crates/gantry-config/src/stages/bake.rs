//! `bake`: an image built from a Containerfile in the workspace and pushed.

use super::{StageFields, StageType};
use crate::check::Checker;

pub(super) const TYPE: StageType = StageType {
    name: "bake",
    check,
};

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
