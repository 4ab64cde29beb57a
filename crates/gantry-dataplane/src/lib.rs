//! The local data plane: the `local` provider of `gantry-deploy` and the
//! process it talks to (`gantry dataplane`), which runs the load balancer
//! listeners (`gantry-proxy`) and the instances, kept apart from `gantry
//! serve` so that a crash or restart of the server drops no request.
//!
//! - `local/`: the `local` provider (`LocalProvider`: the data plane's
//!   client, and the watch that starts it again when it dies);
//! - `protocol.rs`: the control socket's JSON-lines requests;
//! - `convert.rs`: the provider-neutral deploy model to the proxy's types;
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
//! - `remote.rs`: instances of other providers (`ssh`), routed to at their
//!   hosts' addresses with the same health checks, never run here;
//! - `stop.rs`: `gantry dataplane stop`, the graceful stop of the whole
//!   data plane, asked through its socket.

mod adopt;
mod convert;
mod handoff;
pub mod local;
pub mod protocol;
mod reconcile;
mod remote;
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
