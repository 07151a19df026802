//! The update cycle, the one sequence every run goes through: the trigger,
//! then per provider in id order its credentials and its tracker's poll
//! (or demand, when forced), recorded; then every request asked for,
//! answered at once through the [`Answers`](crate::answers::Answers) seam;
//! then each answer read and fed back in (purpose, provider) order,
//! recorded; then the alerts those readings fire decided and recorded;
//! then the snapshot published and subscribers told.
//!
//! Nothing here knows whether the answers come from the network, the
//! fixtures or a recording: replay runs these lines too. Facts from
//! outside the cycle ([`Outside`]: a failed alert delivery) are recorded
//! right after the trigger; replay reports the recorded ones in turn.

use std::sync::{Arc, Mutex};

use jiff::Timestamp;

use super::{CycleReport, Engine, EngineError};
use crate::alerts::{self, Alert};
use crate::answers::{Reading, Reply};
use crate::events::{Event, Outcome, Stream};
use crate::health::{self, Feed};
use crate::providers::{ErrorKind, ProviderId};
use crate::trackers::Found;
use crate::transport::{Purpose, Request};

/// The most outside facts waiting for a cycle; more are dropped (each was
/// said on stderr when it happened).
const MAX_OUTSIDE: usize = 256;

/// Facts from outside the cycle, waiting for the next one: what a task
/// off the engine (an alert delivery) reports. Cheap to clone; every clone
/// reports to the same engine.
#[derive(Debug, Clone, Default)]
pub struct Outside(Arc<Mutex<Vec<(Stream, Event)>>>);

impl Outside {
    /// Reports `event` on `stream`, for the next cycle to record.
    pub fn report(&self, stream: Stream, event: Event) {
        let mut waiting = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if waiting.len() < MAX_OUTSIDE {
            waiting.push((stream, event));
        }
    }

    fn take(&self) -> Vec<(Stream, Event)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// What a cycle asks of the providers in its scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Asked {
    /// Usage when the tracker says so, and the status page when it is due
    /// (the timer's cycle, a refresh from a user or a follower).
    Everything,
    /// Usage only (the controller's `FetchUsage`: the status page is its
    /// `MaybeFetchStatus`'s to ask for, after a good fetch).
    Usage,
    /// The status page only, when due (the controller's `FetchStatus`).
    /// Nothing starts it but the controller's decision, so no trigger is
    /// recorded: the transition that asked for it stands for one.
    StatusPage,
}

impl Engine {
    /// Runs one cycle started by `trigger` (a tick, or a refresh, forced or
    /// not; none for a status page alone), for `scope` or every provider
    /// driven, asking what `asked` says.
    pub(super) async fn run_cycle(
        &mut self,
        trigger: Option<Event>,
        scope: Option<ProviderId>,
        asked: Asked,
    ) -> Result<CycleReport, EngineError> {
        let at = self.clock.now();
        let force = matches!(trigger, Some(Event::RefreshRequested { force: true, .. }));
        let mut items: Vec<_> = trigger
            .into_iter()
            .map(|trigger| (at, Stream::Engine, trigger))
            .collect();
        // Facts from outside ride on a cycle with a trigger: replay reports
        // them again before the trigger it reads. An engine on a data dir
        // also takes in what `statusline claude` spooled there.
        if !items.is_empty() {
            if let Some(log) = self.log() {
                for event in crate::statusline::take_spooled(log.data_dir()) {
                    self.outside.report(Stream::Tracker(ProviderId::Anthropic), event);
                }
            }
            items.extend(
                self.outside
                    .take()
                    .into_iter()
                    .map(|(stream, event)| (at, stream, event)),
            );
        }
        let mut requests = Vec::new();
        for provider in self.trackers.providers() {
            if scope.is_some_and(|only| only != provider) {
                continue;
            }
            if asked == Asked::StatusPage {
                if self.status_page_due(provider, at) {
                    requests.extend(health::request_from(
                        provider,
                        self.settings.status_page_url(provider).as_ref(),
                    ));
                }
                continue;
            }
            let credential = self.credentials.find(provider);
            let found = credential.as_ref().map(|credential| Found {
                fingerprint: credential.fingerprint(),
                source: credential.source.clone(),
            });
            items.extend(self.trackers.credentials(provider, at, found));
            let (decided, fetch) = if force {
                self.trackers.demand(provider, at)
            } else {
                self.trackers.poll(provider, at)
            };
            items.extend(decided);
            if let (true, Some(credential)) = (fetch, credential) {
                requests.push(Request::usage(provider, credential));
            }
            if asked == Asked::Everything && self.status_page_due(provider, at) {
                requests.extend(health::request_from(
                    provider,
                    self.settings.status_page_url(provider).as_ref(),
                ));
            }
        }
        let mut events = self.journal.record(items)?.len();
        let fetched: Vec<ProviderId> = requests
            .iter()
            .filter(|request| request.purpose == Purpose::Usage)
            .map(|request| request.provider)
            .collect();
        let mut answers = self.answers.answer(requests).await;
        answers.sort_by_key(|answer| (answer.purpose, answer.provider));
        let done = self.clock.now();
        let mut items = Vec::new();
        for answer in answers {
            let provider = answer.provider;
            if answer.purpose == Purpose::StatusPage {
                items.push((done, Stream::Controller, health::checked(provider, answer.reply)));
                continue;
            }
            let (exchange, outcome) = match answer.reply {
                Reply::Response(exchange) => {
                    let outcome = Outcome::read(&exchange, done);
                    (Some(exchange), outcome)
                }
                Reply::Failed { kind, reason } => (None, Outcome::failed(provider, kind, &reason)),
                Reply::Read(Reading::Usage(outcome)) => (None, outcome),
                Reply::Read(Reading::Page { .. }) => (
                    None,
                    Outcome::failed(provider, ErrorKind::Unavailable, "no usage recorded"),
                ),
            };
            items.extend(
                self.trackers
                    .completed(provider, done, exchange, outcome, answer.elapsed_ms),
            );
        }
        // Alerts are decided at the last clock reading the log holds for
        // this cycle (the answers', else the start), so replay reads the
        // same one.
        let decided_at = if items.is_empty() { at } else { done };
        events += self.journal.record(items)?.len();
        // The alerts this cycle's readings fire: decided from the store as
        // recorded, recorded themselves, then told.
        let providers = self.trackers.providers();
        let fired = alerts::decide(self.journal.store(), &providers, &self.settings.alerts, decided_at);
        for envelope in self.journal.record(fired)? {
            events += 1;
            if let Some(alert) = Alert::from_event(envelope.at, &envelope.payload) {
                let _ = self.alerts.send(Arc::new(alert));
            }
        }
        // Subscribers get exactly the view the snapshot file now holds. The
        // view is recorded nowhere, so an engine with neither a snapshot
        // file nor a subscriber (replay, a test in memory) builds none.
        if self.journal.log().is_some() || self.updates.receiver_count() > 0 {
            let view = self
                .journal
                .publish(done, &self.status_options, self.file_stale_after)?;
            let _ = self.updates.send(Arc::new(view));
        }
        self.retain();
        Ok(CycleReport {
            at: Some(at),
            fetched,
            events,
        })
    }

    /// Whether `provider`'s status page is due at `at`: pages are on, the
    /// provider has one and is tracked, and the last reading is older than
    /// the TTL.
    pub(super) fn status_page_due(&self, provider: ProviderId, at: Timestamp) -> bool {
        let Some(ttl) = self.status_ttl else {
            return false;
        };
        let tracked = self.trackers.state(provider).is_some_and(|state| state.is_active());
        let checked = self
            .journal
            .store()
            .providers
            .get(&provider)
            .and_then(|entry| entry.status_page.as_ref())
            .map(|page| page.checked_at);
        tracked
            && self.settings.status_page_on(provider)
            && Feed::of(provider).is_some()
            && checked.is_none_or(|checked| at.duration_since(checked).unsigned_abs() >= ttl)
    }
}
