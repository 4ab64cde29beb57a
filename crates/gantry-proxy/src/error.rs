//! Proxy errors say which side failed and whether trying again is safe
//! (Pingora's error model).

use hyper::StatusCode;

/// Who is at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The client sent something we cannot forward, or went away.
    Client,
    /// The client did not send its request in time (408).
    ClientTimeout,
    /// The chosen instance refused or reset the connection.
    Upstream,
    /// The chosen instance took the request and did not answer in time.
    Timeout,
    /// Nothing to route to: no enabled group, none scaled above zero, or
    /// no healthy instance (503).
    Unavailable,
    /// A fault of the proxy itself.
    Internal,
}

#[derive(Debug, thiserror::Error)]
#[error("{side:?} error: {message}")]
pub struct ProxyError {
    pub side: Side,
    /// True when no byte of the request reached an upstream, so another
    /// instance may be tried.
    pub retryable: bool,
    pub message: String,
}

impl ProxyError {
    pub(crate) fn new(side: Side, retryable: bool, message: impl Into<String>) -> ProxyError {
        ProxyError {
            side,
            retryable,
            message: message.into(),
        }
    }

    /// The status answered to the client.
    pub fn status(&self) -> StatusCode {
        match self.side {
            Side::Client => StatusCode::BAD_REQUEST,
            Side::ClientTimeout => StatusCode::REQUEST_TIMEOUT,
            Side::Upstream => StatusCode::BAD_GATEWAY,
            Side::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Side::Unavailable | Side::Internal => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn side_name(&self) -> &'static str {
        match self.side {
            Side::Client | Side::ClientTimeout => "client",
            Side::Upstream => "upstream",
            Side::Timeout => "timeout",
            Side::Unavailable => "unavailable",
            Side::Internal => "internal",
        }
    }
}

/// Why cluster `cluster` has no instance to take a request, in words an
/// operator acts on: no group takes its traffic, its groups are scaled to
/// zero, or none of their instances is healthy.
pub(crate) fn nothing_to_route_to(
    cluster: &str,
    groups: &[crate::discovery::GroupBackend],
) -> String {
    let instances: usize = groups.iter().map(|g| g.upstreams.len()).sum();
    if groups.is_empty() {
        format!("cluster {cluster:?} has no enabled server group")
    } else if instances == 0 {
        format!("cluster {cluster:?} is scaled to 0 instances")
    } else {
        format!("cluster {cluster:?} has no healthy instance (of {instances})")
    }
}

/// The client body's own error, when that is why hyper failed to send a
/// request: hyper reports it as its own error with ours as its source.
pub(crate) fn client_body_failure(error: &hyper::Error) -> Option<ProxyError> {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(proxy) = cause.downcast_ref::<ProxyError>()
            && matches!(proxy.side, Side::Client | Side::ClientTimeout)
        {
            return Some(ProxyError::new(proxy.side, false, proxy.message.clone()));
        }
        source = cause.source();
    }
    None
}
