//! The process's terminal, read once: whether stdout is one, how wide it
//! is, and whether colour is wanted (`--color`, `NO_COLOR`). The only part
//! of [`crate::render`] that looks outside its arguments.

use std::io::IsTerminal;

use jiff::Timestamp;

use crate::cli::{ColorChoice, HistoryArgs, Output, StatusArgs, StatuslineArgs};
use crate::render::{Form, Options, Zone};
use crate::settings::Settings;

/// The width when nothing says otherwise.
pub const DEFAULT_WIDTH: usize = 80;
/// The status line's budget when stdout is not a terminal (a bar, a
/// prompt, a pipe): the seven providers fit in it when fresh.
pub const LINE_WIDTH: usize = 120;
/// The columns a status line on the default budget may add when it
/// carries ages: 160 in all, room for seven stale providers.
pub const AGE_ROOM: usize = 40;

/// What the process knows of where its output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terminal {
    /// stdout is a terminal.
    pub is_terminal: bool,
    /// Its width in columns, when known (`COLUMNS`, else the terminal's).
    pub columns: Option<usize>,
    /// `NO_COLOR` is set to something.
    pub no_color: bool,
}

impl Terminal {
    /// Reads stdout and the environment.
    pub fn detect() -> Terminal {
        let is_terminal = std::io::stdout().is_terminal();
        let columns = std::env::var("COLUMNS")
            .ok()
            .and_then(|text| text.trim().parse::<usize>().ok())
            .filter(|columns| *columns > 0)
            .or_else(|| if is_terminal { window_columns() } else { None });
        Terminal {
            is_terminal,
            columns,
            no_color: std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty()),
        }
    }

    /// The width to render at: `--width`, else the terminal's, else
    /// `fallback`.
    pub fn width(&self, explicit: Option<usize>, fallback: usize) -> usize {
        explicit.or(self.columns).unwrap_or(fallback).clamp(20, 1_000)
    }

    /// Whether to colour: `always` and `never` say so; `auto` colours a
    /// terminal unless `NO_COLOR` is set.
    pub fn color(&self, choice: ColorChoice) -> bool {
        match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => self.is_terminal && !self.no_color,
        }
    }
}

/// The terminal's columns from `TIOCGWINSZ` on stdout.
fn window_columns() -> Option<usize> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we own.
    let result = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) };
    (result == 0 && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

/// What `status` prints for its arguments on this process's terminal,
/// and how: the form (`--json`, `--output`, `--line`, `--table`, else the
/// table on a terminal and the line elsewhere) and the options (`--width`,
/// `--color`, the `display.bar` setting, the local time zone).
pub fn status_form(args: &StatusArgs, settings: &Settings, now: Timestamp) -> (Form, Options) {
    let terminal = Terminal::detect();
    let form = match (args.json, args.output, args.line) {
        (true, ..) => Form::Json,
        (_, Some(Output::Waybar), _) => Form::Waybar,
        (_, Some(Output::Tmux), _) => Form::Tmux,
        (_, Some(Output::I3bar), _) => Form::I3bar,
        (_, Some(Output::Prompt), _) => Form::Prompt,
        (_, None, true) => Form::Line,
        (_, None, false) if args.table => Form::Table,
        (_, None, false) if terminal.is_terminal => Form::Table,
        (_, None, false) => Form::Line,
    };
    let fallback = if form == Form::Table { DEFAULT_WIDTH } else { LINE_WIDTH };
    let width = if form == Form::Table || terminal.is_terminal {
        terminal.width(args.width, fallback)
    } else {
        args.width.unwrap_or(fallback)
    };
    let defaulted = args.width.is_none() && !terminal.is_terminal;
    let options = Options {
        now,
        width,
        age_room: if defaulted { AGE_ROOM } else { 0 },
        color: terminal.color(args.color),
        time_zone: Zone::System,
        bar: settings.display.bar,
    };
    (form, options)
}

/// The options of `statusline HOST`: its width, colour only when asked
/// (the host is not a terminal), the `display.bar` setting.
pub fn statusline_options(args: &StatuslineArgs, settings: &Settings, now: Timestamp) -> Options {
    Options {
        now,
        width: args.width.unwrap_or(LINE_WIDTH),
        age_room: if args.width.is_none() { AGE_ROOM } else { 0 },
        color: args.color == ColorChoice::Always,
        time_zone: Zone::System,
        bar: settings.display.bar,
    }
}

/// The options of `history`'s chart: `--width` or the terminal's,
/// `--color`, the local time zone.
pub fn history_options(args: &HistoryArgs, now: Timestamp) -> Options {
    let terminal = Terminal::detect();
    Options {
        now,
        width: terminal.width(args.width, DEFAULT_WIDTH),
        age_room: 0,
        color: terminal.color(args.color),
        time_zone: Zone::System,
        bar: false,
    }
}
