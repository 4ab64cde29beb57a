//! One route of the API and the builders the route table (`routes()` in
//! `lib.rs`) is written with: each says the least role the route needs.

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, on};

use crate::{AppState, Role};

/// One route of the API.
pub struct Route {
    pub method: Method,
    /// In axum's and OpenAPI's shared syntax (`/api/v1/pipelines/{name}`).
    pub path: &'static str,
    /// Served without a token.
    pub public: bool,
    /// The least role a token needs (meaningless when `public`).
    pub role: Role,
    pub(crate) handler: MethodRouter<AppState>,
}

pub(crate) fn route<H, T>(role: Role, method: Method, path: &'static str, handler: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    Route {
        handler: on(filter(&method), handler),
        method,
        path,
        public: false,
        role,
    }
}

/// A route any token may use.
pub(crate) fn viewer<H, T>(method: Method, path: &'static str, handler: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    route(Role::Viewer, method, path, handler)
}

/// A route that needs an operator or an admin.
pub(crate) fn operator<H, T>(method: Method, path: &'static str, handler: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    route(Role::Operator, method, path, handler)
}

/// A route that needs an admin.
pub(crate) fn admin<H, T>(method: Method, path: &'static str, handler: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    route(Role::Admin, method, path, handler)
}

impl Route {
    /// Lifts the default 2 MiB body limit, for uploads of package files.
    pub(crate) fn large_body(mut self) -> Route {
        self.handler = self
            .handler
            .layer(axum::extract::DefaultBodyLimit::max(4 << 30));
        self
    }
}

pub(crate) fn public<H, T>(method: Method, path: &'static str, handler: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    Route {
        public: true,
        ..route(Role::Viewer, method, path, handler)
    }
}

fn filter(method: &Method) -> MethodFilter {
    match *method {
        Method::GET => MethodFilter::GET,
        Method::POST => MethodFilter::POST,
        Method::PUT => MethodFilter::PUT,
        Method::PATCH => MethodFilter::PATCH,
        Method::DELETE => MethodFilter::DELETE,
        _ => MethodFilter::OPTIONS,
    }
}
