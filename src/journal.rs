//! The journal: the log and its live projection kept together by the
//! process that owns the data dir. Recording appends (durably), folds each
//! event into the store, checkpoints every `checkpoint_every` events and
//! publishes the snapshot file other processes read.
//!
//! A response body the same as the one the provider's previous fetch
//! recorded is stored once: the later event says `body_repeated` and keeps
//! the rest of its exchange (a quiet provider answers the same bytes every
//! minute, and the bodies were most of what the log and its writes held).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde_json::Value;

use crate::events::{Envelope, Event, Stream};
use crate::log::{Log, LogError};
use crate::providers::ProviderId;
use crate::status::{self, StatusOptions};
use crate::store::Store;
use crate::wire::Status;

/// How many events pass between checkpoints by default.
pub const CHECKPOINT_EVERY: u64 = 1_000;

/// The owner's log and store.
pub struct Journal {
    log: Log,
    store: Store,
    data_dir: PathBuf,
    checkpoint_every: u64,
    since_checkpoint: u64,
    /// Each provider's last stored response body.
    bodies: BTreeMap<ProviderId, Value>,
    /// Events written just before whatever is recorded next, or dropped
    /// ([`Journal::hold`]).
    held: Vec<(Timestamp, Stream, Event)>,
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
        Ok(Journal {
            log,
            store,
            data_dir: data_dir.to_owned(),
            checkpoint_every: CHECKPOINT_EVERY,
            since_checkpoint: 0,
            bodies: BTreeMap::new(),
            held: Vec::new(),
        })
    }

    /// The same journal checkpointing every `events` events.
    pub fn checkpoint_every(mut self, events: u64) -> Journal {
        self.checkpoint_every = events.max(1);
        self
    }

    /// Appends a batch (durably), folds it into the store, and checkpoints
    /// when due. The returned envelopes are numbered and flushed.
    pub fn record(
        &mut self,
        items: impl IntoIterator<Item = (Timestamp, Stream, Event)>,
    ) -> Result<Vec<Envelope>, LogError> {
        let held = std::mem::take(&mut self.held);
        let items: Vec<_> = held
            .into_iter()
            .chain(items)
            .map(|item| self.store_once(item))
            .collect();
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let envelopes = self.log.append(items)?;
        for envelope in &envelopes {
            self.store.apply(envelope);
        }
        self.since_checkpoint += envelopes.len() as u64;
        if self.since_checkpoint >= self.checkpoint_every {
            self.log.write_checkpoint(&self.store)?;
            self.since_checkpoint = 0;
        }
        Ok(envelopes)
    }

    /// Keeps `items` to be recorded, in order, just before whatever is
    /// recorded next; [`Journal::drop_held`] forgets them instead. A host
    /// event is held while it is handled: one that changed nothing leaves
    /// no trace, so a stream of them cannot grow the log.
    pub fn hold(&mut self, items: impl IntoIterator<Item = (Timestamp, Stream, Event)>) {
        self.held.extend(items);
    }

    /// Forgets the held events (see [`Journal::hold`]).
    pub fn drop_held(&mut self) {
        self.held.clear();
    }

    /// A fetch whose body repeats the provider's previous one, without it.
    /// The previous one is the body of the provider's last `fetch_completed`
    /// (none when that had no exchange), which is what replay uses too.
    fn store_once(&mut self, (at, stream, mut event): (Timestamp, Stream, Event)) -> (Timestamp, Stream, Event) {
        if let Event::FetchCompleted {
            provider,
            exchange,
            body_repeated,
            ..
        } = &mut event
        {
            match exchange {
                None => {
                    self.bodies.remove(provider);
                }
                Some(exchange) if self.bodies.get(provider) == Some(&exchange.response.body) => {
                    exchange.response.body = Value::Null;
                    *body_repeated = true;
                }
                Some(exchange) => {
                    self.bodies.insert(*provider, exchange.response.body.clone());
                }
            }
        }
        (at, stream, event)
    }

    /// Replaces the snapshot file with the view at `now`, and returns that view.
    pub fn publish(&self, now: Timestamp, options: &StatusOptions) -> Result<Status, LogError> {
        let view = status::view(&self.store, now, options);
        status::write_snapshot(&self.data_dir, &view).map_err(LogError::io(&status::snapshot_path(&self.data_dir)))?;
        Ok(view)
    }

    /// The live store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The log underneath.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Clean shutdown: a checkpoint of the current store, then the log's
    /// own clean close (see [`Log::close`]).
    pub fn close(self) -> Result<(), LogError> {
        self.log.write_checkpoint(&self.store)?;
        self.log.close()
    }
}
