//! The tracker: one machine per provider deciding when to fetch and what a
//! fetch's result means for the next one. It is the poll cycle of the
//! source tracker (`reference/platform-tracker.md` §1.2) as typed states:
//!
//! - a provider is due when `last_attempt + interval × min(1 + fails, 8)`
//!   is not after now; a poll before that is a `throttle_skipped` decision
//!   (logged while backing off, silent when healthy and simply early);
//! - no credentials: `inactive` (`auth_lost`); the store clears windows;
//! - credentials back: `pending` (`auth_restored`), fetched at the next poll;
//! - whatever happens, no two requests closer than the minimum interval
//!   (`min_interval_s`, 10 s): not after new credentials, not when a short
//!   rate limit ends, not on a forced refresh;
//! - a fetch with usage: `ready`, fails reset to 0 (`fetch_succeeded`);
//! - a failed fetch: fails + 1, `backing_off` (`fetch_failed`); the last
//!   good windows stay in the store;
//!
//! and, beyond the source:
//!
//! - a rate limit with a `Retry-After` or in-body reset: `rate_limited`
//!   until then, with no request before it (`rate_limited`, then
//!   `rate_limit_expired`); without a hint the wait is the backoff delay;
//! - new credentials lift a rate limit (`credentials_changed`): the wait
//!   was asked of the old ones;
//! - rejected credentials (401/403): `auth_required` (`auth_rejected`),
//!   probed only at the longest backoff, and at once when the credentials
//!   change.
//!
//! The machine does no I/O and reads no clock: time arrives in its inputs.
//! What it decides goes into the [`Decisions`] passed as statig's context:
//! the transitions (appended in one place, the `after_transition` hook, with
//! the cause the handler named) and whether to fetch now. The driver turns
//! them into events.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use statig::prelude::*;

use crate::events::Cause;
use crate::providers::{ErrorKind, MAX_RETRY_AFTER_S};

/// The rules the tracker applies: the interval, the backoff cap and how
/// early a poll may come and still count as due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// The update interval (`refresh_interval_s`, default 60 s).
    pub interval: SignedDuration,
    /// The largest backoff multiplier (8, as in the source).
    pub max_backoff: u32,
    /// A poll this much before the due time still counts as due, so that a
    /// timer firing a hair early does not cost a whole interval.
    pub slack: SignedDuration,
    /// Never two requests closer than this, whatever asks (`min_interval_s`,
    /// default 10 s); a demanded refresh of a healthy provider waits only this.
    pub min_interval: SignedDuration,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            interval: SignedDuration::from_secs(60),
            max_backoff: 8,
            slack: SignedDuration::from_secs(1),
            min_interval: SignedDuration::from_secs(10),
        }
    }
}

impl Rules {
    /// Rules come from checked settings ([`crate::settings::Settings::rules`]),
    /// whose bounds keep `interval × max_backoff` far inside time arithmetic.
    /// The wait after an attempt with `fails` failures behind it.
    pub fn delay(&self, fails: u32) -> SignedDuration {
        let multiplier = fails.saturating_add(1).min(self.max_backoff.max(1));
        self.interval
            .saturating_mul(i32::try_from(multiplier).unwrap_or(i32::MAX))
    }
}

/// An input to the tracker.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The credentials now: their fingerprint, or `None` when gone.
    Credentials(Option<String>),
    /// An update cycle at `now`: fetch if due.
    Poll {
        /// The clock reading of the cycle.
        now: Timestamp,
    },
    /// A forced refresh at `now` (a host's explicit refresh, a model
    /// change): a healthy provider is fetched once the minimum interval has
    /// passed; a failing, rate-limited or rejected one is treated as a poll,
    /// so forcing never bypasses backoff or a rate limit.
    Demand {
        /// The clock reading.
        now: Timestamp,
    },
    /// The fetch asked for came back.
    Completed {
        /// The clock reading when it was taken in.
        now: Timestamp,
        /// What it came to.
        result: Fetched,
    },
}

/// What a fetch came to, as far as the tracker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched {
    /// Usage was read.
    Usage,
    /// It failed with this kind, and the wait the provider asked for.
    Failed {
        /// The error kind.
        kind: ErrorKind,
        /// Seconds to wait, when the provider said.
        retry_after_s: Option<u64>,
    },
}

/// A transition, as the hook saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The state left.
    pub from: State,
    /// The state entered (equal to `from` for a logged skip).
    pub to: State,
    /// Why.
    pub cause: Cause,
}

/// What one input made the tracker decide.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decisions {
    /// Transitions in order.
    pub transitions: Vec<Transition>,
    /// Fetch now.
    pub fetch: bool,
}

/// The tracker's storage: the rules and the bookkeeping the backoff needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracker {
    rules: Rules,
    /// Consecutive failed fetches.
    fails: u32,
    /// When the last fetch was started; the base of the backoff (new
    /// credentials clear it).
    last_attempt: Option<Timestamp>,
    /// When the last request went out, whatever happened since: the
    /// minimum interval counts from it.
    last_request: Option<Timestamp>,
    /// The fingerprint of the credentials in use.
    credentials: Option<String>,
    /// The cause the handler names for the transition it returns; the
    /// hook reads it.
    cause: Cause,
}

/// The tracker machine.
pub type Machine = statig::blocking::InitializedStateMachine<Tracker>;

#[state_machine(
    initial = "State::pending()",
    state(derive(Debug, Clone, PartialEq, Serialize, Deserialize)),
    superstate(derive(Debug)),
    event_identifier = "input",
    after_transition = "Self::on_transition"
)]
impl Tracker {
    /// Credentials present, no fetch result yet: fetched at the next poll.
    ///
    /// - `Poll` => fetch (when due)
    /// - `Demand` => fetch once the minimum interval has passed
    /// - `Completed` => `Ready` | `BackingOff` | `RateLimited` | `AuthRequired`
    /// - otherwise as `tracked`
    #[state(superstate = "tracked")]
    fn pending(&mut self, context: &mut Decisions, input: &Input) -> Outcome<State> {
        match input {
            Input::Poll { now } => self.poll_when_due(context, *now, self.fails),
            Input::Demand { now } => self.demand(context, *now),
            _ => Super,
        }
    }

    /// The last fetch read usage.
    ///
    /// - `Poll` => fetch when due; an early poll is ignored
    /// - `Demand` => fetch once the minimum interval has passed
    /// - `Completed` with usage => stays (nothing logged)
    /// - `Completed` failed => `BackingOff` | `RateLimited` | `AuthRequired`
    /// - otherwise as `tracked`
    #[state(superstate = "tracked")]
    fn ready(&mut self, context: &mut Decisions, input: &Input) -> Outcome<State> {
        match input {
            Input::Poll { now } => self.poll_when_due(context, *now, self.fails),
            Input::Demand { now } => self.demand(context, *now),
            Input::Completed { now, result } => match self.after_fetch(*now, *result) {
                target if target == State::ready() => Handled,
                target => Transition(target),
            },
            _ => Super,
        }
    }

    /// The last fetch failed; the next waits `interval × min(1 + fails, 8)`.
    ///
    /// - `Poll` or `Demand` before due => `BackingOff` (`throttle_skipped`)
    /// - `Poll` or `Demand` when due => fetch
    /// - otherwise as `tracked`
    #[state(superstate = "tracked")]
    fn backing_off(&mut self, context: &mut Decisions, input: &Input) -> Outcome<State> {
        match input {
            Input::Poll { now } | Input::Demand { now } => {
                self.poll_or_skip(context, *now, self.fails, State::backing_off())
            }
            _ => Super,
        }
    }

    /// The provider asked us to wait until `until`; nothing is sent before,
    /// unless the credentials change: the block belonged to the old ones.
    ///
    /// - `Credentials` changed => `Pending` (`credentials_changed`), fetched
    ///   at the next poll once the minimum interval has passed
    /// - `Poll` or `Demand` before `until`, or within the minimum interval
    ///   of the last request => `RateLimited` (`throttle_skipped`)
    /// - `Poll` or `Demand` at or after `until` => `BackingOff` (`rate_limit_expired`) and fetch
    /// - otherwise as `tracked`
    #[state(superstate = "tracked")]
    fn rate_limited(&mut self, context: &mut Decisions, until: &mut Timestamp, input: &Input) -> Outcome<State> {
        match input {
            Input::Credentials(Some(fingerprint))
                if self.credentials.as_ref().is_some_and(|known| known != fingerprint) =>
            {
                self.credentials = Some(fingerprint.clone());
                self.restart();
                self.go(Cause::CredentialsChanged, State::pending())
            }
            Input::Poll { now } | Input::Demand { now } if *now < self.block_end(*until) => {
                self.go(Cause::ThrottleSkipped, State::rate_limited(*until))
            }
            // A wait shorter than the minimum interval ends with it.
            Input::Poll { now } | Input::Demand { now } if !self.min_interval_passed(*now) => {
                self.go(Cause::ThrottleSkipped, State::rate_limited(*until))
            }
            Input::Poll { now } | Input::Demand { now } => {
                self.start_fetch(context, *now);
                self.go(Cause::RateLimitExpired, State::backing_off())
            }
            _ => Super,
        }
    }

    /// The provider rejected the credentials. It is probed again only at
    /// the longest backoff, so an expired token costs one request per
    /// `8 × interval`, and at once when the credentials change.
    ///
    /// - `Credentials` changed => `Pending` (`auth_restored`)
    /// - `Poll` or `Demand` before due => `AuthRequired` (`throttle_skipped`)
    /// - `Poll` or `Demand` when due => fetch
    /// - otherwise as `tracked`
    #[state(superstate = "tracked")]
    fn auth_required(&mut self, context: &mut Decisions, input: &Input) -> Outcome<State> {
        match input {
            Input::Credentials(Some(fingerprint)) if self.credentials.as_ref() != Some(fingerprint) => {
                self.credentials = Some(fingerprint.clone());
                self.restart();
                self.go(Cause::AuthRestored, State::pending())
            }
            Input::Poll { now } | Input::Demand { now } => {
                self.poll_or_skip(context, *now, u32::MAX, State::auth_required())
            }
            _ => Super,
        }
    }

    /// Every state that has credentials.
    ///
    /// - `Credentials(None)` => `Inactive` (`auth_lost`)
    /// - `Credentials(Some)` => stays, fingerprint noted (a rotated token)
    /// - `Completed` => `Ready` | `BackingOff` | `RateLimited` | `AuthRequired`
    #[superstate]
    fn tracked(&mut self, input: &Input) -> Outcome<State> {
        match input {
            Input::Credentials(None) => {
                self.credentials = None;
                self.restart();
                self.go(Cause::AuthLost, State::inactive())
            }
            Input::Credentials(Some(fingerprint)) => {
                self.credentials = Some(fingerprint.clone());
                Handled
            }
            Input::Completed { now, result } => Transition(self.after_fetch(*now, *result)),
            Input::Poll { .. } | Input::Demand { .. } => Handled,
        }
    }

    /// No credentials: nothing is fetched, the store shows no windows.
    ///
    /// - `Credentials(Some)` => `Pending` (`auth_restored`)
    /// - anything else is ignored
    #[state]
    fn inactive(&mut self, input: &Input) -> Outcome<State> {
        match input {
            Input::Credentials(Some(fingerprint)) => {
                self.credentials = Some(fingerprint.clone());
                self.restart();
                self.go(Cause::AuthRestored, State::pending())
            }
            _ => Handled,
        }
    }
}

impl Tracker {
    /// A tracker under `rules` with no history.
    pub fn new(rules: Rules) -> Tracker {
        Tracker {
            rules,
            fails: 0,
            last_attempt: None,
            last_request: None,
            credentials: None,
            cause: Cause::Started,
        }
    }

    /// A running machine in `state` with the given bookkeeping: how the
    /// engine resumes a tracker from the store after a restart. No hook
    /// fires and nothing is decided.
    pub fn resume(
        rules: Rules,
        state: State,
        fails: u32,
        last_attempt: Option<Timestamp>,
        credentials: Option<String>,
    ) -> Machine {
        // A pending tracker with no failures has just met new credentials
        // (or none yet): as the live one, it has no backoff base, and only
        // the minimum interval since the last request holds it back.
        let fresh = state == State::pending() && fails == 0;
        let tracker = Tracker {
            fails,
            last_attempt: if fresh { None } else { last_attempt },
            last_request: last_attempt,
            credentials,
            ..Tracker::new(rules)
        };
        tracker.running_in(state)
    }

    /// `machine` as it is, under new `rules`.
    pub fn reruled(machine: &Machine, rules: Rules) -> Machine {
        let tracker = Tracker {
            rules,
            ..machine.inner().clone()
        };
        tracker.running_in(machine.state().clone())
    }

    fn running_in(self, state: State) -> Machine {
        let mut machine = self.uninitialized_state_machine();
        *machine.state_mut() = state;
        machine.init_with_context(&mut Decisions::default())
    }

    /// Consecutive failed fetches.
    pub fn fails(&self) -> u32 {
        self.fails
    }

    /// When the last fetch started.
    pub fn last_attempt(&self) -> Option<Timestamp> {
        self.last_attempt
    }

    /// The fingerprint of the credentials in use.
    pub fn credentials(&self) -> Option<&str> {
        self.credentials.as_deref()
    }

    /// The rules in force.
    pub fn rules(&self) -> Rules {
        self.rules
    }

    fn on_transition(&mut self, from: &State, to: &State, decisions: &mut Decisions) {
        decisions.transitions.push(Transition {
            from: from.clone(),
            to: to.clone(),
            cause: self.cause,
        });
    }

    /// Names the cause of the transition being returned.
    fn go(&mut self, cause: Cause, target: State) -> Outcome<State> {
        self.cause = cause;
        Transition(target)
    }

    /// Forgets the backoff: new or returning credentials start afresh (the
    /// minimum interval still counts from the last request).
    fn restart(&mut self) {
        self.fails = 0;
        self.last_attempt = None;
    }

    fn due(&self, now: Timestamp, fails: u32) -> bool {
        let backoff_over = self
            .last_attempt
            .is_none_or(|last| at_or_before(last, self.rules.delay(fails), now, self.rules.slack));
        backoff_over && self.min_interval_passed(now)
    }

    /// The end of a rate limit: `until`, but never more than
    /// [`MAX_RETRY_AFTER_S`] after the request that met it (a block read
    /// from an older log may be longer).
    fn block_end(&self, until: Timestamp) -> Timestamp {
        let longest = SignedDuration::from_secs(MAX_RETRY_AFTER_S as i64);
        self.last_request
            .and_then(|last| last.checked_add(longest).ok())
            .map_or(until, |latest| until.min(latest))
    }

    fn min_interval_passed(&self, now: Timestamp) -> bool {
        self.last_request
            .is_none_or(|last| at_or_before(last, self.rules.min_interval, now, SignedDuration::ZERO))
    }

    /// A demanded fetch of a healthy provider: once the minimum interval
    /// has passed; an early demand is ignored silently.
    fn demand(&mut self, decisions: &mut Decisions, now: Timestamp) -> Outcome<State> {
        if self.min_interval_passed(now) {
            self.start_fetch(decisions, now);
        }
        Handled
    }

    fn start_fetch(&mut self, decisions: &mut Decisions, now: Timestamp) {
        self.last_attempt = Some(now);
        self.last_request = Some(now);
        decisions.fetch = true;
    }

    /// Fetches when due; an early poll is ignored silently.
    fn poll_when_due(&mut self, decisions: &mut Decisions, now: Timestamp, fails: u32) -> Outcome<State> {
        if self.due(now, fails) {
            self.start_fetch(decisions, now);
        }
        Handled
    }

    /// Fetches when due; otherwise a logged skip (a self-transition).
    fn poll_or_skip(&mut self, decisions: &mut Decisions, now: Timestamp, fails: u32, here: State) -> Outcome<State> {
        if self.due(now, fails) {
            self.start_fetch(decisions, now);
            Handled
        } else {
            self.go(Cause::ThrottleSkipped, here)
        }
    }

    /// The state a fetch result leads to, with its cause noted.
    fn after_fetch(&mut self, now: Timestamp, result: Fetched) -> State {
        match result {
            Fetched::Usage => {
                self.fails = 0;
                self.cause = Cause::FetchSucceeded;
                State::ready()
            }
            Fetched::Failed { kind, retry_after_s } => {
                self.fails = self.fails.saturating_add(1);
                match kind {
                    ErrorKind::Auth => {
                        self.cause = Cause::AuthRejected;
                        State::auth_required()
                    }
                    ErrorKind::RateLimited => {
                        let wait = match retry_after_s {
                            Some(seconds) => SignedDuration::from_secs(seconds.min(MAX_RETRY_AFTER_S) as i64),
                            None => self.rules.delay(self.fails),
                        };
                        self.cause = Cause::RateLimited;
                        State::rate_limited(now.saturating_add(wait).unwrap_or(now))
                    }
                    ErrorKind::Unavailable | ErrorKind::ApiError | ErrorKind::Malformed | ErrorKind::Redirected => {
                        self.cause = Cause::FetchFailed;
                        State::backing_off()
                    }
                }
            }
        }
    }
}

impl State {
    /// The state of a tracker with no history.
    pub fn initial() -> State {
        State::pending()
    }

    /// The state's name in events and the store.
    pub fn name(&self) -> &'static str {
        match self {
            State::Pending {} => "pending",
            State::Ready {} => "ready",
            State::BackingOff {} => "backing_off",
            State::RateLimited { .. } => "rate_limited",
            State::AuthRequired {} => "auth_required",
            State::Inactive {} => "inactive",
        }
    }

    /// The state named `name`, for resuming from the store; a rate limit
    /// needs its end, which the store keeps as `blocked_until`.
    pub fn from_name(name: &str, blocked_until: Option<Timestamp>) -> Option<State> {
        Some(match name {
            "pending" => State::pending(),
            "ready" => State::ready(),
            "backing_off" => State::backing_off(),
            "rate_limited" => State::rate_limited(blocked_until?),
            "auth_required" => State::auth_required(),
            "inactive" => State::inactive(),
            _ => return None,
        })
    }

    /// Whether the provider is tracked (has credentials).
    pub fn is_active(&self) -> bool {
        !matches!(self, State::Inactive {})
    }

    /// The end of a rate limit.
    pub fn blocked_until(&self) -> Option<Timestamp> {
        match self {
            State::RateLimited { until } => Some(*until),
            _ => None,
        }
    }
}

/// Whether `last + wait <= now + slack`, in checked arithmetic: times read
/// from a log may sit at the ends of the representable range, where a sum
/// that leaves it counts as never reached.
fn at_or_before(last: Timestamp, wait: SignedDuration, now: Timestamp, slack: SignedDuration) -> bool {
    match (last.checked_add(wait), now.checked_add(slack)) {
        (Ok(due), Ok(reached)) => due <= reached,
        (Err(_), _) => false,
        (Ok(_), Err(_)) => true,
    }
}
