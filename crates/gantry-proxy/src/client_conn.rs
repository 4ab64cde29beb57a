//! How long a client connection may take between requests: a client
//! socket that closes itself when the client is too slow to send a request
//! header or stays idle too long, as nginx's `client_header_timeout` and
//! `keepalive_timeout` do.
//!
//! hyper's own `header_read_timeout` (1.12, with a timer) starts its clock
//! as soon as a connection waits for a request, so on a kept-alive
//! connection it is also the idle timeout: it cannot keep an idle
//! connection longer than a slow header may take (nginx's 75 s against
//! 60 s). Hence this: the connection's requests say when one starts and
//! when its response has been sent ([`Activity`]), and the socket, while
//! no request is under way, closes itself when
//! - the first request's header is not all there within the header timeout
//!   of the accept;
//! - a later request's first byte does not come within the keep-alive
//!   timeout of the previous response, or its header is not all there
//!   within the header timeout of that first byte.
//!
//! Writes are timed too, at any moment but in a tunnel: a response the
//! client stops taking (its socket buffer full) fails the connection once
//! no byte could be written for the send timeout (nginx's `send_timeout`).
//!
//! While a request is under way its body's reads are timed by
//! `request_body`, and the wait for the response by the listener's response
//! timeout; after a protocol switch the tunnel is not timed here at all.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// What the requests of one connection tell its socket: a count bumped
/// when a request starts and again when its response has gone (odd: a
/// request is under way), and a mark for a protocol switch.
#[derive(Debug, Default)]
pub(crate) struct Activity(AtomicU64);

/// Set once the connection carries a tunnel: no more timeouts here.
const TUNNEL: u64 = 1 << 63;

impl Activity {
    /// Marks a request as under way until the returned guard is dropped
    /// (which the response body does once it has been sent).
    pub(crate) fn begin(self: &Arc<Activity>) -> Busy {
        self.0.fetch_add(1, Ordering::Release);
        Busy(self.clone())
    }

    pub(crate) fn tunnel(&self) {
        self.0.fetch_or(TUNNEL, Ordering::Release);
    }

    fn load(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// A request under way on its connection.
#[derive(Debug)]
pub(crate) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.0.fetch_add(1, Ordering::Release);
    }
}

/// The timeouts a client socket keeps between requests.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IdleTimeouts {
    pub header: Duration,
    pub keep_alive: Duration,
    pub send: Duration,
}

/// A client socket that fails its reads with `TimedOut` when the client
/// is too slow between requests (see the module's documentation).
pub(crate) struct TimedStream<S> {
    io: S,
    activity: Arc<Activity>,
    timeouts: IdleTimeouts,
    /// The activity count this idle period began at.
    seen: u64,
    /// A byte of the next request has arrived in this idle period.
    head_started: bool,
    deadline: Instant,
    /// Armed at `deadline` once a read had to wait.
    timer: Option<Pin<Box<Sleep>>>,
    /// Armed when a write had to wait; disarmed by the next write that
    /// makes progress.
    write_timer: Option<Pin<Box<Sleep>>>,
}

impl<S> TimedStream<S> {
    pub(crate) fn new(io: S, activity: Arc<Activity>, timeouts: IdleTimeouts) -> TimedStream<S> {
        TimedStream {
            io,
            activity,
            timeouts,
            seen: 0,
            head_started: false,
            // The first request's header is timed from the accept.
            deadline: Instant::now() + timeouts.header,
            timer: None,
            write_timer: None,
        }
    }

    /// The outcome of a write (or flush) with the send timeout applied:
    /// progress disarms the timer, a wait arms it, and a wait past it is
    /// an error that closes the connection.
    fn timed_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if !matches!(polled, Poll::Pending) || self.activity.load() & TUNNEL != 0 {
            self.write_timer = None;
            return polled;
        }
        let send = self.timeouts.send;
        let timer = self
            .write_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(send)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took no more of the response within the send timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let state = this.activity.load();
        if state & (TUNNEL | 1) != 0 {
            // A request is under way (hyper reads on to see the client
            // close), or the connection is a tunnel.
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        if state != this.seen {
            // A response has gone since: the connection waits for the next
            // request, for at most the keep-alive timeout.
            this.seen = state;
            this.head_started = false;
            this.deadline = Instant::now() + this.timeouts.keep_alive;
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if !this.head_started && buf.filled().len() > before {
                    this.head_started = true;
                    if state != 0 {
                        this.deadline = Instant::now() + this.timeouts.header;
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let deadline = this.deadline;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        if this.head_started || state == 0 {
                            "the client did not send a request header in time"
                        } else {
                            "the connection was idle for the keep-alive timeout"
                        },
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.timed_write(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.timed_write(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.timed_write(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl Busy {
    /// The response switched protocols: from now on the connection is a
    /// tunnel, timed by neither timeout.
    pub(crate) fn tunnel(&self) {
        self.0.tunnel();
    }
}

/// A response body that holds its request's [`Busy`] until it has been
/// sent (hyper drops it then).
pub(crate) struct Tracked<B> {
    pub(crate) body: B,
    pub(crate) _busy: Busy,
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}
