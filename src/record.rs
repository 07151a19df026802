//! `quotatrack record PROVIDER` (and `tools/record`): one real usage
//! request with the user's own credentials, written as a recorded-exchange
//! fixture that can be attached to a bug report.
//!
//! The exchange is redacted (tokens, account ids, cookies, emails,
//! identifying fields, in every encoding `redact.rs` knows) by the
//! transport and once more here, whatever transport was given. Before
//! anything is written, the serialized fixture is checked again for every
//! form of every secret the credential holds; if one still appears,
//! nothing is written.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::credentials::{Discovery, Lookup, with_fix};
use crate::events::Outcome;
use crate::exchange::RecordedExchange;
use crate::providers::ProviderId;
use crate::redact::Redactor;
use crate::transport::{Request, Transport, TransportError};

/// A recorded exchange, ready to write.
#[derive(Debug)]
pub struct Recorded {
    /// The exchange.
    pub exchange: RecordedExchange,
    /// Its pretty JSON, checked free of the credential's secrets.
    pub text: String,
    /// One line on what the response said (`anthropic: 2 windows, plan max`).
    pub summary: String,
}

/// Why nothing was recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// No usable credential.
    #[error("{0}")]
    NoCredential(String),
    /// The request got no answer.
    #[error("{provider}: {error}")]
    Transport {
        /// The provider asked.
        provider: ProviderId,
        /// What went wrong.
        error: TransportError,
    },
    /// A secret survived redaction: refusing to write it.
    #[error("{0}: a credential still appears in the recorded exchange; nothing was written")]
    Leak(ProviderId),
}

/// Performs `provider`'s usage request with the credential discovery finds
/// (an expired one, by the clock reading `now`, is not sent).
pub async fn record(
    provider: ProviderId,
    discovery: &Discovery,
    transport: &dyn Transport,
    now: Timestamp,
) -> Result<Recorded, RecordError> {
    let lookup = discovery.lookup(provider);
    let credential = match lookup {
        Lookup::Found(credential) if !credential.expired(now) => credential,
        other => return Err(RecordError::NoCredential(other.describe(provider, now))),
    };
    let request = Request::usage(provider, credential);
    // Redacted again here, whatever the transport did: this is the last
    // step before a file that is meant to be shared.
    let redactor = Redactor::new(request.secrets());
    let exchange = crate::transport::redacted(&redactor, transport.send(&request).await)
        .map_err(|error| RecordError::Transport { provider, error })?;
    let text = serde_json::to_string_pretty(&exchange).expect("an exchange always serializes");
    if redactor.leaked(&text) {
        return Err(RecordError::Leak(provider));
    }
    let summary = match Outcome::read(&exchange, exchange.recorded_at) {
        Outcome::Usage { plan, windows } => format!(
            "{provider}: HTTP {}, {} windows{}",
            exchange.response.status,
            windows.len(),
            plan.map(|plan| format!(", plan {plan}")).unwrap_or_default()
        ),
        Outcome::Failed { error } => format!(
            "{provider}: HTTP {}, {} ({})",
            exchange.response.status,
            error.kind.as_str(),
            with_fix(provider, error.kind, &error.message)
        ),
    };
    Ok(Recorded {
        exchange,
        text,
        summary,
    })
}

impl Recorded {
    /// Writes the fixture to `output`, or to `PROVIDER-<time>.json` in the
    /// current directory; returns the path written.
    pub fn save(&self, output: Option<&Path>) -> std::io::Result<PathBuf> {
        let path = output.map_or_else(
            || {
                let stamp = self.exchange.recorded_at.strftime("%Y%m%dT%H%M%SZ");
                PathBuf::from(format!("{}-{stamp}.json", self.exchange.provider))
            },
            Path::to_owned,
        );
        write_fixture(&path, &self.text)?;
        Ok(path)
    }
}

/// Writes a fixture readable by its owner only, never over an existing file.
pub fn write_fixture(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")
}
