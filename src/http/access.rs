//! Who may ask: the address served on (loopback unless given, see
//! [`crate::cli::parse_address`]), the rule that any other address needs a bearer
//! [`Token`] ([`check_address`]), and the token itself: read once from a
//! file, never shown (its `Debug` is redacted, it has no `Display`, no
//! error quotes it), compared in constant time.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::http::{HeaderMap, header};
use tokio::net::TcpListener;

/// A bearer token, read once from a file. Its `Debug` is redacted; it has
/// no `Display`.
#[derive(Clone)]
pub struct Token(Arc<[u8]>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token([redacted])")
    }
}

impl Token {
    /// The token in `path`, whitespace around it trimmed.
    pub fn read(path: &Path) -> Result<Token, HttpError> {
        use std::io::Read;
        let unreadable = |error: io::Error| HttpError::TokenFile {
            path: path.display().to_string(),
            reason: error.to_string(),
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .map_err(unreadable)?
            .take(MAX_TOKEN_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(unreadable)?;
        let refuse = |reason: &str| HttpError::TokenFile {
            path: path.display().to_string(),
            reason: reason.to_owned(),
        };
        if bytes.len() as u64 > MAX_TOKEN_BYTES {
            return Err(refuse("it is longer than 4 KiB"));
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| refuse("it is not UTF-8"))?;
        let text = text.trim();
        if text.is_empty() {
            return Err(refuse("it is empty"));
        }
        Token::new(text).ok_or_else(|| refuse("a token is one word of printable ASCII"))
    }

    /// A token from its text; `None` when empty or not a header value.
    pub fn new(text: &str) -> Option<Token> {
        let valid = !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_graphic());
        valid.then(|| Token(text.as_bytes().into()))
    }

    /// Whether `given` is this token, in time that depends on this
    /// token's length only.
    pub(super) fn matches(&self, given: &[u8]) -> bool {
        let expected = &self.0;
        let mut difference = u8::from(given.len() != expected.len());
        for (index, byte) in expected.iter().enumerate() {
            difference |= byte ^ given.get(index).copied().unwrap_or(0);
        }
        std::hint::black_box(difference) == 0
    }
}

/// The longest token file read.
const MAX_TOKEN_BYTES: u64 = 4096;

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A non-loopback address without a token.
    #[error(
        "serving http on {address} (not a loopback address) needs a bearer token: pass --http-token-file FILE, or bind 127.0.0.1"
    )]
    TokenRequired {
        /// The address asked for.
        address: SocketAddr,
    },
    /// The token file cannot be used.
    #[error("cannot use the token file {path}: {reason}")]
    TokenFile {
        /// The file.
        path: String,
        /// Why (never its content).
        reason: String,
    },
    /// The address cannot be bound.
    #[error("cannot serve http on {address}: {source}; choose another port with --http")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// Why.
        source: io::Error,
    },
}

/// Refuses a non-loopback `address` without a token.
pub fn check_address(address: SocketAddr, token: Option<&Token>) -> Result<(), HttpError> {
    if address.ip().is_loopback() || token.is_some() {
        Ok(())
    } else {
        Err(HttpError::TokenRequired { address })
    }
}

/// Binds `address` (after [`check_address`]).
pub async fn bind(address: SocketAddr, token: Option<&Token>) -> Result<TcpListener, HttpError> {
    check_address(address, token)?;
    TcpListener::bind(address)
        .await
        .map_err(|source| HttpError::Bind { address, source })
}

/// The token of an `Authorization: Bearer …` header.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at(value.iter().position(|byte| *byte == b' ')?);
    scheme.eq_ignore_ascii_case(b"bearer").then(|| token.trim_ascii())
}
