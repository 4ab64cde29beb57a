//! Smart HTTP: `git http-backend` run as a CGI program for each request. Both bodies stream
//! through (a push of a large pack never sits in memory), and after a push the refs it changed
//! are reported, as written by the repository's `post-receive` hook.

use std::path::PathBuf;
use std::process::Stdio;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::oneshot;
use tokio_util::io::{ReaderStream, StreamReader};

use crate::command::{self, GitError};

/// Which side of git's protocol a request speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// Clone and fetch.
    UploadPack,
    /// Push.
    ReceivePack,
}

impl Service {
    /// From the path below the repository (`info/refs`, `git-receive-pack`, …) and the query.
    pub fn of(path_in_repo: &str, query: Option<&str>) -> Service {
        let wants_receive = path_in_repo == "git-receive-pack"
            || (path_in_repo == "info/refs"
                && query.is_some_and(|q| q.split('&').any(|p| p == "service=git-receive-pack")));
        if wants_receive {
            Service::ReceivePack
        } else {
            Service::UploadPack
        }
    }
}

/// One ref a push changed; a zero sha on one side means created or deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefUpdate {
    pub old: String,
    pub new: String,
    /// The full name: `refs/heads/main`, `refs/tags/v1.0.0`.
    pub name: String,
}

impl RefUpdate {
    pub fn is_delete(&self) -> bool {
        self.new.bytes().all(|b| b == b'0')
    }

    pub fn is_create(&self) -> bool {
        self.old.bytes().all(|b| b == b'0')
    }

    pub fn branch(&self) -> Option<&str> {
        self.name.strip_prefix("refs/heads/")
    }

    pub fn tag(&self) -> Option<&str> {
        self.name.strip_prefix("refs/tags/")
    }

    /// Reads the `OLD NEW REF` lines git gives a `post-receive` hook.
    pub fn parse_lines(text: &str) -> Vec<RefUpdate> {
        text.lines()
            .filter_map(|line| {
                let mut parts = line.split_whitespace();
                Some(RefUpdate {
                    old: parts.next()?.to_owned(),
                    new: parts.next()?.to_owned(),
                    name: parts.next()?.to_owned(),
                })
            })
            .collect()
    }
}

/// What the CGI program needs from the HTTP request.
pub struct CgiRequest<B> {
    /// The directory of hosted repositories (`GIT_PROJECT_ROOT`).
    pub project_root: PathBuf,
    /// `/NAME.git/info/refs` and so on: the path below the project root.
    pub path_info: String,
    pub method: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// Who pushed (the token's name), for the hook and the trigger context.
    pub remote_user: Option<String>,
    pub remote_addr: Option<String>,
    pub body: B,
}

pub struct CgiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: futures::stream::BoxStream<'static, std::io::Result<Bytes>>,
    /// Resolves, once git has finished, to the refs a push changed (empty for a fetch or a
    /// push that changed nothing).
    pub updates: oneshot::Receiver<Vec<RefUpdate>>,
}

/// Runs `git http-backend` for one request.
pub async fn serve_cgi<B, E>(request: CgiRequest<B>) -> Result<CgiResponse, GitError>
where
    B: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::fmt::Display,
{
    let push_log = request
        .project_root
        .join(format!(".push-{}", uuid::Uuid::now_v7()));
    let mut cgi = command::git(None);
    cgi.arg("http-backend")
        .env("GIT_PROJECT_ROOT", &request.project_root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", &request.path_info)
        .env("REQUEST_METHOD", &request.method)
        .env("QUERY_STRING", request.query.as_deref().unwrap_or(""))
        .env("GANTRY_PUSH_LOG", &push_log)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if let Some(value) = header("content-type") {
        cgi.env("CONTENT_TYPE", value);
    }
    if let Some(value) = header("content-length") {
        cgi.env("CONTENT_LENGTH", value);
    }
    if let Some(value) = header("content-encoding") {
        cgi.env("HTTP_CONTENT_ENCODING", value);
    }
    // Protocol v2 is asked for with this header; git reads it from GIT_PROTOCOL.
    if let Some(value) = header("git-protocol") {
        cgi.env("GIT_PROTOCOL", value);
    }
    if let Some(user) = &request.remote_user {
        cgi.env("REMOTE_USER", user);
    }
    if let Some(addr) = &request.remote_addr {
        cgi.env("REMOTE_ADDR", addr);
    }
    let mut child = cgi.spawn().map_err(GitError::Spawn)?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");

    let body = request
        .body
        .map_err(|e| std::io::Error::other(e.to_string()));
    tokio::spawn(async move {
        let mut reader = StreamReader::new(body);
        // A client that goes away mid-request ends the copy; git then sees a short body.
        let _ = tokio::io::copy(&mut reader, &mut stdin).await;
        let _ = stdin.shutdown().await;
    });

    let (report, updates) = oneshot::channel();
    let path_info = request.path_info.clone();
    tokio::spawn(async move {
        let mut errors = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut errors).await;
        let status = child.wait().await;
        if !errors.trim().is_empty() {
            tracing::warn!(path = %path_info, stderr = %errors.trim(), "git http-backend");
        }
        if let Ok(status) = status
            && !status.success()
        {
            tracing::debug!(path = %path_info, %status, "git http-backend failed");
        }
        let lines = tokio::fs::read_to_string(&push_log)
            .await
            .unwrap_or_default();
        let _ = tokio::fs::remove_file(&push_log).await;
        let _ = report.send(RefUpdate::parse_lines(&lines));
    });

    let mut reader = BufReader::new(stdout);
    let (status, headers) = read_cgi_headers(&mut reader).await?;
    Ok(CgiResponse {
        status,
        headers,
        body: ReaderStream::new(reader).boxed(),
        updates,
    })
}

/// Reads the CGI header block (`Status: 404 Not Found`, `Content-Type: …`, blank line).
async fn read_cgi_headers<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
) -> Result<(StatusCode, HeaderMap), GitError> {
    let mut status = StatusCode::OK;
    let mut headers = HeaderMap::new();
    let mut line = String::new();
    for _ in 0..100 {
        line.clear();
        let read = reader.read_line(&mut line).await.map_err(GitError::Spawn)?;
        let text = line.trim_end_matches(['\r', '\n']);
        if read == 0 || text.is_empty() {
            return Ok((status, headers));
        }
        let Some((name, value)) = text.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("500");
            status = code
                .parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        } else if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    Err(GitError::Invalid(
        "git http-backend sent more than 100 header lines".to_owned(),
    ))
}
