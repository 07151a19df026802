//! The JSON formats other programs depend on, converted explicitly from
//! the internal types so that an internal change never changes a format by
//! accident. Numbers are rounded to 6 decimals (no `0.6299999999999999`),
//! times are RFC 3339 UTC with whole seconds.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};

use jiff::{Timestamp, Unit as TimeUnit};
use serde::{Deserialize, Serialize};

use crate::providers::{ErrorKind, FetchError, ParsedUsage, ProviderId};
use crate::quota::{ResetBehavior, ResolvedUsageWindow, Unit, WindowType};

/// The output of `quotatrack parse --json` (see `parse-contract.md`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ParseOutput {
    /// The response was understood.
    Usage {
        /// The provider id.
        provider: ProviderId,
        /// The plan label, when the response names one.
        plan: Option<String>,
        /// Resolved windows, in display order.
        windows: Vec<Window>,
    },
    /// The response is an error, classified.
    Error {
        /// The provider id.
        provider: ProviderId,
        /// What went wrong.
        error: ErrorBody,
    },
}

/// One window, as `parse --json` and `status --json` print it, and as
/// `fetch_completed` events carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Stable short id (`5h`, `7d-sonnet`, `premium`).
    pub id: String,
    /// Short human label.
    pub label: String,
    /// Share used, 0..1. Always present in `parse`; `null` in `status`
    /// once the window has reset (`reset_passed`).
    pub used_ratio: Option<f64>,
    /// Share left, 0..1; `null` exactly when `used_ratio` is.
    pub remaining_ratio: Option<f64>,
    /// Amount used, in `unit`; may exceed `limit` on overage.
    pub used: Option<f64>,
    /// Amount left, in `unit`, never negative.
    pub remaining: Option<f64>,
    /// The allowance, in `unit`; `null` when unlimited.
    pub limit: Option<f64>,
    /// `percent`, `requests`, `tokens`, `credits`, `seconds` or a currency code.
    pub unit: Option<Unit>,
    /// When the window resets; `null` when not started or unknown.
    pub resets_at: Option<String>,
    /// The window's length, when known.
    pub window_seconds: Option<u64>,
    /// The model of a per-model or model-scoped window.
    pub model: Option<String>,
    /// The id of the quota the window measures (`premium`, `7d`); the key
    /// to the provider's quota table. Not in `parse` output; absent in
    /// windows recorded before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<String>,
    /// How the window moves: `rolling` (usage ages out continuously),
    /// `fixed` (a calendar period) or `session` (starts with first use).
    /// Not in `parse` output; absent in windows recorded before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_type: Option<WindowType>,
    /// When the window refills: `continuous`, `calendar` or
    /// `session_start`. Same presence as `window_type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_behavior: Option<ResetBehavior>,
    /// The models a per-model or model-scoped window counts (every model an
    /// aggregate combined); absent when the window is not scoped to models.
    /// Not in `parse` output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_ids: Vec<String>,
    /// `status` only: the window has reset since it was read, so its
    /// amounts are unknown (`null`) until the next fetch; the old numbers
    /// say nothing about the new window.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset_passed: bool,
}

/// The `error` object of a failed parse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// `auth`, `rate_limited`, `unavailable`, `api_error` or `malformed`
    /// (and, from a live fetch, `redirected`).
    pub kind: ErrorKind,
    /// What the provider said, or what was wrong with the response.
    pub message: String,
    /// Seconds to wait, for `rate_limited` when the provider says.
    pub retry_after_s: Option<u64>,
}

impl ParseOutput {
    /// The output for one parse result.
    pub fn new(provider: ProviderId, result: &Result<ParsedUsage, FetchError>) -> Self {
        match result {
            Ok(usage) => ParseOutput::Usage {
                provider,
                plan: usage.plan.clone(),
                windows: usage.windows.iter().map(Window::parsed).collect(),
            },
            Err(error) => ParseOutput::Error {
                provider,
                error: ErrorBody::from(error),
            },
        }
    }

    /// A plain-text rendering for people, one line per window.
    pub fn to_text(&self) -> String {
        match self {
            ParseOutput::Usage {
                provider,
                plan,
                windows,
            } => {
                let mut out = match plan {
                    Some(plan) => format!("{provider} ({plan})\n"),
                    None => format!("{provider}\n"),
                };
                for window in windows {
                    out.push_str(&window.to_text());
                    out.push('\n');
                }
                out
            }
            ParseOutput::Error { provider, error } => {
                let retry = error
                    .retry_after_s
                    .map_or_else(String::new, |s| format!(" (retry after {s}s)"));
                format!("{provider}: {}: {}{retry}\n", error.kind.as_str(), error.message)
            }
        }
    }
}

impl Window {
    fn to_text(&self) -> String {
        let amounts = match (self.used, self.limit, &self.unit) {
            (_, _, Some(Unit::Percent)) => String::new(),
            (Some(used), Some(limit), Some(unit)) => {
                format!("  {used} of {limit} {}", unit_name(unit))
            }
            (_, None, _) => "  unlimited".to_owned(),
            _ => String::new(),
        };
        let reset = self
            .resets_at
            .as_deref()
            .map_or_else(|| "  no reset".to_owned(), |at| format!("  resets {at}"));
        format!(
            "  {:<24} {:>5.1}% used{amounts}{reset}",
            self.id,
            self.used_ratio.unwrap_or(f64::NAN) * 100.0
        )
    }
}

impl From<&FetchError> for ErrorBody {
    fn from(error: &FetchError) -> Self {
        ErrorBody {
            kind: error.kind(),
            message: error.message().to_owned(),
            retry_after_s: error.retry_after_s(),
        }
    }
}

impl From<&ResolvedUsageWindow> for Window {
    fn from(window: &ResolvedUsageWindow) -> Self {
        Window {
            id: window.id.clone(),
            label: window.label.clone(),
            used_ratio: Some(round6(window.used_ratio)),
            remaining_ratio: Some(round6(window.remaining_ratio)),
            used: window.used.map(round6),
            remaining: window.remaining.map(round6),
            limit: window.limit.map(round6),
            unit: Some(window.unit.clone()),
            resets_at: window.resets_at.map(rfc3339_seconds),
            window_seconds: window.window_seconds,
            model: window.model.clone(),
            quota: Some(window.quota.clone()),
            window_type: Some(window.window_type),
            reset_behavior: Some(window.reset_behavior),
            model_ids: window.model_ids.clone(),
            reset_passed: false,
        }
    }
}

impl Window {
    /// Whether `replayed` reads the same as this recorded window. A window
    /// recorded before windows said how they move (no `quota`) matches
    /// whatever the replayed one says of `quota`, `window_type`,
    /// `reset_behavior` and `model_ids`: those come from the quota table,
    /// not the response, so an older log still replays identical.
    pub fn same_reading(&self, replayed: &Window) -> bool {
        if self.quota.is_some() {
            return self == replayed;
        }
        let described_as_then = Window {
            quota: None,
            window_type: None,
            reset_behavior: None,
            model_ids: Vec::new(),
            ..replayed.clone()
        };
        *self == described_as_then
    }

    /// The window as `parse --json` prints it: the parse contract's fields
    /// only. How a window moves and which models it counts are the quota
    /// table's, not the response's; `status --json` shows them.
    pub fn parsed(window: &ResolvedUsageWindow) -> Window {
        Window {
            quota: None,
            window_type: None,
            reset_behavior: None,
            model_ids: Vec::new(),
            ..Window::from(window)
        }
    }
}

/// RFC 3339 in UTC with whole seconds (`2026-08-22T14:00:00Z`).
pub fn rfc3339_seconds(at: Timestamp) -> String {
    at.round(TimeUnit::Second)
        .unwrap_or(at)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn unit_name(unit: &Unit) -> &str {
    match unit {
        Unit::Percent => "percent",
        Unit::Requests => "requests",
        Unit::Tokens => "tokens",
        Unit::Credits => "credits",
        Unit::Seconds => "seconds",
        Unit::Currency(code) => code,
    }
}

/// Rounds to 6 decimals (no `0.6299999999999999`).
pub fn round6(value: f64) -> f64 {
    let rounded = (value * 1e6).round() / 1e6;
    if rounded.is_finite() { rounded + 0.0 } else { value }
}

/// The output of `status --json`, and the content of the snapshot file
/// (see `cli-contract.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The format version, 1.
    pub schema: u32,
    /// When this view was computed.
    pub generated_at: String,
    /// One entry per provider, in display order.
    pub providers: Vec<ProviderStatus>,
    /// In the snapshot file only: the stale threshold of the engine that
    /// wrote it (its settings in force, host patches included), in
    /// seconds, and the one its settings file alone gave. A reader whose
    /// file gives that same threshold judges by the engine's; one whose
    /// file was edited since judges by its own (the later edit wins, as
    /// for patched settings). [`crate::status::settle`] takes both out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_after_s: Option<u64>,
    /// See [`Status::stale_after_s`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_stale_after_s: Option<u64>,
}

/// One provider in `status --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderStatus {
    /// The provider id.
    pub id: ProviderId,
    /// The name users know it by.
    pub label: String,
    /// How far to trust `windows`.
    pub state: Freshness,
    /// When the windows were fetched.
    pub updated_at: Option<String>,
    /// Seconds since `updated_at`.
    pub age_s: Option<u64>,
    /// No request before this time.
    pub blocked_until: Option<String>,
    /// Consecutive failed fetches.
    pub fails: u32,
    /// The plan label, when known.
    pub plan: Option<String>,
    /// The windows of the last good fetch, with the values derived from
    /// them at `generated_at`.
    pub windows: Vec<StatusWindow>,
    /// The provider's public status page.
    pub status_page: Option<StatusPageBody>,
    /// The last error, when the last fetch failed or credentials are missing.
    pub error: Option<ErrorBody>,
    /// No credentials were found for it (absent when they were: a
    /// provider whose credentials were rejected has them).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub credentials_missing: bool,
}

/// One window in `status --json` and in the host protocol's `usage`: the
/// window as fetched, plus every value a footer can name, derived at the
/// view's clock reading (`generated_at`) and never stored. A derived value
/// is `null` when it cannot be known: the window has no length or reset
/// time, or its reset has passed (`reset_passed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StatusWindowFields")]
pub struct StatusWindow {
    /// The window as fetched.
    #[serde(flatten)]
    pub window: Window,
    /// The allowance, in `unit` (the same as `limit`, under the footer's
    /// name).
    pub total: Option<f64>,
    /// Share used, in percent 0..100.
    pub used_percent: Option<f64>,
    /// Share left, in percent 0..100.
    pub remaining_percent: Option<f64>,
    /// How much of the window's *time* has passed, in percent 0..100
    /// (`used_time_s / total_time_s`); not how much of it is used.
    pub progress: Option<f64>,
    /// Seconds of the window that have passed (`total_time_s -
    /// remaining_time_s`, never negative).
    pub used_time_s: Option<u64>,
    /// Seconds until the window resets.
    pub remaining_time_s: Option<u64>,
    /// The window's length in seconds.
    pub total_time_s: Option<u64>,
    /// For a multiplier quota (Copilot's premium requests): per model of
    /// the quota's table, what one request costs and how many requests
    /// are left at that cost.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests_left_by_model: BTreeMap<String, ModelRequests>,
    /// In the host protocol's `update_current` only: the same for the
    /// host's current model, under the id the host gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_model: Option<CurrentModelRequests>,
    /// Whether the window's usage lasts until its reset at the recent
    /// pace; `null` only in snapshots written before pace was kept.
    #[serde(default)]
    pub pace: Option<PaceBody>,
}

/// The `pace` object of a window in `status --json` (see [`crate::pace`]).
/// Every field but `stage`, `reason` and `readings` is `null` when it
/// cannot be known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaceBody {
    /// `on_track`, `ahead`, `far_ahead`, `behind`, `far_behind`, or
    /// `unknown` (then `reason` says why).
    pub stage: String,
    /// The used ratio even use over the window would have reached by now.
    pub expected_used_ratio: Option<f64>,
    /// `used_ratio - expected_used_ratio`: above 0 is more spent than even use.
    pub delta: Option<f64>,
    /// The used ratio at the reset if the recent slope holds (above 1
    /// when it runs out first).
    pub projected_at_reset: Option<f64>,
    /// When the window runs out at the recent slope, if before its reset.
    pub runs_out_at: Option<String>,
    /// Why the stage (`no_reset_time`, `reset_passed`, `no_readings`) or
    /// the projection (`too_few_readings`) is unknown; `null` when both are known.
    pub reason: Option<String>,
    /// The recent slope, in used ratio per hour.
    pub slope_per_hour: Option<f64>,
    /// How many readings the slope was drawn through.
    pub readings: usize,
}

/// What requests to one model cost under a multiplier quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRequests {
    /// Premium requests one request to the model costs (0 = free).
    pub multiplier: f64,
    /// `floor(remaining / multiplier)`; `null` when the model is free (no
    /// limit) or the remaining amount is unknown.
    pub requests_left: Option<f64>,
}

/// [`ModelRequests`] for the host's model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurrentModelRequests {
    /// The model id as the host gave it.
    pub model: String,
    /// The row of the table it matched; `null` when the table does not
    /// list it (it then costs 1).
    pub matched: Option<String>,
    /// Cost and requests left.
    #[serde(flatten)]
    pub requests: ModelRequests,
}

impl StatusWindow {
    /// A window with nothing derived yet.
    pub fn new(window: Window) -> StatusWindow {
        StatusWindow {
            window,
            total: None,
            used_percent: None,
            remaining_percent: None,
            progress: None,
            used_time_s: None,
            remaining_time_s: None,
            total_time_s: None,
            requests_left_by_model: BTreeMap::new(),
            current_model: None,
            pace: None,
        }
    }
}

/// A [`StatusWindow`] as it is read back: the fields of [`Window`] and its
/// own side by side. serde reads a `flatten`ed field by buffering the
/// whole object first, every key and string copied, which cost `status`
/// about a quarter of its run; a flat struct is read in one pass.
#[derive(Deserialize)]
struct StatusWindowFields {
    id: String,
    label: String,
    used_ratio: Option<f64>,
    remaining_ratio: Option<f64>,
    used: Option<f64>,
    remaining: Option<f64>,
    limit: Option<f64>,
    unit: Option<Unit>,
    resets_at: Option<String>,
    window_seconds: Option<u64>,
    model: Option<String>,
    #[serde(default)]
    quota: Option<String>,
    #[serde(default)]
    window_type: Option<WindowType>,
    #[serde(default)]
    reset_behavior: Option<ResetBehavior>,
    #[serde(default)]
    model_ids: Vec<String>,
    #[serde(default)]
    reset_passed: bool,
    total: Option<f64>,
    used_percent: Option<f64>,
    remaining_percent: Option<f64>,
    progress: Option<f64>,
    used_time_s: Option<u64>,
    remaining_time_s: Option<u64>,
    total_time_s: Option<u64>,
    #[serde(default)]
    requests_left_by_model: BTreeMap<String, ModelRequests>,
    #[serde(default)]
    current_model: Option<CurrentModelRequests>,
    #[serde(default)]
    pace: Option<PaceBody>,
}

impl From<StatusWindowFields> for StatusWindow {
    fn from(fields: StatusWindowFields) -> Self {
        StatusWindow {
            window: Window {
                id: fields.id,
                label: fields.label,
                used_ratio: fields.used_ratio,
                remaining_ratio: fields.remaining_ratio,
                used: fields.used,
                remaining: fields.remaining,
                limit: fields.limit,
                unit: fields.unit,
                resets_at: fields.resets_at,
                window_seconds: fields.window_seconds,
                model: fields.model,
                quota: fields.quota,
                window_type: fields.window_type,
                reset_behavior: fields.reset_behavior,
                model_ids: fields.model_ids,
                reset_passed: fields.reset_passed,
            },
            total: fields.total,
            used_percent: fields.used_percent,
            remaining_percent: fields.remaining_percent,
            progress: fields.progress,
            used_time_s: fields.used_time_s,
            remaining_time_s: fields.remaining_time_s,
            total_time_s: fields.total_time_s,
            requests_left_by_model: fields.requests_left_by_model,
            current_model: fields.current_model,
            pace: fields.pace,
        }
    }
}

impl From<Window> for StatusWindow {
    fn from(window: Window) -> Self {
        StatusWindow::new(window)
    }
}

impl Deref for StatusWindow {
    type Target = Window;

    fn deref(&self) -> &Window {
        &self.window
    }
}

impl DerefMut for StatusWindow {
    fn deref_mut(&mut self) -> &mut Window {
        &mut self.window
    }
}

/// The `status_page` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusPageBody {
    /// `none`, `minor`, `major`, `critical` or `maintenance`.
    pub indicator: String,
    /// The page's one-line description.
    pub description: Option<String>,
}

/// How far a provider's numbers can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Freshness {
    /// Fetched within the TTL.
    Fresh,
    /// The last good value is older than the TTL; `age_s` says how old.
    Stale,
    /// The provider asked us to wait; `blocked_until` says until when.
    RateLimited,
    /// No credentials, or the provider rejected them.
    AuthRequired,
    /// The provider or the network is failing; the last good value is kept.
    Unavailable,
    /// Disabled.
    Inactive,
    /// Never fetched.
    Unknown,
}

impl Freshness {
    /// The name, as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Freshness::Fresh => "fresh",
            Freshness::Stale => "stale",
            Freshness::RateLimited => "rate_limited",
            Freshness::AuthRequired => "auth_required",
            Freshness::Unavailable => "unavailable",
            Freshness::Inactive => "inactive",
            Freshness::Unknown => "unknown",
        }
    }
}
