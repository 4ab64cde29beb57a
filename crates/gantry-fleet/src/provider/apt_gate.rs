//! The APT gate: what a host's remote forward reaches on this side. apt
//! on a host uses the forward as its HTTP proxy, so the gate reads proxy
//! requests (`GET http://gantry-server/apt/… HTTP/1.1`) and relays only
//! reads of the published APT trees (`GET` or `HEAD` of `/apt/…`) to the
//! server's listener; every other request (the API, the UI, webhooks) is
//! refused with 403 and never reaches the server. A host's user, who can
//! open the forward's port while an install runs, reaches nothing but
//! what any apt mirror shows.
//!
//! Bounded as every listener of the server: at most `MAX_CONNECTIONS`
//! served at once (past that a connection waits in the backlog), each
//! request's header read within `HEADER_TIMEOUT`. It listens on this
//! machine's loopback only.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use crate::error::FleetError;

/// Hosts installing at once, a few connections each.
const MAX_CONNECTIONS: usize = 32;
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

type Body = BoxBody<Bytes, hyper::Error>;

/// Starts the gate on an ephemeral port of 127.0.0.1, relaying to
/// `server`; it serves for the life of the process. Returns its address.
pub async fn start(server: SocketAddr) -> Result<SocketAddr, FleetError> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(FleetError::io("listening for the APT gate"))?;
    let address = listener
        .local_addr()
        .map_err(FleetError::io("the APT gate's address"))?;
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "the APT gate cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            tokio::spawn(async move {
                let _slot = slot;
                let service = hyper::service::service_fn(move |request| relay(request, server));
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(address)
}

/// Why a request may not pass, or `None` when it may.
pub fn refusal(method: &Method, path: &str) -> Option<&'static str> {
    if method != Method::GET && method != Method::HEAD {
        return Some("only GET and HEAD of the APT trees pass the fleet's APT gate");
    }
    let Some(rest) = path.strip_prefix("/apt/") else {
        return Some("only /apt/… passes the fleet's APT gate");
    };
    let decoded = rest.to_ascii_lowercase();
    if rest
        .split('/')
        .any(|segment| segment == ".." || segment == ".")
        || decoded.contains("%2e")
        || decoded.contains("%2f")
        || rest.contains('\\')
    {
        return Some("a path leaving the APT trees does not pass the fleet's APT gate");
    }
    None
}

async fn relay(
    request: Request<Incoming>,
    server: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().to_owned();
    if let Some(reason) = refusal(request.method(), &path) {
        tracing::info!(method = %request.method(), %path, "the fleet's APT gate refused a request");
        return Ok(text(StatusCode::FORBIDDEN, reason));
    }
    let origin_form = request
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |p| p.as_str().to_owned());
    let (mut parts, _) = request.into_parts();
    let Ok(uri) = origin_form.parse() else {
        return Ok(text(StatusCode::BAD_REQUEST, "a path that cannot be read"));
    };
    parts.uri = uri;
    // Only what a mirror's client needs goes on: no credentials, no
    // proxy headers.
    let keep = [
        hyper::header::ACCEPT,
        hyper::header::RANGE,
        hyper::header::IF_MODIFIED_SINCE,
        hyper::header::IF_RANGE,
        hyper::header::USER_AGENT,
    ];
    let mut headers = hyper::HeaderMap::new();
    for name in keep {
        if let Some(value) = parts.headers.get(&name) {
            headers.insert(name, value.clone());
        }
    }
    if let Ok(host) = server.to_string().parse() {
        headers.insert(hyper::header::HOST, host);
    }
    parts.headers = headers;
    let forwarded = Request::from_parts(parts, http_body_util::Empty::<Bytes>::new());
    let bad_gateway = |error: &dyn std::fmt::Display| {
        text(StatusCode::BAD_GATEWAY, &format!("gantry server: {error}"))
    };
    let stream = match TcpStream::connect(server).await {
        Ok(stream) => stream,
        Err(error) => return Ok(bad_gateway(&error)),
    };
    let (mut sender, connection) =
        match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(error) => return Ok(bad_gateway(&error)),
        };
    tokio::spawn(connection);
    match sender.send_request(forwarded).await {
        Ok(response) => Ok(response.map(BodyExt::boxed)),
        Err(error) => Ok(bad_gateway(&error)),
    }
}

fn text(status: StatusCode, message: &str) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::from(format!("{message}\n")))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use hyper::Method;

    fn check(method: Method, path: &str, passes: bool) {
        assert_eq!(
            super::refusal(&method, path).is_none(),
            passes,
            "{method} {path}"
        );
    }

    #[test]
    fn only_reads_of_the_apt_trees_pass() {
        check(Method::GET, "/apt/dists/stable/Release", true);
        check(
            Method::HEAD,
            "/apt/team/pool/main/s/shop/shop_1.0_all.deb",
            true,
        );
        check(Method::GET, "/api/v1/pipelines", false);
        check(Method::GET, "/", false);
        check(Method::GET, "/aptx/dists", false);
        check(Method::POST, "/apt/dists/stable/Release", false);
        check(Method::GET, "/apt/../api/v1/secrets", false);
        check(Method::GET, "/apt/%2e%2e/api/v1/secrets", false);
        check(Method::GET, "/apt/dists%2F..%2Fx", false);
    }
}
