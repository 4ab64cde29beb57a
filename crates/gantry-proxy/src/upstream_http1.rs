//! One HTTP/1.1 exchange with an instance, driven by the request's own task:
//! the request head and its buffered body are written to a pooled socket,
//! the response head is parsed with `httparse`, and the response body is
//! read from the socket as the client's connection asks for it.
//!
//! Why not hyper's client connection: it runs each upstream connection as
//! a task of its own, so every request crossed a channel to that task and
//! its response came back through another, with a wake-up each way. Here
//! the exchange is plain reads and writes in the task that serves the
//! client, as in an nginx worker. hyper's client connection is still used
//! for what it does best and is rare: protocol switches and streamed
//! request bodies (see `service`).
//!
//! Response framing follows RFC 9112, section 6.3: no body for HEAD, 1xx,
//! 204 and 304; chunked when `Transfer-Encoding` ends in `chunked`; else
//! `Content-Length`; else until the instance closes. A connection goes back
//! to the pool when its body ended cleanly, the instance did not ask to
//! close it, and it sent nothing past the response.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Frame, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::response;
use hyper::{Method, Response, StatusCode, Version};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::upstream_pool;

/// Most header fields read from one response (hyper's limit too).
const MAX_HEADERS: usize = 100;
/// Longest response head, or chunk-size or trailer line, accepted.
const MAX_HEAD_BYTES: usize = 64 << 10;
/// Room made in the read buffer before each read.
const READ_SIZE: usize = 16 << 10;
/// Bodies up to this size are copied behind the head and go out in one
/// write; larger ones are written after it.
const COPIED_BODY_LIMIT: usize = 16 << 10;

/// A keep-alive connection to an instance, between or during exchanges.
pub(crate) struct Connection {
    stream: TcpStream,
    /// Bytes read from the instance and not consumed yet.
    read: BytesMut,
    /// The outgoing request head; kept to reuse its allocation.
    write: Vec<u8>,
}

/// The request as the instance is sent it.
pub(crate) struct OutgoingRequest<'a> {
    pub method: &'a Method,
    /// Origin form: `/path?query`.
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a Bytes,
}

/// Why an exchange gave no response.
#[derive(Debug)]
pub(crate) enum ExchangeError {
    /// No connection could be had; the instance has not seen the request.
    NotSent(String),
    /// The connection failed after (part of) the request was written and
    /// before a whole response head arrived.
    AfterSent(String),
    /// The instance answered something that is not an HTTP/1 response.
    Malformed(String),
}

/// Sends `request` to `addr` on a pooled keep-alive connection, or a new
/// one, and reads the response head. A pooled connection that fails before
/// taking any byte of the request (the instance closed it) is dropped and
/// the next tried.
pub(crate) async fn exchange(
    addr: SocketAddr,
    request: &OutgoingRequest<'_>,
) -> Result<Response<ResponseBody>, ExchangeError> {
    loop {
        let (mut connection, pooled) = match upstream_pool::checkout(addr) {
            Some(connection) => (connection, true),
            None => match upstream_pool::connect(addr).await {
                Ok(connection) => (connection, false),
                Err(error) => return Err(ExchangeError::NotSent(error.to_string())),
            },
        };
        match connection.write_request(request).await {
            Ok(()) => {}
            Err(WriteError::NothingWritten(_)) if pooled => continue,
            Err(WriteError::NothingWritten(error)) => {
                return Err(ExchangeError::NotSent(format!(
                    "writing the request: {error}"
                )));
            }
            Err(WriteError::Partly(error)) => {
                return Err(ExchangeError::AfterSent(format!(
                    "writing the request: {error}"
                )));
            }
        }
        let is_head = *request.method == Method::HEAD;
        let (parts, framing, keep_alive) = connection.read_head(is_head).await?;
        let body = ResponseBody::new(connection, addr, framing, keep_alive);
        return Ok(Response::from_parts(parts, body));
    }
}

/// Reads one response from `stream`, an instance's side of a connection
/// that was sent a request (a HEAD request when `is_head`), as `exchange`
/// does, body and all; returns its status. The way in of the fuzz target
/// `fuzz/fuzz_targets/upstream_http1.rs`; not part of the API.
#[doc(hidden)]
pub async fn read_response(
    stream: TcpStream,
    addr: SocketAddr,
    is_head: bool,
) -> Result<u16, String> {
    let mut connection = Connection::new(stream);
    let (parts, framing, keep_alive) = connection
        .read_head(is_head)
        .await
        .map_err(|error| format!("{error:?}"))?;
    let mut body = ResponseBody::new(connection, addr, framing, keep_alive);
    while let Some(frame) =
        std::future::poll_fn(|cx| hyper::body::Body::poll_frame(Pin::new(&mut body), cx)).await
    {
        frame.map_err(|error| error.to_string())?;
    }
    Ok(parts.status.as_u16())
}

enum WriteError {
    /// The connection took no byte of the request.
    NothingWritten(io::Error),
    Partly(io::Error),
}

impl Connection {
    pub(crate) fn new(stream: TcpStream) -> Connection {
        Connection {
            stream,
            read: BytesMut::with_capacity(READ_SIZE),
            write: Vec::with_capacity(1024),
        }
    }

    /// False once the instance closed the connection, reset it or sent
    /// something nobody asked for. Costs no system call while the runtime
    /// has seen nothing arrive on the socket.
    pub(crate) fn is_open(&self) -> bool {
        if !self.read.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    async fn write_request(&mut self, request: &OutgoingRequest<'_>) -> Result<(), WriteError> {
        let head = &mut self.write;
        head.clear();
        head.extend_from_slice(request.method.as_str().as_bytes());
        head.push(b' ');
        head.extend_from_slice(request.path.as_bytes());
        head.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in request.headers {
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        // The client's Content-Length, checked by the server side, says
        // how long the buffered body is; without one, say it here.
        if !request.body.is_empty() && !request.headers.contains_key(header::CONTENT_LENGTH) {
            head.extend_from_slice(b"content-length: ");
            head.extend_from_slice(request.body.len().to_string().as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        let body_after = if request.body.len() <= COPIED_BODY_LIMIT {
            head.extend_from_slice(request.body);
            None
        } else {
            Some(request.body)
        };
        let written = self
            .stream
            .write(&self.write)
            .await
            .map_err(WriteError::NothingWritten)?;
        if written == 0 {
            return Err(WriteError::NothingWritten(io::ErrorKind::WriteZero.into()));
        }
        self.stream
            .write_all(&self.write[written..])
            .await
            .map_err(WriteError::Partly)?;
        if let Some(body) = body_after {
            self.stream
                .write_all(body)
                .await
                .map_err(WriteError::Partly)?;
        }
        Ok(())
    }

    /// Reads until a final (non-1xx) response head has arrived; returns it
    /// with the framing of its body and whether the connection may be kept.
    async fn read_head(
        &mut self,
        is_head: bool,
    ) -> Result<(response::Parts, Framing, bool), ExchangeError> {
        loop {
            if !self.read.is_empty()
                && let Some(head) = self.parse_head(is_head)?
            {
                return Ok(head);
            }
            let read = std::future::poll_fn(|cx| self.poll_fill(cx)).await;
            match read {
                Ok(0) if self.read.is_empty() => {
                    return Err(ExchangeError::AfterSent(
                        "the instance closed the connection without answering".to_owned(),
                    ));
                }
                Ok(0) => {
                    return Err(ExchangeError::Malformed(
                        "the connection closed within the response header".to_owned(),
                    ));
                }
                Ok(_) => {}
                Err(error) => {
                    return Err(ExchangeError::AfterSent(format!(
                        "reading the response: {error}"
                    )));
                }
            }
        }
    }

    /// The response head at the start of the read buffer, once it is all
    /// there. Informational (1xx) responses are skipped.
    fn parse_head(
        &mut self,
        is_head: bool,
    ) -> Result<Option<(response::Parts, Framing, bool)>, ExchangeError> {
        let malformed = |what: String| Err(ExchangeError::Malformed(what));
        // Header name and value positions in the read buffer, so that the
        // values can share it once the head is split off.
        let mut positions = [(0usize, 0usize, 0usize, 0usize); MAX_HEADERS];
        let (length, code, version, count) = {
            let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut parsed = httparse::Response::new(&mut slots);
            let length = match parsed.parse(&self.read) {
                Ok(httparse::Status::Complete(length)) => length,
                Ok(httparse::Status::Partial) if self.read.len() > MAX_HEAD_BYTES => {
                    return malformed(format!(
                        "the response header is larger than {MAX_HEAD_BYTES} bytes"
                    ));
                }
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(error) => return malformed(format!("invalid response header: {error}")),
            };
            let base = self.read.as_ptr() as usize;
            for (position, field) in positions.iter_mut().zip(parsed.headers.iter()) {
                let name = field.name.as_ptr() as usize - base;
                let value = field.value.as_ptr() as usize - base;
                *position = (
                    name,
                    name + field.name.len(),
                    value,
                    value + field.value.len(),
                );
            }
            let code = parsed.code.unwrap_or_default();
            (length, code, parsed.version, parsed.headers.len())
        };
        let Ok(status) = StatusCode::from_u16(code) else {
            return malformed(format!("invalid status code {code}"));
        };
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return malformed("a protocol switch nobody asked for".to_owned());
        }
        if status.is_informational() {
            self.read.advance(length);
            return Ok(None);
        }
        let head = self.read.split_to(length).freeze();
        let mut headers = HeaderMap::with_capacity(count);
        for &(name_start, name_end, value_start, value_end) in &positions[..count] {
            let Ok(name) = HeaderName::from_bytes(&head[name_start..name_end]) else {
                return malformed(format!(
                    "invalid header name {:?}",
                    String::from_utf8_lossy(&head[name_start..name_end])
                ));
            };
            let Ok(value) = HeaderValue::from_maybe_shared(head.slice(value_start..value_end))
            else {
                return malformed(format!("invalid value of header {name}"));
            };
            headers.append(name, value);
        }
        let version = if version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        let (framing, keep_alive) = framing(status, version, &headers, is_head)?;
        let (mut parts, ()) = Response::new(()).into_parts();
        parts.status = status;
        parts.version = version;
        parts.headers = headers;
        Ok(Some((parts, framing, keep_alive)))
    }

    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.read.capacity() - self.read.len() < READ_SIZE / 4 {
            self.read.reserve(READ_SIZE);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.read)
    }
}

/// How the response body is delimited, and whether the connection may carry
/// another request afterwards.
fn framing(
    status: StatusCode,
    version: Version,
    headers: &HeaderMap,
    is_head: bool,
) -> Result<(Framing, bool), ExchangeError> {
    let mut keep_alive = version == Version::HTTP_11;
    for value in headers.get_all(header::CONNECTION) {
        for token in value.to_str().unwrap_or_default().split(',') {
            let token = token.trim();
            if token.eq_ignore_ascii_case("close") {
                keep_alive = false;
            } else if token.eq_ignore_ascii_case("keep-alive") && version == Version::HTTP_10 {
                keep_alive = true;
            }
        }
    }
    if is_head || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok((Framing::Length(0), keep_alive));
    }
    if let Some(last) = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .next_back()
    {
        let chunked = last
            .to_str()
            .unwrap_or_default()
            .rsplit(',')
            .next()
            .is_some_and(|coding| coding.trim().eq_ignore_ascii_case("chunked"));
        // With both headers the length is not to be trusted, nor the
        // connection after it (RFC 9112, section 6.3).
        if headers.contains_key(header::CONTENT_LENGTH) {
            keep_alive = false;
        }
        return Ok(if chunked {
            (Framing::Chunked(Chunk::Size), keep_alive)
        } else {
            (Framing::UntilClose, false)
        });
    }
    let mut length: Option<u64> = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for item in value.to_str().unwrap_or("?").split(',') {
            let item = item.trim();
            let parsed = (!item.is_empty() && item.bytes().all(|b| b.is_ascii_digit()))
                .then(|| item.parse::<u64>().ok())
                .flatten();
            match (parsed, length) {
                (None, _) => {
                    return Err(ExchangeError::Malformed(format!(
                        "invalid Content-Length {:?}",
                        String::from_utf8_lossy(value.as_bytes())
                    )));
                }
                (Some(new), Some(old)) if new != old => {
                    return Err(ExchangeError::Malformed(format!(
                        "conflicting Content-Length values {old} and {new}"
                    )));
                }
                (Some(new), _) => length = Some(new),
            }
        }
    }
    Ok(match length {
        Some(length) => (Framing::Length(length), keep_alive),
        None => (Framing::UntilClose, false),
    })
}

/// Where the response body ends.
enum Framing {
    /// This many bytes are still to come.
    Length(u64),
    Chunked(Chunk),
    /// Everything until the instance closes the connection.
    UntilClose,
    /// The body has ended.
    Done,
}

/// Where a chunked body's reading stands.
enum Chunk {
    /// A chunk-size line is next.
    Size,
    /// This many bytes of chunk data are still to come.
    Data(u64),
    /// The line end after a chunk's data is next.
    DataEnd,
    /// Trailer lines, up to an empty one, are next (and dropped).
    Trailers,
}

/// A response body read from its instance's connection as the client's
/// connection asks for it. Ended cleanly, the connection goes back to this
/// worker's pool at once; dropped before that, it is closed.
pub(crate) struct ResponseBody {
    connection: Option<Connection>,
    addr: SocketAddr,
    framing: Framing,
    keep_alive: bool,
}

/// A response body that broke off: the client's connection is closed
/// without the rest of it.
#[derive(Debug, thiserror::Error)]
#[error("instance {addr}: {message}")]
pub(crate) struct BodyError {
    addr: SocketAddr,
    message: String,
}

impl ResponseBody {
    fn new(
        connection: Connection,
        addr: SocketAddr,
        framing: Framing,
        keep_alive: bool,
    ) -> ResponseBody {
        let mut body = ResponseBody {
            connection: Some(connection),
            addr,
            framing,
            keep_alive,
        };
        if matches!(body.framing, Framing::Length(0)) {
            body.finish();
        }
        body
    }

    /// The body has ended: its connection goes back to the pool if it can
    /// carry another exchange.
    fn finish(&mut self) {
        self.framing = Framing::Done;
        if let Some(connection) = self.connection.take()
            && self.keep_alive
            && connection.read.is_empty()
        {
            upstream_pool::checkin(self.addr, connection);
        }
    }

    fn error(
        &mut self,
        message: impl Into<String>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.framing = Framing::Done;
        self.connection = None;
        Poll::Ready(Some(Err(BodyError {
            addr: self.addr,
            message: message.into(),
        })))
    }
}

impl hyper::body::Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            let Some(connection) = this.connection.as_mut() else {
                return Poll::Ready(None);
            };
            let buffered = connection.read.len();
            // Take what the buffer holds of the body, or read more.
            match &mut this.framing {
                Framing::Done => return Poll::Ready(None),
                Framing::Length(left) | Framing::Chunked(Chunk::Data(left)) if buffered > 0 => {
                    let take = buffered.min(usize::try_from(*left).unwrap_or(usize::MAX));
                    let data = connection.read.split_to(take).freeze();
                    *left -= take as u64;
                    if *left == 0 {
                        match this.framing {
                            Framing::Length(_) => this.finish(),
                            _ => this.framing = Framing::Chunked(Chunk::DataEnd),
                        }
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Framing::UntilClose if buffered > 0 => {
                    let data = connection.read.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Framing::Chunked(Chunk::Size) if buffered > 0 => {
                    match httparse::parse_chunk_size(&connection.read) {
                        Ok(httparse::Status::Complete((used, size))) => {
                            connection.read.advance(used);
                            this.framing = Framing::Chunked(if size == 0 {
                                Chunk::Trailers
                            } else {
                                Chunk::Data(size)
                            });
                            continue;
                        }
                        Ok(httparse::Status::Partial) if buffered <= MAX_HEAD_BYTES => {}
                        _ => return this.error("invalid chunk size line"),
                    }
                }
                Framing::Chunked(Chunk::DataEnd) if buffered >= 2 => {
                    if &connection.read[..2] != b"\r\n" {
                        return this.error("chunk data longer than its size");
                    }
                    connection.read.advance(2);
                    this.framing = Framing::Chunked(Chunk::Size);
                    continue;
                }
                Framing::Chunked(Chunk::Trailers) if buffered >= 2 => {
                    match connection.read.windows(2).position(|w| w == b"\r\n") {
                        Some(0) => {
                            connection.read.advance(2);
                            this.finish();
                            return Poll::Ready(None);
                        }
                        Some(end) => {
                            connection.read.advance(end + 2);
                            continue;
                        }
                        None if buffered <= MAX_HEAD_BYTES => {}
                        None => return this.error("trailer line too long"),
                    }
                }
                _ => {}
            }
            match ready!(connection.poll_fill(cx)) {
                Ok(0) => {
                    if matches!(this.framing, Framing::UntilClose) {
                        this.framing = Framing::Done;
                        this.connection = None;
                        return Poll::Ready(None);
                    }
                    return this.error("the instance closed the connection before the body ended");
                }
                Ok(_) => {}
                Err(error) => return this.error(format!("reading the body: {error}")),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.framing, Framing::Done | Framing::Length(0))
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Length(left) => SizeHint::with_exact(left),
            Framing::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}
