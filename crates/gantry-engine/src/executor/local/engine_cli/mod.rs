//! What a Cloud Build `gcr.io/cloud-builders/docker` step may ask of the
//! container engine. The image map runs that builder as the host's engine
//! CLI (`host:podman`), unconfined and with the engine's own rights (the
//! server's, or the runner's it runs on: the local runner's is a rootless
//! podman of its own user), because a confined process cannot reach the
//! engine; so such a step may only build, tag, push and
//! pull images and ask about them. Everything else (`run`, `exec`, `cp`,
//! `volume`, `system`, options that mount or read host paths, …) is
//! refused before any step of the stage runs, naming the step, the
//! argument and why. A build's context and `-f` file must lie beneath the
//! workspace: at the step's start they are opened beneath it (no `..`, no
//! link out) and podman gets the open descriptors (`/dev/fd/N`), so a step
//! running in parallel cannot swap them after the check.

mod paths;
mod policy;

pub(crate) use paths::{inherit, open_paths};
pub use policy::{Allowed, check};

#[cfg(test)]
mod tests;
