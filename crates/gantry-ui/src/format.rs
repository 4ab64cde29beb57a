//! Small text formats the pages share: durations, ages, statuses.

use std::time::{Duration, SystemTime};

use gantry_wire::Status;

/// The symbol shown next to a status word, so that no status is told by
/// colour alone.
pub fn status_symbol(status: Status) -> &'static str {
    match status {
        Status::Pending => "○",
        Status::Running => "▶",
        Status::Waiting => "‖",
        Status::Succeeded => "✓",
        Status::Failed => "✗",
        Status::Canceled => "⊘",
        Status::Skipped => "↷",
    }
}

fn parse(at: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(at).ok()
}

/// How long from `start` to `end` (or until now while it runs): `1m 05s`.
pub fn duration(start: Option<&str>, end: Option<&str>) -> String {
    let Some(start) = start.and_then(parse) else {
        return String::new();
    };
    let end = end.and_then(parse).unwrap_or_else(SystemTime::now);
    short(end.duration_since(start).unwrap_or_default())
}

/// `850ms`, `12s`, `1m 05s`, `2h 03m`, `3d 04h`.
pub fn short(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0 => format!("{}ms", duration.as_millis()),
        1..60 => format!("{secs}s"),
        60..3600 => format!("{}m {:02}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h {:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {:02}h", secs / 86400, secs % 86400 / 3600),
    }
}

/// `2026-12-04 20:41:07` from an RFC 3339 timestamp.
pub fn when(at: &str) -> String {
    at.get(..19).unwrap_or(at).replace('T', " ")
}

/// `2026-12-04 20:41:07` from milliseconds since the epoch.
pub fn when_millis(millis: i64) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(0));
    when(&humantime::format_rfc3339_seconds(at).to_string())
}
