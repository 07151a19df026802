//! The tracker against a small reference model of its rules, driven by
//! proptest-state-machine with random clock advances, credential changes,
//! polls and fetch outcomes (every recorded anthropic response, plus a
//! request that got no answer). Model and machine agree on every step: the
//! state, the failure count, whether to fetch, and the causes logged.

use jiff::Timestamp;
use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use quotatrack::events::{Cause, Event, Outcome};
use quotatrack::machines::tracker::Rules;
use quotatrack::providers::{ErrorKind, ProviderId};
use quotatrack::store::Store;
use quotatrack::trackers::{Found, Trackers};

use quotatrack::transport::load_fixtures;

use crate::support::fixtures_dir;

const P: ProviderId = ProviderId::Anthropic;

/// Every outcome a fetch can have here: the recorded anthropic responses
/// as the current parser reads them, and no answer at all.
fn outcomes() -> &'static [Outcome] {
    static OUTCOMES: std::sync::OnceLock<Vec<Outcome>> = std::sync::OnceLock::new();
    OUTCOMES.get_or_init(read_outcomes)
}

fn read_outcomes() -> Vec<Outcome> {
    let start: Timestamp = "2026-08-22T12:00:00Z".parse().unwrap();
    let mut fixtures = load_fixtures(&fixtures_dir()).unwrap();
    let mut outcomes: Vec<Outcome> = fixtures
        .remove(&P)
        .unwrap()
        .iter()
        .map(|exchange| Outcome::read(exchange, start))
        .collect();
    outcomes.push(Outcome::failed(
        P,
        quotatrack::providers::ErrorKind::Unavailable,
        "no answer within 5 s",
    ));
    outcomes
}

#[derive(Debug, Clone)]
enum Step {
    Advance(i64),
    Credentials(Option<u8>),
    Poll,
    /// A forced refresh.
    Demand,
    Complete(usize),
}

/// The model: the rules of the tracker, written out plainly.
#[derive(Debug, Clone, PartialEq)]
enum S {
    Pending,
    Ready,
    BackingOff,
    RateLimited(i64),
    AuthRequired,
    Inactive,
}

#[derive(Debug, Clone)]
struct Model {
    now: i64,
    state: S,
    fails: u32,
    last: Option<i64>,
    /// The last request, which new credentials do not forget.
    asked: Option<i64>,
    credentials: Option<u8>,
    awaiting: bool,
    /// What the last step decided: logged causes and whether to fetch.
    causes: Vec<Cause>,
    fetch: bool,
}

impl Model {
    fn delay(fails: u32) -> i64 {
        60 * i64::from(fails.saturating_add(1).min(8))
    }

    fn due(&self, fails: u32) -> bool {
        self.last.is_none_or(|last| last + Model::delay(fails) <= self.now + 1) && self.min_interval_passed()
    }

    fn min_interval_passed(&self) -> bool {
        self.asked.is_none_or(|asked| asked + 10 <= self.now)
    }

    fn start_fetch(&mut self) {
        self.fetch = true;
        self.awaiting = true;
        self.last = Some(self.now);
        self.asked = Some(self.now);
    }

    fn name(&self) -> &'static str {
        match self.state {
            S::Pending => "pending",
            S::Ready => "ready",
            S::BackingOff => "backing_off",
            S::RateLimited(_) => "rate_limited",
            S::AuthRequired => "auth_required",
            S::Inactive => "inactive",
        }
    }
}

struct Reference;

impl ReferenceStateMachine for Reference {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model {
            now: 0,
            state: S::Pending,
            fails: 0,
            last: None,
            asked: None,
            credentials: None,
            awaiting: false,
            causes: Vec::new(),
            fetch: false,
        })
        .boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Step> {
        let n_outcomes = outcomes().len();
        if state.awaiting {
            return (0..n_outcomes).prop_map(Step::Complete).boxed();
        }
        prop_oneof![
            3 => prop_oneof![(1i64..15), (1i64..600)].prop_map(Step::Advance),
            1 => prop::option::weighted(0.8, 0u8..3).prop_map(Step::Credentials),
            4 => Just(Step::Poll),
            2 => Just(Step::Demand),
        ]
        .boxed()
    }

    fn preconditions(state: &Model, step: &Step) -> bool {
        matches!(step, Step::Complete(_)) == state.awaiting
    }

    fn apply(mut model: Model, step: &Step) -> Model {
        model.causes.clear();
        model.fetch = false;
        match step {
            Step::Advance(seconds) => model.now += seconds,
            Step::Credentials(None) => {
                if model.state != S::Inactive {
                    model.state = S::Inactive;
                    model.fails = 0;
                    model.last = None;
                    model.causes.push(Cause::AuthLost);
                }
                model.credentials = None;
            }
            Step::Credentials(Some(key)) => {
                if model.credentials != Some(*key) {
                    let known = model.credentials.is_some();
                    model.credentials = Some(*key);
                    let cause = match model.state {
                        S::Inactive | S::AuthRequired => Some(Cause::AuthRestored),
                        // A rate limit was asked of the old credentials.
                        S::RateLimited(_) if known => Some(Cause::CredentialsChanged),
                        _ => None,
                    };
                    if let Some(cause) = cause {
                        model.state = S::Pending;
                        model.fails = 0;
                        model.last = None;
                        model.causes.push(cause);
                    }
                }
            }
            Step::Demand if matches!(model.state, S::Pending | S::Ready) => {
                // Forced: only the 10 s minimum interval holds a healthy provider back.
                if model.min_interval_passed() {
                    model.start_fetch();
                }
            }
            Step::Poll | Step::Demand => match model.state.clone() {
                S::Inactive => {}
                S::Pending | S::Ready => {
                    if model.due(model.fails) {
                        model.start_fetch();
                    }
                }
                S::BackingOff | S::AuthRequired => {
                    let fails = if model.state == S::AuthRequired {
                        u32::MAX
                    } else {
                        model.fails
                    };
                    if model.due(fails) {
                        model.start_fetch();
                    } else {
                        model.causes.push(Cause::ThrottleSkipped);
                    }
                }
                S::RateLimited(until) => {
                    if model.now < until || !model.min_interval_passed() {
                        model.causes.push(Cause::ThrottleSkipped);
                    } else {
                        model.start_fetch();
                        model.state = S::BackingOff;
                        model.causes.push(Cause::RateLimitExpired);
                    }
                }
            },
            Step::Complete(index) => {
                model.awaiting = false;
                match &outcomes()[*index] {
                    Outcome::Usage { .. } => {
                        model.fails = 0;
                        if model.state != S::Ready {
                            model.state = S::Ready;
                            model.causes.push(Cause::FetchSucceeded);
                        }
                    }
                    Outcome::Failed { error } => {
                        model.fails += 1;
                        let (state, cause) = match error.kind {
                            ErrorKind::Auth => (S::AuthRequired, Cause::AuthRejected),
                            ErrorKind::RateLimited => {
                                let wait = error.retry_after_s.map_or(Model::delay(model.fails), |s| s as i64);
                                (S::RateLimited(model.now + wait), Cause::RateLimited)
                            }
                            _ => (S::BackingOff, Cause::FetchFailed),
                        };
                        model.state = state;
                        model.causes.push(cause);
                    }
                }
            }
        }
        model
    }
}

struct Sut {
    trackers: Trackers,
    now: i64,
    causes: Vec<Cause>,
    fetch: bool,
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_787_400_000 + seconds).unwrap()
}

impl StateMachineTest for Sut {
    type SystemUnderTest = Sut;
    type Reference = Reference;

    fn init_test(_: &Model) -> Sut {
        Sut {
            trackers: Trackers::new(Rules::default(), &[P], &Store::default()),
            now: 0,
            causes: Vec::new(),
            fetch: false,
        }
    }

    fn apply(mut sut: Sut, model: &Model, step: Step) -> Sut {
        let now = at(sut.now);
        let events = match step {
            Step::Advance(seconds) => {
                sut.now += seconds;
                Vec::new()
            }
            Step::Credentials(key) => {
                let found = key.map(|key| Found {
                    fingerprint: format!("key-{key}"),
                    source: "test".to_owned(),
                });
                sut.trackers.credentials(P, now, found)
            }
            Step::Poll => sut.trackers.poll(P, now).0,
            Step::Demand => sut.trackers.demand(P, now).0,
            Step::Complete(index) => {
                let outcome = outcomes()[index].clone();
                sut.trackers.completed(P, now, None, outcome, 0)
            }
        };
        sut.causes = events
            .iter()
            .filter_map(|(_, _, event)| match event {
                Event::Transitioned { cause, .. } => Some(*cause),
                _ => None,
            })
            .collect();
        sut.fetch = events
            .iter()
            .any(|(_, _, event)| matches!(event, Event::FetchStarted { .. }));
        assert_eq!(sut.causes, model.causes, "causes after {step:?}");
        assert_eq!(sut.fetch, model.fetch, "fetch decision after {step:?}");
        sut
    }

    fn check_invariants(sut: &Sut, model: &Model) {
        let state = sut.trackers.state(P).unwrap();
        assert_eq!(state.name(), model.name());
        assert_eq!(sut.trackers.tracker(P).unwrap().fails(), model.fails);
        if let S::RateLimited(until) = model.state {
            assert_eq!(state.blocked_until(), Some(at(until)));
        }
        assert_eq!(
            sut.trackers.tracker(P).unwrap().last_attempt(),
            model.last.map(at),
            "backoff base"
        );
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]
    #[test]
    fn tracker_agrees_with_the_reference_model(sequential 1..120 => Sut);
}
