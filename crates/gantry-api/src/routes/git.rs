//! Hosted git: smart HTTP at `/git/NAME.git/…` (through `git http-backend`), the repositories
//! resource, and the trigger listing. A push that changes refs is handed to the triggers.
//!
//! Git clients authenticate with HTTP basic auth, an API token as the password (the user name
//! is ignored). Pushing always needs an operator's (the ref advertisement that starts a push
//! too, however its query is spelled); reading needs a token unless the repository is public.
//! A request without one gets 401 with `WWW-Authenticate: Basic`, which makes git prompt; a
//! token whose role is too low gets 403.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gantry_git::{CgiRequest, RepoError, Service};
use gantry_triggers::{Push, Source, Triggers};
use gantry_wire::Deleted;
use gantry_wire::git::{CreateRepository, Repository, RepositoryList, Trigger, TriggerList};

use crate::AppState;
use crate::auth::{Caller, Role, authenticate_token, check_role};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, PathParams};

pub(crate) fn triggers(state: &AppState) -> Triggers {
    state.triggers().clone()
}

/// `GET|POST /git/{repo}/{*path}`: one smart HTTP request.
pub async fn smart_http(
    State(state): State<AppState>,
    PathParams((repo, path)): PathParams<(String, String)>,
    request: Request,
) -> Response {
    match serve(state, repo, path, request).await {
        Ok(response) => response,
        Err(error) => with_basic_challenge(error.into_response()),
    }
}

async fn serve(
    state: AppState,
    repo: String,
    path: String,
    request: Request,
) -> ApiResult<Response> {
    let repos = state.engine().git().clone();
    let name = repo
        .strip_suffix(".git")
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no repository at /git/{repo}: repository urls end with .git"
            ))
        })?
        .to_owned();
    let info = repos.info(&name).await.map_err(repo_error)?;
    let query = request.uri().query().map(str::to_owned);
    let service = if may_write(&path, query.as_deref()) {
        Service::ReceivePack
    } else {
        Service::UploadPack
    };
    let caller = match basic_token(request.headers()) {
        Some(token) => Some(authenticate_token(&state, &token).await?),
        None => None,
    };
    let what = if service == Service::ReceivePack {
        "pushing to"
    } else {
        "reading"
    };
    match &caller {
        None if service == Service::ReceivePack || !info.public => {
            return Err(ApiError::unauthorized(format!(
                "{what} repository {name:?} needs a token: use it as the password (HTTP basic auth)"
            )));
        }
        Some(caller) if service == Service::ReceivePack => check_role(caller, Role::Operator)?,
        _ => {}
    }
    let (parts, body) = request.into_parts();
    let response = gantry_git::serve_cgi(CgiRequest {
        project_root: repos.root().to_path_buf(),
        path_info: format!("/{repo}/{path}"),
        method: parts.method.to_string(),
        query,
        headers: parts.headers,
        remote_user: caller.as_ref().map(|c| c.name.clone()),
        remote_addr: None,
        body: body.into_data_stream(),
    })
    .await
    .map_err(|e| ApiError::internal(format!("git http-backend for {name:?}: {e}")))?;

    if service == Service::ReceivePack {
        let updates = response.updates;
        let triggers = triggers(&state);
        let pusher = caller.map(|c| c.name);
        tokio::spawn(async move {
            let Ok(updates) = updates.await else { return };
            for update in updates {
                metrics::counter!("gantry_git_ref_updates_total").increment(1);
                let push = Push {
                    source: Source::Hosted(name.clone()),
                    repository: name.clone(),
                    url: None,
                    update,
                    via: "git",
                    pusher: pusher.clone(),
                    author: None,
                    message: None,
                    changed_files: None,
                    delivery_id: None,
                };
                triggers.dispatch(push).await;
            }
        });
    }
    let mut out = Response::new(Body::from_stream(response.body));
    *out.status_mut() = response.status;
    *out.headers_mut() = response.headers;
    Ok(out)
}

/// Whether a smart HTTP request may change the repository: the `git-receive-pack` endpoint,
/// or the ref advertisement for it. `git http-backend` decodes the query (`%2D` is `-`, `+` a
/// space) and reads any `service` parameter, so this decodes it the same way and treats every
/// service other than `git-upload-pack` as a push: a spelling it does not foresee errs on the
/// side of asking for the operator's token.
fn may_write(path: &str, query: Option<&str>) -> bool {
    if path.trim_end_matches('/').ends_with("git-receive-pack") {
        return true;
    }
    let Some(query) = query else { return false };
    query.split(['&', ';']).any(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        url_decode(key) == "service" && url_decode(value) != "git-upload-pack"
    })
}

/// `application/x-www-form-urlencoded` decoding, lossy on bytes that are not UTF-8.
fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', high, low]) => hex_value(*high).zip(hex_value(*low)),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some((high, low)), _) => {
                out.push(high << 4 | low);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, byte) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|value| value as u8)
}

/// The password of `Authorization: Basic …` (git sends the token there).
fn basic_token(headers: &axum::http::HeaderMap) -> Option<String> {
    use base64::Engine as _;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_, password) = text.split_once(':')?;
    Some(password.to_owned()).filter(|p| !p.is_empty())
}

fn repo_error(error: RepoError) -> ApiError {
    match error {
        RepoError::NotFound(_) => ApiError::not_found(error.to_string()),
        RepoError::AlreadyExists(_) => ApiError::conflict(error.to_string()),
        RepoError::BadName(_) => ApiError::invalid(error.to_string()),
        RepoError::Io { .. } | RepoError::Git { .. } => ApiError::internal(error.to_string()),
    }
}

pub async fn list_repos(State(state): State<AppState>) -> ApiResult<axum::Json<RepositoryList>> {
    let repos = state.engine().git().list().await.map_err(repo_error)?;
    Ok(axum::Json(RepositoryList {
        repositories: repos.into_iter().map(repository).collect(),
    }))
}

pub async fn create_repo(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<CreateRepository>,
) -> ApiResult<(StatusCode, axum::Json<Repository>)> {
    let info = state
        .engine()
        .git()
        .create(&body.name, body.public)
        .await
        .map_err(repo_error)?;
    tracing::info!(repository = %info.name, user = %caller.name, "repository created");
    Ok((StatusCode::CREATED, axum::Json(repository(info))))
}

pub async fn show_repo(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> ApiResult<axum::Json<Repository>> {
    let info = state.engine().git().info(&name).await.map_err(repo_error)?;
    Ok(axum::Json(repository(info)))
}

pub async fn delete_repo(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> ApiResult<axum::Json<Deleted>> {
    if !state
        .engine()
        .git()
        .delete(&name)
        .await
        .map_err(repo_error)?
    {
        return Err(ApiError::not_found(format!(
            "repository {name:?} does not exist"
        )));
    }
    Ok(axum::Json(Deleted { deleted: name }))
}

pub async fn list_triggers(State(state): State<AppState>) -> ApiResult<axum::Json<TriggerList>> {
    let triggers = triggers(&state).list().await?;
    Ok(axum::Json(TriggerList {
        triggers: triggers.into_iter().map(trigger_view).collect(),
    }))
}

/// `POST /api/v1/pipelines/{name}/triggers/{position}/disable`.
pub async fn disable_trigger(
    State(state): State<AppState>,
    PathParams((pipeline, position)): PathParams<(String, u32)>,
) -> ApiResult<axum::Json<Trigger>> {
    switch_trigger(&state, &pipeline, position, false).await
}

/// `POST /api/v1/pipelines/{name}/triggers/{position}/enable`.
pub async fn enable_trigger(
    State(state): State<AppState>,
    PathParams((pipeline, position)): PathParams<(String, u32)>,
) -> ApiResult<axum::Json<Trigger>> {
    switch_trigger(&state, &pipeline, position, true).await
}

async fn switch_trigger(
    state: &AppState,
    pipeline: &str,
    position: u32,
    enabled: bool,
) -> ApiResult<axum::Json<Trigger>> {
    use gantry_triggers::SwitchError;
    match triggers(state)
        .set_enabled(pipeline, position, enabled)
        .await
    {
        Ok(view) => {
            tracing::info!(%pipeline, position, enabled, "trigger switched");
            Ok(axum::Json(trigger_view(view)))
        }
        Err(error @ (SwitchError::NoPipeline(_) | SwitchError::NoTrigger { .. })) => {
            Err(ApiError::not_found(error.to_string()))
        }
        Err(SwitchError::Store(error)) => Err(error.into()),
    }
}

fn trigger_view(t: gantry_triggers::TriggerView) -> Trigger {
    Trigger {
        id: t.id,
        pipeline: t.pipeline,
        position: t.position,
        kind: t.kind.to_owned(),
        enabled: t.enabled,
        watches: t.watches,
        spec: t.spec,
    }
}

fn repository(info: gantry_git::RepoInfo) -> Repository {
    Repository {
        name: info.name,
        public: info.public,
    }
}

/// A 401 that makes git ask for credentials.
pub(crate) fn with_basic_challenge(mut response: Response) -> Response {
    if response.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"gantry\""),
        );
    }
    response
}
