//! The durable pipeline engine: turns a pipeline spec into an execution and
//! drives it, stage by stage, persisting every transition in the store so
//! that a crash at any point resumes where it stopped.
//!
//! How it fits together:
//! - [`Engine`] (`engine.rs`) is the handle the API uses: start a run, cancel,
//!   judge, skip, restart. It keeps one *driver* per active execution.
//! - A driver (`driver.rs`) owns one execution: it starts the stages whose
//!   dependencies are done, in parallel, and records what they end with.
//! - The execution's state (`state.rs`) is shared by the driver and its stage
//!   tasks behind one lock; every change is written to the store before anyone
//!   acts on it.
//! - Stage types live in `gantry-stages`, outside this crate: whoever builds the engine
//!   hands them in ([`EngineConfig::stage_types`], a [`StageRegistry`] of
//!   [`StageTypes`]), and the orchestrator reaches a stage implementation only through
//!   that seam. A stage's `run(ctx, spec)` gets a [`StageContext`] and returns
//!   `Result<Outputs, StageFailure>`; [`stage_kit`] is everything a stage may use. A
//!   stage is written to be resumable: whatever it must not do twice, it records in its
//!   durable `state` first.
//!
//! The engine knows nothing about HTTP; `gantry-api` calls [`Engine`] and
//! forwards [`Event`]s.

pub mod artifact_store;
pub mod builders;
mod clock;
mod cloudbuild_file;
mod concurrency;
mod driver;
mod engine;
mod error;
mod event;
mod executor;
mod expressions;
mod logs;
mod parameters;
mod process;
mod sealed;
mod secret_lookup;
mod stage_context;
pub mod stage_kit;
mod stage_types;
mod state;
mod trigger_env;
mod workspace;
mod workspace_files;

pub use engine::{Engine, EngineConfig, HostSteps, Judgment, RunRequest};
pub use error::EngineError;
pub use event::Event;
pub use executor::remote::{RunnerPool, StepJobRunner, StepRunnerConfig};
pub use sealed::SEALED_KEY;
pub use secret_lookup::{GitCredentialsError, SecretLookupError};
pub use stage_context::StageContext;
pub use stage_types::{Outputs, StageFailure, StageRegistry, StageResult, StageTypes};
