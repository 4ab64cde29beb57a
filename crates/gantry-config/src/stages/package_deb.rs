//! `packageDeb` (a `.deb` from a workspace directory) and `publishDeb` (a
//! `.deb` of the workspace into an APT repository, then its publications
//! updated). Names and versions are checked when the stage runs, since they
//! are usually expressions (`${{ trigger.tag }}`).

use super::{CheckStageType, SecretName, StageFields, StageType};
use crate::check::Checker;
use serde::{Deserialize, Serialize};

/// `packageDeb`: builds a `.deb` from a directory of the workspace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackageDebStage {
    /// The tree to package, relative to the workspace.
    pub directory: String,
    /// The package name (`name:` is every stage's display name).
    pub package: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintainer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Maintainer scripts, files relative to the workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preinst: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postinst: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prerm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postrm: Option<String>,
    /// Where to write it, relative to the workspace (`NAME_VERSION_ARCH.deb`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// `publishDeb`: adds a `.deb` of the workspace to an APT repository, then
/// updates the repository's publications.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublishDebStage {
    pub repository: String,
    /// The package file, relative to the workspace.
    pub file: String,
    #[serde(default)]
    pub force_replace: bool,
}

/// The `packageDeb` stage type.
pub struct PackageDeb;

impl StageType for PackageDeb {
    type Spec = PackageDebStage;

    fn secret_names(_spec: &PackageDebStage) -> Vec<SecretName> {
        Vec::new()
    }
}

impl CheckStageType for PackageDeb {
    fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
        check_package(stage, cx)
    }
}

/// The `publishDeb` stage type.
pub struct PublishDeb;

impl StageType for PublishDeb {
    type Spec = PublishDebStage;

    fn secret_names(_spec: &PublishDebStage) -> Vec<SecretName> {
        Vec::new()
    }
}

impl CheckStageType for PublishDeb {
    fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
        check_publish(stage, cx)
    }
}

fn check_package(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    let f = &mut stage.fields;
    f.required_string(cx, "directory");
    f.required_string(cx, "package");
    f.required_string(cx, "version");
    for name in [
        "architecture",
        "maintainer",
        "description",
        "preinst",
        "postinst",
        "prerm",
        "postrm",
        "output",
    ] {
        f.string(cx, name);
    }
    f.strings(cx, "depends");
}

fn check_publish(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    let f = &mut stage.fields;
    f.required_string(cx, "repository");
    f.required_string(cx, "file");
    f.bool(cx, "forceReplace");
}
