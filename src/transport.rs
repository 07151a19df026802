//! The transport: the seam between the engine and the network. The engine
//! hands it a provider's request and gets a recorded exchange back (or a
//! transport error when no answer came), so what went over the wire is
//! exactly what the log keeps and what replay feeds back.
//!
//! This file holds the trait and the offline implementation,
//! [`ExchangePlayer`], which serves recorded exchanges (the `--fixtures`
//! mode, `demo` and tests).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::clock::{BoxFuture, Clock};
use crate::credentials::Credential;
use crate::exchange::RecordedExchange;
use crate::providers::{Method, ProviderId};

/// One request to send: a provider's request with its credential.
#[derive(Debug, Clone)]
pub struct Request {
    /// The provider asked.
    pub provider: ProviderId,
    /// `GET` or `POST`.
    pub method: Method,
    /// The full URL.
    pub url: String,
    /// Headers besides the credential.
    pub headers: Vec<(String, String)>,
    /// The body of a `POST`.
    pub body: Option<String>,
    /// The credential; the transport puts it where the provider wants it.
    pub credential: Credential,
}

impl Request {
    /// The usage request of `provider`, at its default origin.
    pub fn usage(provider: ProviderId, credential: Credential) -> Request {
        let spec = provider.provider().request();
        Request {
            provider,
            method: spec.method,
            url: spec.url(),
            headers: spec
                .headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            body: spec.body.map(str::to_owned),
            credential,
        }
    }
}

/// Why no response came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The request took longer than the fetch bound.
    #[error("no answer within {seconds} s")]
    Timeout {
        /// The bound.
        seconds: u64,
    },
    /// The connection failed or broke.
    #[error("{0}")]
    Network(String),
    /// An offline transport has nothing recorded for this provider.
    #[error("no recorded exchange for {0}")]
    NothingRecorded(ProviderId),
}

/// Sends requests.
pub trait Transport: Send + Sync {
    /// Sends `request` and returns the redacted exchange.
    fn send<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<RecordedExchange, TransportError>>;
}

/// Serves recorded exchanges: per provider, the given sequence in order,
/// starting over at the end. Each served exchange is stamped with the
/// clock's reading, as if it had just arrived. It counts what was asked,
/// so tests can assert that a provider got no request.
pub struct ExchangePlayer {
    clock: Arc<dyn Clock>,
    queues: Mutex<BTreeMap<ProviderId, Queue>>,
    /// At the end of a sequence, keep serving its last exchange instead of
    /// starting over.
    hold_last: bool,
}

struct Queue {
    exchanges: Vec<RecordedExchange>,
    served: usize,
}

/// Why a fixtures directory could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FixturesError {
    /// The file or directory.
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

impl ExchangePlayer {
    /// A player of the given exchanges.
    pub fn new(exchanges: BTreeMap<ProviderId, Vec<RecordedExchange>>, clock: Arc<dyn Clock>) -> ExchangePlayer {
        let queues = exchanges
            .into_iter()
            .filter(|(_, exchanges)| !exchanges.is_empty())
            .map(|(id, exchanges)| (id, Queue { exchanges, served: 0 }))
            .collect();
        ExchangePlayer {
            clock,
            queues: Mutex::new(queues),
            hold_last: false,
        }
    }

    /// The same player, answering with each sequence's last exchange once
    /// the sequence is used up (a script whose end state lasts).
    pub fn holding_last(mut self) -> ExchangePlayer {
        self.hold_last = true;
        self
    }

    /// The exchanges of `dir/<provider>/*.json`, in file-name order
    /// (the `--fixtures DIR` contract).
    pub fn from_dir(dir: &Path, clock: Arc<dyn Clock>) -> Result<ExchangePlayer, FixturesError> {
        Ok(ExchangePlayer::new(load_fixtures(dir)?, clock))
    }

    /// The providers this player has exchanges for.
    pub fn providers(&self) -> Vec<ProviderId> {
        self.lock().keys().copied().collect()
    }

    /// How many requests `provider` has been sent.
    pub fn requests(&self, provider: ProviderId) -> usize {
        self.lock().get(&provider).map_or(0, |queue| queue.served)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<ProviderId, Queue>> {
        self.queues.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Transport for ExchangePlayer {
    fn send<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<RecordedExchange, TransportError>> {
        let hold_last = self.hold_last;
        let served = self.lock().get_mut(&request.provider).map(|queue| {
            let n_exchanges = queue.exchanges.len();
            let index = if hold_last {
                queue.served.min(n_exchanges - 1)
            } else {
                queue.served % n_exchanges
            };
            let exchange = queue.exchanges[index].clone();
            queue.served += 1;
            exchange
        });
        let result = match served {
            Some(mut exchange) => {
                exchange.recorded_at = self.clock.now();
                Ok(exchange)
            }
            None => Err(TransportError::NothingRecorded(request.provider)),
        };
        Box::pin(std::future::ready(result))
    }
}

/// Reads `dir/<provider>/*.json` for every provider, in file-name order.
/// A provider without a directory has no exchanges; an unreadable file is an
/// error naming it.
pub fn load_fixtures(dir: &Path) -> Result<BTreeMap<ProviderId, Vec<RecordedExchange>>, FixturesError> {
    let fail = |path: &Path, message: String| FixturesError {
        path: path.to_owned(),
        message,
    };
    if !dir.is_dir() {
        return Err(fail(dir, "not a directory".to_owned()));
    }
    let mut all = BTreeMap::new();
    for id in ProviderId::ALL {
        let provider_dir = dir.join(id.as_str());
        let Ok(entries) = fs::read_dir(&provider_dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        paths.sort();
        let mut exchanges = Vec::with_capacity(paths.len());
        for path in paths {
            let bytes = fs::read(&path).map_err(|error| fail(&path, error.to_string()))?;
            let exchange: RecordedExchange = serde_json::from_slice(&bytes)
                .map_err(|error| fail(&path, format!("not a recorded exchange: {error}")))?;
            exchanges.push(exchange);
        }
        if !exchanges.is_empty() {
            all.insert(id, exchanges);
        }
    }
    Ok(all)
}
