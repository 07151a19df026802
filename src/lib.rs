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
//! - [`clock`], [`credentials`], [`transport`]: the engine's three inputs,
//!   as traits with their offline implementations (manual clock, fixed
//!   credentials, the exchange player) and live ones (system clock,
//!   credential discovery in each vendor's files, reqwest).
//! - [`redact`]: secrets, identities and emails removed from every exchange
//!   before it is recorded.
//! - [`record`]: one real request written as a redacted fixture, for bug
//!   reports (`quotatrack record`, `tools/record.rs`).
//! - [`machines`]: the state machines (statig); [`machines::tracker`]
//!   decides when each provider is fetched.
//! - [`driver`]: turns machine decisions into events; shared by the engine
//!   and replay.
//! - [`replay`]: re-drives a recorded log through fresh machines and the
//!   current parsers and reports the first divergence.
//! - [`scenario`]: the engine under a virtual clock over scripted
//!   responses: `demo` and the recorded incidents.
//! - [`engine`]: the update cycle: credentials, polls, fetches, recording,
//!   snapshot, notifications.
//! - [`alerts`]: which alerts fire (a pure decision the cycle records) and
//!   their delivery to a command and a webhook.
//! - [`health`]: each provider's public status page, read into one
//!   indicator (`none` … `critical`, `maintenance`).
//! - [`session`]: the controller side of the engine, host events in and
//!   engine events out (`Engine::handle`, `serve --stdio`).
//! - [`history`]: each window's used ratio over time from recorded
//!   fetches, downsampled as it is read, resets marked, with a summary.
//! - [`pace`]: whether a window's usage lasts until its reset, from the
//!   readings in the log (expected ratio, delta, projection, run-out time).
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
pub mod replay;
pub mod scenario;
pub mod session;
pub mod settings;
pub mod status;
pub mod store;
pub mod stress;
pub mod trackers;
pub mod transport;
pub mod wire;
