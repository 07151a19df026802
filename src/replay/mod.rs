//! Replay: run a recorded log (a `log export` or an incident file)
//! through the engine again, with today's code, and compare what it
//! records with what was recorded.
//!
//! Replay does not imitate the engine: it builds the engine itself over
//! the recording (`Tape` is its clock, credentials and answers; its
//! journal records into memory) and hands it each recorded input in turn:
//! a tick, a refresh, the settings read at a start, a host event, a host
//! session's start. Whatever the engine then records (trackers,
//! controller, status pages, settings) is compared one by one with what
//! the recording holds after that input; responses are read again by
//! today's parsers, so a parser that now reads one differently shows up as
//! a different `fetch_completed`. The first difference is the divergence.
//!
//! The same code gives the same events (property tests hold this, one over
//! real HTTP). An input-only file (no recorded decisions) is allowed:
//! nothing is compared and the decisions made are returned.

use std::collections::BTreeSet;
use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use crate::engine::{Engine, EngineError};
use crate::events::{Envelope, Event, Outcome, Stamped, Stream};
use crate::journal::Memory;
use crate::machines::tracker::Rules;
use crate::providers::ProviderId;
use crate::settings::{Settings, check_recorded};
use crate::store::Store;
use crate::wire::rfc3339_seconds;

pub mod explain;
mod tape;

pub(crate) use tape::starts;
use tape::{Tape, is_decision};

/// How to replay.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Rules to use instead of the recorded settings (to try a change).
    pub rules: Option<Rules>,
    /// The base the recording continues: the store retention folded the
    /// log's oldest events into, from an export's base line
    /// ([`crate::log::base_line`]). Replay then starts where a restarted
    /// engine would, from that store and the recording's events up to its
    /// first input after the base.
    pub base: Option<Store>,
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
    /// Why the divergence may not be a change of code: the recording
    /// starts after events it does not hold ([`folded_start`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
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

/// Replays `events`: the engine, built over the recording (`Tape`),
/// is given each recorded input in turn, and what it records is compared
/// with what follows that input in the recording.
pub fn replay(events: &[Envelope], options: &Options) -> Report {
    replay_shared(Arc::from(events), options)
}

/// [`replay`] of a recording the caller shares rather than lends: the
/// engine's outside world reads the same events the comparison does, with
/// no copy of the recording made.
pub fn replay_shared(recording: Arc<[Envelope]>, options: &Options) -> Report {
    let events = &recording[..];
    let recorded_decisions = events.iter().filter(|e| is_decision(&e.payload)).count();
    let whole = recorded_decisions > 0;
    let memory = Memory::default();
    let tape = Arc::new(Tape::new(recording.clone(), memory.clone(), whole));
    let mut builder = Engine::builder()
        .memory(memory.clone())
        .clock(tape.clone())
        .credentials(tape.clone())
        .answers(tape.clone());
    let mut settings = initial_settings(events, options.base.as_ref());
    // With a base, what comes before the first input after it is where
    // the engine starts: taken as recorded (never compared), folded into
    // the store it starts from, its settings in force.
    let prefix = options.base.as_ref().map_or(0, |base| resumed_at(events, base));
    if let Some(base) = &options.base {
        let mut store = base.clone();
        let applied = base.applied;
        for envelope in &events[..prefix] {
            if let Event::SettingsChanged {
                patch: Value::Object(keys),
            } = &envelope.payload
            {
                settings = crate::engine::recorded_settings(settings, keys);
            }
            if applied.is_none_or(|applied| envelope.seq > applied) {
                store.apply(envelope);
            }
        }
        tape.resume(&store, &events[..prefix]);
        memory.lock().events.extend(events[..prefix].iter().cloned());
        builder = builder.starting_from(store);
    }
    builder = builder.settings(settings);
    if let Some(rules) = options.rules {
        builder = builder.fixed_rules(rules);
    }
    let mut report = Report {
        events: events.len(),
        recorded_decisions,
        divergence: None,
        produced: Vec::new(),
    };
    // An engine in memory with every seam given always builds; should it
    // not, the replay says so instead of comparing anything.
    let mut engine = match builder.build() {
        Ok(engine) => engine,
        Err(error) => {
            let mut cannot = divergence(events, 0, events.first(), None);
            cannot.got = Some(format!("the engine could not start: {error}"));
            report.divergence = Some(cannot);
            return report;
        }
    };
    while report.divergence.is_none() {
        let position = tape.position();
        let Some(envelope) = events.get(position) else {
            break;
        };
        // Facts from outside that the recording's cycle took in: reported
        // again, as they were then (nothing is delivered again).
        if matches!(envelope.payload, Event::ClockTicked | Event::RefreshRequested { .. }) {
            let outside = engine.outside();
            for later in events[position + 1..].iter().take_while(|later| !starts(later)) {
                if later.payload.is_outside() {
                    outside.report(later.stream, later.payload.clone());
                }
            }
        }
        let fed = feed(&mut engine, envelope);
        let error = match fed {
            None if whole => {
                report.divergence = Some(divergence(events, position, Some(envelope), None));
                break;
            }
            None => {
                tape.skip();
                continue;
            }
            Some(result) => result.err(),
        };
        if whole {
            report.divergence = first_difference(events, position, &memory.lock().events);
        }
        if let Some(error) = error {
            let got = (envelope.at, envelope.stream, Event::ClockTicked);
            let mut found = divergence(events, position, Some(envelope), Some(&got));
            found.got = Some(format!("the engine stopped: {error}"));
            report.divergence.get_or_insert(found);
        }
        if tape.position() == position && report.divergence.is_none() {
            // The engine took nothing from this input (a host event that
            // changed nothing): the recording says otherwise.
            if whole {
                report.divergence = Some(divergence(events, position, Some(envelope), None));
            } else {
                tape.skip();
            }
        }
    }
    if let (Some(divergence), Some(start), None) = (&mut report.divergence, folded_start(events), &options.base) {
        divergence.note = Some(folded_note(events, start));
    }
    report.produced = memory.lock().events[prefix..]
        .iter()
        .map(|e| format!("{} {} {}", rfc3339_seconds(e.at), e.stream, describe(&e.payload)))
        .collect();
    report
}

/// Hands the engine the recorded input `envelope`: `None` when it is not
/// one (it was recorded as the consequence of another).
fn feed(engine: &mut Engine, envelope: &Envelope) -> Option<Result<(), String>> {
    let done = |result: Result<(), EngineError>| Some(result.map_err(|error| error.to_string()));
    if !starts(envelope) {
        return None;
    }
    match &envelope.payload {
        Event::ClockTicked => done(at_once(engine.cycle()).and_then(|cycle| cycle.map(drop))),
        Event::RefreshRequested { provider, force: false } => {
            done(at_once(engine.refresh(*provider)).and_then(|cycle| cycle.map(drop)))
        }
        Event::RefreshRequested { provider, force: true } => {
            done(at_once(engine.force_refresh(*provider)).and_then(|cycle| cycle.map(drop)))
        }
        Event::SettingsChanged { patch } => done(engine.apply_recorded_settings(patch)),
        Event::HostReported { host } => done(at_once(engine.handle(host.clone())).and_then(|told| told.map(drop))),
        Event::Transitioned { .. } => done(at_once(engine.start()).and_then(|told| told.map(drop))),
        _ => None,
    }
}

/// Runs a future of the engine to its end without a runtime: over a
/// recording every seam answers at once, so it never waits.
fn at_once<T>(future: impl Future<Output = T>) -> Result<T, EngineError> {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..1_000 {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return Ok(output);
        }
    }
    Err(EngineError::Missing("an answer at once (replay never waits)"))
}

/// The settings the recording starts under: the defaults, except for
/// keys recordings made before they existed never name. Those take what
/// such recordings ran with: the providers the recording mentions, and
/// status pages only when it holds a status page reading. A base's
/// tracked providers count as mentioned.
fn initial_settings(events: &[Envelope], base: Option<&Store>) -> Settings {
    let named = |key: &str| {
        events.iter().any(|e| match &e.payload {
            Event::SettingsChanged { patch } => patch.get(key).is_some(),
            _ => false,
        })
    };
    let mut settings = Settings::default();
    if !named("providers") {
        let mut providers: BTreeSet<ProviderId> = mentioned_providers(events).into_iter().collect();
        if let Some(base) = base {
            providers.extend(
                base.providers
                    .iter()
                    .filter(|(_, entry)| entry.active == Some(true))
                    .map(|(id, _)| *id),
            );
        }
        settings.providers = providers.into_iter().collect();
    }
    if !named("status_pages") {
        settings.status_pages = events.iter().any(|e| matches!(e.payload, Event::StatusChecked { .. }));
    }
    settings
}

/// Where replay of a recording that continues `base` starts: the index of
/// its first input (an event that starts something) after the base's last
/// event; the events before it (the `settings_changed` the fold kept, and
/// the rest of a cycle a fold of an earlier build cut: folds now cut only
/// between cycles) are where the engine resumes from.
pub fn resumed_at(events: &[Envelope], base: &Store) -> usize {
    let after = base
        .applied
        .map_or(0, |applied| events.partition_point(|e| e.seq <= applied));
    events[after..]
        .iter()
        .position(starts)
        .map_or(events.len(), |index| after + index)
}

/// The store as the recording had it at `time`: every event up to then, folded.
pub fn store_at(events: &[Envelope], time: Timestamp) -> Store {
    Store::from_events(events.iter().filter(|e| e.at <= time))
}

/// [`store_at`] of a recording that continues `base` (an export's base
/// line): the base, and the events after it up to `time`, folded.
pub fn store_at_from(base: Option<&Store>, events: &[Envelope], time: Timestamp) -> Store {
    let Some(base) = base else {
        return store_at(events, time);
    };
    let mut store = base.clone();
    for envelope in events
        .iter()
        .filter(|e| e.at <= time && base.applied.is_none_or(|applied| e.seq > applied))
    {
        store.apply(envelope);
    }
    store
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

fn mentioned_providers(events: &[Envelope]) -> Vec<ProviderId> {
    let set: BTreeSet<ProviderId> = events
        .iter()
        .filter(|e| matches!(e.stream, Stream::Tracker(_)))
        .filter_map(Envelope::provider)
        .collect();
    set.into_iter().collect()
}

/// Compares what the engine produced from `start` on with the recording;
/// returns the first difference.
fn first_difference(events: &[Envelope], start: usize, produced: &[Envelope]) -> Option<Divergence> {
    (start..produced.len()).find_map(|index| {
        let got = &produced[index];
        let expected = events.get(index);
        let same = expected.is_some_and(|expected| {
            expected.at == got.at && expected.stream == got.stream && same_event(&expected.payload, &got.payload)
        });
        (!same).then(|| {
            let got = (got.at, got.stream, got.payload.clone());
            divergence(events, index, expected, Some(&got))
        })
    })
}

/// The divergence at `index` of `events`: the recorded event there (if
/// any) against the replayed one (if any).
fn divergence(events: &[Envelope], index: usize, recorded: Option<&Envelope>, got: Option<&Stamped>) -> Divergence {
    let after_last = events.last().map_or(0, |e| e.seq + 1);
    let (seq, stream, at) = match (recorded, got) {
        (Some(e), _) => (e.seq, e.stream, e.at),
        (None, Some((at, stream, _))) => (after_last, *stream, *at),
        (None, None) => (
            after_last,
            Stream::Controller,
            events.last().map_or(Timestamp::UNIX_EPOCH, |e| e.at),
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
            note: None,
        }
    }
}

/// Where a recording's own events start when it lacks the ones before
/// them: the index of its first event other than `settings_changed`, when
/// that event's number does not follow the one before it (from 0). This is
/// an export after retention folded old events into the log's base
/// written without the base line (only the folded `settings_changed`
/// kept), or a file cut from a longer log. An export's base line
/// ([`Options::base`]) is where such a recording starts instead.
pub fn folded_start(events: &[Envelope]) -> Option<usize> {
    let first = events
        .iter()
        .position(|e| !matches!(e.payload, Event::SettingsChanged { .. }))?;
    let follows = first.checked_sub(1).map_or(0, |before| events[before].seq + 1);
    (events[first].seq > follows).then_some(first)
}

/// The note a divergence of a recording that starts at `events[start]`,
/// after events it does not hold, carries.
fn folded_note(events: &[Envelope], start: usize) -> String {
    format!(
        "the recording starts at seq {} without the events before it and without a base line (retention \
         folds old events into the log's base, which `log export` writes first since it carries one): \
         replay starts from fresh trackers and controller, without the credentials, failure counts, \
         backoff and provider those events left, so this divergence may be that rather than a change of code",
        events[start].seq
    )
}

/// Whether a replayed event matches the recorded one. The exchange of a
/// `fetch_completed` or `status_checked` is the recorded one by
/// construction (it is what replay answered with), so a fetch compares by
/// its outcome and timing and a page by its reading.
fn same_event(recorded: &Event, replayed: &Event) -> bool {
    match (recorded, replayed) {
        (
            Event::StatusChecked {
                provider,
                indicator,
                description,
                ..
            },
            Event::StatusChecked {
                provider: replayed_provider,
                indicator: replayed_indicator,
                description: replayed_description,
                ..
            },
        ) => provider == replayed_provider && indicator == replayed_indicator && description == replayed_description,
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
    /// Show the store as it was at this time instead of comparing (with
    /// `why`: the time to explain).
    pub at: Option<Timestamp>,
    /// Print the timeline for people before the verdict.
    pub timeline: bool,
    /// Explain why this provider was or was not fetched at `at`.
    pub why: Option<ProviderId>,
    /// Read every recorded body again with today's parsers.
    pub reparse: bool,
    /// One JSON object instead of text.
    pub json: bool,
    /// The zone for local times (`None`: the machine's, `TZ` honoured).
    pub zone: Option<jiff::tz::TimeZone>,
    /// Rules to try instead of the recorded ones.
    pub options: Options,
}

impl From<&crate::cli::ReplayArgs> for Request {
    /// What the `replay` arguments ask for (both binaries read them the same).
    fn from(args: &crate::cli::ReplayArgs) -> Request {
        Request {
            at: args.at,
            timeline: args.timeline,
            why: args.why,
            reparse: args.reparse,
            json: args.json,
            zone: None,
            options: Options::default(),
        }
    }
}

/// The `replay` command's output and verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// What to print on stdout.
    pub text: String,
    /// Whether replay matched the recording (exit 0) or diverged, or a
    /// reparse found a reading that differs (exit 1).
    pub identical: bool,
}

/// Why a file cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// A line is not an event.
    #[error(transparent)]
    Line(#[from] crate::events::LineError),
    /// An event holds a value out of its bounds (a setting, a time).
    #[error("line {line}: log entry {seq} ({kind}): {message}")]
    OutOfBounds {
        /// The event's line in the file, from 1 (0 when not read from a file).
        line: usize,
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
/// Each event's line is taken to be its place in `events` (a file
/// without blank lines); [`command`] knows the real ones.
pub fn check(events: &[Envelope]) -> Result<(), ReplayError> {
    let lines: Vec<usize> = (1..=events.len()).collect();
    check_numbered(events, &lines)
}

/// [`check`] with each event's line in the file, by index.
fn check_numbered(events: &[Envelope], lines: &[usize]) -> Result<(), ReplayError> {
    for (index, envelope) in events.iter().enumerate() {
        if let Event::SettingsChanged { patch } = &envelope.payload {
            check_recorded(patch).map_err(|error| ReplayError::OutOfBounds {
                line: lines.get(index).copied().unwrap_or(0),
                seq: envelope.seq,
                kind: "settings_changed".to_owned(),
                message: error.to_string(),
            })?;
        }
    }
    Ok(())
}

/// A JSON-lines file as replay reads it: its base line (if it starts
/// with one), its events, and each event's line number.
struct Numbered {
    base: Option<Store>,
    events: Vec<Envelope>,
    lines: Vec<usize>,
}

/// Reads a JSON-lines file: its base line, its events, and each event's
/// line number.
fn read_numbered(input: impl std::io::BufRead) -> Result<Numbered, ReplayError> {
    let bytes = crate::log::read_whole(input)?;
    let (base, rest, before) = crate::log::split_base(&bytes)?;
    let events = crate::events::read_lines(rest)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| crate::events::LineError {
            line: error.line + before,
            message: error.message,
        })?;
    let lines: Vec<usize> = rest
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, line)| !String::from_utf8_lossy(line).trim().is_empty())
        .map(|(index, _)| index + 1 + before)
        .collect();
    Ok(Numbered { base, events, lines })
}

/// Runs the `replay` command (shared by `quotatrack replay` and the
/// `replay` tool) over a JSON-lines file.
pub fn command(input: impl std::io::BufRead, request: &Request) -> Result<Rendered, ReplayError> {
    let Numbered { base, events, lines } = read_numbered(input)?;
    check_numbered(&events, &lines)?;
    let zone = request
        .zone
        .clone()
        .map_or_else(explain::Zone::system, explain::Zone::new);
    if request.reparse {
        let found = explain::reparse(&events, &lines);
        let identical = found.differences.is_empty();
        let text = if request.json {
            serde_json::to_string(&found).unwrap_or_default()
        } else {
            explain::reparse_text(&found, &zone)
        };
        return Ok(Rendered { text, identical });
    }
    if let (Some(provider), Some(time)) = (request.why, request.at) {
        let explained = explain::why_from(base.as_ref(), &events, provider, time, &zone);
        let text = if request.json {
            serde_json::json!({ "provider": provider, "at": rfc3339_seconds(time), "why": explained }).to_string()
        } else {
            explained.join("\n")
        };
        return Ok(Rendered { text, identical: true });
    }
    if let Some(time) = request.at {
        let store = store_at_from(base.as_ref(), &events, time);
        let view = crate::status::view(&store, time, &crate::status::StatusOptions::default());
        let text = if request.json {
            serde_json::to_string(&view).unwrap_or_default()
        } else {
            crate::status::line(&view, time, None)
        };
        return Ok(Rendered { text, identical: true });
    }
    let events: Arc<[Envelope]> = events.into();
    let options = Options {
        base,
        ..request.options.clone()
    };
    let report = replay_shared(events.clone(), &options);
    let divergence_line = report.divergence.as_ref().and_then(|divergence| {
        events
            .iter()
            .position(|e| e.seq == divergence.seq)
            .and_then(|index| lines.get(index).copied())
    });
    if request.json {
        let mut text = serde_json::json!({
            "identical": report.identical(),
            "events": report.events,
            "recorded_decisions": report.recorded_decisions,
            "divergence": report.divergence,
        });
        if let Some(line) = divergence_line {
            text["divergence_line"] = line.into();
        }
        if request.timeline {
            text["timeline"] = explain::timeline(&events, &zone).into();
        }
        return Ok(Rendered {
            text: text.to_string(),
            identical: report.identical(),
        });
    }
    let mut out = Vec::new();
    if request.timeline {
        out.extend(explain::timeline(&events, &zone));
    }
    match &report.divergence {
        _ if report.recorded_decisions == 0 => {
            out.extend(report.produced.iter().cloned());
            out.push(format!(
                "replay: {} input events, no recorded decisions; the lines above are what the machines decided",
                report.events
            ));
        }
        None => out.push(format!(
            "replay: identical ({} events, {} recorded decisions)",
            report.events, report.recorded_decisions
        )),
        Some(divergence) => {
            out.push(format!("replay: {}", divergence.line()));
            if let Some(line) = divergence_line {
                out.push(format!("  recorded at line {line} of the file"));
            }
            out.extend(divergence.context.iter().map(|line| format!("  after {line}")));
            out.extend(divergence.note.iter().map(|note| format!("  note: {note}")));
        }
    }
    Ok(Rendered {
        text: out.join("\n"),
        identical: report.identical(),
    })
}
