/// Why a webhook delivery was refused. Each maps to one HTTP status in the API.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// A missing or wrong signature or token: 401, nothing started or recorded.
    #[error("{0}")]
    Unauthorized(String),
    /// A payload that cannot be read: 400, naming the field.
    #[error("{0}")]
    Invalid(String),
    /// No trigger listens to this source: 404.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Internal(String),
}

impl From<gantry_store::StoreError> for WebhookError {
    fn from(error: gantry_store::StoreError) -> Self {
        WebhookError::Internal(error.to_string())
    }
}
