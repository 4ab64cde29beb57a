//! What the proxy routes to: listeners with rules naming clusters, and for
//! each cluster its routable server groups with weights and instances. The
//! owner of the instances builds a new [`RoutingTable`] on every change and
//! hands it over whole; requests in flight keep the table they started with.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::health_check::UpstreamHealth;
use crate::per_worker::Counter;
use crate::stats::GroupStats;

/// One HTTP listener and its routing rules, tried in order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ListenerConfig {
    pub name: String,
    pub port: u16,
    pub rules: Vec<RouteRule>,
    /// How long an instance may take to send a response's header once it
    /// has the request; unset, [`DEFAULT_RESPONSE_TIMEOUT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_timeout: Option<Duration>,
    /// How long a client may take to send a request, and stay idle
    /// between requests.
    #[serde(default, skip_serializing_if = "ClientTimeouts::is_default")]
    pub client_timeouts: ClientTimeouts,
    /// How many client connections the listener holds at once.
    #[serde(default, skip_serializing_if = "ConnectionLimits::is_default")]
    pub limits: ConnectionLimits,
}

/// How long a client may take, as nginx's `client_header_timeout`,
/// `keepalive_timeout` and `client_body_timeout` bound it; unset, nginx's
/// defaults. A client that takes longer has its connection closed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientTimeouts {
    /// From accepting a connection (or from the first byte of a later
    /// request on it) to the end of the request's header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<Duration>,
    /// How long a kept-alive connection may wait for its next request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<Duration>,
    /// The longest wait between two reads of a request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Duration>,
    /// The longest a response may wait for the client to take more of it
    /// (nginx's `send_timeout`): a client that stops reading is cut off
    /// rather than holding its connection and its instance's forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<Duration>,
}

/// nginx's `client_header_timeout` default.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(60);
/// nginx's `keepalive_timeout` default.
pub const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(75);
/// nginx's `client_body_timeout` default.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// nginx's `send_timeout` default.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);

impl ClientTimeouts {
    pub fn header(&self) -> Duration {
        self.header.unwrap_or(DEFAULT_HEADER_TIMEOUT)
    }

    pub fn keep_alive(&self) -> Duration {
        self.keep_alive.unwrap_or(DEFAULT_KEEP_ALIVE_TIMEOUT)
    }

    pub fn body(&self) -> Duration {
        self.body.unwrap_or(DEFAULT_BODY_TIMEOUT)
    }

    pub fn send(&self) -> Duration {
        self.send.unwrap_or(DEFAULT_SEND_TIMEOUT)
    }

    fn is_default(&self) -> bool {
        *self == ClientTimeouts::default()
    }
}

/// Caps on a listener's client connections; unset, those of
/// [`gantry_listen::Limits::default`]. A connection past a cap is closed
/// as soon as it is accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionLimits {
    /// Connections open at once on the listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<usize>,
    /// Connections open at once from one client address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_address: Option<usize>,
}

impl ConnectionLimits {
    pub fn resolve(&self) -> gantry_listen::Limits {
        let defaults = gantry_listen::Limits::default();
        gantry_listen::Limits {
            max_connections: self.connections.unwrap_or(defaults.max_connections),
            max_per_address: self.per_address.unwrap_or(defaults.max_per_address),
        }
    }

    fn is_default(&self) -> bool {
        *self == ConnectionLimits::default()
    }
}

/// nginx's `proxy_read_timeout` default: long enough for slow endpoints,
/// short enough that a hung instance does not hold a client forever.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

impl ListenerConfig {
    pub fn response_timeout(&self) -> Duration {
        self.response_timeout.unwrap_or(DEFAULT_RESPONSE_TIMEOUT)
    }
}

/// Requests whose host and path match go to `cluster`. A rule without host
/// or path matches everything.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteRule {
    pub host: Option<String>,
    pub path_prefix: Option<String>,
    pub cluster: String,
}

impl RouteRule {
    pub(crate) fn matches(&self, host: Option<&str>, path: &str) -> bool {
        let host_ok = match (&self.host, host) {
            (None, _) => true,
            (Some(want), Some(host)) => want.eq_ignore_ascii_case(host),
            (Some(_), None) => false,
        };
        let path_ok = self
            .path_prefix
            .as_deref()
            .is_none_or(|prefix| path.starts_with(prefix));
        host_ok && path_ok
    }
}

/// One running instance of a server group.
#[derive(Debug)]
pub struct Upstream {
    pub id: String,
    pub addr: SocketAddr,
    pub health: Arc<UpstreamHealth>,
    /// Requests sent and not yet answered; draining waits for zero.
    pub(crate) in_flight: Counter,
}

impl Upstream {
    pub fn new(id: String, addr: SocketAddr, health: Arc<UpstreamHealth>) -> Upstream {
        Upstream {
            id,
            addr,
            health,
            in_flight: Counter::default(),
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.sum(Ordering::SeqCst) as usize
    }
}

/// A server group that takes traffic: enabled, with a weight above zero.
#[derive(Debug)]
pub struct GroupBackend {
    pub name: String,
    pub weight: u32,
    pub upstreams: Vec<Arc<Upstream>>,
    pub stats: Arc<GroupStats>,
}

/// Cluster name → the groups that take its traffic.
#[derive(Debug, Default)]
pub struct RoutingTable {
    pub clusters: HashMap<String, Vec<GroupBackend>>,
    /// Advanced on every pick; spreads requests by weight and within a
    /// group. One per worker: the split is exact over each worker's picks.
    pub(crate) cursor: Counter,
}

impl RoutingTable {
    pub fn new(clusters: HashMap<String, Vec<GroupBackend>>) -> RoutingTable {
        RoutingTable {
            clusters,
            cursor: Counter::default(),
        }
    }
}
