//! Fleets: hosts reached over SSH, each running a Gantry agent that
//! supervises the instances the `ssh` provider places there.
//!
//! `ssh.rs` is one pinned, multiplexed SSH connection (the system's
//! OpenSSH through the `openssh` crate); `fleet.rs` ([`Fleet`]) the stored
//! hosts with a connection each and the use cases of `gantry host …`;
//! `bootstrap.rs` installs the agent; `agent/` is the agent itself and its
//! client; `fingerprint.rs` names host keys the way ssh prints them.

#![forbid(unsafe_code)]

pub mod agent;
pub mod bootstrap;
mod error;
mod fingerprint;
mod fleet;
pub mod provider;
pub mod ssh;

pub use error::FleetError;
pub use fingerprint::fingerprint;
pub use fleet::{Fleet, FleetHost};
pub use provider::SshProvider;
