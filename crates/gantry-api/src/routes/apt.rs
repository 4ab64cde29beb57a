//! APT repositories, snapshots, publications and signing keys, shaped like
//! aptly's REST API. Package files are uploaded as the raw request body.
//! A prefix in a path is aptly-encoded: `_` stands for `/`, `__` for `_`,
//! and `.` (or `:.`) is the default prefix.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use gantry_apt::{Apt, AptError, CleanupOptions, PublicationSpec, Source, SourceKind};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, PathParams, QueryParams};

type JsonResult = ApiResult<axum::Json<Value>>;

fn apt(state: &AppState) -> Result<&Apt, ApiError> {
    state
        .engine()
        .apt()
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateRepo {
    name: String,
    distribution: Option<String>,
    component: Option<String>,
    comment: Option<String>,
}

pub async fn create_repo(
    State(state): State<AppState>,
    Json(body): Json<CreateRepo>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let repo = apt(&state)?
        .create_repo(
            &body.name,
            body.distribution.as_deref(),
            body.component.as_deref(),
            body.comment.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(json!(repo))))
}

pub async fn list_repos(State(state): State<AppState>) -> JsonResult {
    Ok(axum::Json(json!({ "repos": apt(&state)?.repos().await? })))
}

pub async fn show_repo(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> JsonResult {
    let (repo, packages) = apt(&state)?.repo(&name).await?;
    Ok(axum::Json(json!({ "repo": repo, "packages": packages })))
}

pub async fn drop_repo(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> JsonResult {
    apt(&state)?.drop_repo(&name).await?;
    Ok(axum::Json(json!({ "dropped": name })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackagesQuery {
    q: Option<String>,
    #[serde(default)]
    force_replace: bool,
    filename: Option<String>,
    /// Publish the repository's publications again after adding.
    #[serde(default)]
    update: bool,
}

pub async fn list_packages(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    QueryParams(query): QueryParams<PackagesQuery>,
) -> JsonResult {
    let packages = apt(&state)?
        .repo_packages(&name, query.q.as_deref())
        .await?;
    Ok(axum::Json(json!({ "packages": packages })))
}

/// The body is one `.deb`, or (`Content-Type: application/x-tar`) a tar
/// of several, added all or none. Neither is held whole in memory: a tar is
/// read as it arrives, a single file is written to disk first (`Upload`)
/// and checked from there. Either is refused with 413 past the server's
/// upload limit.
pub async fn add_package(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    QueryParams(query): QueryParams<PackagesQuery>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> ApiResult<axum::Json<AddAnswer>> {
    let apt = apt(&state)?;
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
    let updated = if query.update {
        apt.update_publications_of(&name).await?
    } else {
        Vec::new()
    };
    Ok(axum::Json(AddAnswer { report, updated }))
}

/// Serialized as it is, not through a `Value`: an add of 10,000 packages
/// answers with 10,000 of them.
#[derive(serde::Serialize)]
pub struct AddAnswer {
    report: gantry_apt::AddReport,
    updated: Vec<gantry_apt::PublicationView>,
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
) -> JsonResult {
    let Some(q) = query.q else {
        return Err(ApiError::invalid("removing packages needs a query (q=…)"));
    };
    let removed = apt(&state)?.remove(&name, &q).await?;
    Ok(axum::Json(json!({ "removed": removed })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CopyBody {
    to: String,
    query: String,
    #[serde(default, rename = "move")]
    move_them: bool,
}

pub async fn copy_packages(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    Json(body): Json<CopyBody>,
) -> JsonResult {
    let packages = apt(&state)?
        .copy(&name, &body.to, &body.query, body.move_them)
        .await?;
    Ok(axum::Json(json!({ "packages": packages })))
}

// --- Snapshots --------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateSnapshot {
    name: String,
    /// `snapshot create NAME from repo REPO`.
    repo: Option<String>,
    /// `snapshot merge NAME SOURCE…`.
    merge: Option<Vec<String>>,
    #[serde(default)]
    latest: bool,
}

pub async fn create_snapshot(
    State(state): State<AppState>,
    Json(body): Json<CreateSnapshot>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let apt = apt(&state)?;
    let count = match (body.repo, body.merge) {
        (Some(repo), None) => apt.snapshot_from_repo(&body.name, &repo).await?,
        (None, Some(sources)) => apt.merge(&body.name, &sources, body.latest).await?,
        _ => return Err(ApiError::invalid("give exactly one of repo or merge")),
    };
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "name": body.name, "packages": count })),
    ))
}

pub async fn list_snapshots(State(state): State<AppState>) -> JsonResult {
    let snapshots = apt(&state)?.snapshots().await?;
    Ok(axum::Json(json!({ "snapshots": snapshots })))
}

pub async fn show_snapshot(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> JsonResult {
    Ok(axum::Json(json!(apt(&state)?.snapshot(&name).await?)))
}

pub async fn drop_snapshot(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> JsonResult {
    apt(&state)?.drop_snapshot(&name).await?;
    Ok(axum::Json(json!({ "dropped": name })))
}

pub async fn diff_snapshots(
    State(state): State<AppState>,
    PathParams((left, right)): PathParams<(String, String)>,
) -> JsonResult {
    Ok(axum::Json(json!(apt(&state)?.diff(&left, &right).await?)))
}

// --- Publications -----------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PublishBody {
    prefix: Option<String>,
    distribution: String,
    source_kind: SourceKind,
    sources: Vec<Source>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    skip_signing: bool,
    key: Option<String>,
    /// On unless turned off: with it, a client that read the old
    /// `InRelease` still finds the indexes it names after a publish.
    acquire_by_hash: Option<bool>,
    /// Also write `Packages.xz` (off by default).
    #[serde(default)]
    xz: bool,
    origin: Option<String>,
    label: Option<String>,
}

pub async fn publish(
    State(state): State<AppState>,
    Json(body): Json<PublishBody>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let spec = PublicationSpec {
        source_kind: body.source_kind,
        sources: body.sources,
        architectures: body.architectures,
        skip_signing: body.skip_signing,
        key: body.key,
        acquire_by_hash: body.acquire_by_hash.unwrap_or(true),
        xz: body.xz,
        origin: body.origin,
        label: body.label,
    };
    let view = apt(&state)?
        .publish(body.prefix.as_deref(), &body.distribution, spec)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(json!(view))))
}

pub async fn list_publications(State(state): State<AppState>) -> JsonResult {
    Ok(axum::Json(
        json!({ "publications": apt(&state)?.publications().await? }),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateBody {
    /// `publish switch`: one snapshot per component.
    snapshots: Option<Vec<String>>,
}

pub async fn update_publication(
    State(state): State<AppState>,
    PathParams((prefix, distribution)): PathParams<(String, String)>,
    Json(body): Json<UpdateBody>,
) -> JsonResult {
    let apt = apt(&state)?;
    let prefix = decode_prefix(&prefix);
    let view = match body.snapshots {
        Some(snapshots) => apt.switch(&distribution, Some(&prefix), &snapshots).await?,
        None => apt.update(&distribution, Some(&prefix)).await?,
    };
    Ok(axum::Json(json!(view)))
}

pub async fn drop_publication(
    State(state): State<AppState>,
    PathParams((prefix, distribution)): PathParams<(String, String)>,
) -> JsonResult {
    let prefix = decode_prefix(&prefix);
    apt(&state)?
        .drop_publication(&distribution, Some(&prefix))
        .await?;
    Ok(axum::Json(
        json!({ "dropped": format!("{prefix} {distribution}") }),
    ))
}

// --- Database -----------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CleanupBody {
    /// Change nothing; answer what would go.
    #[serde(default)]
    dry_run: bool,
}

/// aptly's `db cleanup`: forgets the packages nothing refers to and frees
/// their bytes; answers what went (or would go).
pub async fn db_cleanup(
    State(state): State<AppState>,
    Json(body): Json<CleanupBody>,
) -> JsonResult {
    let report = apt(&state)?
        .cleanup(CleanupOptions {
            dry_run: body.dry_run,
        })
        .await?;
    Ok(axum::Json(json!(report)))
}

// --- Keys -------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KeyBody {
    /// Generate a key with this user id…
    user_id: Option<String>,
    /// …or import this armored secret key.
    armored: Option<String>,
}

pub async fn create_key(
    State(state): State<AppState>,
    Json(body): Json<KeyBody>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let keyring = apt(&state)?.keyring().clone();
    let keys = tokio::task::spawn_blocking(move || match (body.user_id, body.armored) {
        (Some(user_id), None) => keyring.generate(&user_id).map(|k| vec![k]),
        (None, Some(armored)) => keyring.import(armored.as_bytes()),
        _ => Err(AptError::Invalid(
            "give exactly one of userId or armored".into(),
        )),
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok((StatusCode::CREATED, axum::Json(json!({ "keys": keys }))))
}

pub async fn list_keys(State(state): State<AppState>) -> JsonResult {
    let keyring = apt(&state)?.keyring().clone();
    let keys = tokio::task::spawn_blocking(move || keyring.list())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(axum::Json(json!({ "keys": keys })))
}

#[derive(Debug, Default, Deserialize)]
pub struct KeyQuery {
    id: Option<String>,
}

pub async fn public_key(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<KeyQuery>,
) -> ApiResult<String> {
    let keyring = apt(&state)?.keyring().clone();
    let armored = tokio::task::spawn_blocking(move || keyring.export_public(query.id.as_deref()))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(String::from_utf8_lossy(&armored).into_owned())
}
