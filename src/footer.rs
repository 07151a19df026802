//! Footer values: single named values read out of a status view, for host
//! footers and `status --format`. These are the tracker's context
//! providers, which the source declared but never wired up (its registry
//! returned an empty list).
//!
//! Names are `<provider>.<window>.<value>` for windows and
//! `<provider>.<value>` for providers:
//!
//! | value | meaning |
//! |---|---|
//! | `used_percent`, `remaining_percent` | whole percent of the window |
//! | `used`, `remaining`, `total` | amounts in the window's unit (durations for time windows) |
//! | `progress` | how much of the window's *time* has passed, in percent (the source returned the used share under this name) |
//! | `resets_in` | time until the window resets (`2h13m`) |
//! | `remaining_time` | time left in a window measured in time |
//! | `state`, `age`, `label`, `plan` | per provider: freshness, age of the values, name, plan |
//!
//! A value that is unknown right now (no data yet, a reset that has passed)
//! renders as `--`; a name that can never exist is an error listing the
//! valid names.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::providers::ProviderId;
use crate::quota::Unit;
use crate::status::compact_duration;
use crate::wire::{ProviderStatus, Status, Window};

/// What a window offers.
pub const WINDOW_VALUES: [&str; 8] = [
    "progress",
    "used_percent",
    "remaining_percent",
    "used",
    "remaining",
    "total",
    "resets_in",
    "remaining_time",
];

/// What a provider offers.
pub const PROVIDER_VALUES: [&str; 4] = ["state", "age", "label", "plan"];

/// The text of an unknown value.
pub const UNKNOWN: &str = "--";

/// Why a template cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FooterError {
    /// A placeholder names nothing that exists.
    #[error(
        "unknown footer value {name:?}; names are PROVIDER.VALUE ({}) or PROVIDER.WINDOW.VALUE ({}); windows now: {}",
        PROVIDER_VALUES.join(", "),
        WINDOW_VALUES.join(", "),
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

/// Every named value of `view` at `now`.
pub fn values(view: &Status, now: Timestamp) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    for provider in &view.providers {
        let id = provider.id;
        for name in PROVIDER_VALUES {
            values.insert(format!("{id}.{name}"), provider_value(provider, name));
        }
        for window in &provider.windows {
            for name in WINDOW_VALUES {
                values.insert(format!("{id}.{}.{name}", window.id), window_value(window, name, now));
            }
        }
    }
    values
}

/// Renders `template`, replacing each `{name}` with its value. A known
/// provider with no windows yet renders its window values as `--`.
pub fn render(template: &str, view: &Status, now: Timestamp) -> Result<String, FooterError> {
    let values = values(view, now);
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or(FooterError::Unclosed {
            position: template.len() - rest.len() + open,
        })?;
        let name = after[..close].trim();
        match values.get(name) {
            Some(value) => out.push_str(value),
            None if awaits_data(name, view) => out.push_str(UNKNOWN),
            None => {
                let windows = view
                    .providers
                    .iter()
                    .filter(|p| !p.windows.is_empty())
                    .map(|p| {
                        let ids: Vec<&str> = p.windows.iter().map(|w| w.id.as_str()).collect();
                        format!("{}: {}", p.id, ids.join(", "))
                    })
                    .collect();
                return Err(FooterError::UnknownName {
                    name: name.to_owned(),
                    windows,
                });
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A well-formed window value of a provider that has no windows to show
/// (no data yet, inactive, or not in the view): unknown, not an error.
fn awaits_data(name: &str, view: &Status) -> bool {
    let mut parts = name.splitn(2, '.');
    let (Some(provider), Some(rest)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Ok(id) = provider.parse::<ProviderId>() else {
        return false;
    };
    let Some((window, value)) = rest.rsplit_once('.') else {
        return PROVIDER_VALUES.contains(&rest);
    };
    let has_windows = view.providers.iter().any(|p| p.id == id && !p.windows.is_empty());
    !window.is_empty() && WINDOW_VALUES.contains(&value) && !has_windows
}

fn provider_value(provider: &ProviderStatus, name: &str) -> String {
    match name {
        "state" => provider.state.as_str().to_owned(),
        "age" => provider.age_s.map_or_else(|| UNKNOWN.to_owned(), compact_duration),
        "label" => provider.label.clone(),
        "plan" => provider.plan.clone().unwrap_or_else(|| UNKNOWN.to_owned()),
        _ => UNKNOWN.to_owned(),
    }
}

fn window_value(window: &Window, name: &str, now: Timestamp) -> String {
    let percent = |ratio: Option<f64>| ratio.map(|r| format!("{}", (r * 100.0).round().clamp(0.0, 100.0)));
    let is_time = window.unit == Some(Unit::Seconds);
    let amount = |value: Option<f64>| {
        value.map(|v| {
            if is_time {
                compact_duration(v.max(0.0).round() as u64)
            } else {
                format!("{}", v.round())
            }
        })
    };
    let until_reset = window
        .resets_at
        .as_deref()
        .and_then(|text| text.parse::<Timestamp>().ok())
        .map(|reset| reset.duration_since(now).as_secs())
        .filter(|seconds| *seconds > 0);
    let value = match name {
        "used_percent" => percent(window.used_ratio),
        "remaining_percent" => percent(window.remaining_ratio),
        "used" => amount(window.used),
        "remaining" => amount(window.remaining),
        "total" => amount(window.limit),
        "resets_in" => until_reset.map(|s| compact_duration(s as u64)),
        "remaining_time" => window.remaining.filter(|_| is_time).and_then(|v| amount(Some(v))),
        "progress" => match (until_reset, window.window_seconds) {
            (Some(left), Some(length)) if length > 0 => {
                let elapsed = 1.0 - (left as f64 / length as f64);
                Some(format!("{}", (elapsed * 100.0).round().clamp(0.0, 100.0)))
            }
            _ => None,
        },
        _ => None,
    };
    value.unwrap_or_else(|| UNKNOWN.to_owned())
}
