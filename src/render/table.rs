//! The table `status` prints on a terminal: one row per window, providers
//! in the order of the settings, and under a provider whose numbers cannot
//! be taken at face value a note saying why in words and what to do.
//!
//! ```text
//! provider  window  usage                      used  resets in  state
//! Claude    5h      ███████░░░░░░░░░░░░░░░░░░   37%  1h1m       fresh 0s ago
//!           7d      ███████████████░░░░░░░░░░   61%  3d20h
//! ```
//!
//! From 110 columns a pace column says how each window's use compares
//! with even use (`ahead +16`, `on track`). The table fits the width it is given: the bar takes what the other
//! columns leave (10 to 40 characters), long window labels are cut first
//! when space is short, and notes wrap. Colour marks the thresholds (the
//! used share and its bar) and the state. A window that runs out before
//! its reset at the recent pace gets a note saying when (`7d at this pace:
//! runs out 14:20, 40m before reset`).

use jiff::Timestamp;

use crate::render::line::health_word;
use crate::render::{Level, Options, paint, reset_of, style, truncate, visible_width};
use crate::status::relative;
use crate::wire::{Freshness, ProviderStatus, Status, StatusWindow};

/// The narrowest bar.
const MIN_BAR: usize = 10;
/// The widest bar.
const MAX_BAR: usize = 40;
/// The narrowest window column.
const MIN_WINDOW: usize = 8;
/// The narrowest table with a pace column.
const PACE_FROM: usize = 110;
/// The gap between columns.
const GAP: &str = "  ";

/// The table of `view`.
pub fn table(view: &Status, options: &Options) -> String {
    let view = &crate::render::clean(view);
    if view.providers.is_empty() {
        return "no usage data yet: run `quotatrack status --refresh` or `quotatrack watch`\n".to_owned();
    }
    let rows: Vec<Row> = view
        .providers
        .iter()
        .flat_map(|provider| provider_rows(provider, options))
        .collect();
    let widths = Widths::fit(&rows, options.width);
    let mut out = String::new();
    let mut header = vec![
        pad("provider", widths.provider),
        pad("window", widths.window),
        pad("usage", widths.bar),
        pad_left("used", widths.used),
        pad("resets in", widths.reset),
    ];
    if let Some(pace) = widths.pace {
        header.push(pad("pace", pace));
    }
    header.push("state".to_owned());
    let header = header.join(GAP);
    out.push_str(&style(header.trim_end(), "2", options.color));
    out.push('\n');
    for row in &rows {
        out.push_str(&row.render(&widths, options));
        out.push('\n');
    }
    out
}

/// One line of the table: a window, or a note under a provider.
#[derive(Debug)]
enum Row {
    Window {
        /// The provider's label, on its first row only.
        provider: String,
        window: String,
        used_ratio: Option<f64>,
        /// The bar column's text when there is no number to draw.
        instead_of_bar: Option<String>,
        reset: String,
        /// The pace column (`ahead +16`), shown when the table is wide.
        pace: String,
        /// The provider's state, on its first row only.
        state: Option<(String, Level)>,
    },
    Note(String),
}

impl Row {
    fn render(&self, widths: &Widths, options: &Options) -> String {
        match self {
            Row::Window {
                provider,
                window,
                used_ratio,
                instead_of_bar,
                reset,
                pace,
                state,
            } => {
                let level = Level::of(*used_ratio);
                let bar = match (instead_of_bar, used_ratio) {
                    (Some(text), _) => style(&pad(&truncate(text, widths.bar), widths.bar), "2", options.color),
                    (None, Some(ratio)) => bar(*ratio, widths.bar, level, options.color),
                    (None, None) => " ".repeat(widths.bar),
                };
                let used = used_ratio.map_or_else(|| "?".to_owned(), |ratio| format!("{}%", (ratio * 100.0).round()));
                let mut cells = vec![
                    style(&pad(provider, widths.provider), "1", options.color),
                    pad(&truncate(window, widths.window), widths.window),
                    bar,
                    paint(&pad_left(&used, widths.used), level, options.color),
                    pad(reset, widths.reset),
                ];
                if let Some(pace_width) = widths.pace {
                    cells.push(pad(pace, pace_width));
                }
                cells.push(
                    state
                        .as_ref()
                        .map(|(text, level)| paint(text, *level, options.color))
                        .unwrap_or_default(),
                );
                cells.join(GAP).trim_end().to_owned()
            }
            Row::Note(text) => {
                let indent = " ".repeat(widths.provider + GAP.len());
                let room = options.width.saturating_sub(indent.len() + 2).max(20);
                wrap(text, room)
                    .iter()
                    .enumerate()
                    .map(|(index, line)| {
                        let mark = if index == 0 { "↳ " } else { "  " };
                        format!("{indent}{}", style(&format!("{mark}{line}"), "2", options.color))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        }
    }
}

/// The column widths.
#[derive(Debug)]
struct Widths {
    /// The pace column's width, when the table is wide enough for it.
    pace: Option<usize>,
    provider: usize,
    window: usize,
    bar: usize,
    used: usize,
    reset: usize,
}

impl Widths {
    /// Widths that fit `width` when they can: the bar and then the window
    /// column give way.
    fn fit(rows: &[Row], width: usize) -> Widths {
        let mut provider = "provider".len();
        let mut window = "window".len();
        let mut reset = "resets in".len();
        let mut state = "state".len();
        let mut pace = "pace".len();
        for row in rows {
            if let Row::Window {
                provider: label,
                window: name,
                reset: countdown,
                state: state_text,
                pace: pace_text,
                ..
            } = row
            {
                pace = pace.max(pace_text.chars().count());
                provider = provider.max(label.chars().count());
                window = window.max(name.chars().count());
                reset = reset.max(countdown.chars().count());
                if let Some((text, _)) = state_text {
                    state = state.max(visible_width(text));
                }
            }
        }
        let used = 4;
        let fixed = provider + used + reset + state + 5 * GAP.len();
        // The pace column, only where it leaves the bar and window room.
        let with_pace = fixed + pace + GAP.len() + MIN_WINDOW + 20;
        let (fixed, pace) = if width >= with_pace.max(PACE_FROM) {
            (fixed + pace + GAP.len(), Some(pace))
        } else {
            (fixed, None)
        };
        let room = width.saturating_sub(fixed);
        let window = window.min(room.saturating_sub(MIN_BAR)).max(MIN_WINDOW);
        let bar = room.saturating_sub(window).clamp(MIN_BAR, MAX_BAR);
        Widths {
            pace,
            provider,
            window,
            bar,
            used,
            reset,
        }
    }
}

fn provider_rows(provider: &ProviderStatus, options: &Options) -> Vec<Row> {
    let state = Some(state_text(provider, options.now));
    let mut rows = Vec::new();
    if provider.windows.is_empty() {
        rows.push(Row::Window {
            provider: provider.label.clone(),
            window: "-".to_owned(),
            used_ratio: None,
            instead_of_bar: Some(String::new()),
            reset: String::new(),
            pace: String::new(),
            state: state.clone(),
        });
    }
    let mut pace_notes = Vec::new();
    for (index, window) in provider.windows.iter().enumerate() {
        let first = index == 0;
        if let Some(note) = pace_note(window, options) {
            pace_notes.push(note);
        }
        rows.push(Row::Window {
            provider: if first { provider.label.clone() } else { String::new() },
            window: window.label.clone(),
            used_ratio: window.used_ratio,
            instead_of_bar: window.reset_passed.then(|| "awaiting fetch".to_owned()),
            reset: reset_text(window, options.now),
            pace: pace_text(window),
            state: if first { state.clone() } else { None },
        });
    }
    rows.extend(pace_notes.into_iter().map(Row::Note));
    rows.extend(notes(provider, options).into_iter().map(Row::Note));
    rows
}

/// `5h at this pace: runs out 14:20, 40m before reset` for a window that
/// runs out before its reset at the recent slope.
fn pace_note(window: &StatusWindow, options: &Options) -> Option<String> {
    let pace = window.pace.as_ref()?;
    let runs_out: Timestamp = pace.runs_out_at.as_deref()?.parse().ok()?;
    let reset = reset_of(window)?;
    let before = reset.duration_since(runs_out).as_secs();
    let when = if runs_out <= options.now {
        "ran out".to_owned()
    } else {
        format!("runs out {}", local_time(runs_out, options))
    };
    Some(format!(
        "{} at this pace: {when}, {} before reset",
        window.label,
        relative(before)
    ))
}

/// The pace column: the stage and the delta in percentage points
/// (`ahead +16`, `on track`), `-` when unknown.
fn pace_text(window: &StatusWindow) -> String {
    let Some(pace) = &window.pace else {
        return "-".to_owned();
    };
    let stage = pace.stage.replace('_', " ");
    match pace.delta {
        Some(delta) if pace.stage != "on_track" => format!("{stage} {:+}", (delta * 100.0).round()),
        Some(_) => stage,
        None => "-".to_owned(),
    }
}

fn reset_text(window: &StatusWindow, now: Timestamp) -> String {
    match reset_of(window) {
        Some(at) if at > now => relative(at.duration_since(now).as_secs()),
        Some(_) => "passed".to_owned(),
        None => "-".to_owned(),
    }
}

/// The state column: the freshness in words with the age of the values.
fn state_text(provider: &ProviderStatus, now: Timestamp) -> (String, Level) {
    let age = provider.age_s.map(|age| relative_age(age as i64));
    let with_age = |word: &str| match &age {
        Some(age) => format!("{word} {age}"),
        None => word.to_owned(),
    };
    let mut text = match provider.state {
        Freshness::Fresh => (with_age("fresh"), Level::Ok),
        Freshness::Stale => (with_age("stale"), Level::Warning),
        Freshness::RateLimited => {
            let wait = wait_text(provider, now).unwrap_or_default();
            (format!("rate limited {wait}").trim_end().to_owned(), Level::Warning)
        }
        Freshness::AuthRequired => ("login needed".to_owned(), Level::Critical),
        Freshness::Unavailable if provider.windows.is_empty() => ("failing".to_owned(), Level::Critical),
        Freshness::Unavailable => (with_age("failing, last good"), Level::Critical),
        Freshness::Inactive => ("off".to_owned(), Level::Unknown),
        Freshness::Unknown => ("no data yet".to_owned(), Level::Unknown),
    };
    if let Some(word) = health_word(provider) {
        text.0.push_str(&format!(" ⚠ {word}"));
    }
    text
}

/// `42s ago`, `3m ago`, `2h13m ago`.
fn relative_age(seconds: i64) -> String {
    if seconds < 60 {
        format!("{}s ago", seconds.max(0))
    } else {
        format!("{} ago", relative(seconds))
    }
}

/// `for 54m` until a rate limit ends.
fn wait_text(provider: &ProviderStatus, now: Timestamp) -> Option<String> {
    let until: Timestamp = provider.blocked_until.as_deref()?.parse().ok()?;
    Some(format!("for {}", relative(until.duration_since(now).as_secs().max(0))))
}

/// What to tell the reader under a provider: why its numbers cannot be
/// taken at face value and what to do about it, and the status page.
fn notes(provider: &ProviderStatus, options: &Options) -> Vec<String> {
    let age = provider.age_s.map(|age| relative_age(age as i64)).unwrap_or_default();
    let error = provider.error.as_ref().map(|error| error.message.clone());
    let mut notes = Vec::new();
    match provider.state {
        Freshness::Fresh => {}
        Freshness::Stale => notes.push(format!(
            "these numbers were read {age}: `quotatrack status --refresh` reads them now, `quotatrack watch` keeps them fresh"
        )),
        Freshness::RateLimited => {
            let until = provider
                .blocked_until
                .as_deref()
                .and_then(|text| text.parse::<Timestamp>().ok())
                .map(|at| local_time(at, options))
                .unwrap_or_else(|| "later".to_owned());
            let shown = if provider.windows.is_empty() {
                String::new()
            } else {
                format!("; the numbers shown were read {age}")
            };
            notes.push(format!(
                "the provider asked us to wait: the next request goes out at {until}{shown}; nothing to do"
            ));
        }
        Freshness::AuthRequired => notes.push(error.unwrap_or_else(|| "no credentials found: log in with the provider's own tool".to_owned())),
        Freshness::Unavailable => {
            let mut note = error.unwrap_or_else(|| "the provider is failing".to_owned());
            if !provider.windows.is_empty() {
                note.push_str(&format!("; the numbers shown were read {age}"));
            }
            note.push_str("; it is retried with backoff, `quotatrack status --refresh` tries now");
            notes.push(note);
        }
        Freshness::Inactive => notes.push(
            "not tracked: not enabled in the settings (`providers`), or no credentials; `quotatrack credentials` says which"
                .to_owned(),
        ),
        Freshness::Unknown => notes.push("never read: run `quotatrack status --refresh` or `quotatrack watch`".to_owned()),
    }
    if let Some(page) = &provider.status_page {
        if health_word(provider).is_some() {
            let description = page.description.as_deref().unwrap_or(&page.indicator);
            notes.push(format!("status page: {description}"));
        }
    }
    notes
}

/// A time in the options' zone: `14:20` within a day, `Wed 14:20` after.
pub(crate) fn local_time(at: Timestamp, options: &Options) -> String {
    let zoned = at.to_zoned(options.time_zone.get());
    if at.duration_since(options.now).as_secs().abs() < 86_400 {
        zoned.strftime("%H:%M").to_string()
    } else {
        zoned.strftime("%a %H:%M").to_string()
    }
}

/// A bar `width` wide, filled to `ratio`.
fn bar(ratio: f64, width: usize, level: Level, color: bool) -> String {
    let filled = ((ratio.clamp(0.0, 1.0)) * width as f64).round() as usize;
    let filled = filled.min(width);
    format!(
        "{}{}",
        paint(&"█".repeat(filled), level, color),
        style(&"░".repeat(width - filled), "2", color)
    )
}

fn pad(text: &str, width: usize) -> String {
    let visible = visible_width(text);
    format!("{text}{}", " ".repeat(width.saturating_sub(visible)))
}

fn pad_left(text: &str, width: usize) -> String {
    let visible = visible_width(text);
    format!("{}{text}", " ".repeat(width.saturating_sub(visible)))
}

/// `text` in lines of at most `width` characters, broken at spaces (a
/// word longer than a line is cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        let needed = current.chars().count() + usize::from(!current.is_empty()) + word.chars().count();
        if needed > width && !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&truncate(word, width));
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}
