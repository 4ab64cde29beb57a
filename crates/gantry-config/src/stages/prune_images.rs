//! `pruneImages`: removes images Gantry built (those `bake` labels) of one repository, all
//! but the newest `keep`. Nothing else on the host is touched.

use serde::{Deserialize, Serialize};

use super::{CheckStageType, SecretName, StageFields, StageType};
use crate::check::Checker;

/// `pruneImages`: the images of `repository` that carry Gantry's build label, oldest first,
/// removed until `keep` are left. An image a container uses is skipped. Outputs `removed`
/// (references) and `removedIds`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PruneImagesStage {
    /// `registry/repository`, matched exactly (no tag).
    pub repository: String,
    /// How many of the newest images stay (at least 1).
    pub keep: u32,
}

/// The `pruneImages` stage type.
pub struct PruneImages;

impl StageType for PruneImages {
    type Spec = PruneImagesStage;

    fn secret_names(_spec: &PruneImagesStage) -> Vec<SecretName> {
        Vec::new()
    }
}

impl CheckStageType for PruneImages {
    fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
        let f = &mut stage.fields;
        if let Some((repository, node)) = f.required_string(cx, "repository")
            && !repository.contains("${{")
            && (repository.trim().is_empty()
                || repository
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .contains(':')
                || repository.contains('@'))
        {
            cx.error(
                node.span.start,
                format!(
                    "{}: repository {repository:?} must be a repository without a tag, e.g. registry.example.com/app",
                    f.what
                ),
            );
        }
        if let Some(node) = f.require(cx, "keep")
            && f.count(cx, "keep") == Some(0)
        {
            cx.error(
                node.span.start,
                format!(
                    "{}: \"keep\" must be at least 1, so the newest image stays",
                    f.what
                ),
            );
        }
    }
}
