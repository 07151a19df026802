//! The recording as the engine's outside world: replay's side of the
//! engine's three seams. The [`Tape`] is the clock (each reading is the
//! time of the recorded event the engine produces next), the credentials
//! (the fingerprints the recording found; a cycle without a credentials
//! event found what the one before did) and the answers (the recorded
//! responses and status pages of the cycle, bodies stored once restored).
//!
//! Where the engine stands in the recording is the number of events its
//! journal has taken so far (recorded or held): with a recording of
//! decisions, every event the engine produces has its place; with an
//! input-only file, only the inputs do, and recorded events the replay
//! passes over are counted as skipped.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use serde_json::Value;

use crate::answers::{Answer, Answers, Reading, Reply};
use crate::clock::{BoxFuture, Clock};
use crate::credentials::{Credential, Credentials};
use crate::events::{Envelope, Event, Stream};
use crate::exchange::RecordedExchange;
use crate::journal::Memory;
use crate::providers::{ErrorKind, ProviderId};
use crate::store::Store;
use crate::transport::{Purpose, Request};

/// A recording, read by the engine through its seams.
pub(super) struct Tape {
    recorded: Arc<[Envelope]>,
    memory: Memory,
    /// The recording holds decisions: every event produced has its place.
    whole: bool,
    skipped: AtomicUsize,
    /// The credentials as last recorded, per provider.
    known: Mutex<BTreeMap<ProviderId, Option<(String, String)>>>,
    /// Each provider's last recorded body, per kind (`true`: status page).
    bodies: Mutex<Bodies<(ProviderId, bool)>>,
}

impl Tape {
    pub(super) fn new(recorded: Arc<[Envelope]>, memory: Memory, whole: bool) -> Tape {
        Tape {
            recorded,
            memory,
            whole,
            skipped: AtomicUsize::new(0),
            known: Mutex::default(),
            bodies: Mutex::default(),
        }
    }

    /// The index in the recording of the event the engine produces next.
    pub(super) fn position(&self) -> usize {
        let memory = self.memory.lock();
        let taken = if self.whole {
            memory.events.len() + memory.held.len()
        } else {
            let recorded = memory.events.iter().filter(|e| !is_decision(&e.payload)).count();
            recorded + memory.held.iter().filter(|decision| !**decision).count()
        };
        taken + self.skipped.load(Ordering::Relaxed)
    }

    /// Takes what a recording that continues a folded base already holds
    /// where replay starts: the credentials `store` has (a provider's
    /// source is the last recorded in `prefix`, else unknown) and the
    /// bodies `prefix` recorded, which later fetches may repeat.
    pub(super) fn resume(&self, store: &Store, prefix: &[Envelope]) {
        let mut known = self.known.lock().unwrap_or_else(|poison| poison.into_inner());
        let mut bodies = self.bodies.lock().unwrap_or_else(|poison| poison.into_inner());
        let mut sources = BTreeMap::new();
        for envelope in prefix {
            match &envelope.payload {
                Event::CredentialsFound { provider, source, .. } => {
                    sources.insert(*provider, source.clone());
                }
                Event::FetchCompleted {
                    provider,
                    exchange,
                    body_repeated,
                    ..
                } => {
                    bodies.restored((*provider, false), exchange.as_deref(), *body_repeated);
                }
                Event::StatusChecked {
                    provider,
                    exchange,
                    body_repeated,
                    ..
                } => {
                    bodies.restored((*provider, true), exchange.as_deref(), *body_repeated);
                }
                _ => {}
            }
        }
        for (provider, entry) in &store.providers {
            let credential = entry.credentials.clone().map(|fingerprint| {
                let source = sources.get(provider).cloned().unwrap_or_default();
                (fingerprint, source)
            });
            known.insert(*provider, credential);
        }
    }

    /// Passes over one recorded event that no input stands for.
    pub(super) fn skip(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
    }

    /// The recorded events of the cycle under way after `start`: up to the
    /// next event that starts something new.
    fn ahead(&self, start: usize) -> impl Iterator<Item = (usize, &Envelope)> {
        self.recorded
            .iter()
            .enumerate()
            .skip(start)
            .take_while(move |(index, envelope)| *index == start || !starts(envelope))
    }

    /// The recorded answer to `request` in the cycle whose answers start at `start`.
    fn answer_to(&self, request: &Request, start: usize, taken: &mut Vec<usize>) -> Answer {
        let page = request.purpose == Purpose::StatusPage;
        let found = self.ahead(start).find(|(index, envelope)| {
            !taken.contains(index)
                && match &envelope.payload {
                    Event::FetchCompleted { provider, .. } => !page && *provider == request.provider,
                    Event::StatusChecked { provider, .. } => page && *provider == request.provider,
                    _ => false,
                }
        });
        let Some((index, envelope)) = found else {
            return Answer {
                provider: request.provider,
                purpose: request.purpose,
                reply: Reply::Failed {
                    kind: ErrorKind::Unavailable,
                    reason: "the recording has no answer for this request".to_owned(),
                },
                elapsed_ms: 0,
            };
        };
        taken.push(index);
        let (reply, elapsed_ms) = match &envelope.payload {
            Event::FetchCompleted {
                exchange,
                body_repeated,
                outcome,
                elapsed_ms,
                ..
            } => {
                let reply = match self.restored((request.provider, false), exchange.as_deref(), *body_repeated) {
                    Some(exchange) => Reply::Response(exchange),
                    None => Reply::Read(Reading::Usage(outcome.clone())),
                };
                (reply, *elapsed_ms)
            }
            Event::StatusChecked {
                indicator,
                description,
                exchange,
                body_repeated,
                ..
            } => {
                let reply = match self.restored((request.provider, true), exchange.as_deref(), *body_repeated) {
                    Some(exchange) => Reply::Response(exchange),
                    None => Reply::Read(Reading::Page {
                        indicator: indicator.clone(),
                        description: description.clone(),
                    }),
                };
                (reply, 0)
            }
            // Only answers are found above; anything else reads as no answer.
            _ => (
                Reply::Failed {
                    kind: ErrorKind::Unavailable,
                    reason: "the recording has no answer for this request".to_owned(),
                },
                0,
            ),
        };
        Answer {
            provider: request.provider,
            purpose: request.purpose,
            reply,
            elapsed_ms,
        }
    }
}

impl Tape {
    fn restored(
        &self,
        key: (ProviderId, bool),
        exchange: Option<&RecordedExchange>,
        repeated: bool,
    ) -> Option<RecordedExchange> {
        let mut bodies = self.bodies.lock().unwrap_or_else(|poison| poison.into_inner());
        bodies.restored(key, exchange, repeated)
    }
}

/// Each provider's last recorded body, per key, to give a body stored
/// once (`body_repeated`) back to the exchange that points to it: the
/// inverse of the journal's storing once. Replay's answers and `--reparse`
/// both read bodies through it.
#[derive(Debug)]
pub(super) struct Bodies<K>(BTreeMap<K, Value>);

impl<K> Default for Bodies<K> {
    fn default() -> Self {
        Bodies(BTreeMap::new())
    }
}

impl<K: Ord> Bodies<K> {
    /// A recorded exchange with its body back when it was stored once; the
    /// earlier body is the previous one recorded under `key`. `None` when
    /// there is nothing to read again (no exchange, or the body a repeat
    /// points to was dropped).
    pub(super) fn restored(
        &mut self,
        key: K,
        exchange: Option<&RecordedExchange>,
        repeated: bool,
    ) -> Option<RecordedExchange> {
        let Some(exchange) = exchange else {
            self.0.remove(&key);
            return None;
        };
        let mut exchange = exchange.clone();
        if repeated {
            exchange.response.body = self.0.get(&key)?.clone();
        } else {
            self.0.insert(key, exchange.response.body.clone());
        }
        Some(exchange)
    }
}

impl Clock for Tape {
    fn now(&self) -> Timestamp {
        let position = self.position();
        self.recorded
            .get(position)
            .or(self.recorded.last())
            .map_or(Timestamp::UNIX_EPOCH, |envelope| envelope.at)
    }

    /// Replay never waits.
    fn sleep(&self, _duration: jiff::SignedDuration) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

impl Credentials for Tape {
    fn find(&self, provider: ProviderId) -> Option<Credential> {
        let start = self.position();
        let mut known = self.known.lock().unwrap_or_else(|poison| poison.into_inner());
        let recorded = self
            .ahead(start)
            .skip(1)
            .find_map(|(_, envelope)| match &envelope.payload {
                Event::CredentialsFound {
                    provider: found,
                    fingerprint,
                    source,
                } if *found == provider => Some(Some((fingerprint.clone(), source.clone()))),
                Event::CredentialsLost { provider: lost } if *lost == provider => Some(None),
                _ => None,
            });
        if let Some(recorded) = recorded {
            known.insert(provider, recorded);
        }
        let (fingerprint, source) = known.get(&provider).cloned().flatten()?;
        Some(Credential::recorded(fingerprint, source))
    }
}

impl Answers for Tape {
    fn answer(&self, requests: Vec<Request>) -> BoxFuture<'_, Vec<Answer>> {
        let start = self.position();
        let mut taken = Vec::new();
        let answers = requests
            .iter()
            .map(|request| self.answer_to(request, start, &mut taken))
            .collect();
        Box::pin(std::future::ready(answers))
    }
}

/// Decisions, for replay's purposes: what a machine chose, fetching included.
pub(super) fn is_decision(event: &Event) -> bool {
    event.is_decision() || matches!(event, Event::FetchStarted { .. })
}

/// Whether a recorded event starts something the engine was asked to do:
/// a cycle, a refresh, settings read at start, a host event, a host
/// session (the controller's `boot`).
pub(crate) fn starts(envelope: &Envelope) -> bool {
    match (&envelope.stream, &envelope.payload) {
        (Stream::Engine, Event::ClockTicked | Event::RefreshRequested { .. } | Event::SettingsChanged { .. }) => true,
        (_, Event::HostReported { .. }) => true,
        (Stream::Controller, Event::Transitioned { from, .. }) => from == "boot",
        _ => false,
    }
}
