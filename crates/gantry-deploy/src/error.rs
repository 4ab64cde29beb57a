#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// Bad input: the message names the object and the problem.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The data plane could not be reached or failed.
    #[error("data plane: {0}")]
    Dataplane(String),
    /// A rollout step failed; what was changed has been undone.
    #[error("{0}")]
    Failed(String),
    /// A person rejected the rollout at a judgment between its steps.
    #[error("{0}")]
    Rejected(String),
    #[error("canceled")]
    Canceled,
}
