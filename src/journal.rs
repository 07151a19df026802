//! The journal: the log and its live projection kept together by the
//! process that owns the data dir. Recording appends (durably), folds each
//! event into the store, checkpoints every `checkpoint_every` events and
//! publishes the snapshot file other processes read.
//!
//! A journal can also keep its events in [`Memory`] instead of a log: that
//! is how replay runs the live engine over a recording without writing
//! anything.
//!
//! A response body the same as the one the provider's previous fetch
//! recorded is stored once: the later event says `body_repeated` and keeps
//! the rest of its exchange (a quiet provider answers the same bytes every
//! minute, and the bodies were most of what the log and its writes held).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use crate::events::{Envelope, Event, Stamped};
use crate::log::retention::{Retention, Step};
use crate::log::{Log, LogError};
use crate::providers::ProviderId;
use crate::status::{self, StatusOptions};
use crate::store::Store;
use crate::wire::Status;

/// How many events pass between checkpoints by default.
pub const CHECKPOINT_EVERY: u64 = 1_000;

/// The owner's log and store.
pub struct Journal {
    sink: Sink,
    store: Store,
    checkpoint_every: u64,
    since_checkpoint: u64,
    /// Each provider's last stored body, per kind of request (`true`: its
    /// status page).
    bodies: BTreeMap<(ProviderId, bool), Value>,
    /// Events written just before whatever is recorded next, or dropped
    /// ([`Journal::hold`]).
    held: Vec<Stamped>,
    /// Whether retention dropped or folded anything since the start: the
    /// clean close then gives the space back when worth it.
    freed: bool,
}

/// Where recorded events go.
enum Sink {
    /// The log in a data dir, and the dir (for the snapshot file); boxed,
    /// as the log is large beside a memory handle.
    Log(Box<Log>, PathBuf),
    /// Memory shared with whoever reads it.
    Memory(Memory),
}

/// Events kept in memory: what a journal without a log recorded, and how
/// many it holds ([`Journal::hold`]). Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Memory(Arc<Mutex<Recorded>>);

/// What a [`Memory`] holds.
#[derive(Debug, Default)]
pub struct Recorded {
    /// The events recorded, numbered from 0.
    pub events: Vec<Envelope>,
    /// The events held, in order: whether each is a decision.
    pub held: Vec<bool>,
}

impl Memory {
    /// What it holds now.
    pub fn lock(&self) -> MutexGuard<'_, Recorded> {
        self.0.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Journal {
    /// Opens the log in `data_dir` (taking ownership) and loads the store
    /// from the latest checkpoint and the events after it.
    pub fn open(data_dir: &Path) -> Result<Journal, LogError> {
        Journal::from_log(data_dir, Log::open(data_dir)?)
    }

    /// The journal of a log already opened in `data_dir`.
    pub fn from_log(data_dir: &Path, log: Log) -> Result<Journal, LogError> {
        let store = log.load()?;
        Ok(Journal::on(Sink::Log(Box::new(log), data_dir.to_owned()), store))
    }

    /// A journal that records into `memory`, starting from an empty store.
    pub fn in_memory(memory: Memory) -> Journal {
        Journal::in_memory_from(memory, Store::default())
    }

    /// A journal that records into `memory`, starting from `store`: replay
    /// of a recording that starts from a folded base.
    pub fn in_memory_from(memory: Memory, store: Store) -> Journal {
        Journal::on(Sink::Memory(memory), store)
    }

    fn on(sink: Sink, store: Store) -> Journal {
        Journal {
            sink,
            store,
            checkpoint_every: CHECKPOINT_EVERY,
            since_checkpoint: 0,
            bodies: BTreeMap::new(),
            held: Vec::new(),
            freed: false,
        }
    }

    /// The same journal checkpointing every `events` events.
    pub fn checkpoint_every(mut self, events: u64) -> Journal {
        self.checkpoint_every = events.max(1);
        self
    }

    /// Appends a batch (durably), folds it into the store, and checkpoints
    /// when due. The returned envelopes are numbered and flushed.
    pub fn record(&mut self, items: impl IntoIterator<Item = Stamped>) -> Result<Vec<Envelope>, LogError> {
        let held = std::mem::take(&mut self.held);
        let items: Vec<_> = held
            .into_iter()
            .chain(items)
            .map(|item| self.store_once(item))
            .collect();
        if items.is_empty() {
            self.mirror_held();
            return Ok(Vec::new());
        }
        let envelopes = match &mut self.sink {
            Sink::Log(log, _) => log.append(items)?,
            Sink::Memory(memory) => {
                let mut memory = memory.lock();
                let first = memory.events.len() as u64;
                let envelopes: Vec<Envelope> = items
                    .into_iter()
                    .zip(first..)
                    .map(|((at, stream, payload), seq)| Envelope {
                        stream,
                        seq,
                        at,
                        payload,
                    })
                    .collect();
                memory.events.extend(envelopes.iter().cloned());
                memory.held.clear();
                envelopes
            }
        };
        for envelope in &envelopes {
            self.store.apply(envelope);
        }
        self.since_checkpoint += envelopes.len() as u64;
        if self.since_checkpoint >= self.checkpoint_every {
            if let Sink::Log(log, _) = &self.sink {
                log.write_checkpoint(&self.store)?;
            }
            self.since_checkpoint = 0;
        }
        Ok(envelopes)
    }

    /// Keeps `items` to be recorded, in order, just before whatever is
    /// recorded next; [`Journal::drop_held`] forgets them instead. A host
    /// event is held while it is handled: one that changed nothing leaves
    /// no trace, so a stream of them cannot grow the log.
    pub fn hold(&mut self, items: impl IntoIterator<Item = Stamped>) {
        self.held.extend(items);
        self.mirror_held();
    }

    /// Forgets the held events (see [`Journal::hold`]).
    pub fn drop_held(&mut self) {
        self.held.clear();
        self.mirror_held();
    }

    /// The sequence number the next event recorded gets.
    pub fn next_seq(&self) -> u64 {
        match &self.sink {
            Sink::Log(log, _) => log.next_seq(),
            Sink::Memory(memory) => memory.lock().events.len() as u64,
        }
    }

    /// Tells a memory what is held, so its reader sees it.
    fn mirror_held(&self) {
        if let Sink::Memory(memory) = &self.sink {
            memory.lock().held = self.held.iter().map(|(_, _, event)| event.is_decision()).collect();
        }
    }

    /// A fetch whose body repeats the provider's previous one, without it.
    /// The previous one is the body of the provider's last `fetch_completed`
    /// (none when that had no exchange), which is what replay uses too.
    /// The same for a status page, whose previous one is the provider's
    /// last `status_checked`.
    fn store_once(&mut self, (at, stream, mut event): Stamped) -> Stamped {
        let (key, exchange, body_repeated) = match &mut event {
            Event::FetchCompleted {
                provider,
                exchange,
                body_repeated,
                ..
            } => ((*provider, false), exchange, body_repeated),
            Event::StatusChecked {
                provider,
                exchange,
                body_repeated,
                ..
            } => ((*provider, true), exchange, body_repeated),
            _ => return (at, stream, event),
        };
        match exchange {
            None => {
                self.bodies.remove(&key);
            }
            Some(exchange) if self.bodies.get(&key) == Some(&exchange.response.body) => {
                exchange.response.body = Value::Null;
                *body_repeated = true;
            }
            Some(exchange) => {
                self.bodies.insert(key, exchange.response.body.clone());
            }
        }
        (at, stream, event)
    }

    /// Replaces the snapshot file with the view at `now`, and returns that view.
    /// A journal in memory has no file: it only returns the view.
    /// `file_stale_after` is the stale threshold the settings file alone
    /// gives (see [`Status::stale_after_s`]).
    pub fn publish(
        &self,
        now: Timestamp,
        options: &StatusOptions,
        file_stale_after: SignedDuration,
    ) -> Result<Status, LogError> {
        let mut view = status::view(&self.store, now, options);
        if let Sink::Log(_, data_dir) = &self.sink {
            // Readers judge freshness by this engine's settings, which may
            // hold host patches their settings file does not.
            view.stale_after_s = Some(options.stale_after.as_secs().unsigned_abs());
            view.file_stale_after_s = Some(file_stale_after.as_secs().unsigned_abs());
            let written = status::write_snapshot(data_dir, &view);
            (view.stale_after_s, view.file_stale_after_s) = (None, None);
            written.map_err(LogError::io(&status::snapshot_path(data_dir)))?;
        }
        Ok(view)
    }

    /// The live store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// One bounded step of the log's retention at `now` (see
    /// [`Log::retain_step`]); nothing in memory. Once bodies were dropped,
    /// the next fetch's body is stored whole rather than pointing back to
    /// one that may be gone.
    pub fn retain_step(&mut self, now: Timestamp, retention: &Retention) -> Result<Step, LogError> {
        let Sink::Log(log, _) = &mut self.sink else {
            return Ok(Step {
                done: true,
                ..Step::default()
            });
        };
        let step = log.retain_step(now, retention)?;
        if step.shortened > 0 || step.folded > 0 {
            self.bodies.clear();
            self.freed = true;
        }
        Ok(step)
    }

    /// The log underneath (`None` in memory).
    pub fn log(&self) -> Option<&Log> {
        match &self.sink {
            Sink::Log(log, _) => Some(log),
            Sink::Memory(_) => None,
        }
    }

    /// Clean shutdown: a checkpoint of the current store, then the log's
    /// own clean close (see [`Log::close`]); when retention freed space,
    /// the space given back to the disk if worth it
    /// ([`crate::log::vacuum::vacuum_if_worth`]; a failure there leaves
    /// the log as it was, and `log compact` can do it).
    pub fn close(self) -> Result<(), LogError> {
        match self.sink {
            Sink::Log(log, data_dir) => {
                log.write_checkpoint(&self.store)?;
                (*log).close()?;
                if self.freed {
                    let _ = crate::log::vacuum::vacuum_if_worth(&data_dir);
                }
                Ok(())
            }
            Sink::Memory(_) => Ok(()),
        }
    }
}
