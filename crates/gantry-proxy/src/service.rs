//! Forwarding one request: pick an instance, send, and on a connection
//! failure (nothing was sent) eject it and try another. An idempotent
//! request whose instance failed after it was sent but before any response
//! header arrived (the instance died or reset the connection) is sent once
//! more to another instance, as nginx's `proxy_next_upstream error` does.
//! How a request body travels (read whole, or streamed and never resent) is
//! `request_body`'s business.
//! An instance that sends no response header within the listener's response
//! timeout gets a 504 answered for it, and the request is not sent again.
//!
//! Most requests (body read whole, no protocol switch) are exchanged with
//! the instance by their own task on a pooled keep-alive connection
//! (`upstream_http1`); a protocol switch or a streamed body goes through
//! hyper's client connection instead, on a connection of its own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http;
use hyper::http::uri::PathAndQuery;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;

use crate::discovery::{ListenerConfig, RouteRule, RoutingTable, Upstream};
use crate::error::{ProxyError, Side};
use crate::request_body::RequestBody;
use crate::selection;
use crate::upstream_http1::{self, OutgoingRequest};
use crate::upstream_pool;

/// Most instances tried for one request.
const MAX_ATTEMPTS: usize = 3;
/// Most times one request is sent again after an instance failed with the
/// request already written to it.
const MAX_RESENDS: usize = 1;

/// Headers that belong to one connection, never forwarded.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// What the requests of one client connection route by; shared by them
/// while the proxy's table and rules stay the same (`Proxy::context`).
pub(crate) struct Ctx {
    pub table: Arc<RoutingTable>,
    pub listener: Arc<ListenerConfig>,
    /// The client's IP address as a header value, made once per connection.
    pub client_ip: HeaderValue,
    /// The memory request bodies read whole share.
    pub body_budget: crate::body_budget::BodyBudget,
    /// The proxy's generation of table and rules these are.
    pub generation: u64,
}

pub(crate) async fn handle(req: Request<Incoming>, ctx: Arc<Ctx>) -> Response<Body> {
    match forward(req, &ctx).await {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(listener = %ctx.listener.name, %error, "request failed");
            error_response(&error)
        }
    }
}

fn error_response(error: &ProxyError) -> Response<Body> {
    let body = match error.side {
        // Not a fault of anyone's: the deploy state says there is nothing.
        Side::Unavailable => format!("gantry: {}\n", error.message),
        _ => format!("gantry: {} error: {}\n", error.side_name(), error.message),
    };
    let mut response = Response::new(full(Bytes::from(body)));
    *response.status_mut() = error.status();
    response.headers_mut().insert(
        HeaderName::from_static("x-gantry-error"),
        HeaderValue::from_static(error.side_name()),
    );
    response
}

fn full(bytes: Bytes) -> Body {
    Body::Full(Some(bytes))
}

async fn forward(mut req: Request<Incoming>, ctx: &Ctx) -> Result<Response<Body>, ProxyError> {
    let upgrade = req.headers().contains_key(header::UPGRADE);
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    let rule = route(&parts, ctx)?;
    let groups = ctx
        .table
        .clusters
        .get(&rule.cluster)
        .map(Vec::as_slice)
        .unwrap_or_default();

    let mut body =
        RequestBody::read(body, &ctx.body_budget, ctx.listener.client_timeouts.body()).await?;
    prepare_headers(&mut parts.headers, &ctx.client_ip, upgrade);
    // Instances are sent the origin form (`/path?query`), whatever form the
    // client used.
    let origin_form = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let path = origin_form.as_str();

    // A protocol switch is a conversation with one instance, not a request
    // to send again.
    let resendable =
        is_idempotent(&parts.method) && client_upgrade.is_none() && body.can_be_sent_again();
    let mut last_failure: Option<String> = None;
    let mut resent = 0;
    let mut tried: Vec<Arc<Upstream>> = Vec::new();
    loop {
        let Some((group, upstream)) = selection::pick(groups, &ctx.table.cursor, &tried) else {
            return Err(match tried.last() {
                Some(_) if last_failure.is_some() => ProxyError::new(
                    Side::Upstream,
                    false,
                    format!(
                        "{}, and no other instance of cluster {:?} is healthy",
                        last_failure.unwrap_or_default(),
                        rule.cluster
                    ),
                ),
                Some(last) => ProxyError::new(
                    Side::Upstream,
                    false,
                    format!(
                        "cannot connect to any instance of cluster {:?} (last: {})",
                        rule.cluster, last.id
                    ),
                ),
                None => ProxyError::new(
                    Side::Unavailable,
                    false,
                    crate::error::nothing_to_route_to(&rule.cluster, groups),
                ),
            });
        };
        // Selection counted the request in flight on its instance; the guard
        // takes it off on every way out, including the client going away
        // while the instance is still answering (which drops this future).
        // A response body that is on its way keeps it until sent: draining
        // waits for it.
        let in_flight = InFlight(upstream.clone());
        // A request with its whole body at hand, and no protocol switch, is
        // exchanged by this task itself; the others go through hyper's
        // client connection.
        let direct_body = body.buffered().filter(|_| client_upgrade.is_none());
        let started = Instant::now();
        let result = match direct_body {
            Some(buffered) => {
                let request = OutgoingRequest {
                    method: &parts.method,
                    path,
                    headers: &parts.headers,
                    body: buffered,
                };
                within_response_timeout(
                    ctx.listener.response_timeout(),
                    None,
                    upstream_http1::exchange(upstream.addr, &request),
                )
                .await
                .map(|exchanged| match exchanged {
                    Ok(response) => Ok(Exchanged::Direct(response)),
                    Err(upstream_http1::ExchangeError::NotSent(error)) => {
                        Err((SendError::NotSent(error), None))
                    }
                    Err(upstream_http1::ExchangeError::AfterSent(error)) => {
                        Err((SendError::AfterSent(error), None))
                    }
                    Err(upstream_http1::ExchangeError::Malformed(error)) => {
                        Err((SendError::Malformed(error), None))
                    }
                })
            }
            None => {
                let Some((outgoing_body, sent)) = body.take() else {
                    return Err(ProxyError::new(
                        Side::Upstream,
                        false,
                        last_failure
                            .unwrap_or_else(|| "the request body was already sent".to_owned()),
                    ));
                };
                let mut outgoing = Request::new(outgoing_body);
                *outgoing.method_mut() = parts.method.clone();
                *outgoing.uri_mut() = Uri::from(origin_form.clone());
                *outgoing.headers_mut() = parts.headers.clone();
                within_response_timeout(
                    ctx.listener.response_timeout(),
                    sent,
                    send_via_hyper(upstream.addr, outgoing),
                )
                .await
            }
        };
        let latency = started.elapsed();
        match result {
            Ok(Ok(Exchanged::Direct(response))) => {
                group
                    .stats
                    .record(latency, response.status().is_server_error());
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                let body = Body::Direct {
                    body,
                    _in_flight: in_flight,
                };
                return Ok(Response::from_parts(parts, body));
            }
            Ok(Ok(Exchanged::Hyper(mut response, connection))) => {
                group
                    .stats
                    .record(latency, response.status().is_server_error());
                if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                    if let Some(client_upgrade) = client_upgrade {
                        let upstream_upgrade = hyper::upgrade::on(&mut response);
                        tokio::spawn(tunnel(client_upgrade, upstream_upgrade, in_flight));
                    }
                    let (parts, _) = response.into_parts();
                    return Ok(Response::from_parts(parts, full(Bytes::new())));
                }
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                let body = Body::Hyper {
                    body,
                    _connection: connection,
                    _in_flight: in_flight,
                };
                return Ok(Response::from_parts(parts, body));
            }
            Ok(Err((SendError::Malformed(error), _))) => {
                // The instance did answer: the request is not sent again.
                group.stats.record(latency, true);
                return Err(ProxyError::new(
                    Side::Upstream,
                    false,
                    format!(
                        "instance {} sent a malformed response: {error}",
                        upstream.id
                    ),
                ));
            }
            Ok(Err((SendError::NotSent(error), unsent))) => {
                if let Some(unsent) = unsent {
                    body.put_back(unsent.into_body());
                }
                // Nothing was sent: safe to try another instance.
                upstream.health.eject();
                group.stats.record_connect_error();
                tracing::info!(upstream = %upstream.id, %error, "connect failed, instance ejected");
                tried.push(upstream);
                if tried.len() < MAX_ATTEMPTS {
                    continue;
                }
                return Err(ProxyError::new(
                    Side::Upstream,
                    true,
                    format!("cannot connect to cluster {:?}: {error}", rule.cluster),
                ));
            }
            Ok(Err((SendError::ClientBody(error), _))) => {
                // A stalled upload answers 408 (nginx's
                // `client_body_timeout`), not a fault of the instance.
                return Err(error);
            }
            Ok(Err((SendError::AfterSent(error), _))) => {
                group.stats.record(latency, true);
                // No response header arrived, so the client has seen nothing
                // yet. The instance may have acted on the request: only an
                // idempotent one can be sent to another instance. The
                // instance is not ejected here: a keep-alive connection the
                // instance closed at the wrong moment looks the same, and a
                // dead instance is ejected by its next refused connect.
                let failure = format!(
                    "instance {} failed after the request was sent: {error}",
                    upstream.id
                );
                if resendable && resent < MAX_RESENDS {
                    resent += 1;
                    last_failure = Some(failure);
                    tracing::info!(upstream = %upstream.id, %error, "instance failed before answering, resending");
                    tried.push(upstream);
                    continue;
                }
                return Err(ProxyError::new(Side::Upstream, false, failure));
            }
            Err(ResponseTimedOut) => {
                // The instance holds the request and may still act on it:
                // never sent elsewhere. Its connection is dropped with the
                // send future, which closes it.
                group.stats.record(latency, true);
                return Err(ProxyError::new(
                    Side::Timeout,
                    false,
                    format!(
                        "instance {} sent no response header within {:?}",
                        upstream.id,
                        ctx.listener.response_timeout()
                    ),
                ));
            }
        }
    }
}

/// The rule of the listener that takes this request.
fn route<'c>(parts: &http::request::Parts, ctx: &'c Ctx) -> Result<&'c RouteRule, ProxyError> {
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.split(':').next().unwrap_or(h));
    let path = parts.uri.path();
    ctx.listener
        .rules
        .iter()
        .find(|rule| rule.matches(host, path))
        .ok_or_else(|| {
            ProxyError::new(
                Side::Client,
                false,
                format!(
                    "no rule of load balancer {:?} matches {path}",
                    ctx.listener.name
                ),
            )
        })
}

/// Runs `send` until it has a response, or until the instance has had the
/// whole request for `timeout` without answering. A streamed body may take
/// its client long to upload: the clock starts once it has all been sent.
async fn within_response_timeout<T>(
    timeout: std::time::Duration,
    body_sent: Option<tokio::sync::oneshot::Receiver<()>>,
    send: impl Future<Output = T>,
) -> Result<T, ResponseTimedOut> {
    let deadline = async {
        if let Some(sent) = body_sent {
            // An error: the body ended early, and so will the send.
            let _ = sent.await;
        }
        tokio::time::sleep(timeout).await;
    };
    tokio::select! {
        result = send => Ok(result),
        () = deadline => Err(ResponseTimedOut),
    }
}

struct ResponseTimedOut;

/// Why a request got no response from an instance.
enum SendError {
    /// The instance could not be reached; it has not seen the request.
    NotSent(String),
    /// The request was handed to a connection that then failed.
    AfterSent(String),
    /// The instance answered something that is not HTTP/1.
    Malformed(String),
    /// The client's streamed body failed (it stalled past the body timeout,
    /// or broke off): the client's fault, not the instance's.
    ClientBody(ProxyError),
}

/// A response head from an instance, and how its body comes.
enum Exchanged {
    /// Read by this task from a pooled connection (`upstream_http1`).
    Direct(Response<upstream_http1::ResponseBody>),
    /// From hyper's client connection, kept until the body is read.
    Hyper(Response<Incoming>, upstream_pool::Sender),
}

type UpstreamRequest = Request<crate::request_body::UpstreamBody>;

/// Sends a request that switches protocols or streams its body through
/// hyper's client, on a new connection of its own. Returns the response and
/// the connection; or the error, with the request if it was not sent (boxed:
/// it is large, and the error is rare).
async fn send_via_hyper(
    addr: SocketAddr,
    request: UpstreamRequest,
) -> Result<Exchanged, (SendError, Option<Box<UpstreamRequest>>)> {
    let mut connection = match upstream_pool::connect_hyper(addr).await {
        Ok(connection) => connection,
        Err(error) => {
            return Err((
                SendError::NotSent(error.to_string()),
                Some(Box::new(request)),
            ));
        }
    };
    if let Err(error) = connection.ready().await {
        return Err((
            SendError::NotSent(error.to_string()),
            Some(Box::new(request)),
        ));
    }
    match connection.try_send_request(request).await {
        Ok(response) => Ok(Exchanged::Hyper(response, connection)),
        Err(mut error) => match error.take_message() {
            Some(unsent) => {
                let message = error.into_error().to_string();
                Err((SendError::NotSent(message), Some(Box::new(unsent))))
            }
            None => {
                let error = error.into_error();
                match crate::error::client_body_failure(&error) {
                    Some(client) => Err((SendError::ClientBody(client), None)),
                    None => Err((SendError::AfterSent(error.to_string()), None)),
                }
            }
        },
    }
}

/// What a client is sent as a response body. Until dropped, a body from an
/// instance counts its request in flight there.
pub(crate) enum Body {
    /// Made by the proxy (errors, the answer to a protocol switch).
    Full(Option<Bytes>),
    Direct {
        body: upstream_http1::ResponseBody,
        _in_flight: InFlight,
    },
    Hyper {
        body: Incoming,
        /// hyper's connection lives while its response is read.
        _connection: upstream_pool::Sender,
        _in_flight: InFlight,
    },
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        use std::pin::Pin;
        use std::task::Poll;
        match self.get_mut() {
            Body::Full(bytes) => Poll::Ready(
                bytes
                    .take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
            Body::Direct { body, .. } => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|f| f.map_err(Into::into))),
            Body::Hyper { body, .. } => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|f| f.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
            Body::Direct { body, .. } => body.is_end_stream(),
            Body::Hyper { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Direct { body, .. } => body.size_hint(),
            Body::Hyper { body, .. } => body.size_hint(),
        }
    }
}

/// Methods RFC 9110 (section 9.2.2) defines as idempotent: sending one twice
/// has the effect of sending it once. nginx's `proxy_next_upstream` retries
/// the same set; POST, PATCH and unknown methods never are, with or without
/// a body, since the instance may already have acted on them.
fn is_idempotent(method: &hyper::Method) -> bool {
    use hyper::Method;
    [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::PUT,
        Method::DELETE,
    ]
    .contains(method)
}

/// Turns the client's headers into the instance's: hop-by-hop headers out
/// (the upgrade ones back in for a protocol switch), `X-Forwarded-*` in.
fn prepare_headers(headers: &mut HeaderMap, client_ip: &HeaderValue, upgrade: bool) {
    let upgrade_value = upgrade
        .then(|| headers.get(header::UPGRADE).cloned())
        .flatten();
    strip_hop_by_hop(headers);
    if let Some(value) = upgrade_value {
        headers.insert(header::UPGRADE, value);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    let forwarded_for = match headers.get(X_FORWARDED_FOR).map(HeaderValue::as_bytes) {
        Some(previous) => {
            let mut value = Vec::with_capacity(previous.len() + 2 + client_ip.len());
            value.extend_from_slice(previous);
            value.extend_from_slice(b", ");
            value.extend_from_slice(client_ip.as_bytes());
            HeaderValue::from_bytes(&value).unwrap_or_else(|_| client_ip.clone())
        }
        None => client_ip.clone(),
    };
    headers.insert(X_FORWARDED_FOR, forwarded_for);
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    if let Some(host) = headers.get(header::HOST).cloned() {
        headers.insert(X_FORWARDED_HOST, host);
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none of them: one pass over the names (known
    // names compare as tags) is cheaper than nine hashed removals.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    // Headers named by `Connection` are hop-by-hop too. The usual tokens
    // (`keep-alive`, `close`, `upgrade`) name nothing else to remove, so the
    // list is only built for the rare others.
    let mut named: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(header::CONNECTION) {
        let Ok(value) = value.to_str() else { continue };
        for token in value.split(',').map(str::trim) {
            let usual = token.eq_ignore_ascii_case("close")
                || HOP_BY_HOP
                    .iter()
                    .any(|h| token.eq_ignore_ascii_case(h.as_str()));
            if !usual && let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                named.push(name);
            }
        }
    }
    for name in HOP_BY_HOP.iter().chain(&named) {
        headers.remove(name);
    }
}

/// Copies bytes both ways between the client and the instance after a
/// protocol switch (WebSocket).
async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    _in_flight: InFlight,
) {
    let (Ok(client), Ok(upstream)) = (client.await, upstream.await) else {
        return;
    };
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// Counts a request in flight on its instance until dropped.
pub(crate) struct InFlight(Arc<Upstream>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.sub(1, Ordering::SeqCst);
    }
}
