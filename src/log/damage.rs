//! The log commands that must work on a damaged log: `verify`, `export`,
//! `stats` and `repair` over a data dir, combining what sled can still read
//! with what the raw files hold ([`super::salvage`]).
//!
//! A log is damaged when sled cannot open it, when reading it fails, when
//! an entry's checksum or numbering is wrong, or when its checkpoint covers
//! events past its end. On a healthy log these commands read sled only.
//! On a damaged one the readable events are sled's, plus every intact copy
//! only the raw files still hold; what is known to have existed (a damaged
//! entry, a damaged copy, a gap between readable events, a checkpoint past
//! the end) and is readable nowhere is *lost*.
//!
//! `repair` builds the new log in a fresh directory first, then moves the
//! damaged `log` directory aside as `log.damaged-<UTC time>` inside the
//! data dir (never deleting it) and moves the new one in. The lost ranges
//! are recorded in the new log's `repairs` tree as [`Hole`]s, so `verify`
//! passes afterwards and still tells a repaired hole from new damage.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use super::salvage::{self, Salvage};
use super::{DB_DIR, ExportReport, Hole, Log, LogError, Problem, Stats, VerifyReport, guard_apply, write_line};
use crate::events::{Envelope, read_import};
use crate::status::{self, StatusOptions};
use crate::store::Store;

/// What `log verify` found in a data dir.
#[derive(Debug, Clone)]
pub struct Verified {
    /// sled's own report; `None` when sled could not open the log.
    pub sled: Option<VerifyReport>,
    /// The combined picture, when the log is damaged.
    pub damaged: Option<Readable>,
}

/// What a damaged log still holds, from sled and the raw files together.
#[derive(Debug, Clone, Default)]
pub struct Readable {
    /// Every readable event's JSON by sequence number.
    pub events: BTreeMap<u64, Vec<u8>>,
    /// How many of them only the raw files held.
    pub from_raw: u64,
    /// Ranges known to have existed that are readable nowhere, with why.
    pub lost: Vec<Problem>,
    /// What sled showed: its failure to open, its damaged entries.
    pub problems: Vec<Problem>,
    /// Holes an earlier repair recorded.
    pub holes: Vec<Hole>,
    /// The newest readable checkpoint.
    pub checkpoint: Option<Store>,
}

/// What `log repair` did.
#[derive(Debug, Clone)]
pub struct RepairReport {
    /// Events kept in the new log.
    pub kept: u64,
    /// The kept sequence numbers, as ranges.
    pub kept_ranges: Vec<(u64, u64)>,
    /// Of the kept, those recovered from the raw files only.
    pub from_raw: u64,
    /// The lost ranges (recorded as holes in the new log).
    pub lost: Vec<Problem>,
    /// Where the damaged files are now.
    pub moved_to: PathBuf,
    /// Whether the projection came from a checkpoint (`true`) or a fold of
    /// the kept events.
    pub from_checkpoint: bool,
    /// Whether sled stopped reading somewhere, so more may be lost.
    pub open_ended: bool,
}

impl Verified {
    /// Whether the log is healthy.
    pub fn ok(&self) -> bool {
        self.damaged.is_none()
            && self
                .sled
                .as_ref()
                .is_some_and(|report| report.checkpoint_agrees != Some(false))
    }

    /// The report as lines for a person.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(readable) = &self.damaged {
            for problem in readable.problems.iter().take(20) {
                lines.push(format!("{}: {}", entries_name(problem), problem.reason));
            }
            if readable.problems.len() > 20 {
                lines.push(format!("… and {} more damaged ranges", readable.problems.len() - 20));
            }
            let lost: u64 = readable.lost.iter().map(count).sum();
            let lost_ranges: Vec<String> = readable.lost.iter().map(range_name).collect();
            let from_raw = if readable.from_raw > 0 {
                format!(" ({} only from the raw files)", readable.from_raw)
            } else {
                String::new()
            };
            let mut lost = if lost == 0 {
                "none known lost".to_owned()
            } else {
                format!("{lost} lost ({})", lost_ranges.join(", "))
            };
            if readable.open_ended() {
                lost.push_str(", maybe more (sled cannot read the rest)");
            }
            lines.push(format!(
                "damaged: {} events readable{from_raw}, {lost}; run `quotatrack log repair` to rebuild the log from them",
                readable.events.len()
            ));
            return lines;
        }
        let Some(report) = &self.sled else {
            return lines;
        };
        if report.checkpoint_agrees == Some(false) {
            lines.push(format!(
                "the checkpoint disagrees with a rebuild from all {} events",
                report.events
            ));
            return lines;
        }
        let checkpoint = match report.checkpoint_agrees {
            Some(_) => "checkpoint agrees",
            None => "no checkpoint",
        };
        let mut line = format!("ok: {} events readable, {checkpoint}", report.events);
        if !report.holes.is_empty() {
            let holes: Vec<String> = report
                .holes
                .iter()
                .map(|hole| {
                    let range = range_name(&Problem {
                        first: hole.first,
                        last: Some(hole.last),
                        reason: String::new(),
                    });
                    format!(
                        "{range} lost in the repair of {}",
                        hole.repaired_at.strftime("%Y-%m-%dT%H:%M:%SZ")
                    )
                })
                .collect();
            line.push_str(&format!("; known holes: {}", holes.join(", ")));
        }
        lines.push(line);
        lines
    }
}

impl Readable {
    /// Whether sled stopped reading somewhere, so the true end is unknown.
    pub fn open_ended(&self) -> bool {
        self.problems.iter().any(|problem| problem.last.is_none())
    }
}

impl RepairReport {
    /// The report as lines for a person.
    pub fn lines(&self) -> Vec<String> {
        let kept: Vec<String> = self
            .kept_ranges
            .iter()
            .map(|(first, last)| {
                range_name(&Problem {
                    first: *first,
                    last: Some(*last),
                    reason: String::new(),
                })
            })
            .collect();
        let lost: u64 = self.lost.iter().map(count).sum();
        let mut lines = vec![format!(
            "kept {} events ({}){}",
            self.kept,
            if kept.is_empty() {
                "none".to_owned()
            } else {
                kept.join(", ")
            },
            if self.from_raw > 0 {
                format!(", {} of them recovered from the raw files", self.from_raw)
            } else {
                String::new()
            }
        )];
        if lost == 0 {
            lines.push("lost none".to_owned());
        } else {
            let ranges: Vec<String> = self.lost.iter().map(range_name).collect();
            lines.push(format!("lost {lost} events ({})", ranges.join(", ")));
        }
        if self.open_ended {
            lines.push("more may be lost: sled could not read the damaged log to its end".to_owned());
        }
        lines.push(format!(
            "projection {}; damaged files moved to {}",
            if self.from_checkpoint {
                "from the newest readable checkpoint"
            } else {
                "rebuilt from the kept events"
            },
            self.moved_to.display()
        ));
        lines
    }
}

/// `log verify` over a data dir: sled's full check, and on damage the
/// combined picture with the raw files (scanned before sled opens them:
/// sled's recovery may write).
pub fn verify(data_dir: &Path) -> Result<Verified, LogError> {
    let salvage = salvage::scan(&data_dir.join(DB_DIR));
    let recorded = super::recorded_end(data_dir);
    let (sled_report, side) = examine(data_dir, &salvage, recorded)?;
    let Some(side) = side else {
        return Ok(Verified {
            sled: sled_report,
            damaged: None,
        });
    };
    Ok(Verified {
        sled: sled_report,
        damaged: Some(merge(side, salvage, 0, recorded)),
    })
}

/// sled's full check of a copy of the log, with any tail it lost; when
/// anything is wrong, also what sled can still read, to merge with the
/// raw files. `(None, Some(_))`: sled cannot open the log at all.
fn examine(
    data_dir: &Path,
    salvage: &Salvage,
    recorded: Option<u64>,
) -> Result<(Option<VerifyReport>, Option<SledSide>), LogError> {
    match Log::open_copy(data_dir) {
        Ok(log) => {
            let mut report = log.verify();
            report.problems.extend(lost_tail(&log, salvage, recorded));
            if report.problems.is_empty() {
                return Ok((Some(report), None));
            }
            let mut side = SledSide::read(&log, 0);
            side.problems = report.problems.clone();
            Ok((Some(report), Some(side)))
        }
        Err(LogError::Damaged { detail, .. } | LogError::Storage { message: detail, .. }) => {
            Ok((None, Some(SledSide::failed(detail))))
        }
        Err(error) => Err(error),
    }
}

/// `log export` over a data dir: sled's events in order while it reads
/// them cleanly; from its first problem on, the rest of sled's merged with
/// the raw files' copies. Lost ranges are in `skipped`.
pub fn export(data_dir: &Path, since: u64, out: &mut impl Write) -> Result<ExportReport, LogError> {
    let mut report = ExportReport::default();
    let salvage = salvage::scan(&data_dir.join(DB_DIR));
    let recorded = super::recorded_end(data_dir);
    let (side, from) = match Log::open_copy(data_dir) {
        Ok(log) => {
            let mut entries = log.read_from(since);
            let mut next = since;
            let mut first_problem = None;
            for entry in entries.by_ref() {
                match entry {
                    Ok((envelope, json)) => {
                        write_line(out, &json)?;
                        report.written += 1;
                        next = envelope.seq + 1;
                    }
                    Err(error) => {
                        first_problem = Some(error);
                        break;
                    }
                }
            }
            let tail = lost_tail(&log, &salvage, recorded);
            if first_problem.is_none() && tail.is_none() {
                out.flush().map_err(LogError::Output)?;
                return Ok(report);
            }
            let mut side = SledSide::default();
            if let Some(problem) = first_problem {
                side.take(Err(problem), next);
            }
            for entry in entries {
                side.take(entry, next);
            }
            side.problems.extend(tail);
            side.holes = log.holes();
            side.checkpoint = log.read_checkpoint();
            (side, next)
        }
        Err(LogError::Damaged { detail, .. } | LogError::Storage { message: detail, .. }) => {
            (SledSide::failed(detail), since)
        }
        Err(error) => return Err(error),
    };
    let readable = merge(side, salvage, from, recorded);
    for json in readable.events.values() {
        write_line(out, json)?;
        report.written += 1;
    }
    out.flush().map_err(LogError::Output)?;
    report.from_raw = readable.from_raw;
    report.damage = Some(
        readable
            .problems
            .first()
            .map_or_else(|| "damaged".to_owned(), |problem| problem.reason.clone()),
    );
    report.skipped = readable
        .lost
        .iter()
        .map(|problem| (problem.first, format!("{} ({})", problem.reason, range_name(problem))))
        .collect();
    Ok(report)
}

/// `log stats` over a data dir; on a damaged log, over every readable event.
pub fn stats(data_dir: &Path) -> Result<Stats, LogError> {
    let salvage = salvage::scan(&data_dir.join(DB_DIR));
    let recorded = super::recorded_end(data_dir);
    let (side, size) = match Log::open_copy(data_dir) {
        Ok(log) => {
            let stats = log.stats();
            let tail = lost_tail(&log, &salvage, recorded);
            if stats.unreadable == 0 && stats.damage.is_none() && tail.is_none() {
                return Ok(stats);
            }
            let mut side = SledSide::read(&log, 0);
            side.problems.extend(tail);
            (side, stats.size_on_disk)
        }
        Err(LogError::Damaged { detail, .. } | LogError::Storage { message: detail, .. }) => {
            (SledSide::failed(detail), size_of(&data_dir.join(DB_DIR)))
        }
        Err(error) => return Err(error),
    };
    let readable = merge(side, salvage, 0, recorded);
    let mut stats = Stats {
        size_on_disk: size,
        from_raw: readable.from_raw,
        unreadable: readable.lost.iter().map(count).sum(),
        damage: Some(
            readable
                .problems
                .first()
                .map_or_else(|| "damaged".to_owned(), |problem| problem.reason.clone()),
        ),
        ..Stats::default()
    };
    for json in readable.events.values() {
        if let Ok(envelope) = Envelope::from_json(json) {
            stats.count(&envelope);
        }
    }
    Ok(stats)
}

/// `log import`: the whole file is checked before the data dir is touched.
pub fn import(data_dir: &Path, input: impl std::io::BufRead) -> Result<u64, LogError> {
    let envelopes = read_import(input).map_err(|error| LogError::Import {
        line: error.line,
        message: error.message,
    })?;
    let mut log = Log::open(data_dir)?;
    let imported = log.import_checked(&envelopes)?;
    log.close()?;
    Ok(imported)
}

/// `log repair`: a fresh log from every readable event; `None` when the
/// log is not damaged (nothing is changed then).
pub fn repair(data_dir: &Path, now: Timestamp) -> Result<Option<RepairReport>, LogError> {
    let log_dir = data_dir.join(DB_DIR);
    let salvage = salvage::scan(&log_dir);
    let recorded = super::recorded_end(data_dir);
    let (_, side) = examine(data_dir, &salvage, recorded)?;
    let Some(side) = side else {
        // A sound log behind an unreadable end marker: the marker is what
        // needs mending (a directory in its place stays, and is reported).
        if super::read_end(data_dir).is_err() {
            super::write_end(data_dir, salvage.events.keys().next_back().map_or(0, |seq| seq + 1));
        }
        return Ok(None);
    };
    let readable = merge(side, salvage, 0, recorded);
    let mut holes: Vec<Hole> = readable.holes.clone();

    // The new log, built aside.
    let building = data_dir.join(format!(".repair-{}", std::process::id()));
    if fs::symlink_metadata(&building).is_ok() {
        return Err(LogError::Io {
            path: building,
            error: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "is in the way; move it away and retry",
            ),
        });
    }
    let stamp = now.strftime("%Y%m%dT%H%M%SZ").to_string();
    let moved_to = free_name(data_dir, &format!("{DB_DIR}.damaged-{stamp}"));
    let moved_name = moved_to
        .file_name()
        .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
    holes.extend(readable.lost.iter().map(|problem| Hole {
        first: problem.first,
        last: problem.last.unwrap_or(problem.first),
        repaired_at: now,
        moved_to: moved_name.clone(),
    }));
    holes.sort_by_key(|hole| hole.first);
    let (store, from_checkpoint) = projection(&readable, data_dir)?;
    {
        let mut log = Log::open(&building)?;
        log.write_jsons(&readable.events)?;
        log.next_seq = readable.events.keys().next_back().map_or(0, |seq| seq + 1);
        for hole in &holes {
            log.record_hole(hole)?;
        }
        log.write_checkpoint(&store)?;
        log.close()?;
    }
    // Swap: the damaged files aside (kept), the new log in.
    if fs::symlink_metadata(&log_dir).is_ok() {
        fs::rename(&log_dir, &moved_to).map_err(LogError::io(&log_dir))?;
    }
    fs::rename(building.join(DB_DIR), &log_dir).map_err(LogError::io(&building))?;
    super::write_end(data_dir, readable.events.keys().next_back().map_or(0, |seq| seq + 1));
    let _ = fs::remove_file(building.join(super::OWNER_FILE));
    let _ = fs::remove_dir(&building);
    if fs::symlink_metadata(&moved_to).is_ok() {
        super::secure_files(&moved_to)?;
    }
    // The snapshot shows the repaired store; an empty one would only hide
    // the last view `status` had.
    if store.applied.is_some() {
        let view = status::view(&store, now, &StatusOptions::default());
        status::write_snapshot(data_dir, &view).map_err(LogError::io(&status::snapshot_path(data_dir)))?;
    }
    let open_ended = readable.open_ended();
    Ok(Some(RepairReport {
        kept: readable.events.len() as u64,
        kept_ranges: ranges(readable.events.keys().copied()),
        from_raw: readable.from_raw,
        lost: readable.lost,
        moved_to,
        from_checkpoint,
        open_ended,
    }))
}

/// The store of the repaired log: the newest readable checkpoint plus the
/// kept events after it, when those run without a gap to the last kept
/// event and nothing before it was lost; else a fold of every kept event.
fn projection(readable: &Readable, data_dir: &Path) -> Result<(Store, bool), LogError> {
    let last = readable.events.keys().next_back().copied();
    if let Some(checkpoint) = &readable.checkpoint
        && let Some(applied) = checkpoint.applied
        && last.is_some_and(|last| applied <= last)
        && readable.events.contains_key(&applied)
        // Events lost before it are in the checkpoint but in no rebuild.
        && readable.lost.iter().all(|problem| problem.first > applied)
    {
        let tail: Vec<u64> = readable.events.range(applied..).map(|(seq, _)| *seq).collect();
        let contiguous = tail.windows(2).all(|pair| pair[1] == pair[0] + 1);
        if contiguous {
            let mut store = checkpoint.clone();
            for json in readable.events.range(applied + 1..).map(|(_, json)| json) {
                if let Ok(envelope) = Envelope::from_json(json) {
                    guard_apply(data_dir, &mut store, &envelope)?;
                }
            }
            return Ok((store, true));
        }
    }
    let mut store = Store::default();
    for json in readable.events.values() {
        if let Ok(envelope) = Envelope::from_json(json) {
            // A crafted event the fold cannot take is left out of the projection.
            let _ = guard_apply(data_dir, &mut store, &envelope);
        }
    }
    Ok((store, false))
}

/// The most events one append writes (a cycle's batch is about 30): a run
/// of at most this many intact events right after the log's last one is
/// the batch of an append a crash interrupted, never acknowledged and not
/// part of the log, rather than damage.
const UNCOMMITTED_BATCH: usize = 256;

/// Intact events in the raw files past sled's last one: sled dropped the
/// log's tail while recovering damaged files. A short run that starts
/// right after the log's last event is an append interrupted by a crash
/// (sled leaves an unfinished batch in its files and ignores it): the
/// append never returned, so nothing that was acknowledged is missing.
fn lost_tail(log: &Log, salvage: &Salvage, recorded_end: Option<u64>) -> Option<Problem> {
    let next = log.next_seq();
    let tail: Vec<u64> = salvage.events.range(next..).map(|(seq, _)| *seq).collect();
    let unfinished_append = tail.first() == Some(&next)
        && recorded_end.is_none_or(|end| end <= next)
        && tail.len() <= UNCOMMITTED_BATCH
        && tail.windows(2).all(|pair| pair[1] == pair[0] + 1);
    if unfinished_append {
        return None;
    }
    // What the end marker says was acknowledged, though neither sled nor the
    // raw files hold it any more (a deleted or truncated file).
    let acknowledged_last = recorded_end.filter(|end| *end > next).map(|end| end - 1);
    let last = tail.last().copied().max(acknowledged_last)?;
    let reason = if tail.is_empty() {
        "written (the log's end marker says so) but readable nowhere"
    } else {
        "missing from the log but intact in its raw files (the log lost its tail)"
    };
    Some(Problem {
        first: next,
        last: Some(last),
        reason: reason.to_owned(),
    })
}

/// How far past the last otherwise-known number a damaged copy's claimed
/// number still counts as an event that existed.
const DAMAGED_COPY_SLACK: u64 = 10_000;

/// What sled gave.
#[derive(Debug, Default)]
struct SledSide {
    events: BTreeMap<u64, Vec<u8>>,
    corrupt: BTreeMap<u64, String>,
    problems: Vec<Problem>,
    holes: Vec<Hole>,
    checkpoint: Option<Store>,
}

impl SledSide {
    /// sled could not open the log.
    fn failed(detail: String) -> SledSide {
        SledSide {
            problems: vec![Problem {
                first: 0,
                last: None,
                reason: format!("sled cannot open the log: {detail}"),
            }],
            ..SledSide::default()
        }
    }

    /// Everything sled can read from `since` on.
    fn read(log: &Log, since: u64) -> SledSide {
        let mut side = SledSide::default();
        for entry in log.read_from(since) {
            side.take(entry, since);
        }
        side.holes = log.holes();
        side.checkpoint = log.read_checkpoint();
        side
    }

    fn take(&mut self, entry: Result<(Envelope, Vec<u8>), LogError>, expected: u64) {
        match entry {
            Ok((envelope, json)) => {
                self.events.insert(envelope.seq, json);
            }
            Err(LogError::Corrupt { seq, reason }) => {
                if seq < crate::events::MAX_SEQ {
                    self.corrupt.insert(seq, reason);
                }
            }
            Err(error) => {
                let first = self.events.keys().next_back().map_or(expected, |last| last + 1);
                let reason = match error {
                    LogError::Damaged { detail, .. } => format!("sled cannot read on: {detail}"),
                    other => other.to_string(),
                };
                self.problems.push(Problem {
                    first,
                    last: None,
                    reason,
                });
            }
        }
    }
}

/// sled's events plus the raw files' (from `since` on), and what is lost.
/// `recorded_end` is the log's end marker: the events before it were
/// acknowledged, so the last of them is known to have existed even when
/// nothing of it is left (a deleted or truncated file).
fn merge(side: SledSide, salvage: Salvage, since: u64, recorded_end: Option<u64>) -> Readable {
    let mut readable = Readable {
        events: side.events,
        problems: side.problems,
        holes: side.holes,
        checkpoint: side.checkpoint,
        ..Readable::default()
    };
    for (seq, (_, json)) in salvage.events.range(since..) {
        if !readable.events.contains_key(seq) {
            readable.events.insert(*seq, json.clone());
            readable.from_raw += 1;
        }
    }
    if readable.checkpoint.is_none() {
        readable.checkpoint = salvage.checkpoint;
    }
    for (path, why) in &salvage.unreadable {
        readable.problems.push(Problem {
            first: since,
            last: None,
            reason: format!("cannot read {}: {why}", path.display()),
        });
    }
    // What is known to have existed.
    let mut known: BTreeSet<u64> = side.corrupt.keys().copied().collect();
    if let Some(applied) = readable.checkpoint.as_ref().and_then(|store| store.applied)
        && applied >= since
        && applied < crate::events::MAX_SEQ
    {
        known.insert(applied);
    }
    if let Some(end) = recorded_end.filter(|end| *end > since && *end <= crate::events::MAX_SEQ) {
        known.insert(end - 1);
    }
    // A damaged copy's number may itself be damaged: trusted only near
    // the numbers known otherwise.
    let horizon = known
        .last()
        .copied()
        .into_iter()
        .chain(readable.events.keys().next_back().copied())
        .max()
        .unwrap_or(0)
        .saturating_add(DAMAGED_COPY_SLACK);
    known.extend(salvage.damaged.range(since..horizon));
    let first = known
        .first()
        .copied()
        .into_iter()
        .chain(readable.events.keys().next().copied())
        .min();
    let last = known
        .last()
        .copied()
        .into_iter()
        .chain(readable.events.keys().next_back().copied())
        .max();
    let (Some(first), Some(last)) = (first, last) else {
        return readable;
    };
    let mut lost: Vec<Problem> = Vec::new();
    let mut seq = first;
    // Walk the gaps between readable events: as many steps as readable
    // events and gaps, never as many as the numbers span.
    let mut readable_seqs = readable.events.keys().copied().peekable();
    while seq <= last {
        while readable_seqs.peek().is_some_and(|next| *next < seq) {
            readable_seqs.next();
        }
        match readable_seqs.peek().copied() {
            Some(next) if next == seq => seq += 1,
            next => {
                let gap_end = next.map_or(last, |next| next - 1).min(last);
                for (from, to) in super::uncovered(seq, gap_end, &readable.holes) {
                    push_lost(&mut lost, from, to, &side.corrupt);
                }
                seq = gap_end + 1;
            }
        }
    }
    readable.lost = lost;
    readable
}

/// Adds `from..=to` to `lost`: a damaged entry with sled's reason, the
/// rest as ranges.
fn push_lost(lost: &mut Vec<Problem>, from: u64, to: u64, corrupt: &BTreeMap<u64, String>) {
    const UNREADABLE: &str = "unreadable, and no intact copy in the raw files";
    let mut at = from;
    for (seq, reason) in corrupt.range(from..=to) {
        if *seq > at {
            push_range(lost, at, seq - 1, UNREADABLE);
        }
        push_range(lost, *seq, *seq, reason);
        at = seq + 1;
    }
    if at <= to {
        push_range(lost, at, to, UNREADABLE);
    }
}

/// Appends a range, joining it to the one before when they touch and agree.
fn push_range(lost: &mut Vec<Problem>, first: u64, last: u64, reason: &str) {
    match lost.last_mut() {
        Some(range) if range.last == Some(first - 1) && range.reason == reason => range.last = Some(last),
        _ => lost.push(Problem {
            first,
            last: Some(last),
            reason: reason.to_owned(),
        }),
    }
}

/// Consecutive numbers as ranges.
fn ranges(seqs: impl Iterator<Item = u64>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for seq in seqs {
        match out.last_mut() {
            Some((_, last)) if *last + 1 == seq => *last = seq,
            _ => out.push((seq, seq)),
        }
    }
    out
}

fn count(problem: &Problem) -> u64 {
    problem.last.map_or(1, |last| last - problem.first + 1)
}

/// `7`, `7–9` or `7 on`.
fn range_name(problem: &Problem) -> String {
    match problem.last {
        Some(last) if last == problem.first => format!("{last}"),
        Some(last) => format!("{}–{last}", problem.first),
        None => format!("{} on", problem.first),
    }
}

/// `log entry 7`, `log entries 7–9`, `log entries 7 on`.
fn entries_name(problem: &Problem) -> String {
    match problem.last {
        Some(last) if last == problem.first => format!("log entry {last}"),
        _ => format!("log entries {}", range_name(problem)),
    }
}

/// `name`, or `name-2`, `name-3`… when taken.
fn free_name(dir: &Path, name: &str) -> PathBuf {
    let mut candidate = dir.join(name);
    let mut n = 2;
    while fs::symlink_metadata(&candidate).is_ok() {
        candidate = dir.join(format!("{name}-{n}"));
        n += 1;
    }
    candidate
}

/// Bytes in the regular files under `dir` (one level deep).
pub(crate) fn size_of(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .filter_map(|entry| {
            let meta = fs::symlink_metadata(entry.path()).ok()?;
            Some(if meta.is_dir() {
                size_of(&entry.path())
            } else {
                meta.len()
            })
        })
        .sum()
}
