//! The stage kit: everything a stage implementation may use, and nothing more. Stage
//! types live in `gantry-stages`, which reaches the engine only through this module; the
//! orchestrator's own parts (driver, execution state, engine internals) are not here.
//!
//! The kit's modules carry the names the stage files were written against
//! (`crate::clock::now`, `crate::workspace_files::Beneath`, …), so a stage crate imports
//! them once at its root.

pub use crate::driver::{Reply, StageSignal};
pub use crate::engine::{Judgment, RunRequest};
pub use crate::error::EngineError;
pub use crate::event::Event;
pub use crate::logs::{Masker, StageLog};
pub use crate::secret_lookup::{GitCredentialsError, SecretLookupError};
pub use crate::stage_context::StageContext;
pub use crate::stage_types::{Outputs, StageFailure, StageRegistry, StageResult, StageTypes};
pub use crate::{artifact_store, builders};

/// Wall-clock time as the store records it, and durations as people read them.
pub mod clock {
    pub use crate::clock::{humanize, now};
}

/// Stopping a process group a stage started (a bake's build).
pub mod process {
    pub use crate::process::{GRACE, terminate_group};
}

/// Reading a secret a stage names, and the typed errors of credentials read that way.
pub mod secret_lookup {
    pub use crate::secret_lookup::{RegistryCredentialsError, SecretLookupError, lookup};
}

/// Secret values kept in a stage's outputs, sealed with the server's key.
pub mod sealed {
    pub use crate::sealed::seal;
}

/// A typed trigger as step variables.
pub mod trigger_env {
    pub use crate::trigger_env::step_env;
}

/// CEL conditions over what expressions see (`StageContext::expressions`).
pub mod expressions {
    pub use crate::expressions::{RenderError, condition};
}

/// Reading what steps wrote: beneath the workspace, never through a link out of it.
pub mod workspace_files {
    pub use crate::workspace_files::{Beneath, Entry, EntryKind, WorkspaceFileError};
}

/// A Cloud Build file in the workspace, read as the engine reads it to mask its secrets.
pub mod cloudbuild_file {
    pub use crate::cloudbuild_file::{MAX_CONFIG, read_config, secret_names};
}

/// The step executor seam: a `run` stage orders steps and records them; an executor
/// (`StageContext::step_executor`) only runs them.
pub mod executor {
    pub use crate::executor::{
        Confinement, ExecutorError, LeftBehind, LogLine, Reaped, StageExecutor, StageHandle,
        StageSpec, StepExecutor, StepExit, StepHandle, StepSecrets, StepSpec, StepVolume,
    };

    /// What runs on this machine: steps' log and outputs files, and the container
    /// engine's command line a Cloud Build step may run.
    pub mod local {
        pub use crate::executor::local::{engine_cli, output};
    }

    /// What a stage hands to the runner its build ran on: the images to push there.
    pub mod remote {
        pub use crate::executor::remote::ImageToPush;
    }
}
