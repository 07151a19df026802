//! The controller: one machine per engine deciding which provider the host
//! shows and when the host's events lead to a fetch. It is the usage
//! controller of `reference/pi-sub.md` §2 as typed states:
//!
//! ```text
//! boot → guard_singleton ─already active→ idle
//!                        └first instance→ settings_loading → ready
//! ready ─session start→ session_start → refresh_cache_only → refresh_status_cache_only → emit_current → ready
//! ready ─turn, tool, interval, refresh, model→ refreshing {
//!     resolve_provider → no_provider | hydrate_from_cache
//!     hydrate_from_cache → skip_fetch | fetch_usage
//!     fetch_usage → fetch_success → maybe_fetch_status (status page when due) | fetch_error → use_cached_fallback
//! } → emit_current → ready
//! ready ─cycle→ cycle_requested (one cycle_probed per provider tried) → emit_current
//! ready ─settings patch→ settings_patched → settings_loading (the state a start loads in)
//!     → refreshing (not forced, under the new settings) → emit_current → ready
//!     | (patch refused) → emit_current → ready
//! every state (superstate alive) ─shutdown→ shutdown
//! ```
//!
//! The gates (`hydrate_from_cache`): a value younger than the cache TTL is
//! served without a fetch unless the refresh is forced; a provider blocked
//! by a rate limit, or asked less than the minimum interval ago, is never
//! fetched, forced or not (forced refreshes on every turn were what caused
//! the 429 storms users reported). The tracker applies the same rules again
//! when the fetch is asked for, so the two cannot disagree into a request.
//!
//! Like the tracker, the controller does no I/O and reads no clock. Each
//! input comes with [`Facts`] (the store, settings and clock as the engine
//! sees them now); decisions go into the [`Context`]: transitions (appended in
//! the `after_transition` hook, with their cause and provider) and effects
//! for the engine to perform. An effect with an answer (a fetch, the
//! singleton guard, loading settings) is answered with the next input; a
//! state that needs no answer is continued with [`Input::Step`].

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use statig::prelude::*;

use crate::events::Cause;
use crate::providers::ProviderId;

/// What the host or the engine tells the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The engine started.
    Start,
    /// The singleton guard's answer: this engine owns the data dir, or not.
    Guarded {
        /// Whether it owns it.
        owner: bool,
    },
    /// Settings were loaded or a patch was tried.
    SettingsLoaded {
        /// Whether the patch was accepted (a file always is, or the engine
        /// does not start).
        accepted: bool,
    },
    /// A host event or request.
    Trigger(Trigger),
    /// The fetch asked for came back.
    Fetched(FetchAnswer),
    /// Continue through a state that needs no answer.
    Step,
}

/// What set a refresh or another action going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A host session began: show what is cached, fetch nothing.
    SessionStart,
    /// A user turn began.
    TurnStart,
    /// A tool call returned.
    ToolResult,
    /// A turn ended.
    TurnEnd,
    /// The refresh interval elapsed.
    Interval,
    /// An explicit refresh (forced).
    Refresh,
    /// The host switched models (forced refresh of the model's provider).
    ModelChanged,
    /// Move to the next provider.
    Cycle,
    /// A settings patch arrived.
    SettingsPatch,
    /// The host session is ending.
    Shutdown,
}

/// What a fetch came to, as far as the controller cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchAnswer {
    /// Usage was read.
    Usage,
    /// It failed.
    Failed,
    /// The tracker did not send it (backoff).
    NotDue,
}

/// The engine's view of one provider when an input is handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProviderFacts {
    /// Credentials found.
    pub available: bool,
    /// The store has windows for it.
    pub has_windows: bool,
    /// Its status page is due: status pages are on for it, it has one,
    /// and the last reading is older than the status TTL.
    pub status_due: bool,
    /// The last fetch failed with a real error (not a missing login).
    pub failing: bool,
    /// When it last read usage.
    pub last_good: Option<Timestamp>,
    /// When it was last asked.
    pub last_attempt: Option<Timestamp>,
    /// No request before this.
    pub blocked_until: Option<Timestamp>,
}

/// The providers a cycle tries, in order: the enabled ones after
/// `current`, wrapping around (from the first when there is no current).
/// Shared by the controller's probing and a follower's cycling.
pub fn cycle_order(enabled: &[ProviderId], current: Option<ProviderId>) -> impl Iterator<Item = ProviderId> + '_ {
    let start = current
        .and_then(|current| enabled.iter().position(|id| *id == current))
        .map_or(0, |index| index + 1);
    (0..enabled.len()).map(move |tried| enabled[(start + tried) % enabled.len()])
}

/// Whether a cycle may move to a provider: it has credentials and
/// something to show (windows, or an error worth showing).
pub fn worth_showing(seen: &ProviderFacts) -> bool {
    seen.available && (seen.has_windows || seen.failing)
}

/// What the controller may consult: the clock reading, the gates, the
/// provider the host's model points at, and the providers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The clock reading.
    pub now: Timestamp,
    /// A value younger than this is served without a fetch.
    pub cache_ttl: SignedDuration,
    /// Never two requests to one provider closer than this.
    pub min_interval: SignedDuration,
    /// The provider of the host's current model, if it has one.
    pub model_provider: Option<ProviderId>,
    /// The enabled providers, in cycling order.
    pub enabled: Vec<ProviderId>,
    /// Each provider's facts.
    pub providers: BTreeMap<ProviderId, ProviderFacts>,
}

impl Facts {
    fn of(&self, provider: ProviderId) -> ProviderFacts {
        self.providers.get(&provider).copied().unwrap_or_default()
    }

    /// Enabled and with credentials.
    fn usable(&self, provider: ProviderId) -> bool {
        self.enabled.contains(&provider) && self.of(provider).available
    }
}

/// Something for the engine to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Take the data dir's lock; answer with [`Input::Guarded`].
    Guard,
    /// Load the settings or apply the pending patch; answer with
    /// [`Input::SettingsLoaded`].
    LoadSettings,
    /// Tell the host it is ready (with the settings).
    EmitReady,
    /// Tell the host another engine owns the data dir.
    EmitAlreadyActive,
    /// Tell the host the settings changed.
    EmitSettingsUpdated,
    /// Tell the host the patch was refused (the settings stay).
    EmitSettingsRejected,
    /// Show this provider (`None`: nothing usable).
    Select(Option<ProviderId>),
    /// Fetch usage; answer with [`Input::Fetched`].
    FetchUsage {
        /// The provider.
        provider: ProviderId,
        /// A forced refresh.
        force: bool,
    },
    /// Read the provider's status page (through the one update cycle,
    /// nothing else asked); no answer.
    FetchStatus(ProviderId),
    /// Send the current provider's view and every provider's view.
    EmitCurrent,
    /// Tell the host what its `cycle_provider` came to (it is always
    /// answered, even when the provider shown stays).
    EmitCycled(Cycled),
    /// A follower asks the owner to refresh.
    Forward(Trigger),
}

/// What a cycle came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cycled {
    /// It moved to this provider.
    Selected(ProviderId),
    /// No provider is enabled: there is nothing to move to.
    NoneEnabled,
    /// Every enabled provider was probed and none other than the one
    /// shown has something to show: it stays.
    NoneAvailable,
}

/// A transition, as the hook saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
    /// Why.
    pub cause: Cause,
    /// The provider it concerns.
    pub provider: Option<ProviderId>,
}

/// The context of one input: the facts in, the decisions out.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// What the controller may consult.
    pub facts: Facts,
    /// Transitions in order.
    pub transitions: Vec<Transition>,
    /// Effects in order.
    pub effects: Vec<Effect>,
}

impl Context {
    /// A context with `facts` and no decisions yet.
    pub fn new(facts: Facts) -> Context {
        Context {
            facts,
            ..Context::default()
        }
    }
}

/// The controller's storage.
#[derive(Debug, Clone, PartialEq)]
pub struct Controller {
    /// The provider shown.
    current: Option<ProviderId>,
    /// `current` was chosen by cycling: it stays until the model changes.
    cycled: bool,
    /// The refresh under way is forced.
    force: bool,
    /// Settings were loaded once (the next load is a patch).
    loaded: bool,
    /// Providers still to probe in the cycle under way.
    probes_left: usize,
    /// The cause and provider of the transition being returned.
    cause: Cause,
    about: Option<ProviderId>,
}

/// The controller machine.
pub type Machine = statig::blocking::InitializedStateMachine<Controller>;

#[state_machine(
    initial = "State::boot()",
    state(derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)),
    superstate(derive(Debug)),
    event_identifier = "input",
    after_transition = "Self::on_transition"
)]
impl Controller {
    /// Not started.
    ///
    /// - `Start` => `GuardSingleton` (`started`), asks for the guard
    #[state(superstate = "alive")]
    fn boot(&mut self, context: &mut Context, input: &Input) -> Outcome<State> {
        match input {
            Input::Start => {
                context.effects.push(Effect::Guard);
                self.go(Cause::Started, None, State::guard_singleton())
            }
            _ => Super,
        }
    }

    /// Waiting for the data dir's lock.
    ///
    /// - `Guarded { owner: true }` => `SettingsLoading` (`started`)
    /// - `Guarded { owner: false }` => `Idle` (`already_active`)
    #[state(superstate = "alive")]
    fn guard_singleton(&mut self, context: &mut Context, input: &Input) -> Outcome<State> {
        match input {
            Input::Guarded { owner: true } => {
                context.effects.push(Effect::LoadSettings);
                self.go(Cause::Started, None, State::settings_loading())
            }
            Input::Guarded { owner: false } => {
                context.effects.push(Effect::EmitAlreadyActive);
                self.go(Cause::AlreadyActive, None, State::idle())
            }
            _ => Super,
        }
    }

    /// Another engine owns the data dir: this one serves reads from its
    /// snapshot and passes refreshes on (a cycle is a display choice, made
    /// over the snapshot). When the owner goes away, the process starts an
    /// owner engine, whose controller begins at `boot`.
    ///
    /// - `Trigger(Shutdown)` => `Shutdown` (`shut_down`), from `alive`
    /// - `Trigger(Refresh | ModelChanged)` => forwarded, then the snapshot is shown
    /// - other triggers => the snapshot is shown
    #[state(superstate = "alive")]
    fn idle(&mut self, context: &mut Context, input: &Input) -> Outcome<State> {
        match input {
            Input::Trigger(Trigger::Shutdown) => Super,
            Input::Trigger(trigger) => {
                if matches!(trigger, Trigger::Refresh | Trigger::ModelChanged) {
                    context.effects.push(Effect::Forward(*trigger));
                }
                context.effects.push(Effect::EmitCurrent);
                Handled
            }
            _ => Super,
        }
    }

    /// Settings are being loaded or a patch applied.
    ///
    /// - `SettingsLoaded` => `Ready` (`settings_loaded`) the first time,
    ///   saying ready
    /// - `SettingsLoaded { accepted: true }` => `ResolveProvider`
    ///   (`settings_loaded`) after a patch, saying the settings changed: a
    ///   refresh (not forced) under the new settings, ending in
    ///   `EmitCurrent` as every refresh does
    /// - `SettingsLoaded { accepted: false }` => `EmitCurrent`
    ///   (`settings_loaded`) after a patch, saying it was refused
    #[state(superstate = "alive")]
    fn settings_loading(&mut self, context: &mut Context, input: &Input) -> Outcome<State> {
        match input {
            Input::SettingsLoaded { accepted } => {
                let first = !self.loaded;
                self.loaded = true;
                match (first, accepted) {
                    (true, _) => {
                        context.effects.push(Effect::EmitReady);
                        self.go(Cause::SettingsLoaded, None, State::ready())
                    }
                    (false, true) => {
                        context.effects.push(Effect::EmitSettingsUpdated);
                        self.force = false;
                        self.go(Cause::SettingsLoaded, None, State::resolve_provider())
                    }
                    (false, false) => {
                        context.effects.push(Effect::EmitSettingsRejected);
                        let about = self.current;
                        self.go(Cause::SettingsLoaded, about, State::emit_current())
                    }
                }
            }
            _ => Super,
        }
    }

    /// Waiting for the host.
    ///
    /// - `SessionStart` => `SessionStart` (`session_started`)
    /// - `TurnStart | ToolResult | TurnEnd | Interval` => `ResolveProvider` (`refresh_requested`)
    /// - `Refresh | ModelChanged` => `ResolveProvider` (`refresh_requested`), forced
    /// - `Cycle` => `CycleRequested` (`cycle_requested`)
    /// - `SettingsPatch` => `SettingsPatched` (`settings_patched`)
    /// - `Shutdown` => `Shutdown` (`shut_down`), from `alive`
    #[state(superstate = "alive")]
    fn ready(&mut self, context: &mut Context, input: &Input) -> Outcome<State> {
        let Input::Trigger(trigger) = input else {
            return Super;
        };
        match trigger {
            Trigger::SessionStart => self.go(Cause::SessionStarted, None, State::session_start()),
            Trigger::TurnStart | Trigger::ToolResult | Trigger::TurnEnd | Trigger::Interval => {
                self.force = false;
                self.go(Cause::RefreshRequested, None, State::resolve_provider())
            }
            Trigger::Refresh | Trigger::ModelChanged => {
                if *trigger == Trigger::ModelChanged {
                    self.cycled = false;
                }
                self.force = true;
                self.go(Cause::RefreshRequested, None, State::resolve_provider())
            }
            Trigger::Cycle => {
                self.probes_left = context.facts.enabled.len();
                self.go(Cause::CycleRequested, None, State::cycle_requested())
            }
            Trigger::SettingsPatch => self.go(Cause::SettingsPatched, None, State::settings_patched()),
            Trigger::Shutdown => Super,
        }
    }

    /// A host patched the settings: they are loaded again through the
    /// state a start loads them in.
    ///
    /// - `Step` => `SettingsLoading` (`settings_patched`), asking for the load
    #[state(superstate = "alive")]
    fn settings_patched(&mut self, context: &mut Context, input: &Input) -> Outcome<State> {
        match input {
            Input::Step => {
                context.effects.push(Effect::LoadSettings);
                self.go(Cause::SettingsPatched, None, State::settings_loading())
            }
            _ => Super,
        }
    }

    /// A session began: the provider is resolved; what follows is
    /// served from what is cached, nothing is fetched.
    ///
    /// - `Step` => `RefreshCacheOnly` (`session_started`)
    #[state(superstate = "alive")]
    fn session_start(&mut self, context: &mut Context, input: &Input) -> Outcome<State> {
        match input {
            Input::Step => {
                self.resolve(context);
                let about = self.current;
                self.go(Cause::SessionStarted, about, State::refresh_cache_only())
            }
            _ => Super,
        }
    }

    /// The session's usage refresh, from the cache only (any age).
    ///
    /// - `Step` => `RefreshStatusCacheOnly` (`cache_hit`)
    #[state(superstate = "alive")]
    fn refresh_cache_only(&mut self, input: &Input) -> Outcome<State> {
        match input {
            Input::Step => {
                let about = self.current;
                self.go(Cause::CacheHit, about, State::refresh_status_cache_only())
            }
            _ => Super,
        }
    }

    /// The session's status page refresh, from the cache only.
    ///
    /// - `Step` => `EmitCurrent` (`cache_hit`)
    #[state(superstate = "alive")]
    fn refresh_status_cache_only(&mut self, input: &Input) -> Outcome<State> {
        match input {
            Input::Step => {
                let about = self.current;
                self.go(Cause::CacheHit, about, State::emit_current())
            }
            _ => Super,
        }
    }

    /// Which provider to show: the cycled one while it stays usable, else
    /// the host model's.
    ///
    /// - `Step` => `HydrateFromCache` | `NoProvider` (`no_provider`)
    #[state(superstate = "refreshing")]
    fn resolve_provider(&mut self, context: &mut Context, input: &Input) -> Outcome<State> {
        match input {
            Input::Step => match self.resolve(context) {
                Some(provider) => self.go(Cause::RefreshRequested, Some(provider), State::hydrate_from_cache()),
                None => self.go(Cause::NoProvider, None, State::no_provider()),
            },
            _ => Super,
        }
    }

    /// Nothing usable to show.
    ///
    /// - `Step` => `EmitCurrent` (`no_provider`)
    #[state(superstate = "refreshing")]
    fn no_provider(&mut self, input: &Input) -> Outcome<State> {
        match input {
            Input::Step => self.go(Cause::NoProvider, None, State::emit_current()),
            _ => Super,
        }
    }

    /// The gates: fresh enough, rate-limited, asked too recently, or fetch.
    ///
    /// - `Step` => `SkipFetch` (`cache_hit` | `rate_limited` | `throttle_skipped`)
    /// - `Step` => `FetchUsage` (`refresh_requested`), asking for the fetch
    #[state(superstate = "refreshing")]
    fn hydrate_from_cache(&mut self, context: &mut Context, input: &Input) -> Outcome<State> {
        let (Input::Step, Some(provider)) = (input, self.current) else {
            return Super;
        };
        let facts = &context.facts;
        let now = facts.now;
        let seen = facts.of(provider);
        let fresh = seen
            .last_good
            .is_some_and(|good| now.duration_since(good) < facts.cache_ttl && !seen.failing);
        let skip = if fresh && !self.force {
            Some(Cause::CacheHit)
        } else if seen.blocked_until.is_some_and(|until| until > now) {
            Some(Cause::RateLimited)
        } else if seen
            .last_attempt
            .is_some_and(|last| now.duration_since(last) < facts.min_interval)
        {
            Some(Cause::ThrottleSkipped)
        } else {
            None
        };
        match skip {
            Some(cause) => self.go(cause, Some(provider), State::skip_fetch()),
            None => {
                context.effects.push(Effect::FetchUsage {
                    provider,
                    force: self.force,
                });
                self.go(Cause::RefreshRequested, Some(provider), State::fetch_usage())
            }
        }
    }

    /// No fetch this time.
    ///
    /// - `Step` => `EmitCurrent` (`cache_hit`)
    #[state(superstate = "refreshing")]
    fn skip_fetch(&mut self, input: &Input) -> Outcome<State> {
        match input {
            Input::Step => {
                let about = self.current;
                self.go(Cause::CacheHit, about, State::emit_current())
            }
            _ => Super,
        }
    }

    /// Waiting for the fetch.
    ///
    /// - `Fetched(Usage)` => `FetchSuccess` (`fetch_succeeded`)
    /// - `Fetched(Failed)` => `FetchError` (`fetch_failed`)
    /// - `Fetched(NotDue)` => `SkipFetch` (`throttle_skipped`)
    #[state(superstate = "refreshing")]
    fn fetch_usage(&mut self, input: &Input) -> Outcome<State> {
        let about = self.current;
        match input {
            Input::Fetched(FetchAnswer::Usage) => self.go(Cause::FetchSucceeded, about, State::fetch_success()),
            Input::Fetched(FetchAnswer::Failed) => self.go(Cause::FetchFailed, about, State::fetch_error()),
            Input::Fetched(FetchAnswer::NotDue) => self.go(Cause::ThrottleSkipped, about, State::skip_fetch()),
            _ => Super,
        }
    }

    /// The fetch read usage.
    ///
    /// - `Step` => `MaybeFetchStatus` (`fetch_succeeded`)
    #[state(superstate = "refreshing")]
    fn fetch_success(&mut self, input: &Input) -> Outcome<State> {
        match input {
            Input::Step => {
                let about = self.current;
                self.go(Cause::FetchSucceeded, about, State::maybe_fetch_status())
            }
            _ => Super,
        }
    }

    /// After a good fetch: the provider's status page is read when it is
    /// due (on for the provider, older than its TTL).
    ///
    /// - `Step` => `EmitCurrent` (`status_page_due`), asking for the page
    /// - `Step` => `EmitCurrent` (`fetch_succeeded`) when the page is not due
    #[state(superstate = "refreshing")]
    fn maybe_fetch_status(&mut self, context: &mut Context, input: &Input) -> Outcome<State> {
        let (Input::Step, Some(provider)) = (input, self.current) else {
            return Super;
        };
        if context.facts.of(provider).status_due {
            context.effects.push(Effect::FetchStatus(provider));
            self.go(Cause::StatusPageDue, Some(provider), State::emit_current())
        } else {
            self.go(Cause::FetchSucceeded, Some(provider), State::emit_current())
        }
    }

    /// The fetch failed.
    ///
    /// - `Step` => `UseCachedFallback` (`cached_fallback`) when there are windows to show
    /// - `Step` => `EmitCurrent` (`fetch_failed`) otherwise
    #[state(superstate = "refreshing")]
    fn fetch_error(&mut self, context: &mut Context, input: &Input) -> Outcome<State> {
        match (input, self.current) {
            (Input::Step, Some(provider)) if context.facts.of(provider).has_windows => {
                self.go(Cause::CachedFallback, Some(provider), State::use_cached_fallback())
            }
            (Input::Step, about) => self.go(Cause::FetchFailed, about, State::emit_current()),
            _ => Super,
        }
    }

    /// The last good windows are shown, marked with their age and the error.
    ///
    /// - `Step` => `EmitCurrent` (`cached_fallback`)
    #[state(superstate = "refreshing")]
    fn use_cached_fallback(&mut self, input: &Input) -> Outcome<State> {
        match input {
            Input::Step => {
                let about = self.current;
                self.go(Cause::CachedFallback, about, State::emit_current())
            }
            _ => Super,
        }
    }

    /// Every refresh state: what they do not handle goes to `alive`.
    #[superstate(superstate = "alive")]
    fn refreshing(input: &Input) -> Outcome<State> {
        let _ = input;
        Super
    }

    /// Every state but `shutdown`: the host may end the session whatever
    /// the controller is doing (a fetch under way is finished by the
    /// engine first, as every effect is).
    ///
    /// - `Trigger(Shutdown)` => `Shutdown` (`shut_down`)
    /// - anything else is ignored
    #[superstate]
    fn alive(&mut self, input: &Input) -> Outcome<State> {
        match input {
            Input::Trigger(Trigger::Shutdown) => self.go(Cause::ShutDown, None, State::shutdown()),
            _ => Handled,
        }
    }

    /// Probing the enabled providers after the current one, in order, one
    /// per step; the first that has something to show (windows, or an error
    /// worth showing) is taken. Probes read the store; they never fetch.
    ///
    /// - `Step` => `CycleRequested` (`cycle_probed`, naming the provider rejected)
    /// - `Step` => `EmitCurrent` (`cycle_probed`, naming the provider taken;
    ///   when every provider was tried, or none is enabled, the current one
    ///   stays, unless the settings turn it off: then none is shown). Either
    ///   way the host is told what the cycle came to.
    #[state(superstate = "alive")]
    fn cycle_requested(&mut self, context: &mut Context, input: &Input) -> Outcome<State> {
        if *input != Input::Step {
            return Super;
        }
        let enabled = &context.facts.enabled;
        if self.probes_left == 0 || enabled.is_empty() {
            let cycled = if enabled.is_empty() {
                Cycled::NoneEnabled
            } else {
                Cycled::NoneAvailable
            };
            // A provider the settings turn off is not shown as current.
            if self.current.is_some_and(|current| !enabled.contains(&current)) {
                self.current = None;
                self.cycled = false;
                context.effects.push(Effect::Select(None));
            }
            context.effects.push(Effect::EmitCycled(cycled));
            let about = self.current;
            return self.go(Cause::CycleProbed, about, State::emit_current());
        }
        self.probes_left -= 1;
        let tried = enabled.len() - 1 - self.probes_left;
        let Some(candidate) = cycle_order(enabled, self.current).nth(tried) else {
            return Handled;
        };
        if worth_showing(&context.facts.of(candidate)) && Some(candidate) != self.current {
            self.current = Some(candidate);
            self.cycled = true;
            context.effects.push(Effect::Select(Some(candidate)));
            context.effects.push(Effect::EmitCycled(Cycled::Selected(candidate)));
            self.go(Cause::CycleProbed, Some(candidate), State::emit_current())
        } else {
            self.go(Cause::CycleProbed, Some(candidate), State::cycle_requested())
        }
    }

    /// The view is sent to the host.
    ///
    /// - `Step` => `Ready` (`emitted`), sending the current and all providers
    #[state(superstate = "alive")]
    fn emit_current(&mut self, context: &mut Context, input: &Input) -> Outcome<State> {
        match input {
            Input::Step => {
                context.effects.push(Effect::EmitCurrent);
                let about = self.current;
                self.go(Cause::Emitted, about, State::ready())
            }
            _ => Super,
        }
    }

    /// The session is over; nothing more is done (the caller's `close`
    /// writes the checkpoint).
    #[state]
    fn shutdown(input: &Input) -> Outcome<State> {
        let _ = input;
        Handled
    }
}

impl Default for Controller {
    fn default() -> Self {
        Controller::new()
    }
}

impl Controller {
    /// A controller showing nothing yet.
    pub fn new() -> Controller {
        Controller {
            current: None,
            cycled: false,
            force: false,
            loaded: false,
            probes_left: 0,
            cause: Cause::Started,
            about: None,
        }
    }

    /// A running machine from its start.
    pub fn machine() -> Machine {
        Controller::new()
            .uninitialized_state_machine()
            .init_with_context(&mut Context::default())
    }

    /// The provider shown.
    pub fn current(&self) -> Option<ProviderId> {
        self.current
    }

    fn on_transition(&mut self, from: &State, to: &State, context: &mut Context) {
        context.transitions.push(Transition {
            from: from.clone(),
            to: to.clone(),
            cause: self.cause,
            provider: self.about,
        });
    }

    /// Names the cause and provider of the transition being returned.
    fn go(&mut self, cause: Cause, about: Option<ProviderId>, target: State) -> Outcome<State> {
        self.cause = cause;
        self.about = about;
        Transition(target)
    }

    /// The provider to show now: the cycled one while it stays usable, else
    /// the model's when usable. When neither is, and the one shown is no
    /// longer enabled (a patch turned it off), the first enabled provider
    /// with something to show, else the first with credentials, is taken
    /// as a cycle would take it (it stays until the model changes); else
    /// none. A disabled provider is never kept. A change is an effect.
    fn resolve(&mut self, context: &mut Context) -> Option<ProviderId> {
        let facts = &context.facts;
        let keep = self.cycled && self.current.is_some_and(|current| facts.usable(current));
        let chosen = if keep {
            self.current
        } else {
            self.cycled = false;
            let model = facts.model_provider.filter(|provider| facts.usable(*provider));
            let disabled = self.current.is_some_and(|current| !facts.enabled.contains(&current));
            if model.is_none() && disabled {
                let next = facts
                    .enabled
                    .iter()
                    .copied()
                    .find(|provider| worth_showing(&facts.of(*provider)))
                    .or_else(|| facts.enabled.iter().copied().find(|provider| facts.usable(*provider)));
                self.cycled = next.is_some();
                next
            } else {
                model
            }
        };
        if chosen != self.current {
            self.current = chosen;
            context.effects.push(Effect::Select(chosen));
        }
        chosen
    }
}

impl State {
    /// The state's name in events and the store.
    pub fn name(&self) -> &'static str {
        match self {
            State::Boot {} => "boot",
            State::GuardSingleton {} => "guard_singleton",
            State::Idle {} => "idle",
            State::SettingsLoading {} => "settings_loading",
            State::Ready {} => "ready",
            State::SettingsPatched {} => "settings_patched",
            State::SessionStart {} => "session_start",
            State::RefreshCacheOnly {} => "refresh_cache_only",
            State::RefreshStatusCacheOnly {} => "refresh_status_cache_only",
            State::ResolveProvider {} => "resolve_provider",
            State::NoProvider {} => "no_provider",
            State::HydrateFromCache {} => "hydrate_from_cache",
            State::SkipFetch {} => "skip_fetch",
            State::FetchUsage {} => "fetch_usage",
            State::FetchSuccess {} => "fetch_success",
            State::MaybeFetchStatus {} => "maybe_fetch_status",
            State::FetchError {} => "fetch_error",
            State::UseCachedFallback {} => "use_cached_fallback",
            State::CycleRequested {} => "cycle_requested",
            State::EmitCurrent {} => "emit_current",
            State::Shutdown {} => "shutdown",
        }
    }

    /// Whether the state moves on by itself ([`Input::Step`]) rather than
    /// waiting for the host or an answer.
    pub fn steps(&self) -> bool {
        !matches!(
            self,
            State::Boot {}
                | State::GuardSingleton {}
                | State::Idle {}
                | State::SettingsLoading {}
                | State::Ready {}
                | State::FetchUsage {}
                | State::Shutdown {}
        )
    }
}
