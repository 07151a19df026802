//! The command line's argument types (clap derive), with no I/O. Turning
//! them into work is the binary's job (`src/bin/quotatrack.rs`).

use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand};

use crate::providers::ProviderId;

/// quotatrack: how much of each AI-coding subscription is left.
#[derive(Debug, Parser)]
#[command(name = "quotatrack", version, about, long_about = None)]
pub struct Args {
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
    #[arg(long, global = true, env = "QUOTATRACK_TIMEOUT", value_name = "SECONDS", default_value_t = 5.0,
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
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the current view from the snapshot file (no network, no log).
    Status(StatusArgs),
    /// Parse one recorded provider response (see parse-contract.md).
    Parse(ParseArgs),
    /// Inspect or move the event log.
    Log(LogArgs),
    /// Print the store, folded from the log, as a table.
    Store,
    /// Re-drive a recorded log through the current machines and parsers and
    /// report the first divergence (exit 1) or none (exit 0).
    Replay(ReplayArgs),
    /// Run the engine over the bundled fixtures with a virtual clock and
    /// print what a user would have seen.
    Demo(DemoArgs),
    /// Run the engine in the foreground, printing the status line after
    /// every update, until interrupted.
    Watch,
    /// Perform PROVIDER's real usage request with your credentials and write
    /// the redacted exchange as a fixture (for a bug report).
    Record(RecordArgs),
    /// Show where each provider's credentials come from, or why there are none.
    Credentials,
    /// Serve the embedding protocol: host events in, engine events out.
    Serve(ServeArgs),
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
    #[arg(long, value_name = "ADDR", value_parser = crate::http::parse_address)]
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
    #[arg(long, value_name = "TIME", value_parser = crate::replay::explain::parse_time)]
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
}

/// `quotatrack log …`.
#[derive(Debug, ClapArgs)]
pub struct LogArgs {
    /// What to do with the log.
    #[command(subcommand)]
    pub command: LogCommand,
}

/// The `log` subcommands.
#[derive(Debug, Subcommand)]
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
