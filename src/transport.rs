//! The transport: the seam between the engine and the network. The engine
//! hands it a provider's request and gets a recorded exchange back (or a
//! transport error when no answer came), so what went over the wire is
//! exactly what the log keeps and what replay feeds back.
//!
//! This file holds the trait, the offline implementation,
//! [`ExchangePlayer`], which serves recorded exchanges (the `--fixtures`
//! mode, `demo` and tests), and the live one, [`HttpTransport`] (reqwest
//! with rustls; the only code in the crate that names the HTTP client).
//!
//! **Invariant:** a request that carries a secret (the credential, a
//! secret header such as Codex's account id, a credential in the body) is
//! sent only to the origin (scheme, host, port) it was built for. The
//! client follows no redirect itself; [`redirect_hop`] decides each one:
//! same origin, at most [`MAX_REDIRECTS`], never HTTPS to HTTP. A redirect
//! elsewhere ends the fetch as [`TransportError::Redirected`] (error kind
//! `redirected`) without a byte sent there. A public status page may be
//! redirected to another origin, within the same bound.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use reqwest::Url;
use serde_json::Value;

use crate::clock::{BoxFuture, Clock};
use crate::credentials::{Credential, Secret};
use crate::exchange::{RecordedExchange, RecordedRequest, RecordedResponse};
use crate::providers::{AuthScheme, ErrorKind, Method, ProviderId};
use crate::redact::{REDACTED, Redactor};

/// The most a response body may hold; a larger one is `malformed`.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The most redirects followed for one request.
pub const MAX_REDIRECTS: usize = 3;

/// What a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Purpose {
    /// The provider's usage endpoint, with a credential.
    Usage,
    /// The provider's public status page, without one.
    StatusPage,
}

/// One request to send: a provider's request with its credential.
#[derive(Debug, Clone)]
pub struct Request {
    /// The provider asked.
    pub provider: ProviderId,
    /// Usage or status page.
    pub purpose: Purpose,
    /// `GET` or `POST`.
    pub method: Method,
    /// The provider's default origin (scheme, host, port).
    pub origin: String,
    /// The path (and query) after the origin.
    pub path: String,
    /// Headers besides the credential.
    pub headers: Vec<(String, String)>,
    /// Headers whose values are secrets (an account id): sent, recorded as
    /// `[redacted]`.
    pub secret_headers: Vec<(String, Secret)>,
    /// The body of a `POST`.
    pub body: Option<String>,
    /// How the credential is sent.
    pub auth: AuthScheme,
    /// The credential, which the transport puts where the provider wants
    /// it; `None` for a public page.
    pub credential: Option<Credential>,
}

impl Request {
    /// The usage request of `provider`, at its default origin, with the
    /// credential's extras placed where the provider wants them.
    pub fn usage(provider: ProviderId, credential: Credential) -> Request {
        let spec = provider.provider().request();
        let secret_headers = spec
            .secret_headers
            .iter()
            .filter_map(|(extra, header)| {
                let value = credential.extras.get(extra)?;
                Some(((*header).to_owned(), value.clone()))
            })
            .collect();
        let body = spec.body.map(|body| {
            let mut json: Value = serde_json::from_str(body).unwrap_or_else(|_| Value::Object(Default::default()));
            for (extra, field) in spec.body_fields {
                if let (Some(value), Some(fields)) = (credential.extras.get(extra), json.as_object_mut()) {
                    fields.insert((*field).to_owned(), Value::String(value.expose().to_owned()));
                }
            }
            json.to_string()
        });
        Request {
            provider,
            purpose: Purpose::Usage,
            method: spec.method,
            origin: spec.origin.to_owned(),
            path: spec.path.to_owned(),
            headers: spec
                .headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            secret_headers,
            body,
            auth: spec.auth,
            credential: Some(credential),
        }
    }

    /// The secrets this request carries (none for a public page).
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.credential.iter().flat_map(Credential::secrets)
    }

    /// Whether anything secret goes with this request: the credential (in
    /// a header or, through its extras, in the body) or a secret header.
    /// Such a request never leaves its origin.
    pub fn carries_secrets(&self) -> bool {
        self.credential.is_some() || !self.secret_headers.is_empty()
    }

    /// The full URL at `origin` (a URL with no path, query or fragment, as
    /// [`base_urls_from`] admits): the origin's scheme, host and port with
    /// this request's path and query. The result is always at `origin`.
    pub fn url_at(&self, origin: &Url) -> Url {
        let mut url = origin.clone();
        let (path, query) = match self.path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (self.path.as_str(), None),
        };
        url.set_path(path);
        url.set_query(query);
        url.set_fragment(None);
        url
    }

    /// The URL at the provider's default origin.
    pub fn default_url(&self) -> Result<Url, TransportError> {
        let origin = Url::parse(&self.origin)
            .map_err(|error| TransportError::Client(format!("bad default origin {}: {error}", self.origin)))?;
        Ok(self.url_at(&origin))
    }
}

/// Why a redirect was not followed. Each message names the target's origin
/// (scheme, host, port) and never its path or query, which may carry
/// anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A request with credentials was sent to another origin.
    #[error("redirected to another origin ({target}); not followed, the request carries credentials")]
    ForeignOrigin {
        /// The target's origin.
        target: String,
    },
    /// From HTTPS to plain HTTP.
    #[error("redirected from https to plain http ({target}); not followed")]
    Downgrade {
        /// The target's origin.
        target: String,
    },
    /// Past [`MAX_REDIRECTS`].
    #[error("more than {max} redirects ({target}); not followed")]
    TooMany {
        /// The last target's origin.
        target: String,
        /// The bound.
        max: usize,
    },
}

/// The redirect rule, for one answer with status `status` and a `Location`
/// of `location`, to a request first sent to `first` that is now at
/// `current` after `hops` redirects. `Ok(Some(url))`: send the request
/// again to `url`; `Ok(None)`: not a redirect to follow (no usable
/// location, or a status that is not a redirect), the answer stands;
/// `Err`: the fetch ends with this refusal and nothing goes to the target.
///
/// With `carries_secrets`, only a target at `first`'s origin is followed;
/// never from HTTPS to HTTP; at most [`MAX_REDIRECTS`] hops.
pub fn redirect_hop(
    first: &Url,
    current: &Url,
    status: u16,
    location: Option<&str>,
    hops: usize,
    carries_secrets: bool,
) -> Result<Option<Url>, Refusal> {
    if !matches!(status, 301 | 302 | 303 | 307 | 308) {
        return Ok(None);
    }
    let Some(mut next) = location.and_then(|location| current.join(location.trim()).ok()) else {
        return Ok(None);
    };
    next.set_fragment(None);
    let target = origin_text(&next);
    let fetchable = matches!(next.scheme(), "http" | "https") && next.host().is_some();
    if !fetchable {
        return Err(Refusal::ForeignOrigin { target });
    }
    if current.scheme() == "https" && next.scheme() == "http" {
        return Err(Refusal::Downgrade { target });
    }
    if carries_secrets && next.origin() != first.origin() {
        return Err(Refusal::ForeignOrigin { target });
    }
    if hops >= MAX_REDIRECTS {
        return Err(Refusal::TooMany {
            target,
            max: MAX_REDIRECTS,
        });
    }
    // Credentials go in headers we set, never in the URL.
    let _ = next.set_username("");
    let _ = next.set_password(None);
    Ok(Some(next))
}

/// `https://host:port`: a URL's origin, without path, query or user info.
fn origin_text(url: &Url) -> String {
    match url.host_str() {
        Some(host) => match url.port() {
            Some(port) => format!("{}://{host}:{port}", url.scheme()),
            None => format!("{}://{host}", url.scheme()),
        },
        None => format!("a {} URL", url.scheme()),
    }
}

/// A `QUOTATRACK_<ID>_BASE_URL` that cannot be used: what is wrong with it
/// and what is allowed (the value itself is not repeated: it may hold a
/// password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{variable} {problem}; set it to an absolute http or https URL with only a scheme, host and port, such as https://gateway.example:8443, or unset it"
)]
pub struct BaseUrlError {
    /// The variable, e.g. `QUOTATRACK_ZAI_BASE_URL`.
    pub variable: String,
    /// What is wrong: `has a path`, `has a query`, …
    pub problem: &'static str,
}

/// The base URLs set by `QUOTATRACK_<ID>_BASE_URL` in `env`: each replaces
/// its provider's origin. An empty value counts as unset. A value that is
/// not an absolute http(s) URL, or has user info, a path other than `/`, a
/// query or a fragment, is an error naming the variable: a request cannot
/// honour them, and dropping them silently would send it somewhere else.
pub fn base_urls_from(env: impl Fn(&str) -> Option<String>) -> Result<BTreeMap<ProviderId, Url>, BaseUrlError> {
    let mut urls = BTreeMap::new();
    for id in ProviderId::ALL {
        let variable = format!("QUOTATRACK_{}_BASE_URL", id.as_str().to_uppercase());
        let Some(value) = env(&variable).filter(|value| !value.trim().is_empty()) else {
            continue;
        };
        let fail = |problem| BaseUrlError {
            variable: variable.clone(),
            problem,
        };
        let url = Url::parse(value.trim()).map_err(|_| fail("is not an absolute URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(fail("is not an http or https URL"));
        }
        if url.host().is_none() {
            return Err(fail("has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(fail("has a user name or password"));
        }
        if !matches!(url.path(), "" | "/") {
            return Err(fail("has a path"));
        }
        if url.query().is_some() {
            return Err(fail("has a query"));
        }
        if url.fragment().is_some() {
            return Err(fail("has a fragment"));
        }
        urls.insert(id, url);
    }
    Ok(urls)
}

/// Why no usable response came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The request took longer than the fetch bound.
    #[error("no answer within {}", seconds_text(*millis))]
    Timeout {
        /// The bound, in milliseconds.
        millis: u64,
    },
    /// The connection failed or broke.
    #[error("{0}")]
    Network(String),
    /// The body was larger than [`MAX_BODY_BYTES`].
    #[error("response body larger than {} KiB", limit / 1024)]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// An offline transport has nothing recorded for this provider.
    #[error("no recorded exchange for {0}")]
    NothingRecorded(ProviderId),
    /// The credential's own store says it has expired; nothing was sent.
    #[error("the token in {origin} has expired; run `{fix}`")]
    Expired {
        /// Where the credential came from.
        origin: String,
        /// The command that renews it.
        fix: &'static str,
    },
    /// The HTTP client could not be built.
    #[error("cannot start the HTTP client: {0}")]
    Client(String),
    /// A redirect that was not followed (see [`redirect_hop`]).
    #[error("{0}")]
    Redirected(Refusal),
}

impl TransportError {
    /// How the failure is classified in the store: an oversized body is
    /// `malformed`, an expired token `auth`, a refused redirect
    /// `redirected`, everything else `unavailable`.
    pub fn kind(&self) -> ErrorKind {
        match self {
            TransportError::TooLarge { .. } => ErrorKind::Malformed,
            TransportError::Expired { .. } => ErrorKind::Auth,
            TransportError::Redirected(_) => ErrorKind::Redirected,
            _ => ErrorKind::Unavailable,
        }
    }
}

impl TransportError {
    /// The error with every secret removed from what it says (a network
    /// error quotes the URL it failed on, which a redirect chose).
    pub fn redacted(self, redactor: &Redactor) -> TransportError {
        match self {
            TransportError::Network(message) => TransportError::Network(redactor.text(&message)),
            TransportError::Client(message) => TransportError::Client(redactor.text(&message)),
            TransportError::Expired { origin, fix } => TransportError::Expired {
                origin: redactor.text(&origin),
                fix,
            },
            TransportError::Timeout { millis } => TransportError::Timeout { millis },
            TransportError::TooLarge { limit } => TransportError::TooLarge { limit },
            TransportError::NothingRecorded(provider) => TransportError::NothingRecorded(provider),
            // The target's origin is the server's choice and could spell a secret.
            TransportError::Redirected(refusal) => TransportError::Redirected(match refusal {
                Refusal::ForeignOrigin { target } => Refusal::ForeignOrigin {
                    target: redactor.text(&target),
                },
                Refusal::Downgrade { target } => Refusal::Downgrade {
                    target: redactor.text(&target),
                },
                Refusal::TooMany { target, max } => Refusal::TooMany {
                    target: redactor.text(&target),
                    max,
                },
            }),
        }
    }
}

/// What a transport answered, redacted: the one call every live transport
/// makes before handing an answer on.
pub fn redacted(
    redactor: &Redactor,
    answer: Result<RecordedExchange, TransportError>,
) -> Result<RecordedExchange, TransportError> {
    match answer {
        Ok(mut exchange) => {
            redactor.exchange(&mut exchange);
            Ok(exchange)
        }
        Err(error) => Err(error.redacted(redactor)),
    }
}

/// `5 s`, `0.5 s`.
fn seconds_text(millis: u64) -> String {
    if millis % 1000 == 0 {
        format!("{} s", millis / 1000)
    } else {
        format!("{} s", millis as f64 / 1000.0)
    }
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
    queues: Mutex<BTreeMap<(ProviderId, Purpose), Queue>>,
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
    /// A player of the given usage exchanges.
    pub fn new(exchanges: BTreeMap<ProviderId, Vec<RecordedExchange>>, clock: Arc<dyn Clock>) -> ExchangePlayer {
        ExchangePlayer {
            clock,
            queues: Mutex::new(BTreeMap::new()),
            hold_last: false,
        }
        .serving(Purpose::Usage, exchanges)
    }

    /// The same player, also serving `exchanges` for `purpose`.
    pub fn serving(self, purpose: Purpose, exchanges: BTreeMap<ProviderId, Vec<RecordedExchange>>) -> ExchangePlayer {
        self.lock().extend(
            exchanges
                .into_iter()
                .filter(|(_, exchanges)| !exchanges.is_empty())
                .map(|(id, exchanges)| ((id, purpose), Queue { exchanges, served: 0 })),
        );
        self
    }

    /// Moves each provider's usage sequence on by the exchanges it already
    /// served in earlier runs (`served`, e.g. the fetches a data dir's log
    /// recorded), so that successive processes on one data dir go on through
    /// the fixtures instead of starting over.
    pub fn resume(&self, served: impl IntoIterator<Item = (ProviderId, usize)>) {
        let mut queues = self.lock();
        for (provider, count) in served {
            if let Some(queue) = queues.get_mut(&(provider, Purpose::Usage)) {
                queue.served = count;
            }
        }
    }

    /// The same player, answering with each sequence's last exchange once
    /// the sequence is used up (a script whose end state lasts).
    pub fn holding_last(mut self) -> ExchangePlayer {
        self.hold_last = true;
        self
    }

    /// The exchanges of `dir/<provider>/*.json`, in file-name order
    /// (the `--fixtures DIR` contract), and the status pages of
    /// `dir/<provider>/status/*.json`.
    pub fn from_dir(dir: &Path, clock: Arc<dyn Clock>) -> Result<ExchangePlayer, FixturesError> {
        let status_pages = load_exchanges(dir, Some("status"))?;
        Ok(ExchangePlayer::new(load_fixtures(dir)?, clock).serving(Purpose::StatusPage, status_pages))
    }

    /// The providers this player has exchanges for.
    pub fn providers(&self) -> Vec<ProviderId> {
        let queues = self.lock();
        let mut providers: Vec<ProviderId> = queues
            .keys()
            .filter(|(_, purpose)| *purpose == Purpose::Usage)
            .map(|(id, _)| *id)
            .collect();
        providers.dedup();
        providers
    }

    /// How many usage requests `provider` has been sent.
    pub fn requests(&self, provider: ProviderId) -> usize {
        self.requests_for(provider, Purpose::Usage)
    }

    /// How many requests for `purpose` `provider` has been sent.
    pub fn requests_for(&self, provider: ProviderId, purpose: Purpose) -> usize {
        self.lock().get(&(provider, purpose)).map_or(0, |queue| queue.served)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(ProviderId, Purpose), Queue>> {
        self.queues.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Transport for ExchangePlayer {
    fn send<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<RecordedExchange, TransportError>> {
        let hold_last = self.hold_last;
        let served = self.lock().get_mut(&(request.provider, request.purpose)).map(|queue| {
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
    load_exchanges(dir, None)
}

/// Reads `dir/<provider>[/<sub>]/*.json` for every provider.
fn load_exchanges(dir: &Path, sub: Option<&str>) -> Result<BTreeMap<ProviderId, Vec<RecordedExchange>>, FixturesError> {
    let fail = |path: &Path, message: String| FixturesError {
        path: path.to_owned(),
        message,
    };
    if !dir.is_dir() {
        return Err(fail(dir, "not a directory".to_owned()));
    }
    let mut all = BTreeMap::new();
    for id in ProviderId::ALL {
        let provider_dir = dir.join(id.as_str()).join(sub.unwrap_or(""));
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

/// The live transport: one shared reqwest client (rustls, gzip, no
/// automatic redirects: [`redirect_hop`] decides each), each request and
/// its redirects bounded together by the fetch timeout, each body capped at
/// [`MAX_BODY_BYTES`], each exchange redacted before it is returned.
/// `QUOTATRACK_<ID>_BASE_URL` replaces a provider's origin.
pub struct HttpTransport {
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    origins: BTreeMap<ProviderId, Url>,
    timeout: Duration,
}

impl HttpTransport {
    /// A transport bounded by `timeout`, with `origins` (see
    /// [`base_urls_from`]) replacing the default origin of the providers
    /// they name.
    pub fn new(
        clock: Arc<dyn Clock>,
        timeout: Duration,
        origins: BTreeMap<ProviderId, Url>,
    ) -> Result<HttpTransport, TransportError> {
        tls_ready();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .connect_timeout(timeout)
            .timeout(timeout)
            .build()
            .map_err(|error| TransportError::Client(error_chain(&error)))?;
        Ok(HttpTransport {
            client,
            clock,
            origins,
            timeout,
        })
    }

    /// The base URLs set by `QUOTATRACK_<ID>_BASE_URL` in `env` (see
    /// [`base_urls_from`]).
    pub fn origins_from(env: impl Fn(&str) -> Option<String>) -> Result<BTreeMap<ProviderId, Url>, BaseUrlError> {
        base_urls_from(env)
    }

    /// The exchange, with the request and every redirect bounded together.
    async fn exchange(&self, request: &Request) -> Result<RecordedExchange, TransportError> {
        match tokio::time::timeout(self.timeout, self.follow(request)).await {
            Ok(answer) => answer,
            Err(_) => Err(TransportError::Timeout {
                millis: self.timeout.as_millis() as u64,
            }),
        }
    }

    async fn follow(&self, request: &Request) -> Result<RecordedExchange, TransportError> {
        let first = match self.origins.get(&request.provider) {
            Some(origin) => request.url_at(origin),
            None => request.default_url()?,
        };
        let carries_secrets = request.carries_secrets();
        let mut url = first.clone();
        let mut method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
        };
        let mut body = request.body.clone();
        let mut hops = 0;
        let response = loop {
            let response = self.send_once(request, &url, method.clone(), body.clone()).await?;
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|value| value.to_str().ok());
            let status = response.status().as_u16();
            match redirect_hop(&first, &url, status, location, hops, carries_secrets) {
                Ok(None) => break response,
                Ok(Some(next)) => {
                    // As browsers do: 303, and 301/302 after a POST, continue as a GET.
                    if status == 303 || (matches!(status, 301 | 302) && method == reqwest::Method::POST) {
                        method = reqwest::Method::GET;
                        body = None;
                    }
                    url = next;
                    hops += 1;
                }
                Err(refusal) => return Err(TransportError::Redirected(refusal)),
            }
        };
        self.record(request, &url, response).await
    }

    /// Sends `request` (its credential, headers and body) to `url` once.
    /// Only ever called with a `url` that [`redirect_hop`] allowed.
    async fn send_once(
        &self,
        request: &Request,
        url: &Url,
        method: reqwest::Method,
        body: Option<String>,
    ) -> Result<reqwest::Response, TransportError> {
        let mut builder = self.client.request(method, url.clone()).timeout(self.timeout);
        if let Some(credential) = &request.credential {
            let token = credential.secret.expose();
            let authorization = match request.auth {
                AuthScheme::Bearer => format!("Bearer {token}"),
                AuthScheme::Token => format!("token {token}"),
            };
            builder = builder.header(reqwest::header::AUTHORIZATION, authorization);
        }
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        for (name, value) in &request.secret_headers {
            builder = builder.header(name.as_str(), value.expose());
        }
        if let Some(body) = body {
            builder = builder.body(body);
        }
        builder.send().await.map_err(|error| self.failure(error))
    }

    /// Reads `response` (the answer at `url`) into a redacted exchange.
    async fn record(
        &self,
        request: &Request,
        url: &Url,
        mut response: reqwest::Response,
    ) -> Result<RecordedExchange, TransportError> {
        let status = response.status().as_u16();
        let mut headers = BTreeMap::new();
        for (name, value) in response.headers() {
            if Redactor::keeps_header(name.as_str()) {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                headers
                    .entry(name.as_str().to_owned())
                    .and_modify(|joined: &mut String| {
                        joined.push_str(", ");
                        joined.push_str(&value);
                    })
                    .or_insert(value);
            }
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|error| self.failure(error))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(TransportError::TooLarge { limit: MAX_BODY_BYTES });
            }
            body.extend_from_slice(&chunk);
        }
        let redactor = Redactor::new(request.secrets());
        let mut recorded_headers: BTreeMap<String, String> = request
            .headers
            .iter()
            .map(|(name, value)| (name.to_lowercase(), value.clone()))
            .collect();
        if request.credential.is_some() {
            recorded_headers.insert("authorization".to_owned(), REDACTED.to_owned());
        }
        for (name, _) in &request.secret_headers {
            recorded_headers.insert(name.to_lowercase(), REDACTED.to_owned());
        }
        for value in headers.values_mut() {
            *value = redactor.text(value);
        }
        let mut body = match serde_json::from_slice::<Value>(&body) {
            Ok(json) => json,
            Err(_) => Value::String(String::from_utf8_lossy(&body).into_owned()),
        };
        redactor.json(&mut body);
        Ok(RecordedExchange {
            provider: request.provider,
            recorded_at: self.clock.now(),
            request: RecordedRequest {
                method: match request.method {
                    Method::Get => "GET",
                    Method::Post => "POST",
                }
                .to_owned(),
                url: redactor.text(url.as_str()),
                headers: recorded_headers,
            },
            response: RecordedResponse { status, headers, body },
        })
    }

    /// A client error as a transport error; its message leaves out the
    /// URL (a redirect target's path and query may carry anything).
    fn failure(&self, error: reqwest::Error) -> TransportError {
        if error.is_timeout() {
            TransportError::Timeout {
                millis: self.timeout.as_millis() as u64,
            }
        } else {
            TransportError::Network(error_chain(&error.without_url()))
        }
    }
}

impl Transport for HttpTransport {
    fn send<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<RecordedExchange, TransportError>> {
        Box::pin(async move { redacted(&Redactor::new(request.secrets()), self.exchange(request).await) })
    }
}

/// An error and its causes, without the URL (which is in the event anyway):
/// `error sending request: connection refused`.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// Makes sure the process has a TLS crypto provider before a client is
/// built: ring, unless the host embedding the engine installed its own
/// (which is then used as it is).
pub fn tls_ready() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may install one in between; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// POSTs `body` as JSON to `url` (an alert webhook), following no redirect,
/// within `timeout`; the answer's status code, or why none came. The error
/// never names the URL: a webhook URL usually holds a secret.
pub async fn post_json(url: &Url, body: Vec<u8>, timeout: Duration) -> Result<u16, String> {
    tls_ready();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .map_err(|error| error.without_url().to_string())?;
    let sent = client
        .post(url.clone())
        .header("content-type", "application/json")
        .body(body)
        .send();
    match tokio::time::timeout(timeout, sent).await {
        Ok(Ok(response)) => Ok(response.status().as_u16()),
        Ok(Err(error)) => Err(error.without_url().to_string()),
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}
