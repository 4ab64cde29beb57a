//! Google Cloud Build configs (`cloudbuild.yaml`), run unchanged on Gantry's
//! step engine: [`parse`] reads the file and sorts its fields into
//! supported, Google-only (a warning) and unsupported (an error);
//! [`substitute`] applies Cloud Build's substitution rules; [`translate`]
//! turns the build into Gantry steps; [`load`] does both in one pass, for
//! `gantry build --dry-run` to report every problem at once.

#![forbid(unsafe_code)]

mod checks;
mod fields;
mod git;
mod locate;
mod parse;
mod registries;
mod substitute;
mod translate;

pub use git::git_substitutions;
pub use parse::{BuildFile, BuildStep, DEFAULT_BUILD_TIMEOUT, ObjectArtifacts, parse};
pub use registries::{InsecureRegistries, RegistryMap};
pub use substitute::{
    SubstitutionConfig, Substitutions, builtin_names, overridable_builtins, substitute,
};
pub use translate::{
    Build, DOCKER_BUILDER_HOST, ImageMap, Translation, load, script_command, translate,
};

/// Every problem found in a Cloud Build file, one per line.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct CloudBuildError(pub Vec<String>);

#[cfg(test)]
mod tests;
