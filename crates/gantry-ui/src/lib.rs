//! Gantry's web UI: pages rendered on the server, with small hand-written
//! ES modules for what changes live (an execution's graph and logs, over the
//! API's server-sent events) and for the buttons that act.
//!
//! The UI is no second API. A page reads the API itself: [`Api`] sends the
//! request in-process through the API's own router, carrying the browser's
//! session cookie, and reads the answer into the `gantry-wire` types the CLI
//! reads; so the API's route table decides what a page may show. Buttons
//! `fetch` the API's routes from the browser with the cookie and a CSRF
//! token. Signing in and out, the session cookie and the CSRF check live in
//! `gantry-api`, which mounts [`router`] at `/` and hands every page request
//! its [`Session`] as a request extension.
//!
//! Assets (CSS and scripts) are embedded in the binary and served under a
//! path holding a hash of their content, cached for a year.

#![forbid(unsafe_code)]

mod api_client;
mod assets;
mod canary_chart;
mod error;
mod format;
mod graph;
mod layout;
mod pages;
mod session;

pub use api_client::Api;
pub use assets::{ASSET_PREFIX, shipped_gzip_bytes};
pub use pages::login::{login_page, safe_next};
pub use session::{Access, CSRF_HEADER, SESSION_COOKIE, Session};

use axum::Router;
use axum::response::Redirect;
use axum::routing::get;

/// The UI's pages and assets, to be merged into the server's router. Every
/// page but `/login` and the assets needs a [`Session`] extension; without
/// one it redirects to `/login`.
pub fn router(api: Api) -> Router {
    use pages::{applications, execution, executions, login, pipelines, settings};
    Router::new()
        .route("/", get(|| async { Redirect::to("/pipelines") }))
        .route("/login", get(login::show))
        .route("/pipelines", get(pipelines::list))
        .route("/pipelines/{name}", get(pipelines::show))
        .route("/executions", get(executions::list))
        .route("/executions/{id}", get(execution::show))
        .route("/executions/{id}/live", get(execution::live_fragment))
        .route("/executions/{id}/log.txt", get(execution::download_log))
        .route("/applications", get(applications::list))
        .route("/clusters/{name}", get(applications::cluster))
        .route("/clusters/{name}/live", get(applications::cluster_fragment))
        .route("/triggers", get(settings::triggers))
        .route("/repositories", get(settings::repositories))
        .route("/tokens", get(settings::tokens))
        .route(
            &format!("{ASSET_PREFIX}{{version}}/{{file}}"),
            get(assets::serve),
        )
        .with_state(api)
}
