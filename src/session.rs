//! What a host session exchanges with the controller: host events in
//! ([`HostEvent`]), engine events out ([`EngineEvent`], the embedding API
//! behind `quotatrack serve --stdio`), the facts the controller reads and
//! the decisions it logs, and the [`Follower`] of a process that does not
//! own the data dir.
//!
//! The engine's host side (`engine/host.rs`) drives the owner's
//! controller with these; [`input`] reads the host's lines for
//! `serve --stdio`, bounded.

pub mod input;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::events::{Event, HostEvent, Stream};
use crate::machines::controller::{
    self, Context, Controller, Cycled, Effect, Facts, FetchAnswer, Input, ProviderFacts, Trigger,
};
use crate::providers::ProviderId;
use crate::providers::detect::detect;
use crate::settings::{Settings, SettingsError};
use crate::status;
use crate::store::Store;
use crate::wire::{Freshness, ProviderStatus, Status};

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
    /// `cycle_provider` found no other provider to show: the one shown
    /// stays. (When it moves, the answer is the new `update_current`.)
    CycleUnchanged {
        /// `none_enabled`: no provider is enabled; `none_available`: every
        /// enabled provider was probed and none other has anything to show.
        reason: Cycled,
        /// The provider still shown.
        provider: Option<ProviderId>,
    },
    /// An alert fired (once per crossing; see `alerts.rs`).
    Alert(Box<crate::alerts::Alert>),
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

/// The last `update_current` and `update_all` a host was told.
#[derive(Debug, Default)]
pub(crate) struct Told([Option<String>; 2]);

impl Told {
    /// The one of `updates` the host asked for (`which`, see [`query`]),
    /// sent whether or not it changed, and remembered as sent.
    pub(crate) fn answer(&mut self, updates: [EngineEvent; 2], which: usize) -> EngineEvent {
        let [current, all] = updates;
        let event = if which == 0 { current } else { all };
        self.0[which] = Some(serde_json::to_string(&event).expect("engine events serialize"));
        event
    }

    /// Forgets the last `update_current`, so the next one is sent even if
    /// it is the same (the answer to a cycle that moved).
    pub(crate) fn forget_current(&mut self) {
        self.0[0] = None;
    }

    /// The updates that differ from the last ones sent (now the last ones).
    pub(crate) fn changed(&mut self, updates: [EngineEvent; 2]) -> Vec<EngineEvent> {
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

/// What the host is told, beyond the views, of what its cycle came to:
/// `cycle_unchanged` when the provider shown stays; nothing when it moved
/// (the new `update_current`, always sent, says so).
pub(crate) fn cycled_answer(told: &mut Told, cycled: Cycled, current: Option<ProviderId>) -> Option<EngineEvent> {
    match cycled {
        Cycled::Selected(_) => {
            told.forget_current();
            None
        }
        reason => Some(EngineEvent::CycleUnchanged {
            reason,
            provider: current,
        }),
    }
}

/// `update_current` for `current` and `update_all` for `shown`, from
/// `view` at `now`, each with its display string.
pub(crate) fn updates<'v>(
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
pub(crate) fn fetched(store: &Store, provider: ProviderId, sent: bool) -> FetchAnswer {
    let failed = store
        .providers
        .get(&provider)
        .is_none_or(|entry| entry.last_error.is_some());
    match (sent, failed) {
        (false, _) => FetchAnswer::NotDue,
        (true, false) => FetchAnswer::Usage,
        (true, true) => FetchAnswer::Failed,
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
                // The engine's to say (`Engine::status_page_due`): it
                // knows the trackers and the status TTL.
                status_due: false,
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
        cache_ttl: settings.cache_ttl(),
        min_interval: settings.min_interval(),
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

/// The view a host asked for, when `host` is a query rather than an
/// event: 0 for `update_current`, 1 for `update_all` (the order of
/// [`updates`]). Queries never reach the controller.
pub fn query(host: &HostEvent) -> Option<usize> {
    match host {
        HostEvent::GetCurrent => Some(0),
        HostEvent::GetAll => Some(1),
        _ => None,
    }
}

/// The controller's trigger for a host event (a query is answered before
/// the controller is asked, so it has none of its own: read as an
/// interval, it would only show the view).
pub fn trigger(host: &HostEvent) -> Trigger {
    match host {
        HostEvent::GetCurrent | HostEvent::GetAll => Trigger::Interval,
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
        return Ok((next, Map::new()));
    };
    let changed = next.changes_from(&before);
    Ok((next, changed))
}

/// The controller of an engine that does not own its data dir: it waits in
/// `idle`, and its effects say when to forward a refresh to the owner
/// ([`Effect::Forward`]) and when to show the owner's snapshot
/// ([`Effect::EmitCurrent`]). The provider it shows is its own host's:
/// the model's, or the one `cycle_provider` moved to (the next one, of the
/// providers enabled both here and by the owner, with something to show in
/// the snapshot), until the model changes. One the owner or these settings
/// turn off is never shown, as on the owner: a model whose provider is off
/// shows none, and when the provider shown is turned off, the model's is
/// shown if enabled, else the first enabled one with something to show. Nothing it
/// decides is logged: the log belongs to the owner.
pub struct Follower {
    machine: controller::Machine,
    current: Option<ProviderId>,
    /// The provider of the host's model.
    model: Option<ProviderId>,
    model_id: Option<String>,
    told: Told,
    /// The providers this process's settings enable: `update_all` lists a
    /// provider the owner's snapshot does not hold as `unknown` when it is
    /// one of them and `inactive` when not, as the owner would.
    enabled: Vec<ProviderId>,
}

impl Follower {
    /// A follower, and what to tell the host first (`already_active`).
    pub fn start() -> (Follower, Vec<Effect>) {
        let mut follower = Follower {
            machine: Controller::machine(),
            current: None,
            model: None,
            model_id: None,
            told: Told::default(),
            enabled: ProviderId::ALL.to_vec(),
        };
        let mut effects = follower.input(Input::Start);
        effects.extend(follower.input(Input::Guarded { owner: false }));
        effects.retain(|effect| *effect != Effect::Guard);
        (follower, effects)
    }

    /// The effects of one host event; `snapshot` is what a cycle moves
    /// through. A cycle's answer comes first ([`Effect::EmitCycled`]).
    pub fn handle(&mut self, host: &HostEvent, snapshot: Option<&Status>) -> Vec<Effect> {
        let mut effects = Vec::new();
        // The controller's own rules, over the snapshot, through the
        // providers enabled here that the owner has not turned off (the
        // snapshot lists those `inactive`).
        let shown: Vec<&ProviderStatus> = snapshot.map(|view| view.providers.iter().collect()).unwrap_or_default();
        let order = self.enabled_by_both(snapshot);
        let facts = |id: ProviderId| {
            let entry = shown.iter().find(|entry| entry.id == id);
            ProviderFacts {
                available: entry.is_some_and(|entry| !entry.credentials_missing),
                has_windows: entry.is_some_and(|entry| !entry.windows.is_empty()),
                failing: entry.is_some_and(|entry| entry.error.is_some()),
                ..ProviderFacts::default()
            }
        };
        match host {
            HostEvent::ModelChanged { provider, model } => {
                // The model's provider when enabled; else none, unless the
                // one shown was turned off (then the rule below picks).
                self.model = detect(provider.as_deref(), model);
                let enabled = self.model.filter(|model| order.contains(model));
                let shown_off = self.current.is_some_and(|current| !order.contains(&current));
                if enabled.is_some() || !shown_off {
                    self.current = enabled;
                }
                self.model_id = Some(model.clone());
            }
            HostEvent::CycleProvider => {
                let next = controller::cycle_order(&order, self.current)
                    .find(|id| Some(*id) != self.current && controller::worth_showing(&facts(*id)));
                let cycled = match next {
                    Some(next) => Cycled::Selected(next),
                    None if order.is_empty() => Cycled::NoneEnabled,
                    None => Cycled::NoneAvailable,
                };
                if let Some(next) = next {
                    self.current = Some(next);
                }
                effects.push(Effect::EmitCycled(cycled));
            }
            _ => {}
        }
        // A provider turned off is not shown as current: the model's
        // provider is, when enabled, else the first enabled one with
        // something to show, else the first with credentials, else none
        // (the owner's rule for a provider a patch turned off).
        if self.current.is_some_and(|current| !order.contains(&current)) {
            self.current = (self.model.filter(|model| order.contains(model)))
                .or_else(|| order.iter().copied().find(|id| controller::worth_showing(&facts(*id))))
                .or_else(|| order.iter().copied().find(|id| facts(*id).available));
        }
        effects.extend(self.input(Input::Trigger(trigger(host))));
        effects
    }

    /// The providers a cycle moves through, in this process's settings'
    /// order: the ones they enable, less those the owner's snapshot lists
    /// `inactive` (its settings, patches included, turned them off) or,
    /// once the owner has written one, does not list at all (its first
    /// cycle gives every provider it tracks an entry: one it never read is
    /// one its settings leave out). Before any snapshot, every one is kept.
    fn enabled_by_both(&self, snapshot: Option<&Status>) -> Vec<ProviderId> {
        let off = |id: &ProviderId| {
            snapshot.is_some_and(|view| {
                let entry = view.providers.iter().find(|entry| entry.id == *id);
                match entry {
                    Some(entry) => entry.state == Freshness::Inactive,
                    None => !view.providers.is_empty(),
                }
            })
        };
        self.enabled.iter().copied().filter(|id| !off(id)).collect()
    }

    /// Sets the providers the settings enable (every one until set).
    pub fn set_enabled(&mut self, enabled: &[ProviderId]) {
        enabled.clone_into(&mut self.enabled);
    }

    /// `update_current` and `update_all` from `snapshot` at `now`.
    fn views(&self, snapshot: &Status, now: Timestamp) -> [EngineEvent; 2] {
        let shown = status::every_provider(snapshot, &self.enabled_by_both(Some(snapshot)));
        updates(snapshot, self.current, self.model_id.as_deref(), shown.iter(), now)
    }

    /// What the host is told of its cycle's outcome beyond the views.
    pub fn cycled(&mut self, cycled: Cycled) -> Option<EngineEvent> {
        cycled_answer(&mut self.told, cycled, self.current)
    }

    /// The provider the host shows.
    pub fn current(&self) -> Option<ProviderId> {
        self.current
    }

    /// The answer to a host's query (`get_current`, `get_all`) from
    /// `snapshot` at `now`; `None` when `host` is not a query.
    pub fn answer(&mut self, host: &HostEvent, snapshot: &Status, now: Timestamp) -> Option<EngineEvent> {
        let which = query(host)?;
        let updates = self.views(snapshot, now);
        Some(self.told.answer(updates, which))
    }

    /// What the host is told from `snapshot` at `now`: its provider and
    /// every provider, each when it differs from what the host was last told.
    pub fn shown(&mut self, snapshot: &Status, now: Timestamp) -> Vec<EngineEvent> {
        let updates = self.views(snapshot, now);
        self.told.changed(updates)
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
