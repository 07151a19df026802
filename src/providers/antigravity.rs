//! Google Antigravity through `POST v1internal:fetchAvailableModels`, and
//! the newer `retrieveUserQuotaSummary` pools when a body has that shape.
//!
//! `models` is a map keyed by model id with a 0–1 **remaining** fraction per
//! model. A missing fraction beside a reset time means exhausted; missing
//! with no reset means unknown, and no window is made. Internal models and
//! the tab-completion model are not quotas users spend. The summary shape
//! has two pools (Gemini, Claude and other models) × two windows (5 h,
//! weekly), possibly wrapped in `{"response": …}` and with the fraction in
//! any of three encodings. Buckets without a `window` field are known by
//! their id or display name (`gemini-5h`, `3p-weekly`, `5-hour`); a bucket
//! that is none of the pools keeps its own name as its id.

use jiff::Timestamp;
use serde_json::Value;

use super::decode::{array_at, at, bool_at, number, number_at, slug, text, text_at, whole_seconds, window_id};
use super::errors::Failure;
use super::google;
use super::{FetchError, Provider, ProviderId, Reading, RequestSpec, Response};
use crate::quota::{Aggregation, Length, QuotaDefinition, UsageSnapshot, WindowType};

pub const PROVIDER: Provider =
    Provider::new(ProviderId::Antigravity, "Antigravity", REQUEST, quotas, read).with_classify(classify);

const REQUEST: RequestSpec = RequestSpec::post(google::ORIGIN, "/v1internal:fetchAvailableModels", &HEADERS, "{}")
    .with_body_fields(&[("project", "project")]);

const HEADERS: [(&str, &str); 4] = [
    ("content-type", "application/json"),
    ("user-agent", "antigravity/1.11.5 linux/amd64"),
    ("x-goog-api-client", "google-cloud-sdk vscode_cloudshelleditor/0.1"),
    (
        "client-metadata",
        r#"{"ideType":"IDE_UNSPECIFIED","platform":"PLATFORM_UNSPECIFIED","pluginType":"GEMINI"}"#,
    ),
];

/// The length of a per-model quota's window (5 h).
const MODEL_WINDOW_SECONDS: u64 = 18_000;

/// Models listed but not metered for the user.
const HIDDEN_MODELS: [&str; 1] = ["tab_flash_lite_preview"];

fn quotas() -> Vec<QuotaDefinition> {
    vec![
        // A pool bucket states its length (its `window`, id or name); one
        // that states none has no known length.
        QuotaDefinition::rolling_percent("pool"),
        // Per-model quotas refill five hours after use starts, as the 5 h
        // pools of the quota summary that took their place do; the
        // response gives only the reset.
        QuotaDefinition::per_model("model", WindowType::Rolling, Aggregation::Individual).with_length(
            Length::Seconds {
                seconds: MODEL_WINDOW_SECONDS,
            },
        ),
    ]
}

fn read(body: &Value, _response: &Response<'_>, _now: Timestamp) -> Result<Reading, FetchError> {
    let body = at(body, &["response"]).unwrap_or(body);
    let mut snapshots = pool_windows(body);
    snapshots.extend(model_windows(body));
    Ok(Reading { plan: None, snapshots })
}

fn classify(failure: &Failure<'_>) -> FetchError {
    google::classify(failure)
}

/// One window per metered model of the `models` map, sorted by id.
fn model_windows(body: &Value) -> Vec<UsageSnapshot> {
    let Some(models) = at(body, &["models"]).and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut snapshots: Vec<_> = models
        .iter()
        .filter(|(id, entry)| {
            bool_at(entry, &["isInternal"]) != Some(true)
                && !HIDDEN_MODELS.iter().any(|hidden| id.eq_ignore_ascii_case(hidden))
        })
        .filter_map(|(id, entry)| {
            let quota = at(entry, &["quotaInfo"])?;
            let fraction = google::remaining_fraction(quota)?;
            let label = text_at(entry, &["displayName"]).unwrap_or_else(|| id.clone());
            Some(
                UsageSnapshot::of("model")
                    .window(id.clone(), label)
                    .model(id.clone())
                    .remaining_fraction(fraction)
                    .resets_at(google::reset_time(quota)),
            )
        })
        .collect();
    snapshots.sort_by(|a, b| a.window.cmp(&b.window));
    snapshots
}

/// The quota-summary pools: `5h-gemini`, `7d-gemini`, `5h-3p`, `7d-3p`.
///
/// A bucket's length is its `window` when that names one, else what its
/// `bucketId` or `displayName` says (`gemini-5h`, `3p-weekly`, `5-hour`,
/// `Weekly`, `session`); a window naming no length on a bucket that is no
/// pool leaves the bucket out. Its pool is what its id, its group's name or
/// its own display name says (Gemini, or Claude and other third-party
/// models). A bucket whose name says more than pool and length
/// (`gemini-image-5h`), or no length at all, is another quota: its id is its
/// own name, slugged.
fn pool_windows(body: &Value) -> Vec<UsageSnapshot> {
    let mut snapshots = Vec::new();
    for group in array_at(body, &["groups"]) {
        let group_name = text_at(group, &["displayName"]);
        for bucket in array_at(group, &["buckets"]) {
            let (Some(window), Some(fraction)) =
                (bucket_window(bucket, group_name.as_deref()), summary_fraction(bucket))
            else {
                continue;
            };
            snapshots.push(
                window
                    .remaining_fraction(fraction)
                    .resets_at(google::reset_time(bucket)),
            );
        }
    }
    snapshots
}

/// The window of one summary bucket (id, label, length), before its numbers.
fn bucket_window(bucket: &Value, group_name: Option<&str>) -> Option<UsageSnapshot> {
    let bucket_id = text_at(bucket, &["bucketId"]);
    let display = text_at(bucket, &["displayName"]);
    let id_says = bucket_id.as_deref().map(BucketName::read);
    let display_says = display.as_deref().map(BucketName::read);
    let group_says = group_name.map(BucketName::read);
    // `None`: no window (or an empty one); `Some(None)`: one that names no length.
    let given = at(bucket, &["window"]).filter(|w| w.as_str().is_none_or(|s| !s.trim().is_empty()));
    let stated = given.map(|window| {
        number(window)
            .and_then(whole_seconds)
            .or_else(|| text(window).and_then(|w| BucketName::read(&w).seconds))
    });
    let named = id_says
        .and_then(|n| n.seconds)
        .or_else(|| display_says.and_then(|n| n.seconds));
    let seconds = stated.flatten().or(named);
    let pool = [id_says, group_says, display_says]
        .into_iter()
        .flatten()
        .find_map(|n| n.pool);
    let own_name = bucket_id.as_deref().or(display.as_deref());
    let own_says = if bucket_id.is_some() { id_says } else { display_says };
    let is_pool = seconds.is_some() && own_says.is_none_or(|n| !n.other);
    if !is_pool && stated == Some(None) {
        // An explicit window naming no length, on a bucket that is no pool:
        // nothing says what it measures.
        return None;
    }
    let window = UsageSnapshot::of("pool").window_seconds(seconds);
    match (is_pool, seconds) {
        (true, Some(seconds)) => {
            let length = window_id(seconds);
            let (id, pool_label) = match pool {
                Some(pool) => (format!("{length}-{}", pool.id()), pool.label()),
                None => (length.clone(), ""),
            };
            let name = group_name.unwrap_or(pool_label);
            let label = if name.is_empty() {
                length
            } else {
                format!("{name} {length}")
            };
            Some(window.window(id, label))
        }
        _ => {
            let own_name = own_name?;
            let id = Some(slug(own_name)).filter(|id| !id.is_empty())?;
            Some(window.window(id, display.as_deref().unwrap_or(own_name)))
        }
    }
}

/// The two pools of the quota summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pool {
    Gemini,
    ThirdParty,
}

impl Pool {
    fn id(self) -> &'static str {
        match self {
            Pool::Gemini => "gemini",
            Pool::ThirdParty => "3p",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Pool::Gemini => "Gemini models",
            Pool::ThirdParty => "Claude and other models",
        }
    }
}

/// What a bucket's id, display name or window says: a length, a pool, and
/// whether it says anything else (then it is not one of the pools).
#[derive(Debug, Clone, Copy, Default)]
struct BucketName {
    seconds: Option<u64>,
    pool: Option<Pool>,
    other: bool,
}

/// Words that name a pool.
const POOL_WORDS: [(&str, Pool); 10] = [
    ("gemini", Pool::Gemini),
    ("google", Pool::Gemini),
    ("3p", Pool::ThirdParty),
    ("thirdparty", Pool::ThirdParty),
    ("third", Pool::ThirdParty),
    ("claude", Pool::ThirdParty),
    ("anthropic", Pool::ThirdParty),
    ("other", Pool::ThirdParty),
    ("others", Pool::ThirdParty),
    ("gpt", Pool::ThirdParty),
];

/// Words that say nothing about which quota a bucket is.
const FILLER_WORDS: [&str; 16] = [
    "limit", "limits", "quota", "quotas", "bucket", "buckets", "window", "model", "models", "and", "usage", "rolling",
    "pool", "party", "family", "tier",
];

/// Unit words and their seconds (`5 hour`, `5h`, `7-day`, `weekly`).
const UNITS: [(&str, u64); 21] = [
    ("h", 3_600),
    ("hr", 3_600),
    ("hrs", 3_600),
    ("hour", 3_600),
    ("hours", 3_600),
    ("hourly", 3_600),
    ("d", 86_400),
    ("day", 86_400),
    ("days", 86_400),
    ("daily", 86_400),
    ("w", 604_800),
    ("wk", 604_800),
    ("week", 604_800),
    ("weeks", 604_800),
    ("weekly", 604_800),
    ("min", 60),
    ("mins", 60),
    ("minute", 60),
    ("minutes", 60),
    ("month", 2_592_000),
    ("monthly", 2_592_000),
];

/// Words for lengths that carry no number.
const LENGTH_WORDS: [(&str, u64); 7] = [
    ("session", 18_000),
    ("hourly", 3_600),
    ("daily", 86_400),
    ("day", 86_400),
    ("weekly", 604_800),
    ("week", 604_800),
    ("monthly", 2_592_000),
];

/// Numbers written as words (`five-hour`).
const NUMBER_WORDS: [(&str, u64); 10] = [
    ("one", 1),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("twelve", 12),
    ("thirty", 30),
];

impl BucketName {
    /// Reads a name word by word (runs of letters and digits); linear in its
    /// length.
    fn read(name: &str) -> BucketName {
        let lower = name.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        let mut said = BucketName::default();
        let mut index = 0;
        while index < words.len() {
            let word = words[index];
            index += 1;
            let unit_after = words.get(index).and_then(|next| unit_seconds(next));
            let length = match (count(word), unit_after) {
                (Some(n), Some(unit)) => {
                    index += 1;
                    Some(n.saturating_mul(unit))
                }
                _ => compact_length(word).or_else(|| lookup(&LENGTH_WORDS, word)),
            };
            if let Some(length) = length {
                said.seconds = said.seconds.or(Some(length));
            } else if let Some(pool) = lookup(&POOL_WORDS, word) {
                said.pool = said.pool.or(Some(pool));
            } else if !FILLER_WORDS.contains(&word) {
                said.other = true;
            }
        }
        said
    }
}

/// The entry for `word` in a table of words.
fn lookup<T: Copy>(table: &[(&str, T)], word: &str) -> Option<T> {
    table.iter().find(|(w, _)| *w == word).map(|(_, value)| *value)
}

fn unit_seconds(word: &str) -> Option<u64> {
    lookup(&UNITS, word)
}

/// A count in digits (at most four) or in words.
fn count(word: &str) -> Option<u64> {
    let digits = word.len() <= 4 && !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit());
    if digits {
        return word.parse().ok().filter(|n| *n > 0);
    }
    lookup(&NUMBER_WORDS, word)
}

/// A length written as one word: `5h`, `7d`, `24hr`, `1w`, `fivehour`.
fn compact_length(word: &str) -> Option<u64> {
    let split = word.find(|c: char| !c.is_ascii_digit()).unwrap_or(word.len());
    let (n, unit) = if split > 0 {
        (count(&word[..split])?, &word[split..])
    } else {
        let (name, n) = NUMBER_WORDS.iter().find(|(name, _)| word.starts_with(name))?;
        (*n, &word[name.len()..])
    };
    unit_seconds(unit).map(|unit| n.saturating_mul(unit))
}

/// The remaining fraction of a summary bucket: flat, nested, or as a
/// protobuf oneof `{"case": "remainingFraction", "value": …}`.
fn summary_fraction(bucket: &Value) -> Option<f64> {
    number_at(bucket, &["remaining", "remainingFraction"])
        .or_else(|| {
            let oneof = at(bucket, &["remaining"])?;
            (text_at(oneof, &["case"]).as_deref() == Some("remainingFraction"))
                .then(|| number_at(oneof, &["value"]))
                .flatten()
        })
        .or_else(|| google::remaining_fraction(bucket))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn says(name: &str) -> (Option<u64>, Option<&'static str>, bool) {
        let said = BucketName::read(name);
        (said.seconds, said.pool.map(Pool::id), said.other)
    }

    #[test]
    fn bucket_names_say_their_length_and_pool() {
        let five_hours = Some(18_000);
        let week = Some(604_800);
        let cases = [
            ("gemini-5h", (five_hours, Some("gemini"), false)),
            ("3p-weekly", (week, Some("3p"), false)),
            ("gemini_session", (five_hours, Some("gemini"), false)),
            ("gemini-5h limit", (five_hours, Some("gemini"), false)),
            ("5-hour", (five_hours, None, false)),
            ("Five hour limit", (five_hours, None, false)),
            ("FIVE_HOUR", (five_hours, None, false)),
            ("fivehour", (five_hours, None, false)),
            ("7-day", (week, None, false)),
            ("7d", (week, None, false)),
            ("1w", (week, None, false)),
            ("Weekly", (week, None, false)),
            ("Claude and other models", (None, Some("3p"), false)),
            ("Third-party models", (None, Some("3p"), false)),
            ("24h", (Some(86_400), None, false)),
            ("daily", (Some(86_400), None, false)),
            ("gemini-image-5h", (five_hours, Some("gemini"), true)),
            ("gemini-2.5-pro", (None, Some("gemini"), true)),
            ("fortnight", (None, None, true)),
            ("0h", (None, None, true)),
            ("", (None, None, false)),
        ];
        for (name, expect) in cases {
            assert_eq!(says(name), expect, "{name:?}");
        }
    }
}
