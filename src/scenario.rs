//! Scenarios: the real engine, run under a virtual clock over scripted
//! recorded responses and credential changes. `quotatrack demo` is one; the
//! incident fixtures in `fixtures/incidents/` are recorded from the others
//! (`tools/record-incidents`), so their decisions are the engine's own,
//! never hand-written.
//!
//! A script names, per provider, the fixtures its requests are answered
//! with, in order (the last one repeats), and the minutes at which
//! credentials disappear or come back. The engine polls once a minute.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;

use crate::clock::{Clock, ManualClock};
use crate::credentials::{Credential, FixedCredentials};
use crate::engine::{Engine, EngineError};
use crate::exchange::RecordedExchange;
use crate::providers::ProviderId::{self, Anthropic, Antigravity, Codex, Copilot, Gemini, Kiro, Zai};
use crate::settings::Settings;
use crate::status;
use crate::transport::ExchangePlayer;
use crate::wire::ProviderStatus;

/// One scripted run.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// The name (`demo`, or an incident id).
    pub name: &'static str,
    /// What it shows, in one sentence.
    pub about: &'static str,
    /// The virtual clock's start.
    pub start: &'static str,
    /// How long it runs, in minutes.
    pub minutes: u32,
    /// Per provider: (fixture name, how many requests it answers), in order.
    pub responses: &'static [(ProviderId, &'static [(&'static str, u32)])],
    /// (minute, provider, credentials present from then on).
    pub credentials: &'static [(u32, ProviderId, bool)],
}

/// The recorded incidents, each showing one behaviour.
pub const INCIDENTS: &[Scenario] = &[
    Scenario {
        name: "rate-limit-storm",
        about: "429s with Retry-After: 300; no request goes out before each wait ends",
        start: "2026-08-22T12:00:00Z",
        minutes: 25,
        responses: &[(
            Anthropic,
            &[("ok-full", 1), ("err-rate_limited-retry300", 3), ("ok-full", 1)],
        )],
        credentials: &[],
    },
    Scenario {
        name: "stale-last-good",
        about: "the provider fails for a while; the last good values stay, marked stale with their age",
        start: "2026-08-22T12:00:00Z",
        minutes: 20,
        responses: &[(
            Anthropic,
            &[("ok-full", 2), ("err-unavailable-502-html", 5), ("ok-full", 1)],
        )],
        credentials: &[],
    },
    Scenario {
        name: "credentials-lost-restored",
        about: "codex credentials vanish at minute 5 (windows cleared, login needed) and return at minute 12",
        start: "2026-08-22T12:00:00Z",
        minutes: 20,
        responses: &[(Codex, &[("ok-plus", 1)])],
        credentials: &[(5, Codex, false), (12, Codex, true)],
    },
    Scenario {
        name: "window-rollover",
        about: "the 5h window resets at 14:00 while the provider fails; its old numbers read as unknown until a new window is read",
        start: "2026-08-22T13:30:00Z",
        minutes: 50,
        responses: &[(
            Anthropic,
            &[
                ("ok-full", 2),
                ("err-unavailable-502-html", 8),
                ("ok-session-not-started", 1),
            ],
        )],
        credentials: &[],
    },
    Scenario {
        name: "backoff-climb",
        about: "repeated failures back off 2×, 3× … 8× the interval, then one success resets it",
        start: "2026-08-22T12:00:00Z",
        minutes: 60,
        responses: &[(Anthropic, &[("err-unavailable-502-html", 10), ("ok-full", 1)])],
        credentials: &[],
    },
];

/// The demo: all seven providers over a few hours, with a failure streak,
/// a rate limit and a lost credential.
pub const DEMO: Scenario = Scenario {
    name: "demo",
    about: "seven providers, a failure streak, a rate limit and a lost credential",
    start: "2026-08-22T12:00:00Z",
    minutes: 6 * 60,
    responses: &[
        (
            Anthropic,
            &[
                ("ok-full", 40),
                ("err-unavailable-overloaded", 4),
                ("ok-full", 40),
                ("err-rate_limited-retry300", 1),
                ("ok-full", 1),
            ],
        ),
        (Codex, &[("ok-plus", 1)]),
        (Copilot, &[("ok-paid", 1)]),
        (Gemini, &[("ok-quota", 1)]),
        (Antigravity, &[("ok-models", 1)]),
        (Kiro, &[("ok-free", 1)]),
        (Zai, &[("ok-credit-limit", 1)]),
    ],
    credentials: &[(150, Codex, false), (200, Codex, true)],
};

/// The incident named `name`.
pub fn incident(name: &str) -> Option<&'static Scenario> {
    INCIDENTS.iter().find(|scenario| scenario.name == name)
}

/// Why a scenario could not run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The script names a fixture that does not exist.
    #[error("scenario {scenario}: no fixture {provider}/{name}.json")]
    UnknownFixture {
        /// The scenario.
        scenario: &'static str,
        /// The provider.
        provider: ProviderId,
        /// The fixture name.
        name: &'static str,
    },
}

/// What a scenario run showed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    /// (`HH:MM`, what changed): the status-line parts of the providers
    /// whose state, error or numbers changed (countdowns and ages moving on
    /// are not changes).
    pub changes: Vec<(String, String)>,
    /// The status line at the end.
    pub last: String,
    /// Requests sent per provider.
    pub requests: BTreeMap<ProviderId, usize>,
}

/// Runs `scenario` for `minutes` under `settings` (the interval, retention
/// and the rest; the providers and status pages are the script's), logging
/// into `data_dir` (which then holds the run's log).
pub async fn run(
    scenario: &Scenario,
    minutes: u32,
    data_dir: &Path,
    settings: Settings,
) -> Result<Timeline, ScenarioError> {
    let start: Timestamp = scenario.start.parse().expect("scenario start times are valid");
    let clock = Arc::new(ManualClock::new(start));
    let player = Arc::new(ExchangePlayer::new(script(scenario)?, clock.clone()).holding_last());
    let providers: Vec<ProviderId> = scenario.responses.iter().map(|(id, _)| *id).collect();
    let credentials = Arc::new(Mutex::new(FixedCredentials::present(providers.clone(), "scenario")));
    let mut engine = Engine::builder()
        .settings(settings)
        .data_dir(data_dir)
        .clock(clock.clone())
        .transport(player.clone())
        .credentials(credentials.clone())
        .providers(&providers)
        // Scenarios script usage responses only.
        .status_pages(None)
        .build()?;
    let interval = engine.trackers().rules().interval;
    let mut timeline = Timeline::default();
    let mut seen: BTreeMap<ProviderId, String> = BTreeMap::new();
    for minute in 0..minutes {
        for (at, provider, present) in scenario.credentials {
            if *at == minute {
                let credential = present.then(|| Credential::new(format!("scenario-{provider}-{minute}"), "scenario"));
                credentials
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .set(*provider, credential);
            }
        }
        engine.cycle().await?;
        let now = clock.now();
        let view = engine.status();
        let changed: Vec<String> = view
            .providers
            .iter()
            .filter(|provider| seen.insert(provider.id, signature(provider)).as_ref() != Some(&signature(provider)))
            .map(|provider| status::provider_line(provider, now, false))
            .collect();
        if !changed.is_empty() {
            timeline
                .changes
                .push((now.strftime("%H:%M").to_string(), changed.join(" │ ")));
        }
        timeline.last = status::line(&view, now, None);
        clock.advance(interval);
    }
    timeline.requests = providers.iter().map(|id| (*id, player.requests(*id))).collect();
    engine.close()?;
    Ok(timeline)
}

/// What a user would notice changing about a provider: its state, its
/// error and its numbers, not the countdowns.
fn signature(provider: &ProviderStatus) -> String {
    let windows: Vec<String> = provider
        .windows
        .iter()
        .map(|w| format!("{}={:?}", w.id, w.used_ratio))
        .collect();
    let error = provider.error.as_ref().map(|e| e.kind.as_str());
    format!("{} {error:?} {}", provider.state.as_str(), windows.join(","))
}

/// The scenario's responses, expanded from the bundled fixtures: per
/// provider, what its requests are answered with, in order (play them with
/// [`ExchangePlayer::holding_last`], so the last one lasts).
pub fn script(scenario: &Scenario) -> Result<BTreeMap<ProviderId, Vec<RecordedExchange>>, ScenarioError> {
    let mut script = BTreeMap::new();
    for (provider, steps) in scenario.responses {
        let mut exchanges = Vec::new();
        for (name, count) in *steps {
            let unknown = ScenarioError::UnknownFixture {
                scenario: scenario.name,
                provider: *provider,
                name,
            };
            let text = bundled(*provider, name).ok_or(unknown)?;
            let exchange: RecordedExchange =
                serde_json::from_str(text).expect("bundled fixtures are recorded exchanges (a test reads each)");
            exchanges.extend(std::iter::repeat_n(exchange, *count as usize));
        }
        script.insert(*provider, exchanges);
    }
    Ok(script)
}

macro_rules! fixture {
    ($provider:ident, $dir:literal, $name:literal) => {
        (
            $provider,
            $name,
            // As build.rs bundles them: without the whitespace between tokens.
            include_str!(concat!(env!("OUT_DIR"), "/fixtures/", $dir, "/", $name, ".json")),
        )
    };
}

/// The fixtures scenarios use, compiled in so that `demo` runs from an
/// installed binary too.
const BUNDLED: &[(ProviderId, &str, &str)] = &[
    fixture!(Anthropic, "anthropic", "ok-full"),
    fixture!(Anthropic, "anthropic", "ok-session-not-started"),
    fixture!(Anthropic, "anthropic", "err-unavailable-502-html"),
    fixture!(Anthropic, "anthropic", "err-unavailable-overloaded"),
    fixture!(Anthropic, "anthropic", "err-rate_limited-retry300"),
    fixture!(Codex, "codex", "ok-plus"),
    fixture!(Copilot, "copilot", "ok-paid"),
    fixture!(Gemini, "gemini", "ok-quota"),
    fixture!(Antigravity, "antigravity", "ok-models"),
    fixture!(Kiro, "kiro", "ok-free"),
    fixture!(Zai, "zai", "ok-credit-limit"),
];

/// The bundled fixture `provider/name`.
pub fn bundled(provider: ProviderId, name: &str) -> Option<&'static str> {
    BUNDLED
        .iter()
        .find(|(id, bundled_name, _)| *id == provider && *bundled_name == name)
        .map(|(_, _, text)| *text)
}
