//! Ready formats for the places a status line lives: Waybar's custom
//! module JSON, tmux's status bar, i3bar blocks and shell prompts
//! (starship, PS1). Each reads the same view as `status` (the snapshot
//! file), so each costs what `status` costs.

use serde_json::json;

use crate::render::line::{line, segment};
use crate::render::table::table;
use crate::render::{Level, Options, most_constraining};
use crate::wire::{Freshness, ProviderStatus, Status};

/// The tooltip table's width.
const TOOLTIP_WIDTH: usize = 80;

/// Waybar's custom module JSON (`return-type: json`): `text` the status
/// line, `tooltip` the table, `class` the worst threshold reached
/// (`ok`, `warning`, `critical`, `unknown` when no window has a number),
/// `percentage` the highest used share in whole percent. Both texts are
/// escaped for Pango markup.
pub fn waybar(view: &Status, options: &Options) -> String {
    let plain = Options {
        color: false,
        ..options.clone()
    };
    let tooltip = table(
        view,
        &Options {
            width: TOOLTIP_WIDTH,
            ..plain.clone()
        },
    );
    let (level, percentage) = worst(view);
    json!({
        "text": pango(&line(view, &plain)),
        "tooltip": pango(tooltip.trim_end()),
        "class": level.class(),
        "percentage": percentage,
    })
    .to_string()
}

/// The status line with tmux colour codes (`#[fg=red]91%#[default]`);
/// a `#` in the text is doubled so tmux prints it.
pub fn tmux(view: &Status, options: &Options) -> String {
    let colored = line(
        view,
        &Options {
            color: true,
            ..options.clone()
        },
    );
    ansi_to_tmux(&colored.replace('#', "##"))
}

/// One i3bar block per provider, as a JSON array (the body of one
/// status update of the i3bar protocol): `full_text` the provider's
/// segment, `short_text` its most constraining share, `color` by
/// threshold, `name` `quotatrack` and `instance` the provider id.
pub fn i3bar(view: &Status, options: &Options) -> String {
    let plain = Options {
        color: false,
        ..options.clone()
    };
    let blocks: Vec<serde_json::Value> = view
        .providers
        .iter()
        .map(|provider| {
            let level = provider_level(provider);
            let short = most_constraining(provider)
                .and_then(|window| window.used_ratio)
                .map_or_else(
                    || provider.label.clone(),
                    |ratio| format!("{} {}%", provider.label, (ratio * 100.0).round()),
                );
            let mut block = json!({
                "name": "quotatrack",
                "instance": provider.id.as_str(),
                "full_text": segment(provider, &plain),
                "short_text": short,
                "urgent": level == Level::Critical,
            });
            if let Some(color) = hex(level) {
                block["color"] = json!(color);
            }
            block
        })
        .collect();
    serde_json::Value::Array(blocks).to_string()
}

/// Bare text for a prompt: the status line, no colour (the prompt's own
/// styling colours it).
pub fn prompt(view: &Status, options: &Options) -> String {
    line(
        view,
        &Options {
            color: false,
            ..options.clone()
        },
    )
}

/// The worst level over every window of every provider, and the highest
/// used share in whole percent.
fn worst(view: &Status) -> (Level, u32) {
    let mut level = Level::Unknown;
    let mut highest: f64 = 0.0;
    for provider in &view.providers {
        level = level.max(provider_level(provider));
        for ratio in provider.windows.iter().filter_map(|window| window.used_ratio) {
            highest = highest.max(ratio);
        }
    }
    (level, (highest.clamp(0.0, 1.0) * 100.0).round() as u32)
}

/// A provider's level: its most constraining window's, critical when it
/// needs a login.
fn provider_level(provider: &ProviderStatus) -> Level {
    if provider.state == Freshness::AuthRequired {
        return Level::Critical;
    }
    Level::of(most_constraining(provider).and_then(|window| window.used_ratio))
}

fn hex(level: Level) -> Option<&'static str> {
    match level {
        Level::Unknown => None,
        Level::Ok => Some("#a3be8c"),
        Level::Warning => Some("#ebcb8b"),
        Level::Critical => Some("#bf616a"),
    }
}

/// Escapes `&`, `<` and `>` for Pango markup.
fn pango(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Rewrites the ANSI codes [`crate::render::style`] writes as tmux's.
fn ansi_to_tmux(text: &str) -> String {
    text.replace("\x1b[0m", "#[default]")
        .replace("\x1b[31m", "#[fg=red]")
        .replace("\x1b[32m", "#[fg=green]")
        .replace("\x1b[33m", "#[fg=yellow]")
        .replace("\x1b[2m", "#[dim]")
        .replace("\x1b[1m", "#[bold]")
}
