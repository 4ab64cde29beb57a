//! Runners under `/api/v1/runners`: the agent's protocol (`register`,
//! `lease`, `heartbeat`, `logs`, `finish`, workspace snapshots; see
//! `gantry_runners::protocol`)
//! and the admin's view (tokens, list, disable, enable, remove, queued
//! jobs). Handlers translate to `gantry_runners::server`, which `gantry
//! serve` puts in the router as an `Extension<RunnerRegistry>`.
//!
//! The agent's routes are public in the route table: a runner proves itself
//! with its own credential (a bearer token that is not an API token), which
//! is checked here; a refusal is a 401 and a server log line naming the
//! runner the credential claims to be. Their bodies are read only once the
//! credential is accepted (at most 2 MiB); a registration, which carries
//! its token in the body, is held to 16 KiB and to the budget and time
//! limit of unauthenticated bodies.

use std::time::Duration;

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gantry_runners::protocol::{
    FinishRequest, FinishResponse, HeartbeatRequest, HeartbeatResponse, LeaseQuery, LeaseRequest,
    LeaseResponse, LogAck, LogBatch, PROTOCOL_HEADER, PROTOCOL_VERSION, RegisterRequest,
    RegisterResponse, WorkspaceUploaded, is_sha256,
};
use gantry_runners::server::{RunnerError, RunnerRegistry};
use gantry_store::RunnerRecord;
use serde::de::DeserializeOwned;

use gantry_wire::runners::{
    self as wire, CreateRunnerToken, CreatedRunnerToken, QueuedRunnerJobs, RemovedRunner,
    RunnerList, RunnerState,
};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, PathParams, parse_json};
use crate::views::timestamp;
use crate::{AppState, JSON_BODY_LIMIT, now_millis};

type Registry = Extension<RunnerRegistry>;

/// A registration is a token, a name, labels and numbers: a few hundred
/// bytes.
const REGISTER_BODY_LIMIT: usize = 16 << 10;

// --- The agent's protocol ------------------------------------------------

pub async fn register(
    State(state): State<AppState>,
    Extension(registry): Registry,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, axum::Json<RegisterResponse>), Response> {
    check_protocol(&headers).map_err(IntoResponse::into_response)?;
    // Not authenticated yet (the token is in the body): held to the budget
    // and time limit of unauthenticated bodies, and small.
    let bytes = state
        .unauthenticated_bodies()
        .read(body, REGISTER_BODY_LIMIT)
        .await
        .map_err(|refused| {
            tracing::warn!(error = %refused, "runner registration body refused");
            refused.into_response()
        })?;
    let request: RegisterRequest = parse_json(&bytes).map_err(IntoResponse::into_response)?;
    let name = request.name.clone();
    let registered = registry
        .register(request, now_millis())
        .await
        .inspect_err(|e| tracing::warn!(runner = %name, error = %e, "runner registration refused"))
        .map_err(|e| ApiError::from(e).into_response())?;
    Ok((StatusCode::CREATED, axum::Json(registered)))
}

pub async fn lease(
    Extension(registry): Registry,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<axum::Json<LeaseResponse>> {
    let (runner, request) = authenticated::<LeaseRequest>(&registry, &headers, body).await?;
    let dispatcher = registry.dispatcher();
    let wait = Duration::from_millis(dispatcher.timing().long_poll_ms);
    let job = dispatcher.lease(&runner, request.free_slots, wait).await?;
    Ok(axum::Json(LeaseResponse { job }))
}

pub async fn heartbeat(
    Extension(registry): Registry,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<axum::Json<HeartbeatResponse>> {
    let (runner, request) = authenticated::<HeartbeatRequest>(&registry, &headers, body).await?;
    let answer = registry.dispatcher().heartbeat(&runner, &request).await?;
    Ok(axum::Json(answer))
}

pub async fn logs(
    Extension(registry): Registry,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<axum::Json<LogAck>> {
    let (runner, batch) = authenticated::<LogBatch>(&registry, &headers, body).await?;
    let ack = registry.dispatcher().logs(&runner, batch).await?;
    Ok(axum::Json(ack))
}

pub async fn finish(
    Extension(registry): Registry,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<axum::Json<FinishResponse>> {
    let (runner, request) = authenticated::<FinishRequest>(&registry, &headers, body).await?;
    let lease = request.lease_id.clone();
    let finished = registry
        .dispatcher()
        .finish(&runner, request)
        .await
        .inspect_err(|e| tracing::warn!(runner = %runner.name, lease = %lease, error = %e, "late result refused"))?;
    Ok(axum::Json(finished))
}

/// The runner behind a request, then its body: nothing is read from a
/// client whose credential is refused.
async fn authenticated<T: DeserializeOwned>(
    registry: &RunnerRegistry,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<(RunnerRecord, T)> {
    let runner = authenticate(registry, headers).await?;
    let bytes = axum::body::to_bytes(body, JSON_BODY_LIMIT)
        .await
        .map_err(|e| {
            ApiError::invalid(format!("runner {}: body refused: {e}", runner.name))
                .with_status(StatusCode::PAYLOAD_TOO_LARGE)
        })?;
    Ok((runner, parse_json(&bytes)?))
}

/// The runner a request's bearer credential belongs to.
async fn authenticate(registry: &RunnerRegistry, headers: &HeaderMap) -> ApiResult<RunnerRecord> {
    check_protocol(headers)?;
    let credential = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::unauthorized("a runner credential is required (Authorization: Bearer …)")
        })?;
    registry.authenticate(credential).await.map_err(|error| {
        if let RunnerError::CredentialRefused { runner, why } = &error {
            tracing::warn!(runner = runner.as_deref().unwrap_or("unknown"), %why, "runner credential refused");
        }
        error.into()
    })
}

fn check_protocol(headers: &HeaderMap) -> ApiResult<()> {
    let version = headers.get(PROTOCOL_HEADER).and_then(|v| v.to_str().ok());
    if version == Some(PROTOCOL_VERSION.to_string().as_str()) {
        return Ok(());
    }
    Err(RunnerError::Protocol {
        theirs: version.unwrap_or("none").to_owned(),
        ours: PROTOCOL_VERSION,
    }
    .into())
}

// --- The admin's view ------------------------------------------------------

pub async fn list(Extension(registry): Registry) -> ApiResult<axum::Json<RunnerList>> {
    let runners = registry
        .list()
        .await?
        .into_iter()
        .map(|r| wire::Runner {
            name: r.name,
            state: r.state,
            labels: r.labels,
            capacity: r.capacity,
            load: r.load as u64,
            version: r.version,
            created_at: timestamp(r.created_at),
            last_contact_at: r.last_contact_at.map(timestamp),
        })
        .collect();
    Ok(axum::Json(RunnerList { runners }))
}

pub async fn create_token(
    Extension(registry): Registry,
    Json(body): Json<CreateRunnerToken>,
) -> ApiResult<(StatusCode, axum::Json<CreatedRunnerToken>)> {
    let valid_for = body
        .expires
        .as_deref()
        .map(|text| {
            humantime::parse_duration(text)
                .map_err(|e| ApiError::invalid(format!("expires {text:?}: {e}")))
        })
        .transpose()?;
    let created = registry
        .create_token(now_millis(), valid_for, body.uses)
        .await?;
    let body = CreatedRunnerToken {
        id: created.id,
        token: created.token,
        expires_at: created.expires_at.map(timestamp),
        uses_left: created.uses_left,
    };
    Ok((StatusCode::CREATED, axum::Json(body)))
}

pub async fn disable(
    Extension(registry): Registry,
    PathParams(name): PathParams<String>,
) -> ApiResult<axum::Json<RunnerState>> {
    let runner = registry.disable(&name, now_millis()).await?;
    Ok(axum::Json(state_of(runner)))
}

pub async fn enable(
    Extension(registry): Registry,
    PathParams(name): PathParams<String>,
) -> ApiResult<axum::Json<RunnerState>> {
    let runner = registry.enable(&name).await?;
    Ok(axum::Json(state_of(runner)))
}

fn state_of(runner: RunnerRecord) -> RunnerState {
    RunnerState {
        name: runner.name,
        state: runner.state,
    }
}

pub async fn remove(
    Extension(registry): Registry,
    PathParams(name): PathParams<String>,
) -> ApiResult<axum::Json<RemovedRunner>> {
    let runner = registry.remove(&name, now_millis()).await?;
    Ok(axum::Json(RemovedRunner {
        removed: runner.name,
    }))
}

/// The jobs waiting for a runner, each saying whether one could take it.
pub async fn queued_jobs(Extension(registry): Registry) -> ApiResult<axum::Json<QueuedRunnerJobs>> {
    let label_sets = registry.enabled_label_sets().await?;
    let jobs = registry.dispatcher().queued(&label_sets);
    Ok(axum::Json(QueuedRunnerJobs { jobs }))
}

impl From<RunnerError> for ApiError {
    fn from(error: RunnerError) -> ApiError {
        match error {
            RunnerError::Store(e) => e.into(),
            RunnerError::TokenRefused | RunnerError::CredentialRefused { .. } => {
                ApiError::unauthorized(error.to_string())
            }
            RunnerError::NameTaken(_) | RunnerError::LeaseGone(_) => {
                ApiError::conflict(error.to_string())
            }
            RunnerError::NoSuchRunner(_) | RunnerError::NoSuchJob(_) => {
                ApiError::not_found(error.to_string())
            }
            RunnerError::Invalid(_) | RunnerError::Protocol { .. } => {
                ApiError::invalid(error.to_string())
            }
        }
    }
}

/// Routes that queue jobs directly, for the integration tests of debug
/// builds only: after the merge the engine's remote step executor is what
/// queues jobs. The owner of such a job keeps its events in memory for
/// `GET /api/v1/runners/jobs/{id}` and, when asked, runs a lost job once more.
#[cfg(debug_assertions)]
pub mod debug {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    use gantry_runners::server::{JobEvent, JobSpec};
    use serde::Deserialize;
    use serde_json::{Value, json};

    use super::*;

    /// Adds the debug routes, for an admin, outside the route table (and
    /// so outside the OpenAPI document).
    pub fn mount(router: axum::Router<AppState>, state: &AppState) -> axum::Router<AppState> {
        use axum::routing::{get, post};
        let admin_only = || {
            axum::middleware::from_fn_with_state(
                (state.clone(), crate::Role::Admin),
                crate::auth::require_role,
            )
        };
        router
            .route(
                "/api/v1/runners/debug/jobs",
                post(enqueue).route_layer(admin_only()),
            )
            .route(
                "/api/v1/runners/debug/jobs/{id}",
                get(show).route_layer(admin_only()),
            )
            .route(
                "/api/v1/runners/debug/jobs/{id}/cancel",
                post(cancel).route_layer(admin_only()),
            )
    }

    fn events() -> &'static Mutex<HashMap<String, Vec<JobEvent>>> {
        static EVENTS: OnceLock<Mutex<HashMap<String, Vec<JobEvent>>>> = OnceLock::new();
        EVENTS.get_or_init(Mutex::default)
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct EnqueueBody {
        pub payload: Value,
        #[serde(default)]
        pub labels: Vec<String>,
        /// Queue a lost job once more (the engine's "re-run once" rule).
        #[serde(default)]
        pub retry_on_loss: bool,
    }

    pub async fn enqueue(
        Extension(registry): Registry,
        Json(body): Json<EnqueueBody>,
    ) -> ApiResult<(StatusCode, axum::Json<Value>)> {
        let mut job = registry
            .dispatcher()
            .enqueue(JobSpec {
                payload: body.payload,
                labels: body.labels,
                secrets: Default::default(),
                workspace: None,
            })
            .await?;
        let id = job.id.clone();
        events().lock().unwrap().insert(id.clone(), Vec::new());
        let dispatcher = registry.dispatcher().clone();
        let mut retries_left = u8::from(body.retry_on_loss);
        tokio::spawn(async move {
            while let Some(event) = job.events.recv().await {
                let lost = matches!(event, JobEvent::Lost { .. });
                events()
                    .lock()
                    .unwrap()
                    .entry(job.id.clone())
                    .or_default()
                    .push(event);
                if lost {
                    if retries_left > 0 && dispatcher.retry(&job.id).await.unwrap_or(false) {
                        retries_left -= 1;
                    } else {
                        dispatcher.give_up(&job.id);
                    }
                }
            }
        });
        Ok((StatusCode::CREATED, axum::Json(json!({ "id": id }))))
    }

    pub async fn show(
        Extension(registry): Registry,
        PathParams(id): PathParams<String>,
    ) -> ApiResult<axum::Json<Value>> {
        let store = registry_store(&registry, &id).await?;
        let events = events()
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .unwrap_or_default();
        Ok(axum::Json(json!({ "job": store, "events": events })))
    }

    pub async fn cancel(
        Extension(registry): Registry,
        PathParams(id): PathParams<String>,
    ) -> ApiResult<axum::Json<Value>> {
        let canceled = registry
            .dispatcher()
            .cancel(&id, "canceled by the test")
            .await?;
        Ok(axum::Json(json!({ "canceled": canceled })))
    }

    async fn registry_store(registry: &RunnerRegistry, id: &str) -> ApiResult<Value> {
        let job = registry
            .job(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no runner job {id:?}")))?;
        Ok(serde_json::to_value(job).unwrap_or_default())
    }
}

// --- Workspace snapshots --------------------------------------------------

/// `GET /api/v1/runners/workspace/{sha256}?lease=ID`: a snapshot of the
/// lease's job's workspace, streamed from its file.
pub async fn workspace_download(
    Extension(registry): Registry,
    headers: HeaderMap,
    PathParams(sha256): PathParams<String>,
    axum::extract::Query(query): axum::extract::Query<LeaseQuery>,
) -> ApiResult<Response> {
    let runner = authenticate(&registry, &headers).await?;
    if !is_sha256(&sha256) {
        return Err(ApiError::invalid(format!(
            "{sha256:?} is not a snapshot name (64 hex digits)"
        )));
    }
    let dir = registry
        .dispatcher()
        .workspace_of(&runner, &query.lease)
        .await?;
    let path = dir.join(format!("{sha256}.tar"));
    let file = tokio::fs::File::open(&path).await.map_err(|e| {
        ApiError::not_found(format!(
            "workspace snapshot {sha256} of lease {}: {e}",
            query.lease
        ))
    })?;
    let pieces = futures::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut piece = vec![0; 256 << 10];
        match file.read(&mut piece).await {
            Ok(0) => None,
            Ok(read) => {
                piece.truncate(read);
                Some((
                    Ok::<_, std::io::Error>(axum::body::Bytes::from(piece)),
                    file,
                ))
            }
            Err(error) => Some((Err(error), file)),
        }
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        Body::from_stream(pieces),
    )
        .into_response())
}

/// `PUT /api/v1/runners/workspace?lease=ID`: a runner's new snapshot of its
/// job's workspace, streamed to a file named by its SHA-256.
pub async fn workspace_upload(
    State(state): State<AppState>,
    Extension(registry): Registry,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<LeaseQuery>,
    body: Body,
) -> ApiResult<axum::Json<WorkspaceUploaded>> {
    use futures::StreamExt;
    use sha2::Digest;
    use tokio::io::AsyncWriteExt;
    let runner = authenticate(&registry, &headers).await?;
    let dir = registry
        .dispatcher()
        .workspace_of(&runner, &query.lease)
        .await?;
    let limit = state.body_limits().upload_limit;
    let temporary = dir.join(format!(".upload-{}", uuid::Uuid::now_v7()));
    let failed = |e: std::io::Error| {
        ApiError::internal(format!("workspace upload: {}: {e}", temporary.display()))
    };
    let mut file = tokio::fs::File::create(&temporary).await.map_err(failed)?;
    let mut hash = sha2::Sha256::new();
    let mut received: u64 = 0;
    let mut stream = body.into_data_stream();
    let written: Result<(), ApiError> = async {
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(|e| ApiError::invalid(format!("workspace upload: {e}")))?;
            received += piece.len() as u64;
            if received > limit {
                return Err(ApiError::invalid(format!(
                    "runner {}: the workspace is larger than the server's upload limit of {limit} bytes",
                    runner.name
                ))
                .with_status(StatusCode::PAYLOAD_TOO_LARGE));
            }
            hash.update(&piece);
            file.write_all(&piece).await.map_err(failed)?;
        }
        file.flush().await.map_err(failed)
    }
    .await;
    if let Err(error) = written {
        let _ = tokio::fs::remove_file(&temporary).await;
        return Err(error);
    }
    let sha256 = hex::encode(hash.finalize());
    tokio::fs::rename(&temporary, dir.join(format!("{sha256}.tar")))
        .await
        .map_err(failed)?;
    tracing::info!(runner = %runner.name, lease = %query.lease, %sha256, bytes = received, "workspace snapshot received");
    Ok(axum::Json(WorkspaceUploaded { sha256 }))
}
