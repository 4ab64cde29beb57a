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

/// Why `gantry run --ref` cannot run a pipeline on that ref. The API answers 400 with it.
#[derive(Debug, thiserror::Error)]
pub enum ManualRefError {
    #[error(
        "pipeline {pipeline:?} has no git trigger: --ref needs a repository to take {reference:?} from"
    )]
    NoGitTrigger { pipeline: String, reference: String },
    #[error("the git trigger names no repository")]
    NoRepository,
    #[error("repository {repository:?} has no branch or tag {reference:?}")]
    NoSuchRef {
        repository: String,
        reference: String,
    },
    /// The repository cannot be opened or listed, or its credentials read.
    #[error("{0}")]
    Repository(String),
}
