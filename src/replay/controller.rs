//! Replay of the controller stream: each recorded session (from its
//! `boot` transition) is re-driven through a fresh controller machine with
//! the host events it was sent, and what it decides is compared with what
//! was recorded.
//!
//! The controller reads the store, so replay folds the recorded events up
//! to the moment of each decision and hands the machine the same facts the
//! engine did: the settings in force, the provider the host's model maps
//! to (detected again by the current rules), and each provider's entry.
//! The tracker side of the same log is replayed on its own and checked
//! first, so these facts are ones the current code also arrives at.
//!
//! The clock reading of each step is the one its recorded decisions carry
//! (the engine stamps every decision of a step with the reading its facts
//! were taken at). The answers the controller waits for are taken from the
//! recording: a fetch it asks for must appear as the engine's
//! `refresh_requested` for that provider with the same `force`, and its
//! answer is what that cycle did (no request, a failure, or usage); a
//! settings patch is validated again, and an accepted one must be recorded
//! as the same `settings_changed`.
//!
//! Compared: the controller's transitions and selections, the fetches it
//! asks for and the settings it accepts, each as its stream and event (not
//! its clock reading: under a live clock a cycle starts a little after the
//! decision that asked for it).

use std::collections::VecDeque;

use jiff::Timestamp;
use serde_json::{Map, Value};

use super::Divergence;
use crate::driver::Item;
use crate::events::{Envelope, Event, HostEvent, Stream};
use crate::machines::controller::{Context, Controller, Effect, Input, Machine, State};
use crate::providers::ProviderId;
use crate::providers::detect::detect;
use crate::session::{decisions, facts, fetched, patched, trigger};
use crate::settings::Settings;
use crate::store::Store;

/// Replays every controller session in `events`; returns the first
/// divergence.
pub(super) fn replay(events: &[Envelope]) -> Option<Divergence> {
    let mut replayer = Replayer {
        events,
        store: Store::default(),
        folded: 0,
        session: None,
    };
    for index in 0..events.len() {
        if let Err((expected, got)) = replayer.step(index) {
            return Some(replayer.divergence(index, expected, got));
        }
    }
    replayer
        .finish()
        .err()
        .map(|got| replayer.divergence(events.len(), None, got))
}

/// One recorded session being re-driven.
struct Session {
    machine: Machine,
    /// The provider of the host's model.
    model: Option<ProviderId>,
    /// The patch the last `settings_patch` carried.
    patch: Option<Value>,
    /// The input the controller takes next, once a recorded decision shows
    /// it was taken.
    next: Option<Next>,
    /// Decisions made and not yet matched with recorded ones.
    made: VecDeque<Item>,
    /// The fetch asked for: its provider and whether the recorded cycle
    /// sent the request.
    fetch: Option<(ProviderId, bool)>,
}

#[derive(Debug, Clone, Copy)]
enum Next {
    Input(Input),
    /// The answer to the fetch asked for, read from the recording when the
    /// controller takes it.
    Fetched,
}

struct Replayer<'a> {
    events: &'a [Envelope],
    /// The recorded events before `folded`, folded.
    store: Store,
    folded: usize,
    session: Option<Session>,
}

/// A mismatch: the recorded event (`None`: nothing was recorded) and the
/// replayed one (`None`: nothing was decided).
type Mismatch = (Option<usize>, Option<Item>);

impl Replayer<'_> {
    /// Takes the recorded event at `index` into account.
    fn step(&mut self, index: usize) -> Result<(), Mismatch> {
        let events = self.events;
        let envelope = &events[index];
        match (&envelope.stream, &envelope.payload) {
            (Stream::Controller, Event::Transitioned { from, .. }) if from == "boot" => {
                if let Some(session) = &mut self.session {
                    if let Some(made) = session.made.pop_front() {
                        return Err((Some(index), Some(made)));
                    }
                }
                self.session = Some(Session {
                    machine: Controller::machine(),
                    model: None,
                    patch: None,
                    next: Some(Next::Input(Input::Start)),
                    made: VecDeque::new(),
                    fetch: None,
                });
                self.matched(index)
            }
            (Stream::Controller, Event::Transitioned { .. } | Event::ProviderSelected { .. }) => self.matched(index),
            (Stream::Controller, Event::HostReported { host }) => {
                if self.session.is_none() {
                    return Ok(());
                }
                self.decide(index);
                let session = self.session.as_mut().expect("checked above");
                if let Some(made) = session.made.pop_front() {
                    return Err((Some(index), Some(made)));
                }
                match host {
                    HostEvent::ModelChanged { provider, model } => session.model = detect(provider.as_deref(), model),
                    HostEvent::SettingsPatch { patch } => session.patch = Some(patch.clone()),
                    _ => {}
                }
                session.next = Some(Next::Input(Input::Trigger(trigger(host))));
                Ok(())
            }
            (
                Stream::Engine,
                Event::RefreshRequested {
                    provider: Some(provider),
                    ..
                },
            ) => {
                if !self.expects(index) {
                    return Ok(());
                }
                self.matched(index)?;
                if let Some(session) = &mut self.session {
                    session.fetch = Some((*provider, false));
                }
                Ok(())
            }
            (Stream::Engine, Event::SettingsChanged { .. }) if self.loading_settings() => self.matched(index),
            (Stream::Tracker(provider), Event::FetchStarted { .. }) => {
                if let Some(Session {
                    fetch: Some((asked, sent)),
                    ..
                }) = &mut self.session
                {
                    *sent |= asked == provider;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The recorded decision at `index` must be the next one replay makes.
    fn matched(&mut self, index: usize) -> Result<(), Mismatch> {
        self.decide(index);
        let Some(session) = &mut self.session else {
            return Ok(());
        };
        let recorded = &self.events[index];
        match session.made.pop_front() {
            Some((_, stream, event)) if stream == recorded.stream && event == recorded.payload => Ok(()),
            made => Err((Some(index), made)),
        }
    }

    /// Whether the next decision made is the engine's `refresh_requested`
    /// recorded at `index` (a cycle the controller asked for, not one
    /// the host or the interval started).
    fn expects(&mut self, index: usize) -> bool {
        self.decide(index);
        self.session
            .as_ref()
            .and_then(|session| session.made.front())
            .is_some_and(|(_, stream, event)| {
                *stream == Stream::Engine && matches!(event, Event::RefreshRequested { .. })
            })
    }

    /// Whether the session is applying a patch (its `settings_changed` is
    /// the controller's; the ones before a session are the engine's).
    fn loading_settings(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|session| matches!(session.machine.state(), State::SettingsLoading {}))
    }

    /// When nothing made is waiting, lets the controller take its next
    /// input, with the facts as the recording had them just before `index`.
    fn decide(&mut self, index: usize) {
        let Some(session) = &self.session else {
            return;
        };
        if !session.made.is_empty() || session.next.is_none() {
            return;
        }
        for envelope in &self.events[self.folded..index] {
            self.store.apply(envelope);
        }
        self.folded = self.folded.max(index);
        // At the end of the recording, its last clock reading.
        let now = self.events[index.min(self.events.len() - 1)].at;
        self.take(now);
    }

    /// The controller takes its next input at `now`; what it decides is
    /// queued, and the input after it is set.
    fn take(&mut self, now: Timestamp) {
        let store = &self.store;
        let Some(session) = &mut self.session else {
            return;
        };
        let Some(next) = session.next.take() else {
            return;
        };
        let settings = recorded_settings(store);
        let input = match next {
            Next::Input(input) => input,
            Next::Fetched => {
                // Without a recorded request the controller waits, and the
                // recorded decision that follows finds nothing made.
                let Some((provider, sent)) = session.fetch.take() else {
                    return;
                };
                Input::Fetched(fetched(store, provider, sent))
            }
        };
        let mut context = Context::new(facts(store, &settings, session.model, now));
        session.machine.handle_with_context(&input, &mut context);
        session.made.extend(decisions(&context));
        for effect in &context.effects {
            let answer = match *effect {
                Effect::Guard => Some(Next::Input(Input::Guarded { owner: true })),
                Effect::LoadSettings => {
                    let accepted = match session.patch.take().map(|patch| patched(&settings, &patch)) {
                        None => true,
                        Some(Ok((_, changed))) => {
                            if !changed.is_empty() {
                                let event = Event::SettingsChanged {
                                    patch: Value::Object(changed),
                                };
                                session.made.push_back((now, Stream::Engine, event));
                            }
                            true
                        }
                        Some(Err(_)) => false,
                    };
                    Some(Next::Input(Input::SettingsLoaded { accepted }))
                }
                Effect::FetchUsage { provider, force } => {
                    let event = Event::RefreshRequested {
                        provider: Some(provider),
                        force,
                    };
                    session.made.push_back((now, Stream::Engine, event));
                    Some(Next::Fetched)
                }
                _ => None,
            };
            if answer.is_some() {
                session.next = answer;
            }
        }
        if session.next.is_none() && session.machine.state().steps() {
            session.next = Some(Next::Input(Input::Step));
        }
    }

    /// At the end of the recording: a decision replay still makes that
    /// the recording never got to is a divergence.
    fn finish(&mut self) -> Result<(), Option<Item>> {
        self.decide(self.events.len());
        match self.session.as_mut().and_then(|session| session.made.pop_front()) {
            Some(made) => Err(Some(made)),
            None => Ok(()),
        }
    }

    fn divergence(&self, index: usize, expected: Option<usize>, got: Option<Item>) -> Divergence {
        let recorded = expected.map(|index| &self.events[index]);
        super::divergence(self.events, index, recorded, got.as_ref())
    }
}

/// The settings the recording was under: every recorded
/// `settings_changed` folded onto the defaults (a key the current settings
/// do not know is left out).
fn recorded_settings(store: &Store) -> Settings {
    let whole = Value::Object(store.settings.clone());
    Settings::default().patched(&whole).unwrap_or_else(|_| {
        store
            .settings
            .iter()
            .fold(Settings::default(), |settings, (key, value)| {
                let one = Value::Object(Map::from_iter([(key.clone(), value.clone())]));
                settings.patched(&one).unwrap_or(settings)
            })
    })
}
