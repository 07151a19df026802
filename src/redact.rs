//! Redaction at record time: what a provider sent back is cleaned of
//! secrets before it becomes a recorded exchange, so nothing downstream
//! (the log, exports, fixtures written by `record`, events, error messages,
//! stdout and stderr) can leak one.
//!
//! Three rules, applied together:
//! - every known secret (the token sent, an account id, a project, a
//!   profile ARN) is replaced wherever it appears: header names and values,
//!   the URL, JSON object keys and values at any depth (numbers included),
//!   inside longer strings, and in bodies that are not JSON at all. It is
//!   found in its encoded forms too: percent-encoded (either hex case, `+`
//!   for a space, encoded twice), JSON `\u` escapes, HTML character
//!   references, hexadecimal, and base64 (standard or URL-safe, padded or
//!   not, at any offset, so the base64 of `user:token` is caught as well);
//!   letters are compared without case, since header names arrive in lower
//!   case;
//! - JSON fields that name a person or an account (`email`, `login`,
//!   `user_id`, `account_id`, `organization`, …) have their string values
//!   replaced, whatever they hold;
//! - anything shaped like an email address is replaced.
//!
//! A JSON key or header name that redaction turns into one already present
//! gets a `#2`, `#3`, … suffix, so no field is dropped silently and the body
//! stays valid JSON.
//!
//! `transport::redacted` applies all of it to what a transport returns, the
//! exchange and the error alike. Parsers read the redacted exchange, exactly
//! as replay will, so redaction can never make a live decision differ from
//! its replay, and a provider message quoted into an event or onto stderr is
//! quoted from the redacted body.

mod forms;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::exchange::RecordedExchange;
use forms::Forms;

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Response headers never recorded: they carry session state, not facts.
const DROPPED_HEADERS: [&str; 3] = ["set-cookie", "cookie", "authorization"];

/// JSON keys whose string values identify a person, an account or an
/// organisation, compared without case, `_` or `-`.
const IDENTIFYING_KEYS: [&str; 15] = [
    "email",
    "login",
    "user",
    "username",
    "userid",
    "accountid",
    "chatgptaccountid",
    "chatgptuserid",
    "orgid",
    "organization",
    "organizationid",
    "organizationname",
    "orgname",
    "profilearn",
    "project",
];

/// Secrets shorter than this are ignored: too short to replace blindly.
const MIN_SECRET_LEN: usize = 4;

/// Secrets known for one exchange, and the rules above.
#[derive(Clone, Default)]
pub struct Redactor {
    /// The secrets as given, longest first.
    secrets: Vec<String>,
    /// What is searched for them.
    forms: Forms,
}

impl Redactor {
    /// A redactor for `secrets` (empty strings are ignored; secrets shorter
    /// than 4 characters are too short to replace blindly and are ignored).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Redactor {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|secret| secret.len() >= MIN_SECRET_LEN)
            .map(str::to_owned)
            .collect();
        // Longest first (the search also prefers the longest match, so a
        // secret containing another is replaced whole), each once.
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        let forms = Forms::of(&secrets);
        Redactor { secrets, forms }
    }

    /// Whether a response header may be recorded.
    pub fn keeps_header(name: &str) -> bool {
        !DROPPED_HEADERS.iter().any(|dropped| name.eq_ignore_ascii_case(dropped))
    }

    /// `text` with every known secret (in any of its forms) and email
    /// address replaced.
    pub fn text(&self, text: &str) -> String {
        let clean = self.bytes(text.as_bytes());
        let clean = match String::from_utf8(clean) {
            Ok(clean) => clean,
            Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
        };
        redact_emails(&clean)
    }

    /// `bytes` with every known secret, in any of its forms, replaced; the
    /// rest is kept byte for byte, whatever it holds.
    pub fn bytes(&self, bytes: &[u8]) -> Vec<u8> {
        self.forms.replace(bytes, REDACTED.as_bytes())
    }

    /// Redacts a JSON value in place: keys and values at every depth.
    pub fn json(&self, value: &mut Value) {
        match value {
            Value::String(text) => *text = self.text(text),
            Value::Number(number) => {
                let text = number.to_string();
                let clean = self.text(&text);
                if clean != text {
                    *value = Value::String(clean);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.json(item)),
            Value::Object(fields) => {
                let entries = std::mem::take(fields).into_iter().map(|(key, mut field)| {
                    if identifying(&key) && field.is_string() {
                        field = Value::String(REDACTED.to_owned());
                    } else {
                        self.json(&mut field);
                    }
                    (key, field)
                });
                fields.extend(self.renamed(entries));
            }
            Value::Null | Value::Bool(_) => {}
        }
    }

    /// Redacts a whole exchange in place: the URL, every header name and
    /// value on both sides, and the body.
    pub fn exchange(&self, exchange: &mut RecordedExchange) {
        exchange.request.method = self.text(&exchange.request.method);
        exchange.request.url = self.text(&exchange.request.url);
        exchange.request.headers = self.headers(std::mem::take(&mut exchange.request.headers));
        let response = std::mem::take(&mut exchange.response.headers)
            .into_iter()
            .filter(|(name, _)| Redactor::keeps_header(name))
            .collect();
        exchange.response.headers = self.headers(response);
        self.json(&mut exchange.response.body);
    }

    /// Whether any known secret, in any of its forms, still appears in `text`.
    pub fn leaked(&self, text: &str) -> bool {
        self.forms.found_in(text.as_bytes())
    }

    /// Headers with names and values redacted, names kept distinct.
    fn headers(&self, headers: BTreeMap<String, String>) -> BTreeMap<String, String> {
        let entries = headers.into_iter().map(|(name, value)| (name, self.text(&value)));
        self.renamed(entries).collect()
    }

    /// `entries` with their keys redacted; a key that redaction makes equal
    /// to another gets the first free `#N` suffix, so nothing is dropped.
    fn renamed<V>(&self, entries: impl Iterator<Item = (String, V)>) -> impl Iterator<Item = (String, V)> {
        let entries: Vec<(String, String, V)> = entries
            .map(|(key, value)| {
                let clean = self.text(&key);
                (key, clean, value)
            })
            .collect();
        let mut taken: BTreeSet<String> = entries
            .iter()
            .filter(|(key, clean, _)| key == clean)
            .map(|(key, _, _)| key.clone())
            .collect();
        entries.into_iter().map(move |(key, clean, value)| {
            if key == clean {
                return (key, value);
            }
            let mut name = clean.clone();
            let mut n = 2;
            while taken.contains(&name) {
                name = format!("{clean}#{n}");
                n += 1;
            }
            taken.insert(name.clone());
            (name, value)
        })
    }
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

fn identifying(key: &str) -> bool {
    let folded: String = key
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    IDENTIFYING_KEYS.contains(&folded.as_str())
}

/// Replaces every `local@domain.tld` in `text`.
fn redact_emails(text: &str) -> String {
    if !text.contains('@') {
        return text.to_owned();
    }
    let is_local = |c: char| c.is_ascii_alphanumeric() || "._%+-".contains(c);
    let is_domain = |c: char| c.is_ascii_alphanumeric() || ".-".contains(c);
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '@' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let local_len = out.chars().rev().take_while(|c| is_local(*c)).count();
        let domain_len = chars[i + 1..].iter().take_while(|c| is_domain(**c)).count();
        let domain: String = chars[i + 1..i + 1 + domain_len].iter().collect();
        let domain = domain.trim_end_matches('.');
        let looks_like_email = local_len > 0 && domain.contains('.') && !domain.starts_with('.');
        if looks_like_email {
            for _ in 0..local_len {
                out.pop();
            }
            out.push_str(REDACTED);
            i += 1 + domain.chars().count();
        } else {
            out.push('@');
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_identities_and_emails_are_replaced() {
        let redactor = Redactor::new(["tok-123456", "acct-42"]);
        let mut body = serde_json::json!({
            "email": "x",
            "note": "mail ada@example.com or bob.smith+q@mail.example.org.",
            "echo": "Bearer tok-123456 for acct-42",
            "nested": [{"user_id": "u1", "used_percent": 40, "type": "@type"}],
        });
        redactor.json(&mut body);
        assert_eq!(
            body,
            serde_json::json!({
                "email": "[redacted]",
                "note": "mail [redacted] or [redacted].",
                "echo": "Bearer [redacted] for [redacted]",
                "nested": [{"user_id": "[redacted]", "used_percent": 40, "type": "@type"}],
            })
        );
        assert!(!redactor.leaked(&body.to_string()));
        assert!(redactor.leaked("x tok-123456 y"));
    }

    #[test]
    fn at_signs_that_are_not_emails_survive() {
        let redactor = Redactor::new([]);
        assert_eq!(redactor.text("@type a@b x@y.z"), "@type a@b [redacted]");
    }

    #[test]
    fn json_keys_are_redacted_without_losing_a_field() {
        let redactor = Redactor::new(["tok-123456", "1234567890"]);
        let mut body: Value = serde_json::from_str(
            r#"{"tok-123456": 1, "[redacted]": 2, "x-tok-123456": {"TOK-123456": [3]}, "n": 1234567890}"#,
        )
        .unwrap();
        redactor.json(&mut body);
        assert_eq!(
            body,
            serde_json::json!({
                "[redacted]": 2,
                "[redacted]#2": 1,
                "x-[redacted]": {"[redacted]": [3]},
                "n": "[redacted]",
            })
        );
    }

    #[test]
    fn a_whole_answer_is_redacted_header_names_url_and_errors_included() {
        let redactor = Redactor::new(["tok-123456"]);
        let mut exchange: RecordedExchange = serde_json::from_value(serde_json::json!({
            "provider": "anthropic",
            "recorded_at": "2026-08-22T12:00:00Z",
            "request": {"method": "GET", "url": "https://h.test/u?t=tok%2D123456", "headers": {}},
            "response": {
                "status": 401,
                "headers": {"tok-123456": "1", "[redacted]": "2", "x-echo": "dG9rLTEyMzQ1Ng==", "set-cookie": "s"},
                "body": "<html><title>tok-123456</title></html>",
            },
        }))
        .unwrap();
        redactor.exchange(&mut exchange);
        assert_eq!(exchange.request.url, "https://h.test/u?t=[redacted]");
        let headers: Vec<(&str, &str)> = exchange
            .response
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        assert_eq!(
            headers,
            // Base64 characters that mix the secret's last bits with the
            // padding are all that is left of it.
            [("[redacted]", "2"), ("[redacted]#2", "1"), ("x-echo", "[redacted]g==")]
        );
        assert_eq!(exchange.response.body, "<html><title>[redacted]</title></html>");
        assert_eq!(
            redactor.text("error following redirect for url (https://h.test/?k=TOK-123456)"),
            "error following redirect for url (https://h.test/?k=[redacted])"
        );
    }
}
