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
//!
//! [display]
//! bar = true                # a progress bar on the first window of the line
//! ```
//!
//! A file and a patch are read the same way: key by key onto the settings
//! in force, each value checked. The first bad key rejects the whole patch
//! with a message naming the key and what it allows, and the settings in
//! force stay as they were.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::SignedDuration;

use serde::Serialize;
use serde_json::{Value, json};

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
    /// How the status line looks.
    pub display: Display,
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
            display: Display { bar: true },
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
    /// The file could not be read or is not TOML.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The keys, in the order the file documents them.
pub const KEYS: [&str; 7] = [
    "providers",
    "refresh_interval_s",
    "min_interval_s",
    "cache_ttl_s",
    "status_pages",
    "status_ttl_s",
    "display",
];

/// The least update interval and TTL: providers are not polled faster.
pub const MIN_SECONDS: u64 = 10;

impl Settings {
    /// The settings as a JSON object (the `ready` and `settings_updated`
    /// events carry it).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("settings always serialize")
    }

    /// `rules` with the intervals of these settings.
    pub fn rules(&self, rules: Rules) -> Rules {
        Rules {
            interval: SignedDuration::from_secs(self.refresh_interval_s as i64),
            min_interval: SignedDuration::from_secs(self.min_interval_s as i64),
            ..rules
        }
    }

    /// How long a status page reading lasts; `None` when pages are off.
    pub fn status_ttl(&self) -> Option<Duration> {
        self.status_pages.then(|| Duration::from_secs(self.status_ttl_s))
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
    /// defaults, a missing file that was named explicitly is an error.
    pub fn load(path: &Path, explicit: bool) -> Result<Settings, SettingsError> {
        let fail = |message: String| SettingsError::File {
            path: path.to_owned(),
            message,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(Settings::default());
            }
            Err(error) => return Err(fail(error.to_string())),
        };
        let table: toml::Table = toml::from_str(&text).map_err(|error| fail(one_line(&error.to_string())))?;
        let patch = serde_json::to_value(table).map_err(|error| fail(error.to_string()))?;
        Settings::default()
            .patched(&patch)
            .map_err(|error| fail(error.to_string()))
    }

    fn set(&mut self, key: &str, value: &Value) -> Result<(), SettingsError> {
        match key {
            "providers" => self.providers = providers(value)?,
            "refresh_interval_s" => self.refresh_interval_s = seconds(key, value, MIN_SECONDS)?,
            "min_interval_s" => self.min_interval_s = seconds(key, value, MIN_SECONDS)?,
            "cache_ttl_s" => self.cache_ttl_s = seconds(key, value, MIN_SECONDS)?,
            "status_ttl_s" => self.status_ttl_s = seconds(key, value, 60)?,
            "status_pages" => self.status_pages = boolean(key, value)?,
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

fn invalid(key: &str, allowed: &str, got: &Value) -> SettingsError {
    SettingsError::Invalid {
        key: key.to_owned(),
        allowed: allowed.to_owned(),
        got: got.to_string(),
    }
}

fn seconds(key: &str, value: &Value, least: u64) -> Result<u64, SettingsError> {
    value
        .as_u64()
        .filter(|seconds| (least..=86_400).contains(seconds))
        .ok_or_else(|| invalid(key, &format!("an integer ≥ {least} (seconds, at most 86400)"), value))
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

/// A multi-line parser message (where, a picture, what) on one line:
/// where and what.
fn one_line(message: &str) -> String {
    let lines: Vec<&str> = message.lines().map(str::trim).filter(|line| !line.is_empty()).collect();
    match (lines.first(), lines.last()) {
        (Some(first), Some(last)) if lines.len() > 1 => {
            format!("{first}: {}", last.trim_start_matches(['^', '|', ' ']))
        }
        _ => message.trim().to_owned(),
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
