//! Footer values: single named values read out of a status view, for host
//! footers and `status --format`. These are the tracker's context
//! providers (`platform-tracker.md` §1.5), which the source declared but
//! never wired up (its registry returned an empty list); the names follow
//! its metrics in snake case, and each window value is also a field of the
//! window in `status --json`.
//!
//! Names are `<provider>.<value>` for providers, `<provider>.<window>.<value>`
//! for windows and `<provider>.<window>.<value>.<model>` for what a request
//! to one model costs under a multiplier quota (Copilot's `premium`):
//!
//! | value | meaning | `status --json` field |
//! |---|---|---|
//! | `used_percent`, `remaining_percent` | whole percent of the window used / left | `used_percent`, `remaining_percent` |
//! | `used`, `remaining`, `total` | amounts in the window's unit (durations for windows counted in seconds) | `used`, `remaining`, `total` |
//! | `progress` | how much of the window's *time* has passed, whole percent (the source returned the used share under this name) | `progress` |
//! | `used_time`, `remaining_time`, `total_time` | time the window has run, has left until its reset, and its length (`2h13m`) | `used_time_s`, `remaining_time_s`, `total_time_s` |
//! | `used_time_s`, `remaining_time_s`, `total_time_s` | the same in whole seconds | the same |
//! | `resets_in` | time until the window resets (`2h13m`) | `remaining_time_s` |
//! | `pace_stage` | `on_track`, `ahead`, `far_ahead`, `behind`, `far_behind` or `unknown` | `pace.stage` |
//! | `pace_expected_percent` | what even use would have spent by now, whole percent | `pace.expected_used_ratio` |
//! | `pace_delta` | used less expected, in signed percentage points (`+12`) | `pace.delta` |
//! | `pace_projected_percent` | the used share at the reset at the recent slope, whole percent (above 100 when it runs out first) | `pace.projected_at_reset` |
//! | `pace_runs_out_in` | time until the window runs out at the recent slope, when before its reset (`0s` when it has) | `pace.runs_out_at` |
//! | `requests_left.<model>` | multiplier quotas: requests to `<model>` that fit in what is left, `floor(remaining / multiplier)`; `unlimited` for a free (0×) model | `requests_left_by_model` |
//! | `multiplier.<model>` | multiplier quotas: premium requests one request to `<model>` costs | `requests_left_by_model` |
//! | `state`, `age`, `label`, `plan` | per provider: freshness, age of the values, name, plan | `state`, `age_s`, `label`, `plan` |
//!
//! The value may also be written as platform-tracker §1.5 names its
//! metrics, hyphens and all: `used-percent`, `remaining-time`,
//! `used-amount` (the amount values), `progress-percentage`,
//! `quota-used-percentage`, `quota-remaining-percentage`
//! (`{codex.5h.used-amount}` is `{codex.5h.used}`).
//!
//! Whole percents of one window add up: `remaining_percent` is 100 less
//! the rounded `used_percent` (25.5 % used shows 26 and 74, not 26 and 75).
//! Durations read like the status line's: `45s`, `54m`, `2h13m`, `3d21h`.
//!
//! `<model>` may be any model id: it finds its row of the quota's table as
//! [`QuotaDefinition::table_entry_for`] says (`claude-sonnet-4-5` finds
//! `claude-sonnet-4.5`), and a model the table does not list costs 1.
//!
//! Every value is derived at the clock reading the template is rendered
//! at. A value that is unknown right now (no data yet, a window without a
//! length or reset time, a reset that has passed) renders as `--`; a name
//! that can never exist is an error listing the valid names.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::providers::ProviderId;
use crate::quota::{QuotaDefinition, Unit};
use crate::status::{compact_duration, model_requests, multiplier_quota};
use crate::wire::{ModelRequests, ProviderStatus, Status, StatusWindow};

/// What a window offers.
pub const WINDOW_VALUES: [&str; 18] = [
    "progress",
    "used_percent",
    "remaining_percent",
    "used",
    "remaining",
    "total",
    "used_time",
    "remaining_time",
    "total_time",
    "used_time_s",
    "remaining_time_s",
    "total_time_s",
    "resets_in",
    "pace_stage",
    "pace_expected_percent",
    "pace_delta",
    "pace_projected_percent",
    "pace_runs_out_in",
];

/// What a multiplier window offers per model (`<value>.<model>`).
pub const MODEL_VALUES: [&str; 2] = ["requests_left", "multiplier"];

/// What a provider offers.
pub const PROVIDER_VALUES: [&str; 4] = ["state", "age", "label", "plan"];

/// The text of an unknown value.
pub const UNKNOWN: &str = "--";

/// The text of a request count that has no limit (a free model).
pub const UNLIMITED: &str = "unlimited";

/// Why a template cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FooterError {
    /// A placeholder names nothing that exists.
    #[error(
        "unknown footer value {name:?}; names are PROVIDER.VALUE ({}), PROVIDER.WINDOW.VALUE ({}) or, for a multiplier quota, PROVIDER.WINDOW.VALUE.MODEL ({}); windows now: {}",
        PROVIDER_VALUES.join(", "),
        WINDOW_VALUES.join(", "),
        MODEL_VALUES.join(", "),
        if windows.is_empty() { "none yet".to_owned() } else { windows.join("; ") }
    )]
    UnknownName {
        /// The name as written.
        name: String,
        /// Per provider in the view, `provider: window, window, …`.
        windows: Vec<String>,
    },
    /// A `{` without its `}`.
    #[error("unclosed {{ at byte {position} of the template")]
    Unclosed {
        /// Where the `{` is.
        position: usize,
    },
}

/// Every named value of `view` at `now`: every provider and window value,
/// and the model values of each row of a multiplier quota's table.
pub fn values(view: &Status, now: Timestamp) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    for provider in &view.providers {
        let id = provider.id;
        for name in PROVIDER_VALUES {
            values.insert(format!("{id}.{name}"), provider_value(provider, name));
        }
        let quotas = id.provider().quotas();
        for window in &provider.windows {
            let window = derived(window, quotas, now);
            for name in WINDOW_VALUES {
                values.insert(format!("{id}.{}.{name}", window.id), window_value(&window, name, now));
            }
            for (model, requests) in &window.requests_left_by_model {
                for name in MODEL_VALUES {
                    values.insert(
                        format!("{id}.{}.{name}.{model}", window.id),
                        model_value(requests, name),
                    );
                }
            }
        }
    }
    values
}

/// Renders `template`, replacing each `{name}` with its value. A known
/// provider with no windows yet renders its window values as `--`.
pub fn render(template: &str, view: &Status, now: Timestamp) -> Result<String, FooterError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or(FooterError::Unclosed {
            position: template.len() - rest.len() + open,
        })?;
        let written = after[..close].trim();
        let canonical = canonical_name(written);
        let name = canonical.as_str();
        match value(name, view, now) {
            Some(value) => out.push_str(&value),
            None => match model_value_by_name(name, view, now) {
                Some(value) => out.push_str(&value),
                None if awaits_data(name, view) => out.push_str(UNKNOWN),
                None => return Err(unknown_name(name, view)),
            },
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The value [`values`] holds under `name`, found without deriving the
/// others: a template names a few of the view's hundreds of values. As in
/// [`values`], a later provider or window of the same id wins.
fn value(name: &str, view: &Status, now: Timestamp) -> Option<String> {
    let (id, rest) = name.split_once('.')?;
    let mut providers = view.providers.iter().rev().filter(|p| p.id.as_str() == id);
    providers.find_map(|provider| {
        if PROVIDER_VALUES.contains(&rest) {
            return Some(provider_value(provider, rest));
        }
        let quotas = provider.id.provider().quotas();
        provider.windows.iter().rev().find_map(|window| {
            let tail = rest.strip_prefix(window.id.as_str())?.strip_prefix('.')?;
            if WINDOW_VALUES.contains(&tail) {
                return Some(window_value(&derived(window, quotas, now), tail, now));
            }
            let (word, model) = tail.split_once('.')?;
            let word = MODEL_VALUES.iter().find(|value| **value == word)?;
            let window = derived(window, quotas, now);
            Some(model_value(window.requests_left_by_model.get(model)?, word))
        })
    })
}

/// `name` with its value word in this module's spelling: a §1.5 metric
/// name (`used-percent`, `used_amount`, `quota-used-percentage`) becomes
/// the value it is (`used_percent`, `used`, `used_percent`). Other names
/// are kept as written.
fn canonical_name(name: &str) -> String {
    let Some((head, value)) = name.rsplit_once('.') else {
        return name.to_owned();
    };
    if WINDOW_VALUES.contains(&value) || PROVIDER_VALUES.contains(&value) {
        return name.to_owned();
    }
    let snake = value.replace('-', "_");
    let value = match snake.as_str() {
        "used_amount" => "used",
        "remaining_amount" => "remaining",
        "total_amount" => "total",
        "progress_percentage" => "progress",
        "quota_used_percentage" => "used_percent",
        "quota_remaining_percentage" => "remaining_percent",
        other if WINDOW_VALUES.contains(&other) => other,
        _ => return name.to_owned(),
    };
    format!("{head}.{value}")
}

/// A name, taken apart.
#[derive(Debug, PartialEq)]
enum Name<'n> {
    Provider(ProviderId, &'n str),
    Window(ProviderId, &'n str, &'n str),
    Model(ProviderId, &'n str, &'n str, &'n str),
}

impl<'n> Name<'n> {
    /// `None` for a name of no known shape or provider. Window ids and
    /// model ids may hold dots (`gemini-2.5-pro`, `claude-sonnet-4.5`): a
    /// window value is the part after the last dot, a model value is found
    /// by its value word.
    fn parse(name: &'n str) -> Option<Name<'n>> {
        let (provider, rest) = name.split_once('.')?;
        let id = provider.parse::<ProviderId>().ok()?;
        let Some((window, value)) = rest.rsplit_once('.') else {
            return PROVIDER_VALUES.contains(&rest).then_some(Name::Provider(id, rest));
        };
        if !window.is_empty() && WINDOW_VALUES.contains(&value) {
            return Some(Name::Window(id, window, value));
        }
        MODEL_VALUES.iter().find_map(|value| {
            let (window, model) = rest.split_once(&format!(".{value}."))?;
            (!window.is_empty() && !model.is_empty()).then_some(Name::Model(id, window, value, model))
        })
    }
}

/// The value of a model name for a model the table may not list by that
/// id (`copilot.premium.requests_left.claude-sonnet-4-5`); `None` when
/// the name is not a model value of a multiplier window in the view.
fn model_value_by_name(name: &str, view: &Status, now: Timestamp) -> Option<String> {
    let Some(Name::Model(id, window_id, value, model)) = Name::parse(name) else {
        return None;
    };
    let provider = view.providers.iter().find(|p| p.id == id)?;
    let window = provider.windows.iter().find(|w| w.id == window_id)?;
    let quotas = id.provider().quotas();
    let window = derived(window, quotas, now);
    let quota = multiplier_quota(&window, quotas)?;
    Some(model_value(&model_requests(quota, &window, model), value))
}

/// A well-formed window or model value of a provider that has no windows
/// to show (no data yet, inactive, or not in the view): unknown, not an
/// error.
fn awaits_data(name: &str, view: &Status) -> bool {
    let has_windows = |id: ProviderId| view.providers.iter().any(|p| p.id == id && !p.windows.is_empty());
    match Name::parse(name) {
        Some(Name::Provider(..)) => true,
        Some(Name::Window(id, ..) | Name::Model(id, ..)) => !has_windows(id),
        None => false,
    }
}

fn unknown_name(name: &str, view: &Status) -> FooterError {
    let windows = view
        .providers
        .iter()
        .filter(|p| !p.windows.is_empty())
        .map(|p| {
            let ids: Vec<&str> = p.windows.iter().map(|w| w.id.as_str()).collect();
            format!("{}: {}", p.id, ids.join(", "))
        })
        .collect();
    FooterError::UnknownName {
        name: name.to_owned(),
        windows,
    }
}

/// `window` with its values derived at `now`.
fn derived(window: &StatusWindow, quotas: &[QuotaDefinition], now: Timestamp) -> StatusWindow {
    let mut window = window.clone();
    crate::status::settle_window(&mut window, quotas, now);
    window
}

fn provider_value(provider: &ProviderStatus, name: &str) -> String {
    match name {
        "state" => provider.state.as_str().to_owned(),
        "age" => provider.age_s.map_or_else(|| UNKNOWN.to_owned(), readable_duration),
        "label" => provider.label.clone(),
        "plan" => provider.plan.clone().unwrap_or_else(|| UNKNOWN.to_owned()),
        _ => UNKNOWN.to_owned(),
    }
}

/// One window value of a window derived at the clock reading.
fn window_value(window: &StatusWindow, name: &str, now: Timestamp) -> String {
    let pace = window.pace.as_ref();
    let whole_percent = |percent: Option<f64>| percent.map(|p| format!("{}", p.round().clamp(0.0, 100.0)));
    let is_time = window.unit == Some(Unit::Seconds);
    let amount = |value: Option<f64>| {
        value.map(|v| {
            if is_time {
                readable_duration(v.max(0.0).round() as u64)
            } else {
                format!("{}", v.round())
            }
        })
    };
    let duration = |seconds: Option<u64>| seconds.map(readable_duration);
    let seconds = |seconds: Option<u64>| seconds.map(|s| s.to_string());
    let value = match name {
        "used_percent" => whole_percent(window.used_percent),
        "remaining_percent" => match window.used_percent {
            Some(used) if window.remaining_percent.is_some() => whole_percent(Some(100.0 - used.round())),
            _ => whole_percent(window.remaining_percent),
        },
        "progress" => whole_percent(window.progress),
        "used" => amount(window.used),
        "remaining" => amount(window.remaining),
        "total" => amount(window.total),
        "used_time" => duration(window.used_time_s),
        "remaining_time" | "resets_in" => duration(window.remaining_time_s),
        "total_time" => duration(window.total_time_s),
        "used_time_s" => seconds(window.used_time_s),
        "remaining_time_s" => seconds(window.remaining_time_s),
        "total_time_s" => seconds(window.total_time_s),
        "pace_stage" => pace.map(|pace| pace.stage.clone()),
        "pace_expected_percent" => whole_percent(pace.and_then(|p| p.expected_used_ratio).map(|r| r * 100.0)),
        "pace_delta" => pace
            .and_then(|pace| pace.delta)
            .map(|delta| format!("{:+}", (delta * 100.0).round())),
        "pace_projected_percent" => pace
            .and_then(|pace| pace.projected_at_reset)
            .map(|ratio| format!("{}", (ratio * 100.0).round().max(0.0))),
        "pace_runs_out_in" => pace
            .and_then(|pace| pace.runs_out_at.as_deref())
            .and_then(|at| at.parse::<Timestamp>().ok())
            .map(|at| readable_duration(at.duration_since(now).as_secs().max(0).unsigned_abs())),
        _ => None,
    };
    value.unwrap_or_else(|| UNKNOWN.to_owned())
}

/// `45s`, `54m`, `2h13m`, and from a day on `3d21h` (not `3d`): as
/// exact as the status line at its most detailed.
fn readable_duration(seconds: u64) -> String {
    if seconds < 86_400 {
        compact_duration(seconds)
    } else {
        crate::status::relative(seconds as i64)
    }
}

fn model_value(requests: &ModelRequests, name: &str) -> String {
    match name {
        "multiplier" => format!("{}", requests.multiplier),
        "requests_left" if requests.multiplier <= 0.0 => UNLIMITED.to_owned(),
        "requests_left" => requests
            .requests_left
            .map_or_else(|| UNKNOWN.to_owned(), |left| format!("{left}")),
        _ => UNKNOWN.to_owned(),
    }
}
