//! `/apt/…`: the published APT trees, public like any apt mirror (apt
//! clients send no token). `dists/` files are files on disk, served by
//! `ServeDir`; a `pool/` path is looked up in the publication's pool map
//! and answered from the package's span of its pack (`gantry-apt`'s
//! `published_pool.rs`), with the same conditional and range handling a
//! file server gives: `Last-Modified`/`If-Modified-Since`, `ETag`/
//! `If-None-Match`, one `Range` (206, or 416 past the end), `HEAD`.

use std::io::SeekFrom;
use std::ops::RangeInclusive;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gantry_apt::{Apt, PublishedPackage};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tower::ServiceExt;
use tower_http::services::ServeDir;

/// The router to nest at `/apt`.
pub fn router(apt: Apt) -> Router {
    let files = ServeDir::new(apt.public_dir());
    Router::new()
        .fallback(serve)
        .with_state(AptFiles { apt, files })
}

#[derive(Clone)]
struct AptFiles {
    apt: Apt,
    files: ServeDir,
}

async fn serve(State(state): State<AptFiles>, request: Request) -> Response {
    // apt sends some characters of file names encoded (`+` as `%2b`).
    let Ok(path) = percent_encoding::percent_decode_str(request.uri().path()).decode_utf8() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let path = path.into_owned();
    // Hidden names (`.gantry-dists`, `.pool-map`) are the server's own.
    if path.split('/').any(|segment| segment.starts_with('.')) {
        return StatusCode::NOT_FOUND.into_response();
    }
    if path.split('/').any(|segment| segment == "pool") {
        match state.apt.published_package(&path).await {
            Ok(Some(package)) => {
                return package_response(request.method(), request.headers(), package).await;
            }
            Ok(None) => {}
            Err(error) => {
                tracing::error!(%path, %error, "cannot read a published package");
                return (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response();
            }
        }
    }
    match state.files.oneshot(request).await {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    }
}

async fn package_response(
    method: &Method,
    headers: &HeaderMap,
    package: PublishedPackage,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
        )
            .into_response();
    }
    let size = package.bytes.size;
    let etag = format!("\"{}\"", package.sha256);
    let last_modified = httpdate::fmt_http_date(package.recorded_at);
    let mut response = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::LAST_MODIFIED, &last_modified)
        .header(header::ACCEPT_RANGES, "bytes");
    if not_modified(headers, &etag, package.recorded_at) {
        return response
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .expect("a valid response");
    }
    let range = match wanted_range(headers, size, &etag, &last_modified) {
        Ok(range) => range,
        Err(()) => {
            return response
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                .body(Body::empty())
                .expect("a valid response");
        }
    };
    let (status, start, length) = match range {
        Some(range) => {
            response = response.header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", range.start(), range.end()),
            );
            let length = range.end() + 1 - range.start();
            (StatusCode::PARTIAL_CONTENT, *range.start(), length)
        }
        None => (StatusCode::OK, 0, size),
    };
    response = response
        .status(status)
        .header(
            header::CONTENT_TYPE,
            "application/vnd.debian.binary-package",
        )
        .header(header::CONTENT_LENGTH, length);
    if method == Method::HEAD || length == 0 {
        return response.body(Body::empty()).expect("a valid response");
    }
    let mut file = tokio::fs::File::from_std(package.bytes.file);
    let from = package.bytes.offset + start;
    if let Err(error) = file.seek(SeekFrom::Start(from)).await {
        tracing::error!(path = %package.bytes.path.display(), %error, "cannot read a pack");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file.take(length)));
    response.body(body).expect("a valid response")
}

/// `If-None-Match` wins over `If-Modified-Since`, as RFC 9110 says.
fn not_modified(headers: &HeaderMap, etag: &str, recorded_at: std::time::SystemTime) -> bool {
    if let Some(tags) = headers.get(header::IF_NONE_MATCH) {
        let tags = tags.to_str().unwrap_or_default();
        return tags
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag);
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|since| httpdate::parse_http_date(since.to_str().ok()?).ok())
        .is_some_and(|since| {
            // HTTP dates have whole seconds.
            let seconds = |at: std::time::SystemTime| {
                at.duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            };
            seconds(recorded_at) <= seconds(since)
        })
}

/// The one byte range asked for, `None` for the whole file (no `Range`,
/// several ranges, a syntax we do not read, or an `If-Range` that no longer
/// matches); `Err` if it starts past the end.
fn wanted_range(
    headers: &HeaderMap,
    size: u64,
    etag: &str,
    last_modified: &str,
) -> Result<Option<RangeInclusive<u64>>, ()> {
    let Some(range) = headers.get(header::RANGE).and_then(|r| r.to_str().ok()) else {
        return Ok(None);
    };
    if let Some(condition) = headers.get(header::IF_RANGE)
        && !matches!(condition.to_str(), Ok(c) if c == etag || c == last_modified)
    {
        return Ok(None);
    }
    let Ok(parsed) = http_range_header::parse_range_header(range) else {
        return Ok(None);
    };
    match parsed.validate(size) {
        Ok(ranges) if ranges.len() == 1 => Ok(ranges.into_iter().next()),
        Ok(_) => Ok(None),
        Err(_) => Err(()),
    }
}
