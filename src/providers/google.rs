//! What Gemini and Antigravity share: Google's Cloud Code RPC error envelope
//! (`{"error":{"code","message","status","details"}}`) and its retry hints,
//! and the meaning of a missing `remainingFraction`.

use jiff::Timestamp;
use serde_json::Value;

use super::decode::{array_at, at, number, text_at, timestamp};
use super::errors::{ErrorKind, Failure, FetchError, seconds_until};

/// The Cloud Code origin both Gemini and Antigravity ask.
pub const ORIGIN: &str = "https://cloudcode-pa.googleapis.com";

/// Reasons in a 403 that mean "this account or client cannot use the
/// service", which a new login does not fix.
const NOT_AUTH_403: [&str; 3] = ["UNSUPPORTED_CLIENT", "no longer supported", "SECURITY_POLICY_VIOLATED"];

/// Classifies a Cloud Code failure: 403s about the client or a security
/// policy are API errors, not auth; 429 retry hints come from the body's
/// `RetryInfo`, `quotaResetDelay` or `quotaResetTimeStamp` when the header
/// has none.
pub fn classify(failure: &Failure<'_>) -> FetchError {
    let Some(json) = failure.json else {
        return failure.classify();
    };
    let kind = match failure.status_kind() {
        ErrorKind::Auth if failure.status() == 403 && mentions_any(json, &NOT_AUTH_403) => ErrorKind::ApiError,
        kind => kind,
    };
    failure
        .error(kind)
        .or_retry_after(|| body_retry_after(json, failure.now))
}

/// The earliest retry hint in the error's `details`.
fn body_retry_after(json: &Value, now: Timestamp) -> Option<u64> {
    array_at(json, &["error", "details"])
        .iter()
        .filter_map(|detail| {
            let delay = text_at(detail, &["retryDelay"])
                .or_else(|| text_at(detail, &["metadata", "quotaResetDelay"]))
                .and_then(|d| duration_seconds(&d));
            delay.or_else(|| {
                at(detail, &["metadata", "quotaResetTimeStamp"])
                    .and_then(timestamp)
                    .map(|reset| seconds_until(now, reset))
            })
        })
        .min()
}

/// Google's duration text (`"0.976s"`, `"1500ms"`), rounded up to seconds.
fn duration_seconds(text: &str) -> Option<u64> {
    let text = text.trim();
    let seconds = if let Some(ms) = text.strip_suffix("ms") {
        ms.parse::<f64>().ok()? / 1000.0
    } else {
        text.strip_suffix('s')?.parse::<f64>().ok()?
    };
    (seconds.is_finite() && seconds >= 0.0).then(|| seconds.ceil() as u64)
}

/// True when the error's message, status or a detail's reason mentions one
/// of `needles`.
fn mentions_any(json: &Value, needles: &[&str]) -> bool {
    let mut haystack = [&["error", "message"][..], &["error", "status"]]
        .iter()
        .filter_map(|path| text_at(json, path))
        .collect::<Vec<_>>();
    haystack.extend(
        array_at(json, &["error", "details"])
            .iter()
            .filter_map(|d| text_at(d, &["reason"])),
    );
    haystack
        .iter()
        .any(|text| needles.iter().any(|needle| text.contains(needle)))
}

/// The remaining fraction of a quota entry. Proto3 drops zero values, so a
/// missing fraction beside a reset time means exhausted (0); missing with no
/// reset time means unknown (`None`), and so does a fraction that is there
/// but not a number.
pub fn remaining_fraction(entry: &Value) -> Option<f64> {
    match at(entry, &["remainingFraction"]) {
        Some(fraction) => number(fraction),
        None => at(entry, &["resetTime"]).map(|_| 0.0),
    }
}

/// True for the epoch-0 reset Google uses to mark an unavailable model.
pub fn is_unavailable(entry: &Value) -> bool {
    at(entry, &["resetTime"])
        .and_then(timestamp)
        .is_some_and(|t| t.as_second() <= 0)
}

/// The reset time of a quota entry; the 1970 sentinel is no reset.
pub fn reset_time(entry: &Value) -> Option<Timestamp> {
    at(entry, &["resetTime"])
        .and_then(timestamp)
        .filter(|t| t.as_second() > 0)
}
