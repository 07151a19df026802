//! Settings: what the user chose, from a TOML file (`--config`,
//! `QUOTATRACK_CONFIG`, else `$XDG_CONFIG_HOME/quotatrack/config.toml`) and
//! from patches a host sends (`settings_patch`).
//!
//! ```toml
//! providers = ["anthropic", "codex", "copilot"]  # enabled, in cycling order
//! refresh_interval_s = 60   # the update cycle
//! min_interval_s = 10       # never two requests to one provider closer than this
//! cache_ttl_s = 60          # a value younger than this is served without a fetch
//! status_pages = true
//! status_ttl_s = 300
//! stale_after_s = 600       # unset: max(3 × refresh_interval_s, 180)
//!
//! [status_page.codex]       # one provider's status page (the whole table is replaced by a patch)
//! enabled = true            # false: this provider's page is never read
//! url = "https://status.example/api/v2/summary.json"  # read this page instead (same format)
//!
//! [display]
//! bar = true                # a progress bar on the first window of the line
//!
//! [retention]
//! bodies_days = 30          # fetch bodies older than this are dropped (the outcome stays)
//! events_days = 400         # events older than this are folded into the log's base
//! [alerts]
//! thresholds = [0.8, 0.95]  # used ratios; each crossing fires once per window
//! command = "notify-send quotatrack \"$QUOTATRACK_ALERT_MESSAGE\""  # optional
//! webhook_url = "https://hooks.example/…"  # optional, http or https
//! rate_limited_minutes = 30 # alert when a rate limit lasts longer
//! stale_minutes = 15        # alert when the last good reading is older
//! ```
//!
//! The alert targets (`command`, `webhook_url`) are never serialized: they
//! are not inputs of any decision, and a webhook URL usually carries a
//! secret in its path, so neither the log nor a host's `ready` sees them.
//!
//! A file and a patch are read the same way: key by key onto the settings
//! in force, each value checked. The first bad key rejects the whole patch
//! with a message naming the key and what it allows, and the settings in
//! force stay as they were.
//!
//! The bounds of every number are stated once, in [`Bound`], and hold at
//! every entry: the file (whose error names the file, the line and the
//! key), a host's patch, and a `settings_changed` read back from a log or
//! an import ([`check_recorded`]). The tracker's [`Rules`] are only ever
//! made from checked settings ([`Settings::rules`]), so a crafted log
//! cannot hand the machines an interval that overflows time arithmetic.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::SignedDuration;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::machines::tracker::Rules;
use crate::providers::ProviderId;

/// The settings in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// The enabled providers, in cycling and display order.
    pub providers: Vec<ProviderId>,
    /// Seconds between update cycles.
    pub refresh_interval_s: u64,
    /// The least number of seconds between two requests to one provider,
    /// forced refreshes included.
    pub min_interval_s: u64,
    /// A last good value younger than this many seconds is served without a
    /// fetch (unless the refresh is forced).
    pub cache_ttl_s: u64,
    /// Poll provider status pages.
    pub status_pages: bool,
    /// Seconds a status page reading lasts.
    pub status_ttl_s: u64,
    /// A last good value older than this many seconds reads `stale`;
    /// `None`: [`Settings::stale_after`]'s function of the interval.
    pub stale_after_s: Option<u64>,
    /// Per provider: its status page off, or read from another URL. Only
    /// the providers named are listed.
    pub status_page: BTreeMap<ProviderId, StatusPage>,
    /// How the status line looks.
    pub display: Display,
    /// How long the log keeps what (not part of the settings hosts see).
    #[serde(skip)]
    pub retention: Retention,
    /// When alerts fire and where they go.
    pub alerts: Alerts,
}

/// `[status_page.<provider>]`: one provider's status page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusPage {
    /// Read it (when `status_pages` is on); default true.
    pub enabled: bool,
    /// The page to read instead of the provider's own (same format): an
    /// absolute http or https URL.
    pub url: Option<String>,
}

/// `[retention]`: how long the log keeps fetch bodies and events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Days fetch bodies are kept.
    pub bodies_days: u32,
    /// Days events are kept before they are folded into the log's base.
    pub events_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            bodies_days: 30,
            events_days: 400,
        }
    }
}

impl Retention {
    /// `retention.bodies_days`: a day to ten years.
    pub const BODIES: (&'static str, u64, u64) = ("retention.bodies_days", 1, 3_650);
    /// `retention.events_days`: a day to ten years.
    pub const EVENTS: (&'static str, u64, u64) = ("retention.events_days", 1, 3_650);
}

/// `value` when it is an integer of days within `(key, least, most)`.
fn days((key, least, most): (&str, u64, u64), value: &Value) -> Result<u32, SettingsError> {
    value
        .as_u64()
        .filter(|days| (least..=most).contains(days))
        .map(|days| days as u32)
        .ok_or_else(|| invalid(key, &format!("an integer ≥ {least} (days, at most {most})"), value))
}

/// The `[alerts]` table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alerts {
    /// Used ratios (0 < t < 1, ascending, distinct) whose crossing fires an
    /// alert, per window; `exhausted` (a ratio of 1) always fires.
    pub thresholds: Vec<f64>,
    /// A shell command run for each alert (details in its environment and as
    /// JSON on stdin). Not serialized: see the module doc.
    #[serde(skip)]
    pub command: Option<String>,
    /// A URL each alert is POSTed to as JSON. Not serialized.
    #[serde(skip)]
    pub webhook_url: Option<crate::transport::Url>,
    /// A rate limit lasting longer than this many minutes fires an alert.
    pub rate_limited_minutes: u64,
    /// A provider whose last good reading is older than this many minutes
    /// fires an alert.
    pub stale_minutes: u64,
}

// The thresholds are checked finite, so equality is an equivalence.
impl Eq for Alerts {}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            thresholds: vec![0.8, 0.95],
            command: None,
            webhook_url: None,
            rate_limited_minutes: 30,
            stale_minutes: 15,
        }
    }
}

/// Display options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Display {
    /// A progress bar on the first window of the status line.
    pub bar: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            providers: ProviderId::ALL.to_vec(),
            refresh_interval_s: 60,
            min_interval_s: 10,
            cache_ttl_s: 60,
            status_pages: true,
            status_ttl_s: 300,
            stale_after_s: None,
            status_page: BTreeMap::new(),
            display: Display { bar: true },
            retention: Retention::default(),
            alerts: Alerts::default(),
        }
    }
}

/// Why settings could not be read or a patch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A key's value is not allowed.
    #[error("{key} must be {allowed}, got {got}")]
    Invalid {
        /// The key, dotted for nested ones (`display.bar`).
        key: String,
        /// What it allows.
        allowed: String,
        /// The value given, as JSON.
        got: String,
    },
    /// A key that does not exist.
    #[error("unknown setting `{key}` (known: {known})")]
    Unknown {
        /// The key.
        key: String,
        /// The known keys.
        known: String,
    },
    /// The patch is not an object of keys.
    #[error("a settings patch must be an object of keys, got {0}")]
    NotAnObject(String),
    /// The file could not be read or is not TOML, or a key in it is bad.
    #[error("{}{}: {message}", path.display(), line.map_or_else(String::new, |line| format!(":{line}")))]
    File {
        /// The file.
        path: PathBuf,
        /// The line the problem is on (from 1), when it is on one.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
}

/// The allowed range of a number of seconds: one definition for the file,
/// patches, recorded settings and the tracker's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// The settings key.
    pub key: &'static str,
    /// The least value allowed.
    pub least: u64,
    /// The largest value allowed: a day, so that any multiple the tracker
    /// takes (backoff is at most 8×) stays far inside time arithmetic.
    pub most: u64,
}

impl Bound {
    /// `refresh_interval_s`: providers are not polled faster than every 10 s.
    pub const REFRESH_INTERVAL: Bound = Bound::seconds("refresh_interval_s", MIN_SECONDS);
    /// `min_interval_s`.
    pub const MIN_INTERVAL: Bound = Bound::seconds("min_interval_s", MIN_SECONDS);
    /// `cache_ttl_s`.
    pub const CACHE_TTL: Bound = Bound::seconds("cache_ttl_s", MIN_SECONDS);
    /// `status_ttl_s`: status pages are not read more than once a minute.
    pub const STATUS_TTL: Bound = Bound::seconds("status_ttl_s", 60);
    /// `stale_after_s`.
    pub const STALE_AFTER: Bound = Bound::seconds("stale_after_s", MIN_SECONDS);

    const fn seconds(key: &'static str, least: u64) -> Bound {
        Bound {
            key,
            least,
            most: MAX_SECONDS,
        }
    }

    /// What the key allows, as the error message says it.
    pub fn allowed(&self) -> String {
        format!("an integer ≥ {} (seconds, at most {})", self.least, self.most)
    }

    /// `value` when it is an integer in range, else the error naming the
    /// key and the range.
    pub fn check(&self, value: &Value) -> Result<u64, SettingsError> {
        value
            .as_u64()
            .filter(|seconds| (self.least..=self.most).contains(seconds))
            .ok_or_else(|| invalid(self.key, &self.allowed(), value))
    }

    /// `seconds` as a duration; in range by construction of [`Settings`].
    fn duration(seconds: u64) -> SignedDuration {
        SignedDuration::from_secs(seconds.min(MAX_SECONDS) as i64)
    }
}

/// The keys, in the order the file documents them.
pub const KEYS: [&str; 11] = [
    "providers",
    "refresh_interval_s",
    "min_interval_s",
    "cache_ttl_s",
    "status_pages",
    "status_ttl_s",
    "stale_after_s",
    "status_page",
    "display",
    "retention",
    "alerts",
];

/// The keys of the `[alerts]` table.
pub const ALERT_KEYS: [&str; 5] = [
    "thresholds",
    "command",
    "webhook_url",
    "rate_limited_minutes",
    "stale_minutes",
];

/// The largest number of minutes an alert delay takes (a day).
pub const MAX_ALERT_MINUTES: u64 = 1_440;

/// The most a settings file may hold, in bytes (a full one is a few
/// hundred).
pub const MAX_SETTINGS_FILE: u64 = 1024 * 1024;

/// The most thresholds an `[alerts]` table lists.
pub const MAX_THRESHOLDS: usize = 8;

/// The least `stale` threshold derived from the interval (3 × 60 s).
pub const STALE_FLOOR_S: u64 = 180;

/// The least update interval and TTL: providers are not polled faster.
pub const MIN_SECONDS: u64 = 10;

/// The largest number of seconds any setting takes (a day).
pub const MAX_SECONDS: u64 = 86_400;

/// Checks the settings a log recorded (a `settings_changed` patch read back
/// by replay, verify or an import) against the bounds a file or a patch
/// must meet; the error names the key and what it allows.
pub fn check_recorded(patch: &Value) -> Result<Settings, SettingsError> {
    Settings::default().patched(patch)
}

impl Settings {
    /// The settings as a JSON object (the `ready` and `settings_updated`
    /// events carry it).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("settings always serialize")
    }

    /// `rules` with the intervals of these settings.
    pub fn rules(&self, rules: Rules) -> Rules {
        Rules {
            interval: self.interval(),
            min_interval: self.min_interval(),
            ..rules
        }
    }

    /// The update interval (`refresh_interval_s`), as every timer and the
    /// tracker's rules take it.
    pub fn interval(&self) -> SignedDuration {
        Bound::duration(self.refresh_interval_s)
    }

    /// The least time between two requests to one provider (`min_interval_s`).
    pub fn min_interval(&self) -> SignedDuration {
        Bound::duration(self.min_interval_s)
    }

    /// How long a last good value is served without a fetch (`cache_ttl_s`).
    pub fn cache_ttl(&self) -> SignedDuration {
        Bound::duration(self.cache_ttl_s)
    }

    /// How old a last good value may be before it reads `stale`:
    /// `stale_after_s` when set, else three refresh intervals and never
    /// less than [`STALE_FLOOR_S`] (three missed cycles is a missed fetch
    /// for sure, and at short intervals the floor keeps one slow answer
    /// from flickering the state).
    pub fn stale_after(&self) -> SignedDuration {
        let derived = self.refresh_interval_s.saturating_mul(3).max(STALE_FLOOR_S);
        Bound::duration(self.stale_after_s.unwrap_or(derived))
    }

    /// How long a status page reading lasts; `None` when pages are off.
    pub fn status_ttl(&self) -> Option<Duration> {
        self.status_pages.then(|| Duration::from_secs(self.status_ttl_s))
    }

    /// Whether `provider`'s status page is read (pages on, and not turned
    /// off for it).
    pub fn status_page_on(&self, provider: ProviderId) -> bool {
        self.status_pages && self.status_page.get(&provider).is_none_or(|page| page.enabled)
    }

    /// The URL `provider`'s status page is read from instead of its own.
    pub fn status_page_url(&self, provider: ProviderId) -> Option<crate::transport::Url> {
        let url = self.status_page.get(&provider)?.url.as_deref()?;
        crate::transport::Url::parse(url).ok()
    }

    /// These settings with `patch` applied, or the first problem in it.
    pub fn patched(&self, patch: &Value) -> Result<Settings, SettingsError> {
        let Value::Object(keys) = patch else {
            return Err(SettingsError::NotAnObject(patch.to_string()));
        };
        let mut next = self.clone();
        for (key, value) in keys {
            next.set(key, value)?;
        }
        Ok(next)
    }

    /// Reads a settings file; a missing file at the default place gives the
    /// defaults, a missing file that was named explicitly is an error. The
    /// error names the file, and the line and key when it is about one.
    pub fn load(path: &Path, explicit: bool) -> Result<Settings, SettingsError> {
        let fail = |line: Option<usize>, message: String| SettingsError::File {
            path: path.to_owned(),
            line,
            message,
        };
        // A FIFO or a device named as the settings file is refused, not
        // waited on or read without end.
        let bytes = match crate::files::read_plain(path, MAX_SETTINGS_FILE) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(Settings::default());
            }
            Err(error) if error.kind() == std::io::ErrorKind::IsADirectory => {
                return Err(fail(None, "is a directory, not a settings file".to_owned()));
            }
            Err(error) => return Err(fail(None, format!("cannot read the settings file: {error}"))),
        };
        let text = String::from_utf8(bytes)
            .map_err(|error| fail(None, format!("cannot read the settings file: not UTF-8 text ({error})")))?;
        let table: toml::Table = toml::from_str(&text).map_err(|error| {
            let line = error.span().map(|span| line_of(&text, span.start));
            fail(line, one_line(error.message()))
        })?;
        let patch = serde_json::to_value(table).map_err(|error| fail(None, error.to_string()))?;
        Settings::default().patched(&patch).map_err(|error| {
            let line = error.key().and_then(|key| key_line(&text, key));
            fail(line, error.to_string())
        })
    }

    fn set(&mut self, key: &str, value: &Value) -> Result<(), SettingsError> {
        match key {
            "providers" => self.providers = providers(value)?,
            "refresh_interval_s" => self.refresh_interval_s = Bound::REFRESH_INTERVAL.check(value)?,
            "min_interval_s" => self.min_interval_s = Bound::MIN_INTERVAL.check(value)?,
            "cache_ttl_s" => self.cache_ttl_s = Bound::CACHE_TTL.check(value)?,
            "status_ttl_s" => self.status_ttl_s = Bound::STATUS_TTL.check(value)?,
            "stale_after_s" => {
                self.stale_after_s = match value {
                    Value::Null => None,
                    _ => Some(Bound::STALE_AFTER.check(value)?),
                }
            }
            "status_pages" => self.status_pages = boolean(key, value)?,
            "status_page" => self.status_page = status_page(value)?,
            "display" => {
                let Value::Object(display) = value else {
                    return Err(invalid(key, "a table with `bar`", value));
                };
                for (name, value) in display {
                    match name.as_str() {
                        "bar" => self.display.bar = boolean("display.bar", value)?,
                        _ => {
                            return Err(SettingsError::Unknown {
                                key: format!("display.{name}"),
                                known: "display.bar".to_owned(),
                            });
                        }
                    }
                }
            }
            "retention" => {
                let Value::Object(retention) = value else {
                    return Err(invalid(key, "a table with `bodies_days` and `events_days`", value));
                };
                for (name, value) in retention {
                    match name.as_str() {
                        "bodies_days" => self.retention.bodies_days = days(Retention::BODIES, value)?,
                        "events_days" => self.retention.events_days = days(Retention::EVENTS, value)?,
                        _ => {
                            return Err(SettingsError::Unknown {
                                key: format!("retention.{name}"),
                                known: "retention.bodies_days, retention.events_days".to_owned(),
                            });
                        }
                    }
                }
            }
            "alerts" => {
                let Value::Object(alerts) = value else {
                    return Err(invalid(key, &format!("a table of {}", ALERT_KEYS.join(", ")), value));
                };
                for (name, value) in alerts {
                    self.alerts.set(name, value)?;
                }
            }
            _ => {
                return Err(SettingsError::Unknown {
                    key: key.to_owned(),
                    known: KEYS.join(", "),
                });
            }
        }
        Ok(())
    }
}

impl Alerts {
    /// Sets one key of the `[alerts]` table, checked.
    fn set(&mut self, name: &str, value: &Value) -> Result<(), SettingsError> {
        match name {
            "thresholds" => self.thresholds = thresholds(value)?,
            "command" => {
                self.command = match value {
                    Value::Null => None,
                    Value::String(command) if !command.trim().is_empty() && command.len() <= 4_096 => {
                        Some(command.clone())
                    }
                    // Not quoted back: a command may hold a secret.
                    _ => {
                        return Err(SettingsError::Invalid {
                            key: "alerts.command".to_owned(),
                            allowed: "a non-empty shell command (at most 4096 bytes)".to_owned(),
                            got: "a value that is not one".to_owned(),
                        });
                    }
                }
            }
            "webhook_url" => {
                self.webhook_url = match value {
                    Value::Null => None,
                    _ => Some(webhook_url(value)?),
                }
            }
            "rate_limited_minutes" => self.rate_limited_minutes = minutes("alerts.rate_limited_minutes", value)?,
            "stale_minutes" => self.stale_minutes = minutes("alerts.stale_minutes", value)?,
            _ => {
                return Err(SettingsError::Unknown {
                    key: format!("alerts.{name}"),
                    known: ALERT_KEYS.map(|key| format!("alerts.{key}")).join(", "),
                });
            }
        }
        Ok(())
    }

    /// The highest threshold: a window that reset after reaching it fires
    /// `refilled` (exhausted, a ratio of 1, when there are none).
    pub fn top(&self) -> f64 {
        self.thresholds.last().copied().unwrap_or(1.0)
    }
}

/// `patch` (a host's `settings_patch`) as it may be recorded: the alert
/// targets (`alerts.command`, `alerts.webhook_url`) replaced by `null`, so
/// a secret a webhook URL holds never reaches the log. They decide nothing,
/// so replay reads the patch the same either way.
pub fn without_targets(patch: &Value) -> Value {
    let mut recorded = patch.clone();
    if let Some(Value::Object(alerts)) = recorded.get_mut("alerts") {
        for key in ["command", "webhook_url"] {
            if let Some(value) = alerts.get_mut(key) {
                *value = Value::Null;
            }
        }
    }
    recorded
}

fn thresholds(value: &Value) -> Result<Vec<f64>, SettingsError> {
    let allowed = format!(
        "a list of at most {MAX_THRESHOLDS} ascending used ratios between 0 and 1 (exclusive), such as [0.8, 0.95]"
    );
    let fail = || invalid("alerts.thresholds", &allowed, value);
    let items = value
        .as_array()
        .filter(|items| items.len() <= MAX_THRESHOLDS)
        .ok_or_else(fail)?;
    let mut ratios: Vec<f64> = Vec::with_capacity(items.len());
    for item in items {
        let ratio = item
            .as_f64()
            .filter(|ratio| *ratio > 0.0 && *ratio < 1.0)
            .ok_or_else(fail)?;
        if ratios.last().is_some_and(|last| *last >= ratio) {
            return Err(fail());
        }
        ratios.push(ratio);
    }
    Ok(ratios)
}

fn webhook_url(value: &Value) -> Result<crate::transport::Url, SettingsError> {
    // The value is not quoted back: a webhook URL usually holds a secret.
    let fail = || SettingsError::Invalid {
        key: "alerts.webhook_url".to_owned(),
        allowed: "an absolute http or https URL with a host".to_owned(),
        got: "a value that is not one".to_owned(),
    };
    let text = value.as_str().filter(|text| text.len() <= 4_096).ok_or_else(fail)?;
    let url = crate::transport::Url::parse(text).map_err(|_| fail())?;
    let web = matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|host| !host.is_empty());
    web.then_some(url).ok_or_else(fail)
}

fn minutes(key: &str, value: &Value) -> Result<u64, SettingsError> {
    value
        .as_u64()
        .filter(|minutes| (1..=MAX_ALERT_MINUTES).contains(minutes))
        .ok_or_else(|| {
            invalid(
                key,
                &format!("an integer ≥ 1 (minutes, at most {MAX_ALERT_MINUTES})"),
                value,
            )
        })
}

fn invalid(key: &str, allowed: &str, got: &Value) -> SettingsError {
    SettingsError::Invalid {
        key: key.to_owned(),
        allowed: allowed.to_owned(),
        got: got.to_string(),
    }
}

impl SettingsError {
    /// The key the error is about, dotted for nested ones.
    pub fn key(&self) -> Option<&str> {
        match self {
            SettingsError::Invalid { key, .. } | SettingsError::Unknown { key, .. } => Some(key),
            SettingsError::NotAnObject(_) | SettingsError::File { .. } => None,
        }
    }
}

/// The line (from 1) of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|byte| **byte == b'\n')
        .count()
        + 1
}

/// The line of `key` (dotted for a key in a table) in a settings file that
/// parsed.
fn key_line(text: &str, key: &str) -> Option<usize> {
    let document = toml::de::DeTable::parse(text).ok()?;
    let mut table = document.get_ref();
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        let (name, value) = table.iter().find(|(name, _)| name.get_ref().as_ref() == part)?;
        match (parts.peek(), value.get_ref()) {
            (None, _) => return Some(line_of(text, name.span().start)),
            (Some(_), toml::de::DeValue::Table(inner)) => table = inner,
            (Some(_), _) => return Some(line_of(text, name.span().start)),
        }
    }
    None
}

/// `[status_page]`: a table of providers, each with `enabled` and `url`;
/// it replaces the one in force as a whole.
fn status_page(value: &Value) -> Result<BTreeMap<ProviderId, StatusPage>, SettingsError> {
    let Value::Object(table) = value else {
        return Err(invalid(
            "status_page",
            "a table of providers, each with `enabled` and `url`",
            value,
        ));
    };
    let mut pages = BTreeMap::new();
    for (name, entry) in table {
        let key = format!("status_page.{name}");
        let provider = ProviderId::ALL
            .into_iter()
            .find(|id| id.as_str() == name)
            .ok_or_else(|| SettingsError::Unknown {
                key: key.clone(),
                known: ProviderId::ALL.map(|id| format!("status_page.{id}")).join(", "),
            })?;
        let Value::Object(fields) = entry else {
            return Err(invalid(&key, "a table with `enabled` and `url`", entry));
        };
        let mut page = StatusPage {
            enabled: true,
            url: None,
        };
        for (field, value) in fields {
            match field.as_str() {
                "enabled" => page.enabled = boolean(&format!("{key}.enabled"), value)?,
                "url" => page.url = page_url(&format!("{key}.url"), value)?,
                _ => {
                    return Err(SettingsError::Unknown {
                        key: format!("{key}.{field}"),
                        known: format!("{key}.enabled, {key}.url"),
                    });
                }
            }
        }
        pages.insert(provider, page);
    }
    Ok(pages)
}

/// A status page URL: absolute http or https with a host, no user info
/// (a status page needs no login), or null for the provider's own.
fn page_url(key: &str, value: &Value) -> Result<Option<String>, SettingsError> {
    if value.is_null() {
        return Ok(None);
    }
    // Not quoted back: a URL with a user name may hold a password.
    let fail = || SettingsError::Invalid {
        key: key.to_owned(),
        allowed: "an absolute http or https URL with a host and no user name or password".to_owned(),
        got: "a value that is not one".to_owned(),
    };
    let text = value.as_str().filter(|text| text.len() <= 2_048).ok_or_else(fail)?;
    let url = crate::transport::Url::parse(text.trim()).map_err(|_| fail())?;
    let web = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|host| !host.is_empty())
        && url.username().is_empty()
        && url.password().is_none();
    web.then(|| Some(url.to_string())).ok_or_else(fail)
}

fn boolean(key: &str, value: &Value) -> Result<bool, SettingsError> {
    value.as_bool().ok_or_else(|| invalid(key, "true or false", value))
}

fn providers(value: &Value) -> Result<Vec<ProviderId>, SettingsError> {
    let mut allowed = String::from("a list of distinct providers from ");
    for (index, id) in ProviderId::ALL.iter().enumerate() {
        let _ = write!(allowed, "{}{id}", if index == 0 { "" } else { ", " });
    }
    let items = value.as_array().ok_or_else(|| invalid("providers", &allowed, value))?;
    let mut ids = Vec::with_capacity(items.len());
    for item in items {
        let id: ProviderId = item
            .as_str()
            .and_then(|name| name.parse().ok())
            .ok_or_else(|| invalid("providers", &allowed, item))?;
        if ids.contains(&id) {
            return Err(invalid("providers", &allowed, &json!(format!("{id} twice"))));
        }
        ids.push(id);
    }
    Ok(ids)
}

/// A parser message on one line.
fn one_line(message: &str) -> String {
    let lines: Vec<&str> = message.lines().map(str::trim).filter(|line| !line.is_empty()).collect();
    lines.join("; ")
}

impl Settings {
    /// The keys whose values differ from `recorded` (the settings as the
    /// log has them): what a `settings_changed` event records.
    pub fn changes_from(&self, recorded: &Map<String, Value>) -> Map<String, Value> {
        let Value::Object(settings) = self.to_json() else {
            return Map::new();
        };
        settings
            .into_iter()
            .filter(|(key, value)| recorded.get(key) != Some(value))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_value_names_the_key_and_what_it_allows_and_changes_nothing() {
        let settings = Settings::default();
        let error = settings.patched(&json!({"refresh_interval_s": "banana"})).unwrap_err();
        assert_eq!(
            error.to_string(),
            "refresh_interval_s must be an integer ≥ 10 (seconds, at most 86400), got \"banana\""
        );
        let error = settings
            .patched(&json!({"min_interval_s": 30, "providers": ["claude"]}))
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("providers must be a list of distinct providers from anthropic, codex"),
            "{error}"
        );
        let error = settings.patched(&json!({"colour": "blue"})).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("unknown setting `colour` (known: providers, "),
            "{error}"
        );
        assert_eq!(settings, Settings::default());
    }

    #[test]
    fn a_file_error_names_the_line_of_the_key_even_in_a_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let cases = [
            (
                "status_pages = true\n\nrefresh_interval_s = 86401\n",
                "config.toml:3: refresh_interval_s",
            ),
            ("[display]\n# bars\nbar = \"yes\"\n", "config.toml:3: display.bar"),
            ("providers = [\"anthropic\",\n  \"nope\"]\n", "config.toml:1: providers"),
            ("a = [\n", "config.toml:1: unclosed array"),
        ];
        for (text, start) in cases {
            std::fs::write(&path, text).unwrap();
            let error = Settings::load(&path, true).unwrap_err().to_string();
            let shown = error
                .trim_start_matches(dir.path().to_str().unwrap())
                .trim_start_matches('/');
            assert!(shown.starts_with(start), "{text:?}: {error}");
        }
    }

    #[test]
    fn the_widest_settings_keep_the_rules_inside_time_arithmetic() {
        let widest = Settings::default()
            .patched(&json!({"refresh_interval_s": MAX_SECONDS, "min_interval_s": MAX_SECONDS}))
            .unwrap();
        let rules = widest.rules(Rules::default());
        let longest = rules.delay(u32::MAX);
        assert_eq!(longest, SignedDuration::from_secs(8 * MAX_SECONDS as i64));
        for key in ["refresh_interval_s", "min_interval_s", "cache_ttl_s", "status_ttl_s"] {
            let error = check_recorded(&json!({ key: MAX_SECONDS + 1 })).unwrap_err();
            assert_eq!(error.key(), Some(key));
            assert!(error.to_string().contains("at most 86400"), "{error}");
        }
    }

    #[test]
    fn a_patch_changes_only_its_keys() {
        let patched = Settings::default()
            .patched(&json!({"refresh_interval_s": 120, "display": {"bar": false}}))
            .unwrap();
        assert_eq!(
            (patched.refresh_interval_s, patched.display.bar, patched.cache_ttl_s),
            (120, false, 60)
        );
    }
}
