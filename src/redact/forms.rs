//! The forms a secret can take in text, and the search for them: each
//! secret is looked for as itself and as its hex and base64 encodings (any
//! offset, standard or URL-safe alphabet), and each byte of those may be
//! written in any letter case, percent-encoded (`%HH`, `%25HH`, `+` for a
//! space), JSON-escaped (`\uHHHH`, `\/`) or as an HTML character reference.
//! The search works on bytes, so it needs neither valid UTF-8 nor valid
//! JSON, and every match is bounded in steps.

/// Secrets shorter than this are not searched in their base64 and hex
/// forms, whose fragments would be short enough to match by chance.
const MIN_ENCODED_LEN: usize = 8;

/// Steps one match attempt may take per pattern byte (alternative
/// readings of the same bytes make the search branch): enough for any real
/// text, and a bound on crafted ones.
const STEPS_PER_BYTE: usize = 8;

const BASE64_STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// What is searched for a set of secrets.
#[derive(Clone, Default)]
pub(super) struct Forms {
    /// Each secret and its encodings, as lower-case bytes.
    patterns: Vec<Pattern>,
    /// For each byte, the patterns that start with it: most positions of a
    /// text start none and are skipped on this table alone.
    by_first: Vec<Vec<usize>>,
}

#[derive(Clone)]
struct Pattern {
    /// Lower-case bytes.
    bytes: Vec<u8>,
    /// Line breaks may appear between bytes (MIME base64).
    breaks: bool,
}

/// Where a match attempt is: bytes of the pattern matched, position in the
/// text. Kept in one buffer for a whole search.
type Pending = Vec<(usize, usize)>;

impl Forms {
    /// The forms of `secrets` (each at least 1 byte long).
    pub(super) fn of(secrets: &[String]) -> Forms {
        let mut patterns = Vec::new();
        for secret in secrets.iter().map(String::as_bytes).filter(|secret| !secret.is_empty()) {
            patterns.push(Pattern::new(secret.to_vec(), false));
            if secret.len() >= MIN_ENCODED_LEN {
                patterns.push(Pattern::new(hex(secret), false));
                for alphabet in [BASE64_STANDARD, BASE64_URL_SAFE] {
                    for offset in 0..3 {
                        patterns.push(Pattern::new(base64_core(secret, offset, alphabet), true));
                    }
                }
            }
        }
        patterns.sort_by(|a, b| b.bytes.len().cmp(&a.bytes.len()).then_with(|| a.bytes.cmp(&b.bytes)));
        patterns.dedup_by(|a, b| a.bytes == b.bytes);
        let mut by_first = vec![Vec::new(); 256];
        for (index, pattern) in patterns.iter().enumerate() {
            by_first[usize::from(pattern.bytes[0])].push(index);
        }
        Forms { patterns, by_first }
    }

    /// `text` with every match replaced by `with`; the rest kept byte for byte.
    pub(super) fn replace(&self, text: &[u8], with: &[u8]) -> Vec<u8> {
        if self.patterns.is_empty() {
            return text.to_vec();
        }
        let mut pending = Pending::new();
        let mut clean = Vec::with_capacity(text.len());
        let mut at = 0;
        while at < text.len() {
            match self.match_at(text, at, &mut pending) {
                Some(end) => {
                    clean.extend_from_slice(with);
                    at = end;
                }
                None => {
                    clean.push(text[at]);
                    at += 1;
                }
            }
        }
        clean
    }

    /// Whether any form appears in `text`.
    pub(super) fn found_in(&self, text: &[u8]) -> bool {
        let mut pending = Pending::new();
        !self.patterns.is_empty() && (0..text.len()).any(|at| self.match_at(text, at, &mut pending).is_some())
    }

    /// The end of the longest match starting at `at`, if any.
    fn match_at(&self, text: &[u8], at: usize, pending: &mut Pending) -> Option<usize> {
        let byte = text[at];
        if !b"+%\\&".contains(&byte) && self.by_first[usize::from(byte.to_ascii_lowercase())].is_empty() {
            return None;
        }
        let (readings, n_readings) = readings(text, at);
        let mut longest = None;
        for &(byte, end) in &readings[..n_readings] {
            for &index in &self.by_first[usize::from(byte)] {
                let matched = self.patterns[index].rest_at(text, end, pending);
                longest = longest.max(matched);
            }
        }
        longest
    }
}

impl Pattern {
    fn new(bytes: Vec<u8>, breaks: bool) -> Pattern {
        Pattern {
            bytes: bytes.to_ascii_lowercase(),
            breaks,
        }
    }

    /// Where this pattern's bytes after the first, read from `at`, end;
    /// alternative readings are tried in turn, within a bounded number of
    /// steps.
    fn rest_at(&self, text: &[u8], at: usize, pending: &mut Pending) -> Option<usize> {
        pending.clear();
        pending.push((1, at));
        let budget = STEPS_PER_BYTE * self.bytes.len() + 64;
        let mut steps = 0;
        while let Some((matched, mut position)) = pending.pop() {
            if matched == self.bytes.len() {
                return Some(position);
            }
            steps += 1;
            if steps > budget {
                return None;
            }
            if self.breaks {
                position = skip_line_breaks(text, position);
            }
            let (readings, n_readings) = readings(text, position);
            for &(byte, end) in &readings[..n_readings] {
                if byte == self.bytes[matched] {
                    pending.push((matched + 1, end));
                }
            }
        }
        None
    }
}

/// The ways the text at `at` reads as one byte (in lower case), each with
/// where it ends: the byte itself, a space for `+`, `%HH` and `%25HH`,
/// `\uHHHH` and `\/`-style escapes, an HTML character reference.
fn readings(text: &[u8], at: usize) -> ([(u8, usize); 3], usize) {
    let mut readings = [(0, 0); 3];
    let mut n_readings = 0;
    let mut read = |byte: u8, end: usize| {
        readings[n_readings] = (byte.to_ascii_lowercase(), end);
        n_readings += 1;
    };
    let Some(&first) = text.get(at) else {
        return (readings, 0);
    };
    read(first, at + 1);
    let rest = &text[at..];
    match first {
        b'+' => read(b' ', at + 1),
        b'%' => {
            if let Some(decoded) = hex_byte(rest.get(1..3)) {
                read(decoded, at + 3);
                if let Some(twice) = hex_byte(rest.get(3..5)).filter(|_| decoded == b'%') {
                    read(twice, at + 5);
                }
            }
        }
        b'\\' => match rest.get(1) {
            Some(b'u') => {
                let code = rest.get(2..6).and_then(|digits| {
                    let digits = std::str::from_utf8(digits).ok()?;
                    u8::try_from(u16::from_str_radix(digits, 16).ok()?).ok()
                });
                if let Some(code) = code.filter(u8::is_ascii) {
                    read(code, at + 6);
                }
            }
            Some(escaped) if b"/\\\"'".contains(escaped) => read(*escaped, at + 2),
            _ => {}
        },
        b'&' => {
            if let Some((decoded, len)) = html_reference(rest) {
                read(decoded, at + len);
            }
        }
        _ => {}
    }
    (readings, n_readings)
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
    let n_digits = rest[digits_at..]
        .iter()
        .take(8)
        .take_while(|digit| {
            if radix == 16 {
                digit.is_ascii_hexdigit()
            } else {
                digit.is_ascii_digit()
            }
        })
        .count();
    if n_digits == 0 || rest.get(digits_at + n_digits) != Some(&b';') {
        return None;
    }
    let digits = std::str::from_utf8(&rest[digits_at..digits_at + n_digits]).ok()?;
    let code = u8::try_from(u32::from_str_radix(digits, radix).ok()?)
        .ok()
        .filter(u8::is_ascii)?;
    Some((code, 2 + digits_at + n_digits + 1))
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

/// The base64 characters that depend on `secret` alone when it is encoded
/// `offset` bytes into a 3-byte group (0, 1 or 2): what appears in the
/// base64 of any text containing the secret at such an offset, padded or
/// not, whatever surrounds it.
fn base64_core(secret: &[u8], offset: usize, alphabet: &[u8; 64]) -> Vec<u8> {
    let mut bytes = vec![0u8; offset];
    bytes.extend_from_slice(secret);
    let first_bit = 8 * offset;
    let end_bit = 8 * bytes.len();
    (first_bit.div_ceil(6)..end_bit / 6)
        .map(|index| {
            let sextet =
                (6 * index..6 * index + 6).fold(0u8, |sextet, bit| sextet << 1 | (bytes[bit / 8] >> (7 - bit % 8) & 1));
            alphabet[usize::from(sextet)]
        })
        .collect()
}

/// Lower-case hexadecimal.
fn hex(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .flat_map(|byte| format!("{byte:02x}").into_bytes())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Standard base64, padded.
    pub(crate) fn base64(bytes: &[u8]) -> String {
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

    fn replaced(secret: &str, text: &str) -> String {
        let forms = Forms::of(&[secret.to_owned()]);
        String::from_utf8(forms.replace(text.as_bytes(), b"[x]")).unwrap()
    }

    #[test]
    fn every_form_of_a_secret_is_found() {
        let secret = "Sk/ant+oat 01=Canary&x";
        let forms = Forms::of(&[secret.to_owned()]);
        let basic = base64(format!("user:{secret}").as_bytes());
        let mime: String = basic
            .chars()
            .enumerate()
            .flat_map(|(i, c)| (i == 10).then_some('\n').into_iter().chain([c]))
            .collect();
        let found = [
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
            mime,
            basic.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D"),
            base64(format!("xx{secret}").as_bytes()),
            base64(format!("x{secret}yy").as_bytes()),
            String::from_utf8(hex(secret.as_bytes())).unwrap().to_uppercase(),
        ];
        for form in found {
            let text = format!("before {form} after");
            let clean = String::from_utf8(forms.replace(text.as_bytes(), b"[x]")).unwrap();
            assert!(!forms.found_in(clean.as_bytes()), "{form} survived as {clean}");
            assert!(clean.starts_with("before ") && clean.ends_with(" after"), "{clean}");
            assert!(forms.found_in(text.as_bytes()), "{form} is not found");
        }
    }

    #[test]
    fn a_secret_made_of_encoding_characters_is_still_found() {
        assert_eq!(replaced("a%25b&amp;c", "x a%25b&amp;c y"), "x [x] y");
        assert_eq!(replaced("a%25b&amp;c", "x a%2525b%26amp%3Bc y"), "x [x] y");
    }

    #[test]
    fn text_without_the_secret_is_untouched() {
        let text = "%zz %2 &#; &#x110000; &#12a; \\u12 \\ 100% & + tok-12345 \u{e9}";
        assert_eq!(replaced("tok-123456", text), text);
    }

    #[test]
    fn bytes_that_are_not_text_keep_everything_but_the_secret() {
        let forms = Forms::of(&["tok-123456".to_owned()]);
        let text = [&[0xff, 0xfe][..], b"TOK-123456", &[0x80]].concat();
        assert_eq!(
            forms.replace(&text, b"[x]"),
            [&[0xff, 0xfe][..], b"[x]", &[0x80]].concat()
        );
    }

    #[test]
    fn a_crafted_megabyte_is_searched_in_bounded_time() {
        let forms = Forms::of(&["%%%%%%%%%%%%%%%%".to_owned(), "aaaaaaaaaaaaaaab".to_owned()]);
        let text = "%25".repeat(1 << 18) + &"a".repeat(1 << 18);
        // Each position costs a bounded number of steps; no match exists.
        let clean = forms.replace(text.as_bytes(), b"[x]");
        assert!(clean.len() < text.len(), "the %25 runs decode to the first secret");
        assert!(!forms.found_in(&clean[clean.len() - 1000..]));
    }

    proptest::proptest! {
        /// Any bytes, any secrets: no panic, and what is left holds no form
        /// of a secret (one of letters and digits longer than the
        /// replacement, which then cannot create or hide one).
        #[test]
        fn replacing_never_panics_and_leaves_no_form(
            text in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            secret in "[A-Za-z0-9]{9,24}",
            noise in ".{0,12}",
            at in 0usize..400,
        ) {
            let forms = Forms::of(&[secret.clone(), noise]);
            let mut text = text;
            let at = at.min(text.len());
            text.splice(at..at, base64(secret.as_bytes()).into_bytes());
            let only_secret = Forms::of(&[secret]);
            let clean = forms.replace(&text, b"[redacted]");
            proptest::prop_assert!(!only_secret.found_in(&clean));
        }
    }
}
