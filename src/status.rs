//! The status view: the store read at a clock reading, as `status --json`
//! prints it and the status line shows it, and the snapshot file through
//! which other processes read it without opening the log.
//!
//! Everything time-dependent is derived here, never stored: a value older
//! than the TTL is `stale` and carries its age, a rate limit lasts until
//! `blocked_until`, and a window whose `resets_at` has passed reads as
//! unknown (its old numbers say nothing about the new window). A reader of
//! an old snapshot re-derives these with its own clock, so a snapshot file
//! written an hour ago reads as an hour old. The same goes for every
//! footer value of a window ([`derive_window`]): percentages, the time a
//! window has run and has left, and for a multiplier quota the requests
//! left per model. And pace ([`crate::pace`]): the view carries each
//! window's recent slope, from which a later reader re-derives the rest.

use std::io;
use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};

use crate::credentials::with_fix;
use crate::health::Indicator;
use crate::pace;
use crate::providers::{ErrorKind, ProviderId};
use crate::quota::QuotaDefinition;
use crate::store::{Entry, Store};
use crate::wire::{
    CurrentModelRequests, ErrorBody, Freshness, ModelRequests, ProviderStatus, Status, StatusPageBody, StatusWindow,
    Window, rfc3339_seconds, round6,
};

/// The snapshot file's name in the data dir.
pub const SNAPSHOT_FILE: &str = "status.json";

/// How the view judges age, and what it leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusOptions {
    /// A last good value older than this is stale.
    pub stale_after: SignedDuration,
    /// Providers whose status page the settings turned off: the page's
    /// last reading is not shown (it would never be renewed).
    pub pages_off: ProviderSet,
    /// Providers the settings turned off: `inactive`, whatever they last
    /// said (a missing login included), as nothing will be asked of them.
    pub off: ProviderSet,
}

impl Default for StatusOptions {
    /// Three missed 60 s cycles: what the default settings give
    /// (`Settings::stale_after`); every status page shown.
    fn default() -> Self {
        StatusOptions {
            stale_after: SignedDuration::from_secs(180),
            pages_off: ProviderSet::default(),
            off: ProviderSet::default(),
        }
    }
}

impl StatusOptions {
    /// What `settings` say: their stale threshold, and the status pages
    /// they turned off.
    pub fn from_settings(settings: &crate::settings::Settings) -> StatusOptions {
        StatusOptions {
            stale_after: settings.stale_after(),
            pages_off: ProviderSet::of(ProviderId::ALL.into_iter().filter(|id| !settings.status_page_on(*id))),
            off: ProviderSet::of(
                ProviderId::ALL
                    .into_iter()
                    .filter(|id| !settings.providers.contains(id)),
            ),
        }
    }
}

/// A set of providers, small enough to copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProviderSet(u16);

impl ProviderSet {
    /// The providers of `ids`.
    pub fn of(ids: impl IntoIterator<Item = ProviderId>) -> ProviderSet {
        ProviderSet(ids.into_iter().fold(0, |bits, id| bits | 1 << id as u16))
    }

    /// Whether `id` is in the set.
    pub fn contains(self, id: ProviderId) -> bool {
        self.0 & 1 << id as u16 != 0
    }
}

/// The view of `store` at `now`.
pub fn view(store: &Store, now: Timestamp, options: &StatusOptions) -> Status {
    let providers = ProviderId::ALL
        .iter()
        .filter_map(|id| store.providers.get(id).map(|entry| provider_view(*id, entry, now)))
        .collect();
    let mut status = Status {
        schema: 1,
        stale_after_s: None,
        file_stale_after_s: None,
        generated_at: rfc3339_seconds(now),
        providers,
    };
    settle(&mut status, now, options);
    status
}

/// Re-derives the time-dependent fields of a view (from a snapshot file,
/// say) at `now`. A snapshot that carries its engine's stale threshold is
/// judged by it when `options` (the reader's settings file) gives the
/// threshold the engine's file gave, else by `options`.
pub fn settle(status: &mut Status, now: Timestamp, options: &StatusOptions) {
    // A snapshot's own threshold is its engine's, patches included, unless
    // the reader's settings file gives another than the engine's did.
    let seconds = |seconds: u64| SignedDuration::from_secs(i64::try_from(seconds).unwrap_or(i64::MAX));
    let written = match (status.stale_after_s.take(), status.file_stale_after_s.take()) {
        (Some(engine), Some(file)) if seconds(file) == options.stale_after => Some(StatusOptions {
            stale_after: seconds(engine),
            ..*options
        }),
        _ => None,
    };
    let options = written.as_ref().unwrap_or(options);
    status.generated_at = rfc3339_seconds(now);
    for provider in &mut status.providers {
        settle_provider(provider, now, options);
        if options.pages_off.contains(provider.id) {
            provider.status_page = None;
        }
        if options.off.contains(provider.id) {
            provider.state = Freshness::Inactive;
        }
    }
}

fn provider_view(id: ProviderId, entry: &Entry, now: Timestamp) -> ProviderStatus {
    let quotas = id.provider().quotas();
    let error = match (&entry.last_error, entry.auth_required) {
        (Some(error), _) => Some(ErrorBody {
            message: with_fix(id, error.kind, &error.message),
            ..error.clone()
        }),
        (None, true) => Some(ErrorBody {
            kind: ErrorKind::Auth,
            message: with_fix(id, ErrorKind::Auth, &format!("no credentials found for {id}")),
            retry_after_s: None,
        }),
        (None, false) => None,
    };
    let state = if entry.auth_required {
        Freshness::AuthRequired
    } else if entry.active == Some(false) {
        Freshness::Inactive
    } else if entry
        .last_error
        .as_ref()
        .is_some_and(|error| error.kind != ErrorKind::RateLimited)
    {
        Freshness::Unavailable
    } else if entry.last_good.is_none() {
        Freshness::Unknown
    } else {
        Freshness::Fresh
    };
    ProviderStatus {
        id,
        label: id.provider().label().to_owned(),
        state,
        updated_at: entry.last_good.map(rfc3339_seconds),
        age_s: None,
        blocked_until: entry.blocked_until.map(rfc3339_seconds),
        fails: entry.fails,
        plan: entry.plan.clone(),
        windows: entry
            .windows
            .iter()
            .map(|window| {
                let readings = entry.readings.get(&window.id).map_or(&[][..], Vec::as_slice);
                StatusWindow {
                    pace: Some(pace::body(window, window_length(window, quotas), readings, now)),
                    ..StatusWindow::new(window.clone())
                }
            })
            .collect(),
        status_page: entry.status_page.as_ref().map(|page| StatusPageBody {
            indicator: page.indicator.clone(),
            description: page.description.clone().or_else(|| page.error.clone()),
        }),
        error,
        credentials_missing: entry.credentials.is_none(),
    }
}

fn settle_provider(provider: &mut ProviderStatus, now: Timestamp, options: &StatusOptions) {
    let updated = parse_time(provider.updated_at.as_deref());
    let age = updated.map(|at| now.duration_since(at).max(SignedDuration::ZERO));
    provider.age_s = age.map(|age| age.as_secs().unsigned_abs());
    let blocked = parse_time(provider.blocked_until.as_deref()).is_some_and(|until| until > now);
    provider.state = match provider.state {
        Freshness::AuthRequired | Freshness::Inactive => provider.state,
        _ if blocked => Freshness::RateLimited,
        Freshness::Unavailable => Freshness::Unavailable,
        _ => match age {
            None => Freshness::Unknown,
            Some(age) if age > options.stale_after => Freshness::Stale,
            Some(_) => Freshness::Fresh,
        },
    };
    let quotas = provider.id.provider().quotas();
    for window in &mut provider.windows {
        settle_window(window, quotas, now);
    }
}

/// Everything of `window` that moves with the clock, at `now`: the values
/// [`derive_window`] derives and the pace re-derived from the slope the
/// window carries.
pub fn settle_window(window: &mut StatusWindow, quotas: &[QuotaDefinition], now: Timestamp) {
    let reset = parse_time(window.resets_at.as_deref());
    let length = derive_window_at(window, quotas, reset, now);
    window.pace = Some(pace::rederive(window, length, reset, window.pace.as_ref(), now));
}

/// Derives every time-dependent value of `window` at `now`, given the
/// quotas of its provider. A window whose reset has passed reads as
/// unknown: its amounts, ratios and the time it has run and has left are
/// `null` until the next fetch (its length and allowance stay, they
/// describe the window, not its state).
///
/// Times: the window's length is what the response stated
/// (`window_seconds`), else what its quota's length rule gives
/// ([`crate::quota::Length`]: a fixed length such as Gemini's day, or the
/// calendar month that ends at the reset, such as Copilot's). Then
/// `remaining_time_s` is the seconds until the reset, `total_time_s` the
/// length, `used_time_s` the length less the time left, and `progress` the
/// used time as a percentage of the length. No reset, or no length, leaves
/// the values that need it `null`.
///
/// **When the reset is further away than the length** (Codex's review
/// week whose reset is eight days off, a Kiro bonus that expires in 88
/// days under a monthly rule), the length is the larger: `total_time_s`
/// is the time left, `used_time_s` is 0 and `progress` 0. The time left
/// is what the provider says and what `resets_in` shows, so it is never
/// cut down; a window cannot have run a negative time, and what is left of
/// it cannot exceed its length. So `remaining_time_s ≤ total_time_s` and
/// `used_time_s + remaining_time_s = total_time_s` always hold.
pub fn derive_window(window: &mut StatusWindow, quotas: &[QuotaDefinition], now: Timestamp) {
    derive_window_at(window, quotas, parse_time(window.resets_at.as_deref()), now);
}

/// [`derive_window`] with the window's reset already parsed; the window's
/// length.
fn derive_window_at(
    window: &mut StatusWindow,
    quotas: &[QuotaDefinition],
    reset: Option<Timestamp>,
    now: Timestamp,
) -> Option<u64> {
    if reset.is_some_and(|reset| reset <= now) {
        window.reset_passed = true;
        window.used_ratio = None;
        window.remaining_ratio = None;
        window.used = None;
        window.remaining = None;
    }
    let percent = |ratio: Option<f64>| ratio.map(|ratio| round6(ratio * 100.0));
    window.total = window.limit;
    window.used_percent = percent(window.used_ratio);
    window.remaining_percent = percent(window.remaining_ratio);
    let length = length_at(window, quotas, reset);
    window.remaining_time_s = reset
        .filter(|reset| *reset > now)
        .map(|reset| reset.duration_since(now).as_secs().unsigned_abs());
    window.total_time_s = match (length, window.remaining_time_s) {
        (Some(length), Some(left)) => Some(length.max(left)),
        (length, _) => length,
    };
    window.used_time_s = match (window.total_time_s, window.remaining_time_s) {
        (Some(length), Some(left)) => Some(length.saturating_sub(left)),
        _ => None,
    };
    window.progress = match (window.used_time_s, window.total_time_s) {
        (Some(used), Some(length)) => Some(round6((used as f64 / length as f64 * 100.0).clamp(0.0, 100.0))),
        _ => None,
    };
    let table = multiplier_quota(window, quotas).and_then(|quota| Some((quota, quota.multiplier_table()?)));
    let remaining = window.remaining;
    let requests = |multiplier: f64| ModelRequests {
        multiplier: round6(multiplier),
        requests_left: remaining.and_then(|remaining| crate::quota::requests_left(multiplier, remaining)),
    };
    let Some((quota, table)) = table else {
        window.requests_left_by_model.clear();
        return length;
    };
    let models = quota.multipliers().into_iter().flatten().map(|(model, _)| model);
    if window.requests_left_by_model.keys().eq(models.clone()) {
        // Read back from a snapshot, the window already lists the table's
        // models: their numbers are derived again in place.
        for (model, entry) in &mut window.requests_left_by_model {
            *entry = requests(table.multiplier_for(model));
        }
    } else {
        window.requests_left_by_model = models
            .map(|model| (model.clone(), requests(table.multiplier_for(model))))
            .collect();
    }
    length
}

/// The length of `window`: what the response stated (`window_seconds`),
/// else what its quota's length rule gives at its reset.
pub fn window_length(window: &Window, quotas: &[QuotaDefinition]) -> Option<u64> {
    length_at(window, quotas, parse_time(window.resets_at.as_deref()))
}

/// [`window_length`] with the window's reset already parsed.
fn length_at(window: &Window, quotas: &[QuotaDefinition], reset: Option<Timestamp>) -> Option<u64> {
    window
        .window_seconds
        .filter(|length| *length > 0)
        .or_else(|| quota_of(window, quotas).and_then(|quota| quota.length_seconds(reset)))
}

/// The quota `window` measures: the one it names, or for a window
/// recorded before windows named their quota, the one its id names.
pub fn quota_of<'q>(window: &Window, quotas: &'q [QuotaDefinition]) -> Option<&'q QuotaDefinition> {
    let quota = window.quota.as_deref().unwrap_or(&window.id);
    quotas.iter().find(|definition| definition.id == quota)
}

/// The multiplier quota `window` measures, if it measures one.
pub fn multiplier_quota<'q>(window: &Window, quotas: &'q [QuotaDefinition]) -> Option<&'q QuotaDefinition> {
    quota_of(window, quotas).filter(|definition| definition.is_multiplier())
}

/// What a request to `model` costs under `quota` and how many are left in
/// `window`.
pub fn model_requests(quota: &QuotaDefinition, window: &Window, model: &str) -> ModelRequests {
    ModelRequests {
        multiplier: round6(quota.multiplier_for(model)),
        requests_left: window
            .remaining
            .and_then(|remaining| quota.requests_left_for(model, remaining)),
    }
}

/// `provider` as the host whose current model is `model` sees it: each
/// multiplier window says what a request to that model costs and how many
/// are left (`current_model`), and the display string says so too.
pub fn for_model(provider: &ProviderStatus, model: &str) -> ProviderStatus {
    let mut provider = provider.clone();
    let quotas = provider.id.provider().quotas();
    for window in &mut provider.windows {
        if let Some(quota) = multiplier_quota(window, quotas) {
            window.current_model = Some(CurrentModelRequests {
                model: model.to_owned(),
                matched: quota.table_entry_for(model).map(|(name, _)| name.to_owned()),
                requests: model_requests(quota, window, model),
            });
        }
    }
    provider
}

/// The entry of a provider the store has never read: `unknown`, nothing
/// else known. The host's `update_all` lists every provider (as pi-sub's
/// does), read or not.
pub fn unread(id: ProviderId) -> ProviderStatus {
    ProviderStatus {
        id,
        label: id.provider().label().to_owned(),
        state: Freshness::Unknown,
        updated_at: None,
        age_s: None,
        blocked_until: None,
        fails: 0,
        plan: None,
        windows: Vec::new(),
        status_page: None,
        error: None,
        credentials_missing: false,
    }
}

/// Every provider as `update_all` lists it (pi-sub's view of all
/// providers): the enabled ones in `enabled`'s order, as `view` has them
/// or `unknown` when never read ([`unread`]), then every other provider,
/// `inactive` ([`turned_off`]).
pub fn every_provider(view: &Status, enabled: &[ProviderId]) -> Vec<ProviderStatus> {
    let seen = |id: &ProviderId| view.providers.iter().find(|provider| provider.id == *id);
    let on = enabled
        .iter()
        .map(|id| seen(id).cloned().unwrap_or_else(|| unread(*id)));
    let off = ProviderId::ALL
        .iter()
        .filter(|id| !enabled.contains(id))
        .map(|id| turned_off(*id, seen(id)));
    on.chain(off).collect()
}

/// A provider the settings turned off, as the host's `update_all` lists
/// it: its entry in the view (`seen`, windows kept as `status --json`
/// keeps them) or, when it was never read, an empty one ([`unread`]), in
/// either case `inactive`.
pub fn turned_off(id: ProviderId, seen: Option<&ProviderStatus>) -> ProviderStatus {
    let mut provider = seen.cloned().unwrap_or_else(|| unread(id));
    provider.state = Freshness::Inactive;
    provider
}

fn parse_time(text: Option<&str>) -> Option<Timestamp> {
    text.and_then(|text| text.parse().ok())
}

/// The one-line status (`Claude 5h ━━━━━───── 45% ↺2h13m · 7d 61% │ …`).
/// `bar_for` gets a progress bar on its first window.
pub fn line(status: &Status, now: Timestamp, bar_for: Option<ProviderId>) -> String {
    if status.providers.is_empty() {
        return "no usage data yet".to_owned();
    }
    let bar_for = bar_for.or(status.providers.first().map(|provider| provider.id));
    let parts: Vec<String> = status
        .providers
        .iter()
        .map(|provider| provider_line(provider, now, Some(provider.id) == bar_for))
        .collect();
    parts.join(" │ ")
}

/// Appends the status page's word when the page is not all-clear (` ⚠ degraded`).
fn push_health(text: &mut String, provider: &ProviderStatus) {
    let health = provider
        .status_page
        .as_ref()
        .and_then(|page| Indicator::parse(&page.indicator))
        .and_then(Indicator::word);
    if let Some(word) = health {
        text.push_str(&format!(" ⚠ {word}"));
    }
}

/// One provider's part of the status line.
pub fn provider_line(provider: &ProviderStatus, now: Timestamp, with_bar: bool) -> String {
    let mut text = usage_text(provider, now, with_bar);
    push_health(&mut text, provider);
    text
}

fn usage_text(provider: &ProviderStatus, now: Timestamp, with_bar: bool) -> String {
    let label = &provider.label;
    match provider.state {
        Freshness::AuthRequired => return format!("{label}: login needed"),
        Freshness::Inactive => return format!("{label}: off"),
        Freshness::Unknown if provider.windows.is_empty() => return format!("{label}: no data"),
        Freshness::Unavailable if provider.windows.is_empty() => return format!("{label}: unavailable"),
        Freshness::RateLimited if provider.windows.is_empty() => {
            let wait = wait_s(provider, now).map(compact_duration);
            return format!("{label}: rate limited ⏳ {}", wait.unwrap_or_default());
        }
        Freshness::Fresh | Freshness::Stale if provider.windows.is_empty() => return format!("{label}: no windows"),
        _ => {}
    }
    let windows: Vec<String> = provider
        .windows
        .iter()
        .enumerate()
        .map(|(index, window)| window_text(window, now, with_bar && index == 0))
        .collect();
    let mut text = format!("{label} {}", windows.join(" · "));
    match provider.state {
        Freshness::Stale | Freshness::Unavailable => {
            if let Some(age) = provider.age_s {
                text.push_str(&format!(" ({} ago)", compact_duration(age)));
            }
        }
        Freshness::RateLimited => {
            if let Some(wait) = wait_s(provider, now) {
                text.push_str(&format!(" ⏳ {}", compact_duration(wait)));
            }
        }
        _ => {}
    }
    text
}

/// Seconds until a rate-limited provider may be asked again (0 when past).
fn wait_s(provider: &ProviderStatus, now: Timestamp) -> Option<u64> {
    parse_time(provider.blocked_until.as_deref()).map(|until| until.duration_since(now).as_secs().max(0).unsigned_abs())
}

fn window_text(window: &Window, now: Timestamp, with_bar: bool) -> String {
    let Some(used) = window.used_ratio else {
        return format!("{} ?", window.id);
    };
    let percent = (used * 100.0).round();
    let bar = if with_bar {
        let filled = (used * 10.0).round().clamp(0.0, 10.0) as usize;
        format!("{}{} ", "━".repeat(filled), "─".repeat(10 - filled))
    } else {
        String::new()
    };
    let reset = parse_time(window.resets_at.as_deref())
        .map(|at| {
            format!(
                " ↺{}",
                compact_duration(at.duration_since(now).as_secs().unsigned_abs())
            )
        })
        .unwrap_or_default();
    format!("{} {bar}{percent}%{reset}", window.id)
}

/// The one-provider display string a host shows verbatim, in the form of
/// the reference's bar: `Claude │ 5h 2h13m left ━━━━━───── 45% used │ 7d
/// 3d19h left ━━───────── 20% used`. Stale values end with their age
/// (`(3m ago)`), a rate limit with its wait (`⏳ 54m`), a provider without
/// windows says why in brackets (`Claude (login needed)`), and a status page
/// that is not all-clear adds its word (`⚠ degraded`); a provider turned
/// off says so whatever it last read (`Claude (off)`). A provider seen
/// through [`for_model`] ends its multiplier windows with the reference's
/// Copilot extra (`│ Model multiplier: 3x (312 req. left)`; `1x default`
/// for a model the table does not list).
pub fn display(provider: &ProviderStatus, now: Timestamp) -> String {
    let label = &provider.label;
    let mut text = if provider.state == Freshness::Inactive {
        format!("{label} (off)")
    } else if provider.windows.is_empty() {
        let why = match provider.state {
            Freshness::AuthRequired => "login needed".to_owned(),
            Freshness::Inactive => "off".to_owned(),
            Freshness::Unknown => "no data yet".to_owned(),
            _ => provider
                .error
                .as_ref()
                .map_or_else(|| "no windows".to_owned(), |error| error.message.clone()),
        };
        format!("{label} ({why})")
    } else {
        let mut windows: Vec<String> = provider
            .windows
            .iter()
            .map(|window| display_window(window, now))
            .collect();
        windows.extend(provider.windows.iter().filter_map(model_multiplier));
        format!("{label} │ {}", windows.join(" │ "))
    };
    match provider.state {
        Freshness::Inactive => return text,
        Freshness::Stale | Freshness::Unavailable if !provider.windows.is_empty() => {
            let age = provider.age_s.unwrap_or(0);
            text.push_str(&format!(" ({} ago)", relative(age as i64)));
        }
        Freshness::RateLimited => {
            if let Some(wait) = wait_s(provider, now) {
                text.push_str(&format!(" ⏳ {}", relative(wait as i64)));
            }
        }
        _ => {}
    }
    push_health(&mut text, provider);
    text
}

fn display_window(window: &Window, now: Timestamp) -> String {
    let reset = parse_time(window.resets_at.as_deref())
        .map(|at| format!(" {} left", relative(at.duration_since(now).as_secs())))
        .unwrap_or_default();
    match window.used_ratio {
        Some(used) => {
            let filled = (used * 10.0).round().clamp(0.0, 10.0) as usize;
            let bar = format!("{}{}", "━".repeat(filled), "─".repeat(10 - filled));
            format!("{}{reset} {bar} {}% used", window.label, (used * 100.0).round())
        }
        None => format!("{}{reset} ?", window.label),
    }
}

/// The reference's Copilot extra for the host's model: `Model
/// multiplier: 1x (165 req. left)`, or `0x (free)`. A model the table does
/// not list costs the default multiplier ([`crate::quota::DEFAULT_MULTIPLIER`],
/// 1), and says so: `Model multiplier: 1x default (165 req. left)`.
fn model_multiplier(window: &StatusWindow) -> Option<String> {
    let current = window.current_model.as_ref()?;
    let multiplier = current.requests.multiplier;
    let default = if current.matched.is_none() { " default" } else { "" };
    let left = match current.requests.requests_left {
        _ if multiplier <= 0.0 => "free".to_owned(),
        Some(left) => format!("{left} req. left"),
        None => "? req. left".to_owned(),
    };
    Some(format!("Model multiplier: {multiplier}x{default} ({left})"))
}

/// The reference's relative time: `now` when past, `45m`, `2h13m`, `5h`,
/// `3d19h`, `29d`.
pub fn relative(seconds: i64) -> String {
    if seconds <= 0 {
        return "now".to_owned();
    }
    let minutes = seconds / 60;
    let (days, hours, minutes) = (minutes / 1_440, minutes / 60 % 24, minutes % 60);
    match (days, hours, minutes) {
        (0, 0, minutes) => format!("{minutes}m"),
        (0, hours, 0) => format!("{hours}h"),
        (0, hours, minutes) => format!("{hours}h{minutes}m"),
        (days, 0, _) => format!("{days}d"),
        (days, hours, _) => format!("{days}d{hours}h"),
    }
}

/// `45s`, `54m`, `2h13m`, `9d`: the shortest readable form.
pub fn compact_duration(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3_600 => format!("{}m", seconds / 60),
        3_600..86_400 => format!("{}h{:02}m", seconds / 3_600, seconds % 3_600 / 60),
        _ => format!("{}d", seconds / 86_400),
    }
}

/// The store as a table, the tracker's debug view (`quotatrack store`).
pub fn store_table(store: &Store) -> String {
    let time = |at: Option<Timestamp>| at.map_or_else(|| "-".to_owned(), rfc3339_seconds);
    let mut out = format!(
        "{:<12} {:<14} {:<6} {:>5} {:<20} {:<20} {:<20} {:>7}  error\n",
        "provider", "machine", "active", "fails", "updated", "last good", "blocked until", "windows"
    );
    for (id, entry) in &store.providers {
        let error = entry
            .last_error
            .as_ref()
            .map_or_else(|| "-".to_owned(), |e| format!("{}: {}", e.kind.as_str(), e.message));
        out.push_str(&format!(
            "{:<12} {:<14} {:<6} {:>5} {:<20} {:<20} {:<20} {:>7}  {error}\n",
            id.as_str(),
            entry.machine_state.as_deref().unwrap_or("-"),
            entry.active.map_or("-", |active| if active { "yes" } else { "no" }),
            entry.fails,
            time(entry.updated),
            time(entry.last_good),
            time(entry.blocked_until),
            entry.windows.len(),
        ));
        for window in &entry.windows {
            out.push_str(&format!(
                "  {:<24} {:>6.1}% used  resets {}\n",
                window.id,
                window.used_ratio.unwrap_or(f64::NAN) * 100.0,
                window.resets_at.as_deref().unwrap_or("-")
            ));
        }
    }
    out.push_str(&format!(
        "controller: state {}, provider {}\n",
        store.controller.state.as_deref().unwrap_or("-"),
        store.controller.provider.map_or("-", ProviderId::as_str)
    ));
    out.push_str(&format!(
        "applied through seq {}\n",
        store.applied.map_or_else(|| "-".to_owned(), |s| s.to_string())
    ));
    out
}

/// Where the snapshot file of a data dir lives.
pub fn snapshot_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SNAPSHOT_FILE)
}

/// Replaces the snapshot file atomically: write a temporary file (0600),
/// fsync it, rename it over the old one, fsync the directory. A reader sees
/// the old file or the new one, never a torn one. The file holds the view
/// as [`stored`] keeps it.
pub fn write_snapshot(data_dir: &Path, status: &Status) -> io::Result<()> {
    let bytes = serde_json::to_vec(&stored(status).map_err(io::Error::other)?).map_err(io::Error::other)?;
    write_private_atomically(&snapshot_path(data_dir), &bytes)
}

/// The view as the snapshot file keeps it: what [`settle`] cannot derive
/// again at the reader's clock. A provider's `age_s`, a window's
/// [`DERIVED`] values and its pace but for [`PACE_KEPT`] are left out, and
/// so is every `null`; a reader settles the file and gets every value
/// back, as `status --json` prints it (so does a reader built before the
/// file was cut down: everything left out is optional to it). This halves
/// the file (18 KB for the demo's seven providers become 9 KB), and
/// `status` reads it on every run.
pub fn stored(status: &Status) -> serde_json::Result<serde_json::Value> {
    use serde_json::Value;
    // Through its text rather than `to_value`: the engine has both of these
    // already, and a serializer into `Value` for the whole view is 15 KB of
    // code more in a binary kept under 8 MB.
    let mut value: Value = serde_json::from_slice(&serde_json::to_vec(status)?)?;
    let providers = value.get_mut("providers").and_then(Value::as_array_mut);
    for provider in providers.into_iter().flatten().filter_map(Value::as_object_mut) {
        provider.remove("age_s");
        let windows = provider.get_mut("windows").and_then(Value::as_array_mut);
        for window in windows.into_iter().flatten().filter_map(Value::as_object_mut) {
            window.retain(|key, _| !DERIVED.contains(&key.as_str()));
            if let Some(pace) = window.get_mut("pace").and_then(Value::as_object_mut) {
                pace.retain(|key, _| PACE_KEPT.contains(&key.as_str()));
            }
        }
    }
    without_nulls(&mut value);
    Ok(value)
}

/// The values of a window [`derive_window`] derives from the rest at the
/// reader's clock.
pub const DERIVED: [&str; 8] = [
    "total",
    "used_percent",
    "remaining_percent",
    "progress",
    "used_time_s",
    "remaining_time_s",
    "total_time_s",
    "requests_left_by_model",
];

/// What the snapshot keeps of a window's pace: the slope and the readings
/// behind it, from which the rest is derived again, and the stage, which
/// readers built before the file was cut down require.
pub const PACE_KEPT: [&str; 3] = ["slope_per_hour", "readings", "stage"];

/// `value` without the members of its objects that are `null` (every one
/// the snapshot holds is optional and reads back as `null`).
fn without_nulls(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(members) => {
            members.retain(|_, member| !member.is_null());
            members.values_mut().for_each(without_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(without_nulls),
        _ => {}
    }
}

/// Reads the snapshot file; `Ok(None)` when there is none yet.
/// The error names the snapshot's path.
pub fn read_snapshot(data_dir: &Path) -> io::Result<Option<Status>> {
    let path = snapshot_path(data_dir);
    let at_path = |kind: io::ErrorKind, error: &dyn std::fmt::Display| {
        io::Error::new(kind, format!("{}: {error}", path.display()))
    };
    // Read only as a plain file of a bounded size: a FIFO or a device in
    // its place must not hang a status line or fill the memory.
    let bytes = match crate::files::read_plain(&path, MAX_SNAPSHOT) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) if matches!(error.kind(), io::ErrorKind::InvalidInput | io::ErrorKind::FileTooLarge) => {
            return Err(at_path(
                io::ErrorKind::InvalidData,
                &format!("{error}; remove it and the engine writes a new one"),
            ));
        }
        Err(error) => return Err(at_path(error.kind(), &error)),
    };
    // Checked as UTF-8 once, so the parser need not check each string.
    std::str::from_utf8(&bytes)
        .map_err(|error| at_path(io::ErrorKind::InvalidData, &error))
        .and_then(|text| serde_json::from_str(text).map_err(|error| at_path(io::ErrorKind::InvalidData, &error)))
        .map(Some)
}

/// The most a snapshot file may hold: the engine's are tens of kilobytes.
const MAX_SNAPSHOT: u64 = 64 * 1024 * 1024;

pub use crate::files::write_private_atomically;
