//! Replay that explains: what a recording says, for people. Three views,
//! all computed from the recorded events (the store's fold, the tracker
//! rules the recorded settings give), never by running the machines again:
//!
//! - [`timeline`]: local times, one line per meaningful change (state
//!   changes with their cause, readings that moved, failures with the
//!   backoff or Retry-After they led to and the next eligible time,
//!   credentials lost and found, settings), quiet cycles folded into one
//!   line with a count;
//! - [`why`]: why one provider was or was not fetched at a time, the chain
//!   of decisions that led there, and what the store showed then;
//! - [`reparse`]: every recorded body read again by today's parsers, with
//!   each reading that now differs.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::Value;

use crate::events::{Envelope, Event, Outcome, Stream};
use crate::machines::tracker::Rules;
use crate::providers::ProviderId;
use crate::settings::Settings;
use crate::store::Store;
use crate::wire::{ErrorBody, Window, rfc3339_seconds};

use super::store_at_from;
use super::tape::{Bodies, starts};

/// Local times for people: the zone given, else the machine's (`TZ` honoured).
#[derive(Debug, Clone)]
pub struct Zone(TimeZone);

impl Zone {
    /// The machine's zone (`TZ` when set).
    pub fn system() -> Zone {
        Zone(TimeZone::system())
    }

    /// A given zone.
    pub fn new(zone: TimeZone) -> Zone {
        Zone(zone)
    }

    /// `12:05` (`12:05:30` when the seconds are not zero).
    fn clock(&self, at: Timestamp) -> String {
        let zoned = at.to_zoned(self.0.clone());
        if zoned.second() == 0 && zoned.subsec_nanosecond() == 0 {
            zoned.strftime("%H:%M").to_string()
        } else {
            zoned.strftime("%H:%M:%S").to_string()
        }
    }

    /// `2026-08-22`.
    fn date(&self, at: Timestamp) -> String {
        at.to_zoned(self.0.clone()).strftime("%Y-%m-%d").to_string()
    }

    /// `2026-08-22 12:05:00`.
    fn full(&self, at: Timestamp) -> String {
        at.to_zoned(self.0.clone()).strftime("%Y-%m-%d %H:%M:%S").to_string()
    }

    /// The zone's name as people read it (`UTC`, `CEST`).
    fn name(&self, at: Timestamp) -> String {
        let name = at.to_zoned(self.0.clone()).strftime("%Z").to_string();
        if name.is_empty() { "local time".to_owned() } else { name }
    }
}

pub use crate::cli::parse_at as parse_time;

/// A duration for people: `90 s`, `3 min`.
fn span(duration: SignedDuration) -> String {
    let seconds = duration.as_secs();
    if seconds != 0 && seconds % 60 == 0 {
        format!("{} min", seconds / 60)
    } else {
        format!("{seconds} s")
    }
}

fn percent(window: &Window) -> String {
    window
        .used_ratio
        .map_or_else(|| "?".to_owned(), |used| format!("{:.1}%", used * 100.0))
}

fn cause_words(cause: &impl Serialize) -> String {
    serde_json::to_value(cause)
        .ok()
        .and_then(|value| value.as_str().map(|text| text.replace('_', " ")))
        .unwrap_or_else(|| "?".to_owned())
}

fn error_words(error: &ErrorBody) -> String {
    format!("{}: {}", error.kind.as_str(), error.message)
}

fn plural(count: u64, one: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {one}s")
    }
}

/// What the recording says of one provider so far.
#[derive(Debug, Clone, Default)]
struct Track {
    state: Option<String>,
    windows: Option<Vec<Window>>,
    credentials: Option<Option<String>>,
    fails: u32,
    blocked_until: Option<Timestamp>,
    active: Option<bool>,
    failing_since: Option<Timestamp>,
    last_attempt: Option<Timestamp>,
    error: Option<ErrorBody>,
    page: Option<String>,
    /// The last meaningful lines about this provider, oldest first.
    chain: Vec<(Timestamp, String)>,
}

impl Track {
    /// When the tracker may fetch again: after the backoff of its failures
    /// ([`Rules::delay`]), the minimum interval, and any Retry-After.
    fn next_eligible(&self, rules: &Rules) -> Option<Timestamp> {
        let last = self.last_attempt?;
        let backoff = last.checked_add(rules.delay(self.fails)).ok();
        let least = last.checked_add(rules.min_interval).ok();
        [backoff, least, self.blocked_until].into_iter().flatten().max()
    }

    /// `backoff ×3 (3 min)` for `fails` failures.
    fn backoff(&self, rules: &Rules) -> String {
        let multiplier = self.fails.saturating_add(1).min(rules.max_backoff.max(1));
        format!("backoff ×{multiplier} ({})", span(rules.delay(self.fails)))
    }
}

/// The walk over a recording: every provider's track, the rules in force,
/// and the lines of meaningful changes as they come.
struct Walk<'z> {
    zone: &'z Zone,
    settings: Settings,
    tracks: BTreeMap<ProviderId, Track>,
    selected: Option<Option<ProviderId>>,
}

/// One meaningful change: when, and what.
type Line = (Timestamp, String);

impl<'z> Walk<'z> {
    fn new(zone: &'z Zone) -> Walk<'z> {
        Walk {
            zone,
            settings: Settings::default(),
            tracks: BTreeMap::new(),
            selected: None,
        }
    }

    fn rules(&self) -> Rules {
        self.settings.rules(Rules::default())
    }

    /// Takes one event; returns the lines it makes (none when nothing
    /// meaningful changed) and whether it was a skipped or unchanged fetch.
    fn take(&mut self, envelope: &Envelope) -> (Vec<String>, Quiet) {
        let at = envelope.at;
        let rules = self.rules();
        let zone = self.zone;
        let mut lines = Vec::new();
        let mut quiet = Quiet::default();
        let provider = match envelope.stream {
            Stream::Tracker(provider) => Some(provider),
            _ => envelope.provider(),
        };
        match &envelope.payload {
            Event::SettingsChanged { patch } => {
                if let Ok(next) = self.settings.patched(patch) {
                    self.settings = next;
                }
                let keys = match patch {
                    Value::Object(keys) => keys.iter().map(|(key, value)| format!("{key} = {value}")).collect(),
                    other => vec![other.to_string()],
                };
                lines.push(format!("settings: {}", keys.join(", ")));
            }
            Event::HostReported { host } => {
                let host = serde_json::to_value(host).ok();
                let kind = host.as_ref().and_then(|host| host.get("type")).and_then(Value::as_str);
                lines.push(format!("host: {}", kind.unwrap_or("event").replace('_', " ")));
            }
            Event::RefreshRequested { provider, force } => {
                let scope = provider.map_or_else(|| "all providers".to_owned(), |provider| provider.to_string());
                lines.push(format!(
                    "refresh requested: {scope}{}",
                    if *force { " (forced)" } else { "" }
                ));
            }
            Event::ProviderSelected { provider } if self.selected != Some(*provider) => {
                self.selected = Some(*provider);
                let name = provider.map_or_else(|| "none".to_owned(), |provider| provider.to_string());
                lines.push(format!("controller: shows {name}"));
            }
            Event::Transitioned {
                from,
                to,
                cause,
                provider: about,
            } if envelope.stream == Stream::Controller => {
                if from != to {
                    let about = about.map_or_else(String::new, |about| format!(", {about}"));
                    lines.push(format!("controller: {from} → {to} ({}{about})", cause_words(cause)));
                }
            }
            other => lines.extend(alert_line(other)),
        }
        let Some(provider) = provider else {
            return (lines, quiet);
        };
        let track = self.tracks.entry(provider).or_default();
        let mut own = Vec::new();
        match &envelope.payload {
            Event::CredentialsFound {
                fingerprint, source, ..
            } => {
                if track.credentials.as_ref() != Some(&Some(fingerprint.clone())) {
                    let again = if matches!(track.credentials, Some(None)) {
                        "back"
                    } else {
                        "found"
                    };
                    own.push(format!("credentials {again} ({fingerprint}, from {source})"));
                }
                track.credentials = Some(Some(fingerprint.clone()));
            }
            Event::CredentialsLost { .. } => {
                if track.credentials != Some(None) {
                    own.push("credentials lost".to_owned());
                }
                track.credentials = Some(None);
            }
            Event::FetchStarted { .. } => {
                track.last_attempt = Some(at);
            }
            Event::FetchCompleted { outcome, .. } => match outcome {
                Outcome::Usage { windows, .. } => {
                    track.error = None;
                    match moved(track.windows.as_deref(), windows) {
                        Some(change) => own.push(change),
                        None => quiet.unchanged += 1,
                    }
                    track.windows = Some(windows.clone());
                }
                Outcome::Failed { error } => track.error = Some(error.clone()),
            },
            Event::StatusChecked {
                indicator, description, ..
            } => {
                let first_clear = track.page.is_none() && indicator == "none";
                if track.page.as_deref() != Some(indicator.as_str()) && !first_clear {
                    let description = description.as_deref().map_or_else(String::new, |d| format!(" ({d})"));
                    own.push(format!("status page {indicator}{description}"));
                }
                track.page = Some(indicator.clone());
            }
            Event::Transitioned { from, to, cause, .. } => {
                track.state = Some(to.clone());
                let words = cause_words(cause);
                if from != to {
                    own.push(format!("{from} → {to} ({words})"));
                } else if words == "throttle skipped" {
                    quiet.skipped += 1;
                } else if words.starts_with("auth") || words == "credentials changed" {
                    own.push(format!("{to} ({words})"));
                }
            }
            Event::StoreUpdated {
                fails,
                active,
                blocked_until,
                ..
            } => {
                if track.active.is_some_and(|was| was != *active) {
                    own.push(if *active { "marked active" } else { "marked inactive" }.to_owned());
                }
                track.active = Some(*active);
                let failed_again = *fails > track.fails;
                let newly_blocked = blocked_until.is_some() && *blocked_until != track.blocked_until;
                if *fails == 0 {
                    track.failing_since = None;
                } else if track.fails == 0 || track.failing_since.is_none() {
                    track.failing_since = Some(track.last_attempt.unwrap_or(at));
                }
                track.fails = *fails;
                track.blocked_until = *blocked_until;
                if failed_again || newly_blocked {
                    own.push(failure_line(track, &rules, zone));
                }
            }
            _ => {}
        }
        for line in &own {
            track.chain.push((at, line.clone()));
        }
        if track.chain.len() > 64 {
            track.chain.drain(..track.chain.len() - 64);
        }
        lines.extend(own.into_iter().map(|line| format!("{provider}: {line}")));
        (lines, quiet)
    }
}

/// An alert, whatever its event is called (`alert…`), as one line of its
/// fields: `alert: alert_fired provider anthropic, window 5h, …`.
fn alert_line(event: &Event) -> Option<String> {
    // Responses are large and never alerts: not serialized for nothing.
    if matches!(event, Event::FetchCompleted { .. } | Event::StatusChecked { .. }) {
        return None;
    }
    let Ok(Value::Object(fields)) = serde_json::to_value(event) else {
        return None;
    };
    let kind = fields.get("type").and_then(Value::as_str)?;
    if !kind.starts_with("alert") {
        return None;
    }
    let rest: Vec<String> = fields
        .iter()
        .filter(|(key, _)| key.as_str() != "type")
        .map(|(key, value)| match value {
            Value::String(text) => format!("{key} {text}"),
            other => format!("{key} {other}"),
        })
        .collect();
    Some(
        format!("alert: {} {}", kind.replace('_', " "), rest.join(", "))
            .trim_end()
            .to_owned(),
    )
}

/// `3 failures since 14:02 (unavailable: …) → backoff ×4 (4 min) → next
/// eligible 14:10; Retry-After 600 s until 14:12`.
fn failure_line(track: &Track, rules: &Rules, zone: &Zone) -> String {
    let since = track
        .failing_since
        .map_or_else(String::new, |since| format!(" since {}", zone.clock(since)));
    let error = track
        .error
        .as_ref()
        .map_or_else(String::new, |error| format!(" ({})", error_words(error)));
    let mut line = format!(
        "{}{since}{error} → {}",
        plural(u64::from(track.fails), "failure"),
        track.backoff(rules)
    );
    if let Some(next) = track.next_eligible(rules) {
        line.push_str(&format!(" → next eligible {}", zone.clock(next)));
    }
    if let Some(until) = track.blocked_until {
        let wait = track
            .error
            .as_ref()
            .and_then(|error| error.retry_after_s)
            .map_or_else(String::new, |seconds| format!(" {seconds} s"));
        line.push_str(&format!("; Retry-After{wait} until {}", zone.clock(until)));
    }
    line
}

/// How the readings moved (`5h 37.0% → 38.0%, 7d new 12.0%`), or `None`
/// when nothing did.
fn moved(before: Option<&[Window]>, now: &[Window]) -> Option<String> {
    let Some(before) = before else {
        let all: Vec<String> = now.iter().map(|w| format!("{} {}", w.id, percent(w))).collect();
        return Some(format!(
            "read {}",
            if all.is_empty() {
                "no windows".to_owned()
            } else {
                all.join(", ")
            }
        ));
    };
    let mut changes = Vec::new();
    for window in now {
        match before.iter().find(|old| old.id == window.id) {
            None => changes.push(format!("{} new {}", window.id, percent(window))),
            Some(old) if percent(old) != percent(window) => {
                let reset = if old.resets_at != window.resets_at && window.used_ratio < old.used_ratio {
                    " (window reset)"
                } else {
                    ""
                };
                changes.push(format!("{} {} → {}{reset}", window.id, percent(old), percent(window)));
            }
            Some(_) => {}
        }
    }
    for old in before {
        if !now.iter().any(|window| window.id == old.id) {
            changes.push(format!("{} gone (was {})", old.id, percent(old)));
        }
    }
    (!changes.is_empty()).then(|| changes.join(", "))
}

/// What a cycle without a meaningful change did.
#[derive(Debug, Clone, Copy, Default)]
struct Quiet {
    skipped: u64,
    unchanged: u64,
}

/// Quiet cycles in a row.
#[derive(Debug, Default)]
struct Fold {
    count: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    quiet: Quiet,
}

impl Fold {
    fn line(&self, zone: &Zone) -> Option<String> {
        let (first, last) = (self.first?, self.last?);
        let when = if zone.clock(first) == zone.clock(last) {
            zone.clock(first)
        } else {
            format!("{}–{}", zone.clock(first), zone.clock(last))
        };
        let mut what = Vec::new();
        if self.quiet.unchanged > 0 {
            what.push(format!(
                "{} unchanged",
                plural(self.quiet.unchanged, "fetch").replace("fetchs", "fetches")
            ));
        }
        if self.quiet.skipped > 0 {
            what.push(format!(
                "{} skipped",
                plural(self.quiet.skipped, "fetch").replace("fetchs", "fetches")
            ));
        }
        let what = if what.is_empty() {
            String::new()
        } else {
            format!(" ({})", what.join(", "))
        };
        Some(format!("… {} {when}{what}", plural(self.count, "quiet cycle")))
    }
}

/// The recording for people: a header with the zone, then one line per
/// meaningful change, quiet cycles folded.
pub fn timeline(events: &[Envelope], zone: &Zone) -> Vec<String> {
    let Some(first) = events.first() else {
        return vec!["timeline: the recording is empty".to_owned()];
    };
    let mut out = vec![format!(
        "timeline: {} events, times in {}",
        events.len(),
        zone.name(first.at)
    )];
    let mut walk = Walk::new(zone);
    let mut day = String::new();
    let mut fold = Fold::default();
    let mut index = 0;
    while index < events.len() {
        // One cycle: a starting event and what follows up to the next start.
        let end = events[index + 1..]
            .iter()
            .position(starts)
            .map_or(events.len(), |offset| index + 1 + offset);
        let cycle = &events[index..end];
        let mut lines: Vec<Line> = Vec::new();
        let mut quiet = Quiet::default();
        for envelope in cycle {
            let (made, calm) = walk.take(envelope);
            quiet.skipped += calm.skipped;
            quiet.unchanged += calm.unchanged;
            lines.extend(made.into_iter().map(|line| (envelope.at, line)));
        }
        let at = cycle[0].at;
        if lines.is_empty() {
            fold.count += 1;
            fold.first.get_or_insert(at);
            fold.last = Some(at);
            fold.quiet.skipped += quiet.skipped;
            fold.quiet.unchanged += quiet.unchanged;
        } else {
            if let Some(line) = fold.line(zone) {
                out.push(line);
            }
            fold = Fold::default();
            for (at, line) in lines {
                let date = zone.date(at);
                if date != day {
                    out.push(format!("— {date} —"));
                    day = date;
                }
                out.push(format!("{:<8} {line}", zone.clock(at)));
            }
        }
        index = end;
    }
    if let Some(line) = fold.line(zone) {
        out.push(line);
    }
    out
}

/// Why `provider` was or was not fetched at `time`, the chain of
/// decisions that led there, and what the store showed then.
pub fn why(events: &[Envelope], provider: ProviderId, time: Timestamp, zone: &Zone) -> Vec<String> {
    why_from(None, events, provider, time, zone)
}

/// [`why`] of a recording that continues `base` (an export's base line):
/// what the store showed is the base and the events after it.
pub fn why_from(
    base: Option<&Store>,
    events: &[Envelope],
    provider: ProviderId,
    time: Timestamp,
    zone: &Zone,
) -> Vec<String> {
    let mentioned = events.iter().any(|e| e.provider() == Some(provider));
    let mut out = vec![format!("why {provider} at {} ({}):", zone.full(time), zone.name(time))];
    if !mentioned {
        out.push(format!("  {provider} does not appear in the recording"));
        return out;
    }
    let Some(first) = events.first().filter(|first| first.at <= time) else {
        let start = events.first().map_or_else(String::new, |e| zone.full(e.at));
        out.push(format!("  the recording starts later, at {start}"));
        return out;
    };
    let upto: Vec<&Envelope> = events.iter().take_while(|e| e.at <= time).collect();
    let cycle_at = upto.last().map_or(first.at, |e| e.at);
    // The walk up to the cycle at `time`, then through it.
    let mut walk = Walk::new(zone);
    let before_cycle = upto.iter().take_while(|e| e.at < cycle_at);
    for envelope in before_cycle {
        walk.take(envelope);
    }
    let before = walk.tracks.get(&provider).cloned().unwrap_or_default();
    let rules = walk.rules();
    let in_cycle: Vec<&&Envelope> = upto.iter().filter(|e| e.at == cycle_at).collect();
    let fetched = in_cycle
        .iter()
        .any(|e| matches!(&e.payload, Event::FetchStarted { provider: p } if *p == provider));
    let skipped = in_cycle.iter().any(|e| {
        e.stream == Stream::Tracker(provider)
            && matches!(&e.payload, Event::Transitioned { cause, .. } if cause_words(cause) == "throttle skipped")
    });
    let refreshed = in_cycle.iter().any(|e| {
        matches!(&e.payload, Event::RefreshRequested { provider: asked, .. } if asked.is_none_or(|asked| asked == provider))
    });
    for envelope in &in_cycle {
        walk.take(envelope);
    }
    let after = walk.tracks.get(&provider).cloned().unwrap_or_default();
    let when = zone.clock(cycle_at);
    let cycle_note = if cycle_at == time {
        String::new()
    } else {
        " (the last cycle at or before it)".to_owned()
    };
    if fetched {
        let reason = if refreshed {
            "a refresh was requested".to_owned()
        } else if before.last_attempt.is_none() {
            "its first fetch in the recording".to_owned()
        } else if before.blocked_until.is_some_and(|until| until <= cycle_at) {
            let until = before.blocked_until.map(|until| zone.clock(until)).unwrap_or_default();
            format!("the rate limit was over (Retry-After until {until})")
        } else if before.fails > 0 {
            let next = before
                .next_eligible(&rules)
                .map(|next| zone.clock(next))
                .unwrap_or_default();
            format!(
                "the backoff was over: {} → {} → eligible {next}",
                plural(u64::from(before.fails), "failure"),
                before.backoff(&rules)
            )
        } else {
            let last = before.last_attempt.map(|last| zone.clock(last)).unwrap_or_default();
            format!("it was due: last fetch {last}, every {}", span(rules.interval))
        };
        out.push(format!("  fetched at {when}{cycle_note}: {reason}"));
        let result = match &after.error {
            Some(error) => format!("failed ({})", error_words(error)),
            None => "succeeded".to_owned(),
        };
        out.push(format!("  result: {result}"));
    } else {
        let reason = if after.credentials == Some(None) {
            "no credentials (lost)".to_owned()
        } else if after.active == Some(false) {
            "the provider is disabled".to_owned()
        } else if after.blocked_until.is_some_and(|until| until > cycle_at) {
            let until = after.blocked_until.map(|until| zone.clock(until)).unwrap_or_default();
            let wait = after
                .error
                .as_ref()
                .and_then(|error| error.retry_after_s)
                .map_or_else(String::new, |seconds| format!(" {seconds} s"));
            format!("rate limited: Retry-After{wait} until {until}")
        } else if after.fails > 0 {
            let since = after.failing_since.map(|since| zone.clock(since)).unwrap_or_default();
            let next = after
                .next_eligible(&rules)
                .map(|next| zone.clock(next))
                .unwrap_or_default();
            format!(
                "backing off: {} since {since} → {} → next eligible {next}",
                plural(u64::from(after.fails), "failure"),
                after.backoff(&rules)
            )
        } else if let Some(next) = after.next_eligible(&rules) {
            let last = after.last_attempt.map(|last| zone.clock(last)).unwrap_or_default();
            format!(
                "not due: last fetch {last}, every {} → next eligible {}",
                span(rules.interval),
                zone.clock(next)
            )
        } else {
            "no fetch was due".to_owned()
        };
        let verb = if skipped { "skipped" } else { "not fetched" };
        out.push(format!("  {verb} at {when}{cycle_note}: {reason}"));
    }
    out.push("  chain:".to_owned());
    let start = after
        .failing_since
        .map(|since| {
            after
                .chain
                .iter()
                .rposition(|(at, _)| *at < since)
                .map_or(0, |index| index + 1)
        })
        .unwrap_or(after.chain.len().saturating_sub(4));
    let chain = &after.chain[start.min(after.chain.len())..];
    let chain = &chain[chain.len().saturating_sub(8)..];
    if chain.is_empty() {
        out.push("    (no recorded change for this provider)".to_owned());
    }
    for (at, line) in chain {
        out.push(format!("    {:<8} {line}", zone.clock(*at)));
    }
    let store = store_at_from(base, events, time);
    let view = crate::status::view(&store, time, &crate::status::StatusOptions::default());
    match view.providers.iter().find(|shown| shown.id == provider) {
        Some(shown) => {
            let state = serde_json::to_value(shown.state)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_else(|| "?".to_owned());
            out.push(format!(
                "  showed: {} ({state})",
                crate::status::provider_line(shown, time, false)
            ));
            let machine = store
                .providers
                .get(&provider)
                .and_then(|entry| entry.machine_state.clone())
                .unwrap_or_else(|| "?".to_owned());
            let age = shown.age_s.map_or_else(
                || "no data yet".to_owned(),
                |age| format!("data {} old", crate::status::compact_duration(age)),
            );
            out.push(format!(
                "  store: tracker {machine}, {age}, {}",
                plural(u64::from(shown.fails), "failure")
            ));
            if let Some(error) = &shown.error {
                out.push(format!("  last error: {}", error_words(error)));
            }
        }
        None => out.push("  showed: nothing for this provider".to_owned()),
    }
    out
}

/// A reading that today's parsers read differently from the recording.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// The `fetch_completed` event's sequence number.
    pub seq: u64,
    /// Its line in the file (from 1), when known.
    pub line: Option<usize>,
    /// The provider.
    pub provider: ProviderId,
    /// When it was recorded (RFC 3339).
    pub at: String,
    /// The window that differs (`None`: the whole outcome or the plan).
    pub window: Option<String>,
    /// What was recorded.
    pub old: String,
    /// What today's parser reads.
    pub new: String,
}

/// What `--reparse` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reparsed {
    /// Bodies read again.
    pub bodies: usize,
    /// Responses that could not be read again (no exchange recorded, or a
    /// repeated body whose first copy is missing).
    pub skipped: usize,
    /// Every reading that differs.
    pub differences: Vec<Difference>,
}

fn outcome_words(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Usage { windows, .. } => {
            let windows: Vec<String> = windows.iter().map(|w| format!("{} {}", w.id, percent(w))).collect();
            format!("usage [{}]", windows.join(", "))
        }
        Outcome::Failed { error } => {
            let retry = error
                .retry_after_s
                .map_or_else(String::new, |s| format!(", retry after {s} s"));
            format!("failed {}{retry}", error_words(error))
        }
    }
}

fn window_words(window: &Window, other: &Window) -> String {
    if percent(window) != percent(other) {
        percent(window)
    } else if window.resets_at != other.resets_at {
        format!(
            "{} resets {}",
            percent(window),
            window.resets_at.as_deref().unwrap_or("never")
        )
    } else {
        format!(
            "{} {}",
            percent(window),
            serde_json::to_string(window).unwrap_or_default()
        )
    }
}

/// Reads every recorded response body again with today's parsers
/// ([`Outcome::read`]) and lists each reading that differs. `lines` gives
/// each event's line in the file, by index.
pub fn reparse(events: &[Envelope], lines: &[usize]) -> Reparsed {
    let mut found = Reparsed {
        bodies: 0,
        skipped: 0,
        differences: Vec::new(),
    };
    let mut bodies = Bodies::default();
    for (index, envelope) in events.iter().enumerate() {
        let Event::FetchCompleted {
            provider,
            exchange,
            body_repeated,
            outcome,
            ..
        } = &envelope.payload
        else {
            continue;
        };
        let Some(exchange) = bodies.restored(*provider, exchange.as_deref(), *body_repeated) else {
            found.skipped += 1;
            continue;
        };
        found.bodies += 1;
        let now = Outcome::read(&exchange, envelope.at);
        let differ = |window: Option<String>, old: String, new: String| Difference {
            seq: envelope.seq,
            line: lines.get(index).copied(),
            provider: *provider,
            at: rfc3339_seconds(envelope.at),
            window,
            old,
            new,
        };
        match (outcome, &now) {
            (
                Outcome::Usage { plan, windows },
                Outcome::Usage {
                    plan: new_plan,
                    windows: new_windows,
                },
            ) => {
                if plan != new_plan {
                    let words = |plan: &Option<String>| plan.clone().unwrap_or_else(|| "none".to_owned());
                    found
                        .differences
                        .push(differ(Some("plan".to_owned()), words(plan), words(new_plan)));
                }
                for old in windows {
                    match new_windows.iter().find(|new| new.id == old.id) {
                        None => found
                            .differences
                            .push(differ(Some(old.id.clone()), percent(old), "absent".to_owned())),
                        Some(new) if !old.same_reading(new) => found.differences.push(differ(
                            Some(old.id.clone()),
                            window_words(old, new),
                            window_words(new, old),
                        )),
                        Some(_) => {}
                    }
                }
                for new in new_windows {
                    if !windows.iter().any(|old| old.id == new.id) {
                        found
                            .differences
                            .push(differ(Some(new.id.clone()), "absent".to_owned(), percent(new)));
                    }
                }
            }
            (old, new) if old != new => found
                .differences
                .push(differ(None, outcome_words(old), outcome_words(new))),
            _ => {}
        }
    }
    found
}

/// `--reparse` for people: one line per difference, then the verdict.
pub fn reparse_text(found: &Reparsed, zone: &Zone) -> String {
    let mut out = Vec::new();
    for difference in &found.differences {
        let at = difference
            .at
            .parse::<Timestamp>()
            .map_or_else(|_| difference.at.clone(), |at| zone.full(at));
        let window = difference
            .window
            .as_ref()
            .map_or_else(String::new, |window| format!(" {window}"));
        let line = difference
            .line
            .map_or_else(String::new, |line| format!(", line {line}"));
        out.push(format!(
            "{at} {}{window}: {} → {} (seq {}{line})",
            difference.provider, difference.old, difference.new, difference.seq
        ));
    }
    let skipped = if found.skipped > 0 {
        format!(", {} not readable again", found.skipped)
    } else {
        String::new()
    };
    out.push(if found.differences.is_empty() {
        format!(
            "reparse: {} bodies read again, every reading the same{skipped}",
            found.bodies
        )
    } else {
        format!(
            "reparse: {} bodies read again, {} now differ{skipped}",
            found.bodies,
            plural(found.differences.len() as u64, "reading")
        )
    });
    out.join("\n")
}
