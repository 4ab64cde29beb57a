//! The host agent: the same `gantry` binary, installed by bootstrap in
//! `~/.gantry/bin`, running as the host user. `server.rs` is the process
//! (`gantry agent serve`), `instance.rs` supervises one instance,
//! `container.rs` runs instances of images with the host's container
//! engine, `state.rs` records what it runs before it acts, `stdio.rs` is `gantry
//! agent --stdio` (the SSH channel's end), `protocol.rs` the messages and
//! `client.rs` the control plane's side.

pub mod client;
mod container;
mod instance;
pub mod protocol;
mod server;
mod state;
mod stdio;

pub use server::{serve, socket_path};
pub use stdio::relay;

/// Where the agent lives on a host, relative to the host user's home.
pub const AGENT_DIR: &str = ".gantry";
/// The installed binary, relative to the home.
pub const AGENT_BINARY: &str = ".gantry/bin/gantry";

#[cfg(test)]
mod tests;
