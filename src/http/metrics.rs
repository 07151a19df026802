//! `/metrics`: an [`Observation`] written in the Prometheus text format
//! (0.0.4) by the `prometheus` crate's encoder, into a fresh `Registry` per
//! scrape, so nothing is global and nothing outlives a scrape. That crate
//! writes the classic format only, which is also the one `promtool check
//! metrics` reads; a scraper asking for OpenMetrics gets the classic format,
//! which every Prometheus accepts.
//!
//! Names follow Prometheus conventions: the `quotatrack_` prefix, base
//! units (seconds, bytes, ratios 0..1), Unix timestamps in
//! `…_timestamp_seconds`, counters ending in `_total`. Label values are
//! bounded: provider ids, window ids (at most [`MAX_WINDOWS`] per
//! provider), the seven freshness states, the error kinds.

use std::collections::BTreeMap;

use jiff::Timestamp;
use prometheus::{Encoder, GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use super::{Role, Unavailable};
use crate::events::AlertKind;
use crate::providers::ProviderId;
use crate::wire::{Freshness, Status};

/// The `Content-Type` of the classic text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The most windows shown per provider (a bound on label values).
pub const MAX_WINDOWS: usize = 64;

/// Every freshness state, for the one-hot `quotatrack_provider_state`.
const STATES: [Freshness; 7] = [
    Freshness::Fresh,
    Freshness::Stale,
    Freshness::RateLimited,
    Freshness::AuthRequired,
    Freshness::Unavailable,
    Freshness::Inactive,
    Freshness::Unknown,
];

/// What one scrape shows.
#[derive(Debug, Clone)]
pub struct Observation {
    /// Who serves.
    pub role: Role,
    /// The clock reading of the scrape.
    pub now: Timestamp,
    /// The status at `now` (as `/v1/status` shows it).
    pub status: Status,
    /// Completed fetches per provider by result (`ok` or an error kind),
    /// from the store; empty on a follower.
    pub fetches: BTreeMap<ProviderId, BTreeMap<String, u64>>,
    /// Alerts fired per provider by kind, from the store; empty on a
    /// follower.
    pub alerts: BTreeMap<ProviderId, BTreeMap<AlertKind, u64>>,
    /// Alert deliveries that failed, by way (`command`, `webhook`), from
    /// the log; empty on a follower.
    pub delivery_failures: BTreeMap<String, u64>,
    /// The log's figures, as far as known.
    pub log: LogFigures,
    /// Whether the log is healthy.
    pub log_ok: bool,
    /// When the last cycle ran.
    pub last_cycle_at: Option<Timestamp>,
}

/// The log's figures; a follower knows only its size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFigures {
    /// Events appended (the next sequence number).
    pub events: Option<u64>,
    /// Bytes of the log's files on disk.
    pub size_bytes: Option<u64>,
    /// The clock reading of the last event.
    pub last_append_at: Option<Timestamp>,
}

/// The observation in the classic text format.
pub fn render(observation: &Observation) -> Result<String, Unavailable> {
    let registry = Registry::new();
    write(&registry, observation).map_err(|error| Unavailable(format!("cannot build the metrics: {error}")))?;
    let mut text = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut text)
        .map_err(|error| Unavailable(format!("cannot write the metrics: {error}")))?;
    String::from_utf8(text).map_err(|error| Unavailable(format!("cannot write the metrics: {error}")))
}

/// Registers every family in `registry` and sets it.
fn write(registry: &Registry, observation: &Observation) -> prometheus::Result<()> {
    let gauge = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<GaugeVec> {
        let family = GaugeVec::new(Opts::new(name, help), labels)?;
        registry.register(Box::new(family.clone()))?;
        Ok(family)
    };
    let int_gauge = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntGaugeVec> {
        let family = IntGaugeVec::new(Opts::new(name, help), labels)?;
        registry.register(Box::new(family.clone()))?;
        Ok(family)
    };
    let seconds = |at: Timestamp| at.as_second() as f64;

    int_gauge(
        "quotatrack_build_info",
        "The running quotatrack's version (always 1).",
        &["version"],
    )?
    .with_label_values(&[env!("CARGO_PKG_VERSION")])
    .set(1);
    let role = int_gauge(
        "quotatrack_owner",
        "1 when this process owns the data dir and runs the cycles, 0 when it serves the owner's snapshot.",
        &[],
    )?;
    role.with_label_values::<&str>(&[])
        .set(i64::from(observation.role == Role::Owner));

    let used = gauge(
        "quotatrack_window_used_ratio",
        "Share of the window's allowance used, 0..1 (absent once the window has reset, until the next fetch).",
        &["provider", "window"],
    )?;
    let resets = gauge(
        "quotatrack_window_reset_timestamp_seconds",
        "When the window resets, as a Unix timestamp.",
        &["provider", "window"],
    )?;
    let length = gauge(
        "quotatrack_window_length_seconds",
        "The window's length.",
        &["provider", "window"],
    )?;
    let state = int_gauge(
        "quotatrack_provider_state",
        "The provider's freshness: 1 for its current state, 0 for the others.",
        &["provider", "state"],
    )?;
    let age = gauge(
        "quotatrack_provider_last_success_age_seconds",
        "Seconds since the provider's last successful fetch.",
        &["provider"],
    )?;
    let last_success = gauge(
        "quotatrack_provider_last_success_timestamp_seconds",
        "When the provider's last successful fetch completed, as a Unix timestamp.",
        &["provider"],
    )?;
    let blocked = gauge(
        "quotatrack_provider_blocked_until_timestamp_seconds",
        "No request to the provider before this Unix timestamp (absent when not blocked).",
        &["provider"],
    )?;
    let fails = int_gauge(
        "quotatrack_provider_consecutive_failures",
        "Consecutive failed fetches, as the backoff counts them.",
        &["provider"],
    )?;
    for provider in &observation.status.providers {
        let id = provider.id.as_str();
        for candidate in STATES {
            state
                .with_label_values(&[id, candidate.as_str()])
                .set(i64::from(provider.state == candidate));
        }
        fails.with_label_values(&[id]).set(i64::from(provider.fails));
        if let Some(at) = provider
            .updated_at
            .as_deref()
            .and_then(|text| text.parse::<Timestamp>().ok())
        {
            last_success.with_label_values(&[id]).set(seconds(at));
        }
        if let Some(age_s) = provider.age_s {
            age.with_label_values(&[id]).set(age_s as f64);
        }
        if let Some(until) = provider
            .blocked_until
            .as_deref()
            .and_then(|text| text.parse::<Timestamp>().ok())
            .filter(|until| *until > observation.now)
        {
            blocked.with_label_values(&[id]).set(seconds(until));
        }
        for window in provider.windows.iter().take(MAX_WINDOWS) {
            let labels = [id, window.id.as_str()];
            if let Some(ratio) = window.used_ratio.filter(|ratio| ratio.is_finite()) {
                used.with_label_values(&labels).set(ratio);
            }
            if let Some(at) = window
                .resets_at
                .as_deref()
                .and_then(|text| text.parse::<Timestamp>().ok())
            {
                resets.with_label_values(&labels).set(seconds(at));
            }
            if let Some(total) = window.total_time_s.or(window.window_seconds) {
                length.with_label_values(&labels).set(total as f64);
            }
        }
    }

    let fetches = IntCounterVec::new(
        Opts::new(
            "quotatrack_fetches_total",
            "Completed fetches by outcome (ok or error) and error kind (none for ok), from the log.",
        ),
        &["provider", "outcome", "error_kind"],
    )?;
    registry.register(Box::new(fetches.clone()))?;
    for (provider, results) in &observation.fetches {
        for (result, count) in results {
            let (outcome, kind) = if result == "ok" {
                ("ok", "none")
            } else {
                ("error", result.as_str())
            };
            fetches
                .with_label_values(&[provider.as_str(), outcome, kind])
                .inc_by(*count);
        }
    }

    let alerts = IntCounterVec::new(
        Opts::new("quotatrack_alerts_total", "Alerts fired by kind, from the log."),
        &["provider", "kind"],
    )?;
    registry.register(Box::new(alerts.clone()))?;
    for (provider, kinds) in &observation.alerts {
        for (kind, count) in kinds {
            alerts
                .with_label_values(&[provider.as_str(), kind.as_str()])
                .inc_by(*count);
        }
    }

    let failed = IntCounterVec::new(
        Opts::new(
            "quotatrack_alert_deliveries_failed_total",
            "Alert deliveries (command or webhook) that failed, from the log.",
        ),
        &["via"],
    )?;
    registry.register(Box::new(failed.clone()))?;
    for via in ["command", "webhook"] {
        let count = observation.delivery_failures.get(via).copied().unwrap_or(0);
        failed.with_label_values(&[via]).inc_by(count);
    }

    let log_ok = int_gauge(
        "quotatrack_log_healthy",
        "1 when the event log reads and appends cleanly, 0 when it is damaged.",
        &[],
    )?;
    log_ok.with_label_values::<&str>(&[]).set(i64::from(observation.log_ok));
    if let Some(events) = observation.log.events {
        int_gauge(
            "quotatrack_log_events",
            "Events appended to the log (its next sequence number).",
            &[],
        )?
        .with_label_values::<&str>(&[])
        .set(i64::try_from(events).unwrap_or(i64::MAX));
    }
    if let Some(bytes) = observation.log.size_bytes {
        int_gauge("quotatrack_log_size_bytes", "The log's files on disk.", &[])?
            .with_label_values::<&str>(&[])
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
    if let Some(at) = observation.log.last_append_at {
        gauge(
            "quotatrack_log_last_append_timestamp_seconds",
            "The clock reading of the log's last event, as a Unix timestamp.",
            &[],
        )?
        .with_label_values::<&str>(&[])
        .set(seconds(at));
    }
    if let Some(at) = observation.last_cycle_at {
        gauge(
            "quotatrack_last_cycle_timestamp_seconds",
            "When the last update cycle ran (on a follower: when the owner last published), as a Unix timestamp.",
            &[],
        )?
        .with_label_values::<&str>(&[])
        .set(seconds(at));
    }
    Ok(())
}
