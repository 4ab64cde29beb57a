//! Serving the API on a TCP listener with every connection bounded: how
//! many (admission at accept, `gantry-listen`) and how long (timeouts for
//! the request head, the idle time between requests, and the gaps of a
//! request body), like nginx's `client_header_timeout`, `keepalive_timeout`
//! and `client_body_timeout`.
//!
//! hyper's own `header_read_timeout` starts when hyper begins waiting for a
//! request head, which on a kept-alive connection is right after the last
//! response: it would cut idle connections at the header timeout, not at
//! the keep-alive one. So hyper's is turned off and each connection keeps
//! its own clock (`Activity`): idle since the last response, reading a head
//! since its first byte, or busy while a request is being answered. A busy
//! connection (a long upload, an event stream) is never cut for idleness;
//! its body is bounded by the gap between reads instead.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use gantry_listen::Admission;

/// The timeouts of every connection of one listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// From the first byte of a request to the end of its head.
    pub header: Duration,
    /// A connection with no request in progress is closed after this long.
    pub keep_alive: Duration,
    /// The longest gap between two reads of a request body.
    pub body: Duration,
}

impl Default for Timeouts {
    /// nginx's defaults: 60 s for a head and between body reads, 75 s idle.
    fn default() -> Timeouts {
        Timeouts {
            header: Duration::from_secs(60),
            keep_alive: Duration::from_secs(75),
            body: Duration::from_secs(60),
        }
    }
}

/// How one listener serves.
#[derive(Clone, Debug)]
pub struct ListenerConfig {
    pub timeouts: Timeouts,
    /// How long open connections may take to finish after shutdown starts.
    pub drain: Duration,
}

/// How long the accept loop pauses when the process is out of descriptors
/// or memory: long enough not to spin, short enough to serve again as soon
/// as connections close.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Once this many connections have closed, glibc is asked to give back the
/// memory it keeps of their freed buffers (at most once a second): else a
/// burst of thousands of connections leaves the process tens of megabytes
/// larger for good (+55 MiB after 5,000 idle connections closed).
const TRIM_AFTER_CLOSED: usize = 256;

/// Serves `app` on `listener` until `shutdown` is cancelled, then lets open
/// connections finish for at most `config.drain`. Only a failure to read the
/// listener's own address ends it early; every accept error is survived.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    admission: Admission,
    config: ListenerConfig,
    shutdown: CancellationToken,
) {
    let connections = TaskTracker::new();
    let closed = Arc::new(AtomicUsize::new(0));
    let trimmer = tokio::spawn(trim_after_closures(closed.clone()));
    let mut refused_logged: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) if out_of_resources(&error) => {
                // The process or the system is out of descriptors: the
                // pending connection stays in the backlog until some close.
                tracing::warn!(%error, "cannot accept a connection; pausing");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
            Err(error) => {
                // A connection reset before it was accepted, and the like.
                tracing::debug!(%error, "accept failed");
                continue;
            }
        };
        let permit = match admission.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(refused) => {
                // One line per second at most: a flood must not become a
                // flood of logs.
                if refused_logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                    refused_logged = Some(Instant::now());
                    tracing::warn!(peer = %peer.ip(), reason = %refused, "connection refused");
                }
                metrics::counter!("gantry_api_connections_refused_total").increment(1);
                refuse(stream, &refused.to_string());
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let shutdown = shutdown.clone();
        let timeouts = config.timeouts;
        let closed = closed.clone();
        connections.spawn(async move {
            serve_connection(stream, peer, app, timeouts, shutdown).await;
            drop(permit);
            closed.fetch_add(1, Ordering::Relaxed);
        });
    }
    drop(listener);
    trimmer.abort();
    connections.close();
    if tokio::time::timeout(config.drain, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still open after {:?}; stopping anyway",
            config.drain
        );
    }
}

/// Gives memory back after every `TRIM_AFTER_CLOSED` closed connections,
/// looking once a second.
async fn trim_after_closures(closed: Arc<AtomicUsize>) {
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    loop {
        clock.tick().await;
        if closed.load(Ordering::Relaxed) >= TRIM_AFTER_CLOSED {
            closed.store(0, Ordering::Relaxed);
            crate::bodies::give_memory_back();
        }
    }
}

/// Errors of `accept` that say the process or the system is out of
/// descriptors or memory, as opposed to one connection failing.
fn out_of_resources(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Answers a refused connection with a 503 if its send buffer takes it at
/// once, then closes it; never waits on the client.
fn refuse(stream: TcpStream, reason: &str) {
    // The API's error shape (`error.rs`), spelled here because this answer
    // is written to the socket before any HTTP machinery runs.
    let body = format!("{{\"error\":\"connection refused: {reason}\",\"code\":\"unavailable\"}}\n");
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(answer.as_bytes());
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    timeouts: Timeouts,
    shutdown: CancellationToken,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let busy = Busy::start(activity.clone());
            let request = request.map(|body| {
                Body::new(GappedBody {
                    inner: body,
                    gap: timeouts.body,
                    deadline: None,
                })
            });
            let app = app.clone();
            async move {
                let response = app.oneshot(request).await?;
                // The connection stays busy until the response body is
                // sent or dropped: an event stream is never idle.
                Ok::<_, std::convert::Infallible>(response.map(|body| {
                    Body::new(BusyBody {
                        inner: body,
                        _busy: busy,
                    })
                }))
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None::<Duration>)
        // hyper's default read buffer grows to about 400 KiB per
        // connection; 64 KiB holds any request head an API client sends and
        // keeps hundreds of slow clients within the memory they are allowed.
        .max_buf_size(64 * 1024)
        .keep_alive(true);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        let wake = activity.deadline(timeouts).unwrap_or_else(|| {
            // Busy: look again later; the response's end resets the clock.
            Instant::now() + timeouts.keep_alive.min(timeouts.header)
        });
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(peer = %peer, %error, "connection ended with an error");
                }
                return;
            }
            () = activity.changed.notified() => {}
            () = tokio::time::sleep_until(wake.into()) => {
                if let Some(expired) = activity.expired(timeouts) {
                    tracing::debug!(peer = %peer, timeout = expired, "closing the connection");
                    metrics::counter!("gantry_api_connections_timed_out_total", "timeout" => expired)
                        .increment(1);
                    return;
                }
            }
            () = shutdown.cancelled(), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// What one connection is doing, for its timeouts.
struct Activity {
    /// When the clock started: the connection's accept, the end of the
    /// last response, or the first byte of a head; milliseconds after
    /// `origin`.
    since: AtomicU64,
    /// Requests being answered.
    busy: AtomicUsize,
    /// Bytes arrived since the connection went idle: a head is being read.
    reading_head: AtomicBool,
    origin: Instant,
    /// Woken when the clock changes, so that the connection's timer is set
    /// again (a stored wake-up is never lost).
    changed: tokio::sync::Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            since: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
            // A new connection owes its first head within the header
            // timeout, as in nginx.
            reading_head: AtomicBool::new(true),
            origin: Instant::now(),
            changed: tokio::sync::Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    fn bytes_read(&self) {
        if self.busy.load(Ordering::Acquire) == 0 && !self.reading_head.swap(true, Ordering::AcqRel)
        {
            self.since.store(self.now(), Ordering::Release);
            self.changed.notify_one();
        }
    }

    /// When the current timeout expires; none while busy.
    fn deadline(&self, timeouts: Timeouts) -> Option<Instant> {
        if self.busy.load(Ordering::Acquire) > 0 {
            return None;
        }
        let limit = if self.reading_head.load(Ordering::Acquire) {
            timeouts.header
        } else {
            timeouts.keep_alive
        };
        let since = Duration::from_millis(self.since.load(Ordering::Acquire));
        Some(self.origin + since + limit)
    }

    /// Which timeout has passed, if one has.
    fn expired(&self, timeouts: Timeouts) -> Option<&'static str> {
        let deadline = self.deadline(timeouts)?;
        if Instant::now() < deadline {
            return None;
        }
        Some(if self.reading_head.load(Ordering::Acquire) {
            "header"
        } else {
            "keep_alive"
        })
    }
}

/// One request in progress on a connection; dropping it makes the
/// connection idle again when it was the last.
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: Arc<Activity>) -> Busy {
        activity.busy.fetch_add(1, Ordering::AcqRel);
        activity.reading_head.store(false, Ordering::Release);
        Busy(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let now = self.0.now();
        self.0.since.store(now, Ordering::Release);
        self.0.reading_head.store(false, Ordering::Release);
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_one();
    }
}

/// The connection's socket, noting when bytes arrive.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A request body that fails when the client leaves a gap longer than
/// `gap` between two pieces (nginx's `client_body_timeout`). The clock runs
/// only while the handler waits for the client, not while it is busy with
/// what it read.
struct GappedBody {
    inner: Incoming,
    gap: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// The error a request body ends with when its sender paused too long.
#[derive(Debug, thiserror::Error)]
#[error("the client sent nothing of the request body for {0:?}")]
pub struct BodyTimeout(pub Duration);

impl HttpBody for GappedBody {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.deadline = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let gap = this.gap;
                let deadline = this
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(gap)));
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout(gap).into()))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its connection busy until it is done.
struct BusyBody {
    inner: Body,
    _busy: Busy,
}

impl HttpBody for BusyBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests;
