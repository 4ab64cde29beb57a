//! `findImage`: the newest tag of a registry repository matching a pattern.

use super::RegistryAccess;
use super::{CheckStageType, SecretName, StageFields, StageType};
use crate::check::Checker;
use serde::{Deserialize, Serialize};

/// `findImage`: the newest tag of a repository matching `pattern` (semver-aware);
/// outputs `image`, `tag` and `version` (the pattern's first group, else the tag).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FindImageStage {
    /// `registry/repository`.
    pub repository: String,
    /// A regular expression a tag must match whole, e.g. `^order_v(\d+\.\d+\.\d+)$`.
    pub pattern: String,
    #[serde(flatten)]
    pub registry: RegistryAccess,
}

/// The `findImage` stage type.
pub struct FindImage;

impl StageType for FindImage {
    type Spec = FindImageStage;

    fn secret_names(spec: &FindImageStage) -> Vec<SecretName> {
        SecretName::credentials(spec.registry.credentials.as_deref())
    }
}

impl CheckStageType for FindImage {
    fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
        check(stage, cx)
    }
}

fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    let f = &mut stage.fields;
    if let Some((repository, node)) = f.required_string(cx, "repository")
        && !repository.contains("${{")
        && (!repository.contains('/')
            || repository
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .contains(':'))
    {
        cx.error(
            node.span.start,
            format!(
                "{}: repository {repository:?} must be REGISTRY/NAME without a tag, e.g. registry.example.com/app",
                f.what
            ),
        );
    }
    if let Some((pattern, node)) = f.required_string(cx, "pattern")
        && !pattern.contains("${{")
        && let Err(error) = regex::Regex::new(pattern)
    {
        cx.error(
            node.span.start,
            format!(
                "{}: pattern is not a valid regular expression: {}",
                f.what,
                error.to_string().lines().last().unwrap_or_default()
            ),
        );
    }
    super::bake::check_registry_access(stage, cx);
}
