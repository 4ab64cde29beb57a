//! Forwarding one request: pick an instance, send, and on a connection
//! failure (nothing was sent) eject it and try another. An idempotent
//! request whose instance failed after it was sent but before any response
//! header arrived (the instance died or reset the connection) is sent once
//! more to another instance, as nginx's `proxy_next_upstream error` does.
//! Bodies are read whole first so that a retry sends exactly the same request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;

use crate::discovery::{ListenerConfig, RoutingTable, Upstream};
use crate::error::{ProxyError, Side};
use crate::selection;

pub(crate) type Body = BoxBody<Bytes, hyper::Error>;
pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Most instances tried for one request.
const MAX_ATTEMPTS: usize = 3;
/// Most times one request is sent again after an instance failed with the
/// request already written to it.
const MAX_RESENDS: usize = 1;

/// Headers that belong to one connection, never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

pub(crate) struct Ctx {
    pub table: Arc<RoutingTable>,
    pub listener: Arc<ListenerConfig>,
    pub client: HttpClient,
    pub peer: SocketAddr,
}

pub(crate) async fn handle(req: Request<Incoming>, ctx: Ctx) -> Response<Body> {
    match forward(req, &ctx).await {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(listener = %ctx.listener.name, %error, "request failed");
            error_response(&error)
        }
    }
}

fn error_response(error: &ProxyError) -> Response<Body> {
    let body = format!("gantry: {} error: {}\n", error.side_name(), error.message);
    let mut response = Response::new(full(Bytes::from(body)));
    *response.status_mut() = error.status();
    response.headers_mut().insert(
        HeaderName::from_static("x-gantry-error"),
        HeaderValue::from_static(error.side_name()),
    );
    response
}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

async fn forward(mut req: Request<Incoming>, ctx: &Ctx) -> Result<Response<Body>, ProxyError> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let host_name = host.as_deref().map(|h| h.split(':').next().unwrap_or(h));
    let path = req.uri().path().to_owned();
    let rule = ctx
        .listener
        .rules
        .iter()
        .find(|rule| rule.matches(host_name, &path))
        .ok_or_else(|| {
            ProxyError::new(
                Side::Client,
                false,
                format!(
                    "no rule of load balancer {:?} matches {path}",
                    ctx.listener.name
                ),
            )
        })?;
    let groups = ctx
        .table
        .clusters
        .get(&rule.cluster)
        .map(Vec::as_slice)
        .unwrap_or_default();

    let upgrade = req.headers().contains_key(header::UPGRADE);
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| {
            ProxyError::new(
                Side::Client,
                false,
                format!("reading the request body: {e}"),
            )
        })?
        .to_bytes();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let headers = forwarded_headers(&parts.headers, host.as_deref(), ctx.peer, upgrade);

    // A protocol switch is a conversation with one instance, not a request
    // to send again.
    let resendable = is_idempotent(&parts.method) && client_upgrade.is_none();
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
                    Side::Internal,
                    false,
                    format!("cluster {:?} has no healthy instance", rule.cluster),
                ),
            });
        };
        let uri: Uri = format!("http://{}{}", upstream.addr, path_and_query)
            .parse()
            .map_err(|e| ProxyError::new(Side::Client, false, format!("bad request uri: {e}")))?;
        let mut outgoing = Request::builder()
            .method(parts.method.clone())
            .uri(uri)
            .version(hyper::Version::HTTP_11)
            .body(Full::new(body.clone()))
            .map_err(|e| ProxyError::new(Side::Internal, false, e.to_string()))?;
        *outgoing.headers_mut() = headers.clone();
        let started = Instant::now();
        let result = ctx.client.request(outgoing).await;
        let latency = started.elapsed();
        match result {
            Ok(mut response) => {
                // The request stays in flight until its body has been sent
                // to the client (or the tunnel closed): draining waits for it.
                let guard = InFlight(upstream.clone());
                group
                    .stats
                    .record(latency, response.status().is_server_error());
                if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                    if let Some(client_upgrade) = client_upgrade {
                        let upstream_upgrade = hyper::upgrade::on(&mut response);
                        tokio::spawn(tunnel(client_upgrade, upstream_upgrade, guard));
                    }
                    let (parts, _) = response.into_parts();
                    return Ok(Response::from_parts(parts, full(Bytes::new())));
                }
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                let body = body.map_frame(move |frame| {
                    let _in_flight = &guard;
                    frame
                });
                return Ok(Response::from_parts(parts, body.boxed()));
            }
            Err(error) => {
                upstream.in_flight.fetch_sub(1, Ordering::SeqCst);
                if error.is_connect() {
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
                group.stats.record(latency, true);
                // No response header arrived (the request future only
                // resolves with one), so the client has seen nothing yet.
                // The instance may have acted on the request: only an
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

fn forwarded_headers(
    incoming: &HeaderMap,
    host: Option<&str>,
    peer: SocketAddr,
    upgrade: bool,
) -> HeaderMap {
    let mut headers = incoming.clone();
    let upgrade_value = headers.get(header::UPGRADE).cloned();
    strip_hop_by_hop(&mut headers);
    if let (true, Some(value)) = (upgrade, upgrade_value) {
        headers.insert(header::UPGRADE, value);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    let client_ip = peer.ip().to_string();
    let forwarded_for = match incoming
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(previous) => format!("{previous}, {client_ip}"),
        None => client_ip,
    };
    if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
        headers.insert(HeaderName::from_static("x-forwarded-for"), value);
    }
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static("http"),
    );
    if let Some(value) = host.and_then(|h| HeaderValue::from_str(h).ok()) {
        headers.insert(HeaderName::from_static("x-forwarded-host"), value);
    }
    headers
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named by `Connection` are hop-by-hop too.
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
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
struct InFlight(Arc<Upstream>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}
