//! Codex (ChatGPT plans) through `GET /backend-api/wham/usage`.
//!
//! Windows are classified by `limit_window_seconds`, never by slot: free and
//! team accounts carry the weekly window in `primary_window`. The slot is
//! only a fallback when the length is missing (primary 5 h, secondary 7 d).
//! `used_percent` is 0–100 used; `reset_at` is epoch seconds (read like
//! every timestamp, so ISO text works too), `reset_after_seconds` relative.
//! When the body has no main windows, the `x-codex-*` headers of the same
//! response fill them in.

use jiff::Timestamp;
use serde_json::Value;

use super::decode::{
    after, array_at, at, number, number_at, slug, text_at, text_timestamp, timestamp_at, whole_seconds, window_id,
};
use super::errors::Failure;
use super::{FetchError, Provider, ProviderId, Reading, RequestSpec, Response};
use crate::quota::{QuotaDefinition, Unit, UsageSnapshot};

pub const PROVIDER: Provider = Provider::new(ProviderId::Codex, "Codex", REQUEST, quotas, read).with_classify(classify);

const REQUEST: RequestSpec = RequestSpec::get("https://chatgpt.com", "/backend-api/wham/usage", &HEADERS)
    .with_secret_headers(&[("account_id", "chatgpt-account-id")]);

const HEADERS: [(&str, &str); 3] = [
    ("accept", "application/json"),
    ("user-agent", "codex_cli_rs/0.63.0 (quotatrack)"),
    ("originator", "codex_cli_rs"),
];

/// The slots of a rate-limit object and the length each implies when the
/// body does not say.
const SLOTS: [(&str, &str, u64); 2] = [
    ("primary_window", "primary", 18_000),
    ("secondary_window", "secondary", 604_800),
];

fn quotas() -> Vec<QuotaDefinition> {
    vec![
        QuotaDefinition::rolling_percent("window"),
        QuotaDefinition::monthly_amount("spend", Unit::Credits),
    ]
}

fn read(body: &Value, response: &Response<'_>, now: Timestamp) -> Result<Reading, FetchError> {
    let mut snapshots = rate_windows(at(body, &["rate_limit"]), now);
    if snapshots.is_empty() {
        snapshots = header_windows(response);
    }
    for snapshot in rate_windows(at(body, &["code_review_rate_limit"]), now) {
        snapshots.push(prefixed(snapshot, "review", "Code review"));
    }
    for limit in array_at(body, &["additional_rate_limits"]) {
        let Some(name) = text_at(limit, &["limit_name"]).or_else(|| text_at(limit, &["metered_feature"])) else {
            continue;
        };
        for snapshot in rate_windows(at(limit, &["rate_limit"]), now) {
            let id = format!("{}-{}", snapshot.window.as_deref().unwrap_or_default(), slug(&name));
            let label = format!("{name} {}", snapshot.label.as_deref().unwrap_or_default());
            snapshots.push(snapshot.window(id, label).model(name.clone()));
        }
    }
    snapshots.extend(spend_limit(body, now));
    Ok(Reading {
        plan: text_at(body, &["plan_type"]),
        snapshots,
    })
}

fn classify(failure: &Failure<'_>) -> FetchError {
    // A usage-limit 429 carries its reset in the body when the header is missing.
    failure.classify().or_retry_after(|| {
        let json = failure.json?;
        let relative = number_at(json, &["error", "resets_in_seconds"]).and_then(whole_seconds);
        relative.or_else(|| {
            timestamp_at(json, &["error", "resets_at"]).map(|reset| super::errors::seconds_until(failure.now, reset))
        })
    })
}

/// The windows of one rate-limit object (`rate_limit`, a code-review or an
/// additional limit), each identified by its length.
fn rate_windows(rate_limit: Option<&Value>, now: Timestamp) -> Vec<UsageSnapshot> {
    let Some(rate_limit) = rate_limit else {
        return Vec::new();
    };
    SLOTS
        .iter()
        .filter_map(|(key, _, default_seconds)| {
            let window = at(rate_limit, &[key])?;
            let percent = number_at(window, &["used_percent"])?;
            let seconds = number_at(window, &["limit_window_seconds"])
                .and_then(whole_seconds)
                .unwrap_or(*default_seconds);
            let reset = timestamp_at(window, &["reset_at"])
                .or_else(|| number_at(window, &["reset_after_seconds"]).and_then(|s| after(now, s)));
            Some(length_window(percent, seconds, reset))
        })
        .collect()
}

/// The main windows from `x-codex-{primary,secondary}-*` headers. A window
/// reporting 0 % with neither a length nor a reset carries no data.
fn header_windows(response: &Response<'_>) -> Vec<UsageSnapshot> {
    SLOTS
        .iter()
        .filter_map(|(_, slot, default_seconds)| {
            let header = |field: &str| {
                response
                    .header(&format!("x-codex-{slot}-{field}"))
                    .and_then(|v| number(&Value::String(v.to_owned())))
            };
            let percent = header("used-percent")?;
            let minutes = header("window-minutes");
            let reset = response
                .header(&format!("x-codex-{slot}-reset-at"))
                .and_then(text_timestamp);
            if percent == 0.0 && minutes.is_none() && reset.is_none() {
                return None;
            }
            let seconds = minutes
                .and_then(|m| whole_seconds(m * 60.0))
                .unwrap_or(*default_seconds);
            Some(length_window(percent, seconds, reset))
        })
        .collect()
}

fn length_window(percent: f64, seconds: u64, reset: Option<Timestamp>) -> UsageSnapshot {
    let id = window_id(seconds);
    UsageSnapshot::of("window")
        .window(id.clone(), id)
        .used_percent(percent)
        .resets_at(reset)
        .window_seconds(Some(seconds))
}

fn prefixed(snapshot: UsageSnapshot, id_prefix: &str, label_prefix: &str) -> UsageSnapshot {
    let id = snapshot.window.clone().unwrap_or_default();
    snapshot.window(format!("{id_prefix}-{id}"), format!("{label_prefix} {id}"))
}

/// The Team/Enterprise spend-control pool (`individual_limit`), at the root,
/// inside `spend_control` or inside `rate_limit`; numbers may be strings.
fn spend_limit(body: &Value, now: Timestamp) -> Option<UsageSnapshot> {
    let pool = [
        &["spend_control", "individual_limit"][..],
        &["individual_limit"],
        &["rate_limit", "individual_limit"],
    ]
    .iter()
    .find_map(|path| at(body, path))?;
    let limit = number_at(pool, &["limit"]);
    let used = number_at(pool, &["used"]).or_else(|| Some(limit? - number_at(pool, &["remaining"])?));
    let mut snapshot = UsageSnapshot::of("spend")
        .window("spend", "Spend")
        .amounts(limit, used)
        .resets_at(
            timestamp_at(pool, &["reset_at"])
                .or_else(|| number_at(pool, &["reset_after_seconds"]).and_then(|s| after(now, s))),
        );
    snapshot.used_ratio = number_at(pool, &["used_percent"]).map(|p| p / 100.0);
    (limit.is_some() || snapshot.used_ratio.is_some()).then_some(snapshot)
}
