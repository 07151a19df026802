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
//!   `owner.pid`, never a hang.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};

use crate::events::{self, Envelope, Event, Stream};
use crate::status::write_private_atomically;
use crate::store::Store;

/// The sled directory inside the data dir.
const DB_DIR: &str = "log";
/// The file naming the owning process.
const OWNER_FILE: &str = "owner.pid";
/// The checkpoint key in the checkpoints tree.
const CHECKPOINT_KEY: &[u8] = b"store";
/// The CRC-32 that starts every stored value.
const CRC_BYTES: usize = 4;
/// How many events an import writes per flushed batch.
const IMPORT_BATCH: usize = 10_000;

/// The event log of one data dir, owned by this process while open.
pub struct Log {
    db: sled::Db,
    events: sled::Tree,
    checkpoints: sled::Tree,
    next_seq: u64,
    dir: PathBuf,
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
    /// Reading or writing a file failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events read successfully.
    pub events: u64,
    /// The first unreadable or out-of-place entry.
    pub first_problem: Option<(u64, String)>,
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
}

/// Counts for `log stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// All readable events.
    pub events: u64,
    /// Unreadable entries.
    pub unreadable: u64,
    /// Events by `type`.
    pub by_type: BTreeMap<&'static str, u64>,
    /// Events by provider (`-` for none).
    pub by_provider: BTreeMap<String, u64>,
    /// The first and last clock readings.
    pub first_at: Option<Timestamp>,
    /// The last clock reading.
    pub last_at: Option<Timestamp>,
    /// Bytes on disk.
    pub size_on_disk: u64,
}

impl Log {
    /// Opens (or creates) the log in `data_dir` and takes ownership of it.
    pub fn open(data_dir: &Path) -> Result<Log, LogError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(|error| io::Error::new(error.kind(), format!("{}: {error}", data_dir.display())))?;
        fs::set_permissions(data_dir, fs::Permissions::from_mode(0o700))?;
        let db = open_db(data_dir)?;
        let dir = data_dir.to_owned();
        // sled creates its files with the default umask; the directory keeps others out.
        fs::set_permissions(data_dir.join(DB_DIR), fs::Permissions::from_mode(0o700))?;
        let events = db.open_tree("events").map_err(|e| storage(&dir, &e))?;
        let checkpoints = db.open_tree("checkpoints").map_err(|e| storage(&dir, &e))?;
        let next_seq = match events.last().map_err(|e| storage(&dir, &e))? {
            Some((key, _)) => key_seq(&key).map_or(0, |seq| seq + 1),
            None => 0,
        };
        write_private_atomically(&dir.join(OWNER_FILE), std::process::id().to_string().as_bytes())?;
        Ok(Log {
            db,
            events,
            checkpoints,
            next_seq,
            dir,
        })
    }

    /// The sequence number the next event gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Whether the log holds no events.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Appends a batch of events, numbering them, and flushes: when this
    /// returns, every one of them is durable.
    pub fn append(
        &mut self,
        items: impl IntoIterator<Item = (Timestamp, Stream, Event)>,
    ) -> Result<Vec<Envelope>, LogError> {
        let mut batch = sled::Batch::default();
        let mut envelopes = Vec::new();
        for (at, stream, payload) in items {
            let envelope = Envelope {
                stream,
                seq: self.next_seq + envelopes.len() as u64,
                at,
                payload,
            };
            batch.insert(&envelope.seq.to_be_bytes(), seal(&envelope.to_json()));
            envelopes.push(envelope);
        }
        self.events.apply_batch(batch).map_err(|e| self.storage(&e))?;
        self.flush()?;
        self.next_seq += envelopes.len() as u64;
        Ok(envelopes)
    }

    /// Every entry from `since` on, in sequence order; unreadable entries
    /// are `Err(Corrupt)` in their place, so a caller can report and go on.
    pub fn entries(&self, since: u64) -> impl Iterator<Item = Result<Envelope, LogError>> + '_ {
        self.read_from(since).map(|entry| entry.map(|(envelope, _)| envelope))
    }

    /// Each entry from `since` on, decoded and checked, with its stored JSON.
    fn read_from(&self, since: u64) -> impl Iterator<Item = Result<(Envelope, sled::IVec), LogError>> + '_ {
        self.events.range(since.to_be_bytes()..).map(move |item| {
            let (key, value) = item.map_err(|e| self.storage(&e))?;
            let seq = key_seq(&key).ok_or_else(|| LogError::Corrupt {
                seq: u64::MAX,
                reason: format!("a key of {} bytes, not 8", key.len()),
            })?;
            let corrupt = |reason: String| LogError::Corrupt { seq, reason };
            let json = unseal(&value).map_err(corrupt)?;
            let envelope = Envelope::from_json(json).map_err(|error| corrupt(error.to_string()))?;
            if envelope.seq != seq {
                return Err(corrupt(format!("holds event {} under key {seq}", envelope.seq)));
            }
            Ok((envelope, value))
        })
    }

    /// The store as of the last event: the latest checkpoint plus the
    /// events after it. Stops at the first unreadable entry.
    pub fn load(&self) -> Result<Store, LogError> {
        let checkpoint = self
            .read_checkpoint()
            .filter(|store| store.applied.is_none_or(|seq| seq < self.next_seq));
        let (mut store, since) = match checkpoint {
            Some(store) => {
                let since = store.applied.map_or(0, |seq| seq + 1);
                (store, since)
            }
            None => (Store::default(), 0),
        };
        for envelope in self.entries(since) {
            store.apply(&envelope?);
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
        let n_chunks = self.next_seq.div_ceil(CHUNK);
        std::thread::scope(|scope| {
            let receivers: Vec<_> = (0..WORKERS)
                .map(|worker| {
                    let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<Result<Envelope, LogError>>>(2);
                    scope.spawn(move || {
                        for chunk in (worker..n_chunks).step_by(WORKERS as usize) {
                            let entries = self.entries(chunk * CHUNK).take_while(|entry| match entry {
                                Ok(envelope) => envelope.seq < (chunk + 1) * CHUNK,
                                Err(LogError::Corrupt { seq, .. }) => *seq < (chunk + 1) * CHUNK,
                                Err(_) => true,
                            });
                            if sender.send(entries.collect()).is_err() {
                                return;
                            }
                        }
                    });
                    receiver
                })
                .collect();
            let mut store = Store::default();
            for chunk in 0..n_chunks {
                let entries = receivers[(chunk % WORKERS) as usize].recv().unwrap_or_default();
                for envelope in entries {
                    store.apply(&envelope?);
                }
            }
            Ok(store)
        })
    }

    /// Stores `store` as the checkpoint and flushes.
    pub fn write_checkpoint(&self, store: &Store) -> Result<(), LogError> {
        let json = serde_json::to_vec(&Checkpoint {
            v: crate::events::VERSION,
            store: store.clone(),
        })
        .map_err(io::Error::other)?;
        self.checkpoints
            .insert(CHECKPOINT_KEY, seal(&json))
            .map_err(|e| self.storage(&e))?;
        self.flush()
    }

    /// The checkpointed store, if one is stored and readable.
    pub fn read_checkpoint(&self) -> Option<Store> {
        let value = self.checkpoints.get(CHECKPOINT_KEY).ok()??;
        let checkpoint: Checkpoint = serde_json::from_slice(unseal(&value).ok()?).ok()?;
        (checkpoint.v == crate::events::VERSION).then_some(checkpoint.store)
    }

    /// Reads every entry, checks numbering and integrity, and compares the
    /// checkpoint plus its tail with a full rebuild.
    pub fn verify(&self) -> VerifyReport {
        let mut report = VerifyReport {
            events: 0,
            first_problem: None,
            checkpoint_agrees: None,
        };
        let mut full = Store::default();
        let mut expected = 0;
        for entry in self.entries(0) {
            match entry {
                Ok(envelope) => {
                    if envelope.seq != expected && report.first_problem.is_none() {
                        report.first_problem = Some((expected, format!("missing (next entry is {})", envelope.seq)));
                    }
                    expected = envelope.seq + 1;
                    if let Err(reason) = out_of_bounds(&envelope) {
                        report.first_problem.get_or_insert((envelope.seq, reason));
                    }
                    full.apply(&envelope);
                    report.events += 1;
                }
                Err(LogError::Corrupt { seq, reason }) => {
                    report.first_problem.get_or_insert((seq, reason));
                    expected = seq.saturating_add(1);
                }
                Err(error) => {
                    report.first_problem.get_or_insert((expected, error.to_string()));
                    break;
                }
            }
        }
        if report.first_problem.is_none()
            && let Some(checkpoint) = self.read_checkpoint()
        {
            let since = checkpoint.applied.map_or(0, |seq| seq + 1);
            let mut resumed = checkpoint;
            for envelope in self.entries(since).flatten() {
                resumed.apply(&envelope);
            }
            report.checkpoint_agrees = Some(resumed == full);
        }
        report
    }

    /// Writes every readable event from `since` on as JSON lines, skipping
    /// (and reporting) unreadable ones.
    pub fn export(&self, since: u64, out: &mut impl Write) -> Result<ExportReport, LogError> {
        let mut report = ExportReport::default();
        for entry in self.read_from(since) {
            match entry {
                Ok((_, value)) => {
                    out.write_all(&value[CRC_BYTES..])?;
                    out.write_all(b"\n")?;
                    report.written += 1;
                }
                Err(LogError::Corrupt { seq, reason }) => report.skipped.push((seq, reason)),
                Err(error) => return Err(error),
            }
        }
        out.flush()?;
        Ok(report)
    }

    /// Appends the events of a JSON-lines file to this empty log, keeping
    /// their sequence numbers, then checkpoints the folded store. Returns
    /// how many events were imported.
    pub fn import(&mut self, input: impl BufRead) -> Result<u64, LogError> {
        if !self.is_empty() {
            return Err(LogError::NotEmpty {
                dir: self.dir.clone(),
                events: self.events.len(),
            });
        }
        let mut store = Store::default();
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        let mut imported = 0;
        let mut next: Option<u64> = None;
        for envelope in events::read_lines(input) {
            let envelope = envelope.map_err(|error| LogError::Import {
                line: error.line,
                message: error.message,
            })?;
            out_of_bounds(&envelope).map_err(|message| LogError::Import {
                line: imported as usize + 1,
                message: format!("log entry {}: {message}", envelope.seq),
            })?;
            next = Some(envelope.seq + 1);
            batch.insert(&envelope.seq.to_be_bytes(), seal(&envelope.to_json()));
            store.apply(&envelope);
            in_batch += 1;
            imported += 1;
            if in_batch == IMPORT_BATCH {
                self.events
                    .apply_batch(std::mem::take(&mut batch))
                    .map_err(|e| self.storage(&e))?;
                in_batch = 0;
            }
        }
        self.events.apply_batch(batch).map_err(|e| self.storage(&e))?;
        self.next_seq = next.unwrap_or(0);
        self.write_checkpoint(&store)?;
        Ok(imported)
    }

    /// Retention: fetch bodies older than `keep` before `now` are dropped,
    /// keeping the parse outcome, so replay of what is kept still works.
    /// Returns how many events were shortened.
    pub fn compact(&mut self, now: Timestamp, keep: SignedDuration) -> Result<u64, LogError> {
        let cutoff = now - keep;
        let mut batch = sled::Batch::default();
        let mut shortened = 0;
        for envelope in self.entries(0).flatten() {
            if envelope.at >= cutoff {
                break;
            }
            if let Event::FetchCompleted {
                provider,
                exchange: Some(_),
                outcome,
                elapsed_ms,
                ..
            } = envelope.payload
            {
                let short = Envelope {
                    payload: Event::FetchCompleted {
                        provider,
                        exchange: None,
                        body_repeated: false,
                        outcome,
                        elapsed_ms,
                    },
                    ..envelope
                };
                batch.insert(&short.seq.to_be_bytes(), seal(&short.to_json()));
                shortened += 1;
            }
        }
        self.events.apply_batch(batch).map_err(|e| self.storage(&e))?;
        self.flush()?;
        Ok(shortened)
    }

    /// Counts by type and provider, times and size.
    pub fn stats(&self) -> Stats {
        let mut stats = Stats {
            size_on_disk: self.db.size_on_disk().unwrap_or(0),
            ..Stats::default()
        };
        for entry in self.entries(0) {
            let Ok(envelope) = entry else {
                stats.unreadable += 1;
                continue;
            };
            stats.events += 1;
            *stats.by_type.entry(envelope.payload.name()).or_default() += 1;
            let provider = envelope.provider().map_or("-".to_owned(), |id| id.to_string());
            *stats.by_provider.entry(provider).or_default() += 1;
            stats.first_at.get_or_insert(envelope.at);
            stats.last_at = Some(envelope.at);
        }
        stats
    }

    /// Clean shutdown: flushes, releases the data dir, and opens and closes
    /// sled once more. sled folds its write-ahead log into a snapshot only
    /// while opening, so doing that here moves the cost of replaying a
    /// day's appends from the next start (where a status line waits for
    /// it) to this shutdown.
    pub fn close(self) -> Result<(), LogError> {
        self.flush()?;
        let dir = self.dir.clone();
        drop(self);
        match open_db(&dir) {
            Ok(db) => db.flush().map(drop).map_err(|error| storage(&dir, &error)),
            // Another process took the dir in between; its open did this work.
            Err(LogError::Owned { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Flushes everything written so far to disk.
    pub fn flush(&self) -> Result<(), LogError> {
        self.db.flush().map_err(|e| self.storage(&e))?;
        Ok(())
    }

    fn storage(&self, error: &sled::Error) -> LogError {
        storage(&self.dir, error)
    }
}

/// The checkpoint's stored shape.
#[derive(serde::Serialize, serde::Deserialize)]
struct Checkpoint {
    v: u32,
    store: Store,
}

/// Opens sled in `data_dir`. A lock held by another process is reported at
/// once. A lock held by this process is a log it has just dropped: sled
/// lets go of its file only when its background threads finish, so that
/// is waited for, briefly.
/// sled's page cache. Its default (1 GB) lets a long-running engine's
/// memory grow with every page it writes; the engine reads the log only at
/// open, so a small cache costs nothing and keeps memory flat.
const CACHE_BYTES: u64 = 4 * 1024 * 1024;

fn open_db(data_dir: &Path) -> Result<sled::Db, LogError> {
    let mut attempts = 0;
    loop {
        let config = sled::Config::new()
            .path(data_dir.join(DB_DIR))
            .cache_capacity(CACHE_BYTES);
        let error = match config.open() {
            Ok(db) => return Ok(db),
            Err(error) => error,
        };
        let locked = matches!(&error, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"));
        if !locked {
            return Err(storage(data_dir, &error));
        }
        let pid = fs::read_to_string(data_dir.join(OWNER_FILE))
            .ok()
            .and_then(|text| text.trim().parse().ok());
        attempts += 1;
        if pid != Some(std::process::id()) || attempts > 200 {
            return Err(LogError::Owned {
                dir: data_dir.to_owned(),
                pid,
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn storage(dir: &Path, error: &sled::Error) -> LogError {
    LogError::Storage {
        dir: dir.to_owned(),
        message: error.to_string(),
    }
}

fn key_seq(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
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
