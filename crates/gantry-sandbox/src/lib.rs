//! What belongs here: confining user code that the server starts (build
//! steps, instances of the local provider) — an unprivileged identity, a
//! Landlock ruleset that keeps it out of the server's data directory, and a
//! clean environment.
//!
//! [`Sandbox::prepare`] finds out once, at server start, what the machine
//! offers (root, so a dedicated user; Landlock, and its ABI);
//! [`Sandbox::confine`] then prepares one `Command` so that the process it
//! starts, and everything that process starts, runs as that user under a
//! ruleset that reads the system, writes only what it is given (and the
//! machine's temporary directories) and reaches nothing of the protected
//! paths. `no_new_privs` is set, so a set-user-id program cannot undo it.

mod environment;
mod identity;
mod landlock;
mod sandbox;

pub use environment::{clean_environment, ordinary_umask};
pub use identity::{DEFAULT_RUNNER_USER, DEFAULT_USER, Identity};
pub use sandbox::{Access, Sandbox, SandboxConfig, running_as_root};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum SandboxError {
    #[error("user {0:?} does not exist")]
    NoSuchUser(String),
    #[error("cannot look up user {name:?}: {source}")]
    Lookup {
        name: String,
        source: std::io::Error,
    },
    #[error("cannot create user {name:?}: {message}")]
    CreateUser { name: String, message: String },
    #[error("a step user ({0:?}) needs the server to run as root")]
    NotRoot(String),
    #[error("cannot build the landlock ruleset for {path}: {source}")]
    Ruleset {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot give {path} to the step user: {source}")]
    HandOver {
        path: String,
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests;
