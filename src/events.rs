//! The events: everything the engine saw and everything it decided, as one
//! closed, versioned enum. This is a format: it is what the log stores,
//! what `log export` prints and what incident files hold, so a log written
//! today must load in every later version.
//!
//! One stored event is one flat JSON object:
//!
//! ```json
//! {"v":1,"seq":7,"at":"2026-11-23T10:00:00Z","stream":"tracker/anthropic",
//!  "type":"fetch_failed", …}
//! ```
//!
//! `v` is the format version (1, frozen), `seq` the position in the log,
//! `at` the clock reading the event was decided at, `stream` the machine
//! instance it belongs to. Names are past tense. Two families share the
//! enum: inputs (what arrived: ticks, credentials, responses, settings, host
//! events, requests) and decisions (what a machine made of them:
//! transitions with their cause, store entries, the current provider).
//!
//! Invariant: no secret enters an event. Credentials appear as a
//! fingerprint; recorded exchanges are redacted before they get here.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::exchange::RecordedExchange;
use crate::providers::{ErrorKind, ProviderId};
use crate::wire::{ErrorBody, Window};

/// The event format version this build writes and reads.
pub const VERSION: u32 = 1;

/// Sequence numbers stay below this (2^48): at a thousand events a second a
/// log would take nine thousand years to reach it, and the arithmetic on
/// sequence numbers (the next one, ranges, counts) can never overflow. An
/// import or a stored event claiming more is rejected.
pub const MAX_SEQ: u64 = 1 << 48;

/// One event in the log: where it belongs, when it was decided, and what.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The machine instance the event belongs to.
    pub stream: Stream,
    /// Position in the log, dense from 0.
    pub seq: u64,
    /// The engine's clock reading when the event was decided.
    pub at: Timestamp,
    /// What happened.
    pub payload: Event,
}

/// A machine instance: the engine itself, the controller, or the tracker of
/// one provider. Written as `engine`, `controller`, `tracker/<id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stream {
    /// The engine: ticks, settings, host events.
    Engine,
    /// The usage controller.
    Controller,
    /// The tracker machine of one provider.
    Tracker(ProviderId),
}

/// An event stamped with its clock reading and stream, before the log
/// numbers it: what the machines' decisions become and a journal records.
pub type Stamped = (Timestamp, Stream, Event);

/// Everything that can happen, version 1. Written by the derived
/// `Serialize`; read only through [`Envelope::from_json`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    // Inputs.
    /// The interval elapsed: an update cycle is due.
    ClockTicked,
    /// Credentials for a provider were found (or changed).
    CredentialsFound {
        /// The provider.
        provider: ProviderId,
        /// A short hash of the credential, enough to tell a change; never the credential.
        fingerprint: String,
        /// Where it came from (`env`, `file:~/.claude/.credentials.json`, `fixtures`).
        source: String,
    },
    /// The credentials for a provider are gone.
    CredentialsLost {
        /// The provider.
        provider: ProviderId,
    },
    /// A usage request was sent.
    FetchStarted {
        /// The provider.
        provider: ProviderId,
    },
    /// A usage request finished, with what came back and what the parser made of it.
    FetchCompleted {
        /// The provider.
        provider: ProviderId,
        /// The redacted exchange; `None` when the request never got an answer
        /// (timeout, connection refused) or when retention dropped the body.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exchange: Option<Box<RecordedExchange>>,
        /// The response body was the same as the one this provider's
        /// previous `fetch_completed` recorded, and is not stored again (the
        /// exchange's `body` is `null`; replay takes the earlier one).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        body_repeated: bool,
        /// The parse outcome.
        outcome: Outcome,
        /// How long the request took.
        elapsed_ms: u64,
    },
    /// A provider's public status page was read.
    StatusChecked {
        /// The provider.
        provider: ProviderId,
        /// `none`, `minor`, `major`, `critical` or `maintenance`, as the page says.
        indicator: String,
        /// The page's one-line description.
        description: Option<String>,
        /// The page as fetched (no secrets: a public page), so replay reads
        /// it again; `None` when no page came back, in logs written before
        /// pages were kept, or when retention dropped it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exchange: Option<Box<RecordedExchange>>,
        /// The page's body repeats the provider's previous page and is not
        /// stored again (as `fetch_completed`'s).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        body_repeated: bool,
    },
    /// Settings were loaded or patched; the patch is the changed keys only.
    SettingsChanged {
        /// A JSON object of the changed settings.
        patch: Value,
    },
    /// The host tool reported something.
    HostReported {
        /// What the host said.
        host: HostEvent,
    },
    /// A refresh was asked for (by the host, the CLI or the interval).
    RefreshRequested {
        /// One provider, or all when `None`.
        provider: Option<ProviderId>,
        /// Forced: a healthy provider is fetched once the minimum interval
        /// has passed, not only when its interval is up.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        force: bool,
    },
    /// The host asked to move to the next provider.
    CycleRequested,

    // Decisions.
    /// A machine changed state (or, for skips, decided to stay).
    Transitioned {
        /// The state it left.
        from: String,
        /// The state it entered.
        to: String,
        /// Why.
        cause: Cause,
        /// The provider a controller transition concerns (a tracker's is
        /// its stream's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider: Option<ProviderId>,
    },
    /// The tracker wrote its store entry's bookkeeping.
    StoreUpdated {
        /// The provider.
        provider: ProviderId,
        /// Consecutive failed fetches, for backoff.
        fails: u32,
        /// Whether the provider has credentials and is tracked.
        active: bool,
        /// No request before this time (a `Retry-After` or in-body reset).
        blocked_until: Option<Timestamp>,
    },
    /// The controller chose the provider it shows.
    ProviderSelected {
        /// The provider, or `None` when none is usable.
        provider: Option<ProviderId>,
    },
    /// An alert fired (`alerts.rs` decided it from the store, the alert
    /// settings and the clock). Each crossing fires once: the store
    /// remembers it until it re-arms.
    AlertFired {
        /// The provider.
        provider: ProviderId,
        /// The window, for `threshold`, `exhausted` and `refilled`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window: Option<String>,
        /// What fired.
        kind: AlertKind,
        /// The threshold crossed (1 for `exhausted`; the highest reached
        /// before the reset for `refilled`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        threshold: Option<f64>,
        /// The window's used ratio when it fired.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        used_ratio: Option<f64>,
        /// One line for people (`Claude 5h at 82% (crossed 80%)`).
        message: String,
    },

    // Inputs from outside the cycle, recorded at the start of the next one.
    /// An alert's command or webhook failed (it failed, ran past its time
    /// limit, or the webhook failed every bounded attempt). Replay does
    /// not deliver again: it records what the recording says.
    AlertDeliveryFailed {
        /// The alert's provider.
        provider: ProviderId,
        /// The alert's window, for window alerts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window: Option<String>,
        /// What fired.
        kind: AlertKind,
        /// `command` or `webhook`.
        via: String,
        /// Why, in one line (never the webhook's URL).
        reason: String,
    },
    /// A provider's windows as another tool read them, without a request:
    /// Claude Code's `rate_limits` given to `statusline claude`. Recorded
    /// from the spool that command appends to; replay takes it from the
    /// recording.
    ReadingReported {
        /// Whose windows.
        provider: ProviderId,
        /// Who read them (`claude_code`).
        source: String,
        /// When they were read.
        read_at: Timestamp,
        /// The windows, as a fetch's outcome carries them.
        windows: Vec<Window>,
    },
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A window's used ratio crossed a threshold.
    Threshold,
    /// A window is used up (a ratio of 1).
    Exhausted,
    /// A window reset after reaching the top threshold.
    Refilled,
    /// The provider needs a login.
    AuthRequired,
    /// The provider has been (or will be) rate limited longer than the setting.
    RateLimited,
    /// The last good reading is older than the setting.
    Stale,
}

impl AlertKind {
    /// Every kind, in order.
    pub const ALL: [AlertKind; 6] = [
        AlertKind::Threshold,
        AlertKind::Exhausted,
        AlertKind::Refilled,
        AlertKind::AuthRequired,
        AlertKind::RateLimited,
        AlertKind::Stale,
    ];

    /// The name, as stored and as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Threshold => "threshold",
            AlertKind::Exhausted => "exhausted",
            AlertKind::Refilled => "refilled",
            AlertKind::AuthRequired => "auth_required",
            AlertKind::RateLimited => "rate_limited",
            AlertKind::Stale => "stale",
        }
    }
}

/// What a completed fetch came to.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// The response was understood.
    Usage {
        /// The plan label, when the response names one.
        plan: Option<String>,
        /// The windows, in display order.
        windows: Vec<Window>,
    },
    /// The request failed or the response was an error.
    Failed {
        /// The classified error.
        error: ErrorBody,
    },
}

impl Outcome {
    /// What today's parser reads in a recorded exchange, at `at`.
    pub fn read(exchange: &RecordedExchange, at: Timestamp) -> Outcome {
        let provider = exchange.provider.provider();
        match exchange.response.parse(provider, at) {
            Ok(usage) => Outcome::Usage {
                plan: usage.plan,
                windows: usage.windows.iter().map(Window::from).collect(),
            },
            Err(error) => Outcome::Failed {
                error: ErrorBody::from(&error),
            },
        }
    }

    /// A fetch of `provider` that ended without a usable response, of
    /// `kind`, for `reason`.
    pub fn failed(provider: ProviderId, kind: ErrorKind, reason: &str) -> Outcome {
        Outcome::Failed {
            error: ErrorBody {
                kind,
                message: format!("{}: {reason}", provider.provider().label()),
                retry_after_s: None,
            },
        }
    }
}

/// Host events of the embedding protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HostEvent {
    /// A host session began.
    SessionStart,
    /// A user turn began.
    TurnStart,
    /// A tool call returned.
    ToolResult,
    /// A turn ended.
    TurnEnd,
    /// The host switched models; the controller may follow it to another provider.
    ModelChanged {
        /// The host's name for the model's provider (`anthropic`,
        /// `github-copilot`, `openai-codex`), when it has one.
        #[serde(default)]
        provider: Option<String>,
        /// The model id.
        model: String,
    },
    /// The host asked for a refresh now (forced: the minimum interval,
    /// backoff and rate limits still hold).
    Refresh,
    /// The host asked to show the next provider.
    CycleProvider,
    /// The host asked to change settings.
    SettingsPatch {
        /// The changed keys.
        patch: Value,
    },
    /// The engine's own refresh interval elapsed.
    Interval,
    /// The host session is ending.
    SessionShutdown,
    /// The host asks for the current provider's view (`update_current`)
    /// now; nothing is fetched and nothing is recorded.
    GetCurrent,
    /// The host asks for every provider's view (`update_all`) now; nothing
    /// is fetched and nothing is recorded.
    GetAll,
}

/// Why a machine transitioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// A fetch returned usage.
    FetchSucceeded,
    /// A fetch failed (network, server, malformed response).
    FetchFailed,
    /// The credentials disappeared.
    AuthLost,
    /// Credentials came back after being lost or rejected.
    AuthRestored,
    /// The provider rejected the credentials (401/403).
    AuthRejected,
    /// New credentials lifted a rate limit asked of the old ones.
    CredentialsChanged,
    /// Backoff: the provider is not due yet.
    ThrottleSkipped,
    /// The provider said to wait (`Retry-After` or an in-body reset).
    RateLimited,
    /// The wait the provider asked for is over.
    RateLimitExpired,
    /// The controller probed a provider while cycling.
    CycleProbed,
    /// The machine started.
    Started,
    /// Settings were loaded or patched.
    SettingsLoaded,
    /// Another process owns the data dir.
    AlreadyActive,
    /// A host session began.
    SessionStarted,
    /// A refresh was asked for.
    RefreshRequested,
    /// Cached data was fresh enough; no fetch.
    CacheHit,
    /// A fetch failed and cached data is shown instead.
    CachedFallback,
    /// No provider is usable.
    NoProvider,
    /// The provider was disabled in the settings: its tracker stopped.
    Disabled,
    /// The provider was enabled again in the settings.
    Enabled,
    /// The host session ended.
    ShutDown,
    /// The host asked for the next provider.
    CycleRequested,
    /// The current view was sent to the host.
    Emitted,
    /// A host patched the settings: they are loaded again.
    SettingsPatched,
    /// After a good fetch, the provider's status page was due: it is read.
    StatusPageDue,
}

/// Why a stored event could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A later quotatrack wrote it.
    #[error("event format v{found} is newer than this quotatrack understands (v{VERSION}); upgrade quotatrack")]
    NewerVersion {
        /// The version found.
        found: u64,
    },
    /// The bytes are not an event of any known version.
    #[error("not a valid event: {0}")]
    Invalid(String),
}

/// A line of a JSON-lines event file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LineError {
    /// The line number, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

/// Reads a JSON-lines event file (a `log export` or an incident): one event
/// per non-blank line, sequence numbers increasing. Stops at the first bad
/// line, naming it.
pub fn read_lines(input: impl std::io::BufRead) -> impl Iterator<Item = Result<Envelope, LineError>> {
    let mut next: Option<u64> = None;
    let mut failed = false;
    input.lines().enumerate().filter_map(move |(index, line)| {
        if failed {
            return None;
        }
        let fail = |message: String| LineError {
            line: index + 1,
            message,
        };
        let result = match line {
            Err(error) => Err(fail(error.to_string())),
            Ok(line) if line.trim().is_empty() => return None,
            Ok(line) => match Envelope::from_json(line.as_bytes()) {
                Err(error) => Err(fail(error.to_string())),
                Ok(envelope) if next.is_some_and(|next| envelope.seq < next) => Err(fail(format!(
                    "event {} is out of order (expected {} or later)",
                    envelope.seq,
                    next.unwrap_or(0)
                ))),
                Ok(envelope) => {
                    next = Some(envelope.seq + 1);
                    Ok(envelope)
                }
            },
        };
        failed = result.is_err();
        Some(result)
    })
}

/// Reads a file for `log import`, whole, before anything is written: every
/// non-blank line one event of this version, the first at most
/// [`MAX_SEQ`], each next one exactly one more than the one before (no gap,
/// duplicate or step back), except after `settings_changed` events alone:
/// the settings a fold kept before the events it left (see
/// `log::retention`). The first bad line is named.
pub fn read_import(input: impl std::io::BufRead) -> Result<Vec<Envelope>, LineError> {
    let mut envelopes: Vec<Envelope> = Vec::new();
    // Whether every event so far is a `settings_changed`.
    let mut only_settings = true;
    for (index, line) in input.lines().enumerate() {
        let fail = |message: String| LineError {
            line: index + 1,
            message,
        };
        let line = line.map_err(|error| fail(format!("cannot read it: {error}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let envelope = Envelope::from_json(line.as_bytes()).map_err(|error| fail(error.to_string()))?;
        if envelope.seq >= MAX_SEQ {
            return Err(fail(format!(
                "sequence number {} is out of range (a log's are below {MAX_SEQ})",
                envelope.seq
            )));
        }
        if let Some(previous) = envelopes.last().map(|last| last.seq) {
            let expected = previous + 1;
            let problem = match envelope.seq {
                seq if seq == previous => Some(format!("event {seq} is a duplicate of the line before")),
                seq if seq < previous => Some(format!(
                    "event {seq} comes after event {previous} (sequence numbers must increase by one)"
                )),
                seq if seq > expected && only_settings => None,
                seq if seq == expected + 1 => Some(format!(
                    "event {seq} follows event {previous}: event {expected} is missing"
                )),
                seq if seq > expected => Some(format!(
                    "event {seq} follows event {previous}: events {expected}–{} are missing",
                    seq - 1
                )),
                _ => None,
            };
            if let Some(problem) = problem {
                return Err(fail(problem));
            }
        }
        only_settings &= matches!(envelope.payload, Event::SettingsChanged { .. });
        envelopes.push(envelope);
    }
    Ok(envelopes)
}

/// The stored shape: the envelope's fields and the event's, in one object
/// (written only; [`Fields`] reads it).
#[derive(Serialize)]
struct Stored<E> {
    v: u32,
    seq: u64,
    at: Timestamp,
    stream: Stream,
    #[serde(flatten)]
    event: E,
}

impl Envelope {
    /// The event as one JSON object (the log's value and export's line).
    pub fn to_json(&self) -> Vec<u8> {
        let stored = Stored {
            v: VERSION,
            seq: self.seq,
            at: self.at,
            stream: self.stream,
            event: &self.payload,
        };
        serde_json::to_vec(&stored).expect("events always serialize")
    }

    /// Reads one event, telling a newer format apart from garbage.
    pub fn from_json(bytes: &[u8]) -> Result<Envelope, DecodeError> {
        match serde_json::from_slice::<Fields>(bytes) {
            Ok(flat) if flat.v == VERSION => flat.into_envelope(),
            Ok(flat) => Err(version_error(u64::from(flat.v))),
            Err(error) => {
                #[derive(Deserialize)]
                struct Version {
                    v: u64,
                }
                match serde_json::from_slice::<Version>(bytes) {
                    Ok(Version { v }) if v > u64::from(VERSION) => Err(version_error(v)),
                    _ => Err(DecodeError::Invalid(error.to_string())),
                }
            }
        }
    }

    /// The provider this event is about, from the event or its stream.
    pub fn provider(&self) -> Option<ProviderId> {
        self.payload.provider().or(match self.stream {
            Stream::Tracker(id) => Some(id),
            Stream::Engine | Stream::Controller => None,
        })
    }
}

/// The stored object read in one pass: every field any event has, by name.
/// A derived internally tagged enum under `flatten` would first buffer the
/// whole object and then read it again; the log is read a million events at
/// a time on rebuild, so the reader is written out once here instead.
#[derive(Deserialize)]
struct Fields {
    v: u32,
    seq: u64,
    at: Timestamp,
    stream: Stream,
    #[serde(rename = "type")]
    kind: TypeName,
    #[serde(default)]
    provider: Option<ProviderId>,
    #[serde(default)]
    fingerprint: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    exchange: Option<Box<RecordedExchange>>,
    #[serde(default)]
    body_repeated: bool,
    #[serde(default)]
    outcome: Option<OutcomeFields>,
    #[serde(default)]
    elapsed_ms: Option<u64>,
    #[serde(default)]
    indicator: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    patch: Option<Value>,
    #[serde(default)]
    host: Option<HostEvent>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    cause: Option<Cause>,
    #[serde(default)]
    fails: Option<u32>,
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    blocked_until: Option<Timestamp>,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    window: Option<String>,
    #[serde(default, rename = "kind")]
    alert_kind: Option<AlertKind>,
    #[serde(default)]
    via: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    used_ratio: Option<f64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    read_at: Option<Timestamp>,
    #[serde(default)]
    windows: Option<Vec<Window>>,
}

/// The `type` names of version 1.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum TypeName {
    ClockTicked,
    CredentialsFound,
    CredentialsLost,
    FetchStarted,
    FetchCompleted,
    StatusChecked,
    SettingsChanged,
    HostReported,
    RefreshRequested,
    CycleRequested,
    Transitioned,
    StoreUpdated,
    ProviderSelected,
    AlertFired,
    AlertDeliveryFailed,
    ReadingReported,
}

/// An [`Outcome`] read in one pass, like [`Fields`].
#[derive(Deserialize)]
struct OutcomeFields {
    result: OutcomeName,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    windows: Option<Vec<Window>>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum OutcomeName {
    Usage,
    Failed,
}

impl Fields {
    fn into_envelope(self) -> Result<Envelope, DecodeError> {
        fn required<T>(value: Option<T>, field: &str, kind: &str) -> Result<T, DecodeError> {
            value.ok_or_else(|| DecodeError::Invalid(format!("missing field `{field}` in a {kind} event")))
        }
        let provider = self.provider;
        let payload = match self.kind {
            TypeName::ClockTicked => Event::ClockTicked,
            TypeName::CredentialsFound => Event::CredentialsFound {
                provider: required(provider, "provider", "credentials_found")?,
                fingerprint: required(self.fingerprint, "fingerprint", "credentials_found")?,
                source: required(self.source, "source", "credentials_found")?,
            },
            TypeName::CredentialsLost => Event::CredentialsLost {
                provider: required(provider, "provider", "credentials_lost")?,
            },
            TypeName::FetchStarted => Event::FetchStarted {
                provider: required(provider, "provider", "fetch_started")?,
            },
            TypeName::FetchCompleted => {
                let outcome = required(self.outcome, "outcome", "fetch_completed")?;
                Event::FetchCompleted {
                    provider: required(provider, "provider", "fetch_completed")?,
                    exchange: self.exchange,
                    body_repeated: self.body_repeated,
                    outcome: match outcome.result {
                        OutcomeName::Usage => Outcome::Usage {
                            plan: outcome.plan,
                            windows: required(outcome.windows, "windows", "usage outcome")?,
                        },
                        OutcomeName::Failed => Outcome::Failed {
                            error: required(outcome.error, "error", "failed outcome")?,
                        },
                    },
                    elapsed_ms: required(self.elapsed_ms, "elapsed_ms", "fetch_completed")?,
                }
            }
            TypeName::StatusChecked => Event::StatusChecked {
                provider: required(provider, "provider", "status_checked")?,
                indicator: required(self.indicator, "indicator", "status_checked")?,
                description: self.description,
                exchange: self.exchange,
                body_repeated: self.body_repeated,
            },
            TypeName::SettingsChanged => Event::SettingsChanged {
                patch: required(self.patch, "patch", "settings_changed")?,
            },
            TypeName::HostReported => Event::HostReported {
                host: required(self.host, "host", "host_reported")?,
            },
            TypeName::RefreshRequested => Event::RefreshRequested {
                provider,
                force: self.force,
            },
            TypeName::CycleRequested => Event::CycleRequested,
            TypeName::Transitioned => Event::Transitioned {
                from: required(self.from, "from", "transitioned")?,
                to: required(self.to, "to", "transitioned")?,
                cause: required(self.cause, "cause", "transitioned")?,
                provider,
            },
            TypeName::StoreUpdated => Event::StoreUpdated {
                provider: required(provider, "provider", "store_updated")?,
                fails: required(self.fails, "fails", "store_updated")?,
                active: required(self.active, "active", "store_updated")?,
                blocked_until: self.blocked_until,
            },
            TypeName::ProviderSelected => Event::ProviderSelected { provider },
            TypeName::AlertFired => Event::AlertFired {
                provider: required(provider, "provider", "alert_fired")?,
                window: self.window,
                kind: required(self.alert_kind, "kind", "alert_fired")?,
                threshold: self.threshold,
                used_ratio: self.used_ratio,
                message: required(self.message, "message", "alert_fired")?,
            },
            TypeName::AlertDeliveryFailed => Event::AlertDeliveryFailed {
                provider: required(provider, "provider", "alert_delivery_failed")?,
                window: self.window,
                kind: required(self.alert_kind, "kind", "alert_delivery_failed")?,
                via: required(self.via, "via", "alert_delivery_failed")?,
                reason: required(self.reason, "reason", "alert_delivery_failed")?,
            },
            TypeName::ReadingReported => Event::ReadingReported {
                provider: required(provider, "provider", "reading_reported")?,
                source: required(self.source, "source", "reading_reported")?,
                read_at: required(self.read_at, "read_at", "reading_reported")?,
                windows: required(self.windows, "windows", "reading_reported")?,
            },
        };
        Ok(Envelope {
            stream: self.stream,
            seq: self.seq,
            at: self.at,
            payload,
        })
    }
}

fn version_error(found: u64) -> DecodeError {
    if found > u64::from(VERSION) {
        DecodeError::NewerVersion { found }
    } else {
        DecodeError::Invalid(format!("unknown event format v{found}"))
    }
}

impl Event {
    /// The `type` name, as stored.
    pub fn name(&self) -> &'static str {
        match self {
            Event::ClockTicked => "clock_ticked",
            Event::CredentialsFound { .. } => "credentials_found",
            Event::CredentialsLost { .. } => "credentials_lost",
            Event::FetchStarted { .. } => "fetch_started",
            Event::FetchCompleted { .. } => "fetch_completed",
            Event::StatusChecked { .. } => "status_checked",
            Event::SettingsChanged { .. } => "settings_changed",
            Event::HostReported { .. } => "host_reported",
            Event::RefreshRequested { .. } => "refresh_requested",
            Event::CycleRequested => "cycle_requested",
            Event::Transitioned { .. } => "transitioned",
            Event::StoreUpdated { .. } => "store_updated",
            Event::ProviderSelected { .. } => "provider_selected",
            Event::AlertFired { .. } => "alert_fired",
            Event::AlertDeliveryFailed { .. } => "alert_delivery_failed",
            Event::ReadingReported { .. } => "reading_reported",
        }
    }

    /// Whether a machine decided this (rather than it arriving from outside).
    pub fn is_decision(&self) -> bool {
        matches!(
            self,
            Event::Transitioned { .. }
                | Event::StoreUpdated { .. }
                | Event::ProviderSelected { .. }
                | Event::AlertFired { .. }
        )
    }

    /// Whether the event is a fact from outside the cycle (a failed alert
    /// delivery), recorded at the start of the next cycle, which replay
    /// hands the engine again instead of making it happen.
    pub fn is_outside(&self) -> bool {
        matches!(self, Event::AlertDeliveryFailed { .. } | Event::ReadingReported { .. })
    }

    /// The provider named in the event, if any.
    pub fn provider(&self) -> Option<ProviderId> {
        match self {
            Event::CredentialsFound { provider, .. }
            | Event::CredentialsLost { provider }
            | Event::FetchStarted { provider }
            | Event::FetchCompleted { provider, .. }
            | Event::StatusChecked { provider, .. }
            | Event::StoreUpdated { provider, .. }
            | Event::AlertFired { provider, .. }
            | Event::AlertDeliveryFailed { provider, .. }
            | Event::ReadingReported { provider, .. } => Some(*provider),
            Event::RefreshRequested { provider, .. }
            | Event::ProviderSelected { provider }
            | Event::Transitioned { provider, .. } => *provider,
            Event::ClockTicked | Event::SettingsChanged { .. } | Event::HostReported { .. } | Event::CycleRequested => {
                None
            }
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stream::Engine => f.write_str("engine"),
            Stream::Controller => f.write_str("controller"),
            Stream::Tracker(id) => write!(f, "tracker/{id}"),
        }
    }
}

impl FromStr for Stream {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "engine" => Ok(Stream::Engine),
            "controller" => Ok(Stream::Controller),
            _ => s
                .strip_prefix("tracker/")
                .and_then(|id| id.parse().ok())
                .map(Stream::Tracker)
                .ok_or_else(|| format!("unknown stream {s:?}")),
        }
    }
}

impl Serialize for Stream {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Stream {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// Reads the name where it is (every event has one: a rebuild
        /// reads a million) rather than into a `String` first.
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = Stream;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a stream name")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Stream, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Name)
    }
}
