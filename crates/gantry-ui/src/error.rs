//! What a page answers when the API refused it or failed: the API's own
//! message, in a page, with the API's status.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// The API said no (its status and message), or its answer was unreadable.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error("{message}")]
    Api { status: StatusCode, message: String },
    #[error("the API's answer to {uri} could not be read: {detail}")]
    Unreadable { uri: String, detail: String },
    #[error("the page could not be rendered: {0}")]
    Render(#[from] askama::Error),
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: String,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = match &self {
            UiError::Api { status, .. } => *status,
            UiError::Unreadable { .. } | UiError::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "page failed");
        }
        let page = ErrorPage {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("error"),
            message: self.to_string(),
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, self.to_string()).into_response(),
        }
    }
}

pub type PageResult = Result<Response, UiError>;

/// A rendered template as an HTML answer.
pub fn html(template: &impl Template) -> PageResult {
    Ok(Html(template.render()?).into_response())
}

/// A part of a page that a script fetches again and again: never cached.
pub fn fragment(template: &impl Template) -> PageResult {
    let mut response = html(template)?;
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}
