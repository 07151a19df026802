//! Resolving the command line and the environment into where things live.
//! Kept apart from `cli` so that the argument types stay free of I/O.

use std::path::{Path, PathBuf};

/// The data dir: `--data-dir` / `QUOTATRACK_DATA_DIR` (clap reads both),
/// else `$XDG_DATA_HOME/quotatrack`, else `~/.local/share/quotatrack`.
pub fn data_dir(explicit: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_owned();
    }
    xdg_dir(&env, "XDG_DATA_HOME", ".local/share")
        .map_or_else(|| PathBuf::from(".quotatrack"), |dir| dir.join("quotatrack"))
}

/// The settings file and whether it was named: `--config` /
/// `QUOTATRACK_CONFIG` (clap reads both), else
/// `$XDG_CONFIG_HOME/quotatrack/config.toml`, else
/// `~/.config/quotatrack/config.toml`.
pub fn settings_file(explicit: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> (PathBuf, bool) {
    if let Some(path) = explicit {
        return (path.to_owned(), true);
    }
    let dir = xdg_dir(&env, "XDG_CONFIG_HOME", ".config").unwrap_or_else(|| PathBuf::from("."));
    (dir.join("quotatrack/config.toml"), false)
}

/// `$<variable>`, else `$HOME/<under_home>`, ignoring empty values; `None`
/// when neither is set.
fn xdg_dir(env: &impl Fn(&str) -> Option<String>, variable: &str, under_home: &str) -> Option<PathBuf> {
    let non_empty = |name: &str| env(name).filter(|value| !value.is_empty());
    match (non_empty(variable), non_empty("HOME")) {
        (Some(xdg), _) => Some(PathBuf::from(xdg)),
        (None, Some(home)) => Some(PathBuf::from(home).join(under_home)),
        (None, None) => None,
    }
}
