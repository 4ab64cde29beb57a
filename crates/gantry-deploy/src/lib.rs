//! Deploys: applications → clusters (`app-stack-detail`) → server groups
//! (`…-v000`, one immutable version each) → instances, and the strategies
//! that replace one server group by another behind a load balancer.
//!
//! Provider-neutral: the model (`model`), the controller that engine
//! stages and the API call (`controller`), the strategies (`strategies`,
//! one file each), canary analysis (`analysis`), and the shape of a
//! provider (`providers`: `Instances` and `Traffic`, chosen by name from a
//! `ProviderRegistry`). It holds no state of its own; every decision is
//! read back from the providers. The local data plane, which runs the load
//! balancers and instances on this machine, is the `local` provider in
//! `gantry-dataplane`; `testing::FakeProvider` (feature `fake`) keeps
//! everything in memory for tests.

#![forbid(unsafe_code)]

pub mod analysis;
mod controller;
mod error;
mod millis;
pub mod model;
pub mod providers;
pub mod strategies;
#[cfg(any(test, feature = "fake"))]
pub mod testing;

pub use controller::{DEFAULT_MAX_SIZE, DisableConfig, FULL_WEIGHT, Limits};
pub use controller::{DeployController, DeployRequest, Progress};
pub use error::DeployError;
