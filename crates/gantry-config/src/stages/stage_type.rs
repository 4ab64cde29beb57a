//! The one shape every stage type has on the config side.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StageFields;
use crate::check::Checker;

/// A stage type as the config knows it: its spec (the fields it adds to a stage), the secrets
/// that spec names, the signals a person may send it and how its fields are rendered. Each
/// type implements it on a unit struct in `stages/<name>.rs` and is listed once in
/// [`with_stage_types!`](crate::with_stage_types), from which `StageKind`, the checks and the
/// engine's dispatch are all generated.
pub trait StageType: 'static {
    /// The stage's own fields, as stored in a pipeline's spec.
    type Spec: Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Every secret-store secret the spec names. Required, with no default, so that a new
    /// stage type cannot forget to have its secrets masked in the execution's log.
    fn secret_names(spec: &Self::Spec) -> Vec<SecretName>;

    /// What a person may send to a running stage of this type.
    const SIGNALS: &'static [Signal] = &[];

    /// Fields kept as written when the stage starts: they are evaluated as a whole later
    /// (precondition expressions), so `${{ … }}` in them is not a template.
    const VERBATIM_FIELDS: &'static [&'static str] = &[];

    /// Fields where an expression that is the whole value keeps its type (a webhook's
    /// `body`: a number stays a number); every other string is rendered to a string.
    const TYPED_FIELDS: &'static [&'static str] = &[];
}

/// The checks of a stage type's fields, with positions; crate-private because the readers
/// it uses are.
pub(crate) trait CheckStageType: StageType {
    /// Reads the fields this type adds to a stage, after the common ones, reporting every
    /// problem. Strings that are whole CEL conditions go to [`StageFields::conditions`].
    fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>);
}

/// A secret a stage names, by how its value appears in logs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SecretName {
    /// The value is used whole (a step's `secretEnv`).
    Value(String),
    /// The value is `user:password` (or a bare token): the password alone is masked too.
    Credentials(String),
    /// A Cloud Build file in the execution's workspace, whose `secretEnv` names more
    /// secrets; read when the file is there.
    CloudBuildFile(String),
}

impl SecretName {
    /// The credentials secret a stage's optional `credentials:` field names, if any.
    pub fn credentials(name: Option<&str>) -> Vec<SecretName> {
        name.map(|name| SecretName::Credentials(name.to_owned()))
            .into_iter()
            .collect()
    }
}

/// What a person sends to a running stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// `gantry approve` / `gantry reject`, to a stage waiting for a judgment.
    Judgment,
    /// `gantry skip`, to a running stage.
    Skip,
}
