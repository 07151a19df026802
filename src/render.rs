//! What a person (or a bar, or a prompt) sees of a status view: the table
//! `status` prints on a terminal, the one-line status line, and the ready
//! formats for Waybar, tmux, i3bar and shell prompts.
//!
//! Every renderer is a pure function of a [`Status`], a clock reading and
//! [`Options`] (width, colour, time zone), so the same snapshot always
//! renders the same text and tests pin it with snapshots. Only
//! [`terminal`] looks at the process (is stdout a terminal, how wide,
//! `NO_COLOR`), and the `status` command ([`status_text`]) puts the two
//! together.
//!
//! Thresholds are one scale everywhere: a window at or above
//! [`WARN_RATIO`] used is a warning (yellow, Waybar class `warning`), at or
//! above [`CRITICAL_RATIO`] critical (red, `critical`).

pub mod history;
pub mod integrations;
pub mod line;
pub mod table;
pub mod terminal;

use std::borrow::Cow;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::footer::{self, FooterError};
use crate::providers::ProviderId;
use crate::wire::{ProviderStatus, Status, StatusWindow};

/// A used ratio at or above this is a warning.
pub const WARN_RATIO: f64 = 0.7;
/// A used ratio at or above this is critical.
pub const CRITICAL_RATIO: f64 = 0.9;

/// How to render.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The clock reading countdowns and ages are measured from.
    pub now: Timestamp,
    /// The columns the output may use.
    pub width: usize,
    /// Columns the status line may take beyond `width` when it carries
    /// ages: nothing when a width was asked for, [`terminal::AGE_ROOM`] on
    /// the default budget (120 fresh, 160 stale).
    pub age_room: usize,
    /// ANSI colour.
    pub color: bool,
    /// Where local times (`runs out 14:20`) are told.
    pub time_zone: Zone,
    /// A progress bar on the status line's first segment, when it fits
    /// (the `display.bar` setting).
    pub bar: bool,
}

impl Options {
    /// Plain text at `width` columns, times in UTC.
    pub fn plain(now: Timestamp, width: usize) -> Options {
        Options {
            now,
            width,
            age_room: 0,
            color: false,
            time_zone: Zone::Fixed(TimeZone::UTC),
            bar: true,
        }
    }
}

/// The time zone clock times are shown in. The system's is looked up only
/// when a clock time is shown, once per process: finding it lists the
/// zoneinfo database, which would cost a status line that shows only
/// countdowns a third of its start-up.
#[derive(Debug, Clone, PartialEq)]
pub enum Zone {
    /// The system's (`TZ`, else `/etc/localtime`).
    System,
    /// This one.
    Fixed(TimeZone),
}

impl Zone {
    /// The time zone itself.
    pub fn get(&self) -> TimeZone {
        static SYSTEM: std::sync::OnceLock<TimeZone> = std::sync::OnceLock::new();
        match self {
            Zone::System => SYSTEM.get_or_init(TimeZone::system).clone(),
            Zone::Fixed(zone) => zone.clone(),
        }
    }
}

/// How full a window is, on the one scale of every renderer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// No number to judge.
    Unknown,
    /// Below [`WARN_RATIO`].
    Ok,
    /// From [`WARN_RATIO`].
    Warning,
    /// From [`CRITICAL_RATIO`].
    Critical,
}

impl Level {
    /// The level of a used ratio.
    pub fn of(used_ratio: Option<f64>) -> Level {
        match used_ratio {
            None => Level::Unknown,
            Some(ratio) if ratio >= CRITICAL_RATIO => Level::Critical,
            Some(ratio) if ratio >= WARN_RATIO => Level::Warning,
            Some(_) => Level::Ok,
        }
    }

    /// Waybar's `class` and the i3bar block's name suffix.
    pub fn class(self) -> &'static str {
        match self {
            Level::Unknown => "unknown",
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Critical => "critical",
        }
    }

    /// The ANSI colour code.
    fn ansi(self) -> &'static str {
        match self {
            Level::Unknown => "2",
            Level::Ok => "32",
            Level::Warning => "33",
            Level::Critical => "31",
        }
    }
}

/// `text` in the colour of `level`, when colour is on.
pub fn paint(text: &str, level: Level, color: bool) -> String {
    style(text, level.ansi(), color)
}

/// `text` wrapped in the ANSI code `code` (`1` bold, `2` dim, `31` red …)
/// when colour is on.
pub fn style(text: &str, code: &str, color: bool) -> String {
    if color && !text.is_empty() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// The window that constrains a provider most: the highest used ratio,
/// ties to the sooner reset (a window without a reset time last). `None`
/// when no window has a number.
pub fn most_constraining(provider: &ProviderStatus) -> Option<&StatusWindow> {
    let mut best: Option<&StatusWindow> = None;
    for window in provider.windows.iter().filter(|window| window.used_ratio.is_some()) {
        best = match best {
            Some(current) if !constrains_more(window, current) => Some(current),
            _ => Some(window),
        };
    }
    best
}

/// Whether `a` constrains more than `b`.
pub(crate) fn constrains_more(a: &StatusWindow, b: &StatusWindow) -> bool {
    let (ratio_a, ratio_b) = (a.used_ratio.unwrap_or(-1.0), b.used_ratio.unwrap_or(-1.0));
    if (ratio_a - ratio_b).abs() > 1e-9 {
        return ratio_a > ratio_b;
    }
    match (reset_of(a), reset_of(b)) {
        (Some(reset_a), Some(reset_b)) => reset_a < reset_b,
        (Some(_), None) => true,
        _ => false,
    }
}

/// A window's reset time, parsed.
pub(crate) fn reset_of(window: &StatusWindow) -> Option<Timestamp> {
    window.resets_at.as_deref().and_then(|text| text.parse().ok())
}

/// Puts the providers of `view` in the order of `order` (the settings'
/// `providers`); providers it does not name keep their order, after them.
pub fn order_by(view: &mut Status, order: &[ProviderId]) {
    let rank = |id: ProviderId| order.iter().position(|wanted| *wanted == id).unwrap_or(order.len());
    view.providers.sort_by_key(|provider| rank(provider.id));
}

/// What `status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The table (a terminal's default).
    Table,
    /// The status line (the default elsewhere).
    Line,
    /// One JSON object, the contract's format.
    Json,
    /// Waybar's custom-module JSON.
    Waybar,
    /// The status line with tmux colour codes.
    Tmux,
    /// An i3bar block array.
    I3bar,
    /// Bare text for a shell prompt.
    Prompt,
}

/// The `status` command's text for `view`: a `--format` template wins,
/// then the form asked for.
pub fn status_text(
    view: &Status,
    form: Form,
    template: Option<&str>,
    options: &Options,
) -> Result<String, StatusTextError> {
    if let Some(template) = template {
        return Ok(footer::render(template, view, options.now)?);
    }
    Ok(match form {
        Form::Table => table::table(view, options),
        Form::Line => line::line(view, options),
        Form::Json => serde_json::to_string(view)?,
        Form::Waybar => integrations::waybar(view, options),
        Form::Tmux => integrations::tmux(view, options),
        Form::I3bar => integrations::i3bar(view, options),
        Form::Prompt => integrations::prompt(view, options),
    })
}

/// Why `status` could not render.
#[derive(Debug, thiserror::Error)]
pub enum StatusTextError {
    /// The `--format` template is wrong.
    #[error(transparent)]
    Footer(#[from] FooterError),
    /// The view could not be written as JSON.
    #[error("cannot write the status as json: {0}")]
    Json(#[from] serde_json::Error),
}

/// `view` with every text that came from a provider or a status page
/// (labels, window ids and labels, error messages, page descriptions)
/// stripped of control characters, each replaced by a space: a hostile
/// response can neither break a line nor drive the terminal through any
/// renderer. The renderers call it first. A view with nothing to strip,
/// the usual one, is not copied.
pub fn clean(view: &Status) -> Cow<'_, Status> {
    let texts = |provider: &ProviderStatus| {
        let windows = provider.windows.iter().flat_map(|window| [&window.id, &window.label]);
        let page = provider
            .status_page
            .iter()
            .flat_map(|page| [Some(&page.indicator), page.description.as_ref()]);
        std::iter::once(&provider.label)
            .chain(provider.plan.as_ref())
            .chain(windows)
            .chain(provider.error.as_ref().map(|error| &error.message))
            .chain(page.flatten())
            .any(|text| text.chars().any(char::is_control))
    };
    if !view.providers.iter().any(texts) {
        return Cow::Borrowed(view);
    }
    let plain = |text: &mut String| {
        if text.chars().any(char::is_control) {
            *text = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        }
    };
    let mut view = view.clone();
    for provider in &mut view.providers {
        plain(&mut provider.label);
        if let Some(plan) = &mut provider.plan {
            plain(plan);
        }
        for window in &mut provider.windows {
            plain(&mut window.window.id);
            plain(&mut window.window.label);
        }
        if let Some(error) = &mut provider.error {
            plain(&mut error.message);
        }
        if let Some(page) = &mut provider.status_page {
            plain(&mut page.indicator);
            if let Some(description) = &mut page.description {
                plain(description);
            }
        }
    }
    Cow::Owned(view)
}

/// The characters `text` takes on a terminal, escape codes not counted
/// (every character is taken as one column wide).
pub fn visible_width(text: &str) -> usize {
    let mut width = 0;
    let mut in_escape = false;
    for character in text.chars() {
        match (in_escape, character) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => width += 1,
        }
    }
    width
}

/// `text` cut to `width` characters, the last one `…` when cut.
pub fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('…');
    cut
}
