//! The recorded exchange: one provider request and its response, the
//! format of `fixtures/providers/<id>/*.json`, of incident attachments and
//! (later) of what the transport records into the log. Secrets are
//! `[redacted]` before an exchange is ever written.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::providers::{FetchError, ParsedUsage, Provider, ProviderId, Response};

/// A request and its response, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedExchange {
    /// The provider the request went to.
    pub provider: ProviderId,
    /// When the response arrived; the clock for its relative fields.
    pub recorded_at: Timestamp,
    /// What was sent.
    pub request: RecordedRequest,
    /// What came back.
    pub response: RecordedResponse,
}

/// The request side, credentials redacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The full URL.
    pub url: String,
    /// Header names in lower case.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// The response side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedResponse {
    /// The HTTP status.
    pub status: u16,
    /// Header names in lower case.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON when the response was JSON, otherwise the text as a string.
    pub body: Value,
}

/// A recorded body's bytes: a string as its text, JSON re-encoded compactly.
pub fn body_bytes(body: &Value) -> Vec<u8> {
    match body {
        Value::String(text) => text.as_bytes().to_vec(),
        json => serde_json::to_vec(json).unwrap_or_default(),
    }
}

impl RecordedResponse {
    /// The body bytes as the provider sent them (JSON re-encoded compactly).
    pub fn body_bytes(&self) -> Vec<u8> {
        body_bytes(&self.body)
    }

    /// The headers as name/value pairs.
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        self.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Hands the response to `read` as a parser takes it.
    pub fn read<T>(&self, read: impl FnOnce(&Response) -> T) -> T {
        self.read_with_body(&self.body_bytes(), read)
    }

    /// What `provider` reads in this response at `now`. A body recorded as
    /// JSON is handed over as it is, not encoded and decoded again (the
    /// same value: a body is recorded as the JSON its bytes decode to);
    /// a body recorded as text goes through [`Provider::parse`].
    pub fn parse(&self, provider: &Provider, now: Timestamp) -> Result<ParsedUsage, FetchError> {
        if matches!(self.body, Value::String(_)) {
            return self.read(|response| provider.parse(response, now));
        }
        let headers = self.header_pairs();
        let response = Response {
            status: self.status,
            headers: &headers,
            body: &[],
        };
        provider.parse_decoded(&response, Ok(&self.body), now)
    }

    /// The same with `body` in place of the recorded one (a body the log
    /// stored once, for a later response that repeated it).
    pub fn read_with_body<T>(&self, body: &[u8], read: impl FnOnce(&Response) -> T) -> T {
        let headers = self.header_pairs();
        read(&Response {
            status: self.status,
            headers: &headers,
            body,
        })
    }
}
