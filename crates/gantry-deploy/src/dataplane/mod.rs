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
//! - `adopt.rs`: instances recorded (pid, start time, port) so that the
//!   next data plane adopts those still running instead of losing them;
//! - `handoff.rs`: listening sockets that outlive the process: duplicates
//!   held by `gantry serve`, inherited by the next data plane;
//! - `stop.rs`: `gantry dataplane stop`, the graceful stop of the whole
//!   data plane, asked through its socket.

mod adopt;
mod handoff;
mod reconcile;
mod server;
mod state;
mod stop;
mod supervisor;
#[cfg(test)]
mod tests;

pub(crate) use handoff::FrameReader;
pub use handoff::{Frame, INHERITED_ENV, handoff_socket_path};
pub use server::{deploy_dir, run, socket_path, stopped_marker};
pub(crate) use state::load as load_desired_state;
pub use stop::{Stopped, stop};
