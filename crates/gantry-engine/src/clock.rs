//! Wall-clock time as the store records it.

use gantry_store::Millis;

pub fn now() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or_default()
}

/// A duration as people read it in logs and messages (`1m 30s`).
pub fn humanize(duration: std::time::Duration) -> String {
    humantime::format_duration(duration).to_string()
}
