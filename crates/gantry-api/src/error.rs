//! The one error type of the API: an HTTP status, a machine-readable `code`
//! and a message naming the problem, sent as
//! `{"error": MESSAGE, "code": CODE, "diagnostics": [...]}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gantry_engine::EngineError;
use gantry_store::StoreError;
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Code,
    pub message: String,
    /// Validation problems with their positions, when the input was a file.
    pub diagnostics: Option<serde_json::Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    NotFound,
    Invalid,
    Unauthorized,
    Forbidden,
    Conflict,
    /// Refused for lack of capacity (503): the client may come back.
    Unavailable,
    Internal,
}

impl ApiError {
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, Code::NotFound, message)
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, Code::Invalid, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, Code::Unauthorized, message)
    }

    /// A valid token whose role is too low.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, Code::Forbidden, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, Code::Conflict, message)
    }

    /// Refused for lack of capacity; the caller adds `Retry-After`.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, Code::Unavailable, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, Code::Internal, message)
    }

    pub fn with_diagnostics(mut self, diagnostics: serde_json::Value) -> ApiError {
        self.diagnostics = Some(diagnostics);
        self
    }

    /// Keeps the code and message but answers with another status (413 for a
    /// body that is too large, …).
    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = status;
        self
    }

    fn new(status: StatusCode, code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            diagnostics: None,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    code: Code,
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnostics: Option<&'a serde_json::Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.code == Code::Internal {
            tracing::error!(error = %self.message, "internal error");
        }
        let body = Body {
            error: &self.message,
            code: self.code,
            diagnostics: self.diagnostics.as_ref(),
        };
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound { .. } => ApiError::not_found(e.to_string()),
            StoreError::Conflict { .. } => ApiError::conflict(e.to_string()),
            _ => ApiError::internal(e.to_string()),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        match e {
            EngineError::NotFound { .. } => ApiError::not_found(e.to_string()),
            EngineError::Invalid(message) => ApiError::invalid(message),
            EngineError::Store(e) => e.into(),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
