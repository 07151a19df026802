//! The log: an append-only sled tree of events keyed by big-endian `u64`
//! sequence numbers, plus a checkpoints tree holding the store folded up to
//! some sequence. This is the only module that names sled.
//!
//! - **Durability.** `append` writes a batch and flushes (fsync) before it
//!   returns: an event whose append returned survives a crash.
//! - **Integrity.** Each value is a CRC-32 of the JSON followed by the JSON,
//!   so a flipped byte is reported with its sequence number instead of
//!   being read as a different event.
//! - **Opening is O(tail).** `load` starts from the latest checkpoint and
//!   folds only the events after it; the checkpoint is a cache, so an
//!   unreadable one costs a full rebuild, never data.
//! - **Ownership.** sled's file lock makes one process the owner. A second
//!   opener gets [`LogError::Owned`] at once, with the owner's pid from
//!   `owner.pid`, never a hang. sled lets go of the lock only when its
//!   background threads end, so [`Log::close`] and a dropped `Log` wait
//!   for that (bounded, see `log::Release`): the same process, or a command
//!   started next, opens the log at once.
//! - **Damage is bounded.** Every call into sled runs behind a guard: a
//!   panic inside sled becomes [`LogError::Damaged`], opening is watched
//!   and given up after [`OPEN_PATIENCE`], and a read that fails ends the
//!   iteration (sled's iterator would yield the same error forever). What
//!   sled can no longer read is found in the raw files by [`salvage`], and
//!   [`damage`] builds `log verify`, `export`, `stats` and `repair` on both.
//! - **Private files.** The data dir and the log's dirs are created 0700
//!   and sled's files set to 0600 whenever the log is opened or closed; a
//!   data dir the user made is never chmod-ed, only warned about.

pub mod damage;
mod decode;
pub mod frame;
pub mod readings;
pub mod retention;
pub mod salvage;
pub mod vacuum;

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::events::{Envelope, Event, Stream};
use crate::files;
use crate::store::Store;
use decode::Decoder;

/// The sled directory inside the data dir.
pub const DB_DIR: &str = "log";
/// sled's blob directory inside [`DB_DIR`].
const BLOBS_DIR: &str = "blobs";
/// The tree that records the holes a repair left (see [`Hole`]).
const REPAIRS_TREE: &str = "repairs";
/// How long opening sled may take before the log counts as damaged.
pub const OPEN_PATIENCE: Duration = Duration::from_secs(5);
/// The file naming the owning process.
const OWNER_FILE: &str = "owner.pid";
/// The file beside the log holding the sequence number after the last
/// acknowledged append. sled's recovery of damaged files can silently drop
/// the log's tail; an opener that finds the log ending before this number
/// knows events were lost, and refuses to write new ones over their
/// numbers. Written after sled's flush and without one of its own: after a
/// crash it is behind the log or unreadable, never ahead.
const END_FILE: &str = "log.end";
/// The checkpoint key in the checkpoints tree.
const CHECKPOINT_KEY: &[u8] = b"store";
/// The CRC-32 that starts every stored value.
pub(crate) const CRC_BYTES: usize = 4;
/// How many events an import writes per flushed batch.
const IMPORT_BATCH: usize = 10_000;
/// The most events one appended frame holds (a cycle's batch is about 30).
const APPEND_FRAME: usize = 256;
/// The events per frame when many are written at once (import, repair,
/// retention's conversion of format-1 entries).
const BULK_FRAME: usize = 64;
/// A new keyframe after this many frames: reading any frame costs at most
/// two decompressions, and what a keyframe says stays close to what its
/// deltas say. High enough that [`GROUP_EVENTS`] ends a unit of the
/// engine's appends (a frame per batch, a few events each): retention
/// regroups each complete unit into one frame, and fewer, larger units
/// compress better and cost sled fewer rewrites (90 simulated days: 24.3
/// MB with 256, 32.0 MB with 64).
const KEYFRAME_EVERY: u32 = 256;
/// A new keyframe after this many events: retention rewrites a keyframe
/// with its deltas at once, and that must stay a short step.
const GROUP_EVENTS: u32 = 1_024;
/// A keyframe's text shorter than this makes a poor reference: the next
/// frame becomes a keyframe instead.
const MIN_KEYFRAME_TEXT: usize = 2_048;
/// The checkpoint key of the base: the store folded from the events that
/// retention removed (see [`retention`]).
const BASE_KEY: &[u8] = b"base";
/// The key [`probe`] writes and removes at open.
const PROBE_KEY: &[u8] = b"probe";

/// The event log of one data dir, owned by this process while open.
pub struct Log {
    db: sled::Db,
    events: sled::Tree,
    checkpoints: sled::Tree,
    /// The readings record ([`readings`]).
    readings: sled::Tree,
    next_seq: u64,
    dir: PathBuf,
    /// The keyframe new frames are compressed against.
    writer: Option<Writer>,
    /// Where the retention pass in progress goes on.
    retention: Option<retention::Cursor>,
    /// Where the last complete retention pass ended.
    frontier: Option<u64>,
    /// Where the last pass stopped regrouping units (the units before it
    /// are one frame each).
    regrouped: Option<u64>,
    /// The end marker, open for in-place writes after the first append.
    end_file: Option<fs::File>,
    /// The readings block being gathered by retention's steps.
    pending_readings: Option<readings::Pending>,
    /// Shared with the log's readers; the last one dropped waits until
    /// sled has let go of the log. Keep this field last: fields drop in
    /// order, so every sled handle above is gone before it.
    release: std::sync::Arc<Release>,
}

/// The keyframe appends compress against.
struct Writer {
    key: u64,
    text: Vec<u8>,
    compressor: frame::Compressor,
    frames: u32,
    events: u32,
}

/// One event as it is stored: its number, clock reading, whether it
/// holds an exchange, and its JSON.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) seq: u64,
    pub(crate) at: i64,
    pub(crate) exchange: bool,
    /// A `settings_changed` a fold kept ([`frame::FLAG_KEPT`]).
    pub(crate) kept: bool,
    pub(crate) json: Vec<u8>,
}

impl Stored {
    pub(crate) fn of(envelope: &Envelope) -> Stored {
        Stored::with_json(envelope, envelope.to_json())
    }

    pub(crate) fn with_json(envelope: &Envelope, json: Vec<u8>) -> Stored {
        Stored {
            seq: envelope.seq,
            at: envelope.at.as_second(),
            exchange: matches!(envelope.payload, Event::FetchCompleted { exchange: Some(_), .. }),
            kept: false,
            json,
        }
    }
}

/// What can go wrong with the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Another process holds the data dir.
    #[error("the data dir {} is owned by another quotatrack{}; stop it or use another --data-dir", dir.display(), pid.map_or_else(String::new, |pid| format!(" (pid {pid})")))]
    Owned {
        /// The data dir.
        dir: PathBuf,
        /// The owner's pid, when it wrote one.
        pid: Option<u32>,
    },
    /// A stored entry cannot be read.
    #[error("log entry {seq} is unreadable: {reason}")]
    Corrupt {
        /// Its sequence number.
        seq: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The log's files are damaged: sled cannot open or read them.
    #[error("the log in {} is damaged ({detail}); run `quotatrack log repair`", dir.display())]
    Damaged {
        /// The data dir.
        dir: PathBuf,
        /// What failed.
        detail: String,
    },
    /// `import` into a data dir that already has events.
    #[error("import needs an empty data dir; {} already holds {events} events", dir.display())]
    NotEmpty {
        /// The data dir.
        dir: PathBuf,
        /// How many events it holds.
        events: usize,
    },
    /// A line of an import file is not an event, or is out of order.
    #[error("line {line}: {message}")]
    Import {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The storage engine failed.
    #[error("log storage in {}: {message}", dir.display())]
    Storage {
        /// The data dir.
        dir: PathBuf,
        /// sled's message.
        message: String,
    },
    /// Reading or writing a file or directory of the data dir failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed (part of this message, so not a `source`).
        error: io::Error,
    },
    /// Writing the output (of `export`) failed.
    #[error("cannot write the output: {0}")]
    Output(io::Error),
}

impl LogError {
    /// An I/O error about `path`.
    pub fn io(path: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
        move |error| LogError::Io {
            path: path.to_owned(),
            error,
        }
    }
}

/// A range of sequence numbers a `log repair` could not recover; kept in
/// the repaired log so `verify` tells this known hole from new damage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hole {
    /// The first lost sequence number.
    pub first: u64,
    /// The last lost sequence number.
    pub last: u64,
    /// When the repair ran.
    pub repaired_at: Timestamp,
    /// Where the damaged files were moved, relative to the data dir.
    pub moved_to: String,
}

/// A damaged range of sequence numbers and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The first sequence number concerned.
    pub first: u64,
    /// The last one; `None` when everything from `first` on is unreadable.
    pub last: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events read successfully.
    pub events: u64,
    /// The first unreadable or out-of-place entry.
    pub first_problem: Option<(u64, String)>,
    /// Every damaged range sled showed, in order.
    pub problems: Vec<Problem>,
    /// Holes a past repair recorded (not damage).
    pub holes: Vec<Hole>,
    /// Whether the checkpoint plus its tail equals the full rebuild;
    /// `None` when there is no checkpoint.
    pub checkpoint_agrees: Option<bool>,
}

/// What `export` wrote and what it could not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Events written.
    pub written: u64,
    /// Entries skipped: sequence number and why.
    pub skipped: Vec<(u64, String)>,
    /// Events sled could not give that were written from the raw files.
    pub from_raw: u64,
    /// Why the log counts as damaged, when it does.
    pub damage: Option<String>,
}

/// Counts for `log stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// All readable events.
    pub events: u64,
    /// Unreadable entries (known to have existed, not readable anywhere).
    pub unreadable: u64,
    /// Events read from the raw files because sled could not give them.
    pub from_raw: u64,
    /// Why the log counts as damaged, when it does.
    pub damage: Option<String>,
    /// Events by `type`.
    pub by_type: BTreeMap<&'static str, u64>,
    /// Events by provider (`-` for none).
    pub by_provider: BTreeMap<String, u64>,
    /// The oldest clock reading of the log's history (after the fold,
    /// when retention folded events: not the settings it kept).
    pub first_at: Option<Timestamp>,
    /// Of the events, the `settings_changed` folds kept from before their
    /// base ([`frame::FLAG_KEPT`]).
    pub kept_settings: u64,
    /// The oldest clock reading of those.
    pub kept_first_at: Option<Timestamp>,
    /// The last clock reading.
    pub last_at: Option<Timestamp>,
    /// Bytes on disk.
    pub size_on_disk: u64,
    /// The oldest fetch that still holds its exchange (body).
    pub oldest_body: Option<Timestamp>,
    /// Bytes of stored values by the hour (since the epoch) of their first
    /// event.
    pub stored_by_hour: BTreeMap<i64, u64>,
}

impl Stats {
    /// Stored bytes per day over the last 7 days of events (over the hours
    /// the log covers, when it is younger).
    pub fn per_day(&self) -> Option<u64> {
        const WEEK: i64 = 7 * 24;
        let last = *self.stored_by_hour.keys().next_back()?;
        let first = *self.stored_by_hour.keys().next()?;
        let hours = (last - first + 1).clamp(1, WEEK);
        let bytes: u64 = self
            .stored_by_hour
            .range(last - WEEK + 1..=last)
            .map(|(_, bytes)| *bytes)
            .sum();
        Some(bytes * 24 / hours as u64)
    }

    /// The report `log stats` prints.
    pub fn lines(&self) -> Vec<String> {
        let time = |at: Option<Timestamp>| at.map_or_else(|| "-".to_owned(), crate::wire::rfc3339_seconds);
        let mut lines = vec![
            format!("events        {}", self.events),
            format!("unreadable    {}", self.unreadable),
            format!("size on disk  {} bytes", self.size_on_disk),
            format!(
                "per day       {}",
                self.per_day().map_or_else(
                    || "-".to_owned(),
                    |bytes| format!("{bytes} bytes stored (last 7 days of events)")
                )
            ),
            format!("first         {}", time(self.first_at)),
        ];
        if self.kept_settings > 0 {
            lines.push(format!(
                "kept settings {} settings_changed a fold kept, from {} (before the first event)",
                self.kept_settings,
                time(self.kept_first_at)
            ));
        }
        lines.extend([
            format!("first body    {}", time(self.oldest_body)),
            format!("last          {}", time(self.last_at)),
            "by type:".to_owned(),
        ]);
        lines.extend(self.by_type.iter().map(|(name, count)| format!("  {name:<20} {count}")));
        lines.push("by provider:".to_owned());
        lines.extend(
            self.by_provider
                .iter()
                .map(|(name, count)| format!("  {name:<20} {count}")),
        );
        lines
    }
}

impl Log {
    /// Opens (or creates) the log in `data_dir` and takes ownership of it.
    /// Damaged files give [`LogError::Damaged`], in bounded time.
    pub fn open(data_dir: &Path) -> Result<Log, LogError> {
        prepare_data_dir(data_dir)?;
        let log_dir = data_dir.join(DB_DIR);
        for dir in [log_dir.clone(), log_dir.join(BLOBS_DIR)] {
            private_dir(data_dir, &dir)?;
        }
        // Declared before the db, so dropped after it on every early
        // return: an open that fails leaves the log free too.
        let mut release = Release::new(data_dir);
        let db = open_db(data_dir)?;
        release.hold();
        let dir = data_dir.to_owned();
        secure_files(&log_dir)?;
        let events = guard(&dir, || db.open_tree("events"))?;
        let checkpoints = guard(&dir, || db.open_tree("checkpoints"))?;
        let readings = guard(&dir, || db.open_tree(readings::TREE))?;
        let last = guard(&dir, || events.last())?;
        let next_seq = match last {
            Some((key, value)) => match key_seq(&key) {
                Some(seq) if seq < crate::events::MAX_SEQ => match frame::parse(&value) {
                    Ok((header, _, _)) if header.first == seq => header.end(),
                    _ => seq + 1,
                },
                _ => {
                    return Err(LogError::Damaged {
                        dir,
                        detail: "its last key is not a sequence number".to_owned(),
                    });
                }
            },
            None => 0,
        };
        probe(&dir, &checkpoints)?;
        let end = read_end(&dir).map_err(|detail| LogError::Damaged {
            dir: dir.clone(),
            detail,
        })?;
        if let Some(end) = end.filter(|end| *end > next_seq) {
            return Err(LogError::Damaged {
                detail: format!(
                    "events {next_seq}–{} were written but the log ends before them",
                    end - 1
                ),
                dir,
            });
        }
        let owner = dir.join(OWNER_FILE);
        // Only named in a refusal's message: replaced without an fsync (a
        // crash leaves the old pid or none, and the lock says who owns).
        files::replace_private(&owner, std::process::id().to_string().as_bytes(), false)
            .map_err(LogError::io(&owner))?;
        Ok(Log {
            db,
            events,
            checkpoints,
            readings,
            next_seq,
            dir,
            writer: None,
            retention: None,
            frontier: None,
            regrouped: None,
            end_file: None,
            pending_readings: None,
            release: std::sync::Arc::new(release),
        })
    }

    /// Opens a copy of the log in `data_dir` for reading, so that sled's
    /// recovery (which may cut a damaged file short) never touches the
    /// original. The original stays locked while the copy is read, so no
    /// engine takes the data dir meanwhile. Errors name `data_dir`.
    pub fn open_copy(data_dir: &Path) -> Result<ReadCopy, LogError> {
        let log_dir = data_dir.join(DB_DIR);
        let lock = match fs::File::open(log_dir.join("db")) {
            Ok(file) if file.metadata().is_ok_and(|meta| meta.is_file()) => lock_or_owned(data_dir, file)?,
            _ => None,
        };
        prepare_data_dir(data_dir)?;
        let scratch = data_dir.join(format!(".read-{}", std::process::id()));
        let guard = ReadCopy {
            log: None,
            scratch: scratch.clone(),
            lock,
        };
        files::create_private_dir(&scratch, false).map_err(LogError::io(&scratch))?;
        copy_tree(&log_dir, &scratch.join(DB_DIR))?;
        let mut guard = guard;
        let mut log = Log::open(&scratch).map_err(|error| match error {
            LogError::Damaged { detail, .. } => LogError::Damaged {
                dir: data_dir.to_owned(),
                detail,
            },
            LogError::Storage { message, .. } => LogError::Storage {
                dir: data_dir.to_owned(),
                message,
            },
            other => other,
        })?;
        log.dir = data_dir.to_owned();
        guard.log = Some(log);
        Ok(guard)
    }

    /// The data dir the log is in.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// The sequence number the next event gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Whether the log holds no events.
    pub fn is_empty(&self) -> bool {
        guard(&self.dir, || Ok(self.events.is_empty())).unwrap_or(false)
    }

    /// Appends a batch of events, numbering them, and flushes: when this
    /// returns, every one of them is durable.
    pub fn append(
        &mut self,
        items: impl IntoIterator<Item = (Timestamp, Stream, Event)>,
    ) -> Result<Vec<Envelope>, LogError> {
        let mut envelopes = Vec::new();
        let mut stored = Vec::new();
        for (at, stream, payload) in items {
            let envelope = Envelope {
                stream,
                seq: self.next_seq + envelopes.len() as u64,
                at,
                payload,
            };
            stored.push(Stored::of(&envelope));
            envelopes.push(envelope);
        }
        let frames = self.frames(&stored, APPEND_FRAME)?;
        self.write_frames(frames)?;
        self.flush()?;
        self.next_seq += envelopes.len() as u64;
        self.mark_end();
        Ok(envelopes)
    }

    /// Writes new frames: one frame (a cycle's batch) as a single insert,
    /// which sled makes atomic without the manifest and the extra write of
    /// a batch; several as one batch.
    fn write_frames(&mut self, mut frames: Vec<(u64, Vec<u8>)>) -> Result<(), LogError> {
        if frames.len() == 1
            && let Some((key, value)) = frames.pop()
        {
            let inserted = guard(&self.dir, || self.events.insert(key.to_be_bytes(), value).map(drop));
            if inserted.is_err() {
                self.writer = None;
            }
            return inserted;
        }
        let mut batch = sled::Batch::default();
        for (key, value) in frames {
            batch.insert(&key.to_be_bytes(), value);
        }
        self.apply(batch)
    }

    /// Records `next_seq` in the end marker after an acknowledged append:
    /// written in place through a handle kept open (fixed width, so a
    /// write never leaves a longer old value behind), without a rename or
    /// an fsync per append. The first write truncates whatever was there;
    /// a crash then leaves it empty (no marker), and otherwise the page
    /// holds the old number or the new one, never one ahead of the log.
    /// Best effort, as [`write_end`].
    fn mark_end(&mut self) {
        use std::os::unix::fs::{FileExt, OpenOptionsExt};
        if self.end_file.is_none() {
            let path = self.dir.join(END_FILE);
            let opened = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path);
            match opened {
                Ok(file) => self.end_file = Some(file),
                Err(_) => {
                    write_end(&self.dir, self.next_seq);
                    return;
                }
            }
        }
        let text = format!("{:020}", self.next_seq);
        let written = self
            .end_file
            .as_ref()
            .is_some_and(|file| file.write_all_at(text.as_bytes(), 0).is_ok());
        if !written {
            self.end_file = None;
            write_end(&self.dir, self.next_seq);
        }
    }

    /// Appends several batches, each stored as the engine's appends are
    /// (its own frames), with one write and one flush for all: a follower
    /// catching up, or a benchmark writing simulated days.
    pub fn append_batches(
        &mut self,
        batches: impl IntoIterator<Item = Vec<(Timestamp, Stream, Event)>>,
    ) -> Result<u64, LogError> {
        let mut frames = Vec::new();
        let mut next = self.next_seq;
        for items in batches {
            let stored: Vec<Stored> = items
                .into_iter()
                .map(|(at, stream, payload)| {
                    let envelope = Envelope {
                        stream,
                        seq: next,
                        at,
                        payload,
                    };
                    next += 1;
                    Stored::of(&envelope)
                })
                .collect();
            frames.extend(self.frames(&stored, APPEND_FRAME)?);
        }
        self.write_frames(frames)?;
        self.flush()?;
        let appended = next - self.next_seq;
        self.next_seq = next;
        self.mark_end();
        Ok(appended)
    }

    /// Every entry from `since` on, in sequence order; unreadable entries
    /// are `Err(Corrupt)` in their place, so a caller can report and go on.
    /// A failure of sled itself is the last item.
    pub fn entries(&self, since: u64) -> impl Iterator<Item = Result<Envelope, LogError>> + '_ {
        self.checked(since, false)
            .map(|entry| entry.map(|(envelope, _)| envelope))
    }

    /// Each entry from `since` on, decoded and checked, with its stored
    /// value. Ends after the first error of sled itself.
    fn read_from(&self, since: u64) -> Checked<'_> {
        self.checked(since, true)
    }

    /// [`Log::read_from`]; without `lines`, a frame's events come with
    /// an empty line instead of their JSON.
    fn checked(&self, since: u64, lines: bool) -> Checked<'_> {
        let start = self.frame_start(since);
        Checked {
            inner: guard(&self.dir, || Ok(self.events.range(start.to_be_bytes()..))).ok(),
            tree: &self.events,
            dir: &self.dir,
            done: false,
            since,
            lines,
            pending: VecDeque::new(),
            keyframe: None,
            decoder: Decoder::default(),
        }
    }

    /// The key to read from for the events from `since` on: the frame
    /// holding `since` when one does.
    fn frame_start(&self, since: u64) -> u64 {
        let found = guard(&self.dir, || {
            self.events.range(..=since.to_be_bytes()).next_back().transpose()
        });
        match found {
            Ok(Some((key, value))) => match (key_seq(&key), frame::parse(&value)) {
                (Some(key), Ok((header, _, _))) if header.end() > since => key,
                _ => since,
            },
            _ => since,
        }
    }

    /// Adds frames holding `items` (in sequence order) to `batch`, at most
    /// `per_frame` consecutive events each, compressed against the current
    /// keyframe (or as a new one).
    fn put_frames(&mut self, items: &[Stored], per_frame: usize, batch: &mut sled::Batch) -> Result<(), LogError> {
        for (key, value) in self.frames(items, per_frame)? {
            batch.insert(&key.to_be_bytes(), value);
        }
        Ok(())
    }

    /// The frames (key and value) holding `items`, as [`Log::put_frames`]
    /// adds them.
    fn frames(&mut self, items: &[Stored], per_frame: usize) -> Result<Vec<(u64, Vec<u8>)>, LogError> {
        let mut frames = Vec::new();
        let mut start = 0;
        while start < items.len() {
            let mut end = start + 1;
            while end < items.len() && end - start < per_frame && items[end].seq == items[end - 1].seq + 1 {
                end += 1;
            }
            let run = &items[start..end];
            start = end;
            let text = frame::pack(run[0].seq, run.iter().map(|item| item.json.as_slice()));
            let header = frame::Header {
                first: run[0].seq,
                count: run.len() as u32,
                base: 0,
                base_crc: 0,
                text_len: 0,
                first_at: run[0].at,
                last_at: run[run.len() - 1].at,
                flags: if run.iter().any(|item| item.exchange) {
                    frame::FLAG_EXCHANGES
                } else {
                    0
                } | if run.iter().any(|item| item.kept) {
                    frame::FLAG_KEPT
                } else {
                    0
                },
            };
            let value = match self.writer.as_mut() {
                Some(writer)
                    if writer.frames < KEYFRAME_EVERY
                        && writer.events < GROUP_EVENTS
                        && writer.text.len() >= MIN_KEYFRAME_TEXT
                        && writer.compressor.works() =>
                {
                    writer.frames += 1;
                    writer.events += header.count;
                    frame::encode(header, &text, Some((writer.key, &writer.text, &mut writer.compressor)))
                }
                _ => {
                    let value = frame::encode(header, &text, None);
                    self.writer = Some(Writer {
                        key: header.first,
                        compressor: frame::Compressor::new(&text),
                        text,
                        frames: 1,
                        events: header.count,
                    });
                    value
                }
            };
            let value = value.map_err(|message| {
                self.writer = None;
                self.storage_message(message)
            })?;
            frames.push((header.first, value));
        }
        Ok(frames)
    }

    /// Applies a batch to the events tree; on failure the next frame is a
    /// keyframe (the current one may not have been written).
    fn apply(&mut self, batch: sled::Batch) -> Result<(), LogError> {
        let applied = guard(&self.dir, || self.events.apply_batch(batch));
        if applied.is_err() {
            self.writer = None;
        }
        applied
    }

    /// How many events the stored values hold (from their headers).
    fn stored_events(&self) -> u64 {
        let Ok(iter) = guard(&self.dir, || Ok(self.events.iter())) else {
            return 0;
        };
        iter.take_while(Result::is_ok)
            .flatten()
            .map(|(_, value)| frame::parse(&value).map_or(1, |(header, _, _)| u64::from(header.count)))
            .sum()
    }

    /// The store as of the last event: the latest checkpoint plus the
    /// events after it. An unreadable entry on the way, or a checkpoint
    /// beyond the log's end (the log lost its tail), is
    /// [`LogError::Damaged`].
    pub fn load(&self) -> Result<Store, LogError> {
        let checkpoint = self.read_checkpoint();
        let base = self.read_base();
        let checkpoint = match (checkpoint, base) {
            (Some(checkpoint), Some(base)) if base.applied > checkpoint.applied => Some(base),
            (None, base) => base,
            (checkpoint, _) => checkpoint,
        };
        if let Some(applied) = checkpoint.as_ref().and_then(|store| store.applied)
            && applied >= self.next_seq
        {
            return Err(self.damaged(format!(
                "its checkpoint covers event {applied} but the log ends at event {}",
                self.next_seq.saturating_sub(1)
            )));
        }
        let (mut store, since) = match checkpoint {
            Some(store) => {
                let since = store.applied.map_or(0, |seq| seq + 1);
                (store, since)
            }
            None => (Store::default(), 0),
        };
        for entry in self.entries(since) {
            match entry {
                Ok(envelope) => guard_apply(&self.dir, &mut store, &envelope)?,
                Err(LogError::Corrupt { seq, reason }) => {
                    return Err(self.damaged(format!("event {seq} is unreadable: {reason}")));
                }
                Err(error) => return Err(error),
            }
        }
        Ok(store)
    }

    /// The store folded from every event, ignoring checkpoints. Two
    /// threads decode alternate chunks of the log while this one folds them
    /// in order: decoding is most of the work, and a small machine has two
    /// cores.
    pub fn rebuild(&self) -> Result<Store, LogError> {
        const CHUNK: u64 = 4_096;
        const WORKERS: u64 = 2;
        // Chunks span the numbers actually used: a log imported from a
        // high first number is not walked from 0.
        let base = self.read_base();
        let after_base = base.as_ref().and_then(|store| store.applied).map_or(0, |seq| seq + 1);
        let first = guard(&self.dir, || self.events.first())?
            .and_then(|(key, _)| key_seq(&key))
            .unwrap_or(0)
            .max(after_base)
            .min(self.next_seq);
        let n_chunks = (self.next_seq - first).div_ceil(CHUNK);
        type Batch = Vec<Result<Envelope, LogError>>;
        std::thread::scope(|scope| {
            // Each worker reads every other chunk into a batch; the batch
            // comes back once applied, and the worker empties and refills
            // it: what a worker allocates it frees, so the two never wait
            // on each other's allocator locks.
            let lanes: Vec<_> = (0..WORKERS)
                .map(|worker| {
                    let (full, filled) = std::sync::mpsc::sync_channel::<Batch>(2);
                    let (spent, emptied) = std::sync::mpsc::channel::<Batch>();
                    scope.spawn(move || {
                        for chunk in (worker..n_chunks).step_by(WORKERS as usize) {
                            let end = first + (chunk + 1) * CHUNK;
                            let mut batch = emptied.try_recv().unwrap_or_default();
                            batch.clear();
                            batch.reserve(CHUNK as usize);
                            batch.extend(self.entries(first + chunk * CHUNK).take_while(|entry| match entry {
                                Ok(envelope) => envelope.seq < end,
                                Err(LogError::Corrupt { seq, .. }) => *seq < end,
                                Err(_) => true,
                            }));
                            if full.send(batch).is_err() {
                                return;
                            }
                        }
                    });
                    (filled, spent)
                })
                .collect();
            let mut store = base.unwrap_or_default();
            for chunk in 0..n_chunks {
                let (filled, spent) = &lanes[(chunk % WORKERS) as usize];
                let mut batch = filled.recv().unwrap_or_default();
                let failed = batch.iter().position(Result::is_err);
                for envelope in batch.iter().take(failed.unwrap_or(batch.len())).flatten() {
                    guard_apply(&self.dir, &mut store, envelope)?;
                }
                if let Some(Err(error)) = failed.map(|index| batch.swap_remove(index)) {
                    return Err(error);
                }
                // The worker may have finished: then the batch is freed here.
                let _ = spent.send(batch);
            }
            Ok(store)
        })
    }

    /// Stores `store` as the checkpoint and flushes.
    pub fn write_checkpoint(&self, store: &Store) -> Result<(), LogError> {
        self.put_checkpoint(CHECKPOINT_KEY, store)
    }

    fn put_checkpoint(&self, key: &[u8], store: &Store) -> Result<(), LogError> {
        let json = serde_json::to_vec(&Checkpoint {
            v: crate::events::VERSION,
            store: store.clone(),
        })
        .map_err(|error| self.storage_message(error.to_string()))?;
        let value = pack_checkpoint(&json).unwrap_or_else(|| seal(&json));
        guard(&self.dir, || self.checkpoints.insert(key, value))?;
        self.flush()
    }

    /// The checkpointed store, if one is stored and readable.
    pub fn read_checkpoint(&self) -> Option<Store> {
        self.get_checkpoint(CHECKPOINT_KEY)
    }

    /// The base: the store folded from the events retention removed, if
    /// any were (the log's events start after its `applied`).
    pub fn read_base(&self) -> Option<Store> {
        self.get_checkpoint(BASE_KEY)
    }

    fn get_checkpoint(&self, key: &[u8]) -> Option<Store> {
        let value = guard(&self.dir, || self.checkpoints.get(key)).ok()??;
        let checkpoint: Checkpoint = if value.starts_with(CHECKPOINT_MAGIC) {
            serde_json::from_slice(&unpack_checkpoint(&value)?.0).ok()?
        } else {
            serde_json::from_slice(unseal(&value).ok()?).ok()?
        };
        (checkpoint.v == crate::events::VERSION).then_some(checkpoint.store)
    }

    /// The holes past repairs left, in order.
    pub fn holes(&self) -> Vec<Hole> {
        let Ok(tree) = guard(&self.dir, || self.db.open_tree(REPAIRS_TREE)) else {
            return Vec::new();
        };
        let Ok(items) = guard(&self.dir, || Ok(tree.iter().take(1_000_000).collect::<Vec<_>>())) else {
            return Vec::new();
        };
        items
            .into_iter()
            .map_while(Result::ok)
            .filter_map(|(_, value)| serde_json::from_slice(unseal(&value).ok()?).ok())
            .collect()
    }

    /// Records a hole a repair left.
    pub fn record_hole(&self, hole: &Hole) -> Result<(), LogError> {
        let tree = guard(&self.dir, || self.db.open_tree(REPAIRS_TREE))?;
        let json = serde_json::to_vec(hole).map_err(|error| self.storage_message(error.to_string()))?;
        guard(&self.dir, || tree.insert(hole.first.to_be_bytes(), seal(&json)))?;
        self.flush()
    }

    /// Reads every entry, checks numbering and integrity, and compares the
    /// checkpoint plus its tail with a full rebuild. Holes a repair
    /// recorded are not problems.
    pub fn verify(&self) -> VerifyReport {
        let holes = self.holes();
        let mut report = VerifyReport {
            events: 0,
            first_problem: None,
            problems: Vec::new(),
            holes: holes.clone(),
            checkpoint_agrees: None,
        };
        let base = self.read_base();
        let after_base = base.as_ref().and_then(|store| store.applied).map(|seq| seq + 1);
        let mut full = base.unwrap_or_default();
        let mut expected: Option<u64> = after_base;
        // The settings a fold kept are events of the log too, as `log
        // stats` and `log export` count them; the base already holds them.
        if let Some(after) = after_base {
            report.events += self
                .entries(0)
                .take_while(|entry| entry.as_ref().is_ok_and(|envelope| envelope.seq < after))
                .count() as u64;
        }
        for entry in self.entries(after_base.unwrap_or(0)) {
            match entry {
                Ok(envelope) => {
                    if let Some(from) = expected
                        && envelope.seq > from
                    {
                        for (first, last) in uncovered(from, envelope.seq - 1, &holes) {
                            report.problems.push(Problem {
                                first,
                                last: Some(last),
                                reason: format!("missing (the next entry is {})", envelope.seq),
                            });
                        }
                    }
                    expected = Some(envelope.seq + 1);
                    if let Err(LogError::Damaged { detail, .. }) = guard_apply(&self.dir, &mut full, &envelope) {
                        report.problems.push(Problem {
                            first: envelope.seq,
                            last: Some(envelope.seq),
                            reason: detail,
                        });
                    }
                    if let Err(reason) = out_of_bounds(&envelope) {
                        report.problems.push(Problem {
                            first: envelope.seq,
                            last: Some(envelope.seq),
                            reason,
                        });
                    }
                    report.events += 1;
                }
                Err(LogError::Corrupt { seq, reason }) => {
                    report.problems.push(Problem {
                        first: seq,
                        last: Some(seq),
                        reason,
                    });
                    expected = Some(seq.saturating_add(1));
                }
                Err(error) => {
                    report.problems.push(Problem {
                        first: expected.unwrap_or(0),
                        last: None,
                        reason: error.to_string(),
                    });
                    break;
                }
            }
        }
        let checkpoint = self.read_checkpoint();
        if let Some(applied) = checkpoint.as_ref().and_then(|store| store.applied)
            && applied >= self.next_seq
        {
            report.problems.push(Problem {
                first: self.next_seq,
                last: Some(applied),
                reason: format!("missing (the checkpoint covers up to event {applied})"),
            });
        }
        report.first_problem = report
            .problems
            .first()
            .map(|problem| (problem.first, problem.reason.clone()));
        if report.problems.is_empty()
            && let Some(checkpoint) = checkpoint
        {
            let since = checkpoint.applied.map_or(0, |seq| seq + 1);
            let mut resumed = checkpoint;
            let mut failed = false;
            for envelope in self.entries(since) {
                match envelope {
                    Ok(envelope) => failed |= guard_apply(&self.dir, &mut resumed, &envelope).is_err(),
                    Err(_) => failed = true,
                }
            }
            report.checkpoint_agrees = Some(!failed && resumed == full);
        }
        report
    }

    /// Writes every entry sled can read from `since` on as JSON lines,
    /// skipping (and reporting) unreadable ones. [`damage::export`] adds
    /// what only the raw files still hold.
    pub fn export(&self, since: u64, out: &mut impl Write) -> Result<ExportReport, LogError> {
        let mut report = ExportReport::default();
        self.write_base_line(since, out)?;
        for entry in self.read_from(since) {
            match entry {
                Ok((_, json)) => {
                    write_line(out, &json)?;
                    report.written += 1;
                }
                Err(LogError::Corrupt { seq, reason }) => report.skipped.push((seq, reason)),
                Err(error) => {
                    report.damage = Some(error.to_string());
                    break;
                }
            }
        }
        out.flush().map_err(LogError::Output)?;
        Ok(report)
    }

    /// The base an export from `since` starts with ([`base_line`]): the
    /// store retention folded the log's oldest events into, when the export
    /// reaches back to its end and it holds more than the `settings_changed`
    /// the fold kept (which the export writes anyway: a log imported from
    /// an export without a base line has only those, and exports as it
    /// was imported).
    pub fn export_base(&self, since: u64) -> Option<Store> {
        export_base(self.read_base()?, since, self.entries(0).map_while(Result::ok))
    }

    /// Writes the base line of an export from `since`, when it has one
    /// ([`Log::export_base`]), and after it a line per block of the
    /// readings record that holds readings of folded events
    /// ([`readings_line`]).
    pub(crate) fn write_base_line(&self, since: u64, out: &mut impl Write) -> Result<(), LogError> {
        match self.export_base(since) {
            Some(base) => {
                let line = base_line(&base).map_err(|error| self.storage_message(error.to_string()))?;
                write_line(out, &line)?;
                // The readings of the folded events, which `history` of the
                // imported log reads as it does here.
                for block in self.blocks_through(base.applied.unwrap_or(0))? {
                    write_line(out, readings_line(&block).as_bytes())?;
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Appends `envelopes` (checked by [`crate::events::read_import`]) to
    /// this empty log, keeping their sequence numbers, then checkpoints the
    /// folded store. Returns how many events were imported.
    pub fn import_checked(&mut self, envelopes: &[Envelope]) -> Result<u64, LogError> {
        self.import_export(&Exported {
            base: None,
            readings: Vec::new(),
            envelopes: envelopes.to_vec(),
            lines_before: 0,
        })
    }

    /// Imports an export read by [`read_export`] into this empty log: its
    /// events as [`Log::import_checked`] does and, when it starts with a
    /// base line, that base as the log's base (the events up to its end,
    /// `settings_changed` a fold kept, stored as kept again), so the log
    /// loads, verifies, replays and exports as the one exported did.
    pub fn import_export(&mut self, exported: &Exported) -> Result<u64, LogError> {
        let envelopes = &exported.envelopes[..];
        let line_of = |index: usize| exported.lines_before + index + 1;
        if !self.is_empty() {
            return Err(LogError::NotEmpty {
                dir: self.dir.clone(),
                events: self.stored_events() as usize,
            });
        }
        // With a base line, the events up to the base's end are the
        // settings the fold kept (already folded into it) and the rest
        // follow it at once.
        let gap = match &exported.base {
            Some(base) => {
                let applied = check_base(base, envelopes, exported.lines_before)?;
                envelopes.partition_point(|envelope| envelope.seq <= applied)
            }
            // Settings before a gap are the ones a fold kept: stored as kept
            // again, with a base folded from them that ends before the
            // events after the gap (which is where loads and `log verify`
            // start).
            None => envelopes
                .windows(2)
                .rposition(|pair| pair[1].seq > pair[0].seq + 1)
                .map_or(0, |at| at + 1),
        };
        check_readings(exported)?;
        // Folded first: an event the store cannot take rejects the file
        // before anything is written.
        let mut store = exported.base.clone().unwrap_or_default();
        for (index, envelope) in envelopes.iter().enumerate() {
            if exported.base.is_none() || index >= gap {
                guard_apply(&self.dir, &mut store, envelope).map_err(|_| LogError::Import {
                    line: line_of(index),
                    message: format!("event {} has a value the store cannot take", envelope.seq),
                })?;
            }
            out_of_bounds(envelope).map_err(|message| LogError::Import {
                line: line_of(index),
                message: format!("log entry {}: {message}", envelope.seq),
            })?;
        }
        let (kept, rest) = envelopes.split_at(gap);
        let base = match &exported.base {
            Some(base) => Some(base.clone()),
            None => rest.first().filter(|_| !kept.is_empty()).map(|first| {
                let mut base = Store::from_events(kept);
                base.applied = Some(first.seq - 1);
                base
            }),
        };
        if let Some(base) = base {
            if !kept.is_empty() {
                let stored: Vec<Stored> = kept
                    .iter()
                    .map(|envelope| Stored {
                        kept: true,
                        ..Stored::of(envelope)
                    })
                    .collect();
                let mut batch = sled::Batch::default();
                self.put_frames(&stored, BULK_FRAME, &mut batch)?;
                self.apply(batch)?;
                self.writer = None;
            }
            self.put_base(&base)?;
        }
        self.put_blocks(&exported.readings)?;
        for chunk in rest.chunks(IMPORT_BATCH) {
            let stored: Vec<Stored> = chunk.iter().map(Stored::of).collect();
            let mut batch = sled::Batch::default();
            self.put_frames(&stored, BULK_FRAME, &mut batch)?;
            self.apply(batch)?;
        }
        self.next_seq = envelopes.last().map_or(self.next_seq, |last| last.seq + 1);
        if let Some(applied) = exported.base.as_ref().and_then(|base| base.applied) {
            self.next_seq = self.next_seq.max(applied + 1);
        }
        self.write_checkpoint(&store)?;
        write_end(&self.dir, self.next_seq);
        secure_files(&self.dir.join(DB_DIR))?;
        Ok(envelopes.len() as u64)
    }

    /// Writes events with their stored JSON (in sequence order, gaps
    /// allowed) into this log as frames, as they are: `log repair` keeps
    /// the bytes it recovered, a batch of at most [`IMPORT_BATCH`] at a time.
    pub(crate) fn write_stored(&mut self, stored: &[Stored]) -> Result<(), LogError> {
        let mut batch = sled::Batch::default();
        self.put_frames(stored, BULK_FRAME, &mut batch)?;
        self.apply(batch)
    }

    /// Reads a JSON-lines file whole and, when every line is valid, imports
    /// it into this empty log; nothing is written when a line is not.
    pub fn import(&mut self, input: impl io::BufRead) -> Result<u64, LogError> {
        let exported = read_export(input).map_err(|error| LogError::Import {
            line: error.line,
            message: error.message,
        })?;
        self.import_export(&exported)
    }

    /// Retention by hand (`log compact`): fetch bodies older than `keep`
    /// before `now` are dropped, keeping the parse outcome, so replay of
    /// what is kept still works; a whole pass of [`Log::retain_step`].
    /// Returns how many events were shortened. On a damaged log nothing is
    /// written: [`LogError::Damaged`].
    pub fn compact(&mut self, now: Timestamp, keep: SignedDuration) -> Result<u64, LogError> {
        let retention = retention::Retention {
            bodies: Some(keep),
            events: None,
        };
        self.retention = None;
        self.frontier = None;
        self.regrouped = None;
        let mut shortened = 0;
        loop {
            let step = self.retain_step(now, &retention)?;
            shortened += step.shortened;
            if step.done {
                break;
            }
        }
        self.flush()?;
        Ok(shortened)
    }

    /// Counts by type and provider, times and size, over what sled can
    /// read ([`damage::stats`] adds the raw files on a damaged log).
    pub fn stats(&self) -> Stats {
        let mut stats = Stats {
            size_on_disk: damage::size_of(&self.dir.join(DB_DIR)),
            ..Stats::default()
        };
        let folded = self.read_base().and_then(|base| base.applied);
        for entry in self.entries(0) {
            match entry {
                Ok(envelope) => stats.count(&envelope, folded.is_some_and(|base| envelope.seq <= base)),
                Err(LogError::Corrupt { .. }) => stats.unreadable += 1,
                Err(error) => stats.damage = Some(error.to_string()),
            }
        }
        if let Ok(iter) = guard(&self.dir, || Ok(self.events.iter())) {
            for (key, value) in iter.map_while(Result::ok) {
                let at = match frame::parse(&value) {
                    Ok((header, _, _)) => Some(header.first_at),
                    Err(_) => key_seq(&key)
                        .and_then(|seq| decode(seq, &value).ok())
                        .map(|(envelope, _)| envelope.at.as_second()),
                };
                if let Some(at) = at {
                    *stats.stored_by_hour.entry(at.div_euclid(3_600)).or_default() += value.len() as u64;
                }
            }
        }
        stats
    }

    /// Entries and stored bytes (keys and values) of each of sled's trees,
    /// by name: what the log holds, against what its files take on disk.
    pub fn tree_bytes(&self) -> Vec<(String, u64, u64)> {
        let mut trees = Vec::new();
        for name in self.db.tree_names() {
            let Ok(tree) = guard(&self.dir, || self.db.open_tree(&name)) else {
                continue;
            };
            let (mut entries, mut bytes) = (0, 0);
            if let Ok(iter) = guard(&self.dir, || Ok(tree.iter())) {
                for (key, value) in iter.map_while(Result::ok) {
                    entries += 1;
                    bytes += (key.len() + value.len()) as u64;
                }
            }
            trees.push((String::from_utf8_lossy(&name).into_owned(), entries, bytes));
        }
        trees
    }

    /// Clean shutdown: flushes, releases the data dir, and opens and closes
    /// sled once more. sled folds its write-ahead log into a snapshot only
    /// while opening, so doing that here moves the cost of replaying a
    /// day's appends from the next start (where a status line waits for
    /// it) to this shutdown. Returns once sled has let go of the log (see
    /// `Release`): this process or the next command opens it at once.
    pub fn close(self) -> Result<(), LogError> {
        self.flush()?;
        let dir = self.dir.clone();
        let readers = std::sync::Arc::strong_count(&self.release) > 1;
        drop(self);
        if readers {
            // A reader still holds sled's files (a history answer in
            // flight): the log stays this process's until the last reader
            // drops, which waits for sled then. The reopen is left to the
            // next open, which does the same work.
            return secure_files(&dir.join(DB_DIR));
        }
        let mut release = Release::new(&dir);
        let result = match open_db(&dir) {
            Ok(db) => {
                release.hold();
                guard(&dir, || db.flush().map(drop))
            }
            // Another process took the dir in between (our own sled was
            // waited for, so this is not it); its open did this work.
            Err(LogError::Owned { .. }) => Ok(()),
            Err(error) => Err(error),
        };
        drop(release);
        result?;
        secure_files(&dir.join(DB_DIR))
    }

    /// Flushes everything written so far to disk.
    pub fn flush(&self) -> Result<(), LogError> {
        guard(&self.dir, || self.db.flush().map(drop))
    }

    fn damaged(&self, detail: String) -> LogError {
        LogError::Damaged {
            dir: self.dir.clone(),
            detail,
        }
    }

    fn storage_message(&self, message: String) -> LogError {
        LogError::Storage {
            dir: self.dir.clone(),
            message,
        }
    }
}

/// Locks the log's `db` file as sled does; held by another process is
/// [`LogError::Owned`] at once; held by this one while it lets go of the
/// log (see [`Release`]) is waited for, at most [`RELEASE_PATIENCE`].
fn lock_or_owned(data_dir: &Path, file: fs::File) -> Result<Option<fs::File>, LogError> {
    let (mut waited, mut retried) = (false, false);
    loop {
        match files::try_lock(&file) {
            Ok(true) => return Ok(Some(file)),
            Ok(false) => {}
            Err(_) => return Ok(None),
        }
        if !settle_own(data_dir, &mut waited, &mut retried) {
            return Err(owned(data_dir));
        }
    }
}

/// After a try to lock the log in `data_dir` met a lock: whether to try
/// again. Once, after waiting, when this process is letting go of the log
/// ([`Release::wait_for_own`]); once more at once otherwise, as this
/// process's helper thread may have let go between the try and the look
/// at [`RELEASING`] (it lets go before it unlists the file). Then no: the
/// lock is another owner's.
fn settle_own(data_dir: &Path, waited: &mut bool, retried: &mut bool) -> bool {
    if !*waited && Release::wait_for_own(data_dir) {
        *waited = true;
        return true;
    }
    !std::mem::replace(retried, true)
}

/// [`LogError::Owned`] naming the pid in `owner.pid`, when there is one.
fn owned(data_dir: &Path) -> LogError {
    LogError::Owned {
        dir: data_dir.to_owned(),
        pid: owner_pid(data_dir),
    }
}

/// The pid `owner.pid` in `data_dir` names.
fn owner_pid(data_dir: &Path) -> Option<u32> {
    fs::read_to_string(data_dir.join(OWNER_FILE))
        .ok()
        .and_then(|text| text.trim().parse().ok())
}

/// How long closing or dropping a log waits for sled to let go of it,
/// and an open that finds this process still letting go of it waits
/// again. sled's threads end within milliseconds; this bounds a machine
/// so loaded that they do not.
const RELEASE_PATIENCE: Duration = Duration::from_secs(5);

/// sled keeps its lock on the log's `db` file until its last background
/// thread lets go of the file, after the last handle is dropped. An open
/// log holds this, shared with its readers: when the last of them is
/// dropped (after its sled handles), it waits until that lock is free,
/// with a blocking `flock` on its own descriptor of the file (`flock`
/// conflicts between two open files even in one process) on a helper
/// thread, at most [`RELEASE_PATIENCE`]. So [`Log::close`] and a dropped
/// `Log` return with the log free: this process reopens it, and a command
/// started next opens it, without finding it owned.
///
/// Never a hang: when the bound passes, the drop goes on as before it
/// waited (a shutdown is not held up by sled's threads), and the file
/// stays listed as this process's to let go of until the helper thread
/// gets the lock: an open in this process that meets the lock meanwhile
/// waits once more ([`Release::wait_for_own`]) rather than calling itself
/// another owner; an open in another process is refused as owned, as it
/// would be while the log is open. The wait also ends as soon as
/// `owner.pid` names another process: it opened the log, so sled let go.
struct Release {
    dir: PathBuf,
    /// The log's `db` file, opened once sled holds it; `None` until then
    /// (or when it cannot be opened: nothing is waited for).
    file: Option<fs::File>,
}

/// Identifies a `db` file: device and inode.
type FileKey = (u64, u64);

/// The `db` files this process is letting go of (a file once per drop in
/// progress): a lock on one of these is this process's own, not another
/// owner's.
static RELEASING: std::sync::Mutex<Vec<FileKey>> = std::sync::Mutex::new(Vec::new());

impl Release {
    /// Nothing held yet, for the log in the data dir `dir`.
    fn new(dir: &Path) -> Release {
        Release {
            dir: dir.to_owned(),
            file: None,
        }
    }

    /// Opens the log's `db` file, once sled has opened (and locked) it.
    fn hold(&mut self) {
        self.file = fs::File::open(self.dir.join(DB_DIR).join("db")).ok();
    }

    /// When this process is letting go of the log in `data_dir` and sled
    /// still holds it: waits (at most [`RELEASE_PATIENCE`]) and returns
    /// true. Otherwise false at once: the lock is another process's.
    fn wait_for_own(data_dir: &Path) -> bool {
        let Ok(file) = fs::File::open(data_dir.join(DB_DIR).join("db")) else {
            return false;
        };
        let pending = file_key(&file).is_some_and(|key| releasing().contains(&key));
        if pending {
            wait_unlocked(data_dir, file, None);
        }
        pending
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        let Some(file) = self.file.take() else {
            return;
        };
        let Some(key) = file_key(&file) else {
            return;
        };
        releasing().push(key);
        wait_unlocked(&self.dir, file, Some(key));
    }
}

/// The list of files being let go of; a panic elsewhere while it was
/// held leaves it as it was, which is still a list.
fn releasing() -> std::sync::MutexGuard<'static, Vec<FileKey>> {
    RELEASING.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn file_key(file: &fs::File) -> Option<FileKey> {
    use std::os::unix::fs::MetadataExt;
    file.metadata().ok().map(|meta| (meta.dev(), meta.ino()))
}

/// Waits until `file`'s `flock` can be taken (then lets go of it at once),
/// at most [`RELEASE_PATIENCE`], or until `owner.pid` in `data_dir` names
/// another process. The lock is taken on a helper thread, which removes
/// `key` from [`RELEASING`] once it has let go, also after the wait gave
/// up. A thread that cannot start waits for nothing.
fn wait_unlocked(data_dir: &Path, file: fs::File, key: Option<FileKey>) {
    use std::sync::mpsc::RecvTimeoutError;
    let (sender, receiver) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("quotatrack-sled-release".to_owned())
        .spawn(move || {
            if lock_blocking(&file) {
                unlock(&file);
            }
            drop(file);
            if let Some(key) = key {
                unlist(key);
            }
            let _ = sender.send(());
        });
    if spawned.is_err() {
        if let Some(key) = key {
            unlist(key);
        }
        return;
    }
    let deadline = std::time::Instant::now() + RELEASE_PATIENCE;
    loop {
        match receiver.recv_timeout(Duration::from_millis(50)) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {
                let other = owner_pid(data_dir).is_some_and(|pid| pid != std::process::id());
                if other || std::time::Instant::now() >= deadline {
                    return;
                }
            }
        }
    }
}

/// Removes one listing of `key` from [`RELEASING`].
fn unlist(key: FileKey) {
    let mut list = releasing();
    if let Some(index) = list.iter().position(|listed| *listed == key) {
        list.swap_remove(index);
    }
}

/// A blocking exclusive `flock` on `file`, retried when a signal
/// interrupts it: whether it was taken (any other failure: there is
/// nothing to wait on).
fn lock_blocking(file: &fs::File) -> bool {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: flock on a descriptor the caller keeps open for the
        // call; it touches no memory.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return true;
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return false;
        }
    }
}

/// Lets go of `file`'s `flock` now. Closing the file alone may not: a
/// child this process is starting holds a copy of every descriptor until
/// it execs, and with it the lock.
fn unlock(file: &fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor the caller keeps open for the call;
    // it touches no memory.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
}

/// A second handle on an open log, for reading it on another thread while
/// its owner goes on appending (the owner answering `history` over its
/// control socket): the same sled trees, read-only through `&Log`. It keeps
/// sled's files open, so the owner drops its readers before [`Log::close`].
pub struct LogReader(Log);

impl Log {
    /// A [`LogReader`] on this log.
    pub fn reader(&self) -> LogReader {
        LogReader(Log {
            db: self.db.clone(),
            events: self.events.clone(),
            checkpoints: self.checkpoints.clone(),
            readings: self.readings.clone(),
            next_seq: self.next_seq,
            dir: self.dir.clone(),
            writer: None,
            retention: None,
            frontier: None,
            regrouped: None,
            end_file: None,
            pending_readings: None,
            release: self.release.clone(),
        })
    }
}

impl std::ops::Deref for LogReader {
    type Target = Log;

    fn deref(&self) -> &Log {
        &self.0
    }
}

/// A log opened on a scratch copy of the data dir's log (see
/// [`Log::open_copy`]); the copy is removed when this is dropped.
pub struct ReadCopy {
    log: Option<Log>,
    scratch: PathBuf,
    lock: Option<fs::File>,
}

impl std::ops::Deref for ReadCopy {
    type Target = Log;

    fn deref(&self) -> &Log {
        self.log.as_ref().expect("a read copy holds its log until dropped")
    }
}

impl Drop for ReadCopy {
    fn drop(&mut self) {
        drop(self.log.take());
        // Our own scratch copy, never the user's files.
        let _ = fs::remove_dir_all(&self.scratch);
        if let Some(lock) = self.lock.take() {
            unlock(&lock);
        }
    }
}

/// Copies the regular files of `from` (and its subdirectories) to `to`,
/// 0600/0700. A missing `from` copies nothing; a directory where sled
/// expects a file is copied as a directory, so sled sees the same damage.
fn copy_tree(from: &Path, to: &Path) -> Result<(), LogError> {
    match fs::symlink_metadata(from) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            // Something else where the log directory belongs.
            return fs::write(to, b"").map_err(LogError::io(to));
        }
        Err(_) => return Ok(()),
    }
    files::create_private_dir(to, false).map_err(LogError::io(to))?;
    for entry in fs::read_dir(from).map_err(LogError::io(from))?.flatten() {
        let path = entry.path();
        let target = to.join(entry.file_name());
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => copy_tree(&path, &target)?,
            Ok(meta) if meta.is_file() => {
                fs::copy(&path, &target).map_err(LogError::io(&path))?;
            }
            _ => {}
        }
    }
    secure_files(to)
}

impl Stats {
    /// Counts one readable event; `kept` when it is a setting a fold kept.
    fn count(&mut self, envelope: &Envelope, kept: bool) {
        self.events += 1;
        *self.by_type.entry(envelope.payload.name()).or_default() += 1;
        let provider = envelope.provider().map_or("-".to_owned(), |id| id.to_string());
        *self.by_provider.entry(provider).or_default() += 1;
        if kept {
            self.kept_settings += 1;
            self.kept_first_at.get_or_insert(envelope.at);
        } else {
            self.first_at.get_or_insert(envelope.at);
        }
        if matches!(envelope.payload, Event::FetchCompleted { exchange: Some(_), .. }) {
            self.oldest_body.get_or_insert(envelope.at);
        }
        self.last_at = Some(envelope.at);
    }
}

/// One event read: its envelope and its stored JSON.
type Read = Result<(Envelope, Vec<u8>), LogError>;

/// sled's iterator, checked: decodes each entry (a frame into its events),
/// turns a panic inside sled into an error, and ends after the first error
/// of sled itself.
struct Checked<'a> {
    inner: Option<sled::Iter>,
    tree: &'a sled::Tree,
    dir: &'a Path,
    done: bool,
    /// Events before this are not yielded (the first frame may start earlier).
    since: u64,
    /// Whether a frame's events come with their JSON lines.
    lines: bool,
    pending: VecDeque<Read>,
    /// The last keyframe read: its number, the CRC-32 of its text, a
    /// decompressor loaded with it.
    keyframe: Option<Keyframe>,
    decoder: Decoder,
}

/// A keyframe's text, ready to decompress its deltas.
pub(crate) struct Keyframe {
    pub(crate) first: u64,
    pub(crate) crc: u32,
    pub(crate) text: Vec<u8>,
    pub(crate) decompressor: Option<frame::Decompressor>,
}

impl Iterator for Checked<'_> {
    type Item = Read;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            let Some(inner) = self.inner.as_mut() else {
                self.done = true;
                return Some(Err(damaged_by_panic(self.dir)));
            };
            quiet_sled_panics();
            let item = match catch_unwind(AssertUnwindSafe(|| inner.next())) {
                Ok(item) => item,
                Err(_) => Some(Err(sled::Error::ReportableBug("a panic while reading".to_owned()))),
            };
            let (key, value) = match item {
                None => {
                    self.done = true;
                    return None;
                }
                Some(Err(error)) => {
                    self.done = true;
                    return Some(Err(classify(self.dir, error)));
                }
                Some(Ok(entry)) => entry,
            };
            self.take(&key, &value);
        }
    }
}

impl Checked<'_> {
    /// Queues what one stored value holds.
    fn take(&mut self, key: &[u8], value: &[u8]) {
        let Some(seq) = key_seq(key) else {
            self.pending.push_back(Err(LogError::Corrupt {
                seq: u64::MAX,
                reason: format!("a key of {} bytes, not 8", key.len()),
            }));
            return;
        };
        if !frame::is_frame(value) {
            let read = decode(seq, value);
            if !matches!(&read, Ok((envelope, _)) if envelope.seq < self.since) {
                self.pending.push_back(read);
            }
            return;
        }
        let tree = self.tree;
        let dir = self.dir;
        let fetch = |base: u64| -> Result<Vec<u8>, String> {
            match guard(dir, || tree.get(base.to_be_bytes())) {
                Ok(Some(value)) => Ok(value.to_vec()),
                Ok(None) => Err(format!("its keyframe {base} is missing")),
                Err(error) => Err(format!("its keyframe {base} is unreadable: {error}")),
            }
        };
        let lines = self.lines;
        let read = frame_read(
            seq,
            value,
            &mut self.keyframe,
            fetch,
            &mut self.decoder,
            |envelope, line| (envelope, if lines { line.to_vec() } else { Vec::new() }),
        );
        match read {
            Ok(events) => {
                for (envelope, json) in events {
                    if envelope.seq >= self.since {
                        self.pending.push_back(Ok((envelope, json)));
                    }
                }
            }
            Err(reason) => self.pending.push_back(Err(LogError::Corrupt { seq, reason })),
        }
    }
}

/// The events of the frame stored under `seq`, checked: its checksum, its
/// keyframe (from `keyframe` when it is the one, else read through
/// `fetch`, and kept there), its numbering.
pub(crate) fn frame_events(
    seq: u64,
    value: &[u8],
    keyframe: &mut Option<Keyframe>,
    fetch: impl FnOnce(u64) -> Result<Vec<u8>, String>,
) -> Result<Vec<(Envelope, Vec<u8>)>, String> {
    let mut decoder = Decoder::default();
    frame_read(seq, value, keyframe, fetch, &mut decoder, |envelope, line| {
        (envelope, line.to_vec())
    })
}

/// [`frame_events`], each event made into what `make` makes of it and its
/// JSON line (in a buffer reused for the next line, so a reader that does
/// not keep the line allocates nothing for it). Errors are reported in the
/// order of [`frame_lines`]: the text, the count, then each event.
fn frame_read<T>(
    seq: u64,
    value: &[u8],
    keyframe: &mut Option<Keyframe>,
    fetch: impl FnOnce(u64) -> Result<Vec<u8>, String>,
    decoder: &mut Decoder,
    mut make: impl FnMut(Envelope, &[u8]) -> T,
) -> Result<Vec<T>, String> {
    let (header, text) = frame_text(seq, value, keyframe, fetch)?;
    let mut events = Vec::with_capacity(header.count as usize);
    let mut invalid = None;
    let count = frame::unpack_each(&header, &text, |index, line, parts| {
        if invalid.is_none() {
            let expected = header.first + index as u64;
            match decoder.decode(expected, line, parts) {
                Ok(envelope) if envelope.seq == expected => events.push(make(envelope, line)),
                Ok(envelope) => invalid = Some(format!("holds event {} under key {expected}", envelope.seq)),
                Err(error) => invalid = Some(format!("event {expected}: {error}")),
            }
        }
        Ok(())
    })?;
    counted(&header, count)?;
    match invalid {
        Some(reason) => Err(reason),
        None => Ok(events),
    }
}

/// The header and JSON lines of the frame stored under `seq`, checked as
/// [`frame_events`] checks them but without reading the events (their
/// numbering is checked by [`line_seq_at`] where a caller needs it).
pub(crate) fn frame_lines(
    seq: u64,
    value: &[u8],
    keyframe: &mut Option<Keyframe>,
    fetch: impl FnOnce(u64) -> Result<Vec<u8>, String>,
) -> Result<(frame::Header, Vec<Vec<u8>>), String> {
    let (header, text) = frame_text(seq, value, keyframe, fetch)?;
    let lines = frame::unpack(&header, &text)?;
    counted(&header, lines.len())?;
    Ok((header, lines))
}

/// Whether a frame's text held the `count` events its header says.
fn counted(header: &frame::Header, count: usize) -> Result<(), String> {
    if count == header.count as usize {
        return Ok(());
    }
    Err(format!("holds {count} events where its header says {}", header.count))
}

/// The header and decompressed (still packed) text of the frame stored
/// under `seq`, its keyframe found as [`frame_events`] says.
fn frame_text(
    seq: u64,
    value: &[u8],
    keyframe: &mut Option<Keyframe>,
    fetch: impl FnOnce(u64) -> Result<Vec<u8>, String>,
) -> Result<(frame::Header, Vec<u8>), String> {
    let (header, compressed, _) = frame::parse(value)?;
    if header.first != seq {
        return Err(format!("holds event {} under key {seq}", header.first));
    }
    let text = if header.is_keyframe() {
        let text = frame::text(&header, compressed, None)?;
        *keyframe = Some(Keyframe {
            first: header.first,
            crc: crc32fast::hash(&text),
            text: text.clone(),
            decompressor: None,
        });
        text
    } else {
        let cached = keyframe
            .as_ref()
            .is_some_and(|kept| kept.first == header.base && kept.crc == header.base_crc);
        if !cached {
            let base_value = fetch(header.base)?;
            let (base_header, base_compressed, _) =
                frame::parse(&base_value).map_err(|reason| format!("its keyframe {}: {reason}", header.base))?;
            if !base_header.is_keyframe() || base_header.first != header.base {
                return Err(format!("its keyframe {} is not one", header.base));
            }
            let text = frame::text(&base_header, base_compressed, None)
                .map_err(|reason| format!("its keyframe {}: {reason}", header.base))?;
            *keyframe = Some(Keyframe {
                first: header.base,
                crc: crc32fast::hash(&text),
                text,
                decompressor: None,
            });
        }
        match keyframe.as_mut() {
            Some(kept) => frame::text_with(&header, compressed, Some(&kept.text), Some(&mut kept.decompressor))?,
            None => frame::text(&header, compressed, None)?,
        }
    };
    Ok((header, text))
}

/// The clock reading (seconds) of the JSON line of event `seq`, read from
/// the start every stored line has (`{"v":1,"seq":N,"at":"…"`) without
/// reading the rest; `None` when the line does not start so.
pub(crate) fn line_seq_at(seq: u64, line: &[u8]) -> Option<i64> {
    let start = format!("{{\"v\":1,\"seq\":{seq},\"at\":\"");
    let rest = line.strip_prefix(start.as_bytes())?;
    let quote = rest.iter().position(|b| *b == b'"')?;
    let at: jiff::Timestamp = std::str::from_utf8(&rest[..quote]).ok()?.parse().ok()?;
    Some(at.as_second())
}

/// One stored format-1 entry (a CRC-32 and the JSON), checked.
fn decode(seq: u64, value: &[u8]) -> Read {
    let corrupt = |reason: String| LogError::Corrupt { seq, reason };
    let json = unseal(value).map_err(corrupt)?;
    let envelope = Envelope::from_json(json).map_err(|error| corrupt(error.to_string()))?;
    if envelope.seq != seq {
        return Err(corrupt(format!("holds event {} under key {seq}", envelope.seq)));
    }
    Ok((envelope, json.to_vec()))
}

/// The checkpoint's stored shape.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Checkpoint {
    pub(crate) v: u32,
    pub(crate) store: Store,
}

/// sled's page cache. Its default (1 GB) lets a long-running engine's
/// memory grow with every page it writes; the engine reads the log only at
/// open, so a small cache costs nothing and keeps memory flat.
const CACHE_BYTES: u64 = 4 * 1024 * 1024;

/// sled's segment size for new logs. sled's files grow by segments and
/// reclaim them whole, and the log's values are small (a frame is about
/// 100 bytes): small segments keep the files near the data's size (a demo
/// day takes 0.8 MB with 16 KB segments, 3.1 MB with sled's 512 KB).
const SEGMENT_BYTES: usize = 16 * 1024;

/// The segment size of the log in `data_dir`: what its `conf` says (sled
/// refuses to open a log with another), else [`SEGMENT_BYTES`].
fn segment_size(data_dir: &Path) -> usize {
    use std::io::Read;
    let mut bytes = Vec::new();
    let read =
        fs::File::open(data_dir.join(DB_DIR).join("conf")).and_then(|file| file.take(4096).read_to_end(&mut bytes));
    if read.is_err() {
        return SEGMENT_BYTES;
    }
    // The text ends with a binary checksum.
    String::from_utf8_lossy(&bytes)
        .lines()
        .find_map(|line| line.strip_prefix("segment_size: "))
        .and_then(|size| size.trim().parse::<usize>().ok())
        .filter(|size| size.is_power_of_two() && (256..=1 << 24).contains(size))
        .unwrap_or(SEGMENT_BYTES)
}

/// Checks the header of every segment of sled's file before sled opens
/// it. sled takes a segment whose header fails its checksum for free
/// space: it zeroes it and writes over it, and what that segment held, or
/// what is appended after it, is gone at the next open. A damaged header
/// is [`LogError::Damaged`] here instead, so every command refuses the log
/// alike and `log repair` can still read the segment. A zeroed header is a
/// free segment.
fn check_segments(data_dir: &Path) -> Result<(), LogError> {
    use std::os::unix::fs::FileExt;
    /// sled's segment header: a CRC-32 (inverted) of the 16 bytes after it.
    const HEADER: usize = 20;
    let Ok(file) = fs::File::open(data_dir.join(DB_DIR).join("db")) else {
        return Ok(());
    };
    let Ok(len) = file.metadata().map(|meta| meta.len()) else {
        return Ok(());
    };
    let segment = segment_size(data_dir) as u64;
    let mut header = [0u8; HEADER];
    let mut offset = 0;
    while offset + HEADER as u64 <= len {
        if file.read_exact_at(&mut header, offset).is_err() {
            break;
        }
        let stored = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) ^ u32::MAX;
        let stored_be = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) ^ u32::MAX;
        let sum = crc32fast::hash(&header[4..]);
        if header != [0; HEADER] && sum != stored && sum != stored_be {
            return Err(LogError::Damaged {
                dir: data_dir.to_owned(),
                detail: format!("the segment at byte {offset} of its file has a damaged header"),
            });
        }
        offset += segment;
    }
    Ok(())
}

/// Opens sled in `data_dir`. A lock held by another process (or by a log
/// this process has open) is reported at once. A lock held by a log this
/// process is still letting go of (a drop whose wait for sled gave up,
/// see [`Release`]) is waited for, once, at most [`RELEASE_PATIENCE`].
/// Opening runs on its own thread, watched: a
/// panic or an open that takes longer than [`OPEN_PATIENCE`] (sled
/// replaying a damaged file) is [`LogError::Damaged`].
fn open_db(data_dir: &Path) -> Result<sled::Db, LogError> {
    check_segments(data_dir)?;
    let (mut waited, mut retried) = (false, false);
    loop {
        let config = sled::Config::new()
            .path(data_dir.join(DB_DIR))
            .cache_capacity(CACHE_BYTES)
            .segment_size(segment_size(data_dir));
        let error = match watched_open(data_dir, config)? {
            Ok(db) => return Ok(db),
            Err(error) => error,
        };
        let locked = matches!(&error, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"));
        if !locked {
            return Err(classify(data_dir, error));
        }
        // Another process's lock is refused at once; this process's own,
        // while it lets go of the log, is waited for once.
        if !settle_own(data_dir, &mut waited, &mut retried) {
            return Err(owned(data_dir));
        }
    }
}

/// `config.open()` on a watched thread.
fn watched_open(data_dir: &Path, config: sled::Config) -> Result<sled::Result<sled::Db>, LogError> {
    quiet_sled_panics();
    let (sender, receiver) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("quotatrack-sled-open".to_owned())
        .spawn(move || {
            let _ = sender.send(config.open());
        });
    if let Err(error) = spawned {
        return Err(LogError::Storage {
            dir: data_dir.to_owned(),
            message: format!("cannot start a thread: {error}"),
        });
    }
    match receiver.recv_timeout(OPEN_PATIENCE) {
        Ok(result) => Ok(result),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(LogError::Damaged {
            dir: data_dir.to_owned(),
            detail: format!("opening it did not finish in {} s", OPEN_PATIENCE.as_secs()),
        }),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(damaged_by_panic(data_dir)),
    }
}

/// Runs one call into sled; a panic inside it, or an error that means the
/// files are damaged, is [`LogError::Damaged`].
/// Damage that no read of the events passes through shows when the
/// checkpoints are read or a tree is written: looked for at open, so that
/// every command calls such a log damaged alike (and `repair` mends it)
/// rather than an engine failing at its first append. The written key is
/// removed at once; a crash in between leaves a key nothing reads.
fn probe(dir: &Path, checkpoints: &sled::Tree) -> Result<(), LogError> {
    for key in [CHECKPOINT_KEY, BASE_KEY] {
        guard(dir, || checkpoints.get(key))?;
    }
    guard(dir, || checkpoints.insert(PROBE_KEY, &[]))?;
    guard(dir, || checkpoints.remove(PROBE_KEY))?;
    Ok(())
}

fn guard<T>(dir: &Path, call: impl FnOnce() -> sled::Result<T>) -> Result<T, LogError> {
    quiet_sled_panics();
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(classify(dir, error)),
        Err(_) => Err(damaged_by_panic(dir)),
    }
}

/// Folds one event into `store`; a panic in the fold (a crafted event the
/// store's arithmetic cannot take) names the event instead.
fn guard_apply(dir: &Path, store: &mut Store, envelope: &Envelope) -> Result<(), LogError> {
    catch_unwind(AssertUnwindSafe(|| store.apply(envelope))).map_err(|_| LogError::Damaged {
        dir: dir.to_owned(),
        detail: format!("event {} cannot be applied to the store", envelope.seq),
    })
}

fn damaged_by_panic(dir: &Path) -> LogError {
    LogError::Damaged {
        dir: dir.to_owned(),
        detail: "the storage engine failed reading its files".to_owned(),
    }
}

/// What a sled error means for the user: damage (repair can help) or a
/// storage failure (permissions, a full disk: repair cannot).
fn classify(dir: &Path, error: sled::Error) -> LogError {
    let damage = match &error {
        // `Unsupported` at open is sled misreading its own damaged `conf`.
        sled::Error::Corruption { .. } | sled::Error::ReportableBug(_) | sled::Error::Unsupported(_) => true,
        sled::Error::Io(io) => !matches!(
            io.kind(),
            io::ErrorKind::PermissionDenied | io::ErrorKind::StorageFull | io::ErrorKind::ReadOnlyFilesystem
        ),
        _ => false,
    };
    let message = match &error {
        sled::Error::Corruption { .. } => "sled found corrupted data".to_owned(),
        sled::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    };
    if damage {
        LogError::Damaged {
            dir: dir.to_owned(),
            detail: message,
        }
    } else {
        LogError::Storage {
            dir: dir.to_owned(),
            message,
        }
    }
}

/// sled panics on some damaged files. Those panics are caught where sled
/// is called and reported as damage, so their default message (a second,
/// unhelpful stderr line) is silenced; every other panic is reported as
/// before. Installed once per process.
fn quiet_sled_panics() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_sled = info
                .location()
                .is_some_and(|location| location.file().contains("/sled-"));
            let on_open = std::thread::current().name() == Some("quotatrack-sled-open");
            if !in_sled && !on_open {
                previous(info);
            }
        }));
    });
}

/// Creates the data dir 0700, or, when it exists, warns once if others can
/// read it (it may be the user's own directory: never chmod-ed).
/// The end marker of the log in `data_dir`: `Ok(None)` when there is none
/// (or it is empty: a crash between its truncation and its write),
/// `Err` with what is wrong when something else is in its place. Read
/// with a bound, never through a symlink.
fn read_end(data_dir: &Path) -> Result<Option<u64>, String> {
    use std::io::Read;
    let path = data_dir.join(END_FILE);
    let meta = match fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("{}: {error}", path.display())),
    };
    if !meta.is_file() {
        return Err(format!(
            "{} is in the way of the log's end marker: move it away",
            path.display()
        ));
    }
    let mut text = String::new();
    let read = fs::File::open(&path).and_then(|file| file.take(32).read_to_string(&mut text));
    match read {
        Ok(_) if text.trim().is_empty() => Ok(None),
        Ok(_) => text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|end| *end <= crate::events::MAX_SEQ)
            .map(Some)
            .ok_or_else(|| format!("the log's end marker {} is unreadable", path.display())),
        Err(error) => Err(format!("the log's end marker {}: {error}", path.display())),
    }
}

/// The end marker when it can be read; what cannot be read counts as none
/// (for the commands that report damage, which see the log itself).
fn recorded_end(data_dir: &Path) -> Option<u64> {
    read_end(data_dir).ok().flatten()
}

/// Records `next_seq` as the log's acknowledged end: a new file renamed
/// over the marker, so a symlink in its place is replaced, never followed.
/// Best effort: without the marker only the check at open is lost, never
/// an event.
fn write_end(data_dir: &Path, next_seq: u64) {
    let _ = files::replace_private(&data_dir.join(END_FILE), next_seq.to_string().as_bytes(), false);
}

fn prepare_data_dir(data_dir: &Path) -> Result<(), LogError> {
    match fs::metadata(data_dir) {
        Ok(meta) if !meta.is_dir() => Err(LogError::Io {
            path: data_dir.to_owned(),
            error: io::Error::new(
                io::ErrorKind::AlreadyExists,
                "not a directory; move it away or choose another --data-dir",
            ),
        }),
        Ok(meta) => {
            static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
            if meta.permissions().mode() & 0o077 != 0 && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                eprintln!(
                    "quotatrack: warning: the data dir {} can be read by other users (mode {:o}); `chmod 700` it to keep your history private",
                    data_dir.display(),
                    meta.permissions().mode() & 0o777
                );
            }
            Ok(())
        }
        Err(_) => files::create_private_dir(data_dir, true).map_err(LogError::io(data_dir)),
    }
}

/// Creates `dir` 0700 when missing; sets it 0700 when it is ours already.
/// Something else in its place is an error naming it (and left alone).
fn private_dir(data_dir: &Path, dir: &Path) -> Result<(), LogError> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => files::set_mode(dir, meta.permissions().mode(), 0o700).map_err(LogError::io(dir)),
        Ok(_) => Err(LogError::Damaged {
            dir: data_dir.to_owned(),
            detail: format!("{} is not a directory", dir.display()),
        }),
        Err(_) => files::create_private_dir(dir, false).map_err(LogError::io(dir)),
    }
}

/// Sets sled's files 0600 and its directories 0700 (sled creates them
/// with the default umask).
fn secure_files(log_dir: &Path) -> Result<(), LogError> {
    let Ok(entries) = fs::read_dir(log_dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let wanted = if meta.is_dir() {
            secure_files(&path)?;
            0o700
        } else if meta.is_file() {
            0o600
        } else {
            continue;
        };
        files::set_mode(&path, meta.permissions().mode(), wanted).map_err(LogError::io(&path))?;
    }
    Ok(())
}

/// The `type` of an export's base line.
const BASE_LINE_TYPE: &str = "base";

/// An export's base line as written: `{"v":1,"type":"base","store":{…}}`.
#[derive(serde::Serialize)]
struct BaseLineOut<'a> {
    v: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    store: &'a Store,
}

/// The `type` of an export's readings lines.
const READINGS_LINE_TYPE: &str = "readings";

/// A line of an export after its base line: a stored block of the readings
/// record ([`readings`]) that holds readings of folded events, as
/// `{"v":1,"type":"readings","block":"<base64>"}`, so that `history` of an
/// imported log (or `history --from` the export) has every reading the
/// folded events had. Readers without readings lines refuse the line as an
/// unknown type.
pub fn readings_line(block: &[u8]) -> String {
    format!(
        "{{\"v\":{},\"type\":\"{READINGS_LINE_TYPE}\",\"block\":\"{}\"}}",
        crate::events::VERSION,
        readings::to_base64(block)
    )
}

/// The block of a readings line exactly as [`readings_line`] writes it
/// (a trailing newline or carriage return passed over); `None` for any
/// other line.
fn readings_block(line: &[u8]) -> Option<Vec<u8>> {
    let line = line.trim_ascii_end();
    let start = format!(
        "{{\"v\":{},\"type\":\"{READINGS_LINE_TYPE}\",\"block\":\"",
        crate::events::VERSION
    );
    let text = line.strip_prefix(start.as_bytes())?.strip_suffix(b"\"}")?;
    readings::from_base64(std::str::from_utf8(text).ok()?)
}

/// An export's base line as read.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BaseLineIn {
    v: u32,
    #[serde(rename = "type")]
    #[allow(dead_code)]
    kind: String,
    store: Store,
}

/// Only the `type` of a line, to tell a base line from an event.
#[derive(serde::Deserialize)]
struct LineType {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// [`Log::export_base`] for `base` and the log's events in order
/// (`events`; only those up to the base's last are read).
pub(crate) fn export_base(base: Store, since: u64, events: impl Iterator<Item = Envelope>) -> Option<Store> {
    let applied = base.applied?;
    if since > applied.saturating_add(1) {
        return None;
    }
    let kept: Vec<Envelope> = events.take_while(|envelope| envelope.seq <= applied).collect();
    let mut settings_only = Store::from_events(&kept);
    settings_only.applied = base.applied;
    (settings_only != base).then_some(base)
}

/// The first line of a `log export` of a log whose oldest events
/// retention folded ([`retention`]): the base they were folded into (the
/// store as of its `applied`, the last folded event), so an import
/// rebuilds the same log and a replay starts where the events do.
pub fn base_line(base: &Store) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&BaseLineOut {
        v: crate::events::VERSION,
        kind: BASE_LINE_TYPE,
        store: base,
    })
}

/// A JSON-lines file read as an export: its base line, if it starts with
/// one, and its events.
#[derive(Debug, Clone, Default)]
pub struct Exported {
    /// The folded base the events continue ([`base_line`]).
    pub base: Option<Store>,
    /// The stored readings blocks after the base line ([`readings_line`]).
    pub readings: Vec<Vec<u8>>,
    /// The events, checked by [`crate::events::read_import`].
    pub envelopes: Vec<Envelope>,
    /// The file's lines before the events' (the base line and blank lines
    /// before it), for line numbers.
    pub lines_before: usize,
}

/// The head of a JSON-lines file ([`split_export`]).
pub struct Head<'a> {
    /// The base line's store.
    pub base: Option<Store>,
    /// The readings blocks after it, decoded from base64 (checked by
    /// [`Log::import_export`]).
    pub readings: Vec<Vec<u8>>,
    /// The events' lines.
    pub rest: &'a [u8],
    /// How many lines came before them.
    pub lines_before: usize,
}

/// Splits a JSON-lines file into its base line (the first non-blank line,
/// when its `type` is `base`), the readings lines after it, and the rest.
/// An export without a base line is all rest; a readings line without a
/// base line before it is refused.
pub fn split_export(bytes: &[u8]) -> Result<Head<'_>, crate::events::LineError> {
    let mut head = Head {
        base: None,
        readings: Vec::new(),
        rest: bytes,
        lines_before: 0,
    };
    let mut start = 0;
    let mut line = 0;
    while start < bytes.len() {
        line += 1;
        let end = bytes[start..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(bytes.len(), |at| start + at);
        let text = &bytes[start..end];
        let next = (end + 1).min(bytes.len());
        if text.iter().all(u8::is_ascii_whitespace) {
            start = next;
            continue;
        }
        let kind = serde_json::from_slice::<LineType>(text)
            .ok()
            .and_then(|found| found.kind);
        let fail = |message: String| crate::events::LineError { line, message };
        let version = |v: u32, what: &str| {
            if v == crate::events::VERSION {
                Ok(())
            } else {
                Err(fail(format!(
                    "{what} of version {v} (this quotatrack reads version {})",
                    crate::events::VERSION
                )))
            }
        };
        match (kind.as_deref(), &head.base) {
            (Some(BASE_LINE_TYPE), None) => {
                let read: BaseLineIn = serde_json::from_slice(text)
                    .map_err(|error| fail(format!("a base line that cannot be read: {error}")))?;
                version(read.v, "a base")?;
                head.base = Some(read.store);
            }
            (Some(READINGS_LINE_TYPE), Some(_)) => {
                let block = readings_block(text).ok_or_else(|| {
                    fail("a readings line that cannot be read (`{\"v\":1,\"type\":\"readings\",\"block\":\"<base64>\"}`)".to_owned())
                })?;
                head.readings.push(block);
            }
            (Some(READINGS_LINE_TYPE), None) => {
                return Err(fail(
                    "a readings line before any base line (an export writes them right after its base line)".to_owned(),
                ));
            }
            _ => return Ok(head),
        }
        head.rest = &bytes[next..];
        head.lines_before = line;
        start = next;
    }
    Ok(head)
}

/// [`split_export`] without the readings: the base, the rest and how many
/// lines came before it.
pub fn split_base(bytes: &[u8]) -> Result<(Option<Store>, &[u8], usize), crate::events::LineError> {
    let head = split_export(bytes)?;
    Ok((head.base, head.rest, head.lines_before))
}

/// Reads the head of an export for readers of its events that have no
/// use for the base (`history --from`): passes over the base line (as
/// [`base_line`] writes it) and hands `each` every reading of the readings
/// lines after it ([`readings_line`]). Returns how many lines it passed
/// over, the sequence number after the last event the readings cover (0
/// without any: the events before it have had their readings given), and
/// the first line after the head, read already (with its newline).
pub fn read_head(
    reader: &mut impl io::BufRead,
    each: &mut dyn FnMut(&readings::Reading),
) -> Result<(usize, u64, Vec<u8>), crate::events::LineError> {
    let start = |kind: &str| format!("{{\"v\":{},\"type\":\"{kind}\"", crate::events::VERSION);
    let (base, blocks) = (start(BASE_LINE_TYPE), start(READINGS_LINE_TYPE));
    let (mut lines, mut end) = (0, 0);
    loop {
        let fail = |message: String| crate::events::LineError {
            line: lines + 1,
            message,
        };
        let mut line = Vec::new();
        reader
            .read_until(b'\n', &mut line)
            .map_err(|error| fail(format!("cannot read it: {error}")))?;
        let is_block = lines > 0 && line.starts_with(blocks.as_bytes());
        let is_base = lines == 0 && line.starts_with(base.as_bytes());
        if !(is_block || is_base) {
            return Ok((lines, end, line));
        }
        if is_block {
            let block = readings_block(&line).ok_or_else(|| fail("a readings line that cannot be read".to_owned()))?;
            let (_, block_end) =
                readings::read_block(&block, each).map_err(|error| fail(format!("a readings block: {error}")))?;
            end = end.max(block_end);
        }
        lines += 1;
    }
}

/// All of a JSON-lines input; a read that fails names the line it
/// stopped in.
pub fn read_whole(mut input: impl io::Read) -> Result<Vec<u8>, crate::events::LineError> {
    let mut bytes = Vec::new();
    match input.read_to_end(&mut bytes) {
        Ok(_) => Ok(bytes),
        Err(error) => Err(crate::events::LineError {
            line: bytes.iter().filter(|b| **b == b'\n').count() + 1,
            message: format!("cannot read it: {error}"),
        }),
    }
}

/// Reads a JSON-lines file for `log import` whole: [`split_base`], then
/// [`crate::events::read_import`] over the events, line numbers counted
/// in the whole file.
pub fn read_export(input: impl io::BufRead) -> Result<Exported, crate::events::LineError> {
    let bytes = read_whole(input)?;
    let Head {
        base,
        readings,
        rest,
        lines_before,
    } = split_export(&bytes)?;
    let envelopes = crate::events::read_import(rest).map_err(|error| crate::events::LineError {
        line: error.line + lines_before,
        message: error.message,
    })?;
    Ok(Exported {
        base,
        readings,
        envelopes,
        lines_before,
    })
}

/// Checks an imported base against the events after its line: it names
/// the last folded event, the events up to it are `settings_changed` (the
/// ones the fold kept), the next one follows it, and the settings it holds
/// are within bounds. Returns its last event.
fn check_base(base: &Store, envelopes: &[Envelope], lines_before: usize) -> Result<u64, LogError> {
    let at_base = |message: String| LogError::Import {
        line: lines_before,
        message,
    };
    let applied = base
        .applied
        .ok_or_else(|| at_base("the base names no last event (`applied`)".to_owned()))?;
    if applied >= crate::events::MAX_SEQ {
        return Err(at_base(format!(
            "the base ends at event {applied}, out of range (a log's are below {})",
            crate::events::MAX_SEQ
        )));
    }
    for settings in [&base.settings, &base.file_settings, &base.patched] {
        crate::settings::check_recorded(&serde_json::Value::Object(settings.clone()))
            .map_err(|error| at_base(format!("the base's settings: {error}")))?;
    }
    let after = envelopes.partition_point(|envelope| envelope.seq <= applied);
    if let Some((index, envelope)) = envelopes[..after]
        .iter()
        .enumerate()
        .find(|(_, envelope)| !matches!(envelope.payload, Event::SettingsChanged { .. }))
    {
        return Err(LogError::Import {
            line: lines_before + index + 1,
            message: format!(
                "event {} is within the base (which ends at event {applied}) but is not a settings_changed a fold keeps",
                envelope.seq
            ),
        });
    }
    let Some(next) = envelopes.get(after) else {
        // A log's events never all fold: loads and `log verify` start
        // after the base, from an event of the log.
        return Err(at_base(format!(
            "the base ends at event {applied} and no event follows it"
        )));
    };
    if next.seq != applied + 1 {
        let missing = match next.seq - applied {
            2 => format!("event {} is missing", applied + 1),
            _ => format!("events {}–{} are missing", applied + 1, next.seq - 1),
        };
        return Err(LogError::Import {
            line: lines_before + after + 1,
            message: format!(
                "event {} follows the base, which ends at event {applied}: {missing}",
                next.seq
            ),
        });
    }
    Ok(applied)
}

/// Checks an export's readings blocks (after its base, checked by
/// [`check_base`]): each reads whole, they follow one another, each starts
/// within the base and none reaches past the events.
fn check_readings(exported: &Exported) -> Result<(), LogError> {
    let (Some(base), count) = (&exported.base, exported.readings.len()) else {
        return Ok(());
    };
    let applied = base.applied.unwrap_or(0);
    let next = exported.envelopes.last().map_or(0, |last| last.seq + 1);
    let mut end = 0;
    for (index, block) in exported.readings.iter().enumerate() {
        let fail = |message: String| LogError::Import {
            line: exported.lines_before + index + 1 - count,
            message,
        };
        let (first, block_end) =
            readings::read_block(block, &mut |_| {}).map_err(|error| fail(format!("a readings block: {error}")))?;
        if first < end || first > applied || block_end > next {
            return Err(fail(format!(
                "a readings block of events {first}–{} out of place: blocks follow one another, each starts \
                 within the base (which ends at event {applied}) and none goes past the last event",
                block_end - 1
            )));
        }
        end = block_end;
    }
    Ok(())
}

fn write_line(out: &mut impl Write, json: &[u8]) -> Result<(), LogError> {
    out.write_all(json).map_err(LogError::Output)?;
    out.write_all(b"\n").map_err(LogError::Output)
}

/// The parts of `first..=last` no hole covers, as ranges.
fn uncovered(first: u64, last: u64, holes: &[Hole]) -> Vec<(u64, u64)> {
    let mut ranges = Vec::new();
    let mut from = first;
    for hole in holes {
        if hole.last < from || hole.first > last {
            continue;
        }
        if hole.first > from {
            ranges.push((from, hole.first - 1));
        }
        from = hole.last.saturating_add(1);
        if from > last {
            return ranges;
        }
    }
    if from <= last {
        ranges.push((from, last));
    }
    ranges
}

fn key_seq(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

/// The first bytes of a compressed checkpoint: then a CRC-32 of what
/// follows it, the compressed length, the JSON's length, and the JSON
/// compressed with zstd. A store's JSON (80 KB for the demo's seven
/// providers) compresses about 18 times, which matters beyond the bytes:
/// sled stores a value larger than a quarter of a segment as a blob file
/// of its own, and some rewrites of such a value leave the old file
/// behind. Checkpoints written as a CRC-32 and the JSON ([`seal`]) are
/// still read.
pub(crate) const CHECKPOINT_MAGIC: &[u8; 4] = b"QTC\x01";
/// Magic, CRC-32, compressed length, JSON length.
const CHECKPOINT_HEADER: usize = 4 + 4 + 4 + 4;
/// The largest checkpoint JSON read back (a crafted length claiming more is
/// refused before anything is allocated).
const CHECKPOINT_MAX_JSON: usize = 256 << 20;

/// A checkpoint's JSON, compressed behind [`CHECKPOINT_MAGIC`]; `None`
/// when zstd fails (the caller stores it sealed instead).
fn pack_checkpoint(json: &[u8]) -> Option<Vec<u8>> {
    let compressed = zstd::bulk::compress(json, 3).ok()?;
    let mut value = Vec::with_capacity(CHECKPOINT_HEADER + compressed.len());
    value.extend_from_slice(CHECKPOINT_MAGIC);
    value.extend_from_slice(&[0; 4]);
    value.extend_from_slice(&u32::try_from(compressed.len()).ok()?.to_be_bytes());
    value.extend_from_slice(&u32::try_from(json.len()).ok()?.to_be_bytes());
    value.extend_from_slice(&compressed);
    let sum = crc32fast::hash(&value[8..]);
    value[4..8].copy_from_slice(&sum.to_be_bytes());
    Some(value)
}

/// The JSON of a compressed checkpoint at the start of `bytes` and how
/// many bytes it takes, if it is intact.
pub(crate) fn unpack_checkpoint(bytes: &[u8]) -> Option<(Vec<u8>, usize)> {
    let header = bytes.get(..CHECKPOINT_HEADER)?;
    if !header.starts_with(CHECKPOINT_MAGIC) {
        return None;
    }
    let word = |at: usize| u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
    let (sum, compressed_len, json_len) = (word(4), word(8) as usize, word(12) as usize);
    if json_len > CHECKPOINT_MAX_JSON {
        return None;
    }
    let end = CHECKPOINT_HEADER.checked_add(compressed_len)?;
    let covered = bytes.get(8..end)?;
    if crc32fast::hash(covered) != sum {
        return None;
    }
    let json = zstd::bulk::decompress(&bytes[CHECKPOINT_HEADER..end], json_len).ok()?;
    (json.len() == json_len).then_some((json, end))
}

/// Prefixes `json` with its CRC-32 (big-endian).
fn seal(json: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(json.len() + CRC_BYTES);
    value.extend_from_slice(&crc32fast::hash(json).to_be_bytes());
    value.extend_from_slice(json);
    value
}

/// The JSON of a sealed value, if its checksum holds.
fn unseal(value: &[u8]) -> Result<&[u8], String> {
    let (sum, json) = value
        .split_first_chunk::<CRC_BYTES>()
        .ok_or_else(|| format!("a value of {} bytes is too short", value.len()))?;
    if u32::from_be_bytes(*sum) == crc32fast::hash(json) {
        Ok(json)
    } else {
        Err("checksum mismatch (the stored bytes were altered)".to_owned())
    }
}

/// A recorded `settings_changed` out of the bounds a settings file must
/// meet (see `settings::Bound`), as the reason it is refused.
fn out_of_bounds(envelope: &Envelope) -> Result<(), String> {
    match &envelope.payload {
        crate::events::Event::SettingsChanged { patch } => crate::settings::check_recorded(patch)
            .map(drop)
            .map_err(|error| format!("settings_changed: {error}")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compressed_checkpoint_reads_back_and_a_changed_byte_is_refused() {
        let json = serde_json::to_vec(&Checkpoint {
            v: crate::events::VERSION,
            store: Store::default(),
        })
        .unwrap();
        let mut value = pack_checkpoint(&json).unwrap();
        value.extend_from_slice(b"what sled stores after it");
        let (read, len) = unpack_checkpoint(&value).unwrap();
        assert_eq!(read, json);
        assert_eq!(&value[len..], b"what sled stores after it");
        for at in 4..len {
            let mut changed = value.clone();
            changed[at] ^= 0x20;
            assert_eq!(unpack_checkpoint(&changed), None, "byte {at} changed");
        }
        assert_eq!(unpack_checkpoint(&value[..len - 1]), None);
        assert_eq!(unpack_checkpoint(&seal(&json)), None);
    }
}
