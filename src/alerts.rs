//! Alerts: which ones fire now, decided by one pure function ([`decide`])
//! from the store, the `[alerts]` settings and a clock reading. The one
//! update cycle calls it after a cycle's answers are recorded and records
//! what it returns (`alert_fired` events), so a restart never fires an
//! alert twice (the store remembers what fired, see `store::Alarms`) and
//! replay reproduces every alert.
//!
//! The kinds: a window's used ratio crossing a threshold (a reading that
//! crosses several at once fires the highest; the lower ones count as
//! fired), a window exhausted (a ratio of 1), a window refilled (it reset,
//! or without a reset time fell below the lowest threshold, after reaching
//! the top threshold), a login needed (for a provider that had a good
//! reading in this log), a rate limit lasting longer than
//! `rate_limited_minutes`, and no good reading for longer than
//! `stale_minutes`.
//!
//! Delivery (a `watch` line, a `serve --stdio` event, a command, a
//! webhook) is the commands' business, through [`deliver`]; a `/metrics`
//! counter reads the store.

pub mod deliver;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::events::{AlertKind, Event, Stamped, Stream};
use crate::providers::ProviderId;
use crate::settings::Alerts;
use crate::store::{Entry, Store};
use crate::wire::rfc3339_seconds;

/// A fired alert, as delivered: the `alert` event of `serve --stdio`, the
/// JSON a command reads on stdin and a webhook receives.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// When it fired (the engine's clock).
    pub at: String,
    /// The provider.
    pub provider: ProviderId,
    /// The window, for window alerts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// What fired.
    pub kind: AlertKind,
    /// The threshold crossed (1 for `exhausted`, the peak for `refilled`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The window's used ratio when it fired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_ratio: Option<f64>,
    /// One line for people.
    pub message: String,
}

impl Alert {
    /// The alert a recorded event is, if it is one.
    pub fn from_event(at: Timestamp, event: &Event) -> Option<Alert> {
        let Event::AlertFired {
            provider,
            window,
            kind,
            threshold,
            used_ratio,
            message,
        } = event
        else {
            return None;
        };
        Some(Alert {
            at: rfc3339_seconds(at),
            provider: *provider,
            window: window.clone(),
            kind: *kind,
            threshold: *threshold,
            used_ratio: *used_ratio,
            message: message.clone(),
        })
    }
}

/// The alerts that fire at `now` for the `providers` driven, as events to
/// record. Nothing fires for a log that never recorded an `[alerts]`
/// table: such a log was written before alerts existed, and replaying it
/// must decide what it decided.
pub fn decide(store: &Store, providers: &[ProviderId], alerts: &Alerts, now: Timestamp) -> Vec<Stamped> {
    if !store.settings.contains_key("alerts") {
        return Vec::new();
    }
    let mut fired = Vec::new();
    for provider in providers {
        if let Some(entry) = store.providers.get(provider) {
            fired.extend(
                for_provider(*provider, entry, alerts, now)
                    .into_iter()
                    .map(|event| (now, Stream::Tracker(*provider), event)),
            );
        }
    }
    fired
}

fn for_provider(provider: ProviderId, entry: &Entry, alerts: &Alerts, now: Timestamp) -> Vec<Event> {
    let label = provider.provider().label();
    let alarms = &entry.alarms;
    let mut fired = Vec::new();
    let mut fire = |window: Option<&str>, kind, threshold, used_ratio, message: String| {
        fired.push(Event::AlertFired {
            provider,
            window: window.map(str::to_owned),
            kind,
            threshold,
            used_ratio,
            message,
        });
    };
    // Only a provider that worked in this log asks for a login again: one
    // never logged in (most users have a few of the seven) says nothing.
    let worked = entry.last_good.is_some();
    if entry.auth_required && worked && !alarms.fired.contains(&AlertKind::AuthRequired) {
        fire(
            None,
            AlertKind::AuthRequired,
            None,
            None,
            format!("{label} needs a login"),
        );
    }
    if entry.active == Some(false) {
        return fired;
    }
    let limit = minutes(alerts.rate_limited_minutes);
    if let (Some(until), Some(since)) = (entry.blocked_until, alarms.limited_since) {
        if until > now && until.duration_since(since) > limit && !alarms.fired.contains(&AlertKind::RateLimited) {
            let message = format!(
                "{label} rate limited for more than {} min (until {})",
                alerts.rate_limited_minutes,
                rfc3339_seconds(until)
            );
            fire(None, AlertKind::RateLimited, None, None, message);
        }
    }
    let stale = minutes(alerts.stale_minutes);
    if let Some(good) = entry.last_good {
        if !entry.auth_required && now.duration_since(good) > stale && !alarms.fired.contains(&AlertKind::Stale) {
            let message = format!(
                "{label} stale for more than {} min (last good reading {})",
                alerts.stale_minutes,
                rfc3339_seconds(good)
            );
            fire(None, AlertKind::Stale, None, None, message);
        }
    }
    let lowest = alerts.thresholds.first().copied().unwrap_or(1.0);
    for window in &entry.windows {
        let Some(used) = window.used_ratio else { continue };
        let resets_at: Option<Timestamp> = window.resets_at.as_deref().and_then(|text| text.parse().ok());
        if resets_at.is_some_and(|resets_at| resets_at <= now) {
            // The reading is of a period that is over: it says nothing now.
            continue;
        }
        let alarm = alarms.windows.get(&window.id);
        let name = format!("{label} {}", window.id);
        if let Some(alarm) = alarm {
            let emptied = alarm.reset_seen || (alarm.resets_at.is_none() && used < lowest);
            if alarm.peak > 0.0 && alarm.peak >= alerts.top() && emptied {
                let message = format!(
                    "{name} refilled: {} used after reaching {}",
                    percent(used),
                    percent(alarm.peak)
                );
                fire(
                    Some(&window.id),
                    AlertKind::Refilled,
                    Some(alarm.peak),
                    Some(used),
                    message,
                );
            }
        }
        let level = alarm.map_or(0.0, |alarm| alarm.level);
        let crossed = alerts
            .thresholds
            .iter()
            .copied()
            .chain([1.0])
            .filter(|threshold| used >= *threshold)
            .reduce(f64::max);
        if let Some(threshold) = crossed.filter(|threshold| *threshold > level) {
            let (kind, message) = if threshold >= 1.0 {
                (
                    AlertKind::Exhausted,
                    format!("{name} exhausted ({} used)", percent(used)),
                )
            } else {
                let message = format!("{name} at {} used (crossed {})", percent(used), percent(threshold));
                (AlertKind::Threshold, message)
            };
            fire(Some(&window.id), kind, Some(threshold), Some(used), message);
        }
    }
    fired
}

fn minutes(minutes: u64) -> SignedDuration {
    SignedDuration::from_secs(i64::try_from(minutes.min(1_440) * 60).unwrap_or(86_400))
}

fn percent(ratio: f64) -> String {
    format!("{:.0}%", ratio * 100.0)
}
