//! Plain aligned text for people.

use std::time::Duration;

use serde_json::Value;

/// Prints rows under headers, columns separated by two spaces.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        println!("{}", out.trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

pub fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// A wire type printed as `--json` prints it: through a `Value`, so that
/// its fields come in the same (sorted) order as a `Value` answer's did.
pub fn print_wire(answer: &impl serde::Serialize) {
    print_json(&serde_json::to_value(answer).unwrap_or_default());
}

/// A text, or "-" when absent.
pub fn dash(text: Option<&str>) -> String {
    text.unwrap_or("-").to_owned()
}

/// A string field, or "-" when absent or null.
pub fn field(value: &Value, name: &str) -> String {
    match value.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".to_owned(),
        Some(other) => other.to_string(),
    }
}

/// The time between two RFC 3339 times, as `1m5s`; "-" if not started,
/// up to now if not ended.
pub fn elapsed(from: Option<&str>, to: Option<&str>) -> String {
    let parse = |time: Option<&str>| time.and_then(|s| humantime::parse_rfc3339(s).ok());
    let Some(start) = parse(from) else {
        return "-".to_owned();
    };
    let end = parse(to).unwrap_or_else(std::time::SystemTime::now);
    let elapsed = end.duration_since(start).unwrap_or_default();
    let rounded = if elapsed < Duration::from_secs(10) {
        Duration::from_millis(elapsed.as_millis() as u64 / 100 * 100)
    } else {
        Duration::from_secs(elapsed.as_secs())
    };
    humantime::format_duration(rounded)
        .to_string()
        .replace(' ', "")
}

/// `2024-05-01T10:00:00.123Z` shown as `2024-05-01 10:00:00`; "-" if absent.
pub fn short(time: Option<&str>) -> String {
    match time {
        Some(s) if s.len() >= 19 => s[..19].replace('T', " "),
        Some(s) => s.to_owned(),
        None => "-".to_owned(),
    }
}

/// What started an execution (its `trigger`), in a few words.
pub fn trigger(trigger: &Value) -> String {
    let kind = trigger.get("type").and_then(Value::as_str).unwrap_or("-");
    match trigger.get("user").and_then(Value::as_str) {
        Some(user) => format!("{kind} ({user})"),
        None => kind.to_owned(),
    }
}
