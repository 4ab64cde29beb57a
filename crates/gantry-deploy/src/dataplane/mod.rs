//! The data-plane process (`gantry dataplane`): load balancer listeners and
//! the local provider's instances, kept apart from `gantry serve` so that a
//! crash or restart of the server drops no request.
//!
//! - `server.rs`: the control socket and the process's life (one data plane
//!   per data directory, guarded by a lock file; exits when the data
//!   directory disappears);
//! - `state.rs`: the desired state, persisted before it is acted on;
//! - `reconcile.rs`: instances and routing made to match the desired state;
//! - `supervisor.rs`: one task per instance: start, restart with backoff,
//!   crash-loop mark, graceful stop;
//! - `stop.rs`: `gantry dataplane stop`, the graceful stop of the whole
//!   data plane, asked through its socket.

mod reconcile;
mod server;
mod state;
mod stop;
mod supervisor;

pub use server::{deploy_dir, run, socket_path};
pub use stop::{Stopped, stop};
