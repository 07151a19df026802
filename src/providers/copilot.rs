//! GitHub Copilot through `GET /copilot_internal/user`.
//!
//! `percent_remaining` is 0–100 **remaining** and goes negative on overage
//! (-15 means 115 % used), `remaining` is floored while `quota_remaining` is
//! the real balance, and an `unlimited` bucket has no meter. Premium requests
//! cost a per-model multiple of one request, so the premium quota is a
//! multiplier quota. Snapshot keys beyond premium, chat and completions
//! (GitHub adds some) are windows of their own whose id is the key exactly
//! as GitHub wrote it (`fancy_new_thing`, not a slug of it: the contract
//! reads windows by their own name, and a slug could merge two keys); a key
//! that is empty or names a window already read is skipped. A bucket's
//! ratios both come from `percent_remaining` when it gives one (so they
//! always add up to 1, whatever `quota_remaining` says), else from what is
//! left of the entitlement; its amounts come from `quota_remaining`. A
//! bucket that states only its share (no entitlement) is a window too:
//! counted in percent, or for premium requests against the Pro plan's
//! allowance; a zero entitlement is a placeholder with no meter. The
//! reset is the one the body states (`quota_reset_date_utc`,
//! `quota_reset_date`, `quota_reset_at`, in a bucket or at the top); when it
//! states none, or an empty one, `resets_at` is null, never a guessed month
//! start. Legacy free accounts report `monthly_quotas` (totals) and
//! `limited_user_quotas` (remaining), numbers possibly as strings.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::Value;

use super::decode::{at, bool_at, number_at, text_at, timestamp_at};
use super::errors::{ErrorKind, Failure, seconds_until};
use super::{AuthScheme, FetchError, Provider, ProviderId, Reading, RequestSpec, Response};
use crate::quota::{Length, QuotaDefinition, QuotaKind, ResetBehavior, Unit, UsageSnapshot, WindowType};

pub const PROVIDER: Provider =
    Provider::new(ProviderId::Copilot, "Copilot", REQUEST, quotas, read).with_classify(classify);

const REQUEST: RequestSpec =
    RequestSpec::get("https://api.github.com", "/copilot_internal/user", &HEADERS).with_auth(AuthScheme::Token);

const HEADERS: [(&str, &str); 5] = [
    ("accept", "application/json"),
    ("editor-version", "vscode/1.96.2"),
    ("editor-plugin-version", "copilot-chat/0.26.7"),
    ("user-agent", "GitHubCopilotChat/0.26.7"),
    ("x-github-api-version", "2025-04-01"),
];

/// The premium allowance of an individual Pro plan, used when a response
/// gives no entitlement.
const DEFAULT_PREMIUM_REQUESTS: f64 = 300.0;

/// What one request to each model costs in premium requests.
const MULTIPLIERS: [(&str, f64); 20] = [
    ("claude-haiku-4.5", 0.33),
    ("claude-opus-4.1", 10.0),
    ("claude-opus-4.5", 3.0),
    ("claude-sonnet-4", 1.0),
    ("claude-sonnet-4.5", 1.0),
    ("gemini-2.5-pro", 1.0),
    ("gemini-3-flash", 0.33),
    ("gemini-3-pro", 1.0),
    ("gpt-4.1", 0.0),
    ("gpt-4o", 0.0),
    ("gpt-5-mini", 0.0),
    ("raptor-mini", 0.0),
    ("gpt-5", 1.0),
    ("gpt-5-codex", 1.0),
    ("gpt-5.1", 1.0),
    ("gpt-5.1-codex", 1.0),
    ("gpt-5.1-codex-max", 1.0),
    ("gpt-5.1-codex-mini", 0.33),
    ("gpt-5.2", 1.0),
    ("grok-code-fast-1", 0.25),
];

/// Metered buckets: key in `quota_snapshots`, window id, label.
const BUCKETS: [(&str, &str, &str); 3] = [
    ("premium_interactions", "premium", "Premium"),
    ("chat", "chat", "Chat"),
    ("completions", "completions", "Completions"),
];

/// The quota of snapshot keys the table above does not know: each is read
/// as a monthly allowance of its own, under its own name.
const OTHER: &str = "other";

/// Where a reset date may be, in order of preference; each may also sit in
/// a bucket, where it wins over the body's.
const RESET_KEYS: [&str; 3] = ["quota_reset_date_utc", "quota_reset_date", "quota_reset_at"];

fn quotas() -> Vec<QuotaDefinition> {
    let multipliers: BTreeMap<String, f64> = MULTIPLIERS.iter().map(|(m, x)| ((*m).to_owned(), *x)).collect();
    let premium = QuotaKind::Multiplier {
        base_amount: DEFAULT_PREMIUM_REQUESTS,
        multipliers,
    };
    // Every bucket is monthly: it resets on the 1st at 00:00 UTC, so its
    // window is the calendar month that ends at its reset.
    vec![
        QuotaDefinition::new("premium", WindowType::Fixed, ResetBehavior::Calendar, premium)
            .with_length(Length::CalendarMonth),
        QuotaDefinition::monthly_amount("chat", Unit::Requests),
        QuotaDefinition::monthly_amount("completions", Unit::Requests),
        QuotaDefinition::monthly_amount(OTHER, Unit::Requests),
    ]
}

fn read(body: &Value, _response: &Response<'_>, _now: Timestamp) -> Result<Reading, FetchError> {
    let reset = reset_at(body);
    let buckets = at(body, &["quota_snapshots"]).and_then(Value::as_object);
    let known = BUCKETS.iter().filter_map(|(key, id, label)| {
        let bucket = buckets?.get(*key)?;
        bucket_snapshot(bucket, id).map(|s| s.window(*id, *label).resets_at(reset_at(bucket).or(reset)))
    });
    let others = buckets
        .into_iter()
        .flatten()
        .filter(|(key, _)| !key.trim().is_empty() && !BUCKETS.iter().any(|(known, id, _)| known == key || id == key))
        .filter_map(|(key, bucket)| {
            bucket_snapshot(bucket, OTHER).map(|s| {
                s.window(key.clone(), label_of(key))
                    .resets_at(reset_at(bucket).or(reset))
            })
        });
    let mut snapshots: Vec<_> = known.chain(others).collect();
    if snapshots.is_empty() {
        snapshots = legacy_quotas(body);
    }
    Ok(Reading {
        plan: text_at(body, &["copilot_plan"]),
        snapshots,
    })
}

/// The reset an object states, under any of the keys Copilot uses for it;
/// `None` when it states none (empty, null, or the epoch-0 placeholder):
/// a reset is never assumed.
fn reset_at(object: &Value) -> Option<Timestamp> {
    RESET_KEYS
        .iter()
        .find_map(|key| timestamp_at(object, &[key]).filter(|at| at.as_second() > 0))
}

/// A label from a snapshot key: `immediate_usage_interval` → `Immediate usage interval`.
fn label_of(key: &str) -> String {
    let words = key.replace(['_', '-'], " ");
    let words = words.trim();
    let mut chars = words.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn classify(failure: &Failure<'_>) -> FetchError {
    // GitHub signals its API rate limit with 403 and an exhausted counter.
    let exhausted = failure.response.header("x-ratelimit-remaining") == Some("0");
    if !(exhausted && matches!(failure.status(), 403 | 429)) {
        return failure.classify();
    }
    let reset = failure
        .response
        .header("x-ratelimit-reset")
        .and_then(|v| super::decode::timestamp(&Value::String(v.to_owned())));
    failure
        .error(ErrorKind::RateLimited)
        .or_retry_after(|| reset.map(|at| seconds_until(failure.now, at)))
}

/// One `quota_snapshots` bucket. Unlimited buckets are kept only for
/// premium requests (chat and completions are unlimited on every paid plan);
/// an empty placeholder or a zero entitlement has no meter to show.
fn bucket_snapshot(bucket: &Value, quota: &str) -> Option<UsageSnapshot> {
    let premium = quota == "premium";
    if bool_at(bucket, &["unlimited"]) == Some(true) {
        let mut snapshot = UsageSnapshot::of(quota).unit(Unit::Requests);
        snapshot.unlimited = true;
        return premium.then_some(snapshot);
    }
    let percent_left = number_at(bucket, &["percent_remaining"]);
    let mut snapshot = UsageSnapshot::of(quota).unit(Unit::Requests);
    match number_at(bucket, &["entitlement"]) {
        Some(entitlement) if entitlement > 0.0 => {
            let remaining = number_at(bucket, &["quota_remaining"]).or_else(|| number_at(bucket, &["remaining"]));
            snapshot.limit = Some(entitlement);
            snapshot.remaining = remaining;
            snapshot.used = remaining.map(|left| entitlement - left);
        }
        // A zero entitlement is a placeholder with no meter.
        Some(_) => return None,
        // No entitlement stated: the share alone is the meter (amounts
        // unknown, never guessed).
        None => {
            percent_left?;
            if !premium {
                // Counted in percent, as every percentage-only window.
                snapshot = snapshot.unit(Unit::Percent);
                snapshot.limit = Some(100.0);
                snapshot.remaining = percent_left.map(|left| left.clamp(0.0, 100.0));
                snapshot.used = percent_left.map(|left| (100.0 - left).max(0.0));
            }
        }
    }
    // One source for both ratios: the stated percentage, else the
    // amounts (resolution derives both from `remaining`).
    snapshot.used_ratio = percent_left.map(|left| (100.0 - left) / 100.0);
    snapshot.remaining_ratio = percent_left.map(|left| left / 100.0);
    (snapshot.remaining.is_some() || snapshot.used_ratio.is_some()).then_some(snapshot)
}

/// The pre-2026 free-plan shape: totals in `monthly_quotas`, what is left in
/// `limited_user_quotas`. Without the remaining side usage is unknown, and
/// no window is made (never assume full).
fn legacy_quotas(body: &Value) -> Vec<UsageSnapshot> {
    let reset = timestamp_at(body, &["limited_user_reset_date"]).filter(|at| at.as_second() > 0);
    [("chat", "Chat"), ("completions", "Completions")]
        .iter()
        .filter_map(|(key, label)| {
            let total = number_at(body, &["monthly_quotas", key]).filter(|t| *t > 0.0)?;
            let remaining = number_at(body, &["limited_user_quotas", key])?;
            let mut snapshot = UsageSnapshot::of(key)
                .window(*key, *label)
                .unit(Unit::Requests)
                .resets_at(reset);
            snapshot.limit = Some(total);
            snapshot.remaining = Some(remaining);
            Some(snapshot)
        })
        .collect()
}
