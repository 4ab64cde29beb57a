//! Checking webhook secrets without leaking, through timing, how much of a guess was right.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// GitHub's `X-Hub-Signature-256: sha256=HEX`, the HMAC-SHA256 of the raw body.
pub(crate) fn github_signature_valid(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_part) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(given) = hex::decode(hex_part) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&given).is_ok()
}

/// A shared token (GitLab's `X-Gitlab-Token`, the generic webhook's secret).
pub(crate) fn token_valid(secret: &str, given: &str) -> bool {
    // Lengths differ → not equal; comparing lengths reveals only the length.
    secret.len() == given.len() && bool::from(secret.as_bytes().ct_eq(given.as_bytes()))
}

/// `sha256=HEX` for `body` under `secret`, as GitHub sends it (tests and benchmarks sign with it).
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac takes any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}
