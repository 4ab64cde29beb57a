//! `packageDeb` (a `.deb` from a workspace directory) and `publishDeb` (a
//! `.deb` of the workspace into an APT repository, then its publications
//! updated). Names and versions are checked when the stage runs, since they
//! are usually expressions (`${{ trigger.tag }}`).

use super::{StageFields, StageType};
use crate::check::Checker;

pub(super) const PACKAGE: StageType = StageType {
    name: "packageDeb",
    check: check_package,
};

pub(super) const PUBLISH: StageType = StageType {
    name: "publishDeb",
    check: check_publish,
};

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
