use gantry_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{kind} {id:?} not found")]
    NotFound { kind: &'static str, id: String },
    /// The request cannot be carried out as asked (bad parameters, a stage
    /// that is not waiting, …); the message names the problem.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EngineError {
    pub(crate) fn execution_not_found(id: &str) -> EngineError {
        EngineError::NotFound {
            kind: "execution",
            id: id.to_owned(),
        }
    }
}
