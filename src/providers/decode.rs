//! Tolerant readers for the value encodings providers use: numbers sent as
//! strings, timestamps as ISO text (with or without a zone; none is UTC),
//! dates, epoch seconds or milliseconds (in exponent notation too), and
//! window lengths turned into stable ids.
//!
//! Every reader returns `None` for a value it cannot use; none panics.

use jiff::civil::{Date, DateTime};
use jiff::{SignedDuration, Timestamp, tz::TimeZone};
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
/// offset, any fraction), ISO text with no zone (read as UTC, time of day
/// kept: `2026-06-01T12:00:00.123456`, `2026-06-01 12:00`), a `YYYY-MM-DD`
/// date (midnight UTC), or an epoch number of seconds or milliseconds, as a
/// number or as text.
pub fn timestamp(value: &Value) -> Option<Timestamp> {
    match value {
        Value::String(s) => text_timestamp(s),
        Value::Number(_) => number(value).and_then(epoch),
        _ => None,
    }
}

/// A point in time from text; see [`timestamp`].
pub fn text_timestamp(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_TIMESTAMP_TEXT {
        return None;
    }
    let text = trim_fraction(text);
    let (text, utc_named) = strip_utc_name(&text);
    if !utc_named && let Ok(at) = text.parse::<Timestamp>() {
        return Some(at);
    }
    if let Ok(naive) = text.parse::<DateTime>() {
        return naive.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp());
    }
    if utc_named {
        return None;
    }
    date_midnight_utc(text).or_else(|| text.parse::<f64>().ok().and_then(epoch))
}

/// Longer text is no timestamp (the longest real one, with offset, a
/// nine-digit fraction and a zone annotation, is well below this).
const MAX_TIMESTAMP_TEXT: usize = 64;

/// The text with a fraction of seconds cut to the nine digits a timestamp
/// holds (`12:00:00.123456789012` → `12:00:00.123456789`); a fraction's
/// digits past nanoseconds carry no time a reset can show.
fn trim_fraction(text: &str) -> std::borrow::Cow<'_, str> {
    const MAX_DIGITS: usize = 9;
    let bytes = text.as_bytes();
    let Some(dot) = bytes.iter().enumerate().position(|(i, b)| {
        matches!(b, b'.' | b',') && i > 0 && bytes[i - 1].is_ascii_digit() && text[..i].contains(':')
    }) else {
        return text.into();
    };
    let digits = bytes[dot + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits <= MAX_DIGITS {
        return text.into();
    }
    let keep = dot + 1 + MAX_DIGITS;
    format!("{}{}", &text[..keep], &text[dot + 1 + digits..]).into()
}

/// The text without a trailing ` UTC`/`GMT` zone name, and whether it had
/// one (such text is UTC wall-clock time, not RFC 3339).
fn strip_utc_name(text: &str) -> (&str, bool) {
    for name in ["UTC", "GMT"] {
        if let Some(head) = text
            .len()
            .checked_sub(name.len())
            .filter(|&at| text.is_char_boundary(at) && text[at..].eq_ignore_ascii_case(name))
            .map(|at| text[..at].trim_end())
            .filter(|head| head.ends_with(|c: char| c.is_ascii_digit()))
        {
            return (head, true);
        }
    }
    (text, false)
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
    let millis = n.abs() >= EPOCH_MS_THRESHOLD;
    if n.fract() == 0.0 && n.abs() < 1e15 {
        // Whole numbers exactly, without a float division's rounding.
        let whole = n as i64;
        let exact = if millis {
            Timestamp::from_millisecond(whole)
        } else {
            Timestamp::from_second(whole)
        };
        return exact.ok();
    }
    let seconds = if millis { n / 1000.0 } else { n };
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

/// Midnight UTC of a `YYYY-MM-DD` date. Text with a time of day is not a
/// date: its time is never dropped.
fn date_midnight_utc(s: &str) -> Option<Timestamp> {
    if s.contains([':', 'T', 't', ' ']) {
        return None;
    }
    let date: Date = s.parse().ok()?;
    date.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp())
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(text: &str) -> Option<String> {
        timestamp(&json!(text)).map(|at| at.to_string())
    }

    #[test]
    fn text_without_a_zone_is_utc_and_keeps_its_time_of_day() {
        let cases = [
            ("2026-06-01T12:00:00.123456", "2026-06-01T12:00:00.123456Z"),
            ("2026-06-01T12:00:00", "2026-06-01T12:00:00Z"),
            ("2026-06-01 12:00:00", "2026-06-01T12:00:00Z"),
            ("2026-06-01 12:00:00.5", "2026-06-01T12:00:00.5Z"),
            ("2026-06-01T12:00:00.123", "2026-06-01T12:00:00.123Z"),
            ("2026-06-01T12:00:00.123456789", "2026-06-01T12:00:00.123456789Z"),
            ("2026-06-01T12:00:00.123456789012", "2026-06-01T12:00:00.123456789Z"),
            ("2026-06-01T12:00:00,25", "2026-06-01T12:00:00.25Z"),
            ("2026-06-01T12:00", "2026-06-01T12:00:00Z"),
            ("2026-06-01t23:59:59", "2026-06-01T23:59:59Z"),
            ("  2026-06-01T12:00:00  ", "2026-06-01T12:00:00Z"),
            ("2026-06-01 12:00:00 UTC", "2026-06-01T12:00:00Z"),
            ("2026-06-01T12:00:00.5GMT", "2026-06-01T12:00:00.5Z"),
        ];
        for (text, expect) in cases {
            assert_eq!(read(text).as_deref(), Some(expect), "{text}");
        }
    }

    #[test]
    fn text_with_a_zone_keeps_its_offset() {
        let cases = [
            ("2026-06-01T12:00:00.418213+00:00", "2026-06-01T12:00:00.418213Z"),
            ("2026-06-01T12:00:00Z", "2026-06-01T12:00:00Z"),
            ("2026-06-01T12:00:00.000Z", "2026-06-01T12:00:00Z"),
            ("2026-06-01T14:00:00+02:00", "2026-06-01T12:00:00Z"),
            ("2026-06-01T07:00:46-05:00", "2026-06-01T12:00:46Z"),
            ("2026-06-01 12:00:00+00:00", "2026-06-01T12:00:00Z"),
            (
                "2026-06-01T12:00:00.123456789012+00:00",
                "2026-06-01T12:00:00.123456789Z",
            ),
        ];
        for (text, expect) in cases {
            assert_eq!(read(text).as_deref(), Some(expect), "{text}");
        }
    }

    #[test]
    fn dates_and_epochs_keep_their_meaning() {
        assert_eq!(read("2026-09-01").as_deref(), Some("2026-09-01T00:00:00Z"));
        assert_eq!(read("1787905486").as_deref(), Some("2026-08-28T08:24:46Z"));
        assert_eq!(read("1787905486997").as_deref(), Some("2026-08-28T08:24:46.997Z"));
        let number = |n: Value| timestamp(&n).map(|at| at.to_string());
        assert_eq!(number(json!(1787905486)).as_deref(), Some("2026-08-28T08:24:46Z"));
        assert_eq!(number(json!(1.7882208e9)).as_deref(), Some("2026-09-01T00:00:00Z"));
    }

    #[test]
    fn a_time_that_is_not_one_is_no_timestamp_rather_than_midnight() {
        for text in [
            "",
            "   ",
            "soon",
            "2026-06-01T25:00:00",
            "2026-06-01 12:61",
            "2026-13-01",
            "2026-06-01T12:00:00+99:00",
            "UTC",
            "2026-06-01T12:00:00.",
            &"9".repeat(200),
            &format!("2026-06-01T12:00:00.{}", "1".repeat(100)),
        ] {
            assert_eq!(read(text), None, "{text:?}");
        }
    }
}
