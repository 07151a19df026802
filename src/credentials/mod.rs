//! Credentials as an input: per provider, a secret to send, a fingerprint
//! to log and the place it came from. The secret never leaves memory: it
//! has no `Display`, its `Debug` prints `[redacted]`, and only the
//! fingerprint (a short hash that tells one credential from another)
//! reaches an event.
//!
//! The engine asks again on every cycle, so a token rotated by its owning
//! CLI is picked up at the next cycle. [`Discovery`] is the live
//! implementation: it reads the files each vendor's own CLI keeps.

mod discovery;

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;

use crate::providers::ProviderId;

pub use discovery::{Discovery, Lookup, fix_command, with_fix};

/// A secret: a token or API key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A short, stable hash of the secret (FNV-1a, 48 bits, hex): enough to
    /// tell a change, useless for recovering the secret.
    pub fn fingerprint(&self) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.0.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{:012x}", hash >> 16)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A credential found for a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// What to send.
    pub secret: Secret,
    /// Where it came from: an environment variable, a file path, `fixtures`.
    pub source: String,
    /// When the token stops working, when its store says so. An expired
    /// token is never sent: the provider is reported as needing a login.
    pub expires_at: Option<Timestamp>,
    /// Values the request needs besides the token, each as secret as the
    /// token: `account_id` (Codex's account header), `project` (Google's
    /// Cloud Code project), `profile_arn` (Kiro's profile).
    pub extras: BTreeMap<&'static str, Secret>,
    /// The fingerprint of the credential this one stands in for, when
    /// replay stands in for a recorded one (whose secret it never had).
    stands_for: Option<String>,
}

impl Credential {
    /// A credential with no expiry and no extras.
    pub fn new(secret: impl Into<String>, source: impl Into<String>) -> Credential {
        Credential {
            secret: Secret::new(secret),
            source: source.into(),
            expires_at: None,
            extras: BTreeMap::new(),
            stands_for: None,
        }
    }

    /// A stand-in for a recorded credential: its fingerprint and source,
    /// and no secret (replay sends nothing).
    pub fn recorded(fingerprint: String, source: String) -> Credential {
        Credential {
            stands_for: Some(fingerprint),
            ..Credential::new(String::new(), source)
        }
    }

    /// Whether the token's store says it has expired at `now`.
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|expiry| expiry <= now)
    }

    /// Every secret this credential holds, for redaction.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.secret.expose()).chain(self.extras.values().map(Secret::expose))
    }

    /// The fingerprint that events carry instead of the secret.
    pub fn fingerprint(&self) -> String {
        match &self.stands_for {
            Some(fingerprint) => fingerprint.clone(),
            None => self.secret.fingerprint(),
        }
    }
}

/// Where the engine finds credentials.
pub trait Credentials: Send + Sync {
    /// The credential for `provider`, or `None` when there is none.
    fn find(&self, provider: ProviderId) -> Option<Credential>;
}

/// A fixed set of credentials: what `--fixtures` mode, tests and replay use.
#[derive(Debug, Clone, Default)]
pub struct FixedCredentials {
    credentials: BTreeMap<ProviderId, Credential>,
}

impl FixedCredentials {
    /// Stand-in credentials for `providers`, from `source`. The secret is a
    /// placeholder: offline transports never send it anywhere.
    pub fn present(providers: impl IntoIterator<Item = ProviderId>, source: &str) -> FixedCredentials {
        let credentials = providers
            .into_iter()
            .map(|id| (id, Credential::new(format!("{source}-{id}"), source)))
            .collect();
        FixedCredentials { credentials }
    }

    /// Sets or removes the credential of `provider`.
    pub fn set(&mut self, provider: ProviderId, credential: Option<Credential>) {
        match credential {
            Some(credential) => self.credentials.insert(provider, credential),
            None => self.credentials.remove(&provider),
        };
    }
}

impl Credentials for FixedCredentials {
    fn find(&self, provider: ProviderId) -> Option<Credential> {
        self.credentials.get(&provider).cloned()
    }
}

impl<T: Credentials + ?Sized> Credentials for std::sync::Mutex<T> {
    fn find(&self, provider: ProviderId) -> Option<Credential> {
        self.lock().unwrap_or_else(|poison| poison.into_inner()).find(provider)
    }
}
