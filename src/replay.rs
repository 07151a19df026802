//! Replay: re-drive the inputs of a recorded log (a `log export` or an
//! incident file) through fresh machines and the current parsers, and
//! compare what they decide with what was recorded.
//!
//! The log is cut into cycles, each starting at an engine `clock_ticked`
//! or `refresh_requested`. For each cycle replay does what the engine did,
//! through the same [`Driver`]: per provider, the credentials the
//! recording found (an absent event means "unchanged") and a poll; then
//! every fetch the machines ask for is answered with the response recorded
//! in that cycle, re-parsed at its recorded clock reading. The events this
//! produces are compared one by one with the recorded ones (inputs
//! included, so a parser that now reads a response differently shows up as
//! a different `fetch_completed`). The first difference is the divergence.
//!
//! Same code gives the same events (a property test holds this). An
//! input-only file (no recorded decisions) is allowed: nothing is compared
//! and the decisions made are returned.
//!
//! The provider set is the set of providers the file mentions: the engine
//! records a credentials event for every provider it drives in its first
//! cycle.
//!
//! The controller stream (host sessions) is replayed by [`controller`]
//! against the same recording; the earlier of the two divergences is the
//! one reported.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use crate::driver::{self, Driver, Found, Item};
use crate::events::{Envelope, Event, Outcome, Stream};
use crate::exchange::RecordedExchange;
use crate::machines::tracker::Rules;
use crate::providers::ProviderId;
use crate::settings::{Settings, check_recorded};
use crate::store::Store;
use crate::wire::rfc3339_seconds;

mod controller;

/// How to replay.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Rules to use instead of the recorded settings (to try a change).
    pub rules: Option<Rules>,
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Events read.
    pub events: usize,
    /// Decisions recorded in the file.
    pub recorded_decisions: usize,
    /// The first divergence, if any.
    pub divergence: Option<Divergence>,
    /// The events replay produced, as one-line descriptions (what an
    /// input-only file led to).
    #[serde(skip)]
    pub produced: Vec<String>,
}

/// The first place where replay and recording differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Divergence {
    /// The recorded event's sequence number (the one after the last
    /// recorded event when the recording ended first).
    pub seq: u64,
    /// The stream.
    pub stream: String,
    /// The clock reading.
    pub at: String,
    /// The recorded event, described in one line (`None`: nothing recorded).
    pub expected: Option<String>,
    /// The replayed event, described in one line (`None`: nothing produced).
    pub got: Option<String>,
    /// Up to three recorded events before it.
    pub context: Vec<String>,
}

impl Report {
    /// Whether replay made exactly the recorded decisions.
    pub fn identical(&self) -> bool {
        self.divergence.is_none()
    }
}

impl Divergence {
    /// The divergence as one readable line.
    pub fn line(&self) -> String {
        let side = |event: &Option<String>| event.clone().unwrap_or_else(|| "nothing".to_owned());
        format!(
            "diverged at seq {} ({} {}): expected {}, got {}",
            self.seq,
            self.stream,
            self.at,
            side(&self.expected),
            side(&self.got)
        )
    }
}

/// Replays `events`.
pub fn replay(events: &[Envelope], options: &Options) -> Report {
    let providers = mentioned_providers(events);
    let recorded_decisions = events.iter().filter(|e| is_decision(&e.payload)).count();
    let compare = recorded_decisions > 0;
    let mut settings = Settings::default();
    let rules_for = |settings: &Settings| options.rules.unwrap_or_else(|| settings.rules(Rules::default()));
    let mut driver = Driver::new(rules_for(&settings), &providers, &Store::default());
    let mut report = Report {
        events: events.len(),
        recorded_decisions,
        divergence: None,
        produced: Vec::new(),
    };
    let replayed: Vec<&Envelope> = events.iter().filter(|e| replayed_stream(e.stream)).collect();
    let mut bodies = Bodies::default();
    let mut index = 0;
    while index < replayed.len() {
        let envelope = replayed[index];
        if let (Stream::Engine, Event::SettingsChanged { patch }) = (envelope.stream, &envelope.payload) {
            // A patch out of bounds is refused by `check` before a replay
            // starts; here it changes nothing, as a host's would.
            if let Ok(next) = settings.patched(patch) {
                settings = next;
            }
            driver.set_rules(rules_for(&settings));
            index += 1;
            continue;
        }
        let end = cycle_end(&replayed, index);
        let cycle = &replayed[index..end];
        let produced = replay_cycle(&mut driver, &mut bodies, cycle);
        report.produced.extend(
            produced
                .iter()
                .map(|(at, stream, event)| format!("{} {stream} {}", rfc3339_seconds(*at), describe(event))),
        );
        if compare {
            if let Some(divergence) = first_difference(&replayed, index, cycle, &produced) {
                report.divergence = Some(divergence);
                break;
            }
        }
        index = end;
    }
    if compare {
        if let Some(divergence) = controller::replay(events) {
            if report
                .divergence
                .as_ref()
                .is_none_or(|first| divergence.seq < first.seq)
            {
                report.divergence = Some(divergence);
            }
        }
    }
    report
}

/// The store as the recording had it at `time`: every event up to then, folded.
pub fn store_at(events: &[Envelope], time: Timestamp) -> Store {
    Store::from_events(events.iter().filter(|e| e.at <= time))
}

/// The recorded decisions, with the credential changes and responses
/// that led to them, as a timeline, one line each.
pub fn timeline(events: &[Envelope]) -> Vec<String> {
    events
        .iter()
        .filter(|e| {
            is_decision(&e.payload)
                || matches!(
                    e.payload,
                    Event::FetchCompleted { .. } | Event::CredentialsFound { .. } | Event::CredentialsLost { .. }
                )
        })
        .map(|e| format!("{} {} {}", rfc3339_seconds(e.at), e.stream, describe(&e.payload)))
        .collect()
}

/// Events replay produces and compares: the engine's and the trackers'.
fn replayed_stream(stream: Stream) -> bool {
    matches!(stream, Stream::Engine | Stream::Tracker(_))
}

/// Decisions, for replay's purposes: what a machine chose, fetching included.
fn is_decision(event: &Event) -> bool {
    event.is_decision() || matches!(event, Event::FetchStarted { .. })
}

fn is_trigger(envelope: &Envelope) -> bool {
    envelope.stream == Stream::Engine
        && matches!(
            envelope.payload,
            Event::ClockTicked | Event::RefreshRequested { .. } | Event::SettingsChanged { .. }
        )
}

/// Where the cycle starting at `start` ends (exclusive).
fn cycle_end(events: &[&Envelope], start: usize) -> usize {
    events[start + 1..]
        .iter()
        .position(|e| is_trigger(e))
        .map_or(events.len(), |offset| start + 1 + offset)
}

fn mentioned_providers(events: &[Envelope]) -> Vec<ProviderId> {
    let set: BTreeSet<ProviderId> = events
        .iter()
        .filter(|e| matches!(e.stream, Stream::Tracker(_)))
        .filter_map(Envelope::provider)
        .collect();
    set.into_iter().collect()
}

/// A recorded answer: when it was taken in, the exchange it stands for,
/// the recorded reading and how long it took.
type Response<'e> = (Timestamp, Answer<'e>, Outcome, u64);

/// What a recorded `fetch_completed` holds to read again.
enum Answer<'e> {
    /// Its exchange.
    Exchange(&'e RecordedExchange),
    /// Its exchange, whose body is the earlier one given (as bytes).
    Repeated(&'e RecordedExchange, Rc<[u8]>),
    /// Nothing (no answer, or retention dropped it): the recorded reading stands.
    Nothing,
}

/// Re-drives one recorded cycle; returns the events it produces.
fn replay_cycle<'e>(driver: &mut Driver, bodies: &mut Bodies<'e>, cycle: &[&'e Envelope]) -> Vec<Item> {
    let trigger = cycle[0];
    let at = trigger.at;
    let (scope, force) = match &trigger.payload {
        Event::RefreshRequested { provider, force } => (*provider, *force),
        _ => (None, false),
    };
    let mut credentials: BTreeMap<ProviderId, Option<Found>> = BTreeMap::new();
    let mut responses: BTreeMap<ProviderId, Response> = BTreeMap::new();
    for envelope in &cycle[1..] {
        match &envelope.payload {
            Event::CredentialsFound {
                provider,
                fingerprint,
                source,
            } => {
                let found = Found {
                    fingerprint: fingerprint.clone(),
                    source: source.clone(),
                };
                credentials.insert(*provider, Some(found));
            }
            Event::CredentialsLost { provider } => {
                credentials.insert(*provider, None);
            }
            Event::FetchCompleted {
                provider,
                exchange,
                body_repeated,
                outcome,
                elapsed_ms,
            } => {
                let exchange = bodies.resolve(*provider, exchange.as_deref(), *body_repeated);
                responses.insert(*provider, (envelope.at, exchange, outcome.clone(), *elapsed_ms));
            }
            _ => {}
        }
    }
    let mut produced: Vec<Item> = vec![(at, trigger.stream, trigger.payload.clone())];
    let mut fetches = Vec::new();
    for provider in driver.providers() {
        if scope.is_some_and(|only| only != provider) {
            continue;
        }
        let found = match credentials.remove(&provider) {
            Some(found) => found,
            None => unchanged(driver, provider),
        };
        produced.extend(driver.credentials(provider, at, found));
        let (decided, fetch) = if force {
            driver.demand(provider, at)
        } else {
            driver.poll(provider, at)
        };
        produced.extend(decided);
        if fetch {
            fetches.push(provider);
        }
    }
    for provider in fetches {
        // A fetch the recording never made has no answer: the FetchStarted
        // above already differs from the recording, and replay stops there.
        let Some((done, exchange, recorded, elapsed_ms)) = responses.remove(&provider) else {
            continue;
        };
        let outcome = match exchange {
            Answer::Exchange(exchange) => driver::read_exchange(exchange, done),
            Answer::Repeated(exchange, body) => driver::read_exchange_with_body(exchange, &body, done),
            Answer::Nothing => recorded,
        };
        // The exchange is the recorded one by construction; it is not copied
        // into the replayed event, and the comparison skips it.
        produced.extend(driver.completed(provider, done, None, outcome, elapsed_ms));
    }
    produced
}

/// Each provider's body as its last `fetch_completed` recorded it, to
/// restore the ones stored once (`body_repeated`); its bytes are made once,
/// at its first repeat.
#[derive(Default)]
struct Bodies<'e>(BTreeMap<ProviderId, Base<'e>>);

/// A stored body, and its bytes once a repeat needed them.
type Base<'e> = (&'e Value, Option<Rc<[u8]>>);

impl<'e> Bodies<'e> {
    /// What a recorded `fetch_completed` holds to read again. A repeat of a
    /// body retention dropped has nothing (its recorded reading stands).
    fn resolve(&mut self, provider: ProviderId, exchange: Option<&'e RecordedExchange>, repeated: bool) -> Answer<'e> {
        let Some(exchange) = exchange else {
            self.0.remove(&provider);
            return Answer::Nothing;
        };
        if !repeated {
            self.0.insert(provider, (&exchange.response.body, None));
            return Answer::Exchange(exchange);
        }
        let Some((body, bytes)) = self.0.get_mut(&provider) else {
            return Answer::Nothing;
        };
        let bytes = bytes.get_or_insert_with(|| crate::exchange::body_bytes(body).into());
        Answer::Repeated(exchange, Rc::clone(bytes))
    }
}

/// The credentials as the tracker knows them: a cycle without a
/// credentials event found what the previous one did.
fn unchanged(driver: &Driver, provider: ProviderId) -> Option<Found> {
    let fingerprint = driver.tracker(provider)?.credentials()?;
    Some(Found {
        fingerprint: fingerprint.to_owned(),
        source: String::new(),
    })
}

/// Compares a recorded cycle with the produced one; returns the first
/// difference.
fn first_difference(all: &[&Envelope], start: usize, recorded: &[&Envelope], produced: &[Item]) -> Option<Divergence> {
    let length = recorded.len().max(produced.len());
    for position in 0..length {
        let expected = recorded.get(position);
        let got = produced.get(position);
        let same = match (expected, got) {
            (Some(expected), Some((at, stream, event))) => {
                expected.at == *at && expected.stream == *stream && same_event(&expected.payload, event)
            }
            _ => false,
        };
        if same {
            continue;
        }
        let (seq, stream, at) = match (expected, got) {
            (Some(expected), _) => (expected.seq, expected.stream, expected.at),
            (None, Some((at, stream, _))) => (recorded.last().map_or(0, |e| e.seq + 1), *stream, *at),
            (None, None) => unreachable!("position is below the longer length"),
        };
        let end = start + position.min(recorded.len());
        let before = &all[end.saturating_sub(3)..end];
        let expected = expected.map(|e| &e.payload);
        return Some(Divergence::new(
            (seq, stream, at),
            expected,
            got.map(|(_, _, event)| event),
            before,
        ));
    }
    None
}

/// The divergence at `index` of `events`: the recorded event there (if
/// any) against the replayed one (if any).
fn divergence(events: &[Envelope], index: usize, recorded: Option<&Envelope>, got: Option<&Item>) -> Divergence {
    let after_last = events.last().map_or(0, |e| e.seq + 1);
    let (seq, stream, at) = match (recorded, got) {
        (Some(e), _) => (e.seq, e.stream, e.at),
        (None, Some((at, stream, _))) => (after_last, *stream, *at),
        (None, None) => (
            after_last,
            Stream::Controller,
            events.last().map_or_else(Timestamp::now, |e| e.at),
        ),
    };
    let before: Vec<&Envelope> = events[index.saturating_sub(3)..index].iter().collect();
    let got = got.map(|(_, _, event)| event);
    Divergence::new((seq, stream, at), recorded.map(|e| &e.payload), got, &before)
}

impl Divergence {
    fn new(
        (seq, stream, at): (u64, Stream, Timestamp),
        expected: Option<&Event>,
        got: Option<&Event>,
        before: &[&Envelope],
    ) -> Divergence {
        Divergence {
            seq,
            stream: stream.to_string(),
            at: rfc3339_seconds(at),
            expected: expected.map(describe),
            got: got.map(describe),
            context: before
                .iter()
                .map(|e| format!("seq {} {} {}", e.seq, e.stream, describe(&e.payload)))
                .collect(),
        }
    }
}

/// Whether a replayed event matches the recorded one. A replayed
/// `fetch_completed` carries no exchange (it would be the recorded one), so
/// only its outcome and timing are compared.
fn same_event(recorded: &Event, replayed: &Event) -> bool {
    match (recorded, replayed) {
        (
            Event::FetchCompleted {
                provider,
                outcome,
                elapsed_ms,
                ..
            },
            Event::FetchCompleted {
                provider: replayed_provider,
                outcome: replayed_outcome,
                elapsed_ms: replayed_elapsed,
                exchange: None,
                ..
            },
        ) => provider == replayed_provider && same_outcome(outcome, replayed_outcome) && elapsed_ms == replayed_elapsed,
        _ => recorded == replayed,
    }
}

/// Whether a replayed outcome reads as the recorded one, window by window
/// ([`crate::wire::Window::same_reading`]).
fn same_outcome(recorded: &Outcome, replayed: &Outcome) -> bool {
    match (recorded, replayed) {
        (
            Outcome::Usage { plan, windows },
            Outcome::Usage {
                plan: replayed_plan,
                windows: replayed_windows,
            },
        ) => {
            plan == replayed_plan
                && windows.len() == replayed_windows.len()
                && windows.iter().zip(replayed_windows).all(|(w, r)| w.same_reading(r))
        }
        _ => recorded == replayed,
    }
}

/// One event in one line, for divergences and timelines.
pub fn describe(event: &Event) -> String {
    match event {
        Event::ClockTicked => "clock_ticked".to_owned(),
        Event::CredentialsFound { fingerprint, .. } => format!("credentials_found {fingerprint}"),
        Event::CredentialsLost { .. } => "credentials_lost".to_owned(),
        Event::FetchStarted { .. } => "fetch_started".to_owned(),
        Event::FetchCompleted { outcome, .. } => match outcome {
            Outcome::Usage { windows, .. } => {
                let windows: Vec<String> = windows
                    .iter()
                    .map(|w| match w.used_ratio {
                        Some(used) => format!("{} {:.1}%", w.id, used * 100.0),
                        None => format!("{} ?", w.id),
                    })
                    .collect();
                format!("fetch_completed usage [{}]", windows.join(", "))
            }
            Outcome::Failed { error } => {
                let retry = error
                    .retry_after_s
                    .map_or_else(String::new, |s| format!(" retry after {s}s"));
                format!("fetch_completed {}{retry}: {}", error.kind.as_str(), error.message)
            }
        },
        Event::Transitioned {
            from,
            to,
            cause,
            provider,
        } => {
            let cause = serde_json::to_value(cause).ok();
            let cause = cause.as_ref().and_then(Value::as_str).unwrap_or("?");
            match provider {
                Some(provider) => format!("transitioned {from} → {to} ({cause}, {provider})"),
                None => format!("transitioned {from} → {to} ({cause})"),
            }
        }
        Event::StoreUpdated {
            fails,
            active,
            blocked_until,
            ..
        } => {
            let blocked = blocked_until.map_or_else(String::new, |until| {
                format!(" blocked until {}", rfc3339_seconds(until))
            });
            format!("store_updated fails {fails} active {active}{blocked}")
        }
        Event::HostReported { host } => {
            let host = serde_json::to_value(host).ok();
            let kind = host.as_ref().and_then(|host| host.get("type")).and_then(Value::as_str);
            format!("host_reported {}", kind.unwrap_or("?"))
        }
        Event::ProviderSelected { provider } => match provider {
            Some(provider) => format!("provider_selected {provider}"),
            None => "provider_selected none".to_owned(),
        },
        Event::RefreshRequested { provider, force } => {
            let scope = provider.map_or_else(|| "all".to_owned(), |provider| provider.to_string());
            format!("refresh_requested {scope}{}", if *force { " forced" } else { "" })
        }
        Event::SettingsChanged { patch } => format!("settings_changed {patch}"),
        other => serde_json::to_value(other)
            .ok()
            .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| "event".to_owned()),
    }
}

/// What the `replay` command was asked.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Show the store as it was at this time instead of comparing.
    pub at: Option<Timestamp>,
    /// Print the recorded timeline before the verdict.
    pub timeline: bool,
    /// One JSON object instead of text.
    pub json: bool,
    /// Rules to try instead of the recorded ones.
    pub options: Options,
}

/// The `replay` command's output and verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// What to print on stdout.
    pub text: String,
    /// Whether replay matched the recording (exit 0) or diverged (exit 1).
    pub identical: bool,
}

/// Why a file cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// A line is not an event.
    #[error(transparent)]
    Line(#[from] crate::events::LineError),
    /// An event holds a value out of its bounds (a setting, a time).
    #[error("log entry {seq} ({kind}): {message}")]
    OutOfBounds {
        /// The event's sequence number.
        seq: u64,
        /// The event's type.
        kind: String,
        /// What is wrong, naming the field and what it allows.
        message: String,
    },
}

/// Checks the values of recorded events that replay turns into rules
/// against the bounds a settings file must meet: the first event out of
/// bounds, by sequence number, with the field and its allowed range.
pub fn check(events: &[Envelope]) -> Result<(), ReplayError> {
    for envelope in events {
        if let Event::SettingsChanged { patch } = &envelope.payload {
            check_recorded(patch).map_err(|error| ReplayError::OutOfBounds {
                seq: envelope.seq,
                kind: "settings_changed".to_owned(),
                message: error.to_string(),
            })?;
        }
    }
    Ok(())
}

/// Runs the `replay` command (shared by `quotatrack replay` and the
/// `replay` tool) over a JSON-lines file.
pub fn command(input: impl std::io::BufRead, request: &Request) -> Result<Rendered, ReplayError> {
    let events = crate::events::read_lines(input).collect::<Result<Vec<_>, _>>()?;
    check(&events)?;
    if let Some(time) = request.at {
        let store = store_at(&events, time);
        let view = crate::status::view(&store, time, &crate::status::StatusOptions::default());
        let text = if request.json {
            serde_json::to_string(&view).unwrap_or_default()
        } else {
            crate::status::line(&view, time, None)
        };
        return Ok(Rendered { text, identical: true });
    }
    let report = replay(&events, &request.options);
    if request.json {
        let text = serde_json::json!({
            "identical": report.identical(),
            "events": report.events,
            "recorded_decisions": report.recorded_decisions,
            "divergence": report.divergence,
        });
        return Ok(Rendered {
            text: text.to_string(),
            identical: report.identical(),
        });
    }
    let mut lines = Vec::new();
    if request.timeline {
        lines.extend(timeline(&events));
    }
    match &report.divergence {
        _ if report.recorded_decisions == 0 => {
            lines.extend(report.produced.iter().cloned());
            lines.push(format!(
                "replay: {} input events, no recorded decisions; the lines above are what the machines decided",
                report.events
            ));
        }
        None => lines.push(format!(
            "replay: identical ({} events, {} recorded decisions)",
            report.events, report.recorded_decisions
        )),
        Some(divergence) => {
            lines.push(format!("replay: {}", divergence.line()));
            lines.extend(divergence.context.iter().map(|line| format!("  after {line}")));
        }
    }
    Ok(Rendered {
        text: lines.join("\n"),
        identical: report.identical(),
    })
}
