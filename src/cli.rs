//! The command line's argument types (clap derive), with no I/O. Turning
//! them into work is the binary's job (`src/bin/quotatrack.rs`).

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};

use crate::providers::ProviderId;

/// quotatrack: how much of each AI-coding subscription is left.
#[derive(Debug, Parser)]
#[command(name = "quotatrack", version, about, long_about = None)]
pub struct Args {
    /// The options every command takes.
    #[command(flatten)]
    pub globals: Globals,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The options every command takes (before or after the command's name).
#[derive(Debug, Clone, ClapArgs)]
pub struct Globals {
    /// Where the log, checkpoints and snapshot live.
    #[arg(long, global = true, env = "QUOTATRACK_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Settings file (TOML).
    #[arg(long, global = true, env = "QUOTATRACK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Offline mode: serve recorded exchanges from DIR/PROVIDER/*.json.
    #[arg(long, global = true, value_name = "DIR")]
    pub fixtures: Option<PathBuf>,
    /// The bound on one provider request, in seconds (more than 0, at most 300).
    #[arg(long, global = true, env = "QUOTATRACK_TIMEOUT", value_name = "SECONDS", default_value_t = DEFAULT_TIMEOUT_S,
          value_parser = parse_timeout, allow_negative_numbers = true)]
    pub timeout: f64,
    /// Run as if the clock read this many seconds later (for tests of the
    /// real binary across long waits).
    #[arg(
        long,
        global = true,
        hide = true,
        value_name = "SECONDS",
        default_value_t = 0,
        allow_hyphen_values = true,
        value_parser = parse_now_offset
    )]
    pub now_offset: i64,
    /// Run with the clock stopped at this time (for transcript tests of the
    /// real binary).
    #[arg(long, global = true, hide = true, value_name = "TIME")]
    pub clock_at: Option<jiff::Timestamp>,
    /// Read the clock from this file (one RFC 3339 time) at every reading
    /// (for tests that move the clock of several real processes).
    #[arg(long, global = true, hide = true, value_name = "FILE")]
    pub clock_file: Option<PathBuf>,
}

/// What the `quotatrack` program answers by itself, without starting the
/// engine: `status` read from the snapshot and a host's `statusline`, the
/// commands status lines and prompts run again and again. The same options
/// and the same arguments as [`Args`], so what parses here means what it
/// means there; anything else (another command, `--help`, a usage error)
/// goes to `quotatrack-engine`, which parses the full command line.
#[derive(Debug, Parser)]
#[command(name = "quotatrack")]
pub struct FrontArgs {
    /// The options every command takes.
    #[command(flatten)]
    pub globals: Globals,
    /// The command.
    #[command(subcommand)]
    pub command: FrontCommand,
}

impl FrontArgs {
    /// The command lines status lines and prompts run again and again,
    /// read without building clap's parser (a fifth of `status`'s run):
    /// `status` or `statusline claude` with nothing after it, preceded by
    /// any of `--data-dir DIR`, `--config FILE` and `--clock-at TIME`,
    /// each at most once, as two words or joined by `=`. `env` reads the
    /// environment.
    ///
    /// `None` for anything else, which clap then reads and answers the
    /// same way: another option or form, a value clap would refuse (empty,
    /// starting with `-`, not a time), `QUOTATRACK_TIMEOUT` set (clap
    /// checks it), or `QUOTATRACK_DATA_DIR` or `QUOTATRACK_CONFIG` set
    /// empty (clap refuses that even when the line gives the option).
    pub fn plain(argv: &[OsString], env: impl Fn(&str) -> Option<OsString>) -> Option<FrontArgs> {
        let mut globals = Globals {
            data_dir: None,
            config: None,
            fixtures: None,
            timeout: DEFAULT_TIMEOUT_S,
            now_offset: 0,
            clock_at: None,
            clock_file: None,
        };
        let mut words = argv.iter().skip(1);
        let command = loop {
            let word = words.next()?.to_str()?;
            if word == "status" || word == "statusline" {
                break word;
            }
            let (name, value) = match word.split_once('=') {
                Some((name, value)) => (name, OsString::from(value)),
                None => (word, words.next()?.clone()),
            };
            if value.is_empty() || value.as_encoded_bytes().starts_with(b"-") {
                return None;
            }
            match name {
                "--data-dir" if globals.data_dir.is_none() => globals.data_dir = Some(value.into()),
                "--config" if globals.config.is_none() => globals.config = Some(value.into()),
                "--clock-at" if globals.clock_at.is_none() => globals.clock_at = Some(value.to_str()?.parse().ok()?),
                _ => return None,
            }
        };
        if env("QUOTATRACK_TIMEOUT").is_some() {
            return None;
        }
        for (slot, name) in [
            (&mut globals.data_dir, "QUOTATRACK_DATA_DIR"),
            (&mut globals.config, "QUOTATRACK_CONFIG"),
        ] {
            match env(name) {
                // Refused by clap even for an option the line gives.
                Some(value) if value.is_empty() => return None,
                Some(value) if slot.is_none() => *slot = Some(PathBuf::from(value)),
                _ => {}
            }
        }
        let command = match (command, words.next()) {
            ("status", None) => FrontCommand::Status(StatusArgs {
                refresh: false,
                format: None,
                json: false,
                providers: Vec::new(),
                line: false,
                table: false,
                output: None,
                color: ColorChoice::Auto,
                width: None,
            }),
            ("statusline", Some(host)) if host == "claude" && words.next().is_none() => {
                FrontCommand::Statusline(StatuslineArgs {
                    host: Host::Claude,
                    width: None,
                    color: ColorChoice::Never,
                })
            }
            _ => return None,
        };
        Some(FrontArgs { globals, command })
    }
}

/// The commands [`FrontArgs`] knows.
#[derive(Debug, Subcommand)]
pub enum FrontCommand {
    /// Print the current view from the snapshot file.
    Status(StatusArgs),
    /// A host's status-line command.
    Statusline(StatuslineArgs),
}

/// The commands. Each one's arguments are built only when it runs (or
/// help, completions or the man page need them): building every
/// command's arguments cost a short `status` an eighth of its run.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Print the current view from the snapshot file (no network, no log).
    Status(StatusArgs),
    /// Parse one recorded provider response (see parse-contract.md).
    Parse(ParseArgs),
    /// Inspect or move the event log.
    Log(LogArgs),
    /// Print the store, folded from the log, as a table.
    Store(JsonArgs),
    /// Re-drive a recorded log through the current machines and parsers and
    /// report the first divergence (exit 1) or none (exit 0).
    Replay(ReplayArgs),
    /// Run the engine over the bundled fixtures with a virtual clock and
    /// print what a user would have seen.
    Demo(DemoArgs),
    /// Run the engine in the foreground, printing the status line after
    /// every update (or, with --json, the `status --json` object, one per
    /// line), until interrupted.
    Watch(WatchArgs),
    /// Perform PROVIDER's real usage request with your credentials and write
    /// the redacted exchange as a fixture (for a bug report).
    Record(RecordArgs),
    /// Show where each provider's credentials come from, or why there are none.
    Credentials(JsonArgs),
    /// Serve the embedding protocol: host events in, engine events out.
    Serve(ServeArgs),
    /// Usage over time from the log: a chart per window, resets marked,
    /// with a summary; or the series as JSON or CSV.
    History(HistoryArgs),
    /// Print shell completions (bash, zsh, fish, powershell, elvish).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `quotatrack manpage > quotatrack.1`.
    Manpage,
    /// A host's status-line command: `statusline claude` reads Claude
    /// Code's status-line JSON on stdin and prints one line (never fails).
    Statusline(StatuslineArgs),
}

/// The arguments of a command whose only choice is the output's form.
#[derive(Debug, Clone, Copy, ClapArgs)]
pub struct JsonArgs {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `quotatrack watch`.
#[derive(Debug, Clone, Copy, ClapArgs)]
pub struct WatchArgs {
    /// After every update print the `status --json` object on one line
    /// instead of the status line; alerts then go to stderr.
    #[arg(long)]
    pub json: bool,
}

/// `quotatrack history`.
#[derive(Debug, Clone, ClapArgs)]
pub struct HistoryArgs {
    /// Only this provider.
    #[arg(value_parser = parse_provider)]
    pub provider: Option<ProviderId>,
    /// Only this window id (`5h`, `7d`, `premium`).
    #[arg(long, value_name = "ID")]
    pub window: Option<String>,
    /// From this time: RFC 3339, or a duration before now (`7d`, `36h`).
    #[arg(long, value_name = "WHEN", default_value = "7d")]
    pub since: String,
    /// Until this time: RFC 3339, or a duration before now (default: now).
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// One point per this much time, the highest reading of each (`15m`,
    /// `1h`, `1d`; default: the span in about 240 steps).
    #[arg(long, value_name = "DURATION")]
    pub every: Option<String>,
    /// Print the series as one JSON object.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print the series as CSV.
    #[arg(long)]
    pub csv: bool,
    /// Read this exported file (`quotatrack log export` output) instead of the log.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// Draw the chart this many columns wide (default: the terminal's, or 80).
    #[arg(long, value_name = "COLUMNS", value_parser = parse_width)]
    pub width: Option<usize>,
    /// Colour: `auto` colours a terminal unless NO_COLOR is set.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// `quotatrack statusline HOST`.
#[derive(Debug, Clone, ClapArgs)]
pub struct StatuslineArgs {
    /// The host whose status line this is.
    #[arg(value_enum)]
    pub host: Host,
    /// The line's budget in columns (default 120, and 160 when it
    /// carries the ages of stale values).
    #[arg(long, value_name = "COLUMNS", value_parser = parse_width)]
    pub width: Option<usize>,
    /// Colour the shares by threshold (Claude Code shows ANSI colours).
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Never)]
    pub color: ColorChoice,
}

/// A host with a status-line command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Host {
    /// Claude Code (`statusLine` in its settings.json).
    Claude,
}

/// The completion script of `shell` for every command and flag.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    use clap::CommandFactory;
    let mut command = Args::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "quotatrack", &mut out);
    out
}

/// The man page (roff): clap_mangen's page for `quotatrack`, then a
/// COMMANDS section giving every command (and `log`'s subcommands) its
/// usage, description and options, so one page says everything.
pub fn manpage() -> Vec<u8> {
    use clap::CommandFactory;
    let mut root = Args::command();
    root.build();
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = clap_mangen::Man::new(root.clone()).render(&mut out);
    out.extend_from_slice(b".SH COMMANDS\n");
    for command in root.get_subcommands_mut() {
        command_section(command, "quotatrack", &mut out);
    }
    out
}

/// One command's part of the COMMANDS section, then its subcommands'.
fn command_section(command: &mut clap::Command, parent: &str, out: &mut Vec<u8>) {
    if command.is_hide_set() {
        return;
    }
    let name = format!("{parent} {}", command.get_name());
    let usage = command.render_usage().to_string();
    let usage = usage.trim_start_matches("Usage: ");
    let mut text = format!(".SS \"{}\"\n.nf\n{}\n.fi\n", roff(&name), roff(usage));
    if let Some(about) = command.get_long_about().or(command.get_about()) {
        text.push_str(&format!("{}\n", roff(&about.to_string())));
    }
    for argument in command.get_arguments() {
        if argument.is_hide_set() || argument.is_global_set() {
            continue;
        }
        let mut names = Vec::new();
        if let Some(short) = argument.get_short() {
            names.push(format!("\\-{short}"));
        }
        if let Some(long) = argument.get_long() {
            names.push(format!("\\-\\-{}", roff(long)));
        }
        if names.is_empty() {
            names.push(argument.get_id().as_str().to_uppercase());
        }
        let help = argument
            .get_help()
            .map(|help| roff(&help.to_string()))
            .unwrap_or_default();
        text.push_str(&format!(".TP\n\\fB{}\\fR\n{help}\n", names.join(", ")));
    }
    out.extend_from_slice(text.as_bytes());
    for sub in command.get_subcommands_mut() {
        command_section(sub, &name, out);
    }
}

/// `text` escaped for roff: backslashes, dashes, and a leading dot or quote.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    match escaped.chars().next() {
        Some('.' | '\'') => format!("\\&{escaped}"),
        _ => escaped,
    }
}

/// `quotatrack serve`.
#[derive(Debug, ClapArgs)]
pub struct ServeArgs {
    /// JSON lines on stdin and stdout (see the README and
    /// `src/serve-stdio.schema.json`).
    #[arg(long, required_unless_present = "http")]
    pub stdio: bool,
    /// Serve status, history, health and Prometheus metrics over HTTP on
    /// ADDR (`127.0.0.1:9184`; a bare port is on 127.0.0.1).
    #[arg(long, value_name = "ADDR", value_parser = parse_address)]
    pub http: Option<std::net::SocketAddr>,
    /// A file holding the bearer token every HTTP request but `/healthz`
    /// must send; required to serve on an address other than loopback.
    #[arg(long, value_name = "PATH", requires = "http")]
    pub http_token_file: Option<PathBuf>,
}

/// `quotatrack record PROVIDER`.
#[derive(Debug, Clone, ClapArgs)]
pub struct RecordArgs {
    /// The provider to ask.
    pub provider: ProviderId,
    /// Where to write the fixture (default: `PROVIDER-<time>.json` here).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// The shortest and longest `--timeout`, in seconds.
pub const TIMEOUT_RANGE_S: (f64, f64) = (0.1, 300.0);

/// The bound on one provider request when none is given, in seconds.
pub const DEFAULT_TIMEOUT_S: f64 = 5.0;
/// The most `--now-offset` moves the clock either way: ten years, in seconds.
pub const MAX_NOW_OFFSET_S: i64 = 10 * 365 * 86_400;
/// The longest `demo --hours`: a week of virtual time.
pub const MAX_DEMO_HOURS: u32 = 168;
/// The longest `log compact --keep-days`: ten years.
pub const MAX_KEEP_DAYS: u32 = 3650;

fn parse_timeout(text: &str) -> Result<f64, String> {
    let (min, max) = TIMEOUT_RANGE_S;
    match text.trim().parse::<f64>() {
        Ok(seconds) if (min..=max).contains(&seconds) => Ok(seconds),
        _ => Err(format!(
            "the timeout must be a number of seconds from {min} to {max} (e.g. 5 or 0.5), got {text:?}"
        )),
    }
}

fn parse_now_offset(text: &str) -> Result<i64, String> {
    bounded_integer(text, -MAX_NOW_OFFSET_S, MAX_NOW_OFFSET_S, "the clock offset", "seconds")
}

fn parse_demo_hours(text: &str) -> Result<u32, String> {
    bounded_integer(text, 1, MAX_DEMO_HOURS, "the demo's length", "hours")
}

fn parse_keep_days(text: &str) -> Result<u32, String> {
    bounded_integer(text, 0, MAX_KEEP_DAYS, "the retention period", "days")
}

fn parse_sequence(text: &str) -> Result<u64, String> {
    bounded_integer(text, 0, u64::MAX, "a sequence number", "")
}

fn parse_status(text: &str) -> Result<u16, String> {
    bounded_integer(text, 100, 599, "an HTTP status", "")
}

/// A whole number from `min` to `max`, or an error saying so.
fn bounded_integer<T>(text: &str, min: T, max: T, what: &str, unit: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match text.trim().parse::<T>() {
        Ok(value) if value >= min && value <= max => Ok(value),
        _ => {
            let unit = if unit.is_empty() {
                String::new()
            } else {
                format!(" of {unit}")
            };
            Err(format!(
                "{what} must be a whole number{unit} from {min} to {max}, got {text:?}"
            ))
        }
    }
}

/// `quotatrack replay FILE`.
#[derive(Debug, Clone, ClapArgs)]
pub struct ReplayArgs {
    /// A `log export` or an incident file (JSON lines); `-` reads standard input.
    pub file: PathBuf,
    /// Print the store as it was at this time instead of comparing; with
    /// `--why`, the time to explain. RFC 3339 (`2026-08-22T12:10:00Z`), or
    /// a local date and time as the timeline prints it (`2026-08-22 14:10`).
    #[arg(long, value_name = "TIME", value_parser = parse_at)]
    pub at: Option<jiff::Timestamp>,
    /// Print what happened for people (local times, one line per change,
    /// quiet cycles folded) before the verdict.
    #[arg(long, conflicts_with_all = ["reparse", "why"])]
    pub timeline: bool,
    /// Explain why PROVIDER was or was not fetched at `--at`, and what it showed.
    #[arg(long, value_name = "PROVIDER", requires = "at", conflicts_with = "reparse")]
    pub why: Option<crate::providers::ProviderId>,
    /// Read every recorded response body again with today's parsers and
    /// list each reading that now differs (exit 1 when any does).
    #[arg(long, conflicts_with = "at")]
    pub reparse: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `quotatrack demo`.
#[derive(Debug, Clone, ClapArgs)]
pub struct DemoArgs {
    /// Hours of virtual time to run (default: 6 for the demo, the
    /// scenario's own length for an incident).
    #[arg(long, value_parser = parse_demo_hours, allow_negative_numbers = true)]
    pub hours: Option<u32>,
    /// Run a recorded incident's scenario instead of the demo (how
    /// `fixtures/incidents/` is produced; see `tools/record-incidents`).
    #[arg(long, value_name = "NAME")]
    pub scenario: Option<String>,
    /// Print one JSON object: the changes, the final line, the requests.
    #[arg(long)]
    pub json: bool,
}

/// `quotatrack status`.
#[derive(Debug, ClapArgs)]
pub struct StatusArgs {
    /// Fetch what is due first (honouring backoff and Retry-After), then print.
    #[arg(long)]
    pub refresh: bool,
    /// Render a template of footer values instead of the status line,
    /// e.g. "{anthropic.5h.used_percent}% ↺{anthropic.5h.resets_in}".
    #[arg(long, value_name = "TEMPLATE", conflicts_with = "json")]
    pub format: Option<String>,
    /// Print one JSON object (the contract's format).
    #[arg(long)]
    pub json: bool,
    /// Only these providers (repeatable).
    #[arg(long = "provider", value_name = "ID", value_parser = parse_provider)]
    pub providers: Vec<ProviderId>,
    /// Print the one-line status line (the default when stdout is not a
    /// terminal; a terminal gets the table).
    #[arg(long, conflicts_with_all = ["json", "output", "table"])]
    pub line: bool,
    /// Print the table even when stdout is not a terminal.
    #[arg(long, conflicts_with_all = ["json", "output"])]
    pub table: bool,
    /// A ready format for a bar or a prompt.
    #[arg(long, value_enum, value_name = "FORMAT", conflicts_with = "json")]
    pub output: Option<Output>,
    /// Colour: `auto` colours a terminal unless NO_COLOR is set.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Render for this many columns (default: COLUMNS, the terminal's
    /// width, or 120 for the status line elsewhere).
    #[arg(long, value_name = "COLUMNS", value_parser = parse_width)]
    pub width: Option<usize>,
}

/// `status --output`: a ready format for a bar or a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Waybar's custom-module JSON: text, tooltip (the table), class, percentage.
    Waybar,
    /// The status line with tmux colour codes.
    Tmux,
    /// A JSON array of i3bar blocks, one per provider.
    I3bar,
    /// Bare text for starship or PS1.
    Prompt,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour on a terminal, unless NO_COLOR is set.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// The narrowest and widest `--width`.
pub const WIDTH_RANGE: (usize, usize) = (20, 1000);

fn parse_width(text: &str) -> Result<usize, String> {
    bounded_integer(text, WIDTH_RANGE.0, WIDTH_RANGE.1, "the width", "columns")
}

/// `quotatrack log …`.
#[derive(Debug, ClapArgs)]
pub struct LogArgs {
    /// What to do with the log.
    #[command(subcommand)]
    pub command: LogCommand,
    /// Print what the command found as one JSON object (import, verify,
    /// stats, repair, compact; export prints JSON lines already).
    #[arg(long, global = true)]
    pub json: bool,
    /// Show the progress on a terminal once a command has run this long
    /// (for tests of the progress display).
    #[arg(long, hide = true, global = true, value_name = "MS", default_value_t = 1000)]
    pub progress_after_ms: u64,
}

/// The `log` subcommands.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum LogCommand {
    /// Print the log as JSON lines, one event per line, in sequence order.
    Export {
        /// Start at this sequence number.
        #[arg(long, value_name = "SEQ", default_value_t = 0, value_parser = parse_sequence, allow_negative_numbers = true)]
        since: u64,
    },
    /// Append the events of a JSON-lines file to an empty data dir.
    Import {
        /// The file (`-` reads standard input).
        file: PathBuf,
    },
    /// Rebuild the store from the whole log and compare it with the checkpoint.
    Verify,
    /// Event counts by type and provider, size on disk, first and last time.
    Stats,
    /// Rebuild a damaged log from every readable event; the damaged files
    /// are moved aside (never deleted) and what was kept and lost is printed.
    Repair,
    /// Drop fetch bodies older than the retention period, keeping their outcomes.
    Compact {
        /// Keep full events this many days (0 to 3650).
        #[arg(long, default_value_t = 30, value_parser = parse_keep_days, allow_negative_numbers = true)]
        keep_days: u32,
    },
    /// Test aid: append small batches forever (or COUNT times), printing
    /// each batch's last sequence number once it is durable.
    #[command(hide = true)]
    Stress {
        /// Stop after this many batches.
        #[arg(long)]
        count: Option<u64>,
    },
}

/// `quotatrack parse PROVIDER FILE`.
#[derive(Debug, ClapArgs)]
pub struct ParseArgs {
    /// anthropic, antigravity, codex, copilot, gemini, kiro or zai.
    #[arg(value_parser = parse_provider)]
    pub provider: ProviderId,
    /// The response body as received; `-` reads standard input. With
    /// `--exchange`, a recorded exchange (fixture format) instead.
    pub file: PathBuf,
    /// FILE is a recorded exchange: status, headers, body and clock come from it.
    #[arg(long, conflicts_with_all = ["status", "headers"])]
    pub exchange: bool,
    /// The HTTP status of the response (100 to 599).
    #[arg(long, default_value_t = 200, value_parser = parse_status, allow_negative_numbers = true)]
    pub status: u16,
    /// A response header, `Name: value` (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// The clock for relative fields, RFC 3339 (default: now).
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<jiff::Timestamp>,
    /// Print one JSON object (the contract's format).
    #[arg(long)]
    pub json: bool,
}

fn parse_provider(s: &str) -> Result<ProviderId, String> {
    s.parse().map_err(|e: crate::providers::UnknownProvider| e.to_string())
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("header {s:?} is not of the form \"Name: value\""))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("header {s:?} has no name"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// `--http ADDR`: `HOST:PORT` with an IP address, `localhost:PORT`, or a
/// bare `PORT` / `:PORT` (127.0.0.1).
pub fn parse_address(text: &str) -> Result<SocketAddr, String> {
    let loopback = |port: &str| {
        port.parse::<u16>()
            .map(|port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
    };
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    let port = text
        .strip_prefix("localhost:")
        .or_else(|| text.strip_prefix(':'))
        .unwrap_or(text);
    loopback(port).map_err(|_| {
        format!("{text:?} is not an address to serve on: give HOST:PORT with an IP address (127.0.0.1:9184) or a port")
    })
}

/// A time as `--at` takes it: RFC 3339 (`2026-08-22T12:10:00Z`), or a
/// local date and time in the machine's zone (`2026-08-22 14:10`,
/// `2026-08-22T14:10:30`), as the timeline prints them.
pub fn parse_at(text: &str) -> Result<jiff::Timestamp, String> {
    if let Ok(time) = text.parse::<jiff::Timestamp>() {
        return Ok(time);
    }
    text.parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|local| local.to_zoned(jiff::tz::TimeZone::system()).ok())
        .map(|zoned| zoned.timestamp())
        .ok_or_else(|| {
            format!("{text:?} is not a time: give RFC 3339 (2026-08-22T12:10:00Z) or a local date and time (2026-08-22 14:10)")
        })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn words(line: &str) -> Vec<OsString> {
        std::iter::once("quotatrack")
            .chain(line.split(' ').filter(|word| !word.is_empty()))
            .map(OsString::from)
            .collect()
    }

    /// What clap makes of `argv` in the test's own environment, as text.
    fn clap_reads(argv: &[OsString]) -> Option<String> {
        FrontArgs::try_parse_from(argv).ok().map(|args| format!("{args:?}"))
    }

    #[test]
    fn a_plain_command_line_reads_as_clap_reads_it() {
        let env = |name: &str| std::env::var_os(name);
        for line in [
            "status",
            "--data-dir /d status",
            "--data-dir=/d status",
            "--data-dir /d --config /c.toml status",
            "--config=/c.toml --clock-at 2026-08-23T12:00:00Z --data-dir=d status",
            "--clock-at=2026-08-23T12:00:00+02:00 status",
            "--data-dir /a=b status",
            "statusline claude",
            "--data-dir /d statusline claude",
        ] {
            let argv = words(line);
            let plain = FrontArgs::plain(&argv, env).map(|args| format!("{args:?}"));
            assert!(plain.is_some(), "{line} is not read as plain");
            assert_eq!(plain, clap_reads(&argv), "{line}");
        }
    }

    #[test]
    fn anything_else_is_left_to_clap() {
        let env = |_: &str| None;
        for line in [
            "",
            "status --json",
            "status --refresh",
            "status --data-dir /d",
            "--data-dir /d --data-dir /e status",
            "--data-dir= status",
            "--data-dir",
            "--data-dir -d status",
            "--data-dir=-d status",
            "--clock-at soon status",
            "--clock-at -002026-01-01T00:00:00Z status",
            "--timeout 1 status",
            "--fixtures /f status",
            "--now-offset 5 status",
            "--help",
            "-h status",
            "status=1",
            "statusline",
            "statusline codex",
            "statusline claude --width 40",
            "log stats",
        ] {
            assert!(FrontArgs::plain(&words(line), env).is_none(), "{line:?}");
        }
        let argv = words("--data-dir /d status");
        let set = |value: &'static str| move |name: &str| (name == "QUOTATRACK_TIMEOUT").then(|| value.into());
        assert!(FrontArgs::plain(&argv, set("0.5")).is_none(), "clap checks the timeout");
        let empty = |wanted: &'static str| move |name: &str| (name == wanted).then(OsString::new);
        assert!(FrontArgs::plain(&words("status"), empty("QUOTATRACK_DATA_DIR")).is_none());
        assert!(FrontArgs::plain(&argv, empty("QUOTATRACK_CONFIG")).is_none());
        // Set empty, it is refused even when the line gives the option.
        assert!(FrontArgs::plain(&words("--config /c status"), empty("QUOTATRACK_CONFIG")).is_none());
        assert!(FrontArgs::plain(&argv, empty("QUOTATRACK_DATA_DIR")).is_none());
    }

    #[test]
    fn the_environment_gives_what_the_line_does_not() {
        let env = |name: &str| match name {
            "QUOTATRACK_DATA_DIR" => Some(OsString::from("/from-env")),
            "QUOTATRACK_CONFIG" => Some(OsString::from("/env.toml")),
            _ => None,
        };
        let args = FrontArgs::plain(&words("--data-dir /line status"), env).unwrap();
        assert_eq!(args.globals.data_dir, Some(PathBuf::from("/line")));
        assert_eq!(args.globals.config, Some(PathBuf::from("/env.toml")));
    }
}
