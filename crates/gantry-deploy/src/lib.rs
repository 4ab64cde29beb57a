//! Deploys: applications → clusters (`app-stack-detail`) → server groups
//! (`…-v000`, one immutable version each) → instances, and the strategies
//! that replace one server group by another behind a load balancer.
//!
//! Two halves that run in two processes:
//! - the **data plane** (`dataplane/`): load balancer listeners
//!   (`gantry-proxy`) and the instances of the local provider with their
//!   supervisors. It runs as `gantry dataplane`, apart from `gantry serve`,
//!   so that killing or restarting the server drops no request. It keeps its
//!   desired state in `DATA/deploy/state.json` and answers on the unix
//!   socket `DATA/deploy/dataplane.sock`;
//! - the **control plane** side (`controller`, `providers`, `strategies`,
//!   `analysis`): what the engine's stages and the API call. It holds no
//!   state of its own; every decision is read back from the data plane.

pub mod analysis;
mod controller;
pub mod dataplane;
mod error;
pub mod model;
pub mod protocol;
pub mod providers;
pub mod strategies;
#[cfg(any(test, feature = "fake"))]
pub mod testing;

pub use controller::{DeployController, DeployRequest, Progress};
pub use controller::{DEFAULT_MAX_SIZE, DisableConfig, FULL_WEIGHT, Limits};
pub use error::DeployError;
