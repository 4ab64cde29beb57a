//! APT repositories, snapshots, publications and signing keys, shaped like
//! aptly's REST API. Package files are uploaded as the raw request body.
//! A prefix in a path is aptly-encoded: `_` stands for `/`, `__` for `_`,
//! and `.` (or `:.`) is the default prefix.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use gantry_apt::{Apt, AptError};
use gantry_wire::Dropped;
use gantry_wire::apt::{
    AddAnswer, CleanupBody, CleanupReport, CopyBody, CreateRepo, CreateSnapshot, CreatedSnapshot,
    Diff, KeyBody, KeyList, PackageList, PackagesQuery, Publication, PublicationList, PublishBody,
    Removed, Repo, RepoList, RepoWithPackages, Snapshot, SnapshotList, UpdatePublication,
};
use serde::Deserialize;

use crate::AppState;
use crate::apt_service::AptService;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, PathParams, QueryParams};

type JsonResult<T> = ApiResult<axum::Json<T>>;

fn apt(state: &AppState) -> Result<AptService<'_>, ApiError> {
    state
        .apt()
        .map(AptService::new)
        .ok_or_else(|| ApiError::internal("this server has no APT repositories"))
}

impl From<AptError> for ApiError {
    fn from(error: AptError) -> ApiError {
        let message = error.to_string();
        match error {
            AptError::NotFound { .. } => ApiError::not_found(message),
            AptError::Conflict(_) => ApiError::conflict(message),
            AptError::Invalid(_) | AptError::Package(_) => ApiError::invalid(message),
            _ => ApiError::internal(message),
        }
    }
}

fn decode_prefix(raw: &str) -> String {
    let raw = raw.strip_prefix(':').unwrap_or(raw);
    raw.replace("__", "\u{0}")
        .replace('_', "/")
        .replace('\u{0}', "_")
}

// --- Repositories ---------------------------------------------------------

pub async fn create_repo(
    State(state): State<AppState>,
    Json(body): Json<CreateRepo>,
) -> ApiResult<(StatusCode, axum::Json<Repo>)> {
    let repo = apt(&state)?.create_repo(&body).await?;
    Ok((StatusCode::CREATED, axum::Json(repo)))
}

pub async fn list_repos(State(state): State<AppState>) -> JsonResult<RepoList> {
    Ok(axum::Json(apt(&state)?.repos().await?))
}

pub async fn show_repo(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> JsonResult<RepoWithPackages> {
    Ok(axum::Json(apt(&state)?.repo(&name).await?))
}

pub async fn drop_repo(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> JsonResult<Dropped> {
    Ok(axum::Json(apt(&state)?.drop_repo(&name).await?))
}

pub async fn list_packages(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    QueryParams(query): QueryParams<PackagesQuery>,
) -> JsonResult<PackageList> {
    Ok(axum::Json(
        apt(&state)?
            .repo_packages(&name, query.q.as_deref())
            .await?,
    ))
}

/// The body is one `.deb`, or (`Content-Type: application/x-tar`) a tar
/// of several, added all or none. Neither is held whole in memory: a tar is
/// read as it arrives, a single file is written to disk first (`Upload`)
/// and checked from there. Either is refused with 413 past the server's
/// upload limit. The answer is serialized as it is, not through a `Value`:
/// an add of 10,000 packages answers with 10,000 of them.
pub async fn add_package(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    QueryParams(query): QueryParams<PackagesQuery>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> JsonResult<AddAnswer> {
    let service = apt(&state)?;
    let apt = service.apt();
    let is_tar = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-tar"));
    let limit = state.body_limits().upload_limit;
    if let Some(length) = content_length(&headers)
        && length > limit
    {
        return Err(too_large(limit));
    }
    let report = if is_tar {
        let (reader, over_limit) = BodyReader::new(body, limit);
        let added = apt.add_tar(&name, reader, query.force_replace).await;
        if over_limit.load(std::sync::atomic::Ordering::Acquire) {
            return Err(too_large(limit));
        }
        added?
    } else {
        let upload = receive(apt, body, limit).await?;
        let file = query.filename.unwrap_or_else(|| "upload.deb".to_owned());
        apt.add_upload(&name, file, upload, query.force_replace)
            .await?
    };
    Ok(axum::Json(
        service.add_answer(&name, report, query.update).await?,
    ))
}

fn content_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(axum::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn too_large(limit: u64) -> ApiError {
    ApiError::invalid(format!(
        "upload: the body is larger than the server's upload limit of {limit} bytes"
    ))
    .with_status(StatusCode::PAYLOAD_TOO_LARGE)
}

/// Writes the body to a new upload file, stopping at `limit` bytes.
async fn receive(
    apt: &Apt,
    body: axum::body::Body,
    limit: u64,
) -> Result<gantry_apt::Upload, ApiError> {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let upload = apt.new_upload()?;
    let file = upload.writer()?;
    let written_to = |e: std::io::Error| {
        ApiError::internal(format!(
            "upload: cannot write {}: {e}",
            upload.path().display()
        ))
    };
    let mut file = tokio::fs::File::from_std(file);
    let mut stream = body.into_data_stream();
    let mut received: u64 = 0;
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|e| ApiError::invalid(format!("upload: {e}")))?;
        received += piece.len() as u64;
        if received > limit {
            return Err(too_large(limit));
        }
        file.write_all(&piece).await.map_err(written_to)?;
    }
    file.flush().await.map_err(written_to)?;
    drop(file);
    Ok(upload)
}

/// A request body as a blocking reader, for the package intake's thread:
/// pieces come from a task that reads the body, at most two ahead. Past
/// `limit` bytes the reader fails, and the flag it returns says why.
struct BodyReader {
    pieces: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
    current: Bytes,
}

impl BodyReader {
    fn new(
        body: axum::body::Body,
        limit: u64,
    ) -> (BodyReader, std::sync::Arc<std::sync::atomic::AtomicBool>) {
        use futures::StreamExt;
        let over_limit = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = over_limit.clone();
        let (sender, pieces) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            let mut stream = body.into_data_stream();
            let mut received: u64 = 0;
            while let Some(piece) = stream.next().await {
                let piece = piece.map_err(std::io::Error::other).and_then(|piece| {
                    received += piece.len() as u64;
                    if received > limit {
                        flag.store(true, std::sync::atomic::Ordering::Release);
                        return Err(std::io::Error::other(format!(
                            "the body is larger than the server's upload limit of {limit} bytes"
                        )));
                    }
                    Ok(piece)
                });
                let failed = piece.is_err();
                if sender.send(piece).await.is_err() || failed {
                    break;
                }
            }
        });
        (
            BodyReader {
                pieces,
                current: Bytes::new(),
            },
            over_limit,
        )
    }
}

impl std::io::Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.pieces.blocking_recv() {
                Some(piece) => self.current = piece?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

pub async fn remove_packages(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    QueryParams(query): QueryParams<PackagesQuery>,
) -> JsonResult<Removed> {
    let Some(q) = query.q else {
        return Err(ApiError::invalid("removing packages needs a query (q=…)"));
    };
    Ok(axum::Json(apt(&state)?.remove(&name, &q).await?))
}

pub async fn copy_packages(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    Json(body): Json<CopyBody>,
) -> JsonResult<PackageList> {
    Ok(axum::Json(apt(&state)?.copy(&name, &body).await?))
}

// --- Snapshots --------------------------------------------------------------

pub async fn create_snapshot(
    State(state): State<AppState>,
    Json(body): Json<CreateSnapshot>,
) -> ApiResult<(StatusCode, axum::Json<CreatedSnapshot>)> {
    let created = apt(&state)?.create_snapshot(&body).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

pub async fn list_snapshots(State(state): State<AppState>) -> JsonResult<SnapshotList> {
    Ok(axum::Json(apt(&state)?.snapshots().await?))
}

pub async fn show_snapshot(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> JsonResult<Snapshot> {
    Ok(axum::Json(apt(&state)?.snapshot(&name).await?))
}

pub async fn drop_snapshot(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> JsonResult<Dropped> {
    Ok(axum::Json(apt(&state)?.drop_snapshot(&name).await?))
}

pub async fn diff_snapshots(
    State(state): State<AppState>,
    PathParams((left, right)): PathParams<(String, String)>,
) -> JsonResult<Diff> {
    Ok(axum::Json(apt(&state)?.diff(&left, &right).await?))
}

// --- Publications -----------------------------------------------------------

pub async fn publish(
    State(state): State<AppState>,
    Json(body): Json<PublishBody>,
) -> ApiResult<(StatusCode, axum::Json<Publication>)> {
    let publication = apt(&state)?.publish(body).await?;
    Ok((StatusCode::CREATED, axum::Json(publication)))
}

pub async fn list_publications(State(state): State<AppState>) -> JsonResult<PublicationList> {
    Ok(axum::Json(apt(&state)?.publications().await?))
}

pub async fn update_publication(
    State(state): State<AppState>,
    PathParams((prefix, distribution)): PathParams<(String, String)>,
    Json(body): Json<UpdatePublication>,
) -> JsonResult<Publication> {
    let prefix = decode_prefix(&prefix);
    Ok(axum::Json(
        apt(&state)?
            .republish(Some(&prefix), &distribution, &body)
            .await?,
    ))
}

pub async fn drop_publication(
    State(state): State<AppState>,
    PathParams((prefix, distribution)): PathParams<(String, String)>,
) -> JsonResult<Dropped> {
    let prefix = decode_prefix(&prefix);
    Ok(axum::Json(
        apt(&state)?
            .drop_publication(Some(&prefix), &distribution)
            .await?,
    ))
}

// --- Database -----------------------------------------------------------------

/// aptly's `db cleanup`: forgets the packages nothing refers to and frees
/// their bytes; answers what went (or would go).
pub async fn db_cleanup(
    State(state): State<AppState>,
    Json(body): Json<CleanupBody>,
) -> JsonResult<CleanupReport> {
    Ok(axum::Json(apt(&state)?.cleanup(&body).await?))
}

// --- Keys -------------------------------------------------------------------

pub async fn create_key(
    State(state): State<AppState>,
    Json(body): Json<KeyBody>,
) -> ApiResult<(StatusCode, axum::Json<KeyList>)> {
    let keys = apt(&state)?.create_key(body).await?;
    Ok((StatusCode::CREATED, axum::Json(keys)))
}

pub async fn list_keys(State(state): State<AppState>) -> JsonResult<KeyList> {
    Ok(axum::Json(apt(&state)?.keys().await?))
}

#[derive(Debug, Default, Deserialize)]
pub struct KeyQuery {
    id: Option<String>,
}

pub async fn public_key(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<KeyQuery>,
) -> ApiResult<String> {
    Ok(apt(&state)?.public_key(query.id).await?)
}
