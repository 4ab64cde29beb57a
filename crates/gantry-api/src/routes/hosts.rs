//! Fleet hosts: `/api/v1/hosts…`. The [`Fleet`] is an extension `gantry
//! serve` puts in the router (it holds the hosts' SSH connections); these
//! handlers only translate.

use std::sync::Arc;

use axum::Extension;
use gantry_fleet::{Fleet, FleetError};
use gantry_wire::hosts::{Bootstrapped, Host, HostList};

use crate::error::{ApiError, ApiResult};
use crate::extract::PathParams;
use crate::now_millis;

type Hosts = Extension<Arc<Fleet>>;

pub async fn list(Extension(fleet): Hosts) -> ApiResult<axum::Json<HostList>> {
    let hosts = fleet.views().await.map_err(fleet_error)?;
    Ok(axum::Json(HostList { hosts }))
}

pub async fn show(
    Extension(fleet): Hosts,
    PathParams(name): PathParams<String>,
) -> ApiResult<axum::Json<Host>> {
    let host = fleet.host(&name).await.map_err(fleet_error)?;
    Ok(axum::Json(fleet.view(&host).await))
}

pub async fn bootstrap(
    Extension(fleet): Hosts,
    PathParams(name): PathParams<String>,
) -> ApiResult<axum::Json<Bootstrapped>> {
    let done = fleet.bootstrap(&name).await.map_err(fleet_error)?;
    tracing::info!(host = %name, copied = done.copied, "host bootstrapped");
    Ok(axum::Json(done))
}

pub async fn drain(
    Extension(fleet): Hosts,
    PathParams(name): PathParams<String>,
) -> ApiResult<axum::Json<Host>> {
    set_drained(&fleet, &name, true).await
}

pub async fn undrain(
    Extension(fleet): Hosts,
    PathParams(name): PathParams<String>,
) -> ApiResult<axum::Json<Host>> {
    set_drained(&fleet, &name, false).await
}

async fn set_drained(fleet: &Fleet, name: &str, drained: bool) -> ApiResult<axum::Json<Host>> {
    fleet
        .set_drained(name, drained, now_millis())
        .await
        .map_err(fleet_error)?;
    tracing::info!(host = %name, drained, "host schedulability changed");
    let host = fleet.host(name).await.map_err(fleet_error)?;
    Ok(axum::Json(fleet.view(&host).await))
}

fn fleet_error(error: FleetError) -> ApiError {
    match error {
        FleetError::UnknownHost(_) => ApiError::not_found(error.to_string()),
        FleetError::Store(store) => store.into(),
        FleetError::Unreachable { .. } | FleetError::Agent { .. } => {
            ApiError::unavailable(error.to_string())
        }
        FleetError::Io { .. } => ApiError::internal(error.to_string()),
        _ => ApiError::invalid(error.to_string()),
    }
}
