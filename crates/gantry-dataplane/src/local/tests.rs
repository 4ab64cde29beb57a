use gantry_deploy::DeployError;

use super::older_dataplane;
use crate::protocol::{BAD_REQUEST, Request};

/// A data plane started by an older binary answers a request it does not know as it answers
/// any line it cannot read; only that answer makes the server read `Status` instead.
#[test]
fn only_an_unknown_request_counts_as_an_older_data_plane() {
    let unknown = serde_json::from_str::<Request>(r#"{"op":"fromANewerServer"}"#).unwrap_err();
    assert!(older_dataplane(&DeployError::Invalid(format!(
        "{BAD_REQUEST}{unknown}"
    ))));
    let malformed = serde_json::from_str::<Request>(r#"{"op":"destroy"}"#).unwrap_err();
    assert!(!older_dataplane(&DeployError::Invalid(format!(
        "{BAD_REQUEST}{malformed}"
    ))));
    assert!(!older_dataplane(&DeployError::NotFound(format!(
        "{BAD_REQUEST}unknown variant"
    ))));
}
