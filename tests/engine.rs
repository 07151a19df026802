//! The engine under tokio's paused clock: cycles every interval, backoff
//! as the formula says, rate limits that hold back every request, and
//! subscribers told once per cycle. Hours of engine time run in
//! milliseconds, and no test waits on the wall clock.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use quotatrack::clock::{Clock, TokioClock};
use quotatrack::credentials::FixedCredentials;
use quotatrack::engine::Engine;
use quotatrack::events::{Cause, Envelope, Event};
use quotatrack::exchange::RecordedExchange;
use quotatrack::providers::ProviderId::{self, Anthropic};
use quotatrack::transport::ExchangePlayer;
use quotatrack::wire::Freshness;
use tempfile::TempDir;

use crate::support::exchange;

/// An engine over one provider whose responses are `script`, in order.
pub struct Rig {
    pub engine: Engine,
    pub player: Arc<ExchangePlayer>,
    pub clock: Arc<TokioClock>,
    _dir: TempDir,
}

impl Rig {
    pub fn new(script: BTreeMap<ProviderId, Vec<RecordedExchange>>) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(TokioClock::starting_at(start()));
        let player = Arc::new(ExchangePlayer::new(script.clone(), clock.clone()));
        let providers: Vec<ProviderId> = script.keys().copied().collect();
        let engine = Engine::builder()
            .data_dir(dir.path())
            .clock(clock.clone())
            .transport(player.clone())
            .credentials(Arc::new(FixedCredentials::present(providers.clone(), "test")))
            .providers(&providers)
            .build()
            .unwrap();
        Rig {
            engine,
            player,
            clock,
            _dir: dir,
        }
    }

    pub fn one(provider: ProviderId, names: &[&str]) -> Rig {
        let script = names.iter().map(|name| exchange(provider, name)).collect();
        Rig::new(BTreeMap::from([(provider, script)]))
    }

    /// Runs the engine's own loop until `minutes` of engine time have passed.
    pub async fn run_for(&mut self, minutes: i64) {
        let stop = tokio::time::sleep(std::time::Duration::from_secs(minutes as u64 * 60));
        self.engine.run(stop).await.unwrap();
    }

    pub fn events(&self) -> Vec<Envelope> {
        self.engine
            .log()
            .expect("a log on disk")
            .entries(0)
            .map(Result::unwrap)
            .collect()
    }

    /// The minutes (from the start) at which fetches started.
    pub fn fetch_minutes(&self) -> Vec<i64> {
        self.events()
            .iter()
            .filter(|e| matches!(e.payload, Event::FetchStarted { .. }))
            .map(|e| e.at.duration_since(start()).as_secs() / 60)
            .collect()
    }
}

pub fn start() -> Timestamp {
    "2026-08-22T12:00:00Z".parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn ten_cycles_at_sixty_seconds_run_instantly() {
    let mut rig = Rig::one(Anthropic, &["ok-full"]);
    let mut updates = rig.engine.subscribe();
    let wall = std::time::Instant::now();
    rig.run_for(10).await;
    let wall = wall.elapsed();

    assert_eq!(rig.fetch_minutes(), (0..10).collect::<Vec<_>>());
    assert_eq!(rig.player.requests(Anthropic), 10);
    let mut notified = 0;
    while updates.try_recv().is_ok() {
        notified += 1;
    }
    assert_eq!(notified, 10, "subscribers hear once per cycle");
    let status = rig.engine.status();
    assert_eq!(status.providers[0].state, Freshness::Fresh);
    assert!(!status.providers[0].windows.is_empty());
    // Ten minutes of engine time, far less of the wall clock (reported, not asserted).
    eprintln!("10 cycles of 60 s took {wall:?} of wall time");
    assert_eq!(rig.clock.now().duration_since(start()), SignedDuration::from_mins(10));
}

#[tokio::test(start_paused = true)]
async fn backoff_multipliers_climb_to_eight_then_hold() {
    let mut rig = Rig::one(Anthropic, &["err-unavailable-502-html"]);
    rig.run_for(60).await;
    // Gaps after each failure: 2, 3, 4, 5, 6, 7, 8, 8 … intervals.
    assert_eq!(rig.fetch_minutes(), vec![0, 2, 5, 9, 14, 20, 27, 35, 43, 51, 59]);
    let skips = rig
        .events()
        .iter()
        .filter(|e| {
            matches!(
                e.payload,
                Event::Transitioned {
                    cause: Cause::ThrottleSkipped,
                    ..
                }
            )
        })
        .count();
    assert_eq!(skips, 60 - 11, "every cycle without a fetch is a logged skip");
}

#[tokio::test(start_paused = true)]
async fn backoff_resets_after_a_success() {
    let failures = ["err-unavailable-502-html"; 3];
    let mut names: Vec<&str> = failures.to_vec();
    names.push("ok-full");
    names.extend(failures);
    let mut rig = Rig::one(Anthropic, &names);
    rig.run_for(30).await;
    // Fail at 0, 2, 5; succeed at 9; fail again at 10 (1× after a success),
    // then back off afresh: 12, 15, 19, 24.
    assert_eq!(rig.fetch_minutes(), vec![0, 2, 5, 9, 10, 12, 15, 19, 24]);
}

#[tokio::test(start_paused = true)]
async fn retry_after_one_hour_means_no_request_for_an_hour() {
    let mut limited = exchange(Anthropic, "err-rate_limited-retry300");
    limited.response.headers.insert("retry-after".into(), "3600".into());
    let ok = exchange(Anthropic, "ok-full");
    let mut rig = Rig::new(BTreeMap::from([(Anthropic, vec![ok.clone(), limited, ok])]));
    rig.run_for(1).await;
    assert_eq!(rig.player.requests(Anthropic), 1);
    rig.run_for(1).await; // minute 1: the 429
    assert_eq!(rig.player.requests(Anthropic), 2);
    let status = rig.engine.status();
    assert_eq!(status.providers[0].state, Freshness::RateLimited);
    assert!(status.providers[0].blocked_until.is_some());
    assert!(!status.providers[0].windows.is_empty(), "the last good windows stay");

    rig.run_for(59).await; // minutes 2 ..= 60: blocked until minute 61
    assert_eq!(rig.player.requests(Anthropic), 2, "zero requests during the hour");
    rig.run_for(1).await;
    assert_eq!(
        rig.player.requests(Anthropic),
        3,
        "the first cycle after the hour fetches"
    );
    assert_eq!(rig.engine.status().providers[0].state, Freshness::Fresh);
}

#[tokio::test(start_paused = true)]
async fn rejected_credentials_are_probed_only_at_the_longest_backoff() {
    let mut rig = Rig::one(Anthropic, &["err-auth-expired"]);
    rig.run_for(30).await;
    assert_eq!(rig.fetch_minutes(), vec![0, 8, 16, 24]);
    assert_eq!(rig.engine.status().providers[0].state, Freshness::AuthRequired);
}

/// A provider that never answers.
struct Silent;

impl quotatrack::transport::Transport for Silent {
    fn send<'a>(
        &'a self,
        _: &'a quotatrack::transport::Request,
    ) -> quotatrack::clock::BoxFuture<'a, Result<RecordedExchange, quotatrack::transport::TransportError>> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test(start_paused = true)]
async fn a_fetch_that_never_answers_is_cut_off_at_five_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TokioClock::starting_at(start()));
    let mut engine = Engine::builder()
        .data_dir(dir.path())
        .clock(clock.clone())
        .transport(Arc::new(Silent))
        .credentials(Arc::new(FixedCredentials::present([Anthropic], "test")))
        .providers(&[Anthropic])
        .build()
        .unwrap();
    engine.cycle().await.unwrap();
    assert_eq!(clock.now().duration_since(start()), SignedDuration::from_secs(5));
    let status = engine.status();
    assert_eq!(status.providers[0].state, Freshness::Unavailable);
    assert_eq!(
        status.providers[0].error.as_ref().unwrap().message,
        "Claude: no answer within 5 s"
    );
    let completed = engine
        .log()
        .expect("a log on disk")
        .entries(0)
        .map(Result::unwrap)
        .find_map(|e| match e.payload {
            Event::FetchCompleted {
                exchange, elapsed_ms, ..
            } => Some((exchange, elapsed_ms)),
            _ => None,
        })
        .unwrap();
    assert_eq!(completed, (None, 5_000), "no exchange, and the time it took");
}

/// A quiet provider answers the same body every minute: the log stores it
/// once, the later fetches say `body_repeated`, and replay puts the body
/// back (a body read as `null` would parse as malformed and diverge).
#[tokio::test(start_paused = true)]
async fn a_repeated_body_is_stored_once_and_replays() {
    let mut rig = Rig::one(Anthropic, &["ok-full", "ok-full", "ok-session-not-started", "ok-full"]);
    rig.run_for(4).await;
    let events = rig.events();
    let fetches: Vec<(bool, bool)> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Event::FetchCompleted {
                exchange: Some(exchange),
                body_repeated,
                ..
            } => Some((*body_repeated, exchange.response.body.is_null())),
            _ => None,
        })
        .collect();
    // Stored, repeated, a different body stored, then stored again (it
    // differs from the one just before it).
    assert_eq!(fetches, [(false, false), (true, true), (false, false), (false, false)]);
    let report = quotatrack::replay::replay(&events, &Default::default());
    assert!(report.identical(), "{:?}", report.divergence.map(|d| d.line()));

    // The exported line of a repeated fetch holds no body, and reads back.
    let repeated = events
        .iter()
        .find(|e| {
            matches!(
                e.payload,
                Event::FetchCompleted {
                    body_repeated: true,
                    ..
                }
            )
        })
        .unwrap();
    let line = String::from_utf8(repeated.to_json()).unwrap();
    assert!(
        line.contains(r#""body":null"#) && line.contains(r#""body_repeated":true"#),
        "{line}"
    );
    assert_eq!(&Envelope::from_json(line.as_bytes()).unwrap(), repeated);

    // Retention dropped the first body: the repeat cannot be restored, and
    // its recorded reading stands.
    let mut compacted = events.clone();
    if let Some(Event::FetchCompleted { exchange, .. }) = compacted
        .iter_mut()
        .map(|e| &mut e.payload)
        .find(|event| matches!(event, Event::FetchCompleted { .. }))
    {
        *exchange = None;
    }
    let report = quotatrack::replay::replay(&compacted, &Default::default());
    assert!(report.identical(), "{:?}", report.divergence.map(|d| d.line()));
}

/// Settings govern what is fetched: a provider a host's patch disables is
/// no longer requested and reads `inactive`; enabled again, it is fetched
/// once the minimum interval since its last request has passed, and the
/// run replays to its own log.
#[tokio::test(start_paused = true)]
async fn a_disabled_provider_is_not_fetched_and_reads_inactive_until_enabled_again() {
    use quotatrack::events::HostEvent;
    use quotatrack::providers::ProviderId::Zai;
    use serde_json::json;

    let script = BTreeMap::from([
        (Anthropic, vec![exchange(Anthropic, "ok-full")]),
        (Zai, vec![exchange(Zai, "ok-tokens-limit-with-time-limit")]),
    ]);
    let mut rig = Rig::new(script);
    rig.engine.start().await.unwrap();
    rig.engine.cycle().await.unwrap();
    assert_eq!(rig.player.requests(Zai), 1);

    let patch = |providers: serde_json::Value| HostEvent::SettingsPatch {
        patch: json!({ "providers": providers }),
    };
    rig.engine.handle(patch(json!(["anthropic"]))).await.unwrap();
    let zai = |rig: &Rig| rig.engine.status().providers.into_iter().find(|p| p.id == Zai).unwrap();
    assert_eq!(zai(&rig).state, Freshness::Inactive);
    for _ in 0..3 {
        tokio::time::advance(std::time::Duration::from_secs(60)).await;
        rig.engine.cycle().await.unwrap();
    }
    assert_eq!(rig.player.requests(Zai), 1, "a disabled provider is not requested");
    assert_eq!(rig.player.requests(Anthropic), 4);
    assert_eq!(zai(&rig).state, Freshness::Inactive);

    rig.engine.handle(patch(json!(["anthropic", "zai"]))).await.unwrap();
    rig.engine.cycle().await.unwrap();
    assert_eq!(
        rig.player.requests(Zai),
        2,
        "enabled again, it is fetched at the next cycle"
    );
    assert_ne!(zai(&rig).state, Freshness::Inactive);

    let report = quotatrack::replay::replay(&rig.events(), &Default::default());
    assert!(report.identical(), "{}", report.divergence.unwrap().line());
}
