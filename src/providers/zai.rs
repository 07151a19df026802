//! Z.ai / Zhipu GLM Coding Plan through `GET /api/monitor/usage/quota/limit`.
//!
//! A 200 can still be a failure: `success: false` with a business `code`
//! (for example "no coding plan"). Quota windows are `TOKENS_LIMIT` (older)
//! or `CREDIT_LIMIT` (newer) with a 0–100 used `percentage` and a length of
//! `number` × `unit`; `TIME_LIMIT` counts monthly tool calls, where `usage`
//! is the **limit** and `currentValue` the amount used. A limit that gives
//! counts (`usage`, `currentValue`, `remaining`, `total`) but no percentage
//! has its used share derived from them. `nextResetTime` is epoch
//! milliseconds and absent on a window that has not started.

use jiff::Timestamp;
use serde_json::Value;

use super::decode::{array_at, at, bool_at, number, number_at, text_at, timestamp_at, window_id};
use super::errors::{ErrorKind, Failure};
use super::{FetchError, Provider, ProviderId, Reading, RequestSpec, Response};
use crate::quota::{QuotaDefinition, Unit, UsageSnapshot};

pub const PROVIDER: Provider = Provider::new(ProviderId::Zai, "Z.ai", REQUEST, quotas, read).with_classify(classify);

const REQUEST: RequestSpec = RequestSpec::get("https://api.z.ai", "/api/monitor/usage/quota/limit", &HEADERS);

const HEADERS: [(&str, &str); 2] = [("accept", "application/json"), ("accept-language", "en-US,en")];

/// Seconds per `unit` code. Sources disagree on some codes; these are the
/// pairings observed in real responses (3 = hour, 6 = week, 5 = month for
/// tool calls) plus the day codes both readings share. Unknown codes give
/// a window of unknown length, not an error.
const UNIT_SECONDS: [(i64, u64); 5] = [(1, 86_400), (3, 3_600), (4, 86_400), (5, 2_592_000), (6, 604_800)];

/// Plan label keys, in order of preference.
const PLAN_KEYS: [&str; 5] = ["planName", "plan", "plan_type", "packageName", "level"];

fn quotas() -> Vec<QuotaDefinition> {
    vec![
        QuotaDefinition::rolling_percent("window"),
        QuotaDefinition::monthly_amount("tools", Unit::Requests),
    ]
}

fn read(body: &Value, _response: &Response<'_>, _now: Timestamp) -> Result<Reading, FetchError> {
    if let Some(error) = business_error(body) {
        return Err(error);
    }
    let data = at(body, &["data"]).unwrap_or(body);
    let snapshots = array_at(data, &["limits"])
        .iter()
        .enumerate()
        .filter_map(|(index, limit)| limit_window(limit, index))
        .collect();
    Ok(Reading {
        plan: PLAN_KEYS.iter().find_map(|key| text_at(data, &[key])),
        snapshots,
    })
}

fn classify(failure: &Failure<'_>) -> FetchError {
    let code = failure.json.and_then(business_code);
    match code.and_then(code_kind) {
        Some(kind) => failure.error(kind),
        None => failure.classify(),
    }
}

/// One entry of `data.limits`. The used share is `percentage` when it is
/// there, else derived from whatever counts the entry gives.
fn limit_window(limit: &Value, index: usize) -> Option<UsageSnapshot> {
    let kind = text_at(limit, &["type"]).or_else(|| text_at(limit, &["name"]))?;
    let percent = number_at(limit, &["percentage"]);
    let counts = Counts::read(limit);
    let used_ratio = percent.map(|p| p / 100.0).or_else(|| counts.used_ratio());
    let reset = timestamp_at(limit, &["nextResetTime"]);
    if kind == "TIME_LIMIT" {
        let mut snapshot = UsageSnapshot::of("tools")
            .window("tools", "Tools")
            .amounts(counts.total, counts.used);
        snapshot.used_ratio = used_ratio;
        snapshot.window_seconds = Some(2_592_000);
        return (counts.total.is_some() || used_ratio.is_some()).then(|| snapshot.resets_at(reset));
    }
    let used_ratio = used_ratio?;
    let unit_code = number_at(limit, &["unit"]).map(|u| u as i64);
    let seconds = UNIT_SECONDS
        .iter()
        .find(|(code, _)| Some(*code) == unit_code)
        .zip(number_at(limit, &["number"]))
        .map(|((_, unit), n)| (n.max(0.0) as u64).saturating_mul(*unit))
        .filter(|s| *s > 0);
    let id = seconds.map_or_else(|| format!("limit-{}", index + 1), window_id);
    let mut snapshot = UsageSnapshot::of("window")
        .window(id.clone(), id)
        .resets_at(reset)
        .window_seconds(seconds);
    snapshot.used_ratio = Some(used_ratio);
    if let (Some(total), Some(used)) = (counts.total, counts.used) {
        let unit = if kind.starts_with("TOKENS") {
            Unit::Tokens
        } else {
            Unit::Credits
        };
        snapshot = snapshot.amounts(Some(total), Some(used)).unit(unit);
    }
    Some(snapshot)
}

/// The counts of one limit, each derived from the others when absent.
/// `usage` is z.ai's name for the allowance and `currentValue` for what is
/// used; where a body also gives `total`, that is the allowance and `usage`
/// what is used.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    total: Option<f64>,
    used: Option<f64>,
    remaining: Option<f64>,
}

impl Counts {
    fn read(limit: &Value) -> Counts {
        let count = |key: &str| number_at(limit, &[key]).filter(|n| *n >= 0.0);
        let (total_field, usage) = (count("total"), count("usage"));
        let current = count("currentValue");
        let remaining = count("remaining");
        let stated_total = total_field.or(usage);
        let used = current
            .or_else(|| Some(stated_total? - remaining?).filter(|used| *used >= 0.0))
            .or(total_field.and(usage));
        let total = stated_total.or_else(|| Some(used? + remaining?));
        let remaining = remaining.or_else(|| Some(total? - used?));
        Counts { total, used, remaining }
    }

    /// Used over total, when both are known and the total is not zero.
    fn used_ratio(self) -> Option<f64> {
        let total = self.total.filter(|t| *t > 0.0)?;
        self.used
            .or_else(|| Some(total - self.remaining?))
            .map(|used| used / total)
    }
}

/// The error a 200 body reports: `success: false`, or an `error` object.
fn business_error(body: &Value) -> Option<FetchError> {
    let failed = bool_at(body, &["success"]) == Some(false) || at(body, &["error"]).is_some();
    if !failed {
        return None;
    }
    let code = business_code(body);
    let message = text_at(body, &["msg"])
        .or_else(|| text_at(body, &["error", "message"]))
        .unwrap_or_else(|| "request failed".to_owned());
    let kind = code.and_then(code_kind).unwrap_or(ErrorKind::ApiError);
    let code = code.map_or_else(String::new, |c| format!(" {c}"));
    Some(FetchError::new(kind, format!("z.ai error{code}: {message}")))
}

/// The business code of either envelope (`code` or `error.code`, number or text).
fn business_code(body: &Value) -> Option<i64> {
    at(body, &["error", "code"])
        .or_else(|| at(body, &["code"]))
        .and_then(number)
        .map(|c| c as i64)
}

/// The kind a business code means: 1000–1004 and 401 are auth problems,
/// 1302–1308 rate limits, 1309 an expired plan (no wait fixes that).
fn code_kind(code: i64) -> Option<ErrorKind> {
    match code {
        401 | 1000..=1004 => Some(ErrorKind::Auth),
        429 | 1302..=1308 => Some(ErrorKind::RateLimited),
        1309 => Some(ErrorKind::ApiError),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn counts_derive_each_other() {
        let read = |v: Value| {
            let counts = Counts::read(&v);
            (counts.total, counts.used, counts.remaining, counts.used_ratio())
        };
        let quarter = (Some(2000.0), Some(500.0), Some(1500.0), Some(0.25));
        assert_eq!(read(json!({"usage": 2000, "currentValue": 500})), quarter);
        assert_eq!(read(json!({"usage": 2000, "remaining": 1500})), quarter);
        assert_eq!(read(json!({"currentValue": 500, "remaining": 1500})), quarter);
        assert_eq!(read(json!({"total": 2000, "usage": 500})), quarter);
        assert_eq!(read(json!({"total": 2000, "remaining": 1500})), quarter);
        assert_eq!(read(json!({"currentValue": 500})), (None, Some(500.0), None, None));
        assert_eq!(read(json!({"usage": 0, "currentValue": 0})).3, None);
        assert_eq!(read(json!({"usage": -5, "currentValue": 1})).3, None);
    }
}
