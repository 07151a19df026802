//! The status line: one line, at most one segment per provider.
//!
//! A segment shows the provider's most constraining window (highest used
//! ratio, ties to the sooner reset) with its reset countdown, and a second
//! window only when that one is at or above [`WARN_RATIO`] too:
//!
//! ```text
//! Claude 5h ━━━━━───── 45% ↺2h13m · 7d 91% ↺3d │ Codex 7d 41% ↺4d │ Copilot 38% ↺9d
//! ```
//!
//! Stale values carry their age in brackets (`45% (3m ago)`), rate-limited
//! ones their wait (`⏳ 54m`), missing credentials a hint (`Gemini: login
//! needed`), a status page that is not all-clear its word (`⚠ degraded`).
//!
//! The line is fitted to the width it is given: it drops detail in a fixed
//! order until it fits: the bar, long window names cut to 12 characters,
//! second windows, countdowns and ages told in their largest unit (`↺3d`
//! rather than `↺3d19h`, `(4h ago)` rather than `(4h1m ago)`), names cut to
//! 7, then only short names (`5h`, `7d`), then no names. Only when that is
//! still too wide do the countdowns of stale values go (a rolling window's
//! reset may have moved since it was read; the age is what the reader
//! needs), and last, when every stale provider has the same age, it is told
//! once at the end (`… │ Z.ai 98% │ all (4h ago)`). The percentage, the
//! countdown of a fresh value, an age in its brackets, a wait and a hint are
//! never dropped.
//!
//! Every status line quotatrack prints (`status`, `statusline claude`,
//! `--output tmux|prompt|i3bar|waybar`, `watch`) is made here.

use crate::health::Indicator;
use crate::render::{Level, Options, WARN_RATIO, constrains_more, most_constraining, paint, reset_of, truncate};
use crate::status::relative;
use crate::wire::{Freshness, ProviderStatus, Status, StatusWindow};

/// The line for `view`, fitted to `options.width` when it can be.
pub fn line(view: &Status, options: &Options) -> String {
    let view = &crate::render::clean(view);
    if view.providers.is_empty() {
        return "no usage data yet".to_owned();
    }
    let width = if view.providers.iter().any(shows_age) {
        options.width + options.age_room
    } else {
        options.width
    };
    // What every level of detail shows of each provider, worked out once.
    let facts: Vec<Facts> = view
        .providers
        .iter()
        .map(|provider| Facts::of(provider, options))
        .collect();
    let everyone = vec![false; facts.len()];
    let shown = |detail: Detail, unnamed: &[bool], plain: Vec<String>| {
        if options.color {
            segments(&facts, detail, true, unnamed).join(SEPARATOR)
        } else {
            plain.join(SEPARATOR)
        }
    };
    let mut last = None;
    for detail in Detail::LEVELS {
        if detail.bar && !options.bar {
            continue;
        }
        let plain = segments(&facts, detail, false, &everyone);
        let mut length = columns(&plain);
        if length <= width {
            return shown(detail, &everyone, plain);
        }
        if let Names::Short(_) = detail.names {
            // Before every short name goes, the segments whose names
            // take the most room lose theirs, one at a time.
            let bare = segments(
                &facts,
                Detail {
                    names: Names::None,
                    ..detail
                },
                false,
                &everyone,
            );
            let mut saving: Vec<(usize, usize)> = (0..facts.len())
                .map(|index| {
                    let saved = plain[index].chars().count().saturating_sub(bare[index].chars().count());
                    (saved, index)
                })
                .filter(|(saved, _)| *saved > 0)
                .collect();
            // The first providers (the settings' order) keep theirs longest.
            saving.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
            let mut dropped = everyone.clone();
            let mut mixed = plain.clone();
            for (saved, index) in saving {
                dropped[index] = true;
                mixed[index].clone_from(&bare[index]);
                length -= saved;
                if length <= width {
                    return shown(detail, &dropped, mixed);
                }
            }
        }
        last = Some((detail, plain));
    }
    // Nothing fits: the least detail there is.
    last.map(|(detail, plain)| shown(detail, &everyone, plain))
        .unwrap_or_default()
}

/// Between two segments.
const SEPARATOR: &str = " │ ";

/// The columns `segments` take joined.
fn columns(segments: &[String]) -> usize {
    let separators = segments.len().saturating_sub(1) * SEPARATOR.chars().count();
    segments.iter().map(|segment| segment.chars().count()).sum::<usize>() + separators
}

/// One provider's segment at full detail.
pub fn segment(provider: &ProviderStatus, options: &Options) -> String {
    let single = Status {
        schema: 1,
        stale_after_s: None,
        file_stale_after_s: None,
        generated_at: String::new(),
        providers: vec![provider.clone()],
    };
    let view = crate::render::clean(&single);
    segment_at(
        &Facts::of(&view.providers[0], options),
        Detail::LEVELS[1],
        options.color,
    )
}

/// What a provider's segment can show, at any level of detail: the
/// fitting tries up to ten levels, and each reads these rather than the
/// provider again.
struct Facts<'a> {
    provider: &'a ProviderStatus,
    /// The most constraining window, and the next one at or above
    /// [`WARN_RATIO`]; `None` when no window has a number.
    first: Option<Reading<'a>>,
    second: Option<Reading<'a>>,
    /// Whether the provider has more than one window (and so names them).
    named: bool,
    /// A stale or unavailable value: its age shows, its countdowns may go.
    stale: bool,
    /// How long a rate-limited provider waits before it is asked again.
    wait: Option<i64>,
    /// The status page's word when it is not all-clear.
    health: Option<&'static str>,
}

/// One window as a segment shows it.
struct Reading<'a> {
    window: &'a StatusWindow,
    /// `61%`, before any colour.
    percent: String,
    /// Tenths of the bar that are filled.
    filled: usize,
    /// Seconds until the reset.
    reset_in: Option<i64>,
}

impl<'a> Facts<'a> {
    fn of(provider: &'a ProviderStatus, options: &Options) -> Facts<'a> {
        let reading = |window: &'a StatusWindow| {
            let used = window.used_ratio.unwrap_or(0.0);
            Reading {
                window,
                percent: format!("{}%", (used * 100.0).round()),
                filled: (used * 10.0).round().clamp(0.0, 10.0) as usize,
                reset_in: reset_of(window).map(|at| at.duration_since(options.now).as_secs()),
            }
        };
        let first = most_constraining(provider);
        let second = first.and_then(|first| {
            provider
                .windows
                .iter()
                .filter(|window| !std::ptr::eq(*window, first) && window.used_ratio.is_some_and(|r| r >= WARN_RATIO))
                .fold(None::<&StatusWindow>, |best, window| match best {
                    Some(best) if !constrains_more(window, best) => Some(best),
                    _ => Some(window),
                })
        });
        Facts {
            provider,
            first: first.map(reading),
            second: second.map(reading),
            named: provider.windows.len() > 1,
            stale: matches!(provider.state, Freshness::Stale | Freshness::Unavailable),
            wait: matches!(provider.state, Freshness::RateLimited)
                .then(|| wait_s(provider, options))
                .flatten(),
            health: health_word(provider),
        }
    }
}

/// Which window names a segment shows (only a provider with more than
/// one window names its windows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Names {
    /// Every name in full.
    All,
    /// Every name, cut to this many characters.
    Cut(usize),
    /// Only names of at most this many characters (`5h`, `7d`).
    Short(usize),
    /// None.
    None,
}

/// How much a segment shows.
#[derive(Debug, Clone, Copy)]
struct Detail {
    /// A bar on the first segment.
    bar: bool,
    /// The second window when it is above the threshold.
    second: bool,
    /// Which window names show.
    names: Names,
    /// Countdowns and ages to the minute (`3d19h`, `4h1m`) rather than in
    /// their largest unit (`3d`, `4h`).
    exact: bool,
    /// Countdowns on stale values.
    stale_resets: bool,
    /// One age for the whole line (`│ all (4h ago)`) when every stale
    /// provider has the same.
    shared_age: bool,
}

impl Detail {
    const fn new(bar: bool, second: bool, names: Names, exact: bool) -> Detail {
        Detail {
            bar,
            second,
            names,
            exact,
            stale_resets: true,
            shared_age: false,
        }
    }

    /// From the most to the least detail; the first that fits is shown.
    const LEVELS: [Detail; 10] = [
        Detail::new(true, true, Names::All, true),
        Detail::new(false, true, Names::All, true),
        Detail::new(false, true, Names::Cut(12), true),
        Detail::new(false, false, Names::Cut(12), true),
        Detail::new(false, false, Names::Cut(12), false),
        Detail::new(false, false, Names::Cut(7), false),
        Detail::new(false, false, Names::Short(3), false),
        Detail::new(false, false, Names::None, false),
        Detail {
            stale_resets: false,
            ..Detail::new(false, false, Names::None, false)
        },
        Detail {
            stale_resets: false,
            shared_age: true,
            ..Detail::new(false, false, Names::None, false)
        },
    ];

    /// A duration as this detail tells it.
    fn duration(self, seconds: i64) -> String {
        if self.exact {
            relative(seconds)
        } else {
            largest_unit(seconds)
        }
    }
}

/// A duration in its largest unit, rounded down: `45m`, `4h`, `3d`
/// (`now` when past).
fn largest_unit(seconds: i64) -> String {
    match seconds {
        ..=0 => "now".to_owned(),
        1..3_600 => format!("{}m", seconds / 60),
        3_600..86_400 => format!("{}h", seconds / 3_600),
        _ => format!("{}d", seconds / 86_400),
    }
}

/// The segments of the line at `detail`, without window names on the
/// providers `unnamed` marks (and the shared age last, when it is told).
fn segments(facts: &[Facts], detail: Detail, color: bool, unnamed: &[bool]) -> Vec<String> {
    let shared_age = detail.shared_age.then(|| shared_age(facts, detail)).flatten();
    let mut segments: Vec<String> = facts
        .iter()
        .enumerate()
        .map(|(index, facts)| {
            let detail = Detail {
                bar: detail.bar && index == 0,
                shared_age: shared_age.is_some(),
                names: if unnamed.get(index) == Some(&true) {
                    Names::None
                } else {
                    detail.names
                },
                ..detail
            };
            segment_at(facts, detail, color)
        })
        .collect();
    if let Some(age) = shared_age {
        segments.push(format!("all ({age} ago)"));
    }
    segments
}

/// Whether a segment ends with the provider's age.
fn shows_age(provider: &ProviderStatus) -> bool {
    matches!(provider.state, Freshness::Stale | Freshness::Unavailable)
        && !provider.windows.is_empty()
        && provider.age_s.is_some()
}

/// The age every stale provider shares as `detail` tells it, when there
/// are at least two and they share one.
fn shared_age(facts: &[Facts], detail: Detail) -> Option<String> {
    let mut ages = facts
        .iter()
        .map(|facts| facts.provider)
        .filter(|provider| shows_age(provider))
        .map(|provider| detail.duration(provider.age_s.unwrap_or(0) as i64));
    let first = ages.next()?;
    let mut count = 1;
    for age in ages {
        if age != first {
            return None;
        }
        count += 1;
    }
    (count > 1).then_some(first)
}

fn segment_at(facts: &Facts, detail: Detail, color: bool) -> String {
    let provider = facts.provider;
    let label = &provider.label;
    let mut text = match (provider.state, provider.windows.is_empty()) {
        (Freshness::AuthRequired, _) => format!("{label}: login needed"),
        (Freshness::Inactive, _) => format!("{label}: off"),
        (Freshness::Unknown, true) => format!("{label}: no data"),
        (Freshness::Unavailable, true) => format!("{label}: unavailable"),
        (Freshness::RateLimited, true) => format!("{label}: rate limited"),
        (_, true) => format!("{label}: no windows"),
        (_, false) => windows_text(facts, detail, color),
    };
    match provider.state {
        _ if shows_age(provider) => {
            if let (Some(age), false) = (provider.age_s, detail.shared_age) {
                text.push_str(" (");
                text.push_str(&detail.duration(age as i64));
                text.push_str(" ago)");
            }
        }
        Freshness::RateLimited => {
            if let Some(wait) = facts.wait {
                text.push_str(" ⏳ ");
                text.push_str(&detail.duration(wait));
            }
        }
        _ => {}
    }
    if let Some(word) = facts.health {
        text.push_str(" ⚠ ");
        text.push_str(word);
    }
    text
}

fn windows_text(facts: &Facts, detail: Detail, color: bool) -> String {
    let provider = facts.provider;
    let mut text = provider.label.clone();
    text.push(' ');
    let Some(first) = &facts.first else {
        // Every window's reset has passed: its numbers are unknown.
        push_name(&mut text, &provider.windows[0], detail, facts.named);
        text.push('?');
        return text;
    };
    push_reading(&mut text, first, detail, facts.named, facts.stale, color);
    if let Some(second) = facts.second.as_ref().filter(|_| detail.second) {
        text.push_str(" · ");
        let detail = Detail { bar: false, ..detail };
        push_reading(&mut text, second, detail, true, facts.stale, color);
    }
    text
}

/// The window's name and a space, when `detail` shows it.
fn push_name(text: &mut String, window: &StatusWindow, detail: Detail, named: bool) {
    match detail.names {
        _ if !named => return,
        Names::All => text.push_str(&window.id),
        Names::Cut(width) => text.push_str(&truncate(&window.id, width)),
        Names::Short(width) if window.id.chars().count() <= width => text.push_str(&window.id),
        Names::Short(_) | Names::None => return,
    }
    text.push(' ');
}

/// One window: its name, the bar, the percentage and the countdown.
fn push_reading(text: &mut String, reading: &Reading, detail: Detail, named: bool, stale: bool, color: bool) {
    push_name(text, reading.window, detail, named);
    if detail.bar {
        for _ in 0..reading.filled {
            text.push('━');
        }
        for _ in reading.filled..10 {
            text.push('─');
        }
        text.push(' ');
    }
    if color {
        text.push_str(&paint(&reading.percent, Level::of(reading.window.used_ratio), true));
    } else {
        text.push_str(&reading.percent);
    }
    if let Some(seconds) = reading.reset_in.filter(|_| !stale || detail.stale_resets) {
        text.push_str(" ↺");
        text.push_str(&detail.duration(seconds));
    }
}

/// Seconds until a rate-limited provider may be asked again (0 when past).
fn wait_s(provider: &ProviderStatus, options: &Options) -> Option<i64> {
    let until: jiff::Timestamp = provider.blocked_until.as_deref()?.parse().ok()?;
    Some(until.duration_since(options.now).as_secs().max(0))
}

/// The status page's word when it is not all-clear.
pub(crate) fn health_word(provider: &ProviderStatus) -> Option<&'static str> {
    provider
        .status_page
        .as_ref()
        .and_then(|page| Indicator::parse(&page.indicator))
        .and_then(Indicator::word)
}
