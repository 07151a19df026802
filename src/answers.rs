//! Where a cycle's answers come from: the one seam between the update
//! cycle and the outside world's replies. The live engine and `--fixtures`
//! answer through [`Network`] (a [`Transport`], each request bounded by the
//! fetch timeout, an expired credential never sent); replay answers from
//! the recording (`replay::Tape`). The cycle reads every [`Reply`] the same
//! way, whichever side gave it, so a replayed run executes the live lines.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{BoxFuture, Clock};
use crate::credentials::fix_command;
use crate::events::Outcome;
use crate::exchange::RecordedExchange;
use crate::providers::{ErrorKind, ProviderId};
use crate::transport::{Purpose, Request, Transport, TransportError};

/// Answers a cycle's requests.
pub trait Answers: Send + Sync {
    /// One answer per request, in any order (the cycle orders them).
    fn answer(&self, requests: Vec<Request>) -> BoxFuture<'_, Vec<Answer>>;
}

/// The answer to one request.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The provider asked.
    pub provider: ProviderId,
    /// Usage or status page.
    pub purpose: Purpose,
    /// What came back.
    pub reply: Reply,
    /// How long it took.
    pub elapsed_ms: u64,
}

/// What came back for one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A response, redacted, for today's code to read.
    Response(RecordedExchange),
    /// No usable response (timeout, refused, expired credential): the kind
    /// the store files it under, and why, in one line.
    Failed {
        /// The classification.
        kind: ErrorKind,
        /// Why.
        reason: String,
    },
    /// What an earlier run read from a response that is no longer there to
    /// read again (retention dropped its body): the reading stands.
    Read(Reading),
}

/// A reading kept without its response.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// A usage fetch's outcome.
    Usage(Outcome),
    /// A status page's indicator and description.
    Page {
        /// The indicator, as recorded.
        indicator: String,
        /// The description, as recorded.
        description: Option<String>,
    },
}

impl From<Result<RecordedExchange, TransportError>> for Reply {
    fn from(answer: Result<RecordedExchange, TransportError>) -> Reply {
        match answer {
            Ok(exchange) => Reply::Response(exchange),
            Err(error) => Reply::Failed {
                kind: error.kind(),
                reason: error.to_string(),
            },
        }
    }
}

/// The live answers: each request sent through the transport at once,
/// each bounded by `timeout`, timed by `clock`.
pub struct Network {
    /// How requests are sent (HTTP, or the fixtures player).
    pub transport: Arc<dyn Transport>,
    /// What times each request.
    pub clock: Arc<dyn Clock>,
    /// The bound on one request.
    pub timeout: Duration,
}

impl Answers for Network {
    fn answer(&self, requests: Vec<Request>) -> BoxFuture<'_, Vec<Answer>> {
        Box::pin(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for request in requests {
                let transport = Arc::clone(&self.transport);
                let clock = Arc::clone(&self.clock);
                let timeout = self.timeout;
                tasks.spawn(async move {
                    let started = clock.now();
                    let answer = send(transport.as_ref(), &request, timeout, started).await;
                    let elapsed_ms = clock.now().duration_since(started).as_millis().max(0) as u64;
                    Answer {
                        provider: request.provider,
                        purpose: request.purpose,
                        reply: Reply::from(answer),
                        elapsed_ms,
                    }
                });
            }
            tasks.join_all().await
        })
    }
}

/// Sends one request, unless its credential has expired; bounded by `timeout`.
async fn send(
    transport: &dyn Transport,
    request: &Request,
    timeout: Duration,
    now: jiff::Timestamp,
) -> Result<RecordedExchange, TransportError> {
    if let Some(credential) = request.credential.as_ref().filter(|credential| credential.expired(now)) {
        return Err(TransportError::Expired {
            origin: credential.source.clone(),
            fix: fix_command(request.provider),
        });
    }
    match tokio::time::timeout(timeout, transport.send(request)).await {
        Ok(answer) => answer,
        Err(_) => Err(TransportError::Timeout {
            millis: timeout.as_millis() as u64,
        }),
    }
}
