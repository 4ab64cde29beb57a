//! Admission of connections for every TCP listener Gantry runs (the API and
//! the load balancer's listeners): a cap per listener, a cap per client
//! address, and a process-wide budget of file descriptors that leaves a
//! reserve for the process's own work (steps, health checks, the store).
//!
//! A connection that would pass a limit is refused at accept (closed at
//! once) instead of being allowed to exhaust the process: with one client
//! holding 20,000 idle sockets, the kernel's `EMFILE` used to fail a build
//! step and every health check. What is bounded here is *how many*
//! connections live; *how long* they live is the HTTP servers' timeouts.

mod admission;
mod fd_limit;

pub use admission::{Admission, Limits, Permit, Refused};
pub use fd_limit::{FdBudget, raise_fd_limit};

#[cfg(test)]
mod tests;
