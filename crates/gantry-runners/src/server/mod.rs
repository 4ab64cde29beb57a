//! The server's half: who the runners are ([`RunnerRegistry`]) and what
//! they run ([`Dispatcher`]). The HTTP routes in `gantry-api` only translate
//! to these.
//!
//! **Architecture invariant:** every change of a job's state is a
//! conditional write in the store (on its state and lease id) committed
//! before anything acts on it; what is in memory here (the queue, the live
//! leases, the owners' channels) only wakes and routes.

mod dispatcher;
mod error;
mod job;
mod placement;
mod registry;
mod secret;

#[cfg(test)]
mod tests;

pub use dispatcher::Dispatcher;
pub use error::RunnerError;
pub use job::{JobEvent, JobHandle, JobSpec, QueuedJob};
pub use placement::only_runner;
pub use registry::{CreatedToken, RunnerRegistry, RunnerStatus};
