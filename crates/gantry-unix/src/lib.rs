//! The Unix calls several parts of Gantry make, behind safe types: an
//! exclusive lock on a file that the kernel releases when its holder dies
//! (`flock`), and process groups that can be signalled, waited out and
//! found again after a restart (`killpg`, `/proc`).
//!
//! API boundary: callers never write `unsafe` for these; every call that
//! needs one lives here, on top of `nix`'s checked wrappers.

#![forbid(unsafe_code)]

mod lock;
mod process_group;

pub use lock::FileLock;
pub use nix::sys::signal::Signal;
pub use process_group::{ProcessGroup, ProcessId};
