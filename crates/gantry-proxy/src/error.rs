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
