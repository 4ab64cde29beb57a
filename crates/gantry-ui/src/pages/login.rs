//! `/login`: a form taking an API token. `gantry-api` handles its `POST`
//! (checks the token, opens the session, sets the cookie) and renders this
//! page again with the problem when it refuses.

use askama::Template;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::assets;
use crate::session::Session;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    css: String,
    next: &'a str,
    error: Option<&'a str>,
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    pub next: Option<String>,
}

pub async fn show(
    session: Option<axum::Extension<Session>>,
    Query(query): Query<LoginQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref());
    if session.is_some() {
        return Redirect::to(next).into_response();
    }
    login_page(next, None, StatusCode::OK)
}

/// The sign-in page, with `error` when a sign-in was refused; `next` is where
/// a successful one goes.
pub fn login_page(next: &str, error: Option<&str>, status: StatusCode) -> Response {
    let page = LoginPage {
        css: assets::url("ui.css"),
        next: safe_next(Some(next)),
        error,
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// A path on this server to go to after signing in: anything else (another
/// origin, `//host`, `/\host`) goes to `/`, so the form cannot be used to
/// send someone elsewhere.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => n,
        _ => "/",
    }
}
