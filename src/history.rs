//! History: each window's used ratio over time, read from recorded fetches,
//! with every reset marked and a summary per window (peak, average peak per
//! cycle, the cycles that ran out and when).
//!
//! The series is built as the readings stream past, downsampled into
//! buckets of `every` (the highest reading of each bucket, so a peak is
//! never averaged away), so memory follows the number of buckets, not the
//! length of the log. A reset always starts a new point, even inside a
//! bucket, so the chart's drops are where they happened.
//!
//! [`Builder`] is pure; [`read`] feeds it from a data dir's log (opened in
//! place) or an exported file, [`read_log`] from an open log (an owner
//! answers its followers with it), and `quotatrack history`
//! ([`crate::commands::history`]) renders it with [`crate::render::history`].

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::events::Envelope;
use crate::providers::ProviderId;

/// A fall in the used ratio larger than this is a reset, whatever the
/// provider's reset time said.
const RESET_DROP: f64 = 0.02;

/// Which readings to keep.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// One provider, or all.
    pub provider: Option<ProviderId>,
    /// One window id, or all.
    pub window: Option<String>,
    /// Readings at or after this time.
    pub since: Option<Timestamp>,
    /// Readings at or before this time.
    pub until: Option<Timestamp>,
    /// The bucket width; `None` keeps every reading.
    pub every: Option<SignedDuration>,
}

/// One point of a series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// The time of the reading (the highest one, when downsampled).
    pub at: Timestamp,
    /// The used ratio, 0..1.
    pub used_ratio: f64,
    /// The reset time the provider gave with it.
    pub resets_at: Option<Timestamp>,
    /// This point is the first of a new cycle.
    pub reset: bool,
}

/// The summary of one window's series.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The highest used ratio seen.
    pub peak: f64,
    /// When it was first seen.
    pub peak_at: Option<Timestamp>,
    /// How many cycles the series covers (a partial first or last one counts).
    pub cycles: usize,
    /// The mean of each cycle's highest used ratio.
    pub average_cycle_peak: f64,
    /// When each cycle that ran out (reached 100 %) first did.
    pub ran_out: Vec<Timestamp>,
}

/// One window's readings over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// The provider.
    pub provider: ProviderId,
    /// The window id.
    pub window: String,
    /// The points, in time order.
    pub points: Vec<Point>,
    /// Its summary, over every reading (not only the kept points).
    pub summary: Summary,
}

/// Builds series from readings as they come, in time order.
#[derive(Debug, Default)]
pub struct Builder {
    query: Query,
    /// Each window's series being built, in the order first seen.
    series: Vec<(ProviderId, String, Building)>,
    /// The series the last reading went to: readings come series by
    /// series (the readings record's blocks), so most need no search.
    last: usize,
}

/// A series being built.
#[derive(Debug, Default)]
struct Building {
    points: Vec<Point>,
    /// The bucket the last point belongs to.
    bucket: Option<i64>,
    /// The last reading (not point), to see resets.
    last: Option<(f64, Option<Timestamp>)>,
    cycle_peaks: Vec<f64>,
    cycle_ran_out: bool,
    peak: f64,
    peak_at: Option<Timestamp>,
    ran_out: Vec<Timestamp>,
}

impl Builder {
    /// A builder for `query`.
    pub fn new(query: Query) -> Builder {
        Builder {
            query,
            series: Vec::new(),
            last: 0,
        }
    }

    /// Takes one event; only successful fetches carry readings (see
    /// [`crate::log::readings::of`]).
    pub fn event(&mut self, envelope: &Envelope) {
        for reading in crate::log::readings::of(envelope) {
            self.recorded(&reading);
        }
    }

    /// Takes one reading of the log's (an event's, or the readings
    /// record's).
    pub fn recorded(&mut self, reading: &crate::log::readings::Reading) {
        self.reading(
            reading.provider,
            &reading.window,
            reading.at,
            reading.used_ratio,
            reading.resets_at,
        );
    }

    /// Takes one reading.
    pub fn reading(
        &mut self,
        provider: ProviderId,
        window: &str,
        at: Timestamp,
        used_ratio: f64,
        resets_at: Option<Timestamp>,
    ) {
        let query = &self.query;
        if query.provider.is_some_and(|wanted| wanted != provider)
            || query.window.as_deref().is_some_and(|wanted| wanted != window)
            || query.since.is_some_and(|since| at < since)
            || query.until.is_some_and(|until| at > until)
            || !used_ratio.is_finite()
            // A reading quoting a reset that had already passed when it was
            // taken says nothing of the cycle running then (`status` shows
            // such a window as unknown, and so does its history).
            || resets_at.is_some_and(|reset| reset <= at)
        {
            return;
        }
        let used_ratio = used_ratio.clamp(0.0, 1.0);
        let bucket = self.query.every.map(|every| bucket_of(at, every));
        let same = |(id, name, _): &(ProviderId, String, Building)| *id == provider && name == window;
        if !self.series.get(self.last).is_some_and(same) {
            self.last = match self.series.iter().position(same) {
                Some(found) => found,
                None => {
                    self.series.push((provider, window.to_owned(), Building::default()));
                    self.series.len() - 1
                }
            };
        }
        if let Some((_, _, building)) = self.series.get_mut(self.last) {
            building.take(at, used_ratio, resets_at, bucket);
        }
    }

    /// The series, by provider then window id.
    pub fn finish(mut self) -> Vec<Series> {
        self.series
            .sort_by(|(a_id, a_name, _), (b_id, b_name, _)| (a_id, a_name).cmp(&(b_id, b_name)));
        self.series
            .into_iter()
            .map(|(provider, window, building)| {
                let cycles = building.cycle_peaks.len();
                let summary = Summary {
                    peak: building.peak,
                    peak_at: building.peak_at,
                    cycles,
                    average_cycle_peak: if cycles == 0 {
                        0.0
                    } else {
                        building.cycle_peaks.iter().sum::<f64>() / cycles as f64
                    },
                    ran_out: building.ran_out,
                };
                Series {
                    provider,
                    window,
                    points: building.points,
                    summary,
                }
            })
            .collect()
    }
}

impl Building {
    fn take(&mut self, at: Timestamp, used_ratio: f64, resets_at: Option<Timestamp>, bucket: Option<i64>) {
        let reset = match self.last {
            None => false,
            Some((last_ratio, last_resets)) => {
                used_ratio < last_ratio - RESET_DROP
                    || matches!((last_resets, resets_at), (Some(before), Some(now)) if now > before && used_ratio < last_ratio)
            }
        };
        self.last = Some((used_ratio, resets_at));
        if reset || self.cycle_peaks.is_empty() {
            self.cycle_peaks.push(used_ratio);
            self.cycle_ran_out = false;
        }
        if let Some(peak) = self.cycle_peaks.last_mut() {
            *peak = peak.max(used_ratio);
        }
        if used_ratio > self.peak || self.peak_at.is_none() {
            self.peak = used_ratio;
            self.peak_at = Some(at);
        }
        if used_ratio >= 1.0 && !self.cycle_ran_out {
            self.cycle_ran_out = true;
            self.ran_out.push(at);
        }
        let point = Point {
            at,
            used_ratio,
            resets_at,
            reset,
        };
        let same_bucket = bucket.is_some() && bucket == self.bucket && !reset;
        match self.points.last_mut() {
            Some(last) if same_bucket => {
                if used_ratio > last.used_ratio {
                    *last = Point {
                        reset: last.reset,
                        ..point
                    };
                }
            }
            _ => self.points.push(point),
        }
        self.bucket = bucket;
    }
}

/// The index of the `every`-wide bucket `at` falls in, counted from the epoch.
fn bucket_of(at: Timestamp, every: SignedDuration) -> i64 {
    let width = every.as_secs().max(1);
    at.as_second().div_euclid(width)
}

/// The series of every reading in `events` that `query` keeps.
pub fn series<'a>(events: impl IntoIterator<Item = &'a Envelope>, query: Query) -> Vec<Series> {
    let mut builder = Builder::new(query);
    for envelope in events {
        builder.event(envelope);
    }
    builder.finish()
}

/// Where `history` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The log of a data dir, read in place (see [`read`]).
    DataDir(std::path::PathBuf),
    /// An exported file (`log export` output or an incident), JSON lines.
    File(std::path::PathBuf),
}

/// Why `history` could not read its source.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The log could not be read.
    #[error(transparent)]
    Log(#[from] crate::log::LogError),
    /// The file could not be opened.
    #[error("cannot read {}: {error}; pass a file written by `quotatrack log export`", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A line of the file is not an event.
    #[error("{}: line {}: {}; pass a file written by `quotatrack log export`", path.display(), error.line, error.message)]
    Line {
        /// The file.
        path: std::path::PathBuf,
        /// The line and why.
        error: crate::events::LineError,
    },
}

/// What was read, besides the series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Read {
    /// The series, by provider then window.
    pub series: Vec<Series>,
    /// Events read.
    pub events: u64,
    /// Log entries that could not be read and were skipped.
    pub skipped: u64,
}

/// Reads `source` into the series `query` keeps, downsampling as it
/// reads (memory follows the number of buckets, not the log's length).
///
/// A data dir's log is opened in place, which takes its owner lock for the
/// read (without waiting): a data dir another process owns is
/// [`LogError::Owned`](crate::log::LogError::Owned), and `quotatrack
/// history` then asks that owner ([`crate::owner::ask_history`]). A data
/// dir without a log reads as empty, and nothing is created in it.
pub fn read(source: &Source, query: Query) -> Result<Read, HistoryError> {
    match source {
        Source::DataDir(data_dir) => {
            let log_dir = std::fs::symlink_metadata(data_dir.join(crate::log::DB_DIR));
            if log_dir.is_err_and(|error| error.kind() == std::io::ErrorKind::NotFound) {
                return Ok(Read::default());
            }
            let log = crate::log::Log::open(data_dir)?;
            // Dropped, not closed: nothing was appended, so there is no
            // write-ahead log for `close` to fold.
            read_log(&log, query)
        }
        Source::File(path) => {
            let mut builder = Builder::new(query);
            let mut read = Read::default();
            let file = std::fs::File::open(path).map_err(|error| HistoryError::File {
                path: path.clone(),
                error,
            })?;
            let mut reader = std::io::BufReader::new(file);
            // An export after a fold: its base line passed over, the
            // readings of its folded events read from the lines after it.
            let (skipped, covered, first) = crate::log::read_head(&mut reader, &mut |reading| {
                builder.recorded(reading)
            })
            .map_err(|error| HistoryError::Line {
                path: path.clone(),
                error,
            })?;
            let rest = std::io::Read::chain(std::io::Cursor::new(first), reader);
            for line in crate::events::read_lines(rest) {
                let envelope = line.map_err(|mut error| {
                    error.line += skipped;
                    HistoryError::Line {
                        path: path.clone(),
                        error,
                    }
                })?;
                read.events += 1;
                if envelope.seq >= covered {
                    builder.event(&envelope);
                }
            }
            read.series = builder.finish();
            Ok(read)
        }
    }
}

/// Reads an open log (this process's own, or an owner's
/// [`LogReader`](crate::log::LogReader)) into the series `query` keeps:
/// the readings record first (it outlives folded events), then the events
/// it does not cover yet.
pub fn read_log(log: &crate::log::Log, query: Query) -> Result<Read, HistoryError> {
    let (since, until) = (query.since, query.until);
    let mut builder = Builder::new(query);
    let mut read = Read::default();
    let covered = log.readings(since, until, |reading| builder.recorded(reading))?;
    read.events = covered.events;
    read.skipped = covered.unreadable;
    for entry in log.entries(covered.end) {
        match entry {
            Ok(envelope) => {
                read.events += 1;
                builder.event(&envelope);
            }
            Err(crate::log::LogError::Corrupt { .. }) => read.skipped += 1,
            Err(error) => return Err(error.into()),
        }
    }
    read.series = builder.finish();
    Ok(read)
}

/// A time given as RFC 3339, or as a duration before `now` (`7d`, `36h`,
/// `90m`, `2w`).
pub fn parse_time(text: &str, now: Timestamp) -> Result<Timestamp, String> {
    if let Ok(at) = text.trim().parse::<Timestamp>() {
        return Ok(at);
    }
    let ago = parse_duration(text).map_err(|_| {
        format!("{text:?} is neither a time (2026-08-22T12:00:00Z) nor a duration before now (7d, 36h, 90m)")
    })?;
    now.checked_sub(ago)
        .map_err(|_| format!("{text:?} reaches before the earliest time there is"))
}

/// A duration: a whole number and a unit, `s`, `m`, `h`, `d` or `w`
/// (`15m`, `1h`, `7d`), more than zero and at most ten years.
pub fn parse_duration(text: &str) -> Result<SignedDuration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => 0,
    };
    match number.parse::<i64>() {
        Ok(count) if unit_seconds > 0 && count > 0 && count <= 10 * 366 * 86_400 / unit_seconds => {
            Ok(SignedDuration::from_secs(count * unit_seconds))
        }
        _ => Err(format!(
            "{text:?} is not a duration: a whole number and s, m, h, d or w (15m, 1h, 7d), more than 0 and at most ten years"
        )),
    }
}

/// The most points a default `--every` gives over the span.
pub const DEFAULT_STEPS: i64 = 240;
