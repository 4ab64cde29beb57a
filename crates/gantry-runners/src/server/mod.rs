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
mod lease_clock;
mod registry;
mod secret;

#[cfg(test)]
mod tests;

pub use dispatcher::{Dispatcher, JobEvent, JobHandle, JobSpec, QueuedJob, only_runner};
pub use error::RunnerError;
pub use registry::{CreatedToken, RunnerRegistry, RunnerStatus};
