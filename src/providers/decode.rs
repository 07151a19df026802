//! Tolerant readers for the value encodings providers use: numbers sent as
//! strings, timestamps as ISO text, dates, epoch seconds or milliseconds
//! (in exponent notation too), and window lengths turned into stable ids.
//!
//! Every reader returns `None` for a value it cannot use; none panics.

use jiff::{SignedDuration, Timestamp, civil::Date, tz::TimeZone};
use serde_json::Value;

/// Epoch numbers below this are seconds, above it milliseconds (the year
/// 2286 in seconds; 1970-04-26 in milliseconds).
const EPOCH_MS_THRESHOLD: f64 = 1e10;

/// The value at `path`, unless it is absent or `null`.
pub fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(value, |node, key| node.get(key))
        .filter(|v| !v.is_null())
}

/// A finite number, from a JSON number or a numeric string (`"75"`, `"9.99"`,
/// `"$3.42"`).
pub fn number(value: &Value) -> Option<f64> {
    let n = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().trim_start_matches('$').parse::<f64>().ok(),
        _ => None,
    };
    n.filter(|n| n.is_finite())
}

/// A number at `path`.
pub fn number_at(value: &Value, path: &[&str]) -> Option<f64> {
    at(value, path).and_then(number)
}

/// Non-empty text.
pub fn text(value: &Value) -> Option<String> {
    value
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Non-empty text at `path`.
pub fn text_at(value: &Value, path: &[&str]) -> Option<String> {
    at(value, path).and_then(text)
}

/// A boolean at `path` (absent is `None`).
pub fn bool_at(value: &Value, path: &[&str]) -> Option<bool> {
    at(value, path).and_then(Value::as_bool)
}

/// The elements of an array at `path`; empty when it is absent or no array.
pub fn array_at<'a>(value: &'a Value, path: &[&str]) -> &'a [Value] {
    at(value, path).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// A point in time from any encoding a provider uses: RFC 3339 text (any
/// offset, any fraction), a `YYYY-MM-DD` date (midnight UTC), or an epoch
/// number of seconds or milliseconds, as a number or as text.
pub fn timestamp(value: &Value) -> Option<Timestamp> {
    match value {
        Value::String(s) => {
            let s = s.trim();
            s.parse::<Timestamp>()
                .ok()
                .or_else(|| date_midnight_utc(s))
                .or_else(|| s.parse::<f64>().ok().and_then(epoch))
        }
        Value::Number(_) => number(value).and_then(epoch),
        _ => None,
    }
}

/// A timestamp at `path`.
pub fn timestamp_at(value: &Value, path: &[&str]) -> Option<Timestamp> {
    at(value, path).and_then(timestamp)
}

/// Epoch seconds or milliseconds, told apart by magnitude.
pub fn epoch(n: f64) -> Option<Timestamp> {
    if !n.is_finite() {
        return None;
    }
    let seconds = if n.abs() < EPOCH_MS_THRESHOLD { n } else { n / 1000.0 };
    SignedDuration::try_from_secs_f64(seconds)
        .ok()
        .and_then(|d| Timestamp::from_duration(d).ok())
}

/// `now` plus a relative number of seconds.
pub fn after(now: Timestamp, seconds: f64) -> Option<Timestamp> {
    SignedDuration::try_from_secs_f64(seconds)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
}

/// Midnight UTC of a `YYYY-MM-DD` date.
fn date_midnight_utc(s: &str) -> Option<Timestamp> {
    let date: Date = s.parse().ok()?;
    date.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp())
}

/// Midnight UTC on the first day of the month after `now`'s (Copilot's
/// calendar reset when the response does not say).
pub fn next_month_start_utc(now: Timestamp) -> Option<Timestamp> {
    let today = now.to_zoned(TimeZone::UTC).date();
    let first = today.first_of_month().checked_add(jiff::Span::new().months(1)).ok()?;
    first.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp())
}

/// The stable id of a window of `seconds`: `5h`, `7d`, `30d`, `90m`, `45s`.
pub fn window_id(seconds: u64) -> String {
    const DAY: u64 = 86_400;
    const HOUR: u64 = 3_600;
    match seconds {
        0 => "0s".to_owned(),
        s if s % DAY == 0 => format!("{}d", s / DAY),
        s if s % HOUR == 0 => format!("{}h", s / HOUR),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A positive whole number of seconds, if `n` is one.
pub fn whole_seconds(n: f64) -> Option<u64> {
    (1.0..1e12).contains(&n).then(|| n.round() as u64)
}

/// A lowercase id fragment: runs of anything but letters, digits and `.`
/// become one `-` (`"GPT-5.3-Codex-Spark"` → `gpt-5.3-codex-spark`).
pub fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() || c == '.' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}
