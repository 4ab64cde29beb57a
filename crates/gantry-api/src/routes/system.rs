//! Health, metrics and the API description.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::AppState;
use crate::error::ApiResult;

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn metrics(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let text = crate::metrics::render(&state).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}

pub async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::DOCUMENT.as_str(),
    )
}

/// Stops the data plane of the server's own data directory, for `gantry
/// dataplane stop` run against a server (`GANTRY_URL`) rather than a data
/// directory. The data plane belongs to the `local` provider, which this
/// crate does not know: `gantry serve` hands the action in as an extension.
#[derive(Clone)]
pub struct DataplaneControl(pub std::sync::Arc<dyn StopDataplane>);

/// The one action [`DataplaneControl`] offers.
pub trait StopDataplane: Send + Sync {
    /// `Ok(false)` when no data plane was running.
    fn stop(&self) -> futures::future::BoxFuture<'_, Result<bool, crate::ApiError>>;
}

pub async fn stop_dataplane(
    control: Option<axum::Extension<DataplaneControl>>,
) -> ApiResult<axum::Json<gantry_wire::DataplaneStopped>> {
    let Some(axum::Extension(control)) = control else {
        return Err(crate::ApiError::not_found(
            "this server runs no local data plane",
        ));
    };
    let stopped = control.0.stop().await?;
    Ok(axum::Json(gantry_wire::DataplaneStopped { stopped }))
}
