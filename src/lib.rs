//! quotatrack tells a developer how much of each AI-coding subscription is
//! left (Claude, Codex, Copilot, Gemini, Antigravity, Kiro, Z.ai), when each
//! window resets, and whether the number can be trusted.
//!
//! It is built as an event-sourced engine: typed state machines decide,
//! every input and decision is appended to a log, and what users see is a
//! projection of that log (`ARCHITECTURE.md` maps the parts and states the
//! invariants).
//!
//! # Layout
//!
//! - [`quota`]: the quota model (`QuotaDefinition`, `UsageSnapshot`,
//!   `ResolvedUsageWindow`) and `resolve_usage_window`, the resolution of
//!   what a provider reported into what users see.
//! - [`providers`]: the seven providers, each an id, a label, its quotas,
//!   the request it needs and a pure `parse` of one response.
//! - [`exchange`]: the recorded exchange (request and response), the format
//!   of fixtures and incident attachments.
//! - [`wire`]: the versioned JSON formats other programs read
//!   (`quotatrack parse --json`).
//! - [`events`]: the closed, versioned event enum and its envelope: what
//!   the log stores and `log export` prints.
//! - [`log`]: the sled log (append, checkpoints, verify, export/import,
//!   retention); the only module that names sled.
//! - [`store`]: the projection, a pure fold of events.
//! - [`journal`]: the owner's log and live store together.
//! - [`status`]: the view of the store at a clock reading, the status line
//!   and the snapshot file.
//! - [`clock`], [`credentials`], [`answers`]: the engine's three seams, as
//!   traits with their offline implementations (manual clock, fixed
//!   credentials, the exchange player) and live ones (system clock,
//!   credential discovery in each vendor's files, the network through
//!   [`transport`], reqwest); replay's are the recording's.
//! - [`redact`]: secrets, identities and emails removed from every exchange
//!   before it is recorded.
//! - [`record`]: one real request written as a redacted fixture, for bug
//!   reports (`quotatrack record`, `tools/record.rs`).
//! - [`machines`]: the state machines (statig); [`machines::tracker`]
//!   decides when each provider is fetched.
//! - [`trackers`]: the trackers of the providers driven, the one place
//!   their decisions become events.
//! - [`replay`]: runs the engine itself over a recorded log, with today's
//!   parsers, and reports the first divergence.
//! - [`scenario`]: the engine under a virtual clock over scripted
//!   responses: `demo` and the recorded incidents.
//! - [`engine`]: the engine and its one update cycle (credentials, polls,
//!   answers, recording, snapshot, notifications) and its host side.
//! - [`engine`]: the update cycle: credentials, polls, fetches, recording,
//!   snapshot, notifications.
//! - [`alerts`]: which alerts fire (a pure decision the cycle records) and
//!   their delivery to a command and a webhook.
//! - [`health`]: each provider's public status page, read into one
//!   indicator (`none` … `critical`, `maintenance`).
//! - [`session`]: what a host session exchanges with the controller (host
//!   events in, engine events out, `serve --stdio`), and the follower.
//! - [`owner`]: the owner's socket, through which followers ask for refreshes.
//! - [`commands`]: the commands the binary runs, one function each.
//! - [`stress`]: the stress writer behind `log stress`.
//! - [`history`]: each window's used ratio over time from recorded
//!   fetches, downsampled as it is read, resets marked, with a summary.
//! - [`pace`]: whether a window's usage lasts until its reset, from the
//!   readings in the log (expected ratio, delta, projection, run-out time).
//! - [`render`]: what people and bars see: the status table, the status
//!   line, Waybar/tmux/i3bar/prompt formats.
//! - [`statusline`]: `statusline claude`, Claude Code's status-line
//!   command (its own `rate_limits` first, the snapshot for the rest).
//! - [`footer`]: named single values (`anthropic.5h.used_percent`) and
//!   `status --format` templates.
//! - [`http`]: `serve --http`: status, history, health and Prometheus
//!   metrics over HTTP for dashboards and scrapers.
//! - [`cli`]: the command line's argument types, without I/O.
//! - [`config`]: where things live (data dir), from arguments and environment.
//! - [`settings`]: the user's settings (TOML file, host patches), validated.

#![deny(missing_docs)]

pub mod alerts;
pub mod answers;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod credentials;
pub mod engine;
pub mod events;
pub mod exchange;
pub mod files;
pub mod footer;
pub mod health;
pub mod history;
pub mod http;
pub mod journal;
pub mod log;
pub mod machines;
pub mod owner;
pub mod pace;
#[allow(missing_docs)]
pub mod providers;
#[allow(missing_docs)]
pub mod quota;
pub mod record;
pub mod redact;
pub mod render;
pub mod replay;
pub mod scenario;
pub mod session;
pub mod settings;
pub mod status;
pub mod statusline;
pub mod store;
pub mod stress;
pub mod trackers;
pub mod transport;
pub mod wire;
