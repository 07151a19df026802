//! The controller side of the engine: host events in ([`HostEvent`]),
//! engine events out ([`EngineEvent`]), the embedding API behind
//! `quotatrack serve --stdio`.
//!
//! [`Engine::handle`] records the host event (the controller's input) on
//! the controller stream, hands it to the controller machine with the facts
//! of the moment, records the transitions it made, and performs its effects
//! in order: a fetch runs through the tracker of that provider (so the
//! tracker's rules apply again, and its decisions are logged as any
//! other cycle's), a settings patch is validated and, when accepted,
//! recorded; an emit becomes `update_current` and `update_all`. Effects
//! that have an answer feed it back as the next input; states that need
//! none are stepped through until the controller waits again.
//!
//! [`input`] reads the host's lines for `serve --stdio`, bounded.

pub mod input;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::engine::{Engine, EngineError, changed_keys};
use crate::events::{Event, HostEvent, Stream};
use crate::machines::controller::{self, Context, Controller, Effect, Facts, Fetch, Input, ProviderFacts, Trigger};
use crate::providers::ProviderId;
use crate::providers::detect::detect;
use crate::settings::{Settings, SettingsError};
use crate::status;
use crate::store::Store;
use crate::wire::{ProviderStatus, Status};

/// What the engine tells the host (one JSON line each on `serve --stdio`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EngineEvent {
    /// The engine owns the data dir and is ready; the settings in force.
    Ready {
        /// The settings.
        settings: Value,
    },
    /// Another engine owns the data dir; this one serves reads.
    AlreadyActive,
    /// The provider the host shows, its status entry and display string.
    UpdateCurrent {
        /// The provider, or `None` when no provider is usable.
        provider: Option<ProviderId>,
        /// Its `status --json` entry.
        usage: Option<Box<ProviderStatus>>,
        /// The line to show verbatim (`Claude │ 5h 2h13m left ━━━━ 45% used │ …`).
        display: Option<String>,
    },
    /// Every enabled provider with data, in the settings' order.
    UpdateAll {
        /// The entries, each with its display string.
        providers: Vec<Shown>,
    },
    /// The settings changed.
    SettingsUpdated {
        /// The settings now in force.
        settings: Value,
    },
    /// An input could not be used; nothing changed.
    Error {
        /// The input line it concerns (set by `serve --stdio`).
        #[serde(skip_serializing_if = "Option::is_none")]
        line: Option<usize>,
        /// What was wrong.
        message: String,
    },
}

/// A provider's status entry with its display string.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shown {
    /// The `status --json` entry.
    #[serde(flatten)]
    pub usage: ProviderStatus,
    /// The line to show verbatim.
    pub display: String,
}

/// The controller machine and what it works with.
pub struct Session {
    machine: controller::Machine,
    settings: Settings,
    /// The provider of the host's current model.
    model: Option<ProviderId>,
    /// The host's current model id, for what a request to it costs.
    model_id: Option<String>,
    /// A patch waiting for the controller's `LoadSettings`.
    patch: Option<Value>,
    /// Why the last patch was refused.
    rejection: Option<String>,
    /// The last `update_current` and `update_all` sent, to send only changes.
    sent: Sent,
    /// A host event is being handled: its records are held until it shows
    /// it changed something ([`Engine::handle`]).
    holding: bool,
}

impl Session {
    pub(crate) fn new(settings: Settings) -> Session {
        Session {
            machine: Controller::machine(),
            settings,
            model: None,
            model_id: None,
            patch: None,
            rejection: None,
            sent: Sent::default(),
            holding: false,
        }
    }
}

impl Engine {
    /// Starts the controller as the owner of the data dir: it loads the
    /// settings and says `ready`.
    pub async fn start(&mut self) -> Result<Vec<EngineEvent>, EngineError> {
        self.drive(Input::Start).await
    }

    /// Handles one host event; returns what the host should be told.
    ///
    /// The host event and the controller's decisions are recorded only
    /// when handling it changed something: something else was recorded (a
    /// fetch, settings), the host was told something, or the controller
    /// (its state, its storage, the model) is not as it was. A host event
    /// that changed nothing leaves no trace, so the log and the memory of
    /// a long session grow with what happened, not with how often the host
    /// spoke; replay sees the same decisions either way.
    pub async fn handle(&mut self, host: HostEvent) -> Result<Vec<EngineEvent>, EngineError> {
        let at = self.clock.now();
        let before = (
            self.session.machine.state().clone(),
            self.session.machine.inner().clone(),
            self.session.model,
            self.journal.log().next_seq(),
        );
        let reported = Event::HostReported { host: host.clone() };
        self.journal.hold([(at, Stream::Controller, reported)]);
        let trigger = trigger(&host);
        match host {
            HostEvent::ModelChanged { provider, model } => {
                self.session.model = detect(provider.as_deref(), &model);
                self.session.model_id = Some(model);
            }
            HostEvent::SettingsPatch { patch } => self.session.patch = Some(patch),
            _ => {}
        }
        self.session.holding = true;
        let told = self.drive(Input::Trigger(trigger)).await;
        self.session.holding = false;
        let told = told?;
        let after = (
            self.session.machine.state().clone(),
            self.session.machine.inner().clone(),
            self.session.model,
            self.journal.log().next_seq(),
        );
        if told.is_empty() && after == before {
            self.journal.drop_held();
        } else {
            self.journal.record([])?;
        }
        Ok(told)
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.session.settings
    }

    /// The controller's state name.
    pub fn controller_state(&self) -> &'static str {
        self.session.machine.state().name()
    }

    /// Feeds `input` and every answer and step after it to the controller.
    async fn drive(&mut self, input: Input) -> Result<Vec<EngineEvent>, EngineError> {
        let mut told = Vec::new();
        let mut next = Some(input);
        while let Some(input) = next.take() {
            let now = self.clock.now();
            let facts = facts(self.journal.store(), &self.session.settings, self.session.model, now);
            let mut context = Context::new(facts);
            self.session.machine.handle_with_context(&input, &mut context);
            if self.session.holding {
                self.journal.hold(decisions(&context));
            } else {
                self.journal.record(decisions(&context))?;
            }
            for effect in context.effects {
                if let Some(answer) = self.perform(effect, &mut told).await? {
                    next = Some(answer);
                }
            }
            if next.is_none() && self.session.machine.state().steps() {
                next = Some(Input::Step);
            }
        }
        Ok(told)
    }

    /// Performs one effect; returns the answer it has for the controller.
    async fn perform(&mut self, effect: Effect, told: &mut Vec<EngineEvent>) -> Result<Option<Input>, EngineError> {
        let settings = || self.session.settings.to_json();
        Ok(match effect {
            // Building the engine took the data dir's lock.
            Effect::Guard => Some(Input::Guarded { owner: true }),
            Effect::LoadSettings => Some(Input::SettingsLoaded {
                accepted: self.load_settings()?,
            }),
            Effect::EmitReady => {
                told.push(EngineEvent::Ready { settings: settings() });
                None
            }
            Effect::EmitAlreadyActive => {
                told.push(EngineEvent::AlreadyActive);
                None
            }
            Effect::EmitSettingsUpdated => {
                told.push(EngineEvent::SettingsUpdated { settings: settings() });
                None
            }
            Effect::EmitSettingsRejected => {
                let message = self.session.rejection.take().unwrap_or_default();
                told.push(EngineEvent::Error { line: None, message });
                None
            }
            Effect::FetchUsage { provider, force } => {
                let report = if force {
                    self.force_refresh(Some(provider)).await?
                } else {
                    self.refresh(Some(provider)).await?
                };
                let sent = report.fetched.contains(&provider);
                Some(Input::Fetched(fetched(self.journal.store(), provider, sent)))
            }
            Effect::EmitCurrent => {
                self.emit(told);
                None
            }
            // Selections were recorded with the transitions; an owner has no
            // one to forward to.
            Effect::Select(_) | Effect::Forward(_) => None,
        })
    }

    /// Applies the pending patch, if any: recorded when accepted, the
    /// reason kept when not. Loading without a patch always succeeds.
    fn load_settings(&mut self) -> Result<bool, EngineError> {
        let Some(patch) = self.session.patch.take() else {
            return Ok(true);
        };
        let (next, changed) = match patched(&self.session.settings, &patch) {
            Ok(patched) => patched,
            Err(error) => {
                self.session.rejection = Some(format!("settings_patch: {error}"));
                return Ok(false);
            }
        };
        if !changed.is_empty() {
            let event = Event::SettingsChanged {
                patch: Value::Object(changed),
            };
            self.journal.record([(self.clock.now(), Stream::Engine, event)])?;
        }
        self.driver.set_rules(next.rules(self.driver.rules()));
        self.status_ttl = next.status_ttl();
        self.session.settings = next;
        Ok(true)
    }

    /// Tells the host the current provider and all providers, each only
    /// when it differs from what it was last told.
    fn emit(&mut self, told: &mut Vec<EngineEvent>) {
        let now = self.clock.now();
        let view = status::view(self.journal.store(), now, &self.status_options);
        let current = self.session.machine.inner().current();
        let enabled = self.session.settings.providers.iter();
        let shown = enabled.filter_map(|id| view.providers.iter().find(|p| p.id == *id));
        let model = self.session.model_id.as_deref();
        told.extend(self.session.sent.changed(updates(&view, current, model, shown, now)));
    }
}

/// The last `update_current` and `update_all` a host was sent.
#[derive(Debug, Default)]
struct Sent([Option<String>; 2]);

impl Sent {
    /// The updates that differ from the last ones sent (now the last ones).
    fn changed(&mut self, updates: [EngineEvent; 2]) -> Vec<EngineEvent> {
        let mut told = Vec::new();
        for (event, sent) in updates.into_iter().zip(&mut self.0) {
            let json = serde_json::to_string(&event).expect("engine events serialize");
            if sent.as_deref() != Some(json.as_str()) {
                *sent = Some(json);
                told.push(event);
            }
        }
        told
    }
}

/// `update_current` for `current` and `update_all` for `shown`, from
/// `view` at `now`, each with its display string.
fn updates<'v>(
    view: &'v Status,
    current: Option<ProviderId>,
    model: Option<&str>,
    shown: impl Iterator<Item = &'v ProviderStatus>,
    now: Timestamp,
) -> [EngineEvent; 2] {
    let entry = current.and_then(|id| view.providers.iter().find(|entry| entry.id == id));
    let entry = entry.map(|entry| match model {
        Some(model) => status::for_model(entry, model),
        None => entry.clone(),
    });
    let entry = entry.as_ref();
    let update = EngineEvent::UpdateCurrent {
        provider: current,
        display: entry.map(|entry| status::display(entry, now)),
        usage: entry.cloned().map(Box::new),
    };
    let all = EngineEvent::UpdateAll {
        providers: shown
            .map(|usage| Shown {
                display: status::display(usage, now),
                usage: usage.clone(),
            })
            .collect(),
    };
    [update, all]
}

/// What a fetch of `provider` came to, for the controller: not sent (the
/// tracker held it back), or, from the store it left, usage or a failure.
pub(crate) fn fetched(store: &Store, provider: ProviderId, sent: bool) -> Fetch {
    let failed = store
        .providers
        .get(&provider)
        .is_none_or(|entry| entry.last_error.is_some());
    match (sent, failed) {
        (false, _) => Fetch::NotDue,
        (true, false) => Fetch::Usage,
        (true, true) => Fetch::Failed,
    }
}

/// What the controller may consult at `now`: the gates of `settings`, the
/// provider of the host's model, and each enabled provider as `store` has it.
pub(crate) fn facts(store: &Store, settings: &Settings, model: Option<ProviderId>, now: Timestamp) -> Facts {
    let providers = settings
        .providers
        .iter()
        .filter_map(|id| {
            let entry = store.providers.get(id)?;
            let facts = ProviderFacts {
                available: entry.credentials.is_some(),
                has_windows: !entry.windows.is_empty(),
                failing: entry.last_error.is_some(),
                last_good: entry.last_good,
                last_attempt: entry.last_attempt,
                blocked_until: entry.blocked_until,
            };
            Some((*id, facts))
        })
        .collect();
    Facts {
        now,
        cache_ttl: SignedDuration::from_secs(settings.cache_ttl_s as i64),
        min_interval: SignedDuration::from_secs(settings.min_interval_s as i64),
        model_provider: model,
        enabled: settings.providers.clone(),
        providers,
    }
}

/// The events one controller input is logged as: its transitions, then the
/// providers it selected, all at the clock reading its facts were taken at.
pub(crate) fn decisions(context: &Context) -> Vec<(Timestamp, Stream, Event)> {
    let at = context.facts.now;
    let transitions = context.transitions.iter().map(|transition| Event::Transitioned {
        from: transition.from.name().to_owned(),
        to: transition.to.name().to_owned(),
        cause: transition.cause,
        provider: transition.provider,
    });
    let selections = context.effects.iter().filter_map(|effect| match effect {
        Effect::Select(provider) => Some(Event::ProviderSelected { provider: *provider }),
        _ => None,
    });
    transitions
        .chain(selections)
        .map(|event| (at, Stream::Controller, event))
        .collect()
}

/// The controller's trigger for a host event.
pub fn trigger(host: &HostEvent) -> Trigger {
    match host {
        HostEvent::SessionStart => Trigger::SessionStart,
        HostEvent::TurnStart => Trigger::TurnStart,
        HostEvent::ToolResult => Trigger::ToolResult,
        HostEvent::TurnEnd => Trigger::TurnEnd,
        HostEvent::Interval => Trigger::Interval,
        HostEvent::Refresh => Trigger::Refresh,
        HostEvent::CycleProvider => Trigger::Cycle,
        HostEvent::SessionShutdown => Trigger::Shutdown,
        HostEvent::ModelChanged { .. } => Trigger::ModelChanged,
        HostEvent::SettingsPatch { .. } => Trigger::SettingsPatch,
    }
}

/// `settings` with `patch` applied, and the keys whose values it changed.
pub(crate) fn patched(settings: &Settings, patch: &Value) -> Result<(Settings, Map<String, Value>), SettingsError> {
    let next = settings.patched(patch)?;
    let Value::Object(before) = settings.to_json() else {
        unreachable!("settings serialize to an object")
    };
    let changed = changed_keys(&before, next.to_json());
    Ok((next, changed))
}

/// The controller of an engine that does not own its data dir: it waits in
/// `idle`, and its effects say when to forward a refresh to the owner
/// ([`Effect::Forward`]) and when to show the owner's snapshot
/// ([`Effect::EmitCurrent`]). The provider it shows is its own host's:
/// the model's, or the one `cycle_provider` moved to (the next one in the
/// snapshot with something to show), until the model changes. Nothing it
/// decides is logged: the log belongs to the owner.
pub struct Follower {
    machine: controller::Machine,
    current: Option<ProviderId>,
    model_id: Option<String>,
    sent: Sent,
}

impl Follower {
    /// A follower, and what to tell the host first (`already_active`).
    pub fn start() -> (Follower, Vec<Effect>) {
        let mut follower = Follower {
            machine: Controller::machine(),
            current: None,
            model_id: None,
            sent: Sent::default(),
        };
        let mut effects = follower.input(Input::Start);
        effects.extend(follower.input(Input::Guarded { owner: false }));
        effects.retain(|effect| *effect != Effect::Guard);
        (follower, effects)
    }

    /// The effects of one host event; `snapshot` is what a cycle moves
    /// through.
    pub fn handle(&mut self, host: &HostEvent, snapshot: Option<&Status>) -> Vec<Effect> {
        match host {
            HostEvent::ModelChanged { provider, model } => {
                self.current = detect(provider.as_deref(), model);
                self.model_id = Some(model.clone());
            }
            HostEvent::CycleProvider => {
                let shown: Vec<&ProviderStatus> =
                    snapshot.map(|view| view.providers.iter().collect()).unwrap_or_default();
                let start = shown
                    .iter()
                    .position(|entry| Some(entry.id) == self.current)
                    .map_or(0, |index| index + 1);
                let next = (0..shown.len())
                    .map(|k| shown[(start + k) % shown.len()])
                    .find(|entry| {
                        Some(entry.id) != self.current && (!entry.windows.is_empty() || entry.error.is_some())
                    });
                if let Some(next) = next {
                    self.current = Some(next.id);
                }
            }
            _ => {}
        }
        self.input(Input::Trigger(trigger(host)))
    }

    /// The provider the host shows.
    pub fn current(&self) -> Option<ProviderId> {
        self.current
    }

    /// What the host is told from `snapshot` at `now`: its provider and
    /// every provider, each when it differs from what the host was last told.
    pub fn shown(&mut self, snapshot: &Status, now: Timestamp) -> Vec<EngineEvent> {
        self.sent.changed(updates(
            snapshot,
            self.current,
            self.model_id.as_deref(),
            snapshot.providers.iter(),
            now,
        ))
    }

    /// Whether the host ended the session.
    pub fn is_shut_down(&self) -> bool {
        matches!(self.machine.state(), controller::State::Shutdown {})
    }

    fn input(&mut self, input: Input) -> Vec<Effect> {
        let mut context = Context::default();
        self.machine.handle_with_context(&input, &mut context);
        context.effects
    }
}
