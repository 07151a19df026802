//! Gemini CLI (Code Assist) through `POST v1internal:retrieveUserQuota`.
//!
//! One bucket per model and token type, each with a 0–1 **remaining**
//! fraction and a daily `resetTime`. `_vertex` twins and repeated model ids
//! are folded into one window per model keeping the lowest fraction; the
//! epoch-0 reset marks an unavailable model. Besides the per-model windows,
//! `pro` and `flash` give the most constrained available model of each
//! family (an unavailable model would otherwise pin its family at 100 %).

use jiff::Timestamp;
use serde_json::Value;

use super::decode::{array_at, text_at};
use super::errors::Failure;
use super::google;
use super::{FetchError, Provider, ProviderId, Reading, RequestSpec, Response};
use crate::quota::{Aggregation, Length, QuotaDefinition, UsageSnapshot, WindowType};

pub const PROVIDER: Provider =
    Provider::new(ProviderId::Gemini, "Gemini", REQUEST, quotas, read).with_classify(classify);

const REQUEST: RequestSpec = RequestSpec::post(google::ORIGIN, "/v1internal:retrieveUserQuota", &HEADERS, "{}")
    .with_body_fields(&[("project", "project")]);

const HEADERS: [(&str, &str); 2] = [("content-type", "application/json"), ("accept", "application/json")];

/// The length of a daily quota's window.
const DAY: u64 = 86_400;

/// Model families with an aggregate window, checked in order (`flash` first
/// so that `flash-lite` is not read as `pro`).
const FAMILIES: [&str; 2] = ["flash", "pro"];

fn quotas() -> Vec<QuotaDefinition> {
    // Daily quotas: each bucket's `resetTime` ends a day (24 h) of use.
    let daily = |id: &str, aggregation| {
        QuotaDefinition::per_model(id, WindowType::Fixed, aggregation).with_length(Length::Seconds { seconds: DAY })
    };
    vec![
        daily("model", Aggregation::Individual),
        daily("pro", Aggregation::Min),
        daily("flash", Aggregation::Min),
    ]
}

fn read(body: &Value, _response: &Response<'_>, _now: Timestamp) -> Result<Reading, FetchError> {
    let mut models: Vec<UsageSnapshot> = Vec::new();
    let mut unavailable: Vec<String> = Vec::new();
    for bucket in array_at(body, &["buckets"]) {
        let (Some(model), Some(fraction)) = (text_at(bucket, &["modelId"]), google::remaining_fraction(bucket)) else {
            continue;
        };
        let model = model.trim_end_matches("_vertex").to_owned();
        let id = match text_at(bucket, &["tokenType"]).map(|t| t.to_ascii_lowercase()) {
            Some(kind) if kind != "requests" => format!("{model}-{kind}"),
            _ => model.clone(),
        };
        if google::is_unavailable(bucket) {
            unavailable.push(id.clone());
        }
        let snapshot = UsageSnapshot::of("model")
            .window(id.clone(), id.clone())
            .model(model)
            .remaining_fraction(fraction)
            .resets_at(google::reset_time(bucket));
        match models.iter_mut().find(|s| s.window.as_deref() == Some(id.as_str())) {
            Some(seen) => *seen = min_fraction(seen.clone(), snapshot),
            None => models.push(snapshot),
        }
    }
    let available = |s: &&UsageSnapshot| !unavailable.iter().any(|id| s.window.as_deref() == Some(id.as_str()));
    let families = models.iter().filter(available).filter_map(|snapshot| {
        let model = snapshot.model.as_deref()?.to_ascii_lowercase();
        let family = FAMILIES.iter().find(|f| model.contains(*f))?;
        Some(UsageSnapshot {
            quota: (*family).to_owned(),
            ..snapshot.clone()
        })
    });
    let snapshots = models.iter().cloned().chain(families).collect();
    Ok(Reading { plan: None, snapshots })
}

fn classify(failure: &Failure<'_>) -> FetchError {
    google::classify(failure)
}

/// Of two readings of one model, the one with less left; a missing reset is
/// filled from the other.
fn min_fraction(a: UsageSnapshot, b: UsageSnapshot) -> UsageSnapshot {
    let left = |s: &UsageSnapshot| s.remaining_ratio.unwrap_or(1.0);
    let reset = a.resets_at.or(b.resets_at);
    let mut lower = if left(&b) < left(&a) { b } else { a };
    lower.resets_at = lower.resets_at.or(reset);
    lower
}
