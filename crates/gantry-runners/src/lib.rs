//! Runners: machines that connect out to the server, lease jobs, run them
//! and stream back what they print. Both sides live here so that the
//! protocol between them has one definition:
//!
//! - `protocol`: the typed, versioned messages (JSON over HTTP, under
//!   `/api/v1/runners/…`);
//! - `server`: the `RunnerRegistry` (registration tokens, credentials,
//!   enable/disable/remove), the `Dispatcher` (the queue of jobs, placement
//!   by labels and free slots, long-polled leases) and its lease clock;
//! - `agent`: what `gantry runner` does: register once, lease, heartbeat,
//!   stream logs from the last acknowledged line, obey cancel, and run each
//!   job through a `JobRunner`.
//!
//! # Lease bounds
//!
//! A runner heartbeats every [`protocol::HEARTBEAT`] (1 s); a lease not
//! renewed for [`protocol::LEASE_TTL`] (5 s) is lost and its job handed back
//! to its owner. A lease request waits at most [`protocol::LONG_POLL`]
//! (25 s) and is answered the moment a job it can take is queued. Cancel
//! reaches a runner with its next heartbeat and the job's processes get
//! [`agent::KILL_GRACE`] between SIGTERM and SIGKILL: under 2 s in all.

#![forbid(unsafe_code)]

pub mod agent;
pub mod protocol;
pub mod server;
