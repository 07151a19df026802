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
//! Stale values carry their age (`45% (3m ago)`), rate-limited ones their
//! wait (`⏳ 54m`), missing credentials a hint (`Gemini: login needed`), a
//! status page that is not all-clear its word (`⚠ degraded`).
//!
//! The line is fitted to the width it is given: it drops detail in a fixed
//! order until it fits (the bar, then long window names, then second
//! windows, then long window names, then countdowns a day or more away,
//! then every window name), and
//! never drops an age, a wait or a hint (in the tightest form an age loses
//! its brackets).

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
    let mut last = String::new();
    for detail in Detail::LEVELS {
        if detail.bar && !options.bar {
            continue;
        }
        let plain = render(view, options, detail, false);
        last = if options.color {
            render(view, options, detail, true)
        } else {
            plain.clone()
        };
        if plain.chars().count() <= options.width {
            break;
        }
    }
    last
}

/// One provider's segment at full detail.
pub fn segment(provider: &ProviderStatus, options: &Options) -> String {
    let view = crate::render::clean(&Status {
        schema: 1,
        stale_after_s: None,
        file_stale_after_s: None,
        generated_at: String::new(),
        providers: vec![provider.clone()],
    });
    segment_at(&view.providers[0], options, Detail::LEVELS[1], options.color)
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
    /// Countdowns to resets a day or more away.
    long_resets: bool,
    /// Ages in brackets (`(3m ago)`) rather than bare (`3m ago`).
    bracketed_age: bool,
}

impl Detail {
    const LEVELS: [Detail; 9] = [
        Detail {
            bar: true,
            second: true,
            names: Names::All,
            long_resets: true,
            bracketed_age: true,
        },
        Detail {
            bar: false,
            second: true,
            names: Names::All,
            long_resets: true,
            bracketed_age: true,
        },
        Detail {
            bar: false,
            second: true,
            names: Names::Cut(10),
            long_resets: true,
            bracketed_age: true,
        },
        Detail {
            bar: false,
            second: false,
            names: Names::Cut(10),
            long_resets: true,
            bracketed_age: true,
        },
        Detail {
            bar: false,
            second: false,
            names: Names::Short(3),
            long_resets: true,
            bracketed_age: true,
        },
        Detail {
            bar: false,
            second: false,
            names: Names::Short(3),
            long_resets: false,
            bracketed_age: true,
        },
        Detail {
            bar: false,
            second: false,
            names: Names::None,
            long_resets: true,
            bracketed_age: true,
        },
        Detail {
            bar: false,
            second: false,
            names: Names::None,
            long_resets: false,
            bracketed_age: true,
        },
        Detail {
            bar: false,
            second: false,
            names: Names::None,
            long_resets: false,
            bracketed_age: false,
        },
    ];
}

fn render(view: &Status, options: &Options, detail: Detail, color: bool) -> String {
    let segments: Vec<String> = view
        .providers
        .iter()
        .enumerate()
        .map(|(index, provider)| {
            let detail = Detail {
                bar: detail.bar && index == 0,
                ..detail
            };
            segment_at(provider, options, detail, color)
        })
        .collect();
    segments.join(" │ ")
}

fn segment_at(provider: &ProviderStatus, options: &Options, detail: Detail, color: bool) -> String {
    let label = &provider.label;
    let mut text = match (provider.state, provider.windows.is_empty()) {
        (Freshness::AuthRequired, _) => format!("{label}: login needed"),
        (Freshness::Inactive, _) => format!("{label}: off"),
        (Freshness::Unknown, true) => format!("{label}: no data"),
        (Freshness::Unavailable, true) => format!("{label}: unavailable"),
        (Freshness::RateLimited, true) => format!("{label}: rate limited"),
        (_, true) => format!("{label}: no windows"),
        (_, false) => windows_text(provider, options, detail, color),
    };
    match provider.state {
        Freshness::Stale | Freshness::Unavailable if !provider.windows.is_empty() => {
            if let Some(age) = provider.age_s {
                let age = relative(age as i64);
                if detail.bracketed_age {
                    text.push_str(&format!(" ({age} ago)"));
                } else {
                    text.push_str(&format!(" {age} ago"));
                }
            }
        }
        Freshness::RateLimited => {
            if let Some(wait) = wait_s(provider, options) {
                text.push_str(&format!(" ⏳ {}", relative(wait)));
            }
        }
        _ => {}
    }
    if let Some(word) = health_word(provider) {
        text.push_str(&format!(" ⚠ {word}"));
    }
    text
}

fn windows_text(provider: &ProviderStatus, options: &Options, detail: Detail, color: bool) -> String {
    let named = provider.windows.len() > 1;
    let Some(first) = most_constraining(provider) else {
        // Every window's reset has passed: its numbers are unknown.
        let window = &provider.windows[0];
        let name = name_of(window, detail, named);
        return format!("{} {name}?", provider.label);
    };
    let mut text = format!(
        "{} {}",
        provider.label,
        window_text(first, options, detail, named, color)
    );
    if detail.second {
        let second = provider
            .windows
            .iter()
            .filter(|window| !std::ptr::eq(*window, first) && window.used_ratio.is_some_and(|r| r >= WARN_RATIO))
            .fold(None::<&StatusWindow>, |best, window| match best {
                Some(best) if !constrains_more(window, best) => Some(best),
                _ => Some(window),
            });
        if let Some(second) = second {
            let detail = Detail { bar: false, ..detail };
            text.push_str(&format!(" · {}", window_text(second, options, detail, true, color)));
        }
    }
    text
}

fn name_of(window: &StatusWindow, detail: Detail, named: bool) -> String {
    match detail.names {
        _ if !named => String::new(),
        Names::All => format!("{} ", window.id),
        Names::Cut(width) => format!("{} ", truncate(&window.id, width)),
        Names::Short(width) if window.id.chars().count() <= width => format!("{} ", window.id),
        Names::Short(_) | Names::None => String::new(),
    }
}

fn window_text(window: &StatusWindow, options: &Options, detail: Detail, named: bool, color: bool) -> String {
    let name = name_of(window, detail, named);
    let used = window.used_ratio.unwrap_or(0.0);
    let bar = if detail.bar {
        let filled = (used * 10.0).round().clamp(0.0, 10.0) as usize;
        format!("{}{} ", "━".repeat(filled), "─".repeat(10 - filled))
    } else {
        String::new()
    };
    let percent = paint(
        &format!("{}%", (used * 100.0).round()),
        Level::of(window.used_ratio),
        color,
    );
    let reset = reset_of(window)
        .map(|at| at.duration_since(options.now).as_secs())
        .filter(|seconds| detail.long_resets || *seconds < 86_400)
        .map(|seconds| format!(" ↺{}", relative(seconds)))
        .unwrap_or_default();
    format!("{name}{bar}{percent}{reset}")
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
