//! Keep-alive connections to instances, one pool per worker thread.
//!
//! Each worker runs on its own single-threaded runtime (see `workers`), so
//! its pool is a thread-local: checking a connection out or back in takes no
//! lock and touches no memory another core writes. This replaces
//! hyper-util's general-purpose pool, whose per-request bookkeeping (a
//! mutex, pool keys built from the URI, a spawned task to return each
//! connection) was a measurable share of the proxy's own CPU time.
//!
//! A pooled connection is a bare socket (`upstream_http1::Connection`): no
//! task watches it while it is idle. Its socket's readiness, which the
//! runtime records whenever the instance closes it, is checked when it is
//! checked out and by the sweep. A connection goes back to the pool only
//! once its response was read to the end; one abandoned midway is closed.
//!
//! Requests that switch protocols (WebSocket) or stream a large body still
//! go through hyper's client connection, on a connection of their own that
//! is never pooled ([`connect_hyper`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::request_body::UpstreamBody;
use crate::upstream_http1::Connection;

pub(crate) type Sender = SendRequest<UpstreamBody>;

/// How long connecting to an instance may take before it counts as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Idle connections kept per instance and worker; more are closed.
const MAX_IDLE_PER_INSTANCE: usize = 64;
/// An idle connection unused this long is closed by the sweep.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

struct Idle {
    connection: Connection,
    since: Instant,
}

thread_local! {
    static POOL: RefCell<HashMap<SocketAddr, Vec<Idle>>> = RefCell::new(HashMap::new());
}

/// Why no connection could be had. Nothing was sent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("connecting timed out after {0:?}")]
    TimedOut(Duration),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP handshake failed: {0}")]
    Handshake(hyper::Error),
}

/// An idle connection to `addr`, if this thread has one that is still
/// open. The most recently used comes first: it is the least likely to have
/// been closed by the instance's own idle timeout.
pub(crate) fn checkout(addr: SocketAddr) -> Option<Connection> {
    POOL.with_borrow_mut(|pool| {
        let idle = pool.get_mut(&addr)?;
        while let Some(candidate) = idle.pop() {
            if candidate.connection.is_open() {
                return Some(candidate.connection);
            }
        }
        None
    })
}

/// Puts a connection whose last response was read to the end back into
/// this thread's pool.
pub(crate) fn checkin(addr: SocketAddr, connection: Connection) {
    POOL.with_borrow_mut(|pool| {
        let idle = pool.entry(addr).or_default();
        if idle.len() < MAX_IDLE_PER_INSTANCE {
            idle.push(Idle {
                connection,
                since: Instant::now(),
            });
        }
    });
}

/// Opens a new connection to `addr`.
pub(crate) async fn connect(addr: SocketAddr) -> Result<Connection, ConnectError> {
    Ok(Connection::new(connect_tcp(addr).await?))
}

/// Opens a new connection to `addr` driven by hyper's client, for a request
/// that switches protocols or streams its body. Its task runs on the
/// calling thread's runtime and ends when the connection closes.
pub(crate) async fn connect_hyper(addr: SocketAddr) -> Result<Sender, ConnectError> {
    let stream = connect_tcp(addr).await?;
    let (sender, connection) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(ConnectError::Handshake)?;
    tokio::spawn(async move {
        if let Err(error) = connection.with_upgrades().await {
            tracing::debug!(%addr, %error, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}

async fn connect_tcp(addr: SocketAddr) -> Result<TcpStream, ConnectError> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| ConnectError::TimedOut(CONNECT_TIMEOUT))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Closes this thread's connections that sat idle for [`IDLE_TIMEOUT`] or
/// were closed by their instance, and forgets instances with none left.
pub(crate) fn sweep() {
    let now = Instant::now();
    POOL.with_borrow_mut(|pool| {
        pool.retain(|_, idle| {
            idle.retain(|c| c.connection.is_open() && now.duration_since(c.since) < IDLE_TIMEOUT);
            !idle.is_empty()
        });
    });
}
