//! The controller inside the real engine (sled log on a temp dir, a manual
//! clock, scripted provider answers, credentials that come and go) against
//! a reference model of the diagram in `design.md`, driven by
//! proptest-state-machine: random host events, clock advances, interval
//! cycles, credential changes, settings patches and fetch outcomes.
//!
//! After every step model and engine agree on the controller states
//! visited, on what the host was told (ready, settings updated or refused,
//! and which provider `update_current` shows), and on which providers were
//! fetched. Over the whole run no provider is asked twice within 10 s, and
//! at its end the session's log replays with no divergence.
//!
//! The model writes the rules out plainly: the tracker's (poll, forced
//! demand, backoff, rate limit, credentials) as far as the controller can
//! see them through the store, and the controller's (provider resolution,
//! cache and throttle gates, cycling, patches, shutdown).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use quotatrack::clock::{BoxFuture, Clock, ManualClock};
use quotatrack::credentials::{Credential, FixedCredentials};
use quotatrack::engine::Engine;
use quotatrack::events::{Event, HostEvent, Outcome, Stream};
use quotatrack::exchange::RecordedExchange;
use quotatrack::providers::{ErrorKind, ProviderId};
use quotatrack::replay;
use quotatrack::session::EngineEvent;
use quotatrack::transport::{Request, Transport, TransportError};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::exchange;

/// The providers, in id order (the order the engine polls them in).
const PROVIDERS: [ProviderId; 2] = [ProviderId::Anthropic, ProviderId::Codex];
const CACHE_TTL: i64 = 60;
const MIN_INTERVAL: i64 = 10;

/// What a provider answers while the script says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Usage,
    Unavailable,
    RateLimited,
}

fn recorded(provider: usize, answer: Answer) -> RecordedExchange {
    let name = match (PROVIDERS[provider], answer) {
        (ProviderId::Anthropic, Answer::Usage) => "ok-full",
        (ProviderId::Anthropic, Answer::Unavailable) => "err-unavailable-overloaded",
        (ProviderId::Anthropic, Answer::RateLimited) => "err-rate_limited-retry300",
        (_, Answer::Usage) => "ok-plus",
        (_, Answer::Unavailable) => "err-unavailable-cloudflare-html",
        (_, Answer::RateLimited) => "err-rate_limited-usage-limit",
    };
    exchange(PROVIDERS[provider], name)
}

/// The answer as the engine will read it when it arrives at `now`.
fn reading(provider: usize, answer: Answer, now: i64) -> Outcome {
    let mut exchange = recorded(provider, answer);
    exchange.recorded_at = at(now);
    Outcome::read(&exchange, at(now))
}

#[derive(Debug, Clone)]
enum Patch {
    Providers(Vec<usize>),
    /// A value of the wrong type: refused, nothing changes.
    Bad,
}

impl Patch {
    fn json(&self) -> Value {
        match self {
            Patch::Providers(order) => {
                let names: Vec<&str> = order.iter().map(|p| PROVIDERS[*p].as_str()).collect();
                json!({ "providers": names })
            }
            Patch::Bad => json!({ "cache_ttl_s": "soon" }),
        }
    }
}

#[derive(Debug, Clone)]
enum Host {
    SessionStart,
    TurnStart,
    ToolResult,
    TurnEnd,
    Refresh,
    Model(Option<usize>),
    Cycle,
    Patch(Patch),
    Shutdown,
}

#[derive(Debug, Clone)]
enum Step {
    Advance(i64),
    Credentials(usize, bool),
    Script(usize, Answer),
    /// The engine's interval: a cycle of every provider, then `interval`.
    Tick,
    Host(Host),
}

/// The tracker's state, as far as it matters here.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tracking {
    Healthy,
    BackingOff,
    RateLimited(i64),
    Inactive,
}

#[derive(Debug, Clone)]
struct Provider {
    /// A credential is there to be found.
    present: bool,
    answer: Answer,
    // The tracker.
    tracking: Tracking,
    fails: u32,
    last: Option<i64>,
    known: bool,
    // The store.
    windows: bool,
    failing: bool,
    last_good: Option<i64>,
    last_attempt: Option<i64>,
}

impl Provider {
    fn delay(fails: u32) -> i64 {
        60 * i64::from(fails.saturating_add(1).min(8))
    }

    /// A poll (or, when `force`, a demand): whether to fetch. No request
    /// ever goes out within the minimum interval of the one before.
    fn due(&mut self, now: i64, force: bool) -> bool {
        let rested = self.last_attempt.is_none_or(|asked| now - asked >= MIN_INTERVAL);
        match self.tracking {
            Tracking::Inactive => false,
            _ if !rested => false,
            Tracking::Healthy if force => true,
            Tracking::Healthy | Tracking::BackingOff => self
                .last
                .is_none_or(|last| last + Provider::delay(self.fails) <= now + 1),
            Tracking::RateLimited(until) if now < until => false,
            Tracking::RateLimited(_) => {
                self.tracking = Tracking::BackingOff;
                true
            }
        }
    }

    fn blocked_until(&self) -> Option<i64> {
        match self.tracking {
            Tracking::RateLimited(until) => Some(until),
            _ => None,
        }
    }
}

/// What the host should have been told in a step.
#[derive(Debug, Clone, PartialEq)]
enum Told {
    Ready,
    SettingsUpdated,
    Refused,
    /// A cycle found nothing else to show.
    Stayed,
}

#[derive(Debug, Clone)]
struct Model {
    now: i64,
    providers: Vec<Provider>,
    // The controller.
    shut: bool,
    current: Option<usize>,
    cycled: bool,
    model: Option<usize>,
    enabled: Vec<usize>,
    /// The provider the host was last shown.
    shown: Option<Option<usize>>,
    // What the last step led to.
    path: Vec<&'static str>,
    told: Vec<Told>,
    /// An `update_current` naming this provider had to be sent.
    must_show: bool,
    fetched: Vec<usize>,
}

impl Model {
    fn usable(&self, p: usize) -> bool {
        self.enabled.contains(&p) && self.providers[p].known
    }

    /// An engine cycle for `scope` (or everyone): credentials read, then a
    /// poll or a demand, then the answers, in provider order.
    fn cycle(&mut self, scope: Option<usize>, force: bool) {
        let now = self.now;
        let mut fetching = Vec::new();
        for (p, provider) in self.providers.iter_mut().enumerate() {
            // Only the enabled providers are driven; a disabled one's tracker
            // stops, and resumes from the store when enabled again.
            if scope.is_some_and(|only| only != p) || !self.enabled.contains(&p) {
                continue;
            }
            match (provider.present, provider.known) {
                (true, false) => {
                    provider.known = true;
                    if provider.tracking == Tracking::Inactive {
                        provider.tracking = Tracking::Healthy;
                        provider.fails = 0;
                        provider.last = None;
                    }
                }
                (false, _) if provider.tracking != Tracking::Inactive => {
                    provider.known = false;
                    provider.tracking = Tracking::Inactive;
                    provider.fails = 0;
                    provider.last = None;
                    provider.windows = false;
                }
                _ => {}
            }
            if provider.due(now, force) {
                provider.last = Some(now);
                provider.last_attempt = Some(now);
                fetching.push(p);
            }
        }
        for p in &fetching {
            let outcome = reading(*p, self.providers[*p].answer, now);
            let provider = &mut self.providers[*p];
            match outcome {
                Outcome::Usage { windows, .. } => {
                    provider.tracking = Tracking::Healthy;
                    provider.fails = 0;
                    provider.windows = !windows.is_empty();
                    provider.failing = false;
                    provider.last_good = Some(now);
                }
                Outcome::Failed { error } => {
                    provider.fails += 1;
                    provider.failing = true;
                    provider.tracking = match error.kind {
                        ErrorKind::RateLimited => {
                            let wait = error
                                .retry_after_s
                                .map_or(Provider::delay(provider.fails), |s| s as i64);
                            Tracking::RateLimited(now + wait)
                        }
                        _ => Tracking::BackingOff,
                    };
                }
            }
        }
        self.fetched.extend(fetching);
    }

    /// The provider to show: the cycled one while usable, else the model's;
    /// when neither is and the one shown was turned off, the first enabled
    /// one with something to show, else with credentials (kept as a cycled
    /// one is); else none.
    fn resolve(&mut self) -> Option<usize> {
        if !(self.cycled && self.current.is_some_and(|p| self.usable(p))) {
            self.cycled = false;
            let model = self.model.filter(|p| self.usable(*p));
            let disabled = self.current.is_some_and(|p| !self.enabled.contains(&p));
            self.current = if model.is_none() && disabled {
                let providers = &self.providers;
                let worth = |p: &usize| providers[*p].known && (providers[*p].windows || providers[*p].failing);
                let next = (self.enabled.iter().copied().find(worth))
                    .or_else(|| self.enabled.iter().copied().find(|p| providers[*p].known));
                self.cycled = next.is_some();
                next
            } else {
                model
            };
        }
        self.current
    }

    fn emit(&mut self) {
        self.path.extend(["emit_current", "ready"]);
        self.must_show = self.shown != Some(self.current);
        self.shown = Some(self.current);
    }

    fn refresh(&mut self, force: bool) {
        self.path.push("resolve_provider");
        let Some(p) = self.resolve() else {
            self.path.push("no_provider");
            return self.emit();
        };
        self.path.push("hydrate_from_cache");
        let now = self.now;
        let seen = &self.providers[p];
        let fresh = seen.last_good.is_some_and(|good| now - good < CACHE_TTL) && !seen.failing;
        let blocked = seen.blocked_until().is_some_and(|until| until > now);
        let recent = seen.last_attempt.is_some_and(|last| now - last < MIN_INTERVAL);
        if (fresh && !force) || blocked || recent {
            self.path.push("skip_fetch");
            return self.emit();
        }
        self.path.push("fetch_usage");
        self.cycle(Some(p), force);
        if !self.fetched.contains(&p) {
            self.path.push("skip_fetch");
        } else if !self.providers[p].failing {
            self.path.extend(["fetch_success", "maybe_fetch_status"]);
        } else {
            self.path.push("fetch_error");
            if self.providers[p].windows {
                self.path.push("use_cached_fallback");
            }
        }
        self.emit();
    }

    /// The enabled providers after the current one, in order, wrapping
    /// round; the first other provider with something to show is taken.
    fn cycle_provider(&mut self) {
        self.path.push("cycle_requested");
        let n = self.enabled.len();
        let start = self
            .current
            .and_then(|current| self.enabled.iter().position(|p| *p == current))
            .map_or(0, |index| index + 1);
        let taken = (0..n).map(|k| self.enabled[(start + k) % n]).position(|p| {
            let seen = &self.providers[p];
            seen.known && (seen.windows || seen.failing) && Some(p) != self.current
        });
        let rejected = taken.unwrap_or(n);
        self.path.extend(std::iter::repeat_n("cycle_requested", rejected));
        match taken {
            Some(k) => {
                self.current = Some(self.enabled[(start + k) % n]);
                self.cycled = true;
                // The answer to a cycle that moved is always sent.
                self.shown = None;
            }
            None => {
                // A provider turned off is not shown as current.
                if self.current.is_some_and(|p| !self.enabled.contains(&p)) {
                    self.current = None;
                    self.cycled = false;
                }
                self.told.push(Told::Stayed);
            }
        }
        self.emit();
    }

    fn host(&mut self, host: &Host) {
        if self.shut {
            return;
        }
        match host {
            Host::SessionStart => {
                self.path
                    .extend(["session_start", "refresh_cache_only", "refresh_status_cache_only"]);
                self.resolve();
                self.emit();
            }
            Host::TurnStart | Host::ToolResult | Host::TurnEnd => self.refresh(false),
            Host::Refresh => self.refresh(true),
            Host::Model(provider) => {
                self.model = *provider;
                self.cycled = false;
                self.refresh(true);
            }
            Host::Cycle => self.cycle_provider(),
            Host::Patch(patch) => {
                self.path.extend(["settings_patched", "settings_loading"]);
                match patch {
                    Patch::Providers(order) => {
                        for (p, provider) in self.providers.iter_mut().enumerate() {
                            let (was, is) = (self.enabled.contains(&p), order.contains(&p));
                            if was && !is {
                                // Disabled: its tracker stops.
                                provider.tracking = Tracking::Inactive;
                                provider.fails = 0;
                            } else if !was && is && provider.known && provider.tracking == Tracking::Inactive {
                                // Enabled again with its credentials: it starts
                                // over, held back only by the minimum interval.
                                provider.tracking = Tracking::Healthy;
                                provider.fails = 0;
                                provider.last = None;
                            }
                        }
                        self.enabled.clone_from(order);
                        self.told.push(Told::SettingsUpdated);
                        // Then a refresh under the new settings, not forced.
                        self.refresh(false);
                    }
                    Patch::Bad => {
                        self.told.push(Told::Refused);
                        self.emit();
                    }
                }
            }
            Host::Shutdown => {
                self.path.push("shutdown");
                self.shut = true;
            }
        }
    }
}

struct Reference;

impl ReferenceStateMachine for Reference {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        let provider = Provider {
            present: true,
            answer: Answer::Usage,
            tracking: Tracking::Healthy,
            fails: 0,
            last: None,
            known: false,
            windows: false,
            failing: false,
            last_good: None,
            last_attempt: None,
        };
        Just(Model {
            now: 0,
            providers: vec![provider; PROVIDERS.len()],
            shut: false,
            current: None,
            cycled: false,
            model: None,
            enabled: vec![0, 1],
            shown: None,
            path: vec!["guard_singleton", "settings_loading", "ready"],
            told: vec![Told::Ready],
            must_show: false,
            fetched: Vec::new(),
        })
        .boxed()
    }

    fn transitions(_: &Model) -> BoxedStrategy<Step> {
        let provider = 0..PROVIDERS.len();
        let answer = prop_oneof![
            3 => Just(Answer::Usage),
            1 => Just(Answer::Unavailable),
            1 => Just(Answer::RateLimited),
        ];
        let order = prop_oneof![Just(vec![0, 1]), Just(vec![1, 0]), Just(vec![0]), Just(vec![1]),];
        let host = prop_oneof![
            1 => Just(Host::SessionStart),
            2 => Just(Host::TurnStart),
            2 => Just(Host::ToolResult),
            2 => Just(Host::TurnEnd),
            2 => Just(Host::Refresh),
            2 => proptest::option::weighted(0.9, provider.clone()).prop_map(Host::Model),
            2 => Just(Host::Cycle),
            1 => order.prop_map(|order| Host::Patch(Patch::Providers(order))),
            1 => Just(Host::Patch(Patch::Bad)),
        ];
        prop_oneof![
            4 => prop_oneof![1i64..12, 1i64..400].prop_map(Step::Advance),
            1 => (provider.clone(), proptest::bool::weighted(0.7)).prop_map(|(p, on)| Step::Credentials(p, on)),
            2 => (provider, answer).prop_map(|(p, answer)| Step::Script(p, answer)),
            2 => Just(Step::Tick),
            8 => host.prop_map(Step::Host),
            // Rare: the session ends and everything after is ignored.
            1 => prop_oneof![19 => Just(Step::Tick), 1 => Just(Step::Host(Host::Shutdown))],
        ]
        .boxed()
    }

    fn apply(mut model: Model, step: &Step) -> Model {
        model.path.clear();
        model.told.clear();
        model.must_show = false;
        model.fetched.clear();
        match step {
            Step::Advance(seconds) => model.now += seconds,
            Step::Credentials(p, on) => model.providers[*p].present = *on,
            Step::Script(p, answer) => model.providers[*p].answer = *answer,
            Step::Tick => {
                model.cycle(None, false);
                // `interval` refreshes as a turn event does: not forced.
                model.host(&Host::TurnEnd);
            }
            Step::Host(host) => model.host(host),
        }
        model
    }
}

/// Provider answers from the script, and every request with its time.
struct Scripted {
    clock: Arc<ManualClock>,
    answers: Mutex<BTreeMap<ProviderId, Answer>>,
    asked: Mutex<Vec<(ProviderId, Timestamp)>>,
}

impl Transport for Scripted {
    fn send<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<RecordedExchange, TransportError>> {
        let now = self.clock.now();
        self.asked.lock().unwrap().push((request.provider, now));
        let answer = self.answers.lock().unwrap()[&request.provider];
        let index = PROVIDERS.iter().position(|p| *p == request.provider).unwrap();
        let mut exchange = recorded(index, answer);
        exchange.recorded_at = now;
        Box::pin(std::future::ready(Ok(exchange)))
    }
}

struct Sut {
    runtime: tokio::runtime::Runtime,
    engine: Engine,
    clock: Arc<ManualClock>,
    transport: Arc<Scripted>,
    credentials: Arc<Mutex<FixedCredentials>>,
    /// The next log entry not yet looked at.
    seen: u64,
    _dir: TempDir,
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_787_400_000 + seconds).unwrap()
}

impl Sut {
    /// An engine over both providers, every answer usage, not started.
    fn new() -> Sut {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(at(0)));
        let transport = Arc::new(Scripted {
            clock: clock.clone(),
            answers: Mutex::new(PROVIDERS.iter().map(|p| (*p, Answer::Usage)).collect()),
            asked: Mutex::new(Vec::new()),
        });
        let credentials = Arc::new(Mutex::new(FixedCredentials::present(PROVIDERS, "test")));
        let engine = Engine::builder()
            .data_dir(dir.path())
            .clock(clock.clone())
            .transport(transport.clone())
            .credentials(credentials.clone())
            .providers(&PROVIDERS)
            .status_pages(None)
            .build()
            .unwrap();
        Sut {
            runtime,
            engine,
            clock,
            transport,
            credentials,
            seen: 0,
            _dir: dir,
        }
    }

    /// The controller states entered since the last look.
    fn path(&mut self) -> Vec<String> {
        let entries: Vec<_> = self
            .engine
            .log()
            .expect("a log on disk")
            .entries(self.seen)
            .map(Result::unwrap)
            .collect();
        self.seen = self.engine.log().expect("a log on disk").next_seq();
        entries
            .into_iter()
            .filter(|e| e.stream == Stream::Controller)
            .filter_map(|e| match e.payload {
                Event::Transitioned { to, .. } => Some(to),
                _ => None,
            })
            .collect()
    }

    fn handle(&mut self, host: HostEvent) -> Vec<EngineEvent> {
        self.runtime.block_on(self.engine.handle(host)).unwrap()
    }

    /// Checks a step's results against the model's.
    fn check(&mut self, model: &Model, told: &[EngineEvent], asked: usize, step: &dyn std::fmt::Debug) {
        let path = self.path();
        // A host event that changed nothing (nothing recorded, nothing told
        // but the view, the controller back in `ready`) leaves no trace in
        // the log (see `Engine::handle`), so there is no path to compare;
        // what a tick's cycle fetched is checked below.
        let only_views = told
            .iter()
            .all(|event| matches!(event, EngineEvent::UpdateCurrent { .. } | EngineEvent::UpdateAll { .. }));
        let elided = path.is_empty() && only_views && !model.must_show && model.path.last() == Some(&"ready");
        if !elided {
            assert_eq!(path, model.path, "controller states after {step:?}");
        }
        let others: Vec<Told> = told
            .iter()
            .filter_map(|event| match event {
                EngineEvent::Ready { .. } => Some(Told::Ready),
                EngineEvent::SettingsUpdated { .. } => Some(Told::SettingsUpdated),
                EngineEvent::Error { .. } => Some(Told::Refused),
                EngineEvent::CycleUnchanged { .. } => Some(Told::Stayed),
                _ => None,
            })
            .collect();
        assert_eq!(others, model.told, "host told after {step:?}");
        let shown: Vec<Option<ProviderId>> = told
            .iter()
            .filter_map(|event| match event {
                EngineEvent::UpdateCurrent { provider, .. } => Some(*provider),
                _ => None,
            })
            .collect();
        let current = model.current.map(|p| PROVIDERS[p]);
        assert!(
            shown.iter().all(|p| *p == current),
            "shown {shown:?}, model shows {current:?} after {step:?}"
        );
        if model.must_show {
            assert_eq!(shown, vec![current], "the new provider must be shown after {step:?}");
        }
        let mut fetched: Vec<ProviderId> = self.transport.asked.lock().unwrap()[asked..]
            .iter()
            .map(|(p, _)| *p)
            .collect();
        fetched.sort();
        let expected: Vec<ProviderId> = model.fetched.iter().map(|p| PROVIDERS[*p]).collect();
        assert_eq!(fetched, expected, "providers fetched after {step:?}");
    }
}

impl StateMachineTest for Sut {
    type SystemUnderTest = Sut;
    type Reference = Reference;

    fn init_test(model: &Model) -> Sut {
        let mut sut = Sut::new();
        let told = sut.runtime.block_on(sut.engine.start()).unwrap();
        sut.check(model, &told, 0, &"start");
        sut
    }

    fn apply(mut sut: Sut, model: &Model, step: Step) -> Sut {
        let asked = sut.transport.asked.lock().unwrap().len();
        let told = match &step {
            Step::Advance(seconds) => {
                sut.clock.advance(SignedDuration::from_secs(*seconds));
                Vec::new()
            }
            Step::Credentials(p, on) => {
                let credential = on.then(|| Credential::new(format!("test-{}", PROVIDERS[*p]), "test"));
                sut.credentials.lock().unwrap().set(PROVIDERS[*p], credential);
                Vec::new()
            }
            Step::Script(p, answer) => {
                sut.transport.answers.lock().unwrap().insert(PROVIDERS[*p], *answer);
                Vec::new()
            }
            Step::Tick => {
                sut.runtime.block_on(sut.engine.cycle()).unwrap();
                sut.handle(HostEvent::Interval)
            }
            Step::Host(host) => {
                let event = match host {
                    Host::SessionStart => HostEvent::SessionStart,
                    Host::TurnStart => HostEvent::TurnStart,
                    Host::ToolResult => HostEvent::ToolResult,
                    Host::TurnEnd => HostEvent::TurnEnd,
                    Host::Refresh => HostEvent::Refresh,
                    Host::Model(provider) => HostEvent::ModelChanged {
                        provider: None,
                        model: match provider.map(|p| PROVIDERS[p]) {
                            Some(ProviderId::Anthropic) => "claude-sonnet-4-5",
                            Some(_) => "gpt-5-codex",
                            None => "grok-4",
                        }
                        .to_owned(),
                    },
                    Host::Cycle => HostEvent::CycleProvider,
                    Host::Patch(patch) => HostEvent::SettingsPatch { patch: patch.json() },
                    Host::Shutdown => HostEvent::SessionShutdown,
                };
                sut.handle(event)
            }
        };
        sut.check(model, &told, asked, &step);
        sut
    }

    /// The session, replayed from its log, makes the same decisions.
    fn teardown(sut: Sut, _: Model) {
        let events: Vec<_> = sut
            .engine
            .log()
            .expect("a log on disk")
            .entries(0)
            .map(Result::unwrap)
            .collect();
        let report = replay::replay(&events, &replay::Options::default());
        if let Some(divergence) = report.divergence {
            panic!("replay of the session: {}", divergence.line());
        }
    }

    fn check_invariants(sut: &Sut, _: &Model) {
        let asked = sut.transport.asked.lock().unwrap();
        for provider in PROVIDERS {
            let times: Vec<Timestamp> = asked.iter().filter(|(p, _)| *p == provider).map(|(_, t)| *t).collect();
            for pair in times.windows(2) {
                let gap = pair[1].duration_since(pair[0]);
                assert!(
                    gap >= SignedDuration::from_secs(MIN_INTERVAL),
                    "{provider} asked twice within {gap:?}"
                );
            }
        }
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]
    #[test]
    fn controller_agrees_with_the_reference_model(sequential 1..80 => Sut);
}

/// An engine that does not own its data dir waits in `idle`: refreshes and
/// model changes go to the owner, everything is answered from the owner's
/// snapshot (the host's own provider and every provider), a cycle moves
/// through the providers enabled both here and by the owner (the snapshot
/// lists those it turned off `inactive`), and nothing is fetched here.
#[test]
fn a_follower_forwards_refreshes_and_shows_its_hosts_provider_from_the_snapshot() {
    use quotatrack::machines::controller::{Cycled, Effect, Trigger};
    use quotatrack::session::Follower;
    use quotatrack::wire::Freshness;

    // The owner's snapshot: Claude and Codex with usage.
    let mut owner = Sut::new();
    owner.runtime.block_on(owner.engine.cycle()).unwrap();
    let snapshot = owner.engine.status();

    let (mut follower, first) = Follower::start();
    follower.set_enabled(&[ProviderId::Anthropic, ProviderId::Codex]);
    assert_eq!(first, [Effect::EmitAlreadyActive]);
    let model = HostEvent::ModelChanged {
        provider: None,
        model: "gpt-5-codex".to_owned(),
    };
    assert_eq!(
        follower.handle(&model, Some(&snapshot)),
        [Effect::Forward(Trigger::ModelChanged), Effect::EmitCurrent]
    );
    assert_eq!(follower.current(), Some(ProviderId::Codex));
    assert_eq!(
        follower.handle(&HostEvent::Refresh, Some(&snapshot)),
        [Effect::Forward(Trigger::Refresh), Effect::EmitCurrent]
    );
    let told = follower.shown(&snapshot, at(0));
    let EngineEvent::UpdateCurrent { provider, display, .. } = &told[0] else {
        panic!("{told:?}")
    };
    assert_eq!(*provider, Some(ProviderId::Codex));
    assert!(display.as_deref().unwrap().starts_with("Codex │ 5h"), "{display:?}");
    // Every provider, as the owner lists them: the two enabled with their
    // usage, then the five the settings turn off, `inactive`.
    let EngineEvent::UpdateAll { providers } = &told[1] else {
        panic!("{told:?}")
    };
    let listed: Vec<(ProviderId, Freshness)> = providers
        .iter()
        .map(|shown| (shown.usage.id, shown.usage.state))
        .collect();
    let off = [
        ProviderId::Copilot,
        ProviderId::Gemini,
        ProviderId::Antigravity,
        ProviderId::Kiro,
        ProviderId::Zai,
    ];
    let expected: Vec<(ProviderId, Freshness)> = [
        (ProviderId::Anthropic, Freshness::Fresh),
        (ProviderId::Codex, Freshness::Fresh),
    ]
    .into_iter()
    .chain(off.map(|id| (id, Freshness::Inactive)))
    .collect();
    assert_eq!(listed, expected);
    assert_eq!(follower.shown(&snapshot, at(0)), [], "nothing changed, nothing sent");

    assert_eq!(
        follower.handle(&HostEvent::CycleProvider, Some(&snapshot)),
        [
            Effect::EmitCycled(Cycled::Selected(ProviderId::Anthropic)),
            Effect::EmitCurrent
        ]
    );
    assert_eq!(follower.current(), Some(ProviderId::Anthropic), "the cycle wraps round");
    assert_eq!(follower.cycled(Cycled::Selected(ProviderId::Anthropic)), None);
    let told = follower.shown(&snapshot, at(0));
    assert!(
        matches!(
            &told[..],
            [EngineEvent::UpdateCurrent {
                provider: Some(ProviderId::Anthropic),
                ..
            }]
        ),
        "the cycle is answered with the provider it moved to: {told:?}"
    );
    // With nothing in the snapshot there is nothing to move to (both
    // providers were probed), and the host is told so.
    let empty = quotatrack::wire::Status {
        providers: Vec::new(),
        ..snapshot.clone()
    };
    let effects = follower.handle(&HostEvent::CycleProvider, Some(&empty));
    assert_eq!(effects[0], Effect::EmitCycled(Cycled::NoneAvailable));
    assert_eq!(
        follower.cycled(Cycled::NoneAvailable),
        Some(EngineEvent::CycleUnchanged {
            reason: Cycled::NoneAvailable,
            provider: Some(ProviderId::Anthropic)
        })
    );
    // The owner turned Codex off (its snapshot lists it inactive): a cycle
    // does not move there.
    let mut codex_off = snapshot.clone();
    for entry in &mut codex_off.providers {
        if entry.id == ProviderId::Codex {
            entry.state = Freshness::Inactive;
        }
    }
    let effects = follower.handle(&HostEvent::CycleProvider, Some(&codex_off));
    assert_eq!(effects[0], Effect::EmitCycled(Cycled::NoneAvailable));
    assert_eq!(follower.current(), Some(ProviderId::Anthropic));
    for shown in [HostEvent::TurnStart, HostEvent::Interval] {
        assert_eq!(
            follower.handle(&shown, Some(&snapshot)),
            [Effect::EmitCurrent],
            "{shown:?}"
        );
    }
    assert!(!follower.is_shut_down());
    assert_eq!(follower.handle(&HostEvent::SessionShutdown, None), []);
    assert!(follower.is_shut_down());
    // Queries are answered from the snapshot, each time, even after shutdown.
    for _ in 0..2 {
        let answer = follower.answer(&HostEvent::GetCurrent, &snapshot, at(0));
        assert!(
            matches!(
                answer,
                Some(EngineEvent::UpdateCurrent {
                    provider: Some(ProviderId::Anthropic),
                    ..
                })
            ),
            "{answer:?}"
        );
        let answer = follower.answer(&HostEvent::GetAll, &snapshot, at(0));
        assert!(matches!(answer, Some(EngineEvent::UpdateAll { .. })), "{answer:?}");
    }
    assert_eq!(follower.answer(&HostEvent::Refresh, &snapshot, at(0)), None);
}

/// A follower never shows a provider turned off (by the owner, whose
/// snapshot lists it `inactive`, or by its own settings), by the owner's
/// rule: the provider shown, once turned off, gives way to the model's if
/// enabled, else the first enabled one with something to show; a model
/// whose provider is off shows none; with none enabled nothing is shown.
#[test]
fn a_follower_never_shows_a_provider_turned_off() {
    use quotatrack::machines::controller::Cycled;
    use quotatrack::session::Follower;
    use quotatrack::wire::{Freshness, Status};

    let mut owner = Sut::new();
    owner.runtime.block_on(owner.engine.cycle()).unwrap();
    let snapshot = owner.engine.status();
    let off = |ids: &[ProviderId]| {
        let mut view: Status = snapshot.clone();
        for entry in &mut view.providers {
            if ids.contains(&entry.id) {
                entry.state = Freshness::Inactive;
            }
        }
        view
    };
    let claude = HostEvent::ModelChanged {
        provider: None,
        model: "claude-sonnet-4-5".to_owned(),
    };

    let (mut follower, _) = Follower::start();
    follower.set_enabled(&PROVIDERS);
    follower.handle(&claude, Some(&snapshot));
    assert_eq!(follower.current(), Some(ProviderId::Anthropic));
    // The owner turns Claude off: the next event shows Codex.
    follower.handle(&HostEvent::TurnStart, Some(&off(&[ProviderId::Anthropic])));
    assert_eq!(follower.current(), Some(ProviderId::Codex));
    // Claude on again: Codex stays until the model changes.
    follower.handle(&HostEvent::TurnStart, Some(&snapshot));
    assert_eq!(follower.current(), Some(ProviderId::Codex));
    follower.handle(&claude, Some(&snapshot));
    assert_eq!(follower.current(), Some(ProviderId::Anthropic));
    // Everything off: nothing shown, and a cycle says none is enabled.
    let everything = off(&PROVIDERS);
    follower.handle(&HostEvent::CycleProvider, Some(&everything));
    assert_eq!(follower.current(), None);
    assert_eq!(
        follower.cycled(Cycled::NoneEnabled),
        Some(EngineEvent::CycleUnchanged {
            reason: Cycled::NoneEnabled,
            provider: None
        })
    );

    // Its own settings count too, and as on the owner a model whose
    // provider is off shows none: with Codex alone enabled here, a Claude
    // model shows nothing, a GPT model Codex.
    let (mut follower, _) = Follower::start();
    follower.set_enabled(&[ProviderId::Codex]);
    follower.handle(&claude, Some(&snapshot));
    assert_eq!(follower.current(), None);
    let gpt = HostEvent::ModelChanged {
        provider: None,
        model: "gpt-5-codex".to_owned(),
    };
    follower.handle(&gpt, Some(&snapshot));
    assert_eq!(follower.current(), Some(ProviderId::Codex));
    follower.handle(&claude, Some(&snapshot));
    assert_eq!(follower.current(), None);

    // An owner whose settings never enabled Claude has no entry for it in
    // its snapshot: to a follower that enables both, Claude is off (the
    // owner's first cycle gives every provider it tracks an entry), and
    // its `update_all` says so.
    let mut codex_only = snapshot.clone();
    codex_only.providers.retain(|entry| entry.id == ProviderId::Codex);
    let (mut follower, _) = Follower::start();
    follower.set_enabled(&PROVIDERS);
    follower.handle(&claude, Some(&codex_only));
    assert_eq!(follower.current(), None);
    let all = follower
        .shown(&codex_only, owner.clock.now())
        .into_iter()
        .find_map(|event| match event {
            EngineEvent::UpdateAll { providers } => Some(providers),
            _ => None,
        })
        .expect("update_all");
    let claude_entry = all
        .iter()
        .find(|entry| entry.usage.id == ProviderId::Anthropic)
        .unwrap();
    assert_eq!(claude_entry.usage.state, Freshness::Inactive);
    assert_eq!(all[0].usage.id, ProviderId::Codex, "enabled ones first");
    // Before the owner's first snapshot nothing is known to be off.
    let (mut follower, _) = Follower::start();
    follower.set_enabled(&PROVIDERS);
    follower.handle(&claude, None);
    assert_eq!(follower.current(), Some(ProviderId::Anthropic));
}

/// Shutdown is accepted in every state of the diagram: each state is
/// reached by the inputs that lead there, then `shutdown` ends it there,
/// logged as a transition from that state.
#[test]
fn shutdown_is_accepted_in_every_state() {
    use quotatrack::events::Cause;
    use quotatrack::machines::controller::{Context, Controller, Facts, FetchAnswer, Input, ProviderFacts, Trigger};

    let claude = ProviderId::Anthropic;
    let seen = |facts: ProviderFacts| Facts {
        now: at(100),
        cache_ttl: SignedDuration::from_secs(CACHE_TTL),
        min_interval: SignedDuration::from_secs(MIN_INTERVAL),
        model_provider: Some(claude),
        enabled: vec![claude],
        providers: BTreeMap::from([(claude, facts)]),
    };
    let never_read = seen(ProviderFacts {
        available: true,
        ..ProviderFacts::default()
    });
    let fresh = seen(ProviderFacts {
        available: true,
        has_windows: true,
        last_good: Some(at(90)),
        ..ProviderFacts::default()
    });
    let with_windows = seen(ProviderFacts {
        available: true,
        has_windows: true,
        failing: true,
        ..ProviderFacts::default()
    });
    let nothing = Facts::default();
    let trigger = Input::Trigger;
    let owner = [
        (Input::Start, nothing.clone()),
        (Input::Guarded { owner: true }, nothing.clone()),
        (Input::SettingsLoaded { accepted: true }, nothing.clone()),
    ];
    let fetch = [
        (trigger(Trigger::TurnStart), never_read.clone()),
        (Input::Step, never_read.clone()),
        (Input::Step, never_read.clone()),
    ];
    // Each state's inputs, after the owner's start (`owner`).
    let then = |steps: &[(Input, Facts)]| [&owner[..], steps].concat();
    let step = |facts: &Facts| (Input::Step, facts.clone());
    let session = [
        (trigger(Trigger::SessionStart), never_read.clone()),
        step(&never_read),
        step(&never_read),
        step(&never_read),
    ];
    let fetched =
        |answer: FetchAnswer, facts: &Facts| [&fetch[..], &[(Input::Fetched(answer), facts.clone())]].concat();
    let paths: Vec<(&str, Vec<(Input, Facts)>)> = vec![
        ("boot", vec![]),
        ("guard_singleton", vec![(Input::Start, nothing.clone())]),
        (
            "idle",
            vec![
                (Input::Start, nothing.clone()),
                (Input::Guarded { owner: false }, nothing.clone()),
            ],
        ),
        ("settings_loading", owner[..2].to_vec()),
        ("ready", owner.to_vec()),
        (
            "settings_patched",
            then(&[(trigger(Trigger::SettingsPatch), nothing.clone())]),
        ),
        (
            "settings_loading",
            then(&[(trigger(Trigger::SettingsPatch), nothing.clone()), step(&nothing)]),
        ),
        ("session_start", then(&session[..1])),
        ("refresh_cache_only", then(&session[..2])),
        ("refresh_status_cache_only", then(&session[..3])),
        ("emit_current", then(&session)),
        ("resolve_provider", then(&fetch[..1])),
        (
            "no_provider",
            then(&[(trigger(Trigger::TurnStart), nothing.clone()), step(&nothing)]),
        ),
        ("hydrate_from_cache", then(&fetch[..2])),
        (
            "skip_fetch",
            then(&[(trigger(Trigger::TurnStart), fresh.clone()), step(&fresh), step(&fresh)]),
        ),
        ("fetch_usage", then(&fetch)),
        ("fetch_success", then(&fetched(FetchAnswer::Usage, &never_read))),
        (
            "maybe_fetch_status",
            then(&[&fetched(FetchAnswer::Usage, &never_read)[..], &[step(&never_read)]].concat()),
        ),
        ("fetch_error", then(&fetched(FetchAnswer::Failed, &with_windows))),
        (
            "use_cached_fallback",
            then(&[&fetched(FetchAnswer::Failed, &with_windows)[..], &[step(&with_windows)]].concat()),
        ),
        (
            "cycle_requested",
            then(&[(trigger(Trigger::Cycle), never_read.clone())]),
        ),
        ("shutdown", then(&[(trigger(Trigger::Shutdown), nothing.clone())])),
    ];
    for (state, inputs) in paths {
        let mut machine = Controller::machine();
        for (input, facts) in inputs {
            machine.handle_with_context(&input, &mut Context::new(facts));
        }
        assert_eq!(machine.state().name(), state, "the inputs lead to {state}");
        let mut context = Context::new(nothing.clone());
        machine.handle_with_context(&trigger(Trigger::Shutdown), &mut context);
        assert_eq!(machine.state().name(), "shutdown", "shutdown from {state}");
        let logged: Vec<(&str, &str, Cause)> = context
            .transitions
            .iter()
            .map(|transition| (transition.from.name(), transition.to.name(), transition.cause))
            .collect();
        let expected = if state == "shutdown" {
            vec![]
        } else {
            vec![(state, "shutdown", Cause::ShutDown)]
        };
        assert_eq!(logged, expected, "shutdown from {state} is logged");
    }
}

/// `cycle_provider` is always answered: with the provider it moved to,
/// or, when the one shown stays, with why (every other provider probed
/// and none has anything to show; none enabled). The session replays with
/// no divergence.
#[test]
fn a_cycle_with_nowhere_to_go_says_so() {
    use quotatrack::machines::controller::Cycled;

    let mut sut = Sut::new();
    sut.runtime.block_on(sut.engine.start()).unwrap();
    sut.runtime.block_on(sut.engine.cycle()).unwrap();
    let claude = HostEvent::ModelChanged {
        provider: None,
        model: "claude-sonnet-4-5".to_owned(),
    };
    sut.clock.advance(SignedDuration::from_secs(30));
    sut.handle(claude);
    let current = |told: &[EngineEvent]| {
        told.iter()
            .find_map(|event| match event {
                EngineEvent::UpdateCurrent { provider, .. } => Some(*provider),
                _ => None,
            })
            .flatten()
    };
    let told = sut.handle(HostEvent::CycleProvider);
    assert_eq!(current(&told), Some(ProviderId::Codex), "{told:?}");
    let told = sut.handle(HostEvent::CycleProvider);
    assert_eq!(
        current(&told),
        Some(ProviderId::Anthropic),
        "the cycle wraps round: {told:?}"
    );

    // Codex loses its login: Claude is the only provider with anything to show.
    sut.credentials.lock().unwrap().set(ProviderId::Codex, None);
    sut.clock.advance(SignedDuration::from_secs(60));
    sut.runtime.block_on(sut.engine.cycle()).unwrap();
    let told = sut.handle(HostEvent::CycleProvider);
    assert!(
        told.contains(&EngineEvent::CycleUnchanged {
            reason: Cycled::NoneAvailable,
            provider: Some(ProviderId::Anthropic)
        }),
        "{told:?}"
    );
    assert_eq!(
        serde_json::to_value(&told[0]).unwrap(),
        json!({"type": "cycle_unchanged", "reason": "none_available", "provider": "anthropic"})
    );

    // Every provider turned off: the patch's refresh shows none (a
    // disabled provider is not kept as current), and a cycle says none is
    // enabled, without naming one.
    let told = sut.handle(HostEvent::SettingsPatch {
        patch: json!({"providers": []}),
    });
    assert!(
        told.iter()
            .any(|event| matches!(event, EngineEvent::UpdateCurrent { provider: None, .. })),
        "{told:?}"
    );
    let told = sut.handle(HostEvent::CycleProvider);
    assert!(
        told.contains(&EngineEvent::CycleUnchanged {
            reason: Cycled::NoneEnabled,
            provider: None
        }),
        "{told:?}"
    );

    let events: Vec<_> = sut.engine.log().unwrap().entries(0).map(Result::unwrap).collect();
    let report = replay::replay(&events, &replay::Options::default());
    assert!(report.identical(), "{}", report.divergence.unwrap().line());
}

/// A host may ask for the views at any time (`get_current`, `get_all`),
/// before a session starts, between events and after shutdown: each is
/// answered every time, even when nothing changed, from the store as it
/// is. Nothing is fetched and nothing is recorded.
#[test]
fn a_host_can_ask_for_the_views_at_any_time_without_a_fetch() {
    let mut sut = Sut::new();
    sut.runtime.block_on(sut.engine.start()).unwrap();
    sut.runtime.block_on(sut.engine.cycle()).unwrap();
    sut.handle(HostEvent::ModelChanged {
        provider: None,
        model: "gpt-5-codex".to_owned(),
    });
    for round in 0..3 {
        if round == 2 {
            sut.handle(HostEvent::SessionShutdown);
        }
        // Long enough for every gate to let a fetch through.
        sut.clock.advance(SignedDuration::from_secs(3600));
        let asked = sut.transport.asked.lock().unwrap().len();
        let seq = sut.engine.log().unwrap().next_seq();
        let current = sut.handle(HostEvent::GetCurrent);
        let [EngineEvent::UpdateCurrent { provider, display, .. }] = &current[..] else {
            panic!("{current:?}")
        };
        assert_eq!(*provider, Some(ProviderId::Codex));
        assert!(display.as_deref().unwrap().starts_with("Codex │ 5h"), "{display:?}");
        let all = sut.handle(HostEvent::GetAll);
        assert!(
            matches!(&all[..], [EngineEvent::UpdateAll { providers }] if providers.len() == ProviderId::ALL.len()),
            "every provider is listed: {all:?}"
        );
        assert_eq!(sut.transport.asked.lock().unwrap().len(), asked, "nothing fetched");
        assert_eq!(sut.engine.log().unwrap().next_seq(), seq, "nothing recorded");
    }
    let json = serde_json::to_value(&sut.handle(HostEvent::GetAll)[0]).unwrap();
    assert_eq!(json["type"], "update_all");
}

/// `update_all` lists every provider, as pi-sub's does: the enabled ones
/// as the store has them (`unknown` before they are read), then each one the settings turn off as
/// `inactive` with the display `<label> (off)`, whether it was read before
/// it was turned off (Codex, after a patch) or never (the rest). After the
/// patch, a cycle's `update_all` and `get_all` agree, and re-enabling
/// Codex lists it as it was read.
#[test]
fn update_all_lists_disabled_providers_as_inactive() {
    use quotatrack::wire::Freshness;

    let mut sut = Sut::new();
    sut.runtime.block_on(sut.engine.start()).unwrap();
    let listed = |told: &[EngineEvent]| -> Vec<(ProviderId, Freshness, String)> {
        let all = told
            .iter()
            .rev()
            .find_map(|event| match event {
                EngineEvent::UpdateAll { providers } => Some(providers),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no update_all in {told:?}"));
        let json = serde_json::to_value(all).unwrap();
        json.as_array()
            .unwrap()
            .iter()
            .map(|shown| {
                (
                    serde_json::from_value(shown["id"].clone()).unwrap(),
                    serde_json::from_value(shown["state"].clone()).unwrap(),
                    shown["display"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let off = |id: ProviderId| (id, Freshness::Inactive, format!("{} (off)", id.provider().label()));
    let others: Vec<_> = ProviderId::ALL
        .iter()
        .filter(|id| !PROVIDERS.contains(id))
        .map(|id| off(*id))
        .collect();

    // Nothing read yet: the enabled ones are unknown, the rest off.
    let all = listed(&sut.handle(HostEvent::GetAll));
    assert_eq!(
        all[..2],
        [
            (
                ProviderId::Anthropic,
                Freshness::Unknown,
                "Claude (no data yet)".to_owned()
            ),
            (ProviderId::Codex, Freshness::Unknown, "Codex (no data yet)".to_owned())
        ]
    );
    assert_eq!(all[2..], others[..]);

    sut.runtime.block_on(sut.engine.cycle()).unwrap();
    let all = listed(&sut.handle(HostEvent::GetAll));
    assert_eq!(all.len(), ProviderId::ALL.len(), "{all:?}");
    assert_eq!(all[..2].iter().map(|(id, ..)| *id).collect::<Vec<_>>(), PROVIDERS);
    assert!(
        all[..2].iter().all(|(_, state, _)| *state == Freshness::Fresh),
        "{all:?}"
    );
    assert_eq!(all[2..], others[..]);

    sut.handle(HostEvent::SettingsPatch {
        patch: json!({"providers": ["anthropic"]}),
    });
    sut.clock.advance(SignedDuration::from_secs(3600));
    let cycled = listed(&sut.handle(HostEvent::Refresh));
    let asked = listed(&sut.handle(HostEvent::GetAll));
    assert_eq!(cycled, asked);
    assert_eq!(asked.len(), ProviderId::ALL.len(), "{asked:?}");
    assert_eq!(asked[0].0, ProviderId::Anthropic);
    assert_eq!(asked[1], off(ProviderId::Codex), "read before, turned off now");
    assert_eq!(
        asked[2..]
            .iter()
            .filter(|(_, state, _)| *state == Freshness::Inactive)
            .count(),
        ProviderId::ALL.len() - 2
    );

    sut.handle(HostEvent::SettingsPatch {
        patch: json!({"providers": ["anthropic", "codex"]}),
    });
    let back = listed(&sut.handle(HostEvent::GetAll));
    assert_eq!(back[1].0, ProviderId::Codex);
    assert_ne!(back[1].1, Freshness::Inactive, "{back:?}");
    assert!(back[1].2.starts_with("Codex │ 5h"), "{back:?}");
}

/// `MaybeFetchStatus`: after a good usage fetch the provider's status page
/// is read when it is due (never read, or older than the status TTL), and
/// not otherwise; the decision is a logged transition, and the session
/// replays with no divergence.
#[test]
fn a_good_fetch_reads_the_status_page_when_it_is_due() {
    use quotatrack::events::Cause;
    use quotatrack::transport::Purpose;

    struct WithPage(Arc<ManualClock>, Mutex<Vec<Purpose>>);
    impl Transport for WithPage {
        fn send<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<RecordedExchange, TransportError>> {
            let now = self.0.now();
            self.1.lock().unwrap().push(request.purpose);
            let name = match request.purpose {
                Purpose::StatusPage => "status/none",
                _ => "ok-full",
            };
            let mut exchange = exchange(ProviderId::Anthropic, name);
            exchange.recorded_at = now;
            Box::pin(std::future::ready(Ok(exchange)))
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at(0)));
    let transport = Arc::new(WithPage(clock.clone(), Mutex::new(Vec::new())));
    let mut engine = Engine::builder()
        .data_dir(dir.path())
        .clock(clock.clone())
        .transport(transport.clone())
        .credentials(Arc::new(FixedCredentials::present([ProviderId::Anthropic], "test")))
        .providers(&[ProviderId::Anthropic])
        .status_pages(Some(std::time::Duration::from_secs(300)))
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(engine.start()).unwrap();
    // The timer's cycle reads usage and the page (and finds the credentials).
    runtime.block_on(engine.cycle()).unwrap();
    assert_eq!(*transport.1.lock().unwrap(), [Purpose::Usage, Purpose::StatusPage]);
    let mut seen = engine.log().unwrap().next_seq();
    // One host event after `advance` seconds: what was asked, why
    // `maybe_fetch_status` went on as it did, and whether a page was read.
    let mut step = |engine: &mut Engine, host: HostEvent, advance: i64| {
        clock.advance(SignedDuration::from_secs(advance));
        let asked = transport.1.lock().unwrap().len();
        runtime.block_on(engine.handle(host)).unwrap();
        let log = engine.log().unwrap();
        let entries: Vec<Event> = log.entries(seen).map(|e| e.unwrap().payload).collect();
        seen = log.next_seq();
        let purposes = transport.1.lock().unwrap()[asked..].to_vec();
        let cause = entries.iter().find_map(|event| match event {
            Event::Transitioned { from, cause, .. } if from == "maybe_fetch_status" => Some(*cause),
            _ => None,
        });
        let checked = entries.iter().any(|event| matches!(event, Event::StatusChecked { .. }));
        (purposes, cause, checked)
    };
    let claude = HostEvent::ModelChanged {
        provider: None,
        model: "claude-sonnet-4-5".to_owned(),
    };
    // The page is as old as its TTL: it follows the good fetch.
    assert_eq!(
        step(&mut engine, claude, 300),
        (
            vec![Purpose::Usage, Purpose::StatusPage],
            Some(Cause::StatusPageDue),
            true
        )
    );
    // A minute later the page is fresh: usage alone.
    assert_eq!(
        step(&mut engine, HostEvent::Refresh, 60),
        (vec![Purpose::Usage], Some(Cause::FetchSucceeded), false)
    );
    // Past the status TTL it is read again.
    assert_eq!(
        step(&mut engine, HostEvent::Refresh, 300),
        (
            vec![Purpose::Usage, Purpose::StatusPage],
            Some(Cause::StatusPageDue),
            true
        )
    );
    let status = engine.status();
    let page = serde_json::to_value(status.providers[0].status_page.as_ref().unwrap()).unwrap();
    assert_eq!(page["indicator"], "none", "{page}");

    let events: Vec<_> = engine.log().unwrap().entries(0).map(Result::unwrap).collect();
    let report = replay::replay(&events, &replay::Options::default());
    assert!(report.identical(), "{}", report.divergence.unwrap().line());
}
