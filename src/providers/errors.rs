//! Classifying failed responses into the five error kinds of the parse
//! contract, with the message the provider gave and any retry hint.
//!
//! The default rules are HTTP conventions: 401/403 are auth, 429 is a rate
//! limit, 5xx/529 and any HTML page are unavailable, other 4xx are API errors.
//! An HTML body is never read as "token expired": edge pages (Cloudflare,
//! CloudFront, nginx) say nothing about the credential.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Response;
use super::decode::{number, text};

/// The longest provider message we carry, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

/// The longest wait a provider can impose, in seconds (24 h): a
/// `Retry-After` or a reset time in a body beyond it is read as 24 h, so a
/// hostile or broken server cannot block a provider for years.
pub const MAX_RETRY_AFTER_S: u64 = 24 * 60 * 60;

/// Why a fetch did not produce usage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FetchError {
    /// Missing, expired, revoked or under-scoped credentials.
    #[error("{message}")]
    Auth { message: String },
    /// The provider asks us to wait; `retry_after_s` when it says how long.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_s: Option<u64>,
    },
    /// The provider or the network in front of it is failing.
    #[error("{message}")]
    Unavailable { message: String },
    /// Any other error the provider reported.
    #[error("{message}")]
    Api { message: String },
    /// The response is not what the provider sends.
    #[error("{message}")]
    Malformed { message: String },
    /// The provider redirected a request that carries credentials to
    /// another origin (or to plain HTTP, or too often); it was not followed.
    #[error("{message}")]
    Redirected { message: String },
}

/// The error kinds of the parse contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Auth,
    RateLimited,
    Unavailable,
    ApiError,
    Malformed,
    /// A redirect the transport refused to follow with credentials.
    Redirected,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Auth => "auth",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::ApiError => "api_error",
            ErrorKind::Malformed => "malformed",
            ErrorKind::Redirected => "redirected",
        }
    }
}

impl FetchError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            FetchError::Auth { .. } => ErrorKind::Auth,
            FetchError::RateLimited { .. } => ErrorKind::RateLimited,
            FetchError::Unavailable { .. } => ErrorKind::Unavailable,
            FetchError::Api { .. } => ErrorKind::ApiError,
            FetchError::Malformed { .. } => ErrorKind::Malformed,
            FetchError::Redirected { .. } => ErrorKind::Redirected,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            FetchError::Auth { message }
            | FetchError::RateLimited { message, .. }
            | FetchError::Unavailable { message }
            | FetchError::Api { message }
            | FetchError::Malformed { message }
            | FetchError::Redirected { message } => message,
        }
    }

    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            FetchError::RateLimited { retry_after_s, .. } => *retry_after_s,
            _ => None,
        }
    }

    /// An error of `kind` carrying `message`.
    pub fn new(kind: ErrorKind, message: String) -> Self {
        let message = bounded(&message);
        match kind {
            ErrorKind::Auth => FetchError::Auth { message },
            ErrorKind::RateLimited => FetchError::RateLimited {
                message,
                retry_after_s: None,
            },
            ErrorKind::Unavailable => FetchError::Unavailable { message },
            ErrorKind::ApiError => FetchError::Api { message },
            ErrorKind::Malformed => FetchError::Malformed { message },
            ErrorKind::Redirected => FetchError::Redirected { message },
        }
    }

    /// A rate limit keeps its own retry hint (the `Retry-After` header);
    /// lacking one, `fallback` (a hint from the body or other headers)
    /// supplies it, bounded by [`MAX_RETRY_AFTER_S`]. Any other error is
    /// returned unchanged.
    pub(crate) fn or_retry_after(self, fallback: impl FnOnce() -> Option<u64>) -> Self {
        match self {
            FetchError::RateLimited {
                message,
                retry_after_s: None,
            } => FetchError::RateLimited {
                message,
                retry_after_s: fallback().map(|seconds| seconds.min(MAX_RETRY_AFTER_S)),
            },
            other => other,
        }
    }

    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        FetchError::Malformed {
            message: message.into(),
        }
    }
}

/// A failed response, with what the default rules need to classify it.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    pub response: &'a Response<'a>,
    /// The body, when it is JSON.
    pub json: Option<&'a Value>,
    pub now: Timestamp,
}

impl<'a> Failure<'a> {
    pub fn new(response: &'a Response<'a>, json: Option<&'a Value>, now: Timestamp) -> Self {
        Self { response, json, now }
    }

    pub fn status(&self) -> u16 {
        self.response.status
    }

    /// True for an HTML page (by content type or by its first byte).
    pub fn is_html(&self) -> bool {
        let declared = self
            .response
            .header("content-type")
            .is_some_and(|ct| ct.to_ascii_lowercase().contains("text/html"));
        let looks = self
            .response
            .body
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'<');
        self.json.is_none() && (declared || looks)
    }

    /// The kind the HTTP status alone implies.
    pub fn status_kind(&self) -> ErrorKind {
        match self.status() {
            429 => ErrorKind::RateLimited,
            _ if self.is_html() => ErrorKind::Unavailable,
            401 | 403 => ErrorKind::Auth,
            500..=599 => ErrorKind::Unavailable,
            _ => ErrorKind::ApiError,
        }
    }

    /// `http <status>: <provider message>`, bounded in length.
    pub fn message(&self) -> String {
        let detail = match self.json {
            Some(json) => envelope_message(json),
            None if self.is_html() => Some("an HTML error page instead of JSON".to_owned()),
            None if self.response.body.iter().all(u8::is_ascii_whitespace) => None,
            None => Some(format!(
                "a non-JSON body: {}",
                String::from_utf8_lossy(self.response.body).trim()
            )),
        };
        let message = match detail {
            Some(detail) => format!("http {}: {detail}", self.status()),
            None => format!("http {} with an empty body", self.status()),
        };
        bounded(&message)
    }

    /// The `Retry-After` header, as seconds or an HTTP-date relative to
    /// `now`, at most [`MAX_RETRY_AFTER_S`]; a date that has passed is 0
    /// (retry now).
    pub fn retry_after(&self) -> Option<u64> {
        retry_after(self.response.header("retry-after")?, self.now)
    }

    /// The error of `kind` with this response's message and retry hint.
    pub fn error(&self, kind: ErrorKind) -> FetchError {
        let mut error = FetchError::new(kind, self.message());
        if let FetchError::RateLimited { retry_after_s, .. } = &mut error {
            *retry_after_s = self.retry_after();
        }
        error
    }

    /// The default classification: the status kind, message and retry hint.
    pub fn classify(&self) -> FetchError {
        self.error(self.status_kind())
    }
}

/// The error for a 2xx body that is not JSON.
pub(super) fn not_json(response: &Response<'_>, error: &serde_json::Error) -> FetchError {
    let what = if response.body.is_empty() {
        "an empty body".to_owned()
    } else if response.body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<') {
        "an HTML page".to_owned()
    } else {
        format!("a body that is not JSON ({error})")
    };
    FetchError::malformed(format!("http {} with {what}", response.status))
}

/// The error a 2xx body reports in an RPC envelope
/// (`{"error":{"code":<HTTP status as a number>,"message":…}}`, as Google's
/// APIs send); `None` for any other body.
pub(super) fn rpc_body_error(json: &Value) -> Option<FetchError> {
    let code = json
        .get("error")?
        .get("code")?
        .as_u64()
        .filter(|c| (400..600).contains(c))?;
    let message = envelope_message(json).unwrap_or_else(|| "unknown error".to_owned());
    let kind = match code {
        401 => ErrorKind::Auth,
        429 => ErrorKind::RateLimited,
        500.. => ErrorKind::Unavailable,
        _ => ErrorKind::ApiError,
    };
    Some(FetchError::new(kind, format!("error {code} in a 2xx body: {message}")))
}

/// The whole seconds from `now` until `at`, 0 when `at` has passed, at
/// most [`MAX_RETRY_AFTER_S`].
pub(super) fn seconds_until(now: Timestamp, at: Timestamp) -> u64 {
    let wait = at.duration_since(now);
    if wait <= SignedDuration::ZERO {
        0
    } else {
        (wait.as_secs_f64().ceil() as u64).min(MAX_RETRY_AFTER_S)
    }
}

/// A `Retry-After` value (RFC 9110 §10.2.3) read at `now`: delta-seconds
/// (a fraction is rounded up), or an HTTP-date in any of its three forms.
/// The date is read by its day, month, year and time; a weekday that does
/// not match it is ignored, as RFC 9110 §5.6.7 allows. The wait is at most
/// [`MAX_RETRY_AFTER_S`], and 0 for a date that has passed. `None` when
/// the value is neither.
pub fn retry_after(value: &str, now: Timestamp) -> Option<u64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        // A number is delta-seconds; a negative or non-finite one is no wait at all.
        return (seconds.is_finite() && seconds >= 0.0).then(|| seconds.ceil().min(MAX_RETRY_AFTER_S as f64) as u64);
    }
    let at = jiff::fmt::rfc2822::parse(value)
        .ok()
        .map(|zoned| zoned.timestamp())
        .or_else(|| http_date(value, now))
        .or_else(|| super::decode::text_timestamp(value))?;
    Some(seconds_until(now, at))
}

/// An HTTP-date without regard to its weekday: IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 form
/// (`Sunday, 06-Nov-94 08:49:37 GMT`, a two-digit year read as the latest
/// year with those digits no more than 50 years after `now`) and asctime
/// (`Sun Nov  6 08:49:37 1994`).
fn http_date(value: &str, now: Timestamp) -> Option<Timestamp> {
    let (day, month, year, time) = match value.split_once(',') {
        Some((_weekday, rest)) => {
            let mut parts = rest.split_whitespace();
            let date = parts.next()?;
            let (day, month, year) = match date.split('-').collect::<Vec<_>>()[..] {
                [day, month, year] => (day, month, two_digit_year(year, now)?),
                _ => (date, parts.next()?, parts.next()?.parse().ok()?),
            };
            let time = parts.next()?;
            if !matches!(parts.next(), Some("GMT" | "UTC" | "Z") | None) || parts.next().is_some() {
                return None;
            }
            (day, month, year, time)
        }
        None => match value.split_whitespace().collect::<Vec<_>>()[..] {
            [_weekday, month, day, time, year] => (day, month, year.parse().ok()?, time),
            _ => return None,
        },
    };
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))? as i8 + 1;
    let day: i8 = day.parse().ok()?;
    let mut clock = time.split(':').map(|part| part.parse::<i8>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    if clock.next().is_some() {
        return None;
    }
    let date = jiff::civil::Date::new(year, month, day).ok()?;
    let time = jiff::civil::Time::new(hour, minute, second.min(59), 0).ok()?;
    // A real date past the last instant a timestamp holds (the "never"
    // of `31 Dec 9999`) is as far as it gets.
    let at = date
        .to_datetime(time)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_or(Timestamp::MAX, |zoned| zoned.timestamp());
    Some(at)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// RFC 9110 §5.6.7: a two-digit year more than 50 years in the future is
/// the most recent past year with the same last two digits.
fn two_digit_year(text: &str, now: Timestamp) -> Option<i16> {
    let digits: i16 = text.parse().ok()?;
    if text.len() != 2 {
        return (text.len() == 4).then_some(digits);
    }
    let this_year = now.to_zoned(jiff::tz::TimeZone::UTC).year();
    let century = this_year - this_year.rem_euclid(100);
    let year = century + digits;
    Some(if year > this_year + 50 { year - 100 } else { year })
}

/// The human message of the common error envelopes: `{"error":{"message"}}`,
/// `{"error":"…","error_description":"…"}`, `{"message"}`, `{"detail"}`, `{"msg"}`.
pub(super) fn envelope_message(json: &Value) -> Option<String> {
    let error = json.get("error");
    let candidates = [
        error.and_then(|e| e.get("message")),
        json.get("error_description"),
        json.get("message"),
        json.get("detail"),
        json.get("msg"),
        error,
    ];
    candidates.into_iter().flatten().find_map(text).map(|m| bounded(&m))
}

/// A machine code from the common envelopes (`error.type`, `error.code`,
/// `error.status`, `code`, `__type`), as text.
pub(super) fn envelope_code(json: &Value) -> Option<String> {
    let error = json.get("error");
    let candidates = [
        error.and_then(|e| e.get("type")),
        error.and_then(|e| e.get("status")),
        error.and_then(|e| e.get("code")),
        json.get("__type"),
        json.get("code"),
    ];
    candidates
        .into_iter()
        .flatten()
        .find_map(|v| text(v).or_else(|| number(v).map(|n| n.to_string())))
}

/// A provider's words as one line of plain text, at most
/// `MAX_MESSAGE_CHARS` characters: control characters (newlines, terminal
/// escapes, NUL) become spaces and runs of white space one space, so a
/// server cannot forge lines or drive the terminal that shows the error.
fn bounded(message: &str) -> String {
    let message: String = message
        .split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let message = message.as_str();
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_owned(),
    }
}
