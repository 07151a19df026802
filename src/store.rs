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
//!
//! Time-dependent readings (stale, reset passed, rate limit over) are not
//! stored: views derive them from the store and a clock reading.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::events::{Envelope, Event, Outcome, Stream};
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
                *entry.fetches.entry(result.to_owned()).or_default() += 1;
                match outcome {
                    Outcome::Usage { plan, windows } => {
                        entry
                            .readings
                            .retain(|id, _| windows.iter().any(|window| &window.id == id));
                        for window in windows {
                            if let (Some(used_ratio), Some(seconds)) = (window.used_ratio, window.window_seconds) {
                                let ring = entry.readings.entry(window.id.clone()).or_default();
                                pace::keep(ring, Reading { at, used_ratio }, seconds);
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
                Stream::Tracker(provider) => self.entry(provider).machine_state = Some(to.clone()),
                Stream::Controller => self.controller.state = Some(to.clone()),
                Stream::Engine => {}
            },
            Event::ProviderSelected { provider } => self.controller.provider = *provider,
            Event::SettingsChanged { patch } => {
                if let Value::Object(patch) = patch {
                    for (key, value) in patch {
                        self.settings.insert(key.clone(), value.clone());
                    }
                }
            }
            Event::FetchStarted { provider } => self.entry(*provider).last_attempt = Some(at),
            Event::ClockTicked
            | Event::HostReported { .. }
            | Event::RefreshRequested { .. }
            | Event::CycleRequested => {}
        }
    }

    fn entry(&mut self, provider: ProviderId) -> &mut Entry {
        self.providers.entry(provider).or_default()
    }
}
