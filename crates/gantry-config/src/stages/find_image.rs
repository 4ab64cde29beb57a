//! `findImage`: the newest tag of a registry repository matching a pattern.

use super::{StageFields, StageType};
use crate::check::Checker;

pub(super) const TYPE: StageType = StageType {
    name: "findImage",
    check,
};

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
