//! The seven providers, all of one shape: an id, a label, the quotas it
//! declares, the request it needs, and a pure `parse` of one recorded
//! response into resolved windows or a classified error.
//!
//! Providers parse and never fetch: the transport performs the request a
//! provider describes and hands the response back to [`Provider::parse`].
//! What is common to every provider (JSON decoding, HTTP error
//! classification, resolution against the quota table) lives in this module
//! and its helpers; each provider file holds only that provider's quirks.

pub(crate) mod decode;
mod errors;
mod google;

pub mod anthropic;
pub mod antigravity;
pub mod codex;
pub mod copilot;
pub mod detect;
pub mod gemini;
pub mod kiro;
pub mod zai;

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::quota::{QuotaDefinition, ResolvedUsageWindow, UsageSnapshot, resolve_quota};

pub use errors::{ErrorKind, FetchError, MAX_RETRY_AFTER_S, retry_after};

/// A provider id, as used on the command line, in events and in window ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderId {
    Anthropic,
    Antigravity,
    Codex,
    Copilot,
    Gemini,
    Kiro,
    Zai,
}

impl ProviderId {
    /// Every provider, in display order.
    pub const ALL: [ProviderId; 7] = [
        ProviderId::Anthropic,
        ProviderId::Codex,
        ProviderId::Copilot,
        ProviderId::Gemini,
        ProviderId::Antigravity,
        ProviderId::Kiro,
        ProviderId::Zai,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderId::Anthropic => "anthropic",
            ProviderId::Antigravity => "antigravity",
            ProviderId::Codex => "codex",
            ProviderId::Copilot => "copilot",
            ProviderId::Gemini => "gemini",
            ProviderId::Kiro => "kiro",
            ProviderId::Zai => "zai",
        }
    }

    /// The provider's implementation.
    pub fn provider(self) -> &'static Provider {
        match self {
            ProviderId::Anthropic => &anthropic::PROVIDER,
            ProviderId::Antigravity => &antigravity::PROVIDER,
            ProviderId::Codex => &codex::PROVIDER,
            ProviderId::Copilot => &copilot::PROVIDER,
            ProviderId::Gemini => &gemini::PROVIDER,
            ProviderId::Kiro => &kiro::PROVIDER,
            ProviderId::Zai => &zai::PROVIDER,
        }
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a provider id we do not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider {0:?} (expected one of: anthropic, antigravity, codex, copilot, gemini, kiro, zai)")]
pub struct UnknownProvider(pub String);

impl FromStr for ProviderId {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProviderId::ALL
            .into_iter()
            .find(|id| id.as_str() == s)
            .ok_or_else(|| UnknownProvider(s.to_owned()))
    }
}

/// One HTTP response as received, borrowed from wherever it was recorded.
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    pub status: u16,
    /// Header names in any case; looked up case-insensitively.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl Response<'_> {
    /// The first header named `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim())
    }
}

/// HTTP method of a provider request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
}

/// How the credential goes into the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `Authorization: token <token>` (GitHub).
    Token,
}

/// The request a provider needs, without the credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    pub method: Method,
    /// The default origin (scheme, host, port); `QUOTATRACK_<ID>_BASE_URL` replaces it.
    pub origin: &'static str,
    pub path: &'static str,
    /// Headers that must be sent, besides the credential.
    pub headers: &'static [(&'static str, &'static str)],
    pub body: Option<&'static str>,
    pub auth: AuthScheme,
    /// Credential extras sent as headers: `(extra, header name)`. Their
    /// values are secrets and are recorded as `[redacted]`.
    pub secret_headers: &'static [(&'static str, &'static str)],
    /// Credential extras added to the JSON body: `(extra, field name)`.
    /// Request bodies are never recorded.
    pub body_fields: &'static [(&'static str, &'static str)],
}

impl RequestSpec {
    /// A `GET` with a bearer token.
    pub const fn get(
        origin: &'static str,
        path: &'static str,
        headers: &'static [(&'static str, &'static str)],
    ) -> Self {
        Self {
            method: Method::Get,
            origin,
            path,
            headers,
            body: None,
            auth: AuthScheme::Bearer,
            secret_headers: &[],
            body_fields: &[],
        }
    }

    /// A `POST` of `body` with a bearer token.
    pub const fn post(
        origin: &'static str,
        path: &'static str,
        headers: &'static [(&'static str, &'static str)],
        body: &'static str,
    ) -> Self {
        Self {
            body: Some(body),
            method: Method::Post,
            ..Self::get(origin, path, headers)
        }
    }

    /// The same request with `auth` instead of a bearer token.
    pub const fn with_auth(self, auth: AuthScheme) -> Self {
        Self { auth, ..self }
    }

    /// The same request sending credential extras as headers.
    pub const fn with_secret_headers(self, secret_headers: &'static [(&'static str, &'static str)]) -> Self {
        Self { secret_headers, ..self }
    }

    /// The same request adding credential extras to its JSON body.
    pub const fn with_body_fields(self, body_fields: &'static [(&'static str, &'static str)]) -> Self {
        Self { body_fields, ..self }
    }

    /// The full URL at the default origin.
    pub fn url(&self) -> String {
        format!("{}{}", self.origin, self.path)
    }
}

/// What a provider read out of one successful response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParsedUsage {
    pub provider: ProviderId,
    /// The plan label, when the response names one.
    pub plan: Option<String>,
    /// Resolved windows, in the provider's display order; never empty.
    pub windows: Vec<ResolvedUsageWindow>,
}

/// A provider's reading of a response body, before resolution.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    pub plan: Option<String>,
    pub snapshots: Vec<UsageSnapshot>,
}

/// The shape every provider shares: what identifies it, the quotas it
/// declares, and the two functions that hold its quirks. Each provider file
/// defines one `PROVIDER` value; everything else is common and lives here.
pub struct Provider {
    id: ProviderId,
    /// The name users know the service by.
    label: &'static str,
    /// The usage request, without the credential.
    request: RequestSpec,
    /// The quotas this provider's snapshots are resolved against.
    quotas: fn() -> Vec<QuotaDefinition>,
    /// Reads a successful (2xx, JSON) body into snapshots, or reports an
    /// error the body carries despite its status.
    read: ReadFn,
    /// Classifies a failed response; `Failure::classify` covers the HTTP
    /// status conventions and common error envelopes.
    classify: fn(&errors::Failure<'_>) -> FetchError,
}

impl Provider {
    /// A provider whose failures need no more than the common classification.
    pub(crate) const fn new(
        id: ProviderId,
        label: &'static str,
        request: RequestSpec,
        quotas: fn() -> Vec<QuotaDefinition>,
        read: ReadFn,
    ) -> Self {
        Self {
            id,
            label,
            request,
            quotas,
            read,
            classify: |failure| failure.classify(),
        }
    }

    /// The same provider with its own failure classification.
    pub(crate) const fn with_classify(self, classify: fn(&errors::Failure<'_>) -> FetchError) -> Self {
        Self { classify, ..self }
    }

    pub fn id(&self) -> ProviderId {
        self.id
    }

    /// The name users know the service by.
    pub fn label(&self) -> &'static str {
        self.label
    }

    /// The usage request.
    pub fn request(&self) -> RequestSpec {
        self.request.clone()
    }

    /// The quotas this provider's snapshots are resolved against, built
    /// once per process: every status settles each provider's windows
    /// against them, and Copilot's table alone is twenty named rows.
    pub fn quotas(&self) -> &'static [QuotaDefinition] {
        static QUOTAS: [OnceLock<Vec<QuotaDefinition>>; ProviderId::ALL.len()] =
            [const { OnceLock::new() }; ProviderId::ALL.len()];
        QUOTAS[self.id as usize].get_or_init(self.quotas)
    }

    /// Parses one response. Pure: no I/O, no clock but `now`, no panic on any
    /// input, linear in the size of the body.
    pub fn parse(&self, response: &Response<'_>, now: Timestamp) -> Result<ParsedUsage, FetchError> {
        let json = serde_json::from_slice::<Value>(response.body);
        self.parse_decoded(response, json.as_ref(), now)
    }

    /// The same for a body already decoded: `json` is the body as JSON, or
    /// why `response.body` is not JSON. A recorded exchange keeps its body
    /// decoded, so reading it again needs no second decoding (the bytes are
    /// then only read when `json` is an error).
    pub fn parse_decoded(
        &self,
        response: &Response<'_>,
        json: Result<&Value, &serde_json::Error>,
        now: Timestamp,
    ) -> Result<ParsedUsage, FetchError> {
        if !(200..300).contains(&response.status) {
            let failure = errors::Failure::new(response, json.ok(), now);
            return Err((self.classify)(&failure));
        }
        let json = json.map_err(|error| errors::not_json(response, error))?;
        if let Some(error) = errors::rpc_body_error(json) {
            return Err(error);
        }
        let reading = (self.read)(json, response, now)?;
        resolve(self, reading)
    }
}

/// How a provider reads a successful body.
type ReadFn = fn(&Value, &Response<'_>, Timestamp) -> Result<Reading, FetchError>;

/// Resolves a reading against the provider's quotas, keeping snapshot order.
fn resolve(provider: &Provider, reading: Reading) -> Result<ParsedUsage, FetchError> {
    let quotas = provider.quotas();
    // Display order is the snapshot order; an aggregated window (one for many
    // snapshots) comes after every window of its own. Linear in snapshots.
    let mut keyed: Vec<(usize, ResolvedUsageWindow)> = Vec::new();
    for quota in quotas {
        let (indexes, snapshots): (Vec<usize>, Vec<&UsageSnapshot>) = reading
            .snapshots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.quota == quota.id)
            .unzip();
        if snapshots.is_empty() {
            continue;
        }
        let windows = resolve_quota(quota, &snapshots);
        if quota.aggregates() {
            keyed.extend(windows.into_iter().map(|w| (usize::MAX, w)));
        } else {
            keyed.extend(indexes.into_iter().zip(windows));
        }
    }
    keyed.sort_by_key(|(index, _)| *index);
    let mut windows: Vec<_> = keyed.into_iter().map(|(_, window)| window).collect();
    dedupe_ids(&mut windows);
    if windows.is_empty() {
        return Err(FetchError::Malformed {
            message: "the response holds no usable usage window".to_owned(),
        });
    }
    Ok(ParsedUsage {
        provider: provider.id(),
        plan: reading.plan,
        windows,
    })
}

/// Makes window ids unique by suffixing repeats (`5h`, `5h-2`), so two
/// windows of one length never overwrite each other downstream.
fn dedupe_ids(windows: &mut [ResolvedUsageWindow]) {
    let mut seen = std::collections::HashSet::new();
    for window in windows {
        let mut candidate = window.id.clone();
        let mut n = 2;
        while !seen.insert(candidate.clone()) {
            candidate = format!("{}-{n}", window.id);
            n += 1;
        }
        window.id = candidate;
    }
}
