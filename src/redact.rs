//! Redaction at record time: what a provider sent back is cleaned of
//! secrets before it becomes a recorded exchange, so nothing downstream
//! (the log, exports, fixtures written by `record`, error messages) can
//! leak one.
//!
//! Three rules, applied together:
//! - every known secret (the token sent, an account id, a project) is
//!   replaced wherever it appears, in header values, in JSON strings and in
//!   text bodies;
//! - JSON fields that name a person or an account (`email`, `login`,
//!   `user_id`, `account_id`, `organization`, …) have their string values
//!   replaced, whatever they hold;
//! - anything shaped like an email address is replaced.
//!
//! Parsers read the redacted exchange, exactly as replay will, so redaction
//! can never make a live decision differ from its replay.

use serde_json::Value;

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

/// Secrets known for one exchange, and the rules above.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// A redactor for `secrets` (empty strings are ignored; secrets shorter
    /// than 4 characters are too short to replace blindly and are ignored).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Redactor {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|secret| secret.len() >= 4)
            .map(str::to_owned)
            .collect();
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        Redactor { secrets }
    }

    /// Whether a response header may be recorded.
    pub fn keeps_header(name: &str) -> bool {
        !DROPPED_HEADERS.iter().any(|dropped| name.eq_ignore_ascii_case(dropped))
    }

    /// `text` with every known secret and email address replaced.
    pub fn text(&self, text: &str) -> String {
        let mut clean = text.to_owned();
        for secret in &self.secrets {
            if clean.contains(secret.as_str()) {
                clean = clean.replace(secret.as_str(), REDACTED);
            }
        }
        redact_emails(&clean)
    }

    /// Redacts a JSON value in place.
    pub fn json(&self, value: &mut Value) {
        match value {
            Value::String(text) => *text = self.text(text),
            Value::Array(items) => items.iter_mut().for_each(|item| self.json(item)),
            Value::Object(fields) => {
                for (key, field) in fields.iter_mut() {
                    if identifying(key) && field.is_string() {
                        *field = Value::String(REDACTED.to_owned());
                    } else {
                        self.json(field);
                    }
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// Whether any known secret still appears in `text`.
    pub fn leaked(&self, text: &str) -> bool {
        self.secrets.iter().any(|secret| text.contains(secret.as_str()))
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
}
