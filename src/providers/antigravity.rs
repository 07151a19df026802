//! Google Antigravity through `POST v1internal:fetchAvailableModels`, and
//! the newer `retrieveUserQuotaSummary` pools when a body has that shape.
//!
//! `models` is a map keyed by model id with a 0–1 **remaining** fraction per
//! model. A missing fraction beside a reset time means exhausted; missing
//! with no reset means unknown, and no window is made. Internal models and
//! the tab-completion model are not quotas users spend. The summary shape
//! has two pools (Gemini, Claude and other models) × two windows (5 h,
//! weekly), possibly wrapped in `{"response": …}` and with the fraction in
//! any of three encodings.

use jiff::Timestamp;
use serde_json::Value;

use super::decode::{array_at, at, bool_at, number_at, text_at};
use super::errors::Failure;
use super::google;
use super::{FetchError, Provider, ProviderId, Reading, RequestSpec, Response};
use crate::quota::{Aggregation, QuotaDefinition, UsageSnapshot, WindowType};

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

/// Models listed but not metered for the user.
const HIDDEN_MODELS: [&str; 1] = ["tab_flash_lite_preview"];

/// Summary bucket windows: the `window` value and its length.
const POOL_WINDOWS: [(&str, u64); 3] = [("5h", 18_000), ("weekly", 604_800), ("session", 18_000)];

fn quotas() -> Vec<QuotaDefinition> {
    vec![
        QuotaDefinition::rolling_percent("pool"),
        QuotaDefinition::per_model("model", WindowType::Rolling, Aggregation::Individual),
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
fn pool_windows(body: &Value) -> Vec<UsageSnapshot> {
    let mut snapshots = Vec::new();
    for group in array_at(body, &["groups"]) {
        let name = text_at(group, &["displayName"]).unwrap_or_default();
        let pool = if name.to_ascii_lowercase().starts_with("gemini") {
            "gemini"
        } else {
            "3p"
        };
        for bucket in array_at(group, &["buckets"]) {
            let window = text_at(bucket, &["window"]).unwrap_or_default().to_ascii_lowercase();
            let Some(&(_, seconds)) = POOL_WINDOWS.iter().find(|(w, _)| *w == window) else {
                continue;
            };
            let Some(fraction) = summary_fraction(bucket) else {
                continue;
            };
            let length = super::decode::window_id(seconds);
            snapshots.push(
                UsageSnapshot::of("pool")
                    .window(format!("{length}-{pool}"), format!("{name} {length}"))
                    .remaining_fraction(fraction)
                    .resets_at(google::reset_time(bucket))
                    .window_seconds(Some(seconds)),
            );
        }
    }
    snapshots
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
