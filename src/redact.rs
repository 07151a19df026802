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
//! [`Redactor::answer`] applies all of it to what a transport returns, the
//! exchange and the error alike. Parsers read the redacted exchange, exactly
//! as replay will, so redaction can never make a live decision differ from
//! its replay, and a provider message quoted into an event or onto stderr is
//! quoted from the redacted body.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::exchange::RecordedExchange;
use crate::transport::TransportError;

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

/// Secrets shorter than this are not searched in their base64 and hex
/// forms, whose fragments would be short enough to match by chance.
const MIN_ENCODED_LEN: usize = 8;

/// Steps one match attempt may take per pattern byte (alternative
/// encodings of the same character make the search branch): enough for
/// any real text, and a bound on crafted ones.
const MATCH_STEPS_PER_BYTE: usize = 8;

/// Secrets known for one exchange, and the rules above.
#[derive(Clone, Default)]
pub struct Redactor {
    /// The secrets as given, longest first.
    secrets: Vec<String>,
    /// What is searched: each secret and its base64 and hex forms, as bytes
    /// in lower case; each matches in any of the encodings of its bytes.
    patterns: Vec<Pattern>,
    /// Whether a byte can start a match of some pattern: most positions of
    /// a body are skipped on this table alone.
    starts: Vec<bool>,
}

#[derive(Clone)]
struct Pattern {
    /// Lower-case bytes.
    bytes: Vec<u8>,
    /// Line breaks may appear between bytes (MIME base64).
    breaks: bool,
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
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        secrets.dedup();
        let mut patterns = Vec::new();
        for secret in &secrets {
            let bytes = secret.as_bytes();
            patterns.push(Pattern::new(bytes.to_vec(), false));
            if bytes.len() >= MIN_ENCODED_LEN {
                patterns.push(Pattern::new(hex(bytes), false));
                for alphabet in [BASE64_STANDARD, BASE64_URL_SAFE] {
                    for offset in 0..3 {
                        patterns.push(Pattern::new(base64_core(bytes, offset, alphabet), true));
                    }
                }
            }
        }
        patterns.sort_by_key(|pattern| std::cmp::Reverse(pattern.bytes.len()));
        patterns.dedup_by(|a, b| a.bytes == b.bytes);
        let mut starts = vec![false; 256];
        for pattern in &patterns {
            let first = pattern.bytes[0];
            for byte in [first, first.to_ascii_uppercase(), b'%', b'\\', b'&'] {
                starts[usize::from(byte)] = true;
            }
            if first == b' ' {
                starts[usize::from(b'+')] = true;
            }
        }
        Redactor {
            secrets,
            patterns,
            starts,
        }
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
        if self.patterns.is_empty() {
            return bytes.to_vec();
        }
        let mut clean = Vec::with_capacity(bytes.len());
        let mut at = 0;
        while at < bytes.len() {
            match self.match_at(bytes, at) {
                Some(end) => {
                    clean.extend_from_slice(REDACTED.as_bytes());
                    at = end;
                }
                None => {
                    clean.push(bytes[at]);
                    at += 1;
                }
            }
        }
        clean
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

    /// A transport error with every secret removed from what it says (a
    /// network error quotes the URL it failed on, which a redirect chose).
    pub fn error(&self, error: TransportError) -> TransportError {
        match error {
            TransportError::Network(message) => TransportError::Network(self.text(&message)),
            TransportError::Client(message) => TransportError::Client(self.text(&message)),
            TransportError::Expired { origin, fix } => TransportError::Expired {
                origin: self.text(&origin),
                fix,
            },
            TransportError::Timeout { millis } => TransportError::Timeout { millis },
            TransportError::TooLarge { limit } => TransportError::TooLarge { limit },
            TransportError::NothingRecorded(provider) => TransportError::NothingRecorded(provider),
        }
    }

    /// What a transport answered, redacted: the one call every live
    /// transport makes before handing an answer on.
    pub fn answer(&self, answer: Result<RecordedExchange, TransportError>) -> Result<RecordedExchange, TransportError> {
        match answer {
            Ok(mut exchange) => {
                self.exchange(&mut exchange);
                Ok(exchange)
            }
            Err(error) => Err(self.error(error)),
        }
    }

    /// Whether any known secret, in any of its forms, still appears in `text`.
    pub fn leaked(&self, text: &str) -> bool {
        let bytes = text.as_bytes();
        (0..bytes.len()).any(|at| self.match_at(bytes, at).is_some())
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

    /// The end of the longest pattern match starting at `at`, if any.
    fn match_at(&self, bytes: &[u8], at: usize) -> Option<usize> {
        if !self.starts[usize::from(bytes[at])] {
            return None;
        }
        self.patterns
            .iter()
            .filter_map(|pattern| pattern.match_at(bytes, at))
            .max()
    }
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Pattern {
    fn new(bytes: Vec<u8>, breaks: bool) -> Pattern {
        Pattern {
            bytes: bytes.to_ascii_lowercase(),
            breaks,
        }
    }

    /// Where a match of this pattern starting at `at` ends: each byte may
    /// appear as itself (any case) or encoded; alternatives are tried in
    /// turn, within a bounded number of steps.
    fn match_at(&self, text: &[u8], at: usize) -> Option<usize> {
        let mut pending = vec![(0usize, at)];
        let mut steps = 0;
        while let Some((matched, mut position)) = pending.pop() {
            if matched == self.bytes.len() {
                return Some(position);
            }
            steps += 1;
            if steps > MATCH_STEPS_PER_BYTE * self.bytes.len() + 64 {
                return None;
            }
            if self.breaks && matched > 0 {
                position = skip_line_breaks(text, position);
            }
            for end in unit_ends(text, position, self.bytes[matched]).into_iter().flatten() {
                pending.push((matched + 1, end));
            }
        }
        None
    }
}

/// Where one occurrence of `byte` (lower case) starting at `at` ends, for
/// each way it can be written: itself in either case, `+` for a space,
/// `%HH` or `%25HH`, `\uHHHH`, `\/`-style escapes, `&#NN;`, `&#xHH;` or a
/// named HTML reference.
fn unit_ends(text: &[u8], at: usize, byte: u8) -> [Option<usize>; 4] {
    let mut ends = [None; 4];
    let Some(&first) = text.get(at) else {
        return ends;
    };
    let same = |decoded: u8| decoded.to_ascii_lowercase() == byte;
    if same(first) || (byte == b' ' && first == b'+') {
        ends[0] = Some(at + 1);
    }
    let rest = &text[at..];
    match first {
        b'%' => {
            if let Some(decoded) = hex_byte(rest.get(1..3)) {
                if same(decoded) {
                    ends[1] = Some(at + 3);
                }
                if decoded == b'%' && hex_byte(rest.get(3..5)).is_some_and(same) {
                    ends[2] = Some(at + 5);
                }
            }
        }
        b'\\' => {
            if rest.get(1) == Some(&b'u') {
                let code = rest.get(2..6).and_then(|digits| {
                    let digits = std::str::from_utf8(digits).ok()?;
                    u8::try_from(u16::from_str_radix(digits, 16).ok()?).ok()
                });
                if code.is_some_and(|code| code.is_ascii() && same(code)) {
                    ends[1] = Some(at + 6);
                }
            } else if rest
                .get(1)
                .is_some_and(|escaped| *escaped == byte && b"/\\\"'".contains(&byte))
            {
                ends[1] = Some(at + 2);
            }
        }
        b'&' => {
            if let Some((decoded, len)) = html_reference(rest) {
                if same(decoded) {
                    ends[1] = Some(at + len);
                }
            }
        }
        _ => {}
    }
    ends
}

/// Two hex digits as a byte.
fn hex_byte(digits: Option<&[u8]>) -> Option<u8> {
    let digits = std::str::from_utf8(digits?).ok()?;
    if !digits.bytes().all(|digit| digit.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(digits, 16).ok()
}

/// An HTML character reference at the start of `text` naming an ASCII
/// character: the character and the reference's length.
fn html_reference(text: &[u8]) -> Option<(u8, usize)> {
    const NAMED: [(&[u8], u8); 6] = [
        (b"&amp;", b'&'),
        (b"&lt;", b'<'),
        (b"&gt;", b'>'),
        (b"&quot;", b'"'),
        (b"&apos;", b'\''),
        (b"&sol;", b'/'),
    ];
    if let Some((name, decoded)) = NAMED.iter().find(|(name, _)| text.starts_with(name)) {
        return Some((*decoded, name.len()));
    }
    let rest = text.strip_prefix(b"&#")?;
    let (radix, digits_at) = match rest.first() {
        Some(b'x' | b'X') => (16, 1),
        _ => (10, 0),
    };
    let digits: Vec<u8> = rest[digits_at..]
        .iter()
        .take(8)
        .take_while(|digit| digit.is_ascii_hexdigit())
        .copied()
        .collect();
    if rest.get(digits_at + digits.len()) != Some(&b';') || digits.is_empty() {
        return None;
    }
    let code = u32::from_str_radix(std::str::from_utf8(&digits).ok()?, radix).ok()?;
    let code = u8::try_from(code).ok().filter(u8::is_ascii)?;
    Some((code, 2 + digits_at + digits.len() + 1))
}

/// Skips `\n` and `\r\n` at `at`.
fn skip_line_breaks(text: &[u8], mut at: usize) -> usize {
    loop {
        if text.get(at) == Some(&b'\n') {
            at += 1;
        } else if text.get(at..at + 2) == Some(b"\r\n") {
            at += 2;
        } else {
            return at;
        }
    }
}

const BASE64_STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The base64 characters that depend on `secret` alone when it is encoded
/// `offset` bytes into a 3-byte group (0, 1 or 2): what appears in the
/// base64 of any text containing the secret at such an offset, padded or
/// not, whatever surrounds it.
fn base64_core(secret: &[u8], offset: usize, alphabet: &[u8; 64]) -> Vec<u8> {
    let mut bits = vec![0u8; offset];
    bits.extend_from_slice(secret);
    let start_bit = 8 * offset;
    let end_bit = 8 * (offset + secret.len());
    let mut core = Vec::new();
    for index in 0.. {
        let first_bit = 6 * index;
        if first_bit + 6 > end_bit {
            break;
        }
        if first_bit < start_bit {
            continue;
        }
        let mut sextet = 0u8;
        for bit in first_bit..first_bit + 6 {
            let set = bits[bit / 8] >> (7 - bit % 8) & 1;
            sextet = sextet << 1 | set;
        }
        core.push(alphabet[usize::from(sextet)]);
    }
    core
}

/// Lower-case hexadecimal.
fn hex(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .flat_map(|byte| format!("{byte:02x}").into_bytes())
        .collect()
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

    /// Standard base64, padded.
    fn base64(bytes: &[u8]) -> String {
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(BASE64_STANDARD[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

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
    fn every_encoding_of_a_secret_is_replaced() {
        let secret = "Sk/ant+oat 01=Canary&x";
        let redactor = Redactor::new([secret]);
        let basic = base64(format!("user:{secret}").as_bytes());
        let forms = [
            secret.to_owned(),
            secret.to_uppercase(),
            "Sk%2Fant%2Boat%2001%3DCanary%26x".to_owned(),
            "Sk%2fant%2boat+01%3dCanary%26x".to_owned(),
            "Sk%252Fant%252Boat%252001%253DCanary%2526x".to_owned(),
            "Sk\\/ant\\u002boat 01=Canary\\u0026x".to_owned(),
            "Sk&#47;ant&#x2B;oat 01=Canary&amp;x".to_owned(),
            base64(secret.as_bytes()),
            base64(secret.as_bytes())
                .trim_end_matches('=')
                .replace('+', "-")
                .replace('/', "_"),
            basic.clone(),
            basic.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D"),
            base64(format!("xx{secret}").as_bytes()),
            base64(format!("x{secret}yy").as_bytes()),
            hex(secret.as_bytes()).into_iter().map(char::from).collect(),
        ];
        for form in forms {
            let text = format!("before {form} after");
            let clean = redactor.text(&text);
            assert!(!redactor.leaked(&clean), "{form} survived as {clean}");
            assert!(clean.starts_with("before ") && clean.ends_with(" after"), "{clean}");
            assert!(redactor.leaked(&text), "{form} is not seen as a leak");
        }
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
    fn bytes_that_are_not_text_keep_everything_but_the_secret() {
        let redactor = Redactor::new(["tok-123456"]);
        let mut body = vec![0xff, 0xfe];
        body.extend_from_slice(b"tok-123456");
        body.push(0x80);
        let mut expected = vec![0xff, 0xfe];
        expected.extend_from_slice(REDACTED.as_bytes());
        expected.push(0x80);
        assert_eq!(redactor.bytes(&body), expected);
    }

    #[test]
    fn a_secret_made_of_encoding_characters_is_still_found() {
        let redactor = Redactor::new(["a%25b&amp;c"]);
        assert_eq!(redactor.text("x a%25b&amp;c y"), "x [redacted] y");
        assert_eq!(redactor.text("x a%2525b%26amp%3Bc y"), "x [redacted] y");
    }

    #[test]
    fn text_without_secrets_is_untouched() {
        let redactor = Redactor::new(["tok-123456"]);
        let text = "%zz &#; &#x110000; \\u12 100% \\ & + tok-12345";
        assert_eq!(redactor.text(text), text);
    }
}
