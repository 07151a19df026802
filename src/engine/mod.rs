//! The engine owns everything that runs: the trackers (through the
//! [`Trackers`]), the controller (the host side, `host.rs`), the settings in
//! force and the journal. It has one update cycle (`cycle.rs`), which the
//! timer, refreshes, hosts, `serve`, `demo` and `replay` all run.
//!
//! What differs between those runs comes in through three seams: the
//! [`Clock`], the [`Credentials`] and the [`Answers`] (the network, the
//! fixtures, or a recording), plus where the journal writes (a log, or
//! memory for replay). Replay builds this same engine over a recording,
//! so a replayed run executes the live lines.
//!
//! Invariant: what a cycle decided is durable in the log before any fetch
//! it asked for starts, and a fetch's result is durable before the
//! snapshot shows it.

mod cycle;
mod host;

use cycle::Asked;
pub use cycle::Outside;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value};
use tokio::sync::broadcast;

use crate::alerts::Alert;
use crate::answers::{Answers, Network};
use crate::clock::{Clock, SystemClock};
use crate::credentials::Credentials;
use crate::events::{Event, Stream};
use crate::journal::{Journal, Memory};
use crate::log::LogError;
use crate::machines::tracker::Rules;
use crate::providers::ProviderId;
use crate::settings::Settings;
use crate::status::{self, StatusOptions};
use crate::store::Store;
use crate::trackers::Trackers;
use crate::transport::Transport;
use crate::wire::Status;

pub use host::Session;

/// How long one fetch may take by default.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a status page reading lasts by default.
pub const STATUS_TTL: Duration = Duration::from_secs(300);

/// Why the engine could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The log failed (including: another process owns the data dir).
    #[error(transparent)]
    Log(#[from] LogError),
    /// The builder was not given a required input.
    #[error("the engine needs {0}")]
    Missing(&'static str),
}

/// What one cycle did, for callers that print progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    /// The clock reading the cycle started at.
    pub at: Option<Timestamp>,
    /// The providers fetched, in id order.
    pub fetched: Vec<ProviderId>,
    /// How many events the cycle recorded.
    pub events: usize,
}

/// The running engine.
pub struct Engine {
    journal: Journal,
    trackers: Trackers,
    clock: Arc<dyn Clock>,
    answers: Arc<dyn Answers>,
    credentials: Arc<dyn Credentials>,
    /// The settings in force.
    settings: Settings,
    /// Rules that stand whatever the settings say (replay trying a change).
    fixed_rules: Option<Rules>,
    status_ttl: Option<Duration>,
    status_options: StatusOptions,
    updates: broadcast::Sender<Arc<Status>>,
    /// Each alert a cycle fired, once recorded.
    alerts: broadcast::Sender<Arc<Alert>>,
    /// The controller side (`host.rs`).
    session: Session,
    /// Retention stopped: the log reported damage (until a restart).
    retention_stopped: bool,
    /// Facts from outside, recorded by the next cycle (`cycle.rs`).
    outside: Outside,
    /// The stale threshold the settings file alone gives (no patches),
    /// written beside the engine's own into the snapshot.
    file_stale_after: SignedDuration,
}

/// The interval timer of a loop that runs an engine (`serve`, `watch`):
/// it ticks every `refresh_interval_s` of the settings in force, and a
/// change of the interval retimes it at once, in both directions: the
/// next tick comes one new interval after the change, not at the end of
/// the old interval. Tokio's timer, so tests run it on a paused clock.
pub struct Ticker {
    every: Duration,
    timer: tokio::time::Interval,
}

impl Ticker {
    /// A ticker at `engine`'s interval; the first tick is one interval away.
    pub fn new(engine: &Engine) -> Ticker {
        let every = engine.settings().interval().unsigned_abs();
        Ticker {
            every,
            timer: tokio::time::interval_at(tokio::time::Instant::now() + every, every),
        }
    }

    /// A ticker at `engine`'s interval whose first tick is now.
    pub fn starting_now(engine: &Engine) -> Ticker {
        let every = engine.settings().interval().unsigned_abs();
        Ticker {
            every,
            timer: tokio::time::interval_at(tokio::time::Instant::now(), every),
        }
    }

    /// Completes at the next tick.
    pub async fn tick(&mut self) {
        self.timer.tick().await;
    }

    /// Retimes the ticker when `engine`'s interval is no longer the one it
    /// ticks at; call it after anything that may have changed the settings.
    pub fn follow(&mut self, engine: &Engine) {
        let every = engine.settings().interval().unsigned_abs();
        if every != self.every {
            *self = Ticker {
                every,
                timer: tokio::time::interval_at(tokio::time::Instant::now() + every, every),
            };
        }
    }
}

/// Builds an [`Engine`].
pub struct EngineBuilder {
    data_dir: Option<PathBuf>,
    memory: Option<Memory>,
    answers: Option<Arc<dyn Answers>>,
    fixed_rules: Option<Rules>,
    settings: Settings,
    rules: Rules,
    clock: Arc<dyn Clock>,
    transport: Option<Arc<dyn Transport>>,
    credentials: Option<Arc<dyn Credentials>>,
    providers: Vec<ProviderId>,
    fetch_timeout: Duration,
    status_ttl: Option<Duration>,
    checkpoint_every: Option<u64>,
    start: Option<Store>,
}

impl EngineBuilder {
    /// Where the log lives (required).
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_owned());
        self
    }

    /// The settings: they set the rules' intervals, the providers (enabled,
    /// in order) and the status pages. Later calls of the narrower setters
    /// override them.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.rules = settings.rules(self.rules);
        self.providers.clone_from(&settings.providers);
        self.status_ttl = settings.status_ttl();
        self.settings = settings;
        self
    }

    /// The tracker rules (default: 60 s interval, backoff up to 8×).
    pub fn rules(mut self, rules: Rules) -> Self {
        self.rules = rules;
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Records into `memory` instead of a log in a data dir, starting from
    /// an empty store, with the settings given taken as the ones in force
    /// (nothing is recorded for them): how replay runs the engine.
    pub fn memory(mut self, memory: Memory) -> Self {
        self.memory = Some(memory);
        self
    }

    /// With [`EngineBuilder::memory`]: start from `store` instead of an
    /// empty store, the trackers resuming from it as a restarted engine's
    /// do (replay of an export that carries the base retention folded its
    /// oldest events into).
    pub fn starting_from(mut self, store: Store) -> Self {
        self.start = Some(store);
        self
    }

    /// Where answers come from instead of a transport (replay: the recording).
    pub fn answers(mut self, answers: Arc<dyn Answers>) -> Self {
        self.answers = Some(answers);
        self
    }

    /// Rules that stand whatever the settings say (replay trying a change).
    pub fn fixed_rules(mut self, rules: Rules) -> Self {
        self.fixed_rules = Some(rules);
        self
    }

    /// How requests are sent (required, unless answers are given).
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Where credentials come from (required).
    pub fn credentials(mut self, credentials: Arc<dyn Credentials>) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// The providers to track (default: all seven).
    pub fn providers(mut self, providers: &[ProviderId]) -> Self {
        self.providers = providers.to_vec();
        self
    }

    /// The bound on one fetch (default 5 s).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// How long a status page reading lasts; `None` turns status pages
    /// off (default: 5 minutes).
    pub fn status_pages(mut self, ttl: Option<Duration>) -> Self {
        self.status_ttl = ttl;
        self
    }

    /// Checkpoint the store every `events` events (default 1,000).
    pub fn checkpoint_every(mut self, events: u64) -> Self {
        self.checkpoint_every = Some(events);
        self
    }

    /// Opens the log (taking ownership of the data dir), resumes the
    /// trackers from the store, and records the settings where they differ
    /// from the ones the log last saw.
    pub fn build(self) -> Result<Engine, EngineError> {
        let credentials = self.credentials.ok_or(EngineError::Missing("credentials"))?;
        let answers = match (self.answers, self.transport) {
            (Some(answers), _) => answers,
            (None, Some(transport)) => Arc::new(Network {
                transport,
                clock: Arc::clone(&self.clock),
                timeout: self.fetch_timeout,
            }),
            (None, None) => return Err(EngineError::Missing("a transport")),
        };
        let journal = match (self.memory.clone(), &self.data_dir) {
            (Some(memory), _) => Journal::in_memory_from(memory, self.start.unwrap_or_default()),
            (None, Some(data_dir)) => Journal::open(data_dir)?,
            (None, None) => return Err(EngineError::Missing("a data dir")),
        };
        let journal = match self.checkpoint_every {
            Some(events) => journal.checkpoint_every(events),
            None => journal,
        };
        // The settings in force: the narrower setters win over `settings`.
        let mut settings = self.settings;
        settings.refresh_interval_s = self.rules.interval.as_secs().unsigned_abs();
        settings.min_interval_s = self.rules.min_interval.as_secs().unsigned_abs();
        let mut seen = std::collections::BTreeSet::new();
        settings.providers = self.providers;
        settings.providers.retain(|id| seen.insert(*id));
        settings.status_pages = self.status_ttl.is_some();
        if let Some(ttl) = self.status_ttl {
            settings.status_ttl_s = ttl.as_secs();
        }
        let (updates, _) = broadcast::channel(16);
        let (alerts, _) = broadcast::channel(64);
        let mut engine = Engine {
            trackers: Trackers::new(self.rules, &[], journal.store()),
            journal,
            clock: self.clock,
            answers,
            credentials,
            settings: Settings::default(),
            fixed_rules: self.fixed_rules,
            status_ttl: None,
            status_options: StatusOptions::default(),
            file_stale_after: Settings::default().stale_after(),
            updates,
            alerts,
            session: Session::new(),
            retention_stopped: false,
            outside: Outside::default(),
        };
        if self.memory.is_some() {
            engine.apply_settings(settings, Map::new(), Stream::Engine)?;
        } else {
            engine.configure(settings)?;
        }
        Ok(engine)
    }
}

impl Engine {
    /// A builder with the defaults.
    pub fn builder() -> EngineBuilder {
        EngineBuilder {
            data_dir: None,
            memory: None,
            answers: None,
            fixed_rules: None,
            settings: Settings::default(),
            rules: Rules::default(),
            clock: Arc::new(SystemClock),
            transport: None,
            credentials: None,
            providers: ProviderId::ALL.to_vec(),
            fetch_timeout: FETCH_TIMEOUT,
            status_ttl: Some(STATUS_TTL),
            checkpoint_every: None,
            start: None,
        }
    }

    /// Runs one update cycle now, for every provider.
    pub async fn cycle(&mut self) -> Result<CycleReport, EngineError> {
        self.run_cycle(Some(Event::ClockTicked), None, Asked::Everything).await
    }

    /// Runs a cycle asked for by a user or host, for one provider or all.
    /// It honours the same rules as the timer: only what is due is fetched.
    pub async fn refresh(&mut self, provider: Option<ProviderId>) -> Result<CycleReport, EngineError> {
        let trigger = Event::RefreshRequested { provider, force: false };
        self.run_cycle(Some(trigger), provider, Asked::Everything).await
    }

    /// A forced refresh: a healthy provider is fetched once the minimum
    /// interval has passed; backoff and rate limits still hold.
    pub async fn force_refresh(&mut self, provider: Option<ProviderId>) -> Result<CycleReport, EngineError> {
        let trigger = Event::RefreshRequested { provider, force: true };
        self.run_cycle(Some(trigger), provider, Asked::Everything).await
    }

    /// The controller's `FetchUsage`: a refresh of `provider`'s usage
    /// alone (its status page is the controller's to ask for after).
    async fn fetch_usage(&mut self, provider: ProviderId, force: bool) -> Result<CycleReport, EngineError> {
        let trigger = Event::RefreshRequested {
            provider: Some(provider),
            force,
        };
        self.run_cycle(Some(trigger), Some(provider), Asked::Usage).await
    }

    /// The controller's `FetchStatus`: `provider`'s status page, if due.
    async fn fetch_status(&mut self, provider: ProviderId) -> Result<CycleReport, EngineError> {
        self.run_cycle(None, Some(provider), Asked::StatusPage).await
    }

    /// Runs cycles every interval until `shutdown` completes, then returns
    /// (the caller closes the engine).
    pub async fn run(&mut self, shutdown: impl Future<Output = ()>) -> Result<(), EngineError> {
        tokio::pin!(shutdown);
        loop {
            self.cycle().await?;
            let interval = self.trackers.rules().interval;
            let clock = Arc::clone(&self.clock);
            // Shutdown first: a stop and a due cycle at the same instant stop.
            tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                () = clock.sleep(interval) => {}
            }
        }
    }

    /// A receiver of the status after every cycle.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Status>> {
        self.updates.subscribe()
    }

    /// A receiver of each alert fired, once it is recorded.
    pub fn subscribe_alerts(&self) -> broadcast::Receiver<Arc<Alert>> {
        self.alerts.subscribe()
    }

    /// Where facts from outside the cycle (a failed alert delivery) are
    /// reported; the next cycle records them.
    pub fn outside(&self) -> Outside {
        self.outside.clone()
    }

    /// The live store.
    pub fn store(&self) -> &Store {
        self.journal.store()
    }

    /// The status at the clock's current reading.
    pub fn status(&self) -> Status {
        status::view(self.journal.store(), self.clock.now(), &self.status_options)
    }

    /// The log underneath (read-only use: the engine owns it); `None` for
    /// an engine recording into memory.
    pub fn log(&self) -> Option<&crate::log::Log> {
        self.journal.log()
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Puts `settings` in force (the settings file as read at start), with
    /// the keys hosts patched before laid over it: what differs from the
    /// file as the log last saw it is recorded, and a key the file changed
    /// since it was patched is the file's again (the user edited it after
    /// the patch, so the edit is the newer wish). Replay reaches the same
    /// settings by folding the recorded change onto the ones in force.
    pub fn configure(&mut self, settings: Settings) -> Result<(), EngineError> {
        self.file_stale_after = settings.stale_after();
        let store = self.journal.store();
        let changed = settings.changes_from(&store.file_settings);
        let kept = store.patched.iter().filter(|(key, _)| !changed.contains_key(*key));
        let next = kept.fold(settings, |settings, (key, value)| {
            let one = Value::Object(Map::from_iter([(key.clone(), value.clone())]));
            settings.patched(&one).unwrap_or(settings)
        });
        self.apply_settings(next, changed, Stream::Engine)
    }

    /// Puts a recorded settings change in force as it was recorded (replay
    /// of the settings read at a start): keys this version does not know,
    /// or values it refuses, leave the settings as they were.
    pub fn apply_recorded_settings(&mut self, patch: &Value) -> Result<(), EngineError> {
        let Value::Object(keys) = patch else {
            return Ok(());
        };
        let next = recorded_settings(self.settings.clone(), keys);
        self.apply_settings(next, keys.clone(), Stream::Engine)
    }

    /// Puts `next` in force, recording `changed` (its keys that differ
    /// from the ones the log last saw) when there are any, on `stream`:
    /// the engine's for the file, the controller's for a host's patch
    /// (which is how the store tells them apart). The rules, the providers
    /// driven (in id order; new ones resume from the store) and the status
    /// pages follow. The one place settings take effect, for the settings
    /// file, a host's patch and replay alike.
    fn apply_settings(
        &mut self,
        next: Settings,
        changed: Map<String, Value>,
        stream: Stream,
    ) -> Result<(), EngineError> {
        let at = self.clock.now();
        let mut items = Vec::new();
        if !changed.is_empty() {
            let event = Event::SettingsChanged {
                patch: Value::Object(changed),
            };
            items.push((at, stream, event));
        }
        let rules = self.fixed_rules.unwrap_or_else(|| next.rules(self.trackers.rules()));
        self.trackers.set_rules(rules);
        let mut providers = next.providers.clone();
        providers.sort();
        providers.dedup();
        items.extend(self.trackers.set_providers(&providers, self.journal.store(), at));
        self.journal.record(items)?;
        self.status_ttl = next.status_ttl();
        self.status_options = StatusOptions::from_settings(&next);
        self.settings = next;
        Ok(())
    }

    /// One bounded step of the log's retention (`retention.bodies_days`,
    /// `retention.events_days`), run after every cycle so that history
    /// bounds itself without holding up a fetch or a host request for more
    /// than a step. A damaged log stops it until the next start; the cycle
    /// goes on either way (retention writes no event, so replay is
    /// unaffected).
    fn retain(&mut self) {
        if self.retention_stopped {
            return;
        }
        let kept = self.settings.retention;
        let retention = crate::log::retention::Retention::days(kept.bodies_days, kept.events_days);
        if self.journal.retain_step(self.clock.now(), &retention).is_err() {
            self.retention_stopped = true;
        }
    }

    /// The trackers.
    pub fn trackers(&self) -> &Trackers {
        &self.trackers
    }

    /// Clean shutdown: a checkpoint, then the log's clean close.
    pub fn close(self) -> Result<(), EngineError> {
        Ok(self.journal.close()?)
    }
}

/// `settings` with a recorded change laid over them, key by key, as the
/// engine puts one in force: a key this version does not know, or a value
/// it refuses, leaves that key as it was.
pub(crate) fn recorded_settings(settings: Settings, keys: &Map<String, Value>) -> Settings {
    keys.iter().fold(settings, |settings, (key, value)| {
        let one = Value::Object(Map::from_iter([(key.clone(), value.clone())]));
        settings.patched(&one).unwrap_or(settings)
    })
}
