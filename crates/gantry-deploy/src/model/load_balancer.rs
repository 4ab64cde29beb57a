//! Load balancers as a provider configures them: listeners, the rules that
//! route requests to clusters, health checks and client limits. The serde
//! shapes are those the local data plane has always kept in `state.json`
//! (the proxy's own), so that neither that file nor the API's JSON changed
//! when the model stopped naming the proxy's types.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancer {
    pub name: String,
    pub port: u16,
    /// Tried in order; the first that matches host and path wins.
    pub rules: Vec<RouteRule>,
    pub health_check: HealthCheck,
    /// Unset: the provider's default (the local data plane's is 60s,
    /// nginx's `proxy_read_timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_timeout: Option<Duration>,
    /// Header, keep-alive and body timeouts of client connections; unset
    /// ones are nginx's defaults.
    #[serde(default)]
    pub client_timeouts: ClientTimeouts,
    /// Caps on client connections; unset ones are the provider's defaults.
    #[serde(default)]
    pub limits: ConnectionLimits,
}

/// Requests whose host and path match go to `cluster`. A rule without host
/// or path matches everything.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteRule {
    pub host: Option<String>,
    pub path_prefix: Option<String>,
    pub cluster: String,
}

/// An HTTP GET on `path` every `interval`; an instance is healthy after
/// `healthy_threshold` successes in a row and out after
/// `unhealthy_threshold` failures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    pub path: String,
    #[serde(with = "crate::millis")]
    pub interval: Duration,
    #[serde(with = "crate::millis")]
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            path: "/health".to_owned(),
            interval: Duration::from_millis(500),
            timeout: Duration::from_secs(1),
            healthy_threshold: 2,
            unhealthy_threshold: 2,
        }
    }
}

/// How long a client may take, as nginx's `client_header_timeout`,
/// `keepalive_timeout` and `client_body_timeout` bound it; unset, nginx's
/// defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientTimeouts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<Duration>,
}

/// Caps on a listener's client connections; unset, the provider's defaults.
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
