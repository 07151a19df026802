//! [`Published`]: the [`Source`] the binary serves. The status always
//! comes from the snapshot file (`status.json`), settled at the clock's
//! reading, exactly as `status --json` reads it, so the owner and a
//! follower show the same object. The owner's engine loop adds, after
//! every cycle ([`Published::update`]), what only the log holds: the fetch
//! counts of the store, the log's figures and the readings of new
//! `fetch_completed` events for `/v1/history` (read once each, from the
//! engine's own log, so a request never touches sled). A follower has the
//! snapshot alone and asks the owner for history over its control socket
//! ([`owner::ask_history`], bounded by [`HISTORY_WAIT`]); without an owner
//! that answers, its history is refused (503) saying why.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::metrics::{LogFigures, Observation};
use super::{Health, Role, Source, Unavailable};
use crate::clock::Clock;
use crate::engine::Engine;
use crate::events::{AlertKind, Event, Outcome};
use crate::history::{Builder, Query, Series};
use crate::log::{DB_DIR, LogError};
use crate::owner;
use crate::providers::ProviderId;
use crate::status::{self, StatusOptions};
use crate::wire::{Status, rfc3339_seconds};

/// The most readings the owner keeps for `/v1/history`: a day of seven
/// providers with three windows each at the default interval, about
/// 2.4 MB; older ones are dropped first. `quotatrack history` reads the
/// whole log.
pub const MAX_READINGS: usize = 30_000;

/// The longest a follower waits for its owner's history.
pub const HISTORY_WAIT: Duration = Duration::from_secs(5);

/// What the server reads, published by the engine loop.
pub struct Published {
    data_dir: PathBuf,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

/// What the last update left.
struct State {
    role: Role,
    interval: Duration,
    /// How old a value may be before it reads as stale (the settings').
    stale_after: SignedDuration,
    last_cycle_at: Option<Timestamp>,
    /// An entry of the log that could not be read: lasts.
    log_error: Option<String>,
    /// The last cycle's failure: cleared by the next good one.
    cycle_error: Option<String>,
    fetches: BTreeMap<ProviderId, BTreeMap<String, u64>>,
    alerts: BTreeMap<ProviderId, BTreeMap<AlertKind, u64>>,
    /// Failed alert deliveries by way, counted from the log.
    delivery_failures: BTreeMap<String, u64>,
    log: LogFigures,
    readings: VecDeque<Reading>,
    /// Window ids, each stored once however many readings name it.
    window_ids: BTreeSet<Arc<str>>,
    /// The sequence number of the next event to read readings from.
    next_seq: u64,
}

/// One window's used ratio at one time.
struct Reading {
    provider: ProviderId,
    window: Arc<str>,
    at: Timestamp,
    used_ratio: f64,
    resets_at: Option<Timestamp>,
}

impl Published {
    /// A follower of the engine that owns `data_dir`, which runs a cycle
    /// every `interval`; [`Published::update`] makes it the owner.
    pub fn follower(data_dir: &Path, clock: Arc<dyn Clock>, interval: Duration) -> Published {
        Published {
            data_dir: data_dir.to_owned(),
            clock,
            state: Mutex::new(State {
                role: Role::Follower,
                interval,
                stale_after: StatusOptions::default().stale_after,
                last_cycle_at: None,
                log_error: None,
                cycle_error: None,
                fetches: BTreeMap::new(),
                alerts: BTreeMap::new(),
                delivery_failures: BTreeMap::new(),
                log: LogFigures::default(),
                readings: VecDeque::new(),
                window_ids: BTreeSet::new(),
                next_seq: 0,
            }),
        }
    }

    /// Values older than `stale_after` read as stale (the settings'
    /// [`crate::settings::Settings::stale_after`]; 180 s without it).
    pub fn with_stale_after(self, stale_after: SignedDuration) -> Published {
        self.lock().stale_after = stale_after;
        self
    }

    /// Takes what `engine` (the owner's) holds after a cycle: its fetch
    /// counts, the log's figures, the readings appended since the last
    /// update. The first update reads the whole log once.
    pub fn update(&self, engine: &Engine) {
        let now = self.clock.now();
        let size_bytes = size_of(&self.data_dir.join(DB_DIR));
        let mut state = self.lock();
        state.role = Role::Owner;
        state.interval = engine.trackers().rules().interval.unsigned_abs();
        state.stale_after = engine.settings().stale_after();
        state.last_cycle_at = Some(now);
        state.cycle_error = None;
        state.fetches = engine
            .store()
            .providers
            .iter()
            .map(|(id, entry)| (*id, entry.fetches.clone()))
            .collect();
        state.alerts = engine
            .store()
            .providers
            .iter()
            .map(|(id, entry)| (*id, entry.alarms.counts.clone()))
            .collect();
        // An engine recording into memory (replay) has no log to read.
        if let Some(log) = engine.log() {
            let mut unreadable = None;
            for entry in log.entries(state.next_seq) {
                match entry {
                    Ok(envelope) => {
                        state.next_seq = envelope.seq + 1;
                        state.log.last_append_at = Some(envelope.at);
                        state.take(&envelope.payload, envelope.at);
                    }
                    Err(error @ LogError::Corrupt { .. }) => {
                        if let LogError::Corrupt { seq, .. } = &error {
                            state.next_seq = seq + 1;
                        }
                        unreadable = Some(format!("{error}; run `quotatrack log verify`"));
                    }
                    Err(error) => {
                        unreadable = Some(error.to_string());
                        break;
                    }
                }
            }
            if unreadable.is_some() {
                state.log_error = unreadable;
            }
            state.log.events = Some(log.next_seq());
        }
        state.log.size_bytes = Some(size_bytes);
    }

    /// A cycle failed (its log, most likely): `/healthz` says so until a
    /// cycle succeeds again.
    pub fn failed(&self, error: &dyn std::error::Error) {
        self.lock().cycle_error = Some(error.to_string());
    }

    /// The series `query` selects from the readings this owner published
    /// (what its `/v1/history` shows, and what it answers a follower).
    pub fn owned_history(&self, query: Query) -> Result<Vec<Series>, String> {
        let state = self.lock();
        if state.role == Role::Follower {
            return Err(format!(
                "the engine that owns {} is taking over: try again",
                self.data_dir.display()
            ));
        }
        let mut builder = Builder::new(query);
        for reading in &state.readings {
            builder.reading(
                reading.provider,
                &reading.window,
                reading.at,
                reading.used_ratio,
                reading.resets_at,
            );
        }
        Ok(builder.finish())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half
        // written in a way that matters more than serving it.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The snapshot file, settled now; `None` before the first one.
    fn snapshot(&self, now: Timestamp) -> Result<Option<Status>, Unavailable> {
        let mut view = status::read_snapshot(&self.data_dir).map_err(|error| {
            Unavailable(format!(
                "cannot read the snapshot in {}: {error}",
                self.data_dir.display()
            ))
        })?;
        if let Some(view) = &mut view {
            let options = StatusOptions {
                stale_after: self.lock().stale_after,
                ..StatusOptions::default()
            };
            status::settle(view, now, &options);
        }
        Ok(view)
    }
}

impl State {
    /// Keeps the readings of a successful fetch or a reported reading;
    /// counts a failed delivery.
    fn take(&mut self, event: &Event, at: Timestamp) {
        if let Event::AlertDeliveryFailed { via, .. } = event {
            // Two ways exist; anything else read from a log is not a label.
            if matches!(via.as_str(), "command" | "webhook") {
                *self.delivery_failures.entry(via.clone()).or_default() += 1;
            }
            return;
        }
        let (provider, at, windows) = match event {
            Event::FetchCompleted {
                provider,
                outcome: Outcome::Usage { windows, .. },
                ..
            } => (provider, at, windows),
            Event::ReadingReported {
                provider,
                read_at,
                windows,
                ..
            } => (provider, *read_at, windows),
            _ => return,
        };
        for window in windows {
            let Some(used_ratio) = window.used_ratio else { continue };
            let id = match self.window_ids.get(window.id.as_str()) {
                Some(id) => Arc::clone(id),
                None => {
                    let id: Arc<str> = window.id.as_str().into();
                    self.window_ids.insert(Arc::clone(&id));
                    id
                }
            };
            if self.readings.len() == MAX_READINGS {
                self.readings.pop_front();
            }
            self.readings.push_back(Reading {
                provider: *provider,
                window: id,
                at,
                used_ratio,
                resets_at: window.resets_at.as_deref().and_then(|text| text.parse().ok()),
            });
        }
    }
}

impl Source for Published {
    fn status(&self) -> Result<Status, Unavailable> {
        let now = self.clock.now();
        Ok(self.snapshot(now)?.unwrap_or_else(|| Status {
            schema: 1,
            stale_after_s: None,
            file_stale_after_s: None,
            generated_at: rfc3339_seconds(now),
            providers: Vec::new(),
        }))
    }

    async fn history(&self, query: Query) -> Result<Vec<Series>, Unavailable> {
        let role = self.lock().role;
        match role {
            Role::Owner => self.owned_history(query).map_err(Unavailable),
            Role::Follower => owner::ask_history(&self.data_dir, &query, HISTORY_WAIT)
                .await
                .map_err(Unavailable),
        }
    }

    fn health(&self) -> Health {
        let now = self.clock.now();
        let state = self.lock();
        let (last_cycle_at, log_error) = match state.role {
            Role::Owner => (
                state.last_cycle_at,
                state.log_error.clone().or_else(|| state.cycle_error.clone()),
            ),
            // The owner's last cycle is when it last wrote its snapshot.
            Role::Follower => match status::read_snapshot(&self.data_dir) {
                Ok(view) => (view.and_then(|view| view.generated_at.parse().ok()), None),
                Err(error) => (None, Some(format!("cannot read the snapshot: {error}"))),
            },
        };
        Health {
            role: state.role,
            now,
            last_cycle_at,
            interval: state.interval,
            log_error,
        }
    }

    fn observation(&self) -> Result<Observation, Unavailable> {
        let status = self.status()?;
        let health = self.health();
        let state = self.lock();
        let mut log = state.log.clone();
        if state.role == Role::Follower {
            log.size_bytes = Some(size_of(&self.data_dir.join(DB_DIR)));
        }
        Ok(Observation {
            role: state.role,
            now: health.now,
            status,
            fetches: state.fetches.clone(),
            alerts: state.alerts.clone(),
            delivery_failures: state.delivery_failures.clone(),
            log,
            log_ok: health.log_error.is_none(),
            last_cycle_at: health.last_cycle_at,
        })
    }
}

/// The bytes of the files under `dir` (two levels: sled's files and its
/// blobs), 0 when it cannot be read.
fn size_of(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_file() => meta.len(),
            Ok(meta) if meta.is_dir() => std::fs::read_dir(entry.path()).map_or(0, |inner| {
                inner
                    .flatten()
                    .filter_map(|file| file.metadata().ok())
                    .filter(|meta| meta.is_file())
                    .map(|meta| meta.len())
                    .sum()
            }),
            _ => 0,
        })
        .sum()
}
