use gantry_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the registration token is unknown, expired or used up")]
    TokenRefused,
    /// A credential that is wrong or whose runner is disabled or removed;
    /// `runner` names it when the credential says who it claims to be.
    #[error("runner credential refused{}: {why}", runner.as_ref().map(|r| format!(" for runner {r:?}")).unwrap_or_default())]
    CredentialRefused { runner: Option<String>, why: String },
    #[error("a runner named {0:?} already exists: remove it first or choose another name")]
    NameTaken(String),
    #[error("no runner named {0:?}")]
    NoSuchRunner(String),
    #[error("no job {0:?}")]
    NoSuchJob(String),
    #[error("lease {0:?} is not held by this runner any more (expired, canceled or finished)")]
    LeaseGone(String),
    #[error("{0}")]
    Invalid(String),
    #[error("runner protocol version {theirs} is not spoken by this server (it speaks {ours})")]
    Protocol { theirs: String, ours: u32 },
}
