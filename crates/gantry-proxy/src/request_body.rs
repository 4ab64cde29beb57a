//! A request's body on its way to an instance. Up to
//! [`BUFFERED_BODY_LIMIT`] bytes are read whole first, so that a resend
//! carries exactly the same bytes; a larger body (or one of unknown length)
//! is streamed to the instance as it arrives, which keeps the proxy's memory
//! bounded whatever clients upload, and such a request is never sent twice.
//! (nginx buffers up to its `client_body_buffer_size` and spills the rest
//! to disk; streaming needs neither.)

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::sync::oneshot;

use crate::error::{ProxyError, Side};

/// The largest request body read whole before it is sent.
pub(crate) const BUFFERED_BODY_LIMIT: u64 = 1 << 20;

/// A request body as an upstream connection carries it.
pub(crate) type UpstreamBody = Either<Full<Bytes>, StreamedBody>;

/// A request's body, as it can be sent to an instance (again).
pub(crate) enum RequestBody {
    /// Read whole: every attempt sends a copy.
    Buffered(Bytes),
    /// Streamed from the client: there until an attempt takes it.
    Streamed(Option<Incoming>),
}

impl RequestBody {
    pub(crate) async fn read(body: Incoming) -> Result<RequestBody, ProxyError> {
        if body.is_end_stream() {
            return Ok(RequestBody::Buffered(Bytes::new()));
        }
        match body.size_hint().exact() {
            Some(length) if length <= BUFFERED_BODY_LIMIT => {
                let bytes = body.collect().await.map_err(|e| {
                    ProxyError::new(
                        Side::Client,
                        false,
                        format!("reading the request body: {e}"),
                    )
                })?;
                Ok(RequestBody::Buffered(bytes.to_bytes()))
            }
            _ => Ok(RequestBody::Streamed(Some(body))),
        }
    }

    pub(crate) fn can_be_sent_again(&self) -> bool {
        matches!(self, RequestBody::Buffered(_))
    }

    /// The whole body, when it was read whole.
    pub(crate) fn buffered(&self) -> Option<&Bytes> {
        match self {
            RequestBody::Buffered(bytes) => Some(bytes),
            RequestBody::Streamed(_) => None,
        }
    }

    /// The body for the next attempt (`None` once a streamed body is gone),
    /// and for a streamed one, what says when it has all been sent.
    pub(crate) fn take(&mut self) -> Option<(UpstreamBody, Option<oneshot::Receiver<()>>)> {
        match self {
            RequestBody::Buffered(bytes) => Some((Either::Left(Full::new(bytes.clone())), None)),
            RequestBody::Streamed(body) => {
                let (sent, sent_signal) = oneshot::channel();
                let body = StreamedBody {
                    body: body.take()?,
                    sent: Some(sent),
                };
                Some((Either::Right(body), Some(sent_signal)))
            }
        }
    }

    /// A body an attempt did not send after all (no connection).
    pub(crate) fn put_back(&mut self, unsent: UpstreamBody) {
        if let (RequestBody::Streamed(slot), Either::Right(streamed)) = (self, unsent) {
            *slot = Some(streamed.body);
        }
    }
}

/// A client's body passed through as it arrives; says when it has ended.
pub(crate) struct StreamedBody {
    body: Incoming,
    sent: Option<oneshot::Sender<()>>,
}

impl Body for StreamedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if (matches!(polled, Poll::Ready(None)) || self.body.is_end_stream())
            && let Some(sent) = self.sent.take()
        {
            let _ = sent.send(());
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
