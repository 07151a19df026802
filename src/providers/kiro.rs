//! Kiro (AWS) through CodeWhisperer's `GetUsageLimits` (JSON 1.0).
//!
//! One `usageBreakdownList` entry per resource; current accounts have one
//! `CREDIT` entry, older ones `AGENTIC_REQUEST` and `CODE_COMPLETION`.
//! `currentUsage` includes overage, so used can exceed the limit. Resets are
//! epoch seconds as floats, often in exponent notation (`1.7882208E9`), or
//! ISO text. Errors use the AWS `__type` envelope.

use jiff::Timestamp;
use serde_json::Value;

use super::decode::{after, array_at, at, number_at, slug, text_at, timestamp_at};
use super::errors::{ErrorKind, Failure, envelope_code};
use super::{FetchError, Provider, ProviderId, Reading, RequestSpec, Response};
use crate::quota::{Length, QuotaDefinition, Unit, UsageSnapshot};

pub const PROVIDER: Provider = Provider::new(ProviderId::Kiro, "Kiro", REQUEST, quotas, read).with_classify(classify);

const REQUEST: RequestSpec = RequestSpec::post(
    "https://codewhisperer.us-east-1.amazonaws.com",
    "/",
    &HEADERS,
    r#"{"origin":"AI_EDITOR","resourceType":"AGENTIC_REQUEST"}"#,
)
.with_body_fields(&[("profile_arn", "profileArn")]);

const HEADERS: [(&str, &str); 3] = [
    ("content-type", "application/x-amz-json-1.0"),
    ("x-amz-target", "AmazonCodeWhispererService.GetUsageLimits"),
    ("accept", "application/json"),
];

/// AWS error types and the kind each means.
const AWS_ERRORS: [(&str, ErrorKind); 6] = [
    ("ThrottlingException", ErrorKind::RateLimited),
    ("AccessDeniedException", ErrorKind::Auth),
    ("ExpiredTokenException", ErrorKind::Auth),
    ("UnrecognizedClientException", ErrorKind::Auth),
    ("InvalidTokenException", ErrorKind::Auth),
    ("ServiceUnavailableException", ErrorKind::Unavailable),
];

/// Plan credits, overage and bonus credits run by the calendar month that
/// ends at `nextDateReset` (a bonus that expires later than that month
/// reads as longer, see [`crate::status::derive_window`]); a free trial
/// ends at its expiry and has no stated length.
fn quotas() -> Vec<QuotaDefinition> {
    let monthly = ["usage", "overage", "bonus"]
        .into_iter()
        .map(|id| QuotaDefinition::monthly_amount(id, Unit::Credits));
    monthly
        .chain([QuotaDefinition::monthly_amount("trial", Unit::Credits).with_length(Length::Stated)])
        .collect()
}

fn read(body: &Value, _response: &Response<'_>, now: Timestamp) -> Result<Reading, FetchError> {
    let reset = timestamp_at(body, &["nextDateReset"])
        .or_else(|| number_at(body, &["daysUntilReset"]).and_then(|days| after(now, days * 86_400.0)));
    let mut snapshots = Vec::new();
    for entry in array_at(body, &["usageBreakdownList"]) {
        let resource = text_at(entry, &["resourceType"]).unwrap_or_default();
        let (id, label, unit) = match resource.as_str() {
            "CREDIT" => ("credits".to_owned(), "Credits".to_owned(), Unit::Credits),
            "CODE_COMPLETION" => ("completions".to_owned(), "Completions".to_owned(), Unit::Requests),
            "AGENTIC_REQUEST" => ("agentic".to_owned(), "Agentic requests".to_owned(), Unit::Requests),
            other => (slug(other), other.to_owned(), Unit::Requests),
        };
        let entry_reset = timestamp_at(entry, &["nextDateReset"]).or(reset);
        if let Some(snapshot) = counted(entry, "usage", "usageLimit", "currentUsage") {
            snapshots.push(snapshot.window(id, label).unit(unit.clone()).resets_at(entry_reset));
        }
        if let Some(snapshot) = counted(entry, "overage", "overageCap", "currentOverages") {
            snapshots.push(
                snapshot
                    .window("overage", "Overage")
                    .unit(unit.clone())
                    .resets_at(entry_reset),
            );
        }
        for bonus in array_at(entry, &["bonuses"]) {
            if let Some(snapshot) = counted(bonus, "bonus", "usageLimit", "currentUsage") {
                let expires = timestamp_at(bonus, &["expiresAt"]).or(entry_reset);
                snapshots.push(snapshot.window("bonus", "Bonus").unit(unit.clone()).resets_at(expires));
            }
        }
    }
    if let Some(trial) = at(body, &["freeTrialInfo"]) {
        let expires = timestamp_at(trial, &["freeTrialExpiry"]);
        snapshots.extend(
            counted(trial, "trial", "usageLimit", "currentUsage")
                .map(|s| s.window("trial", "Free trial").resets_at(expires)),
        );
    }
    Ok(Reading {
        plan: text_at(body, &["subscriptionInfo", "subscriptionTitle"]),
        snapshots,
    })
}

fn classify(failure: &Failure<'_>) -> FetchError {
    let aws_kind = failure.json.and_then(envelope_code).and_then(|code| {
        AWS_ERRORS
            .iter()
            .find(|(name, _)| code.ends_with(name))
            .map(|(_, kind)| *kind)
    });
    match aws_kind {
        Some(kind) => failure.error(kind),
        None => failure.classify(),
    }
}

/// A limit/usage pair, preferring the `…WithPrecision` fields; `None`
/// unless both are there.
fn counted(entry: &Value, quota: &str, limit_key: &str, used_key: &str) -> Option<UsageSnapshot> {
    let precise = |key: &str| number_at(entry, &[&format!("{key}WithPrecision")]).or_else(|| number_at(entry, &[key]));
    let limit = precise(limit_key)?;
    let used = precise(used_key)?;
    Some(UsageSnapshot::of(quota).amounts(Some(limit), Some(used)))
}
