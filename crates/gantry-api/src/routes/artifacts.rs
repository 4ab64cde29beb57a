//! The artifact store through the API: what an execution's stages kept
//! (`artifacts.objects` of a Cloud Build file), and each file, streamed.

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use gantry_engine::artifact_store::{self, KeptArtifacts};
use gantry_wire::executions::{Artifact, ArtifactList};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::PathParams;
use crate::routes::executions::ensure_exists;

pub async fn list(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> ApiResult<axum::Json<ArtifactList>> {
    ensure_exists(&state, &id).await?;
    let mut artifacts = Vec::new();
    for stage in state.store().stages(&id).await? {
        let Some(kept) = stage.outputs.get("artifacts") else {
            continue;
        };
        let Ok(kept) = serde_json::from_value::<KeptArtifacts>(kept.clone()) else {
            continue;
        };
        artifacts.extend(kept.objects.into_iter().map(|object| Artifact {
            stage: stage.stage_id.clone(),
            name: object.name,
            path: object.path,
            location: kept.location.clone(),
            size: object.size,
            sha256: object.sha256,
        }));
    }
    Ok(axum::Json(ArtifactList { artifacts }))
}

pub async fn download(
    State(state): State<AppState>,
    PathParams((id, stage, name)): PathParams<(String, String, String)>,
) -> ApiResult<Response> {
    let data_dir = state.engine().data_dir();
    let Some(path) = artifact_store::file(data_dir, &id, &stage, &name) else {
        return Err(ApiError::not_found(format!(
            "execution {id:?} has no artifact {name:?} from stage {stage:?}"
        )));
    };
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::internal(format!("cannot open artifact {name:?}: {e}")))?;
    let length = file
        .metadata()
        .await
        .map_err(|e| ApiError::internal(format!("cannot read artifact {name:?}: {e}")))?
        .len();
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, length.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", name.replace('"', "")),
            ),
        ],
        body,
    )
        .into_response())
}
