//! `quotatrack statusline claude`: Claude Code's status-line command.
//!
//! Claude Code runs the command on every render with a JSON object on
//! stdin. Newer versions put the account's rate limits in it:
//!
//! ```json
//! {"model": {"id": "claude-opus-4-5"}, "rate_limits": {
//!   "five_hour": {"used_percentage": 23.5, "resets_at": 1738425600},
//!   "seven_day": {"used_percentage": 41.2, "resets_at": "2026-03-28T15:00:00Z"}}}
//! ```
//!
//! When it does, those are Claude's numbers (no request spent, and fresher
//! than any snapshot); every other provider comes from the snapshot file.
//! Without them, or when stdin is empty, broken, too big or slow, the
//! snapshot alone is shown: a status line never fails in the prompt, it
//! prints one line and exits 0.
//!
//! Claude's numbers are also kept: the command appends them to a small
//! spool file in the data dir ([`spool`], one JSON line, never waiting for
//! a lock), and the engine that owns the log records what waits there at
//! its next cycle as `reading_reported` events of source `claude_code`
//! ([`take_spooled`]), so `history` shows them and replay reproduces them.
//! The status line itself stays as fast as `status`: it never opens the
//! log.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::events::Event;
use crate::files;
use crate::providers::ProviderId;
use crate::render::{self, Options};
use crate::settings::Settings;
use crate::status::{self, StatusOptions};
use crate::wire::{Freshness, ProviderStatus, Status, StatusWindow, Window, rfc3339_seconds, round6};

/// The most stdin that is read; Claude Code's object is a few kilobytes.
pub const MAX_INPUT: u64 = 256 * 1024;
/// How long stdin is waited for before the snapshot alone is shown.
pub const INPUT_WAIT: Duration = Duration::from_millis(500);

/// The windows of a Claude Code status-line object's `rate_limits`, in
/// the tracker's form (`5h`, `7d`); `None` when the input is not such an
/// object or has no usable rate limit.
pub fn claude_windows(input: &[u8]) -> Option<Vec<Window>> {
    let object: Value = serde_json::from_slice(input).ok()?;
    let limits = object.get("rate_limits")?.as_object()?;
    let windows: Vec<Window> = [
        ("five_hour", "5h", "5h", 5 * 3_600),
        ("seven_day", "7d", "7d", 7 * 86_400),
    ]
    .into_iter()
    .filter_map(|(key, id, label, seconds)| {
        let limit = limits.get(key)?;
        let percent = limit.get("used_percentage")?.as_f64().filter(|p| p.is_finite())?;
        let used = (percent / 100.0).clamp(0.0, 1.0);
        let resets_at = limit.get("resets_at").and_then(reset_time).map(rfc3339_seconds);
        Some(Window {
            id: id.to_owned(),
            label: label.to_owned(),
            used_ratio: Some(round6(used)),
            remaining_ratio: Some(round6(1.0 - used)),
            used: Some(round6(percent.clamp(0.0, 100.0))),
            remaining: Some(round6(100.0 - percent.clamp(0.0, 100.0))),
            limit: Some(100.0),
            unit: Some(crate::quota::Unit::Percent),
            resets_at,
            window_seconds: Some(seconds),
            model: None,
            quota: Some(id.to_owned()),
            window_type: None,
            reset_behavior: None,
            model_ids: Vec::new(),
            reset_passed: false,
        })
    })
    .collect();
    (!windows.is_empty()).then_some(windows)
}

/// `resets_at` as epoch seconds (or milliseconds) or RFC 3339 text.
fn reset_time(value: &Value) -> Option<Timestamp> {
    match value {
        Value::Number(number) => {
            let seconds = number.as_f64()?;
            let seconds = if seconds > 1e11 { seconds / 1000.0 } else { seconds };
            Timestamp::from_second(seconds as i64).ok()
        }
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

/// `view` with Claude's 5h and 7d windows taken from `windows` (read at
/// `now`): those replace the snapshot's windows of the same id, the
/// others stay, and Claude reads as fresh.
pub fn with_claude(mut view: Status, windows: Vec<Window>, now: Timestamp) -> Status {
    let position = view.providers.iter().position(|p| p.id == ProviderId::Anthropic);
    let index = position.unwrap_or_else(|| {
        view.providers.insert(
            0,
            ProviderStatus {
                id: ProviderId::Anthropic,
                label: ProviderId::Anthropic.provider().label().to_owned(),
                state: Freshness::Fresh,
                updated_at: None,
                age_s: None,
                blocked_until: None,
                fails: 0,
                plan: None,
                windows: Vec::new(),
                status_page: None,
                error: None,
                credentials_missing: false,
            },
        );
        0
    });
    let claude = &mut view.providers[index];
    let mut merged: Vec<StatusWindow> = windows.into_iter().map(StatusWindow::new).collect();
    merged.extend(
        claude
            .windows
            .drain(..)
            .filter(|old| !["5h", "7d"].contains(&old.id.as_str())),
    );
    claude.windows = merged;
    claude.state = Freshness::Fresh;
    claude.updated_at = Some(rfc3339_seconds(now));
    claude.blocked_until = None;
    claude.error = None;
    view
}

/// The line `statusline claude` prints for `input` (Claude Code's JSON)
/// over the snapshot in `data_dir`, providers in the order of `settings`,
/// stale past its threshold.
pub fn claude_line(data_dir: &Path, input: &[u8], settings: &Settings, options: &Options) -> String {
    let now = options.now;
    let mut view = status::read_snapshot(data_dir)
        .ok()
        .flatten()
        .unwrap_or_else(|| Status {
            schema: 1,
            stale_after_s: None,
            file_stale_after_s: None,
            generated_at: rfc3339_seconds(now),
            providers: Vec::new(),
        });
    if let Some(windows) = claude_windows(input) {
        spool(data_dir, now, &windows);
        view = with_claude(view, windows, now);
    }
    let stale = StatusOptions::from_settings(settings);
    status::settle(&mut view, now, &stale);
    render::order_by(&mut view, &settings.providers);
    render::line::line(&view, options)
}

/// Reads at most [`MAX_INPUT`] bytes of stdin, waiting at most
/// [`INPUT_WAIT`]; nothing when stdin is a terminal (run by hand).
pub fn read_stdin() -> Vec<u8> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        return Vec::new();
    }
    let (send, receive) = mpsc::channel();
    // The thread may outlive the wait; the process ends without it.
    std::thread::spawn(move || {
        let mut input = Vec::new();
        let _ = std::io::stdin().lock().take(MAX_INPUT).read_to_end(&mut input);
        let _ = send.send(input);
    });
    receive.recv_timeout(INPUT_WAIT).unwrap_or_default()
}

/// The spool's name in the data dir.
pub const SPOOL: &str = "statusline.spool";
/// A spool this large takes no more until an engine empties it (about a
/// thousand readings: a day of prompts with no engine running).
const MAX_SPOOL: u64 = 256 * 1024;
/// What the source of spooled readings is called in the log.
pub const SOURCE: &str = "claude_code";

/// One reading waiting in the spool.
#[derive(Serialize, Deserialize)]
struct Spooled {
    read_at: Timestamp,
    windows: Vec<Window>,
}

/// Appends Claude's `windows`, read at `at`, to the spool in `data_dir`
/// for the engine owning the log to record. Never waits and never fails
/// the prompt: without a data dir, or with the spool locked, full, or not
/// a plain file, this reading is simply not kept.
pub fn spool(data_dir: &Path, at: Timestamp, windows: &[Window]) {
    if !data_dir.is_dir() || windows.is_empty() {
        return;
    }
    let Ok(file) = open_spool(data_dir, true) else {
        return;
    };
    if !matches!(files::try_lock(&file), Ok(true)) || file.metadata().map_or(true, |meta| meta.len() > MAX_SPOOL) {
        return;
    }
    let spooled = Spooled {
        read_at: at,
        windows: windows.to_vec(),
    };
    if let Ok(mut line) = serde_json::to_vec(&spooled) {
        line.push(b'\n');
        let _ = (&file).write_all(&line);
    }
}

/// Takes every reading waiting in the spool in `data_dir`, emptying it, as
/// the events the engine records. A spool another process holds right now
/// is left for the next cycle; a line that does not read is dropped.
pub fn take_spooled(data_dir: &Path) -> Vec<Event> {
    let Ok(mut file) = open_spool(data_dir, false) else {
        return Vec::new();
    };
    if !matches!(files::try_lock(&file), Ok(true)) {
        return Vec::new();
    }
    let mut text = Vec::new();
    if (&file).take(2 * MAX_SPOOL).read_to_end(&mut text).is_err() || file.set_len(0).is_err() {
        return Vec::new();
    }
    let _ = file.flush();
    text.split(|byte| *byte == b'\n')
        .filter_map(|line| serde_json::from_slice::<Spooled>(line).ok())
        .map(|spooled| Event::ReadingReported {
            provider: ProviderId::Anthropic,
            source: SOURCE.to_owned(),
            read_at: spooled.read_at,
            windows: spooled.windows,
        })
        .collect()
}

/// The spool, 0600, never through a symbolic link; created when `create`.
fn open_spool(data_dir: &Path, create: bool) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(create)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(data_dir.join(SPOOL))?;
    if !file.metadata()?.is_file() {
        return Err(std::io::ErrorKind::InvalidInput.into());
    }
    Ok(file)
}
