//! Gantry's built-in load balancer: HTTP listeners that route requests to the
//! healthy instances of the enabled server groups of a cluster.
//!
//! The layout follows Pingora's load-balancing split:
//! - `discovery`: the routing table (listeners → clusters → weighted groups →
//!   upstream instances), replaced atomically by whoever owns the instances;
//! - `health_check`: active checks with thresholds, plus passive ejection;
//! - `selection`: picking a group by weight and an instance within it;
//! - `service`: the proxying itself (retries, timeouts, upgrades, headers);
//! - `request_body`: request bodies read whole (resendable) or streamed;
//! - `body_budget`: the memory all bodies read whole may hold at once;
//! - `client_conn`: header and keep-alive timeouts of client connections;
//! - `memory`: giving freed memory back after a burst of connections;
//! - `upstream_http1`: one HTTP/1.1 exchange with an instance, read and written
//!   by the request's own task;
//! - `upstream_pool`: keep-alive connections to instances, one pool per worker;
//! - `stats`: per-server-group counters and latency histograms;
//! - `per_worker`: counters with a slot per worker, summed when read;
//! - `workers`: the threads that carry requests, one per core, each with its
//!   own runtime and upstream pool.
//!
//! The crate knows nothing about processes or deploys: `gantry-deploy` feeds
//! it a [`RoutingTable`] and reads its [`Stats`].

mod body_budget;
mod client_conn;
mod discovery;
mod error;
pub mod health_check;
mod listener;
mod memory;
mod per_second;
mod per_worker;
mod request_body;
mod selection;
mod service;
mod stats;
mod upstream_http1;
mod upstream_pool;
mod workers;

#[cfg(test)]
mod tests;

pub use body_budget::{BodyBudgetConfig, DEFAULT_BODY_BUFFER_TIME, DEFAULT_BODY_MEMORY};
pub use discovery::{
    ClientTimeouts, ConnectionLimits, DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT,
    DEFAULT_KEEP_ALIVE_TIMEOUT, DEFAULT_RESPONSE_TIMEOUT, GroupBackend, ListenerConfig, RouteRule,
    RoutingTable, Upstream,
};
pub use error::{ProxyError, Side};
pub use gantry_listen::{FdBudget, Limits};
pub use health_check::{HealthCheckConfig, UpstreamHealth};
pub use listener::{Proxy, ProxyConfig, ProxyConfigError};
pub use stats::{GroupStats, GroupStatsSnapshot, Stats};
#[doc(hidden)]
pub use upstream_http1::read_response;
