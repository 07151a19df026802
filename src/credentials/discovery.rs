//! Credential discovery: per provider, the places its own CLI keeps a
//! login, read in a fixed order, first usable one wins:
//!
//! 1. `QUOTATRACK_<ID>_TOKEN` (skips discovery);
//! 2. the vendor's own files under `HOME` / `XDG_*` (and the vendor's own
//!    environment variables where it has them);
//! 3. pi's `~/.pi/agent/auth.json`, where the reference lists a key.
//!
//! Files are only read, never written or refreshed: a token rotated by its
//! owning CLI is picked up on the next cycle, and an expired one is
//! reported with the command that renews it. A file that cannot be read or
//! understood is named in the report, and the search goes on.
//!
//! Sources are shown relative to `~` so that no user name reaches the log.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use serde_json::Value;

use super::{Credential, Credentials, Secret};
use crate::providers::{ErrorKind, ProviderId};

/// Files larger than this are not credential stores.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// The command (or step) that gives `provider` a fresh login.
pub fn fix_command(provider: ProviderId) -> &'static str {
    match provider {
        ProviderId::Anthropic => "claude /login",
        ProviderId::Codex => "codex login",
        ProviderId::Copilot => "gh auth login",
        ProviderId::Gemini => "gemini",
        ProviderId::Antigravity => "agy",
        ProviderId::Kiro => "kiro-cli login",
        ProviderId::Zai => "export ZAI_API_KEY=<key>",
    }
}

/// `message`, ending with "; run `<fix>`" when it is an auth error that
/// does not say so already. (The check is for the whole hint: a fix such as
/// `gemini` also appears in ordinary messages.)
pub fn with_fix(provider: ProviderId, kind: ErrorKind, message: &str) -> String {
    let hint = format!("run `{}`", fix_command(provider));
    if kind == ErrorKind::Auth && !message.contains(&hint) {
        format!("{message}; {hint}")
    } else {
        message.to_owned()
    }
}

/// What discovery found for one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A credential (possibly expired: see [`Credential::expired`]).
    Found(Credential),
    /// Nothing usable: every place searched, and what was wrong with the
    /// files that exist but could not be used.
    Missing {
        /// The places looked at, in order.
        searched: Vec<String>,
        /// One line per file that exists but could not be used.
        problems: Vec<String>,
    },
}

impl Lookup {
    /// One line for a person: where the credential came from, or why there
    /// is none and what to run.
    pub fn describe(&self, provider: ProviderId, now: Timestamp) -> String {
        let fix = fix_command(provider);
        match self {
            Lookup::Found(credential) if credential.expired(now) => format!(
                "{provider}: the token in {} has expired; run `{fix}`",
                credential.source
            ),
            Lookup::Found(credential) => format!("{provider}: using {}", credential.source),
            Lookup::Missing { problems, .. } if !problems.is_empty() => {
                format!("{provider}: {}; run `{fix}`", problems.join("; "))
            }
            Lookup::Missing { searched, .. } => format!(
                "no credentials found for {provider} (looked in {}); run `{fix}`",
                searched.join(", ")
            ),
        }
    }
}

/// The environment discovery reads: a variable lookup.
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Discovery over a home directory and environment.
#[derive(Clone)]
pub struct Discovery {
    env: Env,
}

impl Discovery {
    /// Discovery in this process's environment.
    pub fn from_process_env() -> Discovery {
        Discovery::with_env(Arc::new(|name: &str| std::env::var(name).ok()))
    }

    /// Discovery in the given environment (tests build fake homes).
    pub fn with_env(env: Env) -> Discovery {
        Discovery { env }
    }

    /// Searches for `provider`'s credential.
    pub fn lookup(&self, provider: ProviderId) -> Lookup {
        let mut search = Search::new(&self.env);
        let token_var = format!("QUOTATRACK_{}_TOKEN", provider.as_str().to_uppercase());
        let found = search.env_var(&token_var).or_else(|| match provider {
            ProviderId::Anthropic => anthropic(&mut search),
            ProviderId::Codex => codex(&mut search),
            ProviderId::Copilot => copilot(&mut search),
            ProviderId::Gemini => gemini(&mut search),
            ProviderId::Antigravity => antigravity(&mut search),
            ProviderId::Kiro => kiro(&mut search),
            ProviderId::Zai => zai(&mut search),
        });
        match found {
            Some(credential) => Lookup::Found(credential),
            None => Lookup::Missing {
                searched: search.searched,
                problems: search.problems,
            },
        }
    }
}

impl Credentials for Discovery {
    fn find(&self, provider: ProviderId) -> Option<Credential> {
        match self.lookup(provider) {
            Lookup::Found(credential) => Some(credential),
            Lookup::Missing { .. } => None,
        }
    }
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Discovery")
    }
}

/// A token read out of a store, before its source is attached.
#[derive(Default)]
struct Token {
    secret: String,
    expires_at: Option<Timestamp>,
    extras: Vec<(&'static str, String)>,
}

impl Token {
    fn new(secret: &str) -> Token {
        Token {
            secret: secret.to_owned(),
            ..Token::default()
        }
    }

    fn expiring(mut self, expires_at: Option<Timestamp>) -> Token {
        self.expires_at = expires_at;
        self
    }

    fn with(mut self, name: &'static str, value: Option<&str>) -> Token {
        if let Some(value) = value.filter(|value| !value.is_empty()) {
            self.extras.push((name, value.to_owned()));
        }
        self
    }
}

/// One provider's search: where it looked and what went wrong.
struct Search<'a> {
    env: &'a Env,
    home: Option<PathBuf>,
    searched: Vec<String>,
    problems: Vec<String>,
}

impl<'a> Search<'a> {
    fn new(env: &'a Env) -> Search<'a> {
        let mut search = Search {
            env,
            home: None,
            searched: Vec::new(),
            problems: Vec::new(),
        };
        search.home = search.var("HOME").map(PathBuf::from);
        search
    }

    fn var(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|value| !value.trim().is_empty())
    }

    /// A bare token in an environment variable.
    fn env_var(&mut self, name: &str) -> Option<Credential> {
        self.searched.push(format!("${name}"));
        let value = self.var(name)?;
        Some(self.credential(format!("${name}"), Token::new(value.trim())))
    }

    /// `$var` if set, else `~/default`.
    fn dir(&self, var: &str, default: &str) -> Option<PathBuf> {
        match self.var(var) {
            Some(dir) => Some(PathBuf::from(dir)),
            None => self.home.as_ref().map(|home| home.join(default)),
        }
    }

    /// `$XDG_CONFIG_HOME/<rest>`, else `~/.config/<rest>`.
    fn config(&self, rest: &str) -> Option<PathBuf> {
        self.dir("XDG_CONFIG_HOME", ".config").map(|dir| dir.join(rest))
    }

    fn home(&self, rest: &str) -> Option<PathBuf> {
        self.home.as_ref().map(|home| home.join(rest))
    }

    /// Reads `path` as JSON and hands it to `read`; a missing file is
    /// silently skipped, anything else wrong is a problem naming the file.
    fn json_file(
        &mut self,
        path: Option<PathBuf>,
        read: impl FnOnce(&Value) -> Result<Option<Token>, String>,
    ) -> Option<Credential> {
        let path = path?;
        let shown = self.show(&path);
        self.searched.push(shown.clone());
        let text = self.read(&path, &shown)?;
        let json = match serde_json::from_str::<Value>(&text) {
            Ok(json) => json,
            Err(error) => {
                self.problems.push(format!(
                    "{shown} is not JSON (line {}, column {})",
                    error.line(),
                    error.column()
                ));
                return None;
            }
        };
        match read(&json) {
            Ok(None) => None,
            Ok(Some(token)) if !token.secret.trim().is_empty() => Some(self.credential(shown, token)),
            Ok(Some(_)) => {
                self.problems.push(format!("{shown} holds an empty token"));
                None
            }
            Err(reason) => {
                self.problems.push(format!("{shown} {reason}"));
                None
            }
        }
    }

    /// Reads a text file holding a bare token.
    fn token_file(&mut self, path: Option<PathBuf>) -> Option<Credential> {
        let path = path?;
        let shown = self.show(&path);
        self.searched.push(shown.clone());
        let text = self.read(&path, &shown)?;
        let token = text.trim();
        if token.is_empty() || token.contains(char::is_whitespace) {
            self.problems.push(format!("{shown} does not hold a single token"));
            return None;
        }
        Some(self.credential(shown, Token::new(token)))
    }

    /// A key of pi's `auth.json` (`~/.pi/agent/auth.json`).
    fn pi(&mut self, keys: &[&str], extras: &[(&'static str, &str)]) -> Option<Credential> {
        let path = self.home(".pi/agent/auth.json");
        self.json_file(path, |json| {
            // A pi store without this provider is simply not a source.
            let Some(entry) = keys.iter().find_map(|key| json.get(*key)) else {
                return Ok(None);
            };
            let secret = ["access", "accessToken", "token", "key"]
                .iter()
                .find_map(|field| text(entry, &[field]))
                .ok_or("has no access token")?;
            let mut token = Token::new(secret).expiring(epoch_ms(entry.get("expires")));
            for (name, field) in extras {
                token = token.with(name, text(entry, &[field]));
            }
            Ok(Some(token))
        })
    }

    fn read(&mut self, path: &Path, shown: &str) -> Option<String> {
        let metadata = match std::fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
            Err(error) => {
                self.problems.push(format!("cannot read {shown}: {}", error.kind()));
                return None;
            }
        };
        if !metadata.is_file() || metadata.len() > MAX_FILE_BYTES {
            self.problems.push(format!("{shown} is not a credential file"));
            return None;
        }
        match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => Some(text),
                Err(_) => {
                    self.problems.push(format!("{shown} is not UTF-8 text"));
                    None
                }
            },
            Err(error) => {
                self.problems.push(format!("cannot read {shown}: {}", error.kind()));
                None
            }
        }
    }

    /// `path` with the home directory shown as `~`.
    fn show(&self, path: &Path) -> String {
        match self.home.as_ref().and_then(|home| path.strip_prefix(home).ok()) {
            Some(rest) => format!("~/{}", rest.display()),
            None => path.display().to_string(),
        }
    }

    fn credential(&self, source: String, token: Token) -> Credential {
        let mut credential = Credential::new(token.secret, source);
        credential.expires_at = token.expires_at;
        for (name, value) in token.extras {
            credential.extras.insert(name, Secret::new(value));
        }
        credential
    }
}

/// Claude Code's `.credentials.json`, then pi.
fn anthropic(search: &mut Search<'_>) -> Option<Credential> {
    let path = search
        .dir("CLAUDE_CONFIG_DIR", ".claude")
        .map(|dir| dir.join(".credentials.json"));
    search
        .json_file(path, |json| {
            let oauth = json
                .get("claudeAiOauth")
                .ok_or("holds no Claude login (no claudeAiOauth entry)")?;
            let secret = text(oauth, &["accessToken"]).ok_or("has no accessToken")?;
            // No expiry means expired, as Claude Code itself treats it.
            let expires_at = epoch_ms(oauth.get("expiresAt")).or(Some(Timestamp::UNIX_EPOCH));
            Ok(Some(Token::new(secret).expiring(expires_at)))
        })
        .or_else(|| search.pi(&["anthropic"], &[]))
}

/// Codex's `auth.json` (`$CODEX_HOME`, default `~/.codex`), then pi.
fn codex(search: &mut Search<'_>) -> Option<Credential> {
    let path = search.dir("CODEX_HOME", ".codex").map(|dir| dir.join("auth.json"));
    search
        .json_file(path, |json| {
            let tokens = json
                .get("tokens")
                .filter(|tokens| tokens.is_object())
                .ok_or("holds no ChatGPT login (an API key alone cannot read subscription usage)")?;
            let secret = text(tokens, &["access_token"]).ok_or("has no access_token")?;
            let claims = jwt_claims(secret);
            let account = text(tokens, &["account_id"]).map(str::to_owned).or_else(|| {
                claims.as_ref().and_then(|claims| {
                    text(claims, &["https://api.openai.com/auth", "chatgpt_account_id"]).map(str::to_owned)
                })
            });
            let expires_at = claims
                .as_ref()
                .and_then(|claims| claims.get("exp"))
                .and_then(Value::as_i64)
                .and_then(|exp| Timestamp::from_second(exp).ok());
            Ok(Some(
                Token::new(secret)
                    .expiring(expires_at)
                    .with("account_id", account.as_deref()),
            ))
        })
        .or_else(|| search.pi(&["openai-codex"], &[("account_id", "accountId")]))
}

/// Copilot's own token files, the GitHub CLI's, `GH_TOKEN`/`GITHUB_TOKEN`,
/// then pi (whose `refresh` field is the GitHub token).
fn copilot(search: &mut Search<'_>) -> Option<Credential> {
    let token_of = |entry: &Value| {
        ["oauth_token", "user_token", "github_token", "token"]
            .iter()
            .find_map(|key| text(entry, &[key]))
            .map(Token::new)
    };
    let apps = search.config("github-copilot/apps.json");
    let hosts = search.config("github-copilot/hosts.json");
    search
        .json_file(apps, |json| {
            let entries = json.as_object().ok_or("is not an object")?;
            entries
                .iter()
                .filter(|(host, _)| host.starts_with("github.com"))
                .find_map(|(_, entry)| token_of(entry))
                .map(Some)
                .ok_or_else(|| "has no github.com oauth_token".to_owned())
        })
        .or_else(|| {
            search.json_file(hosts, |json| {
                json.get("github.com")
                    .and_then(token_of)
                    .map(Some)
                    .ok_or_else(|| "has no github.com oauth_token".to_owned())
            })
        })
        .or_else(|| gh_hosts(search))
        .or_else(|| search.env_var("COPILOT_GITHUB_TOKEN"))
        .or_else(|| search.env_var("GH_TOKEN"))
        .or_else(|| search.env_var("GITHUB_TOKEN"))
        .or_else(|| {
            let path = search.home(".pi/agent/auth.json");
            search.json_file(path, |json| {
                let Some(entry) = json.get("github-copilot") else {
                    return Ok(None);
                };
                let secret = text(entry, &["refresh"]).ok_or("has no GitHub token (refresh)")?;
                Ok(Some(Token::new(secret)))
            })
        })
}

/// The GitHub CLI's `hosts.yml`: the `oauth_token:` under `github.com:`.
fn gh_hosts(search: &mut Search<'_>) -> Option<Credential> {
    let dir = match search.var("GH_CONFIG_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => search.config("gh")?,
    };
    let path = dir.join("hosts.yml");
    let shown = search.show(&path);
    search.searched.push(shown.clone());
    let text = search.read(&path, &shown)?;
    let mut in_github = false;
    for line in text.lines() {
        if !line.starts_with(char::is_whitespace) {
            in_github = line.trim_end() == "github.com:";
            continue;
        }
        if let Some(token) = line.trim().strip_prefix("oauth_token:").filter(|_| in_github) {
            let token = token.trim().trim_matches('"');
            if !token.is_empty() {
                return Some(search.credential(shown, Token::new(token)));
            }
        }
    }
    // Recent gh versions keep the token in the system keyring instead.
    search.problems.push(format!(
        "{shown} has no github.com oauth_token (gh may keep it in the keyring: export GH_TOKEN=$(gh auth token))"
    ));
    None
}

/// Gemini CLI's `oauth_creds.json`, then pi.
fn gemini(search: &mut Search<'_>) -> Option<Credential> {
    let path = search.home(".gemini/oauth_creds.json");
    search
        .json_file(path, |json| {
            let secret = text(json, &["access_token"]).ok_or("has no access_token")?;
            Ok(Some(Token::new(secret).expiring(epoch_ms(json.get("expiry_date")))))
        })
        .or_else(|| search.pi(&["google-gemini-cli"], &[("project", "projectId")]))
}

/// Antigravity keeps its login in the OS keychain or an app database, which
/// quotatrack does not open; pi's store is read.
fn antigravity(search: &mut Search<'_>) -> Option<Credential> {
    search.pi(
        &["google-antigravity"],
        &[("project", "projectId"), ("project", "project")],
    )
}

/// The Kiro IDE's token file, then pi. (kiro-cli keeps its token in a
/// SQLite database, which quotatrack does not open.)
fn kiro(search: &mut Search<'_>) -> Option<Credential> {
    let path = search.home(".aws/sso/cache/kiro-auth-token.json");
    search
        .json_file(path, |json| {
            let secret = text(json, &["accessToken"]).ok_or("has no accessToken")?;
            let expires_at = text(json, &["expiresAt"]).and_then(|iso| iso.parse().ok());
            Ok(Some(
                Token::new(secret)
                    .expiring(expires_at)
                    .with("profile_arn", text(json, &["profileArn"])),
            ))
        })
        .or_else(|| search.pi(&["kiro"], &[]))
}

/// Z.ai's API key variables and files, then pi.
fn zai(search: &mut Search<'_>) -> Option<Credential> {
    let key_file = |json: &Value| {
        ["apiKey", "api_key", "key"]
            .iter()
            .find_map(|key| text(json, &[key]))
            .map(|key| Some(Token::new(key)))
            .ok_or_else(|| "has no apiKey".to_owned())
    };
    let openusage = search.config("openusage/zai.json");
    let zai_key = search.config("zai/key.json");
    let zai_token = search.config("zai/token");
    let home_token = search.home(".zai/token");
    search
        .env_var("Z_AI_API_KEY")
        .or_else(|| search.env_var("ZAI_API_KEY"))
        .or_else(|| search.env_var("GLM_API_KEY"))
        .or_else(|| search.json_file(zai_key, key_file))
        .or_else(|| search.json_file(openusage, key_file))
        .or_else(|| search.token_file(zai_token))
        .or_else(|| search.token_file(home_token))
        .or_else(|| search.pi(&["z-ai", "zai"], &[]))
}

/// The string at `path` inside `json`.
fn text<'a>(json: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(json, |value, key| value.get(*key))
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
}

/// An epoch-milliseconds number (possibly a float) as a timestamp.
fn epoch_ms(value: Option<&Value>) -> Option<Timestamp> {
    let ms = value?.as_f64()?;
    Timestamp::from_millisecond(ms as i64).ok()
}

/// The claims of a JWT, read without verifying it (only to learn its expiry
/// and account; the provider verifies it).
fn jwt_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&base64url(payload)?).ok()
}

/// Decodes unpadded base64url.
fn base64url(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' | b'+' => Some(62),
        b'_' | b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        buffer = (buffer << 6) | u32::from(value(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fix_is_added_once_and_only_to_auth_errors() {
        let gemini = |kind, message| with_fix(ProviderId::Gemini, kind, message);
        assert_eq!(
            gemini(ErrorKind::Auth, "no credentials found for gemini"),
            "no credentials found for gemini; run `gemini`"
        );
        assert_eq!(
            gemini(ErrorKind::Auth, "expired; run `gemini`"),
            "expired; run `gemini`"
        );
        assert_eq!(gemini(ErrorKind::Unavailable, "http 503"), "http 503");
    }

    #[test]
    fn base64url_decodes_jwt_payloads() {
        assert_eq!(base64url("eyJleHAiOjE3fQ").unwrap(), br#"{"exp":17}"#);
        assert_eq!(base64url("not base64!"), None);
    }
}
