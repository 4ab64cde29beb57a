//! One module per page. Handlers read the API through [`crate::Api`] and
//! render a template; none changes anything.

pub mod applications;
pub mod execution;
pub mod executions;
pub mod login;
pub mod pipelines;
pub mod settings;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What a URL path segment or query value keeps unescaped (RFC 3986's unreserved).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `s` as one component of a URL path or query.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}
