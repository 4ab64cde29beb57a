//! A request's body on its way to an instance. Up to
//! [`BUFFERED_BODY_LIMIT`] bytes are read whole first, so that a resend
//! carries exactly the same bytes; a larger body (or one of unknown length)
//! is streamed to the instance as it arrives, which keeps the proxy's memory
//! bounded whatever clients upload, and such a request is never sent twice.
//! (nginx buffers up to its `client_body_buffer_size` and spills the rest
//! to disk; streaming needs neither.)
//!
//! Bodies read whole share the proxy's body budget (`body_budget`): one
//! that finds it spent, or that does not arrive within its buffer time, is
//! streamed instead, so slow senders cannot hold more than the budget.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

use crate::body_budget::{BodyBudget, Reservation};
use crate::error::{ProxyError, Side};

/// The largest request body read whole before it is sent.
pub(crate) const BUFFERED_BODY_LIMIT: u64 = 1 << 20;

/// A request body as an upstream connection carries it.
pub(crate) type UpstreamBody = Either<Full<Bytes>, StreamedBody>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request's body, as it can be sent to an instance (again).
pub(crate) enum RequestBody {
    /// Read whole: every attempt sends a copy. Its share of the body budget
    /// is held until the request is answered.
    Buffered {
        bytes: Bytes,
        _reservation: Option<Reservation>,
    },
    /// Streamed from the client: there until an attempt takes it.
    Streamed(Option<StreamedBody>),
}

impl RequestBody {
    /// Reads a body whole when it is small, the budget has room for it and
    /// it arrives within the budget's buffer time; streams it otherwise.
    /// `between_reads` bounds every wait for more of it (nginx's
    /// `client_body_timeout`).
    pub(crate) async fn read(
        mut body: Incoming,
        budget: &BodyBudget,
        between_reads: Duration,
    ) -> Result<RequestBody, ProxyError> {
        if body.is_end_stream() {
            return Ok(RequestBody::Buffered {
                bytes: Bytes::new(),
                _reservation: None,
            });
        }
        let length = match body.size_hint().exact() {
            Some(length) if length <= BUFFERED_BODY_LIMIT => length as usize,
            _ => return Ok(RequestBody::streamed(None, body, between_reads)),
        };
        let Some(reservation) = budget.reserve(length) else {
            budget.count_streamed();
            return Ok(RequestBody::streamed(None, body, between_reads));
        };
        // Copied out of hyper's read buffer as it arrives: a slow sender's
        // small chunks would otherwise each pin a buffer of hyper's, and
        // the memory held would be many times the body's length.
        let mut buffer = BytesMut::with_capacity(length);
        let give_up_at = Instant::now() + budget.buffer_time();
        loop {
            let wait = between_reads.min(give_up_at.saturating_duration_since(Instant::now()));
            let frame = match tokio::time::timeout(wait, body.frame()).await {
                Ok(frame) => frame,
                Err(_) if Instant::now() >= give_up_at => {
                    // Slow, but not too slow to be served: what came so far
                    // goes first, the rest as it arrives. Its share of the
                    // budget goes to quicker clients.
                    budget.count_streamed();
                    let prefix = buffer.freeze();
                    drop(reservation);
                    return Ok(RequestBody::streamed(Some(prefix), body, between_reads));
                }
                Err(_) => return Err(body_timed_out(between_reads)),
            };
            match frame {
                None => break,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        buffer.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => {
                    return Err(ProxyError::new(
                        Side::Client,
                        false,
                        format!("reading the request body: {e}"),
                    ));
                }
            }
        }
        Ok(RequestBody::Buffered {
            bytes: buffer.freeze(),
            _reservation: Some(reservation),
        })
    }

    fn streamed(prefix: Option<Bytes>, body: Incoming, between_reads: Duration) -> RequestBody {
        RequestBody::Streamed(Some(StreamedBody {
            prefix: prefix.filter(|p| !p.is_empty()),
            body,
            between_reads,
            wait: None,
            sent: None,
        }))
    }

    pub(crate) fn can_be_sent_again(&self) -> bool {
        matches!(self, RequestBody::Buffered { .. })
    }

    /// The whole body, when it was read whole.
    pub(crate) fn buffered(&self) -> Option<&Bytes> {
        match self {
            RequestBody::Buffered { bytes, .. } => Some(bytes),
            RequestBody::Streamed(_) => None,
        }
    }

    /// The body for the next attempt (`None` once a streamed body is gone),
    /// and for a streamed one, what says when it has all been sent.
    pub(crate) fn take(&mut self) -> Option<(UpstreamBody, Option<oneshot::Receiver<()>>)> {
        match self {
            RequestBody::Buffered { bytes, .. } => {
                Some((Either::Left(Full::new(bytes.clone())), None))
            }
            RequestBody::Streamed(body) => {
                let (sent, sent_signal) = oneshot::channel();
                let mut body = body.take()?;
                body.sent = Some(sent);
                Some((Either::Right(body), Some(sent_signal)))
            }
        }
    }

    /// A body an attempt did not send after all (no connection).
    pub(crate) fn put_back(&mut self, unsent: UpstreamBody) {
        if let (RequestBody::Streamed(slot), Either::Right(streamed)) = (self, unsent) {
            *slot = Some(streamed);
        }
    }
}

/// A client's body passed through as it arrives (after what was read of
/// it before it was found slow); says when it has ended. A client that
/// sends nothing for the body timeout has its body, and so its request,
/// cut short.
pub(crate) struct StreamedBody {
    prefix: Option<Bytes>,
    body: Incoming,
    between_reads: Duration,
    /// Armed while the client is waited for.
    wait: Option<Pin<Box<Sleep>>>,
    sent: Option<oneshot::Sender<()>>,
}

impl Body for StreamedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Some(prefix) = this.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Pending => {
                let between_reads = this.between_reads;
                let wait = this
                    .wait
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(between_reads)));
                if wait.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Err(body_timed_out(this.between_reads).into())));
                }
                return Poll::Pending;
            }
            Poll::Ready(_) => this.wait = None,
        }
        if (matches!(polled, Poll::Ready(None)) || this.body.is_end_stream())
            && let Some(sent) = this.sent.take()
        {
            let _ = sent.send(());
        }
        polled.map(|frame| frame.map(|f| f.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let prefix = self.prefix.as_ref().map_or(0, |p| p.len() as u64);
        let rest = self.body.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + prefix);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + prefix);
        }
        hint
    }
}

fn body_timed_out(between_reads: Duration) -> ProxyError {
    ProxyError::new(
        Side::ClientTimeout,
        false,
        format!("the client sent no more of the request body within {between_reads:?}"),
    )
}
