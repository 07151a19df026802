//! The quota model: what a provider promises (`QuotaDefinition`), what it
//! reports (`UsageSnapshot`) and what we show (`ResolvedUsageWindow`).
//!
//! Resolution follows the tracker design (`platform-tracker.md` §3.2): every
//! field of a window is resolved on its own, explicit snapshot values win over
//! derived ones, ratios are clamped to 0..1, amounts are floored at 0 but never
//! capped (an overage is real), and an empty snapshot means "fully used".
//!
//! Two choices differ from the JavaScript source on purpose:
//!
//! - **Non-finite inputs are absent.** JavaScript kept `NaN` as a "present"
//!   value, which leaked `NaN` amounts into the footer. Here a `NaN` or
//!   infinite snapshot value is treated exactly as if the provider had not sent
//!   it, so every resolved number is finite.
//! - **An explicit total of 0 stays 0** (the tracker's first generation). A
//!   zero total derives no ratios from amounts, and amounts derived from ratios
//!   are 0.

use std::borrow::Cow;
use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The total a percentage-only quota is measured against.
pub const PERCENT_TOTAL: f64 = 100.0;

/// What one request to a model a multiplier table does not list costs.
pub const DEFAULT_MULTIPLIER: f64 = 1.0;

/// What a provider promises for one quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaDefinition {
    /// Stable id; snapshots name the quota they measure by this id.
    pub id: String,
    /// How the window moves: rolling, fixed or per session.
    pub window_type: WindowType,
    /// When the quota refills.
    pub reset_behavior: ResetBehavior,
    /// The shape of the allowance.
    #[serde(flatten)]
    pub kind: QuotaKind,
    /// How long a window of this quota is when the response gives no
    /// length ([`Length`]).
    #[serde(default, skip_serializing_if = "Length::is_stated")]
    pub length: Length,
}

/// A quota's length rule: how long one of its windows is when the
/// provider's response states no length (Copilot's month, Gemini's day).
/// A length the response states (`window_seconds`) always wins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Length {
    /// Only what the response states; unknown when it states none.
    #[default]
    Stated,
    /// A fixed number of seconds (a day that ends at the reset).
    Seconds { seconds: u64 },
    /// The calendar month that ends at the reset: from the same day and
    /// time one month before it (UTC; a day the earlier month lacks is
    /// its last day) to the reset. Unknown without a reset.
    CalendarMonth,
}

impl Length {
    /// True for [`Length::Stated`], the rule a definition leaves out of
    /// its JSON.
    pub fn is_stated(&self) -> bool {
        *self == Length::Stated
    }

    /// The length in seconds of a window that resets at `resets_at`;
    /// `None` when the rule gives none (a calendar month without a reset).
    pub fn seconds(self, resets_at: Option<Timestamp>) -> Option<u64> {
        match self {
            Length::Stated => None,
            Length::Seconds { seconds } => Some(seconds).filter(|seconds| *seconds > 0),
            Length::CalendarMonth => {
                let end = resets_at?.to_zoned(jiff::tz::TimeZone::UTC);
                let start = end.checked_sub(jiff::Span::new().months(1)).ok()?;
                let seconds = end.timestamp().duration_since(start.timestamp()).as_secs();
                u64::try_from(seconds).ok().filter(|seconds| *seconds > 0)
            }
        }
    }
}

/// The five shapes of allowance the tracker design knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QuotaKind {
    /// A time window of `seconds` (Claude's 5 h session, Codex's week).
    Duration { seconds: f64 },
    /// A countable allowance (Copilot premium requests, Kiro credits).
    Amount { amount: f64, unit: Unit },
    /// Only a percentage is known; the total is [`PERCENT_TOTAL`].
    PercentageOnly,
    /// A request allowance where each model costs `multipliers[model]`
    /// requests per request; a model absent from the table costs 1.
    Multiplier {
        base_amount: f64,
        multipliers: BTreeMap<String, f64>,
    },
    /// One window per model, combined by `aggregation`.
    PerModel { aggregation: Aggregation },
}

/// How a window moves through time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowType {
    Rolling,
    Fixed,
    Session,
}

/// When a quota refills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetBehavior {
    /// Usage ages out continuously (rolling windows).
    Continuous,
    /// Refills at a calendar boundary (the 1st of the month).
    Calendar,
    /// The window starts with the first use after a reset.
    SessionStart,
}

/// How per-model windows combine into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// The most constrained model (lowest remaining ratio).
    Min,
    /// The least constrained model (highest remaining ratio).
    Max,
    /// Amounts added over all models.
    Sum,
    /// No combination: one window per model.
    Individual,
}

/// What a window counts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Percent,
    Requests,
    Tokens,
    Credits,
    Seconds,
    /// A currency, as a lowercase ISO 4217 code (`usd`, `eur`).
    #[serde(untagged)]
    Currency(String),
}

/// One measurement a provider reported; every field is optional and resolved
/// independently against the quota it names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageSnapshot {
    /// The id of the [`QuotaDefinition`] this measures.
    pub quota: String,
    /// The window id when several windows share one quota (per-model
    /// windows, model-scoped weeks); defaults to the quota id.
    pub window: Option<String>,
    /// A short human label; defaults to the window id.
    pub label: Option<String>,
    pub model: Option<String>,
    pub remaining: Option<f64>,
    pub used: Option<f64>,
    pub remaining_ratio: Option<f64>,
    pub used_ratio: Option<f64>,
    /// Overrides the quota's total for this snapshot (a real entitlement
    /// instead of a declared one).
    pub limit: Option<f64>,
    /// No meter at all: the provider says this allowance is unlimited.
    pub unlimited: bool,
    pub unit: Option<Unit>,
    /// `None` when the window has not started or the provider gives no reset.
    pub resets_at: Option<Timestamp>,
    pub window_seconds: Option<u64>,
    /// Requests per model, for multiplier quotas.
    pub requests_by_model: BTreeMap<String, f64>,
}

/// A window as users see it: every ratio in 0..1, every amount ≥ 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedUsageWindow {
    pub id: String,
    pub quota: String,
    pub label: String,
    pub model: Option<String>,
    /// `None` only for unlimited windows.
    pub remaining: Option<f64>,
    /// `None` only for unlimited windows the provider gave no count for.
    pub used: Option<f64>,
    pub remaining_ratio: f64,
    pub used_ratio: f64,
    /// The total the amounts are measured against; `None` when unlimited.
    pub limit: Option<f64>,
    pub unit: Unit,
    pub resets_at: Option<Timestamp>,
    pub window_seconds: Option<u64>,
    pub window_type: WindowType,
    pub reset_behavior: ResetBehavior,
    /// The models this window counts: the snapshot's model, or every model
    /// a per-model aggregate combined (sorted); empty when the window is not
    /// scoped to models.
    pub model_ids: Vec<String>,
}

impl QuotaDefinition {
    pub fn new(id: &str, window_type: WindowType, reset: ResetBehavior, kind: QuotaKind) -> Self {
        Self {
            id: id.to_owned(),
            window_type,
            reset_behavior: reset,
            kind,
            length: Length::Stated,
        }
    }

    /// The same quota with `length` as its length rule.
    pub fn with_length(mut self, length: Length) -> Self {
        self.length = length;
        self
    }

    /// The length of this quota's window that resets at `resets_at`, by
    /// its rule, when the response states none.
    pub fn length_seconds(&self, resets_at: Option<Timestamp>) -> Option<u64> {
        self.length.seconds(resets_at)
    }

    /// A rolling percent-only window (Claude's week, Codex's windows).
    pub fn rolling_percent(id: &str) -> Self {
        Self::new(
            id,
            WindowType::Rolling,
            ResetBehavior::Continuous,
            QuotaKind::PercentageOnly,
        )
    }

    /// A countable monthly allowance whose total each snapshot brings;
    /// its window is the calendar month that ends at its reset.
    pub fn monthly_amount(id: &str, unit: Unit) -> Self {
        Self::new(
            id,
            WindowType::Fixed,
            ResetBehavior::Calendar,
            QuotaKind::Amount { amount: 0.0, unit },
        )
        .with_length(Length::CalendarMonth)
    }

    /// Per-model windows combined by `aggregation`.
    pub fn per_model(id: &str, window_type: WindowType, aggregation: Aggregation) -> Self {
        let reset = match window_type {
            WindowType::Rolling => ResetBehavior::Continuous,
            _ => ResetBehavior::Calendar,
        };
        Self::new(id, window_type, reset, QuotaKind::PerModel { aggregation })
    }

    pub fn is_duration(&self) -> bool {
        matches!(self.kind, QuotaKind::Duration { .. })
    }

    pub fn is_amount(&self) -> bool {
        matches!(self.kind, QuotaKind::Amount { .. })
    }

    pub fn is_percentage_only(&self) -> bool {
        matches!(self.kind, QuotaKind::PercentageOnly)
    }

    pub fn is_multiplier(&self) -> bool {
        matches!(self.kind, QuotaKind::Multiplier { .. })
    }

    pub fn is_per_model(&self) -> bool {
        matches!(self.kind, QuotaKind::PerModel { .. })
    }

    /// True when the quota combines its snapshots into one window (per-model
    /// min, max or sum) rather than resolving each on its own.
    pub fn aggregates(&self) -> bool {
        matches!(self.kind, QuotaKind::PerModel { aggregation } if aggregation != Aggregation::Individual)
    }

    /// The total amounts are measured against. A non-finite or negative
    /// declared total counts as 0.
    pub fn total(&self) -> f64 {
        let declared = match &self.kind {
            QuotaKind::Duration { seconds } => *seconds,
            QuotaKind::Amount { amount, .. } => *amount,
            QuotaKind::Multiplier { base_amount, .. } => *base_amount,
            QuotaKind::PercentageOnly | QuotaKind::PerModel { .. } => PERCENT_TOTAL,
        };
        finite(declared).map_or(0.0, |total| total.max(0.0))
    }

    /// The unit amounts are counted in, unless a snapshot says otherwise.
    pub fn unit(&self) -> Unit {
        match &self.kind {
            QuotaKind::Duration { .. } => Unit::Seconds,
            QuotaKind::Amount { unit, .. } => unit.clone(),
            QuotaKind::Multiplier { .. } => Unit::Requests,
            QuotaKind::PercentageOnly | QuotaKind::PerModel { .. } => Unit::Percent,
        }
    }

    /// The cost of one request to `model` under a multiplier quota (1 for
    /// any other quota, or a model the table does not list). See
    /// [`QuotaDefinition::table_entry_for`] for how a model id finds its row.
    pub fn multiplier_for(&self, model: &str) -> f64 {
        self.multiplier_table()
            .map_or(DEFAULT_MULTIPLIER, |table| table.multiplier_for(model))
    }

    /// The row of a multiplier quota's table that `model` matches, as
    /// pi-sub matches it: every token of the table's name (lower-cased,
    /// split on anything not a letter or digit) is among the model id's
    /// tokens, and the name with the most tokens wins (then the longest
    /// name). So `claude-sonnet-4-5`, `Claude Sonnet 4.5` and
    /// `github-copilot/claude-sonnet-4.5` all find `claude-sonnet-4.5`, and
    /// `gpt-5.1-codex-mini` finds its own row rather than `gpt-5.1`. `None`
    /// for a model the table does not list, or a quota without a table.
    pub fn table_entry_for(&self, model: &str) -> Option<(&str, f64)> {
        self.multiplier_table()?.entry_for(model)
    }

    /// A multiplier quota's table with each name split into tokens once,
    /// for matching many models (a status derives every model of the
    /// table, a walk quadratic in its length); `None` for any other quota.
    pub fn multiplier_table(&self) -> Option<MultiplierTable<'_>> {
        let QuotaKind::Multiplier { multipliers, .. } = &self.kind else {
            return None;
        };
        let rows = multipliers
            .iter()
            .map(|(name, multiplier)| (tokens(name), name.as_str(), *multiplier))
            .collect();
        Some(MultiplierTable { rows })
    }

    /// The per-model table of a multiplier quota (empty for any other).
    pub fn multipliers(&self) -> Option<&BTreeMap<String, f64>> {
        match &self.kind {
            QuotaKind::Multiplier { multipliers, .. } => Some(multipliers),
            _ => None,
        }
    }

    /// How many more requests to `model` fit in `remaining` base requests,
    /// `floor(remaining / multiplier)`; `None` when the model costs nothing.
    /// A quotient a rounding error short of a whole number (`0.7 / 0.1`)
    /// counts as that number.
    pub fn requests_left_for(&self, model: &str, remaining: f64) -> Option<f64> {
        requests_left(self.multiplier_for(model), remaining)
    }
}

impl UsageSnapshot {
    /// An empty snapshot of quota `quota` (which, resolved as is, reads fully used).
    pub fn of(quota: &str) -> Self {
        Self {
            quota: quota.to_owned(),
            ..Self::default()
        }
    }

    /// The window id, label and model of a per-model or scoped window.
    pub fn window(mut self, id: impl Into<String>, label: impl Into<String>) -> Self {
        self.window = Some(id.into());
        self.label = Some(label.into());
        self
    }

    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// A used percentage on the 0–100 scale.
    pub fn used_percent(mut self, percent: f64) -> Self {
        self.used_ratio = Some(percent / 100.0);
        self
    }

    /// A remaining fraction on the 0–1 scale.
    pub fn remaining_fraction(mut self, fraction: f64) -> Self {
        self.remaining_ratio = Some(fraction);
        self
    }

    pub fn resets_at(mut self, at: Option<Timestamp>) -> Self {
        self.resets_at = at;
        self
    }

    pub fn window_seconds(mut self, seconds: Option<u64>) -> Self {
        self.window_seconds = seconds;
        self
    }

    pub fn unit(mut self, unit: Unit) -> Self {
        self.unit = Some(unit);
        self
    }

    /// Absolute counts: the allowance and how much of it is used.
    pub fn amounts(mut self, limit: Option<f64>, used: Option<f64>) -> Self {
        self.limit = limit;
        self.used = used;
        self
    }
}

/// Resolves one snapshot against the quota it measures (the tracker's
/// `resolveUsageWindow`, see the module doc for the two deliberate changes).
pub fn resolve_usage_window(quota: &QuotaDefinition, snapshot: &UsageSnapshot) -> ResolvedUsageWindow {
    let id = snapshot.window.clone().unwrap_or_else(|| quota.id.clone());
    let label = snapshot.label.clone().unwrap_or_else(|| id.clone());
    let unit = snapshot.unit.clone().unwrap_or_else(|| quota.unit());
    let mut window = ResolvedUsageWindow {
        id,
        quota: quota.id.clone(),
        label,
        model: snapshot.model.clone(),
        remaining: None,
        used: None,
        remaining_ratio: 1.0,
        used_ratio: 0.0,
        limit: None,
        unit,
        resets_at: snapshot.resets_at,
        window_seconds: snapshot.window_seconds,
        window_type: quota.window_type,
        reset_behavior: quota.reset_behavior,
        model_ids: snapshot.model.iter().cloned().collect(),
    };
    if snapshot.unlimited {
        window.used = snapshot.used.and_then(finite).map(|used| used.max(0.0));
        return window;
    }

    let total = snapshot
        .limit
        .and_then(finite)
        .filter(|limit| *limit >= 0.0)
        .unwrap_or_else(|| quota.total());
    let s_remaining = snapshot.remaining.and_then(finite);
    let s_used = snapshot
        .used
        .and_then(finite)
        .or_else(|| multiplied_use(quota, snapshot));
    let s_remaining_ratio = snapshot.remaining_ratio.and_then(finite);
    let s_used_ratio = snapshot.used_ratio.and_then(finite);

    let remaining_n = s_remaining.or_else(|| s_used.map(|used| (total - used).max(0.0)));
    let used_n = s_used.or_else(|| s_remaining.map(|remaining| (total - remaining).max(0.0)));
    let ratio_of = |amount: f64| (total > 0.0).then(|| clamp01(amount / total));

    let remaining_ratio = clamp01(
        s_remaining_ratio
            .or_else(|| remaining_n.and_then(ratio_of))
            .unwrap_or_else(|| s_used_ratio.map_or(0.0, |used| 1.0 - used)),
    );
    let used_ratio = clamp01(
        s_used_ratio
            .or_else(|| used_n.and_then(ratio_of))
            .unwrap_or(1.0 - remaining_ratio),
    );
    window.remaining = Some(remaining_n.unwrap_or(remaining_ratio * total).max(0.0));
    window.used = Some(used_n.unwrap_or(used_ratio * total).max(0.0));
    window.remaining_ratio = remaining_ratio;
    window.used_ratio = used_ratio;
    window.limit = Some(total);
    window
}

/// Resolves every snapshot of one quota, combining per-model windows by the
/// quota's aggregation strategy.
pub fn resolve_quota(quota: &QuotaDefinition, snapshots: &[&UsageSnapshot]) -> Vec<ResolvedUsageWindow> {
    let windows: Vec<_> = snapshots
        .iter()
        .map(|snapshot| resolve_usage_window(quota, snapshot))
        .collect();
    let QuotaKind::PerModel { aggregation } = quota.kind else {
        return windows;
    };
    let by_remaining =
        |a: &&ResolvedUsageWindow, b: &&ResolvedUsageWindow| a.remaining_ratio.total_cmp(&b.remaining_ratio);
    let chosen = match aggregation {
        Aggregation::Individual => return windows,
        Aggregation::Sum => return sum_windows(quota, &windows).into_iter().collect(),
        Aggregation::Min => windows.iter().min_by(by_remaining),
        Aggregation::Max => windows.iter().max_by(by_remaining),
    };
    chosen
        .map(|window| ResolvedUsageWindow {
            id: quota.id.clone(),
            label: quota.id.clone(),
            model_ids: models_of(&windows),
            ..window.clone()
        })
        .into_iter()
        .collect()
}

/// Adds per-model windows into one: amounts and totals add up, ratios are
/// recomputed from the sums.
fn sum_windows(quota: &QuotaDefinition, windows: &[ResolvedUsageWindow]) -> Option<ResolvedUsageWindow> {
    let first = windows.first()?;
    let add = |field: fn(&ResolvedUsageWindow) -> Option<f64>| windows.iter().map(field).sum::<Option<f64>>();
    let used = add(|w| w.used);
    let remaining = add(|w| w.remaining);
    let limit = add(|w| w.limit);
    let ratio = |amount: Option<f64>| match (amount, limit) {
        (Some(amount), Some(limit)) if limit > 0.0 => Some(clamp01(amount / limit)),
        _ => None,
    };
    let used_ratio =
        ratio(used).unwrap_or_else(|| windows.iter().map(|w| w.used_ratio).sum::<f64>() / windows.len() as f64);
    Some(ResolvedUsageWindow {
        id: quota.id.clone(),
        label: quota.id.clone(),
        model: None,
        used,
        remaining,
        limit,
        used_ratio,
        remaining_ratio: ratio(remaining).unwrap_or(1.0 - used_ratio),
        resets_at: windows.iter().filter_map(|w| w.resets_at).min(),
        model_ids: models_of(windows),
        ..first.clone()
    })
}

/// Every model the windows count, sorted and without repeats.
fn models_of(windows: &[ResolvedUsageWindow]) -> Vec<String> {
    let models: std::collections::BTreeSet<&String> = windows.iter().flat_map(|w| &w.model_ids).collect();
    models.into_iter().cloned().collect()
}

/// How many requests costing `multiplier` fit in `remaining` base
/// requests ([`QuotaDefinition::requests_left_for`]).
pub fn requests_left(multiplier: f64, remaining: f64) -> Option<f64> {
    let quotient = remaining.max(0.0) / multiplier;
    (multiplier > 0.0).then(|| (quotient + quotient.abs() * 1e-12).floor())
}

/// A model id's tokens: lower-cased runs of letters and digits.
fn tokens(text: &str) -> Vec<Cow<'_, str>> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|token| !token.is_empty())
        .map(|token| {
            // Most names are lower-case ASCII already: those need no copy.
            if token
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit())
            {
                Cow::Borrowed(token)
            } else {
                Cow::Owned(token.to_lowercase())
            }
        })
        .collect()
}

/// A multiplier quota's table, split into tokens once
/// ([`QuotaDefinition::multiplier_table`]).
pub struct MultiplierTable<'q> {
    rows: Vec<(Vec<Cow<'q, str>>, &'q str, f64)>,
}

impl<'q> MultiplierTable<'q> {
    /// The row `model` matches ([`QuotaDefinition::table_entry_for`]).
    pub fn entry_for(&self, model: &str) -> Option<(&'q str, f64)> {
        let model_tokens = tokens(model);
        let mut best: Option<((usize, usize), &'q str, f64)> = None;
        for (row_tokens, name, multiplier) in &self.rows {
            let listed = !row_tokens.is_empty() && row_tokens.iter().all(|token| model_tokens.contains(token));
            let rank = (row_tokens.len(), name.len());
            // Ties go to the later name, as `max_by_key` would have it.
            if listed && best.is_none_or(|(best, ..)| rank >= best) {
                best = Some((rank, name, *multiplier));
            }
        }
        best.map(|(_, name, multiplier)| (name, multiplier))
    }

    /// The cost of one request to `model` ([`DEFAULT_MULTIPLIER`] for a
    /// model not listed).
    pub fn multiplier_for(&self, model: &str) -> f64 {
        self.entry_for(model)
            .and_then(|(_, multiplier)| finite(multiplier))
            .map_or(DEFAULT_MULTIPLIER, |m| m.max(0.0))
    }
}

/// Effective use of a multiplier quota: Σ requests × multiplier(model).
fn multiplied_use(quota: &QuotaDefinition, snapshot: &UsageSnapshot) -> Option<f64> {
    if snapshot.requests_by_model.is_empty() {
        return None;
    }
    let table = quota.multiplier_table()?;
    let used = snapshot
        .requests_by_model
        .iter()
        .filter_map(|(model, requests)| finite(*requests).map(|r| r.max(0.0) * table.multiplier_for(model)))
        .sum();
    Some(used)
}

/// `Some(value)` when `value` is finite.
pub fn finite(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}

/// Clamps to 0..1; a non-finite value is 0.
pub fn clamp01(value: f64) -> f64 {
    if value.is_finite() { value.clamp(0.0, 1.0) } else { 0.0 }
}
