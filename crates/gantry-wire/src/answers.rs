//! The one-field answers of operations that remove something.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a `DELETE` of a pipeline, a secret or a repository answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Deleted {
    pub deleted: String,
}

/// What dropping an APT repository, snapshot or publication answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Dropped {
    pub dropped: String,
}

/// What revoking a token answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Revoked {
    pub revoked: String,
}

/// What stopping the server's data plane answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DataplaneStopped {
    /// `false` when no data plane was running for the server's data directory.
    pub stopped: bool,
}
