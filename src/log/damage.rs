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
//! Memory stays bounded whatever the damage, not by the log's length nor
//! by what sled lacks: sled is read first, remembering only which numbers
//! it reads intact (ranges), the raw files are then scanned noting only
//! where the copies of the events sled lacks are ([`salvage::Index`]: a
//! few words per frame, or per format-1 value), and the events are written
//! by reading sled's again (from the same copy), merged in order with the
//! raw files' read again from where they are. A healthy log costs one
//! extra scan of the raw files for a tail sled lost, and no event is held.
//! `verify` keeps only the numbers of what the raw files alone hold.
//!
//! A folded log ([`super::retention`]) starts with the `settings_changed`
//! events its folds kept ([`super::frame::FLAG_KEPT`]), numbered at or
//! before its base's last event, then the events after the base. Those
//! kept events are readable events like any other; the numbers between
//! them were folded, not lost, and old copies of folded events the raw
//! files still hold are not brought back. `repair` keeps the base and
//! stores the kept events as kept again. When sled cannot open the log,
//! the base is the raw files' ([`salvage::find_base`]: a base says it is
//! one); a base written by a build before that one cannot be told from a
//! checkpoint, and its log is then read as an unfolded one.
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

use super::salvage::{self, Covered, Salvage};
use super::{
    DB_DIR, ExportReport, Hole, IMPORT_BATCH, Log, LogError, Problem, ReadCopy, Stats, Stored, VerifyReport,
    guard_apply, write_line,
};
use crate::events::Envelope;
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
/// The events themselves are not held: [`Readable::each`] reads them.
#[derive(Debug, Clone, Default)]
pub struct Readable {
    /// How many events are readable.
    pub events: u64,
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
    /// The base of the folds, when retention folded events: its last
    /// event is the last number folded.
    pub base: Option<Store>,
    /// The readable numbers, sled's and the raw files', as ranges.
    numbers: Covered,
    /// Where the events only the raw files hold are.
    raw: salvage::Index,
    /// The first number wanted: sled's events are read again from here.
    since: u64,
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
                readable.events
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
    /// The last number a fold removed, if any: the events at or before it
    /// are the settings the folds kept.
    pub fn folded(&self) -> Option<u64> {
        self.base.as_ref().and_then(|base| base.applied)
    }

    /// Whether sled stopped reading somewhere, so the true end is unknown.
    pub fn open_ended(&self) -> bool {
        self.problems.iter().any(|problem| problem.last.is_none())
    }

    /// Calls `visit` with every readable event from `from` on, in order:
    /// sled's, read again from `log` (the copy they were counted on),
    /// merged with those only the raw files hold (read again from where
    /// they are). Only the events of a few stored values are held at once.
    fn each(
        &self,
        log: Option<&Log>,
        from: u64,
        mut visit: impl FnMut(&Envelope, &[u8]) -> Result<(), LogError>,
    ) -> Result<(), LogError> {
        let from = from.max(self.since);
        let mut raw = self.raw.events(from).peekable();
        // Numbers below this were visited (a copy sled yields twice is not).
        let mut next = from;
        if let Some(log) = log {
            for entry in log.read_from(from) {
                let Ok((envelope, json)) = entry else {
                    continue;
                };
                if envelope.seq < next {
                    continue;
                }
                while let Some((earlier, earlier_json)) = raw.next_if(|(earlier, _)| earlier.seq < envelope.seq) {
                    visit(&earlier, &earlier_json)?;
                }
                visit(&envelope, &json)?;
                next = envelope.seq + 1;
            }
        }
        for (envelope, json) in raw {
            visit(&envelope, &json)?;
        }
        Ok(())
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

/// `log verify` over a data dir: sled's full check of a copy, and on
/// damage the combined picture with the raw files.
pub fn verify(data_dir: &Path) -> Result<Verified, LogError> {
    let examined = examine(data_dir, false)?;
    Ok(Verified {
        sled: examined.sled,
        damaged: examined.damaged,
    })
}

/// What [`examine`] found.
struct Examined {
    /// sled's report; `None` when sled cannot open the log.
    sled: Option<VerifyReport>,
    /// The copy sled read, to read its events again.
    copy: Option<ReadCopy>,
    /// The combined picture, when anything is wrong.
    damaged: Option<Readable>,
    /// One past the last event sled or the raw files past its end hold.
    end: u64,
}

/// sled's full check of a copy of the log, with any tail it lost; when
/// anything is wrong, also what sled and the raw files can still read
/// (with the raw files' events when `keep_events`, else their numbers).
fn examine(data_dir: &Path, keep_events: bool) -> Result<Examined, LogError> {
    let scan = if keep_events {
        salvage::scan_except
    } else {
        salvage::count_except
    };
    let log_dir = data_dir.join(DB_DIR);
    let recorded = super::recorded_end(data_dir);
    match Log::open_copy(data_dir) {
        Ok(log) => {
            let mut report = log.verify();
            let mut tail_known = false;
            if report.problems.is_empty() {
                // Only a tail sled lost can be wrong: the raw files past its end.
                let tail = salvage::count_except(&log_dir, Covered::default(), log.next_seq(), None);
                let end = tail.intact.last().map_or(log.next_seq(), |seq| seq + 1);
                match lost_tail(&log, &tail, recorded) {
                    None => {
                        return Ok(Examined {
                            sled: Some(report),
                            copy: Some(log),
                            damaged: None,
                            end,
                        });
                    }
                    Some(problem) => report.problems.push(problem),
                }
                tail_known = true;
            }
            let mut side = SledSide::read(&log, 0);
            let salvage = scan(&log_dir, side.covered.clone(), 0, side.folded());
            if !tail_known {
                report.problems.extend(lost_tail(&log, &salvage, recorded));
            }
            side.problems = report.problems.clone();
            let end = log.next_seq();
            Ok(Examined {
                sled: Some(report),
                copy: Some(log),
                damaged: Some(merge(side, salvage, 0, recorded)),
                end,
            })
        }
        Err(LogError::Damaged { detail, .. } | LogError::Storage { message: detail, .. }) => {
            let side = SledSide::failed(detail, &log_dir);
            let salvage = scan(&log_dir, Covered::default(), 0, side.folded());
            Ok(Examined {
                sled: None,
                copy: None,
                damaged: Some(merge(side, salvage, 0, recorded)),
                end: 0,
            })
        }
        Err(error) => Err(error),
    }
}

/// `log export` over a data dir: sled's events in order while it reads
/// them cleanly; from its first problem on, the rest of sled's merged with
/// the raw files' copies. Lost ranges are in `skipped`.
pub fn export(data_dir: &Path, since: u64, out: &mut impl Write) -> Result<ExportReport, LogError> {
    let mut report = ExportReport::default();
    let log_dir = data_dir.join(DB_DIR);
    let recorded = super::recorded_end(data_dir);
    let (copy, side, salvage, from) = match Log::open_copy(data_dir) {
        Ok(log) => {
            log.write_base_line(since, out)?;
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
            if first_problem.is_none() {
                let tail = salvage::count_except(&log_dir, Covered::default(), log.next_seq(), None);
                if lost_tail(&log, &tail, recorded).is_none() {
                    out.flush().map_err(LogError::Output)?;
                    return Ok(report);
                }
            }
            let mut side = SledSide::default();
            if let Some(problem) = first_problem {
                side.take(Err(problem), next);
            }
            for entry in entries {
                side.take(entry, next);
            }
            side.base = log.read_base();
            let salvage = salvage::scan_except(&log_dir, side.covered.clone(), next, side.folded());
            side.problems.extend(lost_tail(&log, &salvage, recorded));
            side.holes = log.holes();
            side.checkpoint = log.read_checkpoint();
            (Some(log), side, salvage, next)
        }
        Err(LogError::Damaged { detail, .. } | LogError::Storage { message: detail, .. }) => {
            let side = SledSide::failed(detail, &log_dir);
            let salvage = salvage::scan_except(&log_dir, Covered::default(), since, side.folded());
            (None, side, salvage, since)
        }
        Err(error) => return Err(error),
    };
    let readable = merge(side, salvage, from, recorded);
    if copy.is_none() {
        // sled could not open the log: the base line, as the healthy
        // log's export writes it, from the base and kept settings the raw
        // files hold.
        let base = readable.base.clone().and_then(|base| {
            let events = readable.raw.events(0).map(|(envelope, _)| envelope);
            super::export_base(base, since, events)
        });
        if let Some(base) = base {
            let line = super::base_line(&base).map_err(|error| LogError::Storage {
                dir: data_dir.to_owned(),
                message: error.to_string(),
            })?;
            write_line(out, &line)?;
        }
    }
    readable.each(copy.as_deref(), from, |_, json| {
        write_line(out, json)?;
        report.written += 1;
        Ok(())
    })?;
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
    let log_dir = data_dir.join(DB_DIR);
    let recorded = super::recorded_end(data_dir);
    let (copy, side, salvage, size) = match Log::open_copy(data_dir) {
        Ok(log) => {
            let stats = log.stats();
            let tail = salvage::count_except(&log_dir, Covered::default(), log.next_seq(), None);
            let tail = lost_tail(&log, &tail, recorded);
            if stats.unreadable == 0 && stats.damage.is_none() && tail.is_none() {
                return Ok(stats);
            }
            let mut side = SledSide::read(&log, 0);
            side.problems.extend(tail);
            let salvage = salvage::scan_except(&log_dir, side.covered.clone(), 0, side.folded());
            (Some(log), side, salvage, stats.size_on_disk)
        }
        Err(LogError::Damaged { detail, .. } | LogError::Storage { message: detail, .. }) => {
            let side = SledSide::failed(detail, &log_dir);
            let salvage = salvage::scan_except(&log_dir, Covered::default(), 0, side.folded());
            (None, side, salvage, size_of(&log_dir))
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
    let folded = readable.folded();
    readable.each(copy.as_deref(), 0, |envelope, _| {
        stats.count(envelope, folded.is_some_and(|base| envelope.seq <= base));
        Ok(())
    })?;
    Ok(stats)
}

/// `log import`: the whole file is checked before the data dir is touched.
pub fn import(data_dir: &Path, input: impl std::io::BufRead) -> Result<u64, LogError> {
    let exported = super::read_export(input).map_err(|error| LogError::Import {
        line: error.line,
        message: error.message,
    })?;
    let mut log = Log::open(data_dir)?;
    let imported = log.import_export(&exported)?;
    log.close()?;
    Ok(imported)
}

/// `log repair`: a fresh log from every readable event; `None` when the
/// log is not damaged (nothing is changed then).
pub fn repair(data_dir: &Path, now: Timestamp) -> Result<Option<RepairReport>, LogError> {
    let log_dir = data_dir.join(DB_DIR);
    let examined = examine(data_dir, true)?;
    let copy = examined.copy;
    let Some(readable) = examined.damaged else {
        // A sound log behind an unreadable end marker: the marker is what
        // needs mending (a directory in its place stays, and is reported).
        if super::read_end(data_dir).is_err() {
            super::write_end(data_dir, examined.end);
        }
        return Ok(None);
    };
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
    let (store, from_checkpoint) = projection(&readable, copy.as_deref(), data_dir)?;
    let next_seq = readable.numbers.last().map_or(0, |seq| seq + 1);
    {
        let mut log = Log::open(&building)?;
        let mut batch: Vec<Stored> = Vec::with_capacity(IMPORT_BATCH);
        let folded = readable.folded();
        readable.each(copy.as_deref(), 0, |envelope, json| {
            // The settings a fold kept stay kept, in frames of their own.
            let kept = folded.is_some_and(|base| envelope.seq <= base);
            if batch.last().is_some_and(|last| last.kept != kept) {
                log.write_stored(&batch)?;
                batch.clear();
                log.writer = None;
            }
            batch.push(Stored {
                kept,
                ..Stored::with_json(envelope, json.to_vec())
            });
            if batch.len() == IMPORT_BATCH {
                log.write_stored(&batch)?;
                batch.clear();
            }
            Ok(())
        })?;
        if !batch.is_empty() {
            log.write_stored(&batch)?;
        }
        // The readings record, which keeps the readings of folded events:
        // its blocks as sled reads them (none when it cannot open the log),
        // up to the repaired log's end.
        if let Some(copy) = copy.as_deref() {
            let blocks = copy.blocks_through(u64::MAX)?;
            let within = blocks
                .iter()
                .take_while(|block| super::readings::block_span(block).is_some_and(|(_, end)| end <= next_seq));
            log.put_blocks(&within.cloned().collect::<Vec<_>>())?;
        }
        // The scratch copy is done with: removed before the swap.
        drop(copy);
        log.next_seq = next_seq;
        for hole in &holes {
            log.record_hole(hole)?;
        }
        if let Some(base) = &readable.base {
            log.put_base(base)?;
        }
        log.write_checkpoint(&store)?;
        log.close()?;
    }
    // Swap: the damaged files aside (kept), the new log in.
    if fs::symlink_metadata(&log_dir).is_ok() {
        fs::rename(&log_dir, &moved_to).map_err(LogError::io(&log_dir))?;
    }
    fs::rename(building.join(DB_DIR), &log_dir).map_err(LogError::io(&building))?;
    super::write_end(data_dir, next_seq);
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
        kept: readable.events,
        kept_ranges: readable.numbers.ranges().collect(),
        from_raw: readable.from_raw,
        lost: readable.lost,
        moved_to,
        from_checkpoint,
        open_ended,
    }))
}

/// The store of the repaired log: the newest readable checkpoint plus the
/// kept events after it, when those run without a gap to the last kept
/// event and nothing before it was lost; else a fold of every kept event
/// (of a folded log: its base and every kept event after it).
/// Folded before anything is written, so a failure leaves nothing behind.
fn projection(readable: &Readable, log: Option<&Log>, data_dir: &Path) -> Result<(Store, bool), LogError> {
    let last = readable.numbers.last();
    if let Some(checkpoint) = &readable.checkpoint
        && let Some(applied) = checkpoint.applied
        && last.is_some_and(|last| applied <= last)
        && readable.numbers.contains(applied)
        // Events lost before it are in the checkpoint but in no rebuild.
        && readable.lost.iter().all(|problem| problem.first > applied)
    {
        // Without a gap from it to the last: it is in the last range.
        let contiguous = readable
            .numbers
            .ranges()
            .next_back()
            .is_some_and(|(first, _)| first <= applied);
        if contiguous {
            let mut store = checkpoint.clone();
            readable.each(log, applied + 1, |envelope, _| {
                guard_apply(data_dir, &mut store, envelope)
            })?;
            return Ok((store, true));
        }
    }
    // A folded log: its base, then the events after it.
    let (mut store, from) = match &readable.base {
        Some(base) => (base.clone(), readable.folded().map_or(0, |last| last.saturating_add(1))),
        None => (Store::default(), 0),
    };
    readable.each(log, from, |envelope, _| {
        // A crafted event the fold cannot take is left out of the projection.
        let _ = guard_apply(data_dir, &mut store, envelope);
        Ok(())
    })?;
    Ok((store, false))
}

/// The most events one append writes (a cycle's batch is about 30): a run
/// of at most this many intact events right after the log's last one is
/// the batch of an append a crash interrupted, never acknowledged and not
/// part of the log, rather than damage.
const UNCOMMITTED_BATCH: u64 = 256;

/// Intact events in the raw files past sled's last one: sled dropped the
/// log's tail while recovering damaged files. A short run that starts
/// right after the log's last event is an append interrupted by a crash
/// (sled leaves an unfinished batch in its files and ignores it): the
/// append never returned, so nothing that was acknowledged is missing.
fn lost_tail(log: &Log, salvage: &Salvage, recorded_end: Option<u64>) -> Option<Problem> {
    let next = log.next_seq();
    let tail = salvage.intact.from(next);
    let unfinished_append = tail.first() == Some(next)
        && recorded_end.is_none_or(|end| end <= next)
        && tail.count() <= UNCOMMITTED_BATCH
        && tail.ranges().count() == 1;
    if unfinished_append {
        return None;
    }
    // What the end marker says was acknowledged, though neither sled nor the
    // raw files hold it any more (a deleted or truncated file).
    let acknowledged_last = recorded_end.filter(|end| *end > next).map(|end| end - 1);
    let last = tail.last().max(acknowledged_last)?;
    let reason = if tail.count() == 0 {
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

/// What sled gave: which numbers it reads intact, not the events.
#[derive(Debug, Default)]
struct SledSide {
    covered: Covered,
    corrupt: BTreeMap<u64, String>,
    problems: Vec<Problem>,
    holes: Vec<Hole>,
    checkpoint: Option<Store>,
    /// The base of the folds, if retention folded events.
    base: Option<Store>,
}

impl SledSide {
    /// sled could not open the log in `log_dir`: its base, if retention
    /// folded it, is the one its raw files hold.
    fn failed(detail: String, log_dir: &Path) -> SledSide {
        SledSide {
            problems: vec![Problem {
                first: 0,
                last: None,
                reason: format!("sled cannot open the log: {detail}"),
            }],
            base: salvage::find_base(log_dir),
            ..SledSide::default()
        }
    }

    /// What sled can read from `since` on.
    fn read(log: &Log, since: u64) -> SledSide {
        let mut side = SledSide::default();
        for entry in log.read_from(since) {
            side.take(entry, since);
        }
        side.holes = log.holes();
        side.checkpoint = log.read_checkpoint();
        side.base = log.read_base();
        side
    }

    /// The last number a fold removed, if any.
    fn folded(&self) -> Option<u64> {
        self.base.as_ref().and_then(|base| base.applied)
    }

    fn take(&mut self, entry: Result<(Envelope, Vec<u8>), LogError>, expected: u64) {
        match entry {
            Ok((envelope, _)) => self.covered.insert(envelope.seq),
            Err(LogError::Corrupt { seq, reason }) => {
                if seq < crate::events::MAX_SEQ {
                    self.corrupt.insert(seq, reason);
                }
            }
            Err(error) => {
                let first = self.covered.last().map_or(expected, |last| last + 1);
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
    // Numbers at or before the base's last were folded, not lost: only the
    // kept settings are there, and only a damaged copy of one is lost.
    let folded = side.folded();
    let floor = folded.map_or(since, |base| since.max(base.saturating_add(1)));
    let mut numbers = side.covered.clone();
    let mut from_raw = 0;
    for (first, last) in salvage.intact.from(since).ranges() {
        for seq in first..=last {
            if !numbers.contains(seq) {
                numbers.insert(seq);
                from_raw += 1;
            }
        }
    }
    let mut readable = Readable {
        events: numbers.count(),
        from_raw,
        problems: side.problems,
        holes: side.holes,
        checkpoint: side.checkpoint,
        base: side.base,
        raw: salvage.index,
        since,
        ..Readable::default()
    };
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
        .chain(numbers.last())
        .max()
        .unwrap_or(0)
        .saturating_add(DAMAGED_COPY_SLACK);
    known.extend(salvage.damaged.range(since..horizon));
    let mut lost: Vec<Problem> = Vec::new();
    // Before the fold: a damaged kept event, readable nowhere.
    let folded_known = {
        let mut after = known.split_off(&floor);
        std::mem::swap(&mut known, &mut after);
        after
    };
    for seq in folded_known {
        if !numbers.contains(seq) && (side.corrupt.contains_key(&seq) || salvage.damaged.contains(&seq)) {
            push_lost(&mut lost, seq, seq, &side.corrupt);
        }
    }
    let first = known
        .first()
        .copied()
        .into_iter()
        .chain(numbers.from(floor).first())
        .min();
    let last = known.last().copied().into_iter().chain(numbers.last()).max();
    let (Some(first), Some(last)) = (first, last) else {
        readable.lost = lost;
        readable.numbers = numbers;
        return readable;
    };
    // Walk the gaps between readable ranges: never as many steps as the
    // numbers span.
    let mut seq = first;
    let gap = |from: u64, to: u64, lost: &mut Vec<Problem>| {
        for (from, to) in super::uncovered(from, to, &readable.holes) {
            push_lost(lost, from, to, &side.corrupt);
        }
    };
    for (range_first, range_last) in numbers.ranges() {
        if range_last < seq {
            continue;
        }
        if range_first > last {
            break;
        }
        if range_first > seq {
            gap(seq, range_first - 1, &mut lost);
        }
        seq = range_last + 1;
    }
    if seq <= last {
        gap(seq, last, &mut lost);
    }
    readable.lost = lost;
    readable.numbers = numbers;
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
