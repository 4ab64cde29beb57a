//! Gantry's HTTP API: JSON under `/api/v1`, server-sent events for live
//! executions, `/metrics` and `/healthz`. Handlers translate HTTP to calls on
//! the engine and reads of the store; they hold no state of their own beyond
//! a short-lived token cache.
//!
//! Every route is listed once in [`routes()`], which builds the router and
//! is checked against the hand-written OpenAPI document.

mod apply;
mod apt_service;
mod auth;
mod bodies;
mod error;
mod extract;
mod listener;
mod metrics;
mod openapi;
mod route;
mod routes;
mod ui_session;
mod views;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use gantry_engine::Engine;
use gantry_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;

pub use apply::apply;
pub use apt_service::AptService;
pub use auth::{
    ADMIN_TOKEN_FILE, AdminTokenError, Caller, Role, ensure_admin_token, generate_token, hash_token,
};
pub use bodies::BodyLimits;
pub use error::{ApiError, Code};
pub use listener::{BodyTimeout, ListenerConfig, Timeouts, serve};
pub use metrics::install_recorder;
pub use openapi::DOCUMENT as OPENAPI_DOCUMENT;
pub use route::Route;
use route::{admin, operator, public, viewer};
pub use routes::system::{DataplaneControl, StopDataplane};

/// Services of the server the API reaches besides the engine (which runs no code of
/// theirs: they are the stage types' too, wired by the binary).
#[derive(Clone, Debug, Default)]
pub struct Services {
    /// The APT repositories (`/api/v1/apt`); `None` answers those routes with an error.
    pub apt: Option<gantry_apt::Apt>,
    /// The deploy controller (applications, load balancers, server groups).
    pub deploy: Option<gantry_deploy::DeployController>,
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    engine: Engine,
    services: Services,
    triggers: gantry_triggers::Triggers,
    tokens: auth::TokenCache,
    sessions: ui_session::SessionCache,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
    body_limits: BodyLimits,
    unauthenticated_bodies: bodies::UnauthenticatedBodies,
}

impl AppState {
    /// `shutdown` ends open event streams, so that a graceful shutdown does
    /// not wait for clients that follow executions forever.
    /// `triggers` is the one trigger service of the server, whose watch of the pipelines the
    /// webhook and git routes share.
    pub fn new(
        engine: Engine,
        triggers: gantry_triggers::Triggers,
        metrics: PrometheusHandle,
        shutdown: CancellationToken,
    ) -> AppState {
        AppState::with_body_limits(engine, triggers, metrics, shutdown, BodyLimits::default())
    }

    /// [`AppState::new`] with limits on request bodies other than the
    /// defaults (`gantry serve` flags).
    pub fn with_body_limits(
        engine: Engine,
        triggers: gantry_triggers::Triggers,
        metrics: PrometheusHandle,
        shutdown: CancellationToken,
        body_limits: BodyLimits,
    ) -> AppState {
        let services = Services::default();
        AppState::with_services(engine, triggers, metrics, shutdown, body_limits, services)
    }

    /// [`AppState::with_body_limits`] with the server's APT repositories and deploy
    /// controller (`gantry serve`).
    pub fn with_services(
        engine: Engine,
        triggers: gantry_triggers::Triggers,
        metrics: PrometheusHandle,
        shutdown: CancellationToken,
        body_limits: BodyLimits,
        services: Services,
    ) -> AppState {
        AppState(Arc::new(Inner {
            engine,
            services,
            triggers,
            tokens: auth::TokenCache::default(),
            sessions: ui_session::SessionCache::default(),
            metrics,
            shutdown,
            unauthenticated_bodies: bodies::UnauthenticatedBodies::new(&body_limits),
            body_limits,
        }))
    }

    fn body_limits(&self) -> &BodyLimits {
        &self.0.body_limits
    }

    fn unauthenticated_bodies(&self) -> &bodies::UnauthenticatedBodies {
        &self.0.unauthenticated_bodies
    }

    pub fn engine(&self) -> &Engine {
        &self.0.engine
    }

    /// The server's APT repositories, when it has them.
    pub fn apt(&self) -> Option<&gantry_apt::Apt> {
        self.0.services.apt.as_ref()
    }

    /// The deploy controller, when the server has one.
    pub fn deploy(&self) -> Option<&gantry_deploy::DeployController> {
        self.0.services.deploy.as_ref()
    }

    pub fn store(&self) -> &Store {
        self.0.engine.store()
    }

    pub fn triggers(&self) -> &gantry_triggers::Triggers {
        &self.0.triggers
    }

    fn tokens(&self) -> &auth::TokenCache {
        &self.0.tokens
    }

    fn sessions(&self) -> &ui_session::SessionCache {
        &self.0.sessions
    }

    fn metrics_handle(&self) -> &PrometheusHandle {
        &self.0.metrics
    }

    fn shutdown_token(&self) -> &CancellationToken {
        &self.0.shutdown
    }
}

/// The most bytes a JSON request body may have (axum's default, which every
/// route but package uploads keeps). `gantry apply` sends a pipeline file
/// inside one, so the CLI checks a file against it before sending.
pub const JSON_BODY_LIMIT: usize = 2 << 20;

/// Every route of the API, in one table, each with the least role it needs:
/// `viewer` reads, `operator` acts on pipelines, executions, deploys and
/// artifacts, `admin` manages tokens, secrets, signing keys and the server's
/// own data. The router enforces the role before any handler runs, so a
/// handler never checks it.
pub fn routes() -> Vec<Route> {
    use routes::{apt, events, executions, git, pipelines, secrets, system, tokens, webhooks};
    vec![
        public(Method::GET, "/healthz", system::healthz),
        viewer(Method::GET, "/metrics", system::metrics),
        viewer(Method::GET, "/api/v1/openapi.json", system::openapi),
        admin(
            Method::POST,
            "/api/v1/dataplane/stop",
            system::stop_dataplane,
        ),
        viewer(Method::POST, "/api/v1/validate", pipelines::validate),
        operator(Method::POST, "/api/v1/apply", pipelines::apply),
        viewer(Method::GET, "/api/v1/pipelines", pipelines::list),
        operator(
            Method::DELETE,
            "/api/v1/pipelines",
            pipelines::delete_by_body,
        ),
        viewer(Method::GET, "/api/v1/pipelines/{name}", pipelines::show),
        operator(
            Method::DELETE,
            "/api/v1/pipelines/{name}",
            pipelines::delete,
        ),
        operator(
            Method::POST,
            "/api/v1/pipelines/{name}/executions",
            pipelines::run,
        ),
        viewer(Method::GET, "/api/v1/executions", executions::list),
        viewer(Method::GET, "/api/v1/executions/{id}", executions::show),
        viewer(
            Method::GET,
            "/api/v1/executions/{id}/artifacts",
            routes::artifacts::list,
        ),
        viewer(
            Method::GET,
            "/api/v1/executions/{id}/artifacts/{stage}/{name}",
            routes::artifacts::download,
        ),
        operator(
            Method::POST,
            "/api/v1/executions/{id}/cancel",
            executions::cancel,
        ),
        operator(
            Method::POST,
            "/api/v1/executions/{id}/rerun",
            executions::rerun,
        ),
        operator(
            Method::POST,
            "/api/v1/executions/{id}/judgment",
            executions::judge,
        ),
        operator(
            Method::POST,
            "/api/v1/executions/{id}/skip",
            executions::skip,
        ),
        operator(
            Method::POST,
            "/api/v1/executions/{id}/stages/{stage}/restart",
            executions::restart_stage,
        ),
        operator(
            Method::POST,
            "/api/v1/executions/{id}/stages/{stage}/skip",
            executions::skip_stage,
        ),
        viewer(
            Method::GET,
            "/api/v1/executions/{id}/logs",
            executions::logs,
        ),
        viewer(
            Method::GET,
            "/api/v1/executions/{id}/events",
            events::stream,
        ),
        viewer(
            Method::GET,
            "/api/v1/applications",
            routes::deploy::applications,
        ),
        viewer(Method::GET, "/api/v1/clusters", routes::deploy::clusters),
        viewer(
            Method::GET,
            "/api/v1/clusters/{name}",
            routes::deploy::cluster,
        ),
        operator(
            Method::POST,
            "/api/v1/clusters/{name}/rollback",
            routes::deploy::rollback,
        ),
        viewer(
            Method::GET,
            "/api/v1/server-groups",
            routes::deploy::server_groups,
        ),
        viewer(
            Method::GET,
            "/api/v1/server-groups/{name}",
            routes::deploy::server_group,
        ),
        operator(
            Method::POST,
            "/api/v1/server-groups/{name}/resize",
            routes::deploy::resize,
        ),
        operator(
            Method::POST,
            "/api/v1/server-groups/{name}/enable",
            routes::deploy::enable,
        ),
        operator(
            Method::POST,
            "/api/v1/server-groups/{name}/disable",
            routes::deploy::disable,
        ),
        operator(
            Method::DELETE,
            "/api/v1/server-groups/{name}",
            routes::deploy::destroy,
        ),
        viewer(
            Method::GET,
            "/api/v1/load-balancers",
            routes::deploy::load_balancers,
        ),
        viewer(
            Method::GET,
            "/api/v1/load-balancers/{name}",
            routes::deploy::load_balancer,
        ),
        viewer(Method::GET, "/api/v1/hosts", routes::hosts::list),
        viewer(Method::GET, "/api/v1/hosts/{name}", routes::hosts::show),
        admin(
            Method::POST,
            "/api/v1/hosts/{name}/bootstrap",
            routes::hosts::bootstrap,
        ),
        operator(
            Method::POST,
            "/api/v1/hosts/{name}/drain",
            routes::hosts::drain,
        ),
        operator(
            Method::POST,
            "/api/v1/hosts/{name}/undrain",
            routes::hosts::undrain,
        ),
        viewer(Method::GET, "/api/v1/tokens", tokens::list),
        admin(Method::POST, "/api/v1/tokens", tokens::create),
        admin(Method::DELETE, "/api/v1/tokens/{token}", tokens::revoke),
        admin(Method::GET, "/api/v1/secrets", secrets::list),
        admin(Method::PUT, "/api/v1/secrets/{name}", secrets::set),
        admin(Method::DELETE, "/api/v1/secrets/{name}", secrets::delete),
        // Hosted git checks its own basic-auth token (git sends no bearer header): reading
        // a private repository needs a viewer, pushing an operator (`routes/git.rs`).
        public(Method::GET, "/git/{repo}/{*path}", git::smart_http),
        public(Method::POST, "/git/{repo}/{*path}", git::smart_http),
        viewer(Method::GET, "/api/v1/repos", git::list_repos),
        operator(Method::POST, "/api/v1/repos", git::create_repo),
        viewer(Method::GET, "/api/v1/repos/{name}", git::show_repo),
        admin(Method::DELETE, "/api/v1/repos/{name}", git::delete_repo),
        viewer(Method::GET, "/api/v1/triggers", git::list_triggers),
        viewer(
            Method::GET,
            "/api/v1/webhook-deliveries",
            webhooks::list_deliveries,
        ),
        viewer(
            Method::GET,
            "/api/v1/trigger-deliveries",
            webhooks::list_trigger_deliveries,
        ),
        operator(
            Method::POST,
            "/api/v1/pipelines/{name}/triggers/{position}/disable",
            git::disable_trigger,
        ),
        operator(
            Method::POST,
            "/api/v1/pipelines/{name}/triggers/{position}/enable",
            git::enable_trigger,
        ),
        // Webhooks prove themselves with their signature or token.
        public(Method::POST, "/webhooks/github", webhooks::github),
        public(Method::POST, "/webhooks/gitlab", webhooks::gitlab),
        public(
            Method::POST,
            "/webhooks/generic/{source}",
            webhooks::generic,
        ),
        operator(Method::POST, "/api/v1/apt/repos", apt::create_repo),
        viewer(Method::GET, "/api/v1/apt/repos", apt::list_repos),
        viewer(Method::GET, "/api/v1/apt/repos/{name}", apt::show_repo),
        operator(Method::DELETE, "/api/v1/apt/repos/{name}", apt::drop_repo),
        viewer(
            Method::GET,
            "/api/v1/apt/repos/{name}/packages",
            apt::list_packages,
        ),
        operator(
            Method::POST,
            "/api/v1/apt/repos/{name}/packages",
            apt::add_package,
        )
        .large_body(),
        operator(
            Method::DELETE,
            "/api/v1/apt/repos/{name}/packages",
            apt::remove_packages,
        ),
        operator(
            Method::POST,
            "/api/v1/apt/repos/{name}/copy",
            apt::copy_packages,
        ),
        operator(Method::POST, "/api/v1/apt/snapshots", apt::create_snapshot),
        viewer(Method::GET, "/api/v1/apt/snapshots", apt::list_snapshots),
        viewer(
            Method::GET,
            "/api/v1/apt/snapshots/{name}",
            apt::show_snapshot,
        ),
        operator(
            Method::DELETE,
            "/api/v1/apt/snapshots/{name}",
            apt::drop_snapshot,
        ),
        viewer(
            Method::GET,
            "/api/v1/apt/snapshots/{name}/diff/{other}",
            apt::diff_snapshots,
        ),
        operator(Method::POST, "/api/v1/apt/publish", apt::publish),
        viewer(Method::GET, "/api/v1/apt/publish", apt::list_publications),
        operator(
            Method::PUT,
            "/api/v1/apt/publish/{prefix}/{distribution}",
            apt::update_publication,
        ),
        operator(
            Method::DELETE,
            "/api/v1/apt/publish/{prefix}/{distribution}",
            apt::drop_publication,
        ),
        admin(Method::POST, "/api/v1/apt/keys", apt::create_key),
        viewer(Method::GET, "/api/v1/apt/keys", apt::list_keys),
        viewer(Method::GET, "/api/v1/apt/keys/public", apt::public_key),
        admin(Method::POST, "/api/v1/apt/db/cleanup", apt::db_cleanup),
        // Runners prove themselves with their own credential (`routes/runners.rs`).
        public(
            Method::POST,
            "/api/v1/runners/register",
            routes::runners::register,
        ),
        public(
            Method::POST,
            "/api/v1/runners/lease",
            routes::runners::lease,
        ),
        public(
            Method::POST,
            "/api/v1/runners/heartbeat",
            routes::runners::heartbeat,
        ),
        public(Method::POST, "/api/v1/runners/logs", routes::runners::logs),
        public(
            Method::POST,
            "/api/v1/runners/finish",
            routes::runners::finish,
        ),
        public(
            Method::GET,
            "/api/v1/runners/workspace/{sha256}",
            routes::runners::workspace_download,
        ),
        public(
            Method::PUT,
            "/api/v1/runners/workspace",
            routes::runners::workspace_upload,
        ),
        viewer(Method::GET, "/api/v1/runners", routes::runners::list),
        admin(
            Method::POST,
            "/api/v1/runners/tokens",
            routes::runners::create_token,
        ),
        viewer(
            Method::GET,
            "/api/v1/runners/jobs",
            routes::runners::queued_jobs,
        ),
        admin(
            Method::POST,
            "/api/v1/runners/{name}/disable",
            routes::runners::disable,
        ),
        admin(
            Method::POST,
            "/api/v1/runners/{name}/enable",
            routes::runners::enable,
        ),
        admin(
            Method::DELETE,
            "/api/v1/runners/{name}",
            routes::runners::remove,
        ),
    ]
}

/// The whole API: routes, authentication, request metrics, JSON errors for
/// unknown routes, and a panic in a handler turned into a 500.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for route in routes() {
        let handler = if route.public {
            route.handler
        } else {
            route
                .handler
                .route_layer(axum::middleware::from_fn_with_state(
                    (state.clone(), route.role),
                    auth::require_role,
                ))
        };
        router = router.route(route.path, handler);
    }
    // Test-only routes that queue runner jobs directly, outside the table.
    #[cfg(debug_assertions)]
    let router = routes::runners::debug::mount(router, &state);
    let api = router.with_state(state.clone());
    // The web UI at `/`: its pages read the API above in-process (`gantry-ui`).
    let ui = ui_session::ui_router(&state, api.clone());
    with_common_layers(api.merge(ui))
}

/// The layers every route gets; separate so tests can wrap their own routes.
fn with_common_layers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(CatchPanicLayer::custom(panic_response))
}

/// Milliseconds since the Unix epoch, the store's clock.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn unknown_route(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route for {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::invalid(format!("method {method} is not allowed on {}", uri.path()))
        .with_status(StatusCode::METHOD_NOT_ALLOWED)
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = %message, "handler panicked");
    ApiError::internal(format!(
        "internal error: the request handler panicked: {message}"
    ))
    .into_response()
}
