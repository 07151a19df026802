//! The engine: the update cycle that drives the trackers. Every interval
//! (60 s by default) it reads each provider's credentials, polls its
//! tracker, records what was decided, performs the fetches the trackers
//! asked for (concurrently, each bounded by the fetch timeout), feeds the
//! results back in provider order, records those, publishes the snapshot
//! file and notifies subscribers once.
//!
//! The engine is the only place that performs effects; the machines only
//! decide, and the [`Driver`] turns decisions into events. Inputs come
//! through the three seams ([`Clock`], [`Transport`], [`Credentials`]), so
//! the same engine runs live, over recorded fixtures, and under a virtual
//! clock.
//!
//! Invariant: what a cycle decided is durable in the log before any fetch
//! it asked for starts, and a fetch's result is durable before the
//! snapshot shows it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Map, Value};
use tokio::sync::broadcast;
use tokio::task::JoinSet;

use crate::clock::{Clock, SystemClock};
use crate::credentials::{Credentials, fix_command};
use crate::driver::{self, Driver, Found};
use crate::events::{Event, Stream};
use crate::exchange::RecordedExchange;
use crate::health::{self, Feed};
use crate::journal::Journal;
use crate::log::LogError;
use crate::machines::tracker::Rules;
use crate::providers::ProviderId;
use crate::session::Session;
use crate::settings::Settings;
use crate::status::{self, StatusOptions};
use crate::store::Store;
use crate::transport::{Purpose, Request, Transport, TransportError};
use crate::wire::Status;

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
    pub(crate) journal: Journal,
    pub(crate) driver: Driver,
    pub(crate) clock: Arc<dyn Clock>,
    transport: Arc<dyn Transport>,
    credentials: Arc<dyn Credentials>,
    fetch_timeout: Duration,
    pub(crate) status_ttl: Option<Duration>,
    pub(crate) status_options: StatusOptions,
    updates: broadcast::Sender<Arc<Status>>,
    /// The controller side (`session.rs`).
    pub(crate) session: Session,
}

/// Builds an [`Engine`].
pub struct EngineBuilder {
    data_dir: Option<PathBuf>,
    settings: Settings,
    rules: Rules,
    clock: Arc<dyn Clock>,
    transport: Option<Arc<dyn Transport>>,
    credentials: Option<Arc<dyn Credentials>>,
    providers: Vec<ProviderId>,
    fetch_timeout: Duration,
    status_ttl: Option<Duration>,
    checkpoint_every: Option<u64>,
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

    /// How requests are sent (required).
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
    /// trackers from the store, and records the rules when they differ
    /// from the ones the log last saw.
    pub fn build(self) -> Result<Engine, EngineError> {
        let data_dir = self.data_dir.ok_or(EngineError::Missing("a data dir"))?;
        let transport = self.transport.ok_or(EngineError::Missing("a transport"))?;
        let credentials = self.credentials.ok_or(EngineError::Missing("credentials"))?;
        let mut journal = Journal::open(&data_dir)?;
        if let Some(events) = self.checkpoint_every {
            journal = journal.checkpoint_every(events);
        }
        let mut order = self.providers;
        let mut seen = std::collections::BTreeSet::new();
        order.retain(|id| seen.insert(*id));
        let mut providers = order.clone();
        providers.sort();
        // The settings in force: the narrower setters win over `settings`.
        let mut settings = self.settings;
        settings.refresh_interval_s = self.rules.interval.as_secs().unsigned_abs();
        settings.min_interval_s = self.rules.min_interval.as_secs().unsigned_abs();
        settings.providers = order;
        settings.status_pages = self.status_ttl.is_some();
        if let Some(ttl) = self.status_ttl {
            settings.status_ttl_s = ttl.as_secs();
        }
        let patch = changed_keys(&journal.store().settings, settings.to_json());
        if !patch.is_empty() {
            let event = Event::SettingsChanged {
                patch: Value::Object(patch),
            };
            journal.record([(self.clock.now(), Stream::Engine, event)])?;
        }
        let driver = Driver::new(self.rules, &providers, journal.store());
        let (updates, _) = broadcast::channel(16);
        Ok(Engine {
            journal,
            driver,
            clock: self.clock,
            transport,
            credentials,
            fetch_timeout: self.fetch_timeout,
            status_ttl: self.status_ttl,
            status_options: StatusOptions::default(),
            updates,
            session: Session::new(settings),
        })
    }
}

impl Engine {
    /// A builder with the defaults.
    pub fn builder() -> EngineBuilder {
        EngineBuilder {
            data_dir: None,
            settings: Settings::default(),
            rules: Rules::default(),
            clock: Arc::new(SystemClock),
            transport: None,
            credentials: None,
            providers: ProviderId::ALL.to_vec(),
            fetch_timeout: FETCH_TIMEOUT,
            status_ttl: Some(STATUS_TTL),
            checkpoint_every: None,
        }
    }

    /// Runs one update cycle now, for every provider.
    pub async fn cycle(&mut self) -> Result<CycleReport, EngineError> {
        self.run_cycle(Event::ClockTicked, None).await
    }

    /// Runs a cycle asked for by a user or host, for one provider or all.
    /// It honours the same rules as the timer: only what is due is fetched.
    pub async fn refresh(&mut self, provider: Option<ProviderId>) -> Result<CycleReport, EngineError> {
        let trigger = Event::RefreshRequested { provider, force: false };
        self.run_cycle(trigger, provider).await
    }

    /// A forced refresh: a healthy provider is fetched once the minimum
    /// interval has passed; backoff and rate limits still hold.
    pub async fn force_refresh(&mut self, provider: Option<ProviderId>) -> Result<CycleReport, EngineError> {
        let trigger = Event::RefreshRequested { provider, force: true };
        self.run_cycle(trigger, provider).await
    }

    /// Runs cycles every interval until `shutdown` completes, then returns
    /// (the caller closes the engine).
    pub async fn run(&mut self, shutdown: impl Future<Output = ()>) -> Result<(), EngineError> {
        tokio::pin!(shutdown);
        loop {
            self.cycle().await?;
            let interval = self.driver.rules().interval;
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

    /// The live store.
    pub fn store(&self) -> &Store {
        self.journal.store()
    }

    /// The status at the clock's current reading.
    pub fn status(&self) -> Status {
        status::view(self.journal.store(), self.clock.now(), &self.status_options)
    }

    /// The log underneath (read-only use: the engine owns it).
    pub fn log(&self) -> &crate::log::Log {
        self.journal.log()
    }

    /// The trackers.
    pub fn driver(&self) -> &Driver {
        &self.driver
    }

    /// Clean shutdown: a checkpoint, then the log's clean close.
    pub fn close(self) -> Result<(), EngineError> {
        Ok(self.journal.close()?)
    }

    async fn run_cycle(&mut self, trigger: Event, scope: Option<ProviderId>) -> Result<CycleReport, EngineError> {
        let at = self.clock.now();
        let force = matches!(trigger, Event::RefreshRequested { force: true, .. });
        let mut items = vec![(at, Stream::Engine, trigger)];
        let mut requests = Vec::new();
        for provider in self.driver.providers() {
            if scope.is_some_and(|only| only != provider) {
                continue;
            }
            let credential = self.credentials.find(provider);
            let found = credential.as_ref().map(|credential| Found {
                fingerprint: credential.fingerprint(),
                source: credential.source.clone(),
            });
            items.extend(self.driver.credentials(provider, at, found));
            let (decided, fetch) = if force {
                self.driver.demand(provider, at)
            } else {
                self.driver.poll(provider, at)
            };
            items.extend(decided);
            if let (true, Some(credential)) = (fetch, credential) {
                requests.push(Request::usage(provider, credential));
            }
            if self.status_page_due(provider, at) {
                requests.extend(Request::status_page(provider));
            }
        }
        let mut events = self.journal.record(items)?.len();
        let fetched: Vec<ProviderId> = requests
            .iter()
            .filter(|request| request.purpose == Purpose::Usage)
            .map(|request| request.provider)
            .collect();
        let answers = self.fetch_all(requests).await;
        let done = self.clock.now();
        let mut items = Vec::new();
        for (purpose, provider, answer, elapsed_ms) in answers {
            if purpose == Purpose::StatusPage {
                items.push((done, Stream::Controller, health::checked(provider, answer)));
                continue;
            }
            let (exchange, outcome) = match answer {
                Ok(exchange) => {
                    let outcome = driver::read_exchange(&exchange, done);
                    (Some(exchange), outcome)
                }
                Err(error) => (None, driver::failed(provider, error.kind(), &error.to_string())),
            };
            items.extend(self.driver.completed(provider, done, exchange, outcome, elapsed_ms));
        }
        events += self.journal.record(items)?.len();
        // Subscribers get exactly the view the snapshot file now holds.
        let view = self.journal.publish(done, &self.status_options)?;
        let _ = self.updates.send(Arc::new(view));
        Ok(CycleReport {
            at: Some(at),
            fetched,
            events,
        })
    }

    /// Whether `provider`'s status page is due at `at`: pages are on, the
    /// provider has one and is tracked, and the last reading is older than
    /// the TTL.
    fn status_page_due(&self, provider: ProviderId, at: Timestamp) -> bool {
        let Some(ttl) = self.status_ttl else {
            return false;
        };
        let tracked = self.driver.state(provider).is_some_and(|state| state.is_active());
        let checked = self
            .journal
            .store()
            .providers
            .get(&provider)
            .and_then(|entry| entry.status_page.as_ref())
            .map(|page| page.checked_at);
        tracked
            && Feed::of(provider).is_some()
            && checked.is_none_or(|checked| at.duration_since(checked).unsigned_abs() >= ttl)
    }

    /// Sends every request at once, each bounded by the fetch timeout, and
    /// returns the answers in (purpose, provider) order with how long each took.
    async fn fetch_all(
        &self,
        requests: Vec<Request>,
    ) -> Vec<(Purpose, ProviderId, Result<RecordedExchange, TransportError>, u64)> {
        let mut tasks = JoinSet::new();
        for request in requests {
            let transport = Arc::clone(&self.transport);
            let clock = Arc::clone(&self.clock);
            let timeout = self.fetch_timeout;
            tasks.spawn(async move {
                let started = clock.now();
                let expired = request
                    .credential
                    .as_ref()
                    .filter(|credential| credential.expired(started));
                let answer = if let Some(credential) = expired {
                    Err(TransportError::Expired {
                        origin: credential.source.clone(),
                        fix: fix_command(request.provider),
                    })
                } else {
                    match tokio::time::timeout(timeout, transport.send(&request)).await {
                        Ok(answer) => answer,
                        Err(_) => Err(TransportError::Timeout {
                            millis: timeout.as_millis() as u64,
                        }),
                    }
                };
                let elapsed_ms = clock.now().duration_since(started).as_millis().max(0) as u64;
                (request.purpose, request.provider, answer, elapsed_ms)
            });
        }
        let mut answers = tasks.join_all().await;
        answers.sort_by_key(|(purpose, provider, _, _)| (*purpose, *provider));
        answers
    }
}

/// The keys of `settings` whose values differ from `recorded`.
pub(crate) fn changed_keys(recorded: &Map<String, Value>, settings: Value) -> Map<String, Value> {
    let Value::Object(settings) = settings else {
        return Map::new();
    };
    settings
        .into_iter()
        .filter(|(key, value)| recorded.get(key) != Some(value))
        .collect()
}
