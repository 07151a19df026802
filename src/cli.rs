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
    /// Offline mode: serve recorded exchanges from DIR/<provider>/*.json.
    #[arg(long, global = true, value_name = "DIR")]
    pub fixtures: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse one recorded provider response (see parse-contract.md).
    Parse(ParseArgs),
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
    /// The HTTP status of the response.
    #[arg(long, default_value_t = 200)]
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
