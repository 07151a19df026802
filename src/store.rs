//! The store: what the log says, folded. `apply` is the only way it
//! changes, it is pure (no I/O, no clock: time comes from the envelope),
//! and rebuilding from the log always gives the store the live engine holds.
//!
//! Rules kept here rather than hoped for:
//! - a failed fetch never touches the windows of the last good one;
//! - losing credentials clears the windows (they belong to an account we
//!   can no longer see);
//! - the machines' bookkeeping (`fails`, `active`, `blocked_until`) comes
//!   only from their `store_updated` decisions, so there is one source of
//!   truth for backoff.
//!
//! The store also keeps, per window, a bounded ring of recent readings
//! (`Entry::readings`) so that a view can say whether the window's pace
//! lasts until its reset without reading the log.
//! Alert bookkeeping ([`Alarms`]) is folded here too, so a restart never
//! fires an alert twice: an `alert_fired` marks what fired, and the
//! readings re-arm it (a window's ratio falling back below a threshold or
//! the window resetting, a login coming back, a rate limit lifted, a good
//! reading arriving). What fires is decided in `alerts.rs`.
//!
//! Time-dependent readings (stale, reset passed, rate limit over) are not
//! stored: views derive them from the store and a clock reading.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::events::{AlertKind, Envelope, Event, Outcome, Stream};
use crate::health::Indicator;
use crate::pace::{self, Reading};
use crate::providers::{ErrorKind, ProviderId};
use crate::wire::{ErrorBody, Window};

/// The projection of the whole log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Store {
    /// The sequence number of the last event applied.
    pub applied: Option<u64>,
    /// One entry per provider ever mentioned, in id order.
    pub providers: BTreeMap<ProviderId, Entry>,
    /// The controller's view.
    pub controller: ControllerEntry,
    /// The settings as patched so far (changed keys only; defaults are not stored).
    pub settings: Map<String, Value>,
    /// The settings file's values as last recorded at a start (the
    /// engine stream's `settings_changed`).
    #[serde(default)]
    pub file_settings: Map<String, Value>,
    /// The keys hosts patched (the controller stream's
    /// `settings_changed`) that the file has not changed since: they stay
    /// in force across restarts.
    #[serde(default)]
    pub patched: Map<String, Value>,
}

/// What the store knows about one provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The windows of the last successful fetch.
    pub windows: Vec<Window>,
    /// The plan named by the last successful fetch.
    pub plan: Option<String>,
    /// When the last fetch (good or bad) completed.
    pub updated: Option<Timestamp>,
    /// When the last fetch started: the base of the tracker's backoff.
    #[serde(default)]
    pub last_attempt: Option<Timestamp>,
    /// When the last successful fetch completed; the age of `windows`.
    pub last_good: Option<Timestamp>,
    /// The error of the last fetch, cleared by a success.
    pub last_error: Option<ErrorBody>,
    /// Consecutive failures, as the tracker counts them for backoff.
    pub fails: u32,
    /// Whether the tracker tracks this provider (credentials present, not
    /// disabled); `None` until the tracker first says.
    pub active: Option<bool>,
    /// No request before this time.
    pub blocked_until: Option<Timestamp>,
    /// Credentials are missing or were rejected.
    pub auth_required: bool,
    /// The fingerprint of the credentials in use.
    pub credentials: Option<String>,
    /// The tracker machine's state name.
    pub machine_state: Option<String>,
    /// The provider's public status page, when read.
    pub status_page: Option<StatusPage>,
    /// Completed fetches counted by result: `ok`, or the error kind
    /// (`auth`, `rate_limited`, …), for `/metrics`. A checkpoint written
    /// before this field existed loads with it empty, so the counts then
    /// start from that checkpoint (a counter reset, as Prometheus sees it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fetches: BTreeMap<String, u64>,
    /// Per window id, the recent readings pace is drawn through: a ring of
    /// at most [`pace::RING`], downsampled by [`pace::keep`] so it reaches
    /// back over the window's recent span. Only windows with a length are
    /// kept; a window the last fetch did not report is dropped. Absent in
    /// checkpoints written before it was kept (the ring then fills again
    /// from the next fetches).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub readings: BTreeMap<String, Vec<Reading>>,
    /// What has fired and is not re-armed, and how many alerts fired.
    #[serde(default, skip_serializing_if = "Alarms::is_empty")]
    pub alarms: Alarms,
}

/// One provider's alert bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Alarms {
    /// Per window id, what its threshold alerts reached.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub windows: BTreeMap<String, WindowAlarm>,
    /// The provider-wide alerts fired and not re-armed (`auth_required`,
    /// `rate_limited`, `stale`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub fired: BTreeSet<AlertKind>,
    /// Since when the provider is rate limited without a break (from the
    /// `store_updated` that first blocked it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limited_since: Option<Timestamp>,
    /// Alerts fired, by kind, for `/metrics`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<AlertKind, u64>,
}

/// What one window's threshold alerts reached in its current period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowAlarm {
    /// The thresholds at or below this ratio have fired (1 for exhausted);
    /// a reading below it lowers it, re-arming the thresholds above.
    pub level: f64,
    /// The highest ratio alerted on before the window's last reset.
    pub peak: f64,
    /// When the period the alerts fired in resets; a reading after it
    /// re-arms every threshold of the window.
    pub resets_at: Option<Timestamp>,
    /// The window reset since `peak` was reached (a `refilled` may be due).
    pub reset_seen: bool,
}

impl Alarms {
    /// Whether nothing was ever fired.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty() && self.fired.is_empty() && self.limited_since.is_none() && self.counts.is_empty()
    }
}

/// A provider's status page reading. A page that could not be read keeps
/// the last good indicator and notes why in `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusPage {
    /// `none`, `minor`, `major`, `critical` or `maintenance`; `unknown`
    /// until a page was first read.
    pub indicator: String,
    /// The page's one-line description.
    pub description: Option<String>,
    /// When the page was last asked (read or not): the base of its TTL.
    pub checked_at: Timestamp,
    /// Why the last check could not read the page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The controller's state and the provider it shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerEntry {
    /// The controller machine's state name.
    pub state: Option<String>,
    /// The provider it currently shows.
    pub provider: Option<ProviderId>,
}

impl Store {
    /// Folds a sequence of envelopes into a fresh store.
    pub fn from_events<'a>(envelopes: impl IntoIterator<Item = &'a Envelope>) -> Store {
        let mut store = Store::default();
        for envelope in envelopes {
            store.apply(envelope);
        }
        store
    }

    /// Applies one event. Total: every event, in any order, is accepted.
    pub fn apply(&mut self, envelope: &Envelope) {
        self.applied = Some(envelope.seq);
        self.fold(envelope);
        if let Some(provider) = envelope.payload.provider() {
            if let Some(entry) = self.providers.get_mut(&provider) {
                entry.rearm(&envelope.payload, envelope.at);
            }
        }
    }

    fn fold(&mut self, envelope: &Envelope) {
        let at = envelope.at;
        match &envelope.payload {
            Event::CredentialsFound {
                provider, fingerprint, ..
            } => {
                let entry = self.entry(*provider);
                if entry.credentials.as_ref() != Some(fingerprint) {
                    entry.auth_required = false;
                }
                entry.credentials = Some(fingerprint.clone());
            }
            Event::CredentialsLost { provider } => {
                let entry = self.entry(*provider);
                entry.credentials = None;
                entry.auth_required = true;
                entry.windows.clear();
                entry.readings.clear();
                entry.plan = None;
            }
            Event::FetchCompleted { provider, outcome, .. } => {
                let entry = self.entry(*provider);
                entry.updated = Some(at);
                let result = match outcome {
                    Outcome::Usage { .. } => "ok",
                    Outcome::Failed { error } => error.kind.as_str(),
                };
                if let Some(count) = slot(&mut entry.fetches, result) {
                    *count += 1;
                }
                match outcome {
                    Outcome::Usage { plan, windows } => {
                        entry
                            .readings
                            .retain(|id, _| windows.iter().any(|window| &window.id == id));
                        for window in windows {
                            let spacing = window
                                .window_seconds
                                .or(window.resets_at.is_some().then_some(pace::KEPT_WITHOUT_LENGTH));
                            if let (Some(used_ratio), Some(seconds)) = (window.used_ratio, spacing) {
                                if let Some(ring) = slot(&mut entry.readings, &window.id) {
                                    pace::keep(ring, Reading { at, used_ratio }, seconds);
                                }
                            }
                        }
                        entry.windows.clone_from(windows);
                        entry.plan.clone_from(plan);
                        entry.last_good = Some(at);
                        entry.last_error = None;
                        entry.auth_required = false;
                    }
                    Outcome::Failed { error } => {
                        entry.auth_required |= error.kind == ErrorKind::Auth;
                        entry.last_error = Some(error.clone());
                    }
                }
            }
            Event::StatusChecked {
                provider,
                indicator,
                description,
                ..
            } => {
                let page = &mut self.entry(*provider).status_page;
                match page {
                    Some(page) if indicator == Indicator::Unknown.as_str() => {
                        page.checked_at = at;
                        page.error.clone_from(description);
                    }
                    _ => {
                        let unreadable = indicator == Indicator::Unknown.as_str();
                        *page = Some(StatusPage {
                            indicator: indicator.clone(),
                            description: if unreadable { None } else { description.clone() },
                            checked_at: at,
                            error: if unreadable { description.clone() } else { None },
                        });
                    }
                }
            }
            Event::StoreUpdated {
                provider,
                fails,
                active,
                blocked_until,
            } => {
                let entry = self.entry(*provider);
                entry.fails = *fails;
                entry.active = Some(*active);
                entry.blocked_until = *blocked_until;
            }
            Event::Transitioned { to, .. } => match envelope.stream {
                Stream::Tracker(provider) => set_text(&mut self.entry(provider).machine_state, to),
                Stream::Controller => set_text(&mut self.controller.state, to),
                Stream::Engine => {}
            },
            Event::ProviderSelected { provider } => self.controller.provider = *provider,
            Event::SettingsChanged { patch } => {
                if let Value::Object(patch) = patch {
                    for (key, value) in patch {
                        self.settings.insert(key.clone(), value.clone());
                        // A host's patch, or the file at a start: a key the
                        // file changes is the file's again.
                        if envelope.stream == Stream::Controller {
                            self.patched.insert(key.clone(), value.clone());
                        } else {
                            self.file_settings.insert(key.clone(), value.clone());
                            self.patched.remove(key);
                        }
                    }
                }
            }
            Event::FetchStarted { provider } => self.entry(*provider).last_attempt = Some(at),
            Event::AlertFired {
                provider,
                window,
                kind,
                threshold,
                ..
            } => self.entry(*provider).fired(window.as_deref(), *kind, *threshold),
            Event::ClockTicked
            | Event::AlertDeliveryFailed { .. }
            | Event::ReadingReported { .. }
            | Event::HostReported { .. }
            | Event::RefreshRequested { .. }
            | Event::CycleRequested => {}
        }
    }

    fn entry(&mut self, provider: ProviderId) -> &mut Entry {
        self.providers.entry(provider).or_default()
    }
}

/// The value under `key`, put there as its default first if missing. The
/// key is allocated only then, not on every call (a fetch's counts and
/// readings are kept by name; a rebuild keeps a million). Always `Some`.
fn slot<'m, V: Default>(map: &'m mut BTreeMap<String, V>, key: &str) -> Option<&'m mut V> {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key)
}

/// Sets `slot` to `text`, reusing the text it holds (a state name is
/// written on every transition; a rebuild writes a million).
fn set_text(slot: &mut Option<String>, text: &str) {
    match slot {
        Some(held) => {
            held.clear();
            held.push_str(text);
        }
        None => *slot = Some(text.to_owned()),
    }
}

impl Entry {
    /// Marks an alert fired.
    fn fired(&mut self, window: Option<&str>, kind: AlertKind, threshold: Option<f64>) {
        *self.alarms.counts.entry(kind).or_default() += 1;
        match (kind, window) {
            (AlertKind::Threshold | AlertKind::Exhausted, Some(id)) => {
                let resets_at = self
                    .windows
                    .iter()
                    .find(|window| window.id == id)
                    .and_then(|window| window.resets_at.as_deref()?.parse().ok());
                let alarm = self.alarms.windows.entry(id.to_owned()).or_default();
                if alarm.reset_seen {
                    alarm.peak = 0.0;
                    alarm.reset_seen = false;
                }
                let level = threshold.unwrap_or(1.0);
                alarm.level = alarm.level.max(level);
                alarm.peak = alarm.peak.max(level);
                alarm.resets_at = resets_at;
            }
            (AlertKind::Refilled, Some(id)) => {
                if let Some(alarm) = self.alarms.windows.get_mut(id) {
                    alarm.peak = 0.0;
                    alarm.reset_seen = false;
                }
            }
            (AlertKind::AuthRequired | AlertKind::RateLimited | AlertKind::Stale, _) => {
                self.alarms.fired.insert(kind);
            }
            (AlertKind::Threshold | AlertKind::Exhausted | AlertKind::Refilled, None) => {}
        }
    }

    /// Re-arms what `event` (just folded) ended: a window's thresholds
    /// above its new reading, all of them once its period reset; a login
    /// alert when credentials are usable again; a rate limit alert when
    /// the limit is lifted; a stale alert at a good reading.
    fn rearm(&mut self, event: &Event, at: Timestamp) {
        if !self.auth_required {
            self.alarms.fired.remove(&AlertKind::AuthRequired);
        }
        match event {
            Event::StoreUpdated { blocked_until, .. } => match blocked_until {
                Some(until) if *until > at => {
                    self.alarms.limited_since.get_or_insert(at);
                }
                _ => {
                    self.alarms.limited_since = None;
                    self.alarms.fired.remove(&AlertKind::RateLimited);
                }
            },
            Event::FetchCompleted {
                outcome: Outcome::Usage { windows, .. },
                ..
            } => {
                self.alarms.fired.remove(&AlertKind::Stale);
                for (id, alarm) in &mut self.alarms.windows {
                    let Some(window) = windows.iter().find(|window| &window.id == id) else {
                        continue;
                    };
                    let used = window.used_ratio.unwrap_or(0.0);
                    if alarm.resets_at.is_some_and(|resets_at| resets_at <= at) {
                        alarm.level = used;
                        alarm.resets_at = window.resets_at.as_deref().and_then(|text| text.parse().ok());
                        alarm.reset_seen = true;
                    } else if used < alarm.level {
                        alarm.level = used;
                    }
                }
            }
            _ => {}
        }
    }
}
