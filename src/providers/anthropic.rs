//! Claude (Pro/Max/Team/Enterprise) through `GET /api/oauth/usage`.
//!
//! Utilization is a 0–100 percent used. `resets_at` is ISO with microseconds
//! and an offset, or `null` when the window has not started. Model-scoped
//! weeks come either as legacy `seven_day_<model>` objects or, since mid
//! 2026, as `weekly_scoped` entries of `limits[]`, which also back up the
//! session and weekly windows when their objects are missing. Extra usage is
//! in minor units (cents) of its currency.

use jiff::Timestamp;
use serde_json::Value;

use super::decode::{array_at, at, bool_at, number_at, slug, text_at, timestamp_at};
use super::{FetchError, Provider, ProviderId, Reading, RequestSpec, Response};
use crate::quota::{Length, QuotaDefinition, QuotaKind, ResetBehavior, Unit, UsageSnapshot, WindowType};

pub const PROVIDER: Provider = Provider::new(ProviderId::Anthropic, "Claude", REQUEST, quotas, read);

const REQUEST: RequestSpec = RequestSpec::get("https://api.anthropic.com", "/api/oauth/usage", &HEADERS);

/// Without a claude-code user agent the endpoint answers 429 forever.
const HEADERS: [(&str, &str); 4] = [
    ("anthropic-beta", "oauth-2025-04-20"),
    ("user-agent", "claude-code/2.1.220"),
    ("anthropic-version", "2023-06-01"),
    ("accept", "application/json"),
];

const FIVE_HOURS: u64 = 18_000;
const SEVEN_DAYS: u64 = 604_800;

/// Keys under which the "Daily Routines"/Cowork window has been seen.
const ROUTINES_KEYS: [&str; 7] = [
    "seven_day_cowork",
    "seven_day_routines",
    "seven_day_claude_routines",
    "claude_routines",
    "routines",
    "routine",
    "cowork",
];

/// Legacy model-scoped weekly objects: key, window id suffix, label.
const SCOPED_WEEKS: [(&str, &str, &str); 3] = [
    ("seven_day_sonnet", "sonnet", "Sonnet week"),
    ("seven_day_opus", "opus", "Opus week"),
    ("seven_day_oauth_apps", "oauth-apps", "OAuth apps week"),
];

fn quotas() -> Vec<QuotaDefinition> {
    let usd = || Unit::Currency("usd".to_owned());
    vec![
        QuotaDefinition::new(
            "5h",
            WindowType::Session,
            ResetBehavior::SessionStart,
            QuotaKind::PercentageOnly,
        ),
        QuotaDefinition::rolling_percent("7d"),
        // Sources disagree on the routines window's length (`seven_day_`
        // keys, a "Daily Routines" name): only a stated one counts.
        QuotaDefinition::new(
            "routines",
            WindowType::Fixed,
            ResetBehavior::Calendar,
            QuotaKind::PercentageOnly,
        ),
        QuotaDefinition::monthly_amount("extra", usd()),
        // A credit grant ends at its expiry; it is no period of use.
        QuotaDefinition::monthly_amount("credits", usd()).with_length(Length::Stated),
    ]
}

fn read(body: &Value, _response: &Response<'_>, _now: Timestamp) -> Result<Reading, FetchError> {
    let limits = array_at(body, &["limits"]);
    let mut snapshots = Vec::new();

    let session =
        percent_window("5h", body.get("five_hour"), "utilization").or_else(|| limit_of_kind("5h", limits, "session"));
    snapshots.extend(session.map(|s| s.window_seconds(Some(FIVE_HOURS))));
    let week = percent_window("7d", body.get("seven_day"), "utilization")
        .or_else(|| limit_of_kind("7d", limits, "weekly_all"));
    snapshots.extend(week.map(|s| s.window_seconds(Some(SEVEN_DAYS))));

    for (key, suffix, label) in SCOPED_WEEKS {
        if let Some(snapshot) = percent_window("7d", body.get(key), "utilization") {
            snapshots.push(scoped_week(snapshot, suffix, label));
        }
    }
    for entry in limits
        .iter()
        .filter(|e| text_at(e, &["kind"]).as_deref() == Some("weekly_scoped"))
    {
        let model_id = text_at(entry, &["scope", "model", "id"]);
        let Some(name) = text_at(entry, &["scope", "model", "display_name"]).or_else(|| model_id.clone()) else {
            continue;
        };
        let suffix = slug(&name);
        let already = snapshots
            .iter()
            .any(|s| s.window.as_deref() == Some(&format!("7d-{suffix}")));
        if let (false, Some(snapshot)) = (already, percent_window("7d", Some(entry), "percent")) {
            snapshots.push(scoped_week(snapshot, &suffix, &format!("{name} week")).model(model_id.unwrap_or(name)));
        }
    }

    let routines = ROUTINES_KEYS
        .iter()
        .find_map(|key| percent_window("routines", body.get(key), "utilization"));
    snapshots.extend(routines.map(|s| s.window("routines", "Routines")));
    snapshots.extend(extra_usage(body));
    snapshots.extend(credit_grant(body));
    Ok(Reading { plan: None, snapshots })
}

/// A percent-used window object (`{utilization|percent, resets_at}`); `None`
/// when it is absent or carries no number.
fn percent_window(quota: &str, object: Option<&Value>, field: &str) -> Option<UsageSnapshot> {
    let object = object?;
    let percent = number_at(object, &[field])?;
    Some(
        UsageSnapshot::of(quota)
            .used_percent(percent)
            .resets_at(timestamp_at(object, &["resets_at"])),
    )
}

/// The `limits[]` entry of `kind`, as the session or weekly window.
fn limit_of_kind(quota: &str, limits: &[Value], kind: &str) -> Option<UsageSnapshot> {
    let entry = limits.iter().find(|e| text_at(e, &["kind"]).as_deref() == Some(kind))?;
    percent_window(quota, Some(entry), "percent")
}

fn scoped_week(snapshot: UsageSnapshot, suffix: &str, label: &str) -> UsageSnapshot {
    snapshot
        .window(format!("7d-{suffix}"), label)
        .window_seconds(Some(SEVEN_DAYS))
}

/// Pay-as-you-go extra usage: cents of `currency` against a monthly limit;
/// ignored unless enabled, uncapped when the limit is absent or 0.
fn extra_usage(body: &Value) -> Option<UsageSnapshot> {
    let extra = at(body, &["extra_usage"])?;
    if bool_at(extra, &["is_enabled"]) != Some(true) {
        return None;
    }
    let currency = text_at(extra, &["currency"]).unwrap_or_else(|| "usd".to_owned());
    let used = number_at(extra, &["used_credits"]).map(|cents| cents / 100.0);
    let limit = number_at(extra, &["monthly_limit"])
        .filter(|cents| *cents > 0.0)
        .map(|cents| cents / 100.0);
    let mut snapshot = UsageSnapshot::of("extra")
        .window("extra", "Extra")
        .unit(Unit::Currency(currency.to_lowercase()))
        .amounts(limit, used);
    snapshot.used_ratio = number_at(extra, &["utilization"]).map(|percent| percent / 100.0);
    snapshot.unlimited = limit.is_none();
    Some(snapshot)
}

/// A dollar credit grant (`iguana_necktie`), expiring at `resets_at`.
fn credit_grant(body: &Value) -> Option<UsageSnapshot> {
    let grant = at(body, &["iguana_necktie"])?;
    let limit = number_at(grant, &["limit_dollars"])?;
    let used = number_at(grant, &["used_dollars"])
        .or_else(|| number_at(grant, &["remaining_dollars"]).map(|remaining| limit - remaining));
    Some(
        UsageSnapshot::of("credits")
            .window("credits", "Credits")
            .amounts(Some(limit), used)
            .resets_at(timestamp_at(grant, &["resets_at"])),
    )
}
