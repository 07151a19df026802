//! Resolving the command line and the environment into where things live.
//! Kept apart from `cli` so that the argument types stay free of I/O.

use std::path::{Path, PathBuf};

/// The data dir: `--data-dir` / `QUOTATRACK_DATA_DIR` (clap reads both),
/// else `$XDG_DATA_HOME/quotatrack`, else `~/.local/share/quotatrack`.
pub fn data_dir(explicit: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_owned();
    }
    let non_empty = |name: &str| env(name).filter(|value| !value.is_empty());
    match (non_empty("XDG_DATA_HOME"), non_empty("HOME")) {
        (Some(xdg), _) => PathBuf::from(xdg).join("quotatrack"),
        (None, Some(home)) => PathBuf::from(home).join(".local/share/quotatrack"),
        (None, None) => PathBuf::from(".quotatrack"),
    }
}
