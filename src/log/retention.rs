//! Retention that runs itself, in bounded steps: fetch bodies older than
//! `bodies` are dropped (the fetch keeps its parse outcome), events older
//! than `events` are folded into the log's *base* (a checkpoint of the
//! store as of the last removed event, under its own key) and removed, and
//! format-1 entries are converted to frames on the way.
//!
//! The log is walked from its start one *unit* at a time: a keyframe with
//! the deltas compressed against it, or a run of format-1 entries. A unit
//! is rewritten whole in one sled batch, so a crash leaves it as it was or
//! as it becomes, never half. Folding writes (and flushes) the base before
//! the batch that removes the unit; a unit whose events the base already
//! covers (a crash in between) is only removed. A step stops after
//! [`STEP_BUDGET`] events, so the engine can run one between cycles.
//!
//! A pass ends past the cuts: every complete unit newer than them (not the
//! one appends still add deltas to) is rewritten as one frame, events
//! unchanged. A cycle's own frame pays a header and a zstd frame of its
//! own; one compression over the unit stores the same events in about a
//! quarter of the bytes, and sled holds one value where it held dozens.
//!
//! A fetch whose body repeats the previous one stores no body
//! (`body_repeated`). Dropping a body would leave the next fetch of the
//! same provider pointing at nothing, so that fetch gets the body written
//! into it in the same batch when it is kept (in this unit or the next).

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use super::{BULK_FRAME, Log, LogError, Stored, frame, guard, key_seq, line_seq_at};
use crate::events::{Envelope, Event};
use crate::providers::ProviderId;
use crate::store::Store;

/// The most events one step reads or rewrites (about 10 ms of work in a
/// release build on a small machine; a unit is at most 1,024 events, and a
/// unit passed over on its headers alone counts as one).
pub const STEP_BUDGET: usize = 1_024;
/// How many units after a rewritten one are searched for the next fetch of
/// a provider whose body was dropped (a unit may hold no fetch at all).
const CARRY_UNITS: usize = 8;
/// The most events of one cold frame (a unit is at most 1,024 events).
const COLD_FRAME: usize = 1_024;

/// What to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Fetch bodies are kept this long; `None` keeps them forever.
    pub bodies: Option<SignedDuration>,
    /// Events are kept this long; `None` keeps them forever.
    pub events: Option<SignedDuration>,
}

impl Retention {
    /// The retention of the settings' `retention.bodies_days` and
    /// `retention.events_days`.
    pub fn days(bodies_days: u32, events_days: u32) -> Retention {
        Retention {
            bodies: Some(SignedDuration::from_hours(24 * i64::from(bodies_days))),
            events: Some(SignedDuration::from_hours(24 * i64::from(events_days))),
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Step {
    /// Whether the pass is complete (the next step starts a new one).
    pub done: bool,
    /// Fetches that lost their body.
    pub shortened: u64,
    /// Events folded into the base and removed.
    pub folded: u64,
    /// Format-1 entries converted to frames.
    pub converted: u64,
    /// Whether a block of the readings record was written.
    pub indexed: bool,
    /// Units newer than the cuts rewritten as one frame.
    pub regrouped: u64,
}

/// Where a pass goes on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor {
    next: u64,
    /// Where the last pass ended, to go on from once nothing folds.
    jump: Option<u64>,
    /// Whether the pass is past the cuts, regrouping units.
    regroup: bool,
    /// The last unit the pass trimmed or passed over: where the next pass
    /// starts once this one reaches the cuts (it may straddle them).
    previous: Option<u64>,
}

/// The base's stored shape: a checkpoint ([`super::Checkpoint`], which
/// every reader of the base reads, passing over the extra field) that
/// says it is the base. The salvage scan finds every copy of either
/// checkpoint in sled's raw files without their key; this is how it tells
/// a base from the checkpoint, so that a folded log sled cannot open is
/// still read as folded ([`super::salvage::Salvage::base`]).
#[derive(serde::Serialize)]
struct BaseCheckpoint<'a> {
    v: u32,
    store: &'a Store,
    base: bool,
}

impl Log {
    /// Stores `store` as the log's base (the store as of the last event a
    /// fold removed), marked as the base, and flushes.
    pub(crate) fn put_base(&self, store: &Store) -> Result<(), LogError> {
        let json = serde_json::to_vec(&BaseCheckpoint {
            v: crate::events::VERSION,
            store,
            base: true,
        })
        .map_err(|error| self.storage_message(error.to_string()))?;
        let value = super::pack_checkpoint(&json).unwrap_or_else(|| super::seal(&json));
        guard(&self.dir, || self.checkpoints.insert(super::BASE_KEY, value))?;
        self.flush()
    }
}

/// Where the cycle a unit ends in ends ([`Log::cycle_after`]).
enum After {
    /// With the unit: the event after it starts a cycle (or no cycle
    /// start comes within [`frame::MAX_EVENTS`] events).
    Ends,
    /// In the last of these following units (with their events), which
    /// holds the next cycle start.
    Goes(Vec<(Unit, Frames)>),
    /// Nowhere yet: no cycle starts after the unit in the log.
    Open,
}

/// A keyframe and its deltas, or a run of format-1 entries.
struct Unit {
    keys: Vec<u64>,
    values: Vec<sled::IVec>,
    /// Format-1 entries (one event each).
    v1: bool,
    first_at: i64,
    last_at: i64,
    exchanges: bool,
    /// Settings a fold kept ([`frame::FLAG_KEPT`]): never folded again.
    kept: bool,
}

/// A unit's events, frame by frame.
type Frames = Vec<Vec<(Envelope, Vec<u8>)>>;
/// A unit's stored lines, frame by frame.
type Lines = Vec<Vec<Stored>>;

impl Log {
    /// One bounded step of retention at `now` (at most [`STEP_BUDGET`]
    /// events read or rewritten). Call it until `done` at start, then
    /// again periodically; any number of calls, in any state a crash left,
    /// gives the same log. On a damaged log nothing is written:
    /// [`LogError::Damaged`].
    pub fn retain_step(&mut self, now: Timestamp, retention: &Retention) -> Result<Step, LogError> {
        self.retain_step_within(now, retention, STEP_BUDGET)
    }

    /// [`Log::retain_step`] with another budget of events per step (at
    /// least one unit is always done).
    pub fn retain_step_within(
        &mut self,
        now: Timestamp,
        retention: &Retention,
        budget: usize,
    ) -> Result<Step, LogError> {
        let cut =
            |keep: Option<SignedDuration>| keep.map(|keep| now.checked_sub(keep).unwrap_or(Timestamp::MIN).as_second());
        let body_cut = cut(retention.bodies);
        let mut event_cut = cut(retention.events);
        let mut step = Step::default();
        // The readings record first: a step writes at most one block.
        if self.index_readings(None)? {
            step.indexed = true;
            return Ok(step);
        }
        let mut spent = 0;
        // A new pass starts at the log's start (folding happens there) and
        // goes on where the last pass ended: the units in between had their
        // bodies dropped already.
        let (mut from, mut jump, mut previous) = match self.retention.take() {
            Some(cursor) if cursor.regroup => return self.regroup_from(cursor.next, 0, budget, step),
            Some(cursor) => (cursor.next, cursor.jump, cursor.previous),
            None => (0, self.frontier, None),
        };
        loop {
            if spent >= budget.max(1) {
                self.retention = Some(Cursor {
                    next: from,
                    jump,
                    regroup: false,
                    previous,
                });
                return Ok(step);
            }
            let Some(unit) = self.unit_at(from)? else {
                self.frontier = None;
                step.done = true;
                return Ok(step);
            };
            if unit.kept {
                // Settings a fold kept, before the base: passed over, and
                // the pass goes on folding after them (no jump yet).
                spent += 1;
                from = unit.keys.last().map_or(u64::MAX, |key| key + 1);
                continue;
            }
            let folds = event_cut.is_some_and(|cut| unit.last_at < cut);
            if let Some(to) = jump.take()
                && !folds
                && !unit.v1
                && to > from
            {
                from = to;
                continue;
            }
            let next = unit.keys.last().map_or(u64::MAX, |key| key + 1);
            if !unit.v1 {
                let trim = body_cut.is_some_and(|cut| unit.exchanges && unit.first_at < cut);
                let fold = folds;
                if !trim && !fold {
                    let newer = body_cut.is_none_or(|cut| unit.first_at >= cut)
                        && event_cut.is_none_or(|cut| unit.first_at >= cut);
                    if newer {
                        // The unit before may straddle the cut: the next
                        // pass starts there.
                        self.frontier = Some(previous.unwrap_or(from));
                        let from = from.max(self.regrouped.unwrap_or(0));
                        return self.regroup_from(from, spent, budget, step);
                    }
                    // Headers only: a unit passed over costs one.
                    spent += 1;
                    previous = Some(unit.keys[0]);
                    from = next;
                    continue;
                }
            }
            if !unit.v1 && event_cut.is_none_or(|cut| unit.last_at >= cut) {
                let lines = self.unit_lines(&unit)?;
                let events: usize = lines.iter().map(Vec::len).sum();
                if let Some((shortened, converted)) = self.trim_lines(&unit, lines, body_cut)? {
                    spent += events;
                    step.shortened += shortened;
                    step.converted += converted;
                    previous = Some(unit.keys[0]);
                    from = next;
                    continue;
                }
            }
            let frames = self.unit_events(&unit)?;
            let events: usize = frames.iter().map(Vec::len).sum();
            spent += events;
            let last_at = frames
                .iter()
                .flatten()
                .last()
                .map_or(unit.last_at, |(e, _)| e.at.as_second());
            let mut fold = event_cut.is_some_and(|cut| last_at < cut);
            if fold {
                // A fold never cuts a cycle: a unit that ends inside one is
                // cut again at the cycle's start and end (events
                // unchanged), and the pass goes on from the same key.
                let last_start = frames
                    .iter()
                    .flatten()
                    .enumerate()
                    .filter(|(_, (envelope, _))| crate::replay::starts(envelope))
                    .map(|(at, _)| at)
                    .last();
                let last = frames.iter().flatten().last().map_or(0, |(envelope, _)| envelope.seq);
                match self.cycle_after(&unit, events, last)? {
                    After::Ends => {}
                    After::Goes(following) => {
                        self.realign(&unit, frames, following)?;
                        continue;
                    }
                    // The log's last cycle, still open: what comes before
                    // it may fold, it never does (nor anything after it
                    // in this pass).
                    After::Open if last_start.is_some_and(|at| at > 0) => {
                        self.realign(&unit, frames, Vec::new())?;
                        continue;
                    }
                    After::Open if last_start.is_some() => {
                        fold = false;
                        event_cut = None;
                    }
                    // No cycle in the unit to cut.
                    After::Open => {}
                }
            }
            if fold {
                step.folded += self.fold_unit(&unit, frames)?;
            } else {
                let (shortened, converted) = self.trim_unit(&unit, frames, body_cut)?;
                step.shortened += shortened;
                step.converted += converted;
                previous = Some(unit.keys[0]);
            }
            from = next;
        }
    }

    /// The end of a pass: the complete units from `from` on, newer than
    /// the cuts, each become one frame (see [`Log::regroup_unit`]); the
    /// unit appends still add deltas to is left as it is. Units already one
    /// frame are passed over on their headers, and the next pass starts
    /// where this one ended.
    fn regroup_from(
        &mut self,
        mut from: u64,
        mut spent: usize,
        budget: usize,
        mut step: Step,
    ) -> Result<Step, LogError> {
        loop {
            if spent >= budget.max(1) {
                self.retention = Some(Cursor {
                    next: from,
                    jump: None,
                    regroup: true,
                    previous: None,
                });
                return Ok(step);
            }
            let Some(unit) = self.unit_at(from)? else {
                break;
            };
            if self.writer.as_ref().is_some_and(|writer| writer.key == unit.keys[0]) {
                break;
            }
            let next = unit.keys.last().map_or(u64::MAX, |key| key + 1);
            if unit.v1 || unit.kept || unit.keys.len() < 2 {
                // Format-1 entries are converted when the pass reaches them.
                spent += 1;
            } else {
                let lines: Vec<Stored> = self.unit_lines(&unit)?.into_iter().flatten().collect();
                spent += lines.len();
                self.regroup_unit(&unit, lines)?;
                step.regrouped += 1;
            }
            from = next;
        }
        self.regrouped = Some(from);
        step.done = true;
        Ok(step)
    }

    /// Rewrites a complete unit as one frame (or a keyframe and a delta,
    /// past [`COLD_FRAME`] events), in one batch, events unchanged. Frames
    /// of a cycle each carry a header and a zstd frame of their own; one
    /// compression over the unit's events stores them in about a quarter
    /// of the bytes, and sled then holds one value where it held dozens.
    fn regroup_unit(&mut self, unit: &Unit, lines: Vec<Stored>) -> Result<(), LogError> {
        let mut batch = sled::Batch::default();
        for key in &unit.keys {
            batch.remove(&key.to_be_bytes());
        }
        self.put_stored(unit.keys[0], &[lines], Some(COLD_FRAME), &mut batch)?;
        self.apply(batch)
    }

    /// The events of a unit as their stored lines, without reading them
    /// as events (most of the cost of a rewrite that changes no event):
    /// each line's number and clock reading come from the start every
    /// stored line has, whether a fetch holds its exchange from the few
    /// fields after it ([`line_exchange`]). A unit of format-1 entries, or
    /// with a line that does not start as this build writes them, is read
    /// as events.
    fn unit_lines(&self, unit: &Unit) -> Result<Vec<Vec<Stored>>, LogError> {
        let as_events = |log: &Log| -> Result<Vec<Vec<Stored>>, LogError> {
            Ok(log
                .unit_events(unit)?
                .into_iter()
                .map(|frame_events| {
                    frame_events
                        .into_iter()
                        .map(|(envelope, json)| Stored::with_json(&envelope, json))
                        .collect()
                })
                .collect())
        };
        if unit.v1 {
            return as_events(self);
        }
        let mut keyframe = None;
        let mut lines = Vec::new();
        for (seq, value) in unit.keys.iter().zip(&unit.values) {
            let (header, frame_lines) = super::frame_lines(*seq, value, &mut keyframe, |base| {
                match guard(&self.dir, || self.events.get(base.to_be_bytes())) {
                    Ok(Some(value)) => Ok(value.to_vec()),
                    _ => Err(format!("its keyframe {base} is unreadable")),
                }
            })
            .map_err(|reason| self.damaged(format!("event {seq} is unreadable: {reason}")))?;
            let exchanges = header.flags & frame::FLAG_EXCHANGES != 0;
            let mut group = Vec::with_capacity(frame_lines.len());
            for (index, json) in frame_lines.into_iter().enumerate() {
                let seq = header.first + index as u64;
                let Some(at) = line_seq_at(seq, &json) else {
                    return as_events(self);
                };
                group.push(Stored {
                    seq,
                    at,
                    kept: header.flags & frame::FLAG_KEPT != 0,
                    exchange: exchanges && line_exchange(&json),
                    json,
                });
            }
            lines.push(group);
        }
        Ok(lines)
    }

    /// [`Log::trim_unit`] over a unit's stored lines: only a fetch that
    /// keeps its body but repeated a dropped one is read as an event; an
    /// old fetch loses its exchange (and `body_repeated`) from its line,
    /// which gives the bytes the event without them serializes to. `None`
    /// when a fetch's line is not of the shape this build writes (the
    /// caller reads the unit as events); nothing is written then.
    fn trim_lines(
        &mut self,
        unit: &Unit,
        mut frames: Vec<Vec<Stored>>,
        body_cut: Option<i64>,
    ) -> Result<Option<(u64, u64)>, LogError> {
        let mut dropped: BTreeMap<ProviderId, Body> = BTreeMap::new();
        let mut shortened = 0;
        let mut changed = vec![false; frames.len()];
        for (index, group) in frames.iter_mut().enumerate() {
            for item in group.iter_mut() {
                let fetch = match fetch_line(&item.json) {
                    Some(Ok(fetch)) => fetch,
                    Some(Err(())) => return Ok(None),
                    None => continue,
                };
                let Some(exchange) = fetch.exchange.clone() else {
                    dropped.remove(&fetch.provider);
                    continue;
                };
                if body_cut.is_some_and(|cut| item.at < cut) {
                    if fetch.repeated.is_none() {
                        dropped.insert(fetch.provider, Body::Line(item.json.clone()));
                    }
                    let mut json = Vec::with_capacity(item.json.len());
                    json.extend_from_slice(&item.json[..exchange.start]);
                    let rest = fetch.repeated.map_or(exchange.end, |repeated| repeated.end);
                    json.extend_from_slice(&item.json[rest..]);
                    item.json = json;
                    item.exchange = false;
                    shortened += 1;
                    changed[index] = true;
                } else if let Some(body) = dropped.remove(&fetch.provider)
                    && fetch.repeated.is_some()
                {
                    let Ok(mut envelope) = Envelope::from_json(&item.json) else {
                        return Ok(None);
                    };
                    let Event::FetchCompleted {
                        exchange: Some(held),
                        body_repeated,
                        ..
                    } = &mut envelope.payload
                    else {
                        return Ok(None);
                    };
                    held.response.body = self.body(body)?;
                    *body_repeated = false;
                    item.json = envelope.to_json();
                    changed[index] = true;
                }
            }
        }
        if !changed.iter().any(|c| *c) {
            return Ok(Some((0, 0)));
        }
        // A unit all older than the body cut is cold (see `trim_unit`).
        let cold = body_cut.is_some_and(|cut| frames.iter().flatten().all(|item| item.at < cut));
        let regroup = if cold {
            frames = vec![frames.into_iter().flatten().collect()];
            Some(COLD_FRAME)
        } else {
            None
        };
        let mut batch = sled::Batch::default();
        let next = self.carry_bodies(unit, dropped)?;
        if regroup.is_some() {
            for key in &unit.keys {
                batch.remove(&key.to_be_bytes());
            }
        }
        self.put_stored(unit.keys[0], &frames, regroup, &mut batch)?;
        for (key, frames) in next {
            self.put_stored(key, &frames, None, &mut batch)?;
        }
        self.apply(batch)?;
        self.flush()?;
        Ok(Some((shortened, 0)))
    }

    /// The body a dropped fetch carries along its chain of repeats.
    fn body(&self, body: Body) -> Result<Value, LogError> {
        match body {
            Body::Value(value) => Ok(value),
            Body::Line(line) => match Envelope::from_json(&line).map(|envelope| envelope.payload) {
                Ok(Event::FetchCompleted {
                    exchange: Some(exchange),
                    ..
                }) => Ok(exchange.response.body),
                _ => Err(self.damaged("a fetch whose body was dropped is unreadable".to_owned())),
            },
        }
    }

    /// The unit starting at the first key from `from` on.
    fn unit_at(&self, from: u64) -> Result<Option<Unit>, LogError> {
        let mut iter = guard(&self.dir, || Ok(self.events.range(from.to_be_bytes()..)))?;
        let mut unit: Option<Unit> = None;
        loop {
            let item = guard(&self.dir, || iter.next().transpose())?;
            let Some((key, value)) = item else { break };
            let Some(seq) = key_seq(&key) else {
                return Err(self.damaged(format!("a key of {} bytes, not 8", key.len())));
            };
            let header = frame::parse(&value).ok();
            match (&mut unit, header) {
                (None, Some((header, _, _))) => {
                    let alone = !header.is_keyframe();
                    unit = Some(Unit {
                        keys: vec![seq],
                        values: vec![value],
                        v1: false,
                        first_at: header.first_at,
                        last_at: header.last_at,
                        exchanges: header.flags & frame::FLAG_EXCHANGES != 0,
                        kept: header.flags & frame::FLAG_KEPT != 0,
                    });
                    if alone {
                        break;
                    }
                }
                (None, None) => {
                    let v1 = !frame::is_frame(&value);
                    unit = Some(Unit {
                        keys: vec![seq],
                        values: vec![value],
                        v1,
                        first_at: i64::MIN,
                        last_at: i64::MIN,
                        exchanges: true,
                        kept: false,
                    });
                    if !v1 {
                        break;
                    }
                }
                (Some(current), Some((header, _, _))) if !current.v1 && header.base == current.keys[0] => {
                    current.keys.push(seq);
                    current.values.push(value);
                    current.last_at = header.last_at;
                    current.exchanges |= header.flags & frame::FLAG_EXCHANGES != 0;
                }
                (Some(current), None) if current.v1 && !frame::is_frame(&value) && current.keys.len() < BULK_FRAME => {
                    current.keys.push(seq);
                    current.values.push(value);
                }
                _ => break,
            }
        }
        Ok(unit)
    }

    /// The events of a unit, frame by frame; an unreadable one is damage.
    fn unit_events(&self, unit: &Unit) -> Result<Frames, LogError> {
        let mut keyframe = None;
        let mut frames = Vec::new();
        for (seq, value) in unit.keys.iter().zip(&unit.values) {
            let read = if unit.v1 {
                super::decode(*seq, value)
                    .map(|event| vec![event])
                    .map_err(|error| error.to_string())
            } else {
                super::frame_events(*seq, value, &mut keyframe, |base| {
                    match guard(&self.dir, || self.events.get(base.to_be_bytes())) {
                        Ok(Some(value)) => Ok(value.to_vec()),
                        _ => Err(format!("its keyframe {base} is unreadable")),
                    }
                })
            };
            frames.push(read.map_err(|reason| self.damaged(format!("event {seq} is unreadable: {reason}")))?);
        }
        if unit.v1 {
            // Format-1 entries become frames of up to BULK_FRAME events.
            let events: Vec<_> = frames.into_iter().flatten().collect();
            return Ok(vec![events]);
        }
        Ok(frames)
    }

    /// Drops the bodies of the unit's fetches before `body_cut`, converts
    /// format-1 entries, and writes the unit (and the fetches of the next
    /// unit that repeated a dropped body) in one batch.
    fn trim_unit(&mut self, unit: &Unit, mut frames: Frames, body_cut: Option<i64>) -> Result<(u64, u64), LogError> {
        let mut dropped: BTreeMap<ProviderId, Value> = BTreeMap::new();
        let mut shortened = 0;
        let mut changed = vec![false; frames.len()];
        for (index, frame_events) in frames.iter_mut().enumerate() {
            for (envelope, json) in frame_events.iter_mut() {
                let old = body_cut.is_some_and(|cut| envelope.at.as_second() < cut);
                match trim_event(envelope, old, &mut dropped) {
                    Change::None => {}
                    change => {
                        shortened += u64::from(change == Change::Dropped);
                        *json = envelope.to_json();
                        changed[index] = true;
                    }
                }
            }
        }
        let converted = if unit.v1 { unit.keys.len() as u64 } else { 0 };
        if !changed.iter().any(|c| *c) && !unit.v1 {
            return Ok((0, 0));
        }
        // A unit all older than the body cut is cold: it is read only by
        // rebuilds and history, so it becomes one frame (one compression
        // over about a thousand similar events, several times smaller).
        let cold = body_cut.is_some_and(|cut| frames.iter().flatten().all(|(e, _)| e.at.as_second() < cut));
        let regroup = if cold {
            frames = vec![frames.into_iter().flatten().collect()];
            Some(COLD_FRAME)
        } else if unit.v1 {
            Some(BULK_FRAME)
        } else {
            None
        };
        let mut batch = sled::Batch::default();
        let dropped = dropped
            .into_iter()
            .map(|(provider, body)| (provider, Body::Value(body)))
            .collect();
        let next = self.carry_bodies(unit, dropped)?;
        if regroup.is_some() {
            for key in &unit.keys {
                batch.remove(&key.to_be_bytes());
            }
        }
        self.put_unit(unit.keys[0], &frames, regroup, &mut batch)?;
        for (key, frames) in next {
            self.put_stored(key, &frames, None, &mut batch)?;
        }
        self.apply(batch)?;
        self.flush()?;
        Ok((shortened, converted))
    }

    /// Whether the cycle the unit ends in ends with it ([`After`]), reading
    /// the units after it up to the next cycle start
    /// ([`crate::replay::starts`]).
    /// `events` is how many the unit holds, `last` its last one's number;
    /// a gap in the numbers (a repaired hole) ends a cycle too.
    fn cycle_after(&self, unit: &Unit, events: usize, last: u64) -> Result<After, LogError> {
        let mut following = Vec::new();
        let mut from = unit.keys.last().map_or(u64::MAX, |key| key + 1);
        let (mut gathered, mut expected) = (events, last.saturating_add(1));
        loop {
            let Some(next) = self.unit_at(from)? else {
                return Ok(After::Open);
            };
            from = next.keys.last().map_or(u64::MAX, |key| key + 1);
            if next.keys[0] != expected || (following.is_empty() && self.starts_a_cycle(&next)?) {
                return Ok(After::Ends);
            }
            let frames = self.unit_events(&next)?;
            gathered += frames.iter().map(Vec::len).sum::<usize>();
            let whole = frames.iter().flatten().all(|(envelope, _)| {
                let follows = envelope.seq == expected;
                expected = envelope.seq.saturating_add(1);
                follows
            });
            if gathered > frame::MAX_EVENTS || !whole {
                // No engine records a cycle this long: a stretch without
                // cycles (a log written by other means) is cut as it falls,
                // and so is one with a hole.
                return Ok(After::Ends);
            }
            let starts = frames
                .iter()
                .flatten()
                .any(|(envelope, _)| crate::replay::starts(envelope));
            following.push((next, frames));
            if starts {
                return Ok(After::Goes(following));
            }
        }
    }

    /// Whether the unit's first event starts a cycle (its first frame read
    /// alone).
    fn starts_a_cycle(&self, unit: &Unit) -> Result<bool, LogError> {
        let first = Unit {
            keys: vec![unit.keys[0]],
            values: vec![unit.values[0].clone()],
            ..*unit
        };
        let frames = self.unit_events(&first)?;
        Ok(frames
            .iter()
            .flatten()
            .next()
            .is_some_and(|(envelope, _)| crate::replay::starts(envelope)))
    }

    /// Rewrites `unit` and the `following` units ([`Log::cycle_after`]) in
    /// one batch, events unchanged, so that units end between cycles: the
    /// unit's events before the start of the cycle it ends in, that cycle
    /// whole, and the rest of the last following unit, each a unit of its
    /// own. A fold then never cuts a cycle, so a base is always the store
    /// between two cycles.
    fn realign(&mut self, unit: &Unit, frames: Frames, following: Vec<(Unit, Frames)>) -> Result<(), LogError> {
        let mut events: Vec<(Envelope, Vec<u8>)> = frames.into_iter().flatten().collect();
        let own = events.len();
        let mut batch = sled::Batch::default();
        let mut keys: Vec<u64> = unit.keys.clone();
        for (next, frames) in following {
            keys.extend(&next.keys);
            events.extend(frames.into_iter().flatten());
        }
        let cycle = events[..own]
            .iter()
            .rposition(|(envelope, _)| crate::replay::starts(envelope))
            .unwrap_or(0);
        let rest = events[own..]
            .iter()
            .position(|(envelope, _)| crate::replay::starts(envelope))
            .map_or(events.len(), |at| own + at);
        for key in &keys {
            batch.remove(&key.to_be_bytes());
        }
        if self.writer.as_ref().is_some_and(|writer| keys.contains(&writer.key)) {
            self.writer = None;
        }
        let mut parts = vec![&events[..cycle], &events[cycle..rest], &events[rest..]];
        parts.retain(|part| !part.is_empty());
        for part in parts {
            // One frame each, so each is one unit.
            self.put_unit(part[0].0.seq, &vec![part.to_vec()], Some(part.len()), &mut batch)?;
        }
        self.apply(batch)?;
        self.flush()
    }

    /// Folds the unit into the base and removes it.
    fn fold_unit(&mut self, unit: &Unit, frames: Frames) -> Result<u64, LogError> {
        // The unit's readings outlive it: recorded before the flush below,
        // which makes them durable before anything is removed.
        let end = frames
            .iter()
            .flatten()
            .last()
            .map_or(0, |(envelope, _)| envelope.seq + 1);
        if self.index_readings(Some(end))? {
            self.flush()?;
        }
        let base = self.read_base();
        let covered = base.as_ref().and_then(|store| store.applied);
        let events: Vec<&Envelope> = frames.iter().flatten().map(|(envelope, _)| envelope).collect();
        let mut folded = 0;
        if events
            .last()
            .is_some_and(|last| covered.is_none_or(|applied| last.seq > applied))
        {
            let mut store = base.unwrap_or_default();
            for envelope in &events {
                if covered.is_none_or(|applied| envelope.seq > applied) {
                    super::guard_apply(&self.dir, &mut store, envelope)?;
                    folded += 1;
                }
            }
            // The base first: a crash before the removal leaves events the
            // base covers, which the next pass only removes.
            self.put_base(&store)?;
        }
        let mut dropped = BTreeMap::new();
        for envelope in &events {
            let mut envelope = (*envelope).clone();
            trim_event(&mut envelope, true, &mut dropped);
        }
        let mut batch = sled::Batch::default();
        let dropped = dropped
            .into_iter()
            .map(|(provider, body)| (provider, Body::Value(body)))
            .collect();
        let next = self.carry_bodies(unit, dropped)?;
        for key in &unit.keys {
            batch.remove(&key.to_be_bytes());
        }
        // Its settings stay: what the engine runs under, which a replay of
        // `log export` has to start from too.
        let kept: Vec<Stored> = frames
            .iter()
            .flatten()
            .filter(|(envelope, _)| matches!(envelope.payload, Event::SettingsChanged { .. }))
            .map(|(envelope, json)| Stored {
                kept: true,
                ..Stored::with_json(envelope, json.clone())
            })
            .collect();
        if let Some(first) = kept.first().map(|first| first.seq) {
            self.put_stored(first, &[kept], Some(COLD_FRAME), &mut batch)?;
        }
        for (key, frames) in next {
            self.put_stored(key, &frames, None, &mut batch)?;
        }
        if self
            .writer
            .as_ref()
            .is_some_and(|writer| unit.keys.contains(&writer.key))
        {
            self.writer = None;
        }
        self.apply(batch)?;
        self.flush()?;
        Ok(folded)
    }

    /// For each provider whose body this unit dropped while its chain of
    /// repeated bodies goes on: the following units (at most
    /// [`CARRY_UNITS`]) with that provider's next fetch given the body,
    /// when it repeated it. Only the units that change are returned, as
    /// their stored lines: only the fetches given a body are read as
    /// events.
    fn carry_bodies(
        &mut self,
        unit: &Unit,
        mut dropped: BTreeMap<ProviderId, Body>,
    ) -> Result<Vec<(u64, Lines)>, LogError> {
        let mut changed_units = Vec::new();
        let mut after = unit.keys.last().map_or(u64::MAX, |key| key + 1);
        for _ in 0..CARRY_UNITS {
            if dropped.is_empty() {
                break;
            }
            let Some(next) = self.unit_at(after)? else {
                break;
            };
            after = next.keys.last().map_or(u64::MAX, |key| key + 1);
            if next.v1 {
                break;
            }
            let mut frames = self.unit_lines(&next)?;
            let mut changed = false;
            for item in frames.iter_mut().flatten() {
                match fetch_line(&item.json) {
                    None => continue,
                    Some(Ok(fetch)) if !dropped.contains_key(&fetch.provider) => continue,
                    Some(_) => {}
                }
                let mut envelope = Envelope::from_json(&item.json)
                    .map_err(|error| self.damaged(format!("event {} is unreadable: {error}", item.seq)))?;
                if let Event::FetchCompleted {
                    provider,
                    exchange,
                    body_repeated,
                    ..
                } = &mut envelope.payload
                    && let Some(body) = dropped.remove(provider)
                    && *body_repeated
                    && let Some(exchange) = exchange
                {
                    exchange.response.body = self.body(body)?;
                    *body_repeated = false;
                    changed = true;
                    item.json = envelope.to_json();
                }
            }
            if changed {
                changed_units.push((next.keys[0], frames));
            }
        }
        Ok(changed_units)
    }

    /// Adds the frames of a rewritten unit to `batch`: the same frame
    /// boundaries (so the same keys), or frames of up to `regroup` events
    /// (the caller removes the old keys first). A unit is its own group:
    /// its first frame a keyframe.
    fn put_unit(
        &mut self,
        key: u64,
        frames: &Frames,
        regroup: Option<usize>,
        batch: &mut sled::Batch,
    ) -> Result<(), LogError> {
        let frames: Vec<Vec<Stored>> = frames
            .iter()
            .map(|frame_events| {
                frame_events
                    .iter()
                    .map(|(envelope, json)| Stored::with_json(envelope, json.clone()))
                    .collect()
            })
            .collect();
        self.put_stored(key, &frames, regroup, batch)
    }

    /// [`Log::put_unit`] of events given as their stored lines.
    fn put_stored(
        &mut self,
        key: u64,
        frames: &[Vec<Stored>],
        regroup: Option<usize>,
        batch: &mut sled::Batch,
    ) -> Result<(), LogError> {
        let saved = self.writer.take().filter(|writer| writer.key != key);
        let mut put = || -> Result<(), LogError> {
            for stored in frames {
                let per_frame = regroup.unwrap_or(stored.len().max(1));
                self.put_frames(stored, per_frame, batch)?;
            }
            Ok(())
        };
        let result = put();
        self.writer = saved;
        result
    }
}

/// A body dropped from a fetch, carried to the next fetch that repeated it:
/// the body, or the dropped fetch's line (read only when a fetch needs it).
enum Body {
    Value(Value),
    Line(Vec<u8>),
}

/// Where a `fetch_completed` line holds its exchange and its
/// `body_repeated`, each with the comma before it.
struct FetchLine {
    provider: ProviderId,
    exchange: Option<std::ops::Range<usize>>,
    repeated: Option<std::ops::Range<usize>>,
}

/// A `fetch_completed` line's fields: `None` for another event, `Err`
/// for a line not of the shape every such line this build writes has
/// (`"type"`, `"provider"`, the exchange when it has one, `"body_repeated"`
/// when true, then `"outcome"`).
fn fetch_line(line: &[u8]) -> Option<Result<FetchLine, ()>> {
    const TYPE: &[u8] = b"\"type\":\"";
    const FETCH: &[u8] = b"fetch_completed\",\"provider\":\"";
    const EXCHANGE: &[u8] = b",\"exchange\":";
    const REPEATED: &[u8] = b",\"body_repeated\":true";
    let head = &line[..line.len().min(256)];
    let Some(at) = head.windows(TYPE.len()).position(|window| window == TYPE) else {
        return Some(Err(()));
    };
    let start = at + TYPE.len();
    if !line[start..].starts_with(b"fetch_completed\"") {
        return None;
    }
    let read = || -> Result<FetchLine, ()> {
        let named = line[start..].strip_prefix(FETCH).ok_or(())?;
        let quote = named.iter().position(|b| *b == b'"').ok_or(())?;
        let provider = std::str::from_utf8(&named[..quote])
            .ok()
            .and_then(|name| name.parse().ok())
            .ok_or(())?;
        let mut at = start + FETCH.len() + quote + 1;
        let exchange = if line[at..].starts_with(EXCHANGE) {
            let end = object_end(line, at + EXCHANGE.len()).ok_or(())?;
            let range = at..end;
            at = end;
            Some(range)
        } else {
            None
        };
        let repeated = line[at..].starts_with(REPEATED).then(|| at..at + REPEATED.len());
        if let Some(range) = &repeated {
            at = range.end;
        }
        if !line[at..].starts_with(b",\"outcome\":") {
            return Err(());
        }
        Ok(FetchLine {
            provider,
            exchange,
            repeated,
        })
    };
    Some(read())
}

/// The index after the JSON object that starts at `start` in `text`.
fn object_end(text: &[u8], start: usize) -> Option<usize> {
    if text.get(start) != Some(&b'{') {
        return None;
    }
    let mut depth = 0usize;
    let mut at = start;
    while at < text.len() {
        match text[at] {
            b'"' => {
                at += 1;
                while at < text.len() && text[at] != b'"' {
                    at += if text[at] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(at + 1);
                }
            }
            _ => {}
        }
        at += 1;
    }
    None
}

/// What [`trim_event`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    None,
    Dropped,
    Materialized,
}

/// Drops the exchange of a fetch when `old`; gives a kept fetch that
/// repeated a dropped body that body. `dropped` carries each provider's
/// dropped body along its chain of repeats.
fn trim_event(envelope: &mut Envelope, old: bool, dropped: &mut BTreeMap<ProviderId, Value>) -> Change {
    let Event::FetchCompleted {
        provider,
        exchange,
        body_repeated,
        ..
    } = &mut envelope.payload
    else {
        return Change::None;
    };
    let Some(held) = exchange else {
        dropped.remove(provider);
        return Change::None;
    };
    if old {
        if !*body_repeated {
            dropped.insert(*provider, held.response.body.clone());
        }
        *exchange = None;
        *body_repeated = false;
        return Change::Dropped;
    }
    match dropped.remove(provider) {
        Some(body) if *body_repeated => {
            held.response.body = body;
            *body_repeated = false;
            Change::Materialized
        }
        _ => Change::None,
    }
}

/// Whether the stored line of an event is a `fetch_completed` holding its
/// exchange, as [`Stored::with_json`] tells from the event: read from the
/// fields every such line starts with (`"type"`, `"provider"`, then
/// `"exchange"` when it has one). A line of another shape counts as
/// holding one, which only costs a later read.
fn line_exchange(line: &[u8]) -> bool {
    const TYPE: &[u8] = b"\"type\":\"";
    const FETCH: &[u8] = b"fetch_completed\",\"provider\":\"";
    let head = &line[..line.len().min(256)];
    let Some(at) = head.windows(TYPE.len()).position(|window| window == TYPE) else {
        return true;
    };
    let rest = &line[at + TYPE.len()..];
    if !rest.starts_with(b"fetch_completed\"") {
        return false;
    }
    let Some(rest) = rest.strip_prefix(FETCH) else {
        return true;
    };
    let Some(quote) = rest.iter().position(|b| *b == b'"') else {
        return true;
    };
    // Without one, `"exchange"` is left out: what follows the provider is
    // `"body_repeated"` or the outcome.
    let after = &rest[quote + 1..];
    !(after.starts_with(b",\"outcome\":") || after.starts_with(b",\"body_repeated\":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored `fetch_completed` line with an exchange whose body holds
    /// braces and quotes in strings, optionally repeated.
    fn fetch(seq: u64, repeated: bool) -> Envelope {
        let line = format!(
            concat!(
                r#"{{"v":1,"seq":{},"at":"2026-11-20T10:00:00Z","stream":"tracker/anthropic","type":"fetch_completed","#,
                r#""provider":"anthropic","exchange":{{"provider":"anthropic","recorded_at":"2026-11-20T10:00:00Z","#,
                r#""request":{{"method":"GET","url":"https://example.test/usage","headers":{{}}}},"#,
                r#""response":{{"status":200,"headers":{{}},"body":{{"note":"}}]{{[\"\\","n":[1,{{"a":null}}]}}}}}},"#,
                r#""body_repeated":{},"outcome":{{"result":"usage","plan":null,"windows":[]}},"elapsed_ms":3}}"#
            ),
            seq, repeated
        );
        Envelope::from_json(line.as_bytes()).unwrap()
    }

    #[test]
    fn a_fetch_line_loses_its_exchange_as_the_event_does() {
        for repeated in [false, true] {
            let envelope = fetch(7, repeated);
            let json = envelope.to_json();
            let Some(Ok(line)) = fetch_line(&json) else {
                panic!("not read as a fetch: {}", String::from_utf8_lossy(&json));
            };
            assert_eq!(line.repeated.is_some(), repeated);
            assert!(line_exchange(&json));
            let exchange = line.exchange.unwrap();
            let mut trimmed = json[..exchange.start].to_vec();
            trimmed.extend_from_slice(&json[line.repeated.map_or(exchange.end, |r| r.end)..]);
            let mut expected = envelope.clone();
            trim_event(&mut expected, true, &mut BTreeMap::new());
            assert_eq!(
                String::from_utf8(trimmed.clone()).unwrap(),
                String::from_utf8(expected.to_json()).unwrap()
            );
            // Without its exchange the line is still a fetch, holding none.
            let Some(Ok(again)) = fetch_line(&trimmed) else {
                panic!("the trimmed line is not read as a fetch");
            };
            assert!(again.exchange.is_none() && again.repeated.is_none());
            assert!(!line_exchange(&trimmed));
        }
    }

    #[test]
    fn other_lines_are_not_fetches_and_odd_ones_are_read_as_events() {
        let tick = Envelope::from_json(
            br#"{"v":1,"seq":3,"at":"2026-11-20T10:00:00Z","stream":"engine","type":"clock_ticked"}"#,
        )
        .unwrap()
        .to_json();
        assert!(fetch_line(&tick).is_none());
        assert!(!line_exchange(&tick));
        assert_eq!(line_seq_at(3, &tick), Some(1_795_168_800));
        assert_eq!(line_seq_at(4, &tick), None);
        assert!(matches!(
            fetch_line(br#"{"type":"fetch_completed","provider":"nobody"}"#),
            Some(Err(()))
        ));
        assert!(matches!(fetch_line(b"{}"), Some(Err(()))));
        assert_eq!(object_end(br#"{"a":"}","b":{"c":[1,"]"]}}tail"#, 0), Some(27));
        assert_eq!(object_end(br#"{"a":"#, 0), None);
    }
}
