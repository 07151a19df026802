//! The trackers of the providers driven, and the one place their
//! decisions become log events.
//!
//! A cycle at `at` has two halves (`engine/cycle.rs`). First, per provider
//! in id order: the credentials as found now (an input event only when they
//! changed), then a poll or a demand (the decisions, and whether to fetch).
//! The engine records these, performs the fetches, then, second half, feeds
//! each completed fetch back in provider order. Replay runs that same cycle.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::events::{Cause, Event, Outcome, Stamped, Stream};
use crate::exchange::RecordedExchange;
use crate::machines::tracker::{Decisions, Fetched, Input, Machine, Rules, State, Tracker};
use crate::providers::ProviderId;
use crate::store::{Entry, Store};

/// The credentials a cycle found for one provider: fingerprint and source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The credential's fingerprint.
    pub fingerprint: String,
    /// Where it came from.
    pub source: String,
}

/// The trackers of a provider set.
pub struct Trackers {
    rules: Rules,
    slots: BTreeMap<ProviderId, Slot>,
}

struct Slot {
    machine: Machine,
    /// The bookkeeping last written as `store_updated`, to write only changes.
    written: Option<Bookkeeping>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bookkeeping {
    fails: u32,
    active: bool,
    blocked_until: Option<Timestamp>,
}

impl Trackers {
    /// Trackers for `providers` under `rules`, resumed from `store` (a
    /// fresh store gives fresh trackers).
    pub fn new(rules: Rules, providers: &[ProviderId], store: &Store) -> Trackers {
        let slots = providers
            .iter()
            .map(|id| (*id, Slot::resume(rules, store.providers.get(id))))
            .collect();
        Trackers { rules, slots }
    }

    /// Drives `providers` from now on, at `at`: the trackers of the ones
    /// already driven go on, new ones resume from `store` (as a restarted
    /// engine's would), and the others stop. A provider the store has as
    /// tracked that is no longer driven is recorded as `inactive`
    /// (`disabled`), so every view says it is off; one that comes back with
    /// the credentials it had is `pending` again (`enabled`), fetched when
    /// the minimum interval since its last request allows.
    pub fn set_providers(&mut self, providers: &[ProviderId], store: &Store, at: Timestamp) -> Vec<Stamped> {
        let mut items = Vec::new();
        for (id, entry) in &store.providers {
            if providers.contains(id) || entry.active != Some(true) {
                continue;
            }
            let stream = Stream::Tracker(*id);
            let from = match self.slots.get(id) {
                Some(slot) => slot.machine.state().name().to_owned(),
                None => entry
                    .machine_state
                    .clone()
                    .unwrap_or_else(|| State::initial().name().to_owned()),
            };
            let stopped = Event::Transitioned {
                from,
                to: "inactive".to_owned(),
                cause: Cause::Disabled,
                provider: None,
            };
            let bookkeeping = Bookkeeping {
                fails: 0,
                active: false,
                blocked_until: None,
            };
            items.extend([(at, stream, stopped), (at, stream, bookkeeping.event(*id))]);
        }
        self.slots.retain(|id, _| providers.contains(id));
        for id in providers {
            if self.slots.contains_key(id) {
                continue;
            }
            let entry = store.providers.get(id);
            let slot = match entry {
                // Stopped by the settings, with its credentials: back to work.
                Some(entry) if entry.active == Some(false) && entry.credentials.is_some() => {
                    let stream = Stream::Tracker(*id);
                    let woken = Event::Transitioned {
                        from: "inactive".to_owned(),
                        to: State::initial().name().to_owned(),
                        cause: Cause::Enabled,
                        provider: None,
                    };
                    let bookkeeping = Bookkeeping {
                        fails: 0,
                        active: true,
                        blocked_until: None,
                    };
                    items.extend([(at, stream, woken), (at, stream, bookkeeping.event(*id))]);
                    let machine = Tracker::resume(
                        self.rules,
                        State::initial(),
                        0,
                        entry.last_attempt,
                        entry.credentials.clone(),
                    );
                    Slot {
                        machine,
                        written: Some(bookkeeping),
                    }
                }
                _ => Slot::resume(self.rules, entry),
            };
            self.slots.insert(*id, slot);
        }
        items
    }

    /// The rules in force.
    pub fn rules(&self) -> Rules {
        self.rules
    }

    /// Applies new rules, keeping every tracker's state and bookkeeping.
    pub fn set_rules(&mut self, rules: Rules) {
        self.rules = rules;
        for slot in self.slots.values_mut() {
            slot.machine = Tracker::reruled(&slot.machine, rules);
        }
    }

    /// The providers driven, in id order.
    pub fn providers(&self) -> Vec<ProviderId> {
        self.slots.keys().copied().collect()
    }

    /// The tracker state of `provider`.
    pub fn state(&self, provider: ProviderId) -> Option<&State> {
        self.slots.get(&provider).map(|slot| slot.machine.state())
    }

    /// The tracker of `provider`.
    pub fn tracker(&self, provider: ProviderId) -> Option<&Tracker> {
        self.slots.get(&provider).map(|slot| slot.machine.inner())
    }

    /// The credentials found for `provider` at `at`: an input event and its
    /// decisions when they differ from what the tracker knows, else nothing.
    pub fn credentials(&mut self, provider: ProviderId, at: Timestamp, found: Option<Found>) -> Vec<Stamped> {
        let Some(slot) = self.slots.get_mut(&provider) else {
            return Vec::new();
        };
        let known = slot.machine.inner().credentials();
        let event = match &found {
            Some(found) if known == Some(found.fingerprint.as_str()) => return Vec::new(),
            Some(found) => Event::CredentialsFound {
                provider,
                fingerprint: found.fingerprint.clone(),
                source: found.source.clone(),
            },
            None if !slot.machine.state().is_active() => return Vec::new(),
            None => Event::CredentialsLost { provider },
        };
        let mut items = vec![(at, Stream::Tracker(provider), event)];
        let input = Input::Credentials(found.map(|found| found.fingerprint));
        items.extend(slot.handle(provider, at, &input).0);
        items
    }

    /// A poll of `provider` at `at`: its decisions, and whether to fetch.
    pub fn poll(&mut self, provider: ProviderId, at: Timestamp) -> (Vec<Stamped>, bool) {
        match self.slots.get_mut(&provider) {
            Some(slot) => slot.handle(provider, at, &Input::Poll { now: at }),
            None => (Vec::new(), false),
        }
    }

    /// A forced refresh of `provider` at `at`: its decisions, and whether
    /// to fetch.
    pub fn demand(&mut self, provider: ProviderId, at: Timestamp) -> (Vec<Stamped>, bool) {
        match self.slots.get_mut(&provider) {
            Some(slot) => slot.handle(provider, at, &Input::Demand { now: at }),
            None => (Vec::new(), false),
        }
    }

    /// A completed fetch of `provider`, taken in at `at`: the input event
    /// and the decisions it led to.
    pub fn completed(
        &mut self,
        provider: ProviderId,
        at: Timestamp,
        exchange: Option<RecordedExchange>,
        outcome: Outcome,
        elapsed_ms: u64,
    ) -> Vec<Stamped> {
        let Some(slot) = self.slots.get_mut(&provider) else {
            return Vec::new();
        };
        let result = fetched(&outcome);
        let mut items = vec![(
            at,
            Stream::Tracker(provider),
            Event::FetchCompleted {
                provider,
                exchange: exchange.map(Box::new),
                body_repeated: false,
                outcome,
                elapsed_ms,
            },
        )];
        items.extend(slot.handle(provider, at, &Input::Completed { now: at, result }).0);
        items
    }
}

impl Bookkeeping {
    /// The `store_updated` event writing it for `provider`.
    fn event(self, provider: ProviderId) -> Event {
        Event::StoreUpdated {
            provider,
            fails: self.fails,
            active: self.active,
            blocked_until: self.blocked_until,
        }
    }
}

impl Slot {
    fn resume(rules: Rules, entry: Option<&Entry>) -> Slot {
        let Some(entry) = entry else {
            return Slot {
                machine: Tracker::resume(rules, State::initial(), 0, None, None),
                written: None,
            };
        };
        let state = entry
            .machine_state
            .as_deref()
            .and_then(|name| State::from_name(name, entry.blocked_until))
            .unwrap_or_else(State::initial);
        Slot {
            machine: Tracker::resume(rules, state, entry.fails, entry.last_attempt, entry.credentials.clone()),
            written: entry.active.map(|active| Bookkeeping {
                fails: entry.fails,
                active,
                blocked_until: entry.blocked_until,
            }),
        }
    }

    /// Hands one input to the machine and turns its decisions into events:
    /// transitions, then the fetch, then the bookkeeping if it changed.
    fn handle(&mut self, provider: ProviderId, at: Timestamp, input: &Input) -> (Vec<Stamped>, bool) {
        let stream = Stream::Tracker(provider);
        let mut decisions = Decisions::default();
        self.machine.handle_with_context(input, &mut decisions);
        let mut items: Vec<Stamped> = decisions
            .transitions
            .into_iter()
            .map(|transition| {
                let event = Event::Transitioned {
                    from: transition.from.name().to_owned(),
                    to: transition.to.name().to_owned(),
                    cause: transition.cause,
                    provider: None,
                };
                (at, stream, event)
            })
            .collect();
        if decisions.fetch {
            items.push((at, stream, Event::FetchStarted { provider }));
        }
        let state = self.machine.state();
        let now = Bookkeeping {
            fails: self.machine.inner().fails(),
            active: state.is_active(),
            blocked_until: state.blocked_until(),
        };
        if self.written != Some(now) {
            self.written = Some(now);
            items.push((at, stream, now.event(provider)));
        }
        (items, decisions.fetch)
    }
}

/// What the tracker makes of an outcome.
fn fetched(outcome: &Outcome) -> Fetched {
    match outcome {
        Outcome::Usage { .. } => Fetched::Usage,
        Outcome::Failed { error } => Fetched::Failed {
            kind: error.kind,
            retry_after_s: error.retry_after_s,
        },
    }
}
