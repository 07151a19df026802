//! `serve --http`: the engine's views over HTTP for dashboards and
//! Prometheus. The server only reads: `GET /v1/status` (exactly the
//! `status --json` object), `GET /v1/history` (the history series),
//! `GET /healthz` (who serves, when the last cycle ran, whether the log is
//! healthy) and `GET /metrics` (the Prometheus text format,
//! [`metrics`]). What it shows comes from a [`Source`]; [`Published`] is
//! the one the binary uses, fed by the engine loop after every cycle (the
//! owner) or by the owner's snapshot file alone (a follower).
//!
//! Built on hyper (HTTP/1.1) with axum's router, on the engine's tokio
//! runtime. Every request is bounded: the head (`max_header_bytes`, at
//! most 64 headers), the body (`max_body_bytes`; no endpoint reads one),
//! its time (`request_time`, also the limit for sending the head) and the
//! connections served at once (`max_connections`; one more is answered
//! 503 and closed). Errors are JSON, `{"error":{"message":…}}`: 404 for a
//! path that does not exist, 405 for a method other than GET or HEAD.
//!
//! Loopback unless asked: [`parse_address`] reads a bare port as
//! 127.0.0.1, and [`check_address`] refuses any other address without a
//! bearer [`Token`]. A token, when given, is required on every path but
//! `/healthz` and compared in constant time; it is never logged or echoed.

mod access;
pub mod metrics;
mod source;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query as QueryParams, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::history::{Query, Series};
use crate::providers::ProviderId;
use crate::wire::{Status, rfc3339_seconds};

pub use crate::cli::parse_address;
pub use access::{HttpError, Token, bind, check_address};
pub use source::{MAX_READINGS, Published};

/// What the server shows, asked at each request. Implementations answer
/// from memory or small files: a request never waits for a cycle.
pub trait Source: Send + Sync + 'static {
    /// The status now: exactly what `status --json` would print.
    fn status(&self) -> Result<Status, Unavailable>;
    /// The history series `query` asks for, or why this server has none
    /// (a follower asks its owner: the one wait a request may have, bounded).
    fn history(&self, query: Query) -> impl Future<Output = Result<Vec<Series>, Unavailable>> + Send;
    /// Who serves and how healthy the engine is.
    fn health(&self) -> Health;
    /// Everything `/metrics` shows.
    fn observation(&self) -> Result<metrics::Observation, Unavailable>;
}

/// A request this server cannot answer, with why (503).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

/// Whether this process runs the engine or reads another's snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// It owns the data dir: its engine runs the cycles.
    Owner,
    /// Another process owns the data dir; this one serves its snapshot.
    Follower,
}

impl Role {
    /// The name, as shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Follower => "follower",
        }
    }
}

/// What `/healthz` judges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Who serves.
    pub role: Role,
    /// The clock reading the judgement is made at.
    pub now: Timestamp,
    /// When the last cycle ran (for a follower: when the owner last
    /// published its snapshot).
    pub last_cycle_at: Option<Timestamp>,
    /// The cycle interval.
    pub interval: Duration,
    /// Why the log is not healthy, when it is not.
    pub log_error: Option<String>,
}

impl Health {
    /// Why the engine is unhealthy (503), or `None`: a damaged log, no
    /// cycle yet, or none for three intervals.
    pub fn problem(&self) -> Option<String> {
        if let Some(error) = &self.log_error {
            return Some(format!("the log is not healthy: {error}"));
        }
        let Some(last) = self.last_cycle_at else {
            return Some("no cycle has run yet".to_owned());
        };
        let limit = SignedDuration::try_from(self.interval.saturating_mul(3)).unwrap_or(SignedDuration::MAX);
        let since = self.now.duration_since(last);
        (since > limit).then(|| {
            format!(
                "no cycle for {} s (the interval is {} s; three are allowed)",
                since.as_secs(),
                self.interval.as_secs()
            )
        })
    }
}

/// The `/healthz` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthBody {
    /// `ok` or `unhealthy`.
    pub status: String,
    /// `owner` or `follower`.
    pub role: Role,
    /// When the last cycle ran, RFC 3339.
    pub last_cycle_at: Option<String>,
    /// Seconds between cycles.
    pub interval_s: u64,
    /// Whether the log is healthy.
    pub log_ok: bool,
    /// Why it is unhealthy, when it is.
    pub reason: Option<String>,
}

/// The server's bounds and its token.
#[derive(Debug, Clone)]
pub struct Options {
    /// Required as `Authorization: Bearer …` on every path but `/healthz`.
    pub token: Option<Token>,
    /// The request line and headers together, in bytes (at least 8 KiB,
    /// hyper's minimum).
    pub max_header_bytes: usize,
    /// A request body, in bytes.
    pub max_body_bytes: u64,
    /// The longest a request may take, its head included.
    pub request_time: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// How long open connections may finish at shutdown.
    pub drain_time: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            token: None,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 4 * 1024,
            request_time: Duration::from_secs(10),
            max_connections: 64,
            drain_time: Duration::from_secs(5),
        }
    }
}

/// Serves `source` on `listener` until `shutdown` completes, then lets
/// open requests finish for at most `options.drain_time`.
pub async fn serve<S: Source>(
    listener: TcpListener,
    source: Arc<S>,
    options: Options,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let app = router(source, &options);
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .max_buf_size(options.max_header_bytes.max(8192))
        .max_headers(64)
        .header_read_timeout(options.request_time)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors, a connection reset before it
                // was accepted: the listener itself is fine; a pause lets
                // descriptors come back instead of spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tokio::spawn(refuse_busy(stream, options.request_time.min(Duration::from_secs(1))));
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(options.drain_time, graceful.shutdown()).await;
    Ok(())
}

/// Answers a connection over the limit with 503 and closes it.
async fn refuse_busy(mut stream: tokio::net::TcpStream, limit: Duration) {
    let body = error_body("too many connections: try again shortly");
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n",
        body.len()
    );
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(limit, write).await;
}

/// The routes with their bounds and the token check.
fn router<S: Source>(source: Arc<S>, options: &Options) -> Router {
    let limits = Limits {
        token: options.token.clone(),
        max_body_bytes: options.max_body_bytes,
        request_time: options.request_time,
    };
    Router::new()
        .route("/v1/status", get(status::<S>))
        .route("/v1/history", get(history::<S>))
        .route("/healthz", get(healthz::<S>))
        .route("/metrics", get(metrics::<S>))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(source)
        // A streamed body over the limit, inside the middleware's checks.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            usize::try_from(options.max_body_bytes).unwrap_or(usize::MAX),
        ))
        .layer(middleware::from_fn_with_state(Arc::new(limits), bounded))
}

/// What the middleware checks on every request.
struct Limits {
    token: Option<Token>,
    max_body_bytes: u64,
    request_time: Duration,
}

/// The token, the body size and the time limit, before any route.
async fn bounded(State(limits): State<Arc<Limits>>, request: Request, next: Next) -> Response {
    let allowed = match &limits.token {
        Some(token) => {
            request.uri().path() == "/healthz"
                || access::bearer(request.headers()).is_some_and(|given| token.matches(given))
        }
        None => true,
    };
    if !allowed {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "this server needs a bearer token: send `Authorization: Bearer TOKEN` (the token in the --http-token-file of serve)",
        );
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if length.is_some_and(|length| length > limits.max_body_bytes) {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "the request body is larger than {} bytes; these endpoints take none",
                limits.max_body_bytes
            ),
        );
    }
    match tokio::time::timeout(limits.request_time, next.run(request)).await {
        Ok(response) => response,
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the request took longer than {} s", limits.request_time.as_secs_f64()),
        ),
    }
}

async fn status<S: Source>(State(source): State<Arc<S>>) -> Response {
    match source.status() {
        Ok(status) => json(StatusCode::OK, &status),
        Err(Unavailable(message)) => error(StatusCode::SERVICE_UNAVAILABLE, &message),
    }
}

/// `/v1/history`'s parameters.
#[derive(Debug, Default, Deserialize)]
struct HistoryParams {
    provider: Option<String>,
    window: Option<String>,
    since: Option<String>,
    until: Option<String>,
    every: Option<String>,
}

async fn history<S: Source>(
    State(source): State<Arc<S>>,
    params: Result<QueryParams<HistoryParams>, QueryRejection>,
) -> Response {
    let params = match params {
        Ok(QueryParams(params)) => params,
        Err(rejection) => {
            let shown: String = rejection.body_text().chars().take(200).collect();
            return error(
                StatusCode::BAD_REQUEST,
                &format!("bad query ({shown}): the parameters are provider, window, since, until and every"),
            );
        }
    };
    let now = source.health().now;
    let query = match history_query(params, now) {
        Ok(query) => query,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    match source.history(query).await {
        Ok(series) => json(StatusCode::OK, &serde_json::json!({"schema": 1, "series": series})),
        Err(Unavailable(message)) => error(StatusCode::SERVICE_UNAVAILABLE, &message),
    }
}

/// The history query from its parameters: `since` and `until` are RFC 3339
/// times or durations back from now (`90m`, `24h`, `7d`), `every` a
/// duration.
fn history_query(params: HistoryParams, now: Timestamp) -> Result<Query, String> {
    let provider = params
        .provider
        .map(|text| {
            text.parse::<ProviderId>().map_err(|_| {
                let known: Vec<&str> = ProviderId::ALL.iter().map(|id| id.as_str()).collect();
                format!("provider: no provider {} (known: {})", shown(&text), known.join(", "))
            })
        })
        .transpose()?;
    let time = |name: &str, text: Option<String>| -> Result<Option<Timestamp>, String> {
        let Some(text) = text else { return Ok(None) };
        if let Ok(at) = text.parse::<Timestamp>() {
            return Ok(Some(at));
        }
        let back = duration(&text).ok_or_else(|| {
            format!(
                "{name}: {} is neither an RFC 3339 time nor a duration such as 90m, 24h or 7d",
                shown(&text)
            )
        })?;
        Ok(Some(now.checked_sub(back).unwrap_or(Timestamp::MIN)))
    };
    let every = params
        .every
        .map(|text| {
            duration(&text)
                .filter(|every| every.as_secs() >= 1)
                .ok_or_else(|| format!("every: {} is not a duration such as 5m or 1h", shown(&text)))
        })
        .transpose()?;
    Ok(Query {
        provider,
        window: params.window,
        since: time("since", params.since)?,
        until: time("until", params.until)?,
        every,
    })
}

/// `90s`, `15m`, `24h`, `7d`, `2w`: a whole number and a unit.
fn duration(text: &str) -> Option<SignedDuration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().ok()?;
    let unit_s = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    // Ten years at most: beyond that every reading is included anyway.
    let seconds = number.checked_mul(unit_s).filter(|s| *s <= 10 * 365 * 86_400)?;
    Some(SignedDuration::from_secs(seconds))
}

async fn healthz<S: Source>(State(source): State<Arc<S>>) -> Response {
    let health = source.health();
    let reason = health.problem();
    let body = HealthBody {
        status: if reason.is_some() { "unhealthy" } else { "ok" }.to_owned(),
        role: health.role,
        last_cycle_at: health.last_cycle_at.map(rfc3339_seconds),
        interval_s: health.interval.as_secs(),
        log_ok: health.log_error.is_none(),
        reason,
    };
    let code = if body.reason.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    json(code, &body)
}

async fn metrics<S: Source>(State(source): State<Arc<S>>) -> Response {
    match source
        .observation()
        .and_then(|observation| metrics::render(&observation))
    {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static(metrics::CONTENT_TYPE))],
            text,
        )
            .into_response(),
        Err(Unavailable(message)) => error(StatusCode::SERVICE_UNAVAILABLE, &message),
    }
}

async fn not_found(request: Request) -> Response {
    error(
        StatusCode::NOT_FOUND,
        &format!(
            "no such path {}: the paths are /v1/status, /v1/history, /healthz and /metrics",
            shown(request.uri().path())
        ),
    )
}

async fn method_not_allowed(request: Request) -> Response {
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("{} is not allowed here: every path answers GET", request.method()),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

fn json(code: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            code,
            [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            bytes,
        )
            .into_response(),
        Err(serialize) => error(StatusCode::INTERNAL_SERVER_ERROR, &serialize.to_string()),
    }
}

/// A value from the request, quoted for an error message: control
/// characters escaped, at most 100 characters.
fn shown(text: &str) -> String {
    let head: String = text.chars().take(100).collect();
    let more = if head.len() < text.len() { "…" } else { "" };
    format!("{head:?}{more}")
}

fn error_body(message: &str) -> String {
    serde_json::json!({"error": {"message": message}}).to_string()
}

fn error(code: StatusCode, message: &str) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        error_body(message),
    )
        .into_response()
}
