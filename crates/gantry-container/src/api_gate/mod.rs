//! The Docker API gate: a Unix socket a build's docker CLI talks to instead of the host's
//! engine (podman's Docker-compatible API, `podman system service`). Each request is
//! checked against `rules` before it is forwarded, so a step holding the socket can build,
//! tag, push and pull images, and nothing else: the engine runs as root, and its raw socket
//! would hand a step the machine.
//!
//! One connection to the engine per request (the CLI makes few); bodies stream both ways
//! (a build's context up, its progress down) and are never held whole. Bounded: at most
//! `MAX_CONNECTIONS` served at once, each header read within `HEADER_TIMEOUT`. Only the
//! stage's container steps reach the socket (it lies in the run directory they mount, and
//! is the server's user's alone, so host steps running as the step user cannot open it).

mod engine_api;
mod rules;

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

pub use engine_api::engine_api_socket;
pub use rules::{Allowed, Refusal, decide, labelled_build_query};

/// The local image `gantry builders build` makes for Cloud Build's docker builder: Debian
/// with the docker CLI, whose steps reach the engine through the gate.
pub const DOCKER_BUILDER_IMAGE: &str = "localhost/gantry-builder-docker:latest";
/// The local image `gantry builders build` makes for Cloud Build's git builder.
pub const GIT_BUILDER_IMAGE: &str = "localhost/gantry-builder-git:latest";
/// The local image `gantry builders build` makes for the plain-shell builders (`bash`,
/// `ubuntu`, `debian`).
pub const SHELL_BUILDER_IMAGE: &str = "localhost/gantry-builder-shell:latest";
/// The gate's socket in the stage's run directory (`/gantry` in every container step, so
/// a docker builder step finds it at `unix:///gantry/docker.sock`).
pub const GATE_SOCKET_NAME: &str = "docker.sock";

type Body = BoxBody<Bytes, hyper::Error>;

/// Connections served at once: a build's CLI opens a few; past this, a new one waits in
/// the socket's backlog, so a step cannot make the server hold a task per connection.
const MAX_CONNECTIONS: usize = 32;
/// How long a request's header may take: a client that opens a connection and says
/// nothing is cut off (a build's context and progress stream, untimed, after it).
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// How much of a refused request's body the gate reads before it answers, and for how
/// long (see [`drain`]).
const REFUSED_BODY_LIMIT: usize = 1024 * 1024;
const REFUSED_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A gate listening on its socket until stopped (or dropped).
pub struct ApiGate {
    socket: PathBuf,
    stop: CancellationToken,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot open the Docker API gate at {path}: {source}")]
pub struct GateError {
    path: String,
    source: std::io::Error,
}

impl ApiGate {
    /// Listens on `socket` (replaced if it exists; mode 0700, so only the server's user,
    /// root in the containers of a rootful engine, can connect) and forwards what the rules
    /// allow to the engine's API at `engine`.
    pub fn start(socket: &Path, engine: &Path) -> Result<ApiGate, GateError> {
        let error = |source| GateError {
            path: socket.display().to_string(),
            source,
        };
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket).map_err(error)?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o700))
                .map_err(error)?;
        }
        let stop = CancellationToken::new();
        let engine = Arc::new(engine.to_owned());
        let stopped = stop.clone();
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        tokio::spawn(async move {
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let stream = tokio::select! {
                    () = stopped.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(error) => {
                            tracing::warn!(%error, "the Docker API gate cannot accept");
                            continue;
                        }
                    },
                };
                let engine = engine.clone();
                let stopped = stopped.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let service =
                        hyper::service::service_fn(move |request| forward(request, engine.clone()));
                    let connection = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(HEADER_TIMEOUT)
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        () = stopped.cancelled() => {}
                        _ = connection => {}
                    }
                });
            }
        });
        Ok(ApiGate {
            socket: socket.to_owned(),
            stop,
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for ApiGate {
    fn drop(&mut self) {
        self.stop.cancel();
        let _ = std::fs::remove_file(&self.socket);
    }
}

async fn forward(
    request: Request<Incoming>,
    engine: Arc<PathBuf>,
) -> Result<Response<Body>, Infallible> {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let allowed = match rules::decide(&method, &path, request.uri().query()) {
        Ok(allowed) => allowed,
        Err(refusal) => {
            tracing::info!(%method, %path, "the Docker API gate refused a call");
            drain(request.into_body()).await;
            return Ok(message(StatusCode::FORBIDDEN, &refusal.to_string()));
        }
    };
    let (mut parts, body) = request.into_parts();
    if allowed == Allowed::Build {
        let query = rules::labelled_build_query(parts.uri.query());
        match format!("{path}?{query}").parse() {
            Ok(uri) => parts.uri = uri,
            Err(_) => {
                return Ok(message(
                    StatusCode::BAD_REQUEST,
                    "gantry: a build query that cannot be read",
                ));
            }
        }
    }
    let request = Request::from_parts(parts, body);
    let stream = match UnixStream::connect(&*engine).await {
        Ok(stream) => stream,
        Err(error) => {
            return Ok(message(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "gantry: the container engine's API at {} does not answer: {error}",
                    engine.display()
                ),
            ));
        }
    };
    let (mut sender, connection) =
        match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(error) => {
                return Ok(message(
                    StatusCode::BAD_GATEWAY,
                    &format!("gantry: the container engine's API: {error}"),
                ));
            }
        };
    tokio::spawn(connection);
    match sender.send_request(request).await {
        Ok(response) => Ok(response.map(BodyExt::boxed)),
        Err(error) => Ok(message(
            StatusCode::BAD_GATEWAY,
            &format!("gantry: the container engine's API: {error}"),
        )),
    }
}

/// Reads a refused request's body before the refusal is sent. The docker CLI writes its
/// body (a container's JSON) after the header; an answer and a close while it still writes
/// end on its side in EPIPE, "broken pipe", and the reason is lost. Bounded in bytes and
/// time: a larger or slower body is left unread, and the connection closes.
async fn drain(mut body: Incoming) {
    let read = async {
        let mut seen = 0;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, Bytes::len);
            if seen > REFUSED_BODY_LIMIT {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(REFUSED_BODY_TIMEOUT, read).await;
}

/// An answer the docker CLI shows as an error: `{"message": …}`.
fn message(status: StatusCode, text: &str) -> Response<Body> {
    let body = serde_json::json!({ "message": text }).to_string();
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests;
