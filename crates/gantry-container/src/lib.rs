//! Driving a container engine (podman or docker) through its command line:
//! step containers with Gantry's labels, orphan removal by label, images
//! (exists, pull, build, tag, push, listed by label, removed) and listing a registry's tags.
//!
//! Nothing here knows about executions or stages: callers pass labels and
//! names, and this crate turns them into engine commands.

#![forbid(unsafe_code)]

pub mod api_gate;
mod auth;
mod engine;
mod error;
mod images;
mod registry;
mod run;
mod version;

pub use auth::Credentials;
pub use engine::{ContainerEngine, EngineKind};
pub use error::ContainerError;
pub use images::LocalImage;
pub use registry::{
    RegistryClient, is_loopback_registry, list_tags, registry_host, split_reference,
};
pub use run::{ContainerRun, VolumeMount};
pub use version::{compare_versions, newest_tag};

/// Label keys every container and volume Gantry starts carries.
pub mod labels {
    /// Marks a container or volume as Gantry's; its value is unused.
    pub const MANAGED: &str = "io.gantry.managed";
    pub const EXECUTION: &str = "io.gantry.execution";
    pub const STAGE: &str = "io.gantry.stage";
    pub const STEP: &str = "io.gantry.step";
    /// Marks an image as built by Gantry (`bake`); `pruneImages` removes only these.
    pub const BUILT: &str = "io.gantry.built";
}

#[cfg(test)]
mod tests;
