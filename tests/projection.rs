//! The store as a fold of the log: generated event sequences covering every
//! event kind fold to the same store live, from the whole log and from a
//! checkpoint plus its tail; export/import round-trips byte for byte; and
//! the store's rules (a failure keeps the last good windows, a passed reset
//! reads as unknown, stale values carry their age) hold.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use quotatrack::events::{Cause, Envelope, Event, HostEvent, Outcome, Stream};
use quotatrack::exchange::{RecordedExchange, RecordedRequest, RecordedResponse};
use quotatrack::journal::Journal;
use quotatrack::log::Log;
use quotatrack::providers::{ErrorKind, ProviderId};
use quotatrack::quota::Unit;
use quotatrack::status::{self, StatusOptions};
use quotatrack::store::Store;
use quotatrack::wire::{ErrorBody, Freshness, Window};
use serde_json::json;

pub const T0: i64 = 1_795_000_000;

pub fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(T0 + seconds).unwrap()
}

fn provider() -> impl Strategy<Value = ProviderId> {
    prop::sample::select(ProviderId::ALL.to_vec())
}

fn stream() -> impl Strategy<Value = Stream> {
    prop_oneof![
        Just(Stream::Engine),
        Just(Stream::Controller),
        provider().prop_map(Stream::Tracker)
    ]
}

pub fn window(id: &str, used_ratio: f64, resets_at: Option<Timestamp>) -> Window {
    Window {
        id: id.to_owned(),
        label: id.to_owned(),
        used_ratio: Some(used_ratio),
        remaining_ratio: Some(1.0 - used_ratio),
        used: Some(used_ratio * 100.0),
        remaining: Some(100.0 - used_ratio * 100.0),
        limit: Some(100.0),
        unit: Some(Unit::Percent),
        resets_at: resets_at.map(quotatrack::wire::rfc3339_seconds),
        window_seconds: Some(18_000),
        model: None,
        quota: None,
        window_type: None,
        reset_behavior: None,
        model_ids: Vec::new(),
        reset_passed: false,
    }
}

fn windows() -> impl Strategy<Value = Vec<Window>> {
    prop::collection::vec(
        (
            prop::sample::select(vec!["5h", "7d", "premium"]),
            0.0..=1.0f64,
            prop::option::of(0i64..100_000),
        ),
        0..3,
    )
    .prop_map(|items| {
        items
            .into_iter()
            .map(|(id, used, reset)| window(id, (used * 1e6).round() / 1e6, reset.map(at)))
            .collect()
    })
}

fn error_kind() -> impl Strategy<Value = ErrorKind> {
    prop::sample::select(vec![
        ErrorKind::Auth,
        ErrorKind::RateLimited,
        ErrorKind::Unavailable,
        ErrorKind::ApiError,
        ErrorKind::Malformed,
    ])
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        (prop::option::of("[a-z]{1,8}"), windows()).prop_map(|(plan, windows)| Outcome::Usage { plan, windows }),
        (error_kind(), "[ -~]{0,20}", prop::option::of(0u64..4_000)).prop_map(|(kind, message, retry_after_s)| {
            Outcome::Failed {
                error: ErrorBody {
                    kind,
                    message,
                    retry_after_s,
                },
            }
        }),
    ]
}

fn exchange(provider: ProviderId) -> RecordedExchange {
    RecordedExchange {
        provider,
        recorded_at: at(0),
        request: RecordedRequest {
            method: "GET".to_owned(),
            url: provider.provider().request().url(),
            headers: BTreeMap::from([("authorization".to_owned(), "[redacted]".to_owned())]),
        },
        response: RecordedResponse {
            status: 200,
            headers: BTreeMap::new(),
            body: json!({"five_hour": {"utilization": 12.5, "resets_at": null}}),
        },
    }
}

fn cause() -> impl Strategy<Value = Cause> {
    prop::sample::select(vec![
        Cause::FetchSucceeded,
        Cause::FetchFailed,
        Cause::AuthLost,
        Cause::AuthRestored,
        Cause::AuthRejected,
        Cause::ThrottleSkipped,
        Cause::RateLimited,
        Cause::RateLimitExpired,
        Cause::CycleProbed,
        Cause::Started,
        Cause::SettingsLoaded,
        Cause::AlreadyActive,
        Cause::SessionStarted,
        Cause::RefreshRequested,
        Cause::CacheHit,
        Cause::CachedFallback,
        Cause::NoProvider,
        Cause::Disabled,
        Cause::Enabled,
        Cause::ShutDown,
    ])
}

fn host_event() -> impl Strategy<Value = HostEvent> {
    prop_oneof![
        Just(HostEvent::SessionStart),
        Just(HostEvent::TurnStart),
        Just(HostEvent::ToolResult),
        Just(HostEvent::TurnEnd),
        Just(HostEvent::SessionShutdown),
        Just(HostEvent::Refresh),
        Just(HostEvent::CycleProvider),
        Just(HostEvent::Interval),
        (10u64..600).prop_map(|seconds| HostEvent::SettingsPatch {
            patch: json!({"refresh_interval_s": seconds}),
        }),
        (prop::option::of("[a-z-]{1,12}"), "[a-z0-9-]{1,12}")
            .prop_map(|(provider, model)| HostEvent::ModelChanged { provider, model }),
    ]
}

/// Every event kind, with small values so that sequences collide on providers.
pub fn event() -> impl Strategy<Value = Event> {
    let state = || prop::sample::select(vec!["idle", "fetching", "backing_off", "rate_limited", "inactive"]);
    prop_oneof![
        Just(Event::ClockTicked),
        (provider(), "[0-9a-f]{4}").prop_map(|(provider, fingerprint)| Event::CredentialsFound {
            provider,
            fingerprint,
            source: "env".to_owned(),
        }),
        provider().prop_map(|provider| Event::CredentialsLost { provider }),
        provider().prop_map(|provider| Event::FetchStarted { provider }),
        (provider(), outcome(), any::<bool>(), 0u64..5_000).prop_map(|(provider, outcome, with_body, elapsed_ms)| {
            Event::FetchCompleted {
                provider,
                exchange: with_body.then(|| Box::new(exchange(provider))),
                body_repeated: false,
                outcome,
                elapsed_ms,
            }
        }),
        (
            provider(),
            prop::sample::select(vec!["none", "minor", "major"]),
            prop::option::of("[a-z ]{0,10}")
        )
            .prop_map(|(provider, indicator, description)| Event::StatusChecked {
                provider,
                indicator: indicator.to_owned(),
                description,
                exchange: None,
                body_repeated: false,
            }),
        (10u64..600).prop_map(|seconds| Event::SettingsChanged {
            patch: json!({"refresh_interval_s": seconds}),
        }),
        host_event().prop_map(|host| Event::HostReported { host }),
        (prop::option::of(provider()), any::<bool>())
            .prop_map(|(provider, force)| Event::RefreshRequested { provider, force }),
        Just(Event::CycleRequested),
        (state(), state(), cause(), prop::option::of(provider())).prop_map(|(from, to, cause, provider)| {
            Event::Transitioned {
                from: from.to_owned(),
                to: to.to_owned(),
                cause,
                provider,
            }
        }),
        (provider(), 0u32..9, any::<bool>(), prop::option::of(0i64..100_000)).prop_map(
            |(provider, fails, active, blocked)| Event::StoreUpdated {
                provider,
                fails,
                active,
                blocked_until: blocked.map(at),
            }
        ),
        prop::option::of(provider()).prop_map(|provider| Event::ProviderSelected { provider }),
    ]
}

/// Batches of events (a cycle appends one batch), with their streams.
fn batches() -> impl Strategy<Value = Vec<Vec<(Stream, Event)>>> {
    prop::collection::vec(prop::collection::vec((stream(), event()), 1..6), 1..25)
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..Config::default()
    }
}

fn export(log: &Log) -> Vec<u8> {
    let mut out = Vec::new();
    let report = log.export(0, &mut out).unwrap();
    assert!(report.skipped.is_empty(), "{report:?}");
    out
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn live_fold_equals_rebuild_and_checkpoint_plus_tail(batches in batches(), every in 1u64..12) {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path()).unwrap().checkpoint_every(every);
        let mut clock = 0;
        let mut recorded: Vec<Envelope> = Vec::new();
        for batch in batches {
            clock += 60;
            let items = batch.into_iter().map(|(stream, event)| (at(clock), stream, event));
            recorded.extend(journal.record(items).unwrap());
        }
        let live = journal.store().clone();
        prop_assert_eq!(&live, &Store::from_events(&recorded));
        prop_assert_eq!(&live, &journal.log().expect("a log on disk").rebuild().unwrap());
        prop_assert_eq!(&live, &journal.log().expect("a log on disk").load().unwrap());
        let verify = journal.log().expect("a log on disk").verify();
        prop_assert_eq!(verify.first_problem, None);
        prop_assert_ne!(verify.checkpoint_agrees, Some(false));
        drop(journal);
        // Reopened without a clean shutdown: the last checkpoint plus the tail.
        let reopened = Journal::open(dir.path()).unwrap();
        prop_assert_eq!(&live, reopened.store());
        reopened.close().unwrap();
        let log = Log::open(dir.path()).unwrap();
        prop_assert_eq!(log.read_checkpoint(), Some(live));
    }

    #[test]
    fn export_import_export_is_identical(batches in batches()) {
        let source = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(source.path()).unwrap();
        for (index, batch) in batches.into_iter().enumerate() {
            let items = batch.into_iter().map(|(stream, event)| (at(index as i64), stream, event));
            journal.record(items).unwrap();
        }
        let first = export(journal.log().expect("a log on disk"));
        let target = tempfile::tempdir().unwrap();
        let mut imported = Log::open(target.path()).unwrap();
        imported.import(first.as_slice()).unwrap();
        let second = export(&imported);
        prop_assert_eq!(String::from_utf8_lossy(&second), String::from_utf8_lossy(&first));
        prop_assert_eq!(imported.load().unwrap(), journal.store().clone());
        prop_assert_eq!(imported.next_seq(), journal.log().expect("a log on disk").next_seq());
    }

    #[test]
    fn every_event_round_trips_through_its_json(stream in stream(), event in event(), seq in any::<u64>()) {
        let envelope = Envelope { stream, seq, at: at(seq as i64 % 1_000_000), payload: event };
        let json = envelope.to_json();
        prop_assert_eq!(Envelope::from_json(&json), Ok(envelope));
    }
}

/// A provider's store entry after `events`, each at its own minute.
fn store_after(events: Vec<Event>) -> Store {
    let envelopes: Vec<Envelope> = events
        .into_iter()
        .enumerate()
        .map(|(index, payload)| Envelope {
            stream: Stream::Tracker(ProviderId::Anthropic),
            seq: index as u64,
            at: at(60 * index as i64),
            payload,
        })
        .collect();
    Store::from_events(&envelopes)
}

fn fetched(outcome: Outcome) -> Event {
    Event::FetchCompleted {
        provider: ProviderId::Anthropic,
        exchange: None,
        body_repeated: false,
        outcome,
        elapsed_ms: 120,
    }
}

fn usage(windows: Vec<Window>) -> Outcome {
    Outcome::Usage { plan: None, windows }
}

fn failure(kind: ErrorKind) -> Outcome {
    Outcome::Failed {
        error: ErrorBody {
            kind,
            message: "http 503: overloaded".to_owned(),
            retry_after_s: None,
        },
    }
}

#[test]
fn a_failed_fetch_keeps_the_last_good_windows() {
    let good = vec![window("5h", 0.45, Some(at(7_200)))];
    let store = store_after(vec![
        fetched(usage(good.clone())),
        fetched(failure(ErrorKind::Unavailable)),
    ]);
    let entry = &store.providers[&ProviderId::Anthropic];
    assert_eq!(entry.windows, good);
    assert_eq!(entry.last_good, Some(at(0)));
    assert_eq!(entry.updated, Some(at(60)));
    let view = status::view(&store, at(120), &StatusOptions::default());
    let provider = &view.providers[0];
    assert_eq!(provider.state, Freshness::Unavailable);
    assert_eq!(provider.windows[0].used_ratio, Some(0.45));
    assert_eq!(provider.error.as_ref().map(|e| e.kind), Some(ErrorKind::Unavailable));
    assert_eq!(provider.age_s, Some(120));
}

#[test]
fn a_window_whose_reset_has_passed_reads_as_unknown_until_fresh_data() {
    let store = store_after(vec![fetched(usage(vec![
        window("5h", 0.9, Some(at(600))),
        window("7d", 0.2, Some(at(86_400))),
    ]))]);
    let view = status::view(&store, at(601), &StatusOptions::default());
    let windows = &view.providers[0].windows;
    assert!(windows[0].reset_passed);
    assert_eq!((windows[0].used_ratio, windows[0].remaining_ratio), (None, None));
    assert_eq!((windows[0].used, windows[0].remaining), (None, None));
    assert!(!windows[1].reset_passed);
    assert_eq!(windows[1].used_ratio, Some(0.2));
    let line = status::line(&view, at(601), None);
    assert!(line.starts_with("Claude 5h ? · 7d 20%"), "{line}");
}

#[test]
fn stale_values_carry_their_age() {
    let store = store_after(vec![fetched(usage(vec![window("5h", 0.45, Some(at(9_000)))]))]);
    let options = StatusOptions {
        stale_after: SignedDuration::from_secs(180),
        ..StatusOptions::default()
    };
    let fresh = status::view(&store, at(170), &options);
    assert_eq!(fresh.providers[0].state, Freshness::Fresh);
    let stale = status::view(&store, at(600), &options);
    assert_eq!(stale.providers[0].state, Freshness::Stale);
    assert_eq!(stale.providers[0].age_s, Some(600));
    assert_eq!(
        status::line(&stale, at(600), Some(ProviderId::Codex)),
        "Claude 5h 45% ↺2h20m (10m ago)"
    );
    // A reader of an old snapshot re-derives the age with its own clock.
    let mut snapshot = fresh.clone();
    status::settle(&mut snapshot, at(600), &options);
    assert_eq!(snapshot, stale);
}

#[test]
fn a_rate_limit_lasts_until_blocked_until() {
    let store = store_after(vec![
        fetched(usage(vec![window("5h", 0.5, None)])),
        fetched(failure(ErrorKind::RateLimited)),
        Event::StoreUpdated {
            provider: ProviderId::Anthropic,
            fails: 1,
            active: true,
            blocked_until: Some(at(3_300)),
        },
    ]);
    let limited = status::view(&store, at(120), &StatusOptions::default());
    assert_eq!(limited.providers[0].state, Freshness::RateLimited);
    assert_eq!(status::line(&limited, at(120), None), "Claude 5h ━━━━━───── 50% ⏳ 53m");
    let after = status::view(&store, at(3_301), &StatusOptions::default());
    assert_eq!(after.providers[0].state, Freshness::Stale);
}

#[test]
fn losing_credentials_clears_windows_and_asks_for_a_login() {
    let store = store_after(vec![
        fetched(usage(vec![window("5h", 0.5, None)])),
        Event::CredentialsLost {
            provider: ProviderId::Anthropic,
        },
    ]);
    let entry = &store.providers[&ProviderId::Anthropic];
    assert!(entry.windows.is_empty());
    let view = status::view(&store, at(120), &StatusOptions::default());
    assert_eq!(view.providers[0].state, Freshness::AuthRequired);
    let message = &view.providers[0].error.as_ref().unwrap().message;
    assert_eq!(message, "no credentials found for anthropic; run `claude /login`");
    assert_eq!(status::line(&view, at(120), None), "Claude: login needed");
}

#[test]
fn status_json_windows_carry_every_footer_value_at_the_view_clock() {
    // Fetched at 0; viewed at 600. The 5h window (18 000 s) resets at
    // 8 580: 7 980 s left, 10 020 s run, 55.666667 % of its time.
    let store = store_after(vec![fetched(usage(vec![
        window("5h", 0.45, Some(at(8_580))),
        window("7d", 0.2, Some(at(300))),
        window("30d", 0.1, None),
    ]))]);
    let view = status::view(&store, at(600), &StatusOptions::default());
    let json = serde_json::to_value(&view).unwrap();
    let windows = &json["providers"][0]["windows"];
    let fields = |index: usize| {
        let window = &windows[index];
        [
            "used_percent",
            "remaining_percent",
            "used",
            "remaining",
            "total",
            "progress",
            "used_time_s",
            "remaining_time_s",
            "total_time_s",
        ]
        .map(|name| {
            assert!(window.get(name).is_some(), "{name} missing from {window}");
            window[name].clone()
        })
    };
    assert_eq!(
        fields(0),
        [
            json!(45.0),
            json!(55.0),
            json!(45.0),
            json!(55.0),
            json!(100.0),
            json!(55.666667),
            json!(10_020),
            json!(7_980),
            json!(18_000)
        ]
    );
    // The 7d window reset at 300: its state is unknown, its size is not.
    let null = serde_json::Value::Null;
    assert_eq!(
        fields(1),
        [
            null.clone(),
            null.clone(),
            null.clone(),
            null.clone(),
            json!(100.0),
            null.clone(),
            null.clone(),
            null.clone(),
            json!(18_000)
        ]
    );
    // No reset time: no time run or left.
    let no_reset = fields(2);
    assert_eq!(
        no_reset[..5],
        [json!(10.0), json!(90.0), json!(10.0), json!(90.0), json!(100.0)]
    );
    assert_eq!(no_reset[5..], [null.clone(), null.clone(), null, json!(18_000)]);
    // Derived, never stored: the same store an hour later says an hour more.
    let later = status::view(&store, at(4_200), &StatusOptions::default());
    assert_eq!(later.providers[0].windows[0].remaining_time_s, Some(4_380));
    assert_eq!(later.providers[0].windows[0].used_time_s, Some(13_620));
    // ...and a snapshot settled later agrees with a view taken then.
    let mut snapshot = view.clone();
    status::settle(&mut snapshot, at(4_200), &StatusOptions::default());
    assert_eq!(snapshot, later);
}

#[test]
fn status_json_windows_say_how_they_move_and_which_models_they_count() {
    // Every one was recorded at 2026-08-22T12:00:00Z, before its resets.
    let recorded = crate::support::exchange(ProviderId::Copilot, "ok-paid").recorded_at;
    let parse = |provider: ProviderId, name: &str| {
        let exchange = crate::support::exchange(provider, name);
        assert_eq!(exchange.recorded_at, recorded, "{provider} {name}");
        quotatrack::events::Outcome::read(&exchange, recorded)
    };
    let envelopes: Vec<Envelope> = [
        (ProviderId::Anthropic, "ok-full"),
        (ProviderId::Copilot, "ok-paid"),
        (ProviderId::Gemini, "ok-quota"),
    ]
    .into_iter()
    .enumerate()
    .map(|(seq, (provider, name))| Envelope {
        stream: Stream::Tracker(provider),
        seq: seq as u64,
        at: recorded,
        payload: Event::FetchCompleted {
            provider,
            exchange: None,
            body_repeated: false,
            outcome: parse(provider, name),
            elapsed_ms: 120,
        },
    })
    .collect();
    let store = Store::from_events(&envelopes);
    let view = status::view(&store, recorded, &StatusOptions::default());
    let json = serde_json::to_value(&view).unwrap();
    let window = |provider: &str, id: &str| {
        let providers = json["providers"].as_array().unwrap();
        let entry = providers.iter().find(|p| p["id"] == provider).unwrap();
        let windows = entry["windows"].as_array().unwrap();
        windows
            .iter()
            .find(|w| w["id"] == id)
            .unwrap_or_else(|| panic!("{provider} {id} in {windows:?}"))
            .clone()
    };
    let claude_5h = window("anthropic", "5h");
    assert_eq!(
        (&claude_5h["window_type"], &claude_5h["reset_behavior"]),
        (&json!("session"), &json!("session_start"))
    );
    let claude_week = window("anthropic", "7d");
    assert_eq!(
        (&claude_week["window_type"], &claude_week["reset_behavior"]),
        (&json!("rolling"), &json!("continuous"))
    );
    let premium = window("copilot", "premium");
    assert_eq!(
        (&premium["window_type"], &premium["reset_behavior"]),
        (&json!("fixed"), &json!("calendar"))
    );
    assert!(
        premium.get("model_ids").is_none(),
        "premium counts every model: {premium}"
    );
    let opus = &premium["requests_left_by_model"]["claude-opus-4.5"];
    let remaining = premium["remaining"].as_f64().unwrap();
    assert_eq!(opus["multiplier"], json!(3.0));
    assert_eq!(opus["requests_left"], json!((remaining / 3.0).floor()));
    assert_eq!(
        premium["requests_left_by_model"]["gpt-4o"]["requests_left"],
        json!(null)
    );
    // Gemini's per-model windows name their model; a family aggregate names
    // every model it combined.
    let entry = json["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "gemini")
        .unwrap()
        .clone();
    for window in entry["windows"].as_array().unwrap() {
        let models = window["model_ids"]
            .as_array()
            .unwrap_or_else(|| panic!("model_ids in {window}"));
        // An aggregate's `model` is its most constrained model, one of them.
        assert!(models.contains(&window["model"]), "{window}");
    }
    let flash = window("gemini", "flash");
    assert_eq!(flash["model_ids"], json!(["gemini-2.5-flash", "gemini-2.5-flash-lite"]));
    assert_eq!(
        window("gemini", "gemini-2.5-pro")["model_ids"],
        json!(["gemini-2.5-pro"])
    );
}

/// `status --json` for every bundled fixture, as a user sees it after
/// `status --refresh` over that one response: the real binary, a data dir
/// of its own, the clock stopped at the fixture's recording.
#[test]
fn every_fixture_shows_in_status_json_with_every_window_value() {
    insta::glob!("../fixtures/providers", "*/*.json", |path| {
        let fixture = crate::support::Fixture::load(path);
        let fixtures = tempfile::tempdir().unwrap();
        let own = fixtures.path().join(fixture.provider.as_str());
        std::fs::create_dir(&own).unwrap();
        std::fs::copy(path, own.join(path.file_name().unwrap())).unwrap();
        let data = tempfile::tempdir().unwrap();
        let clock = quotatrack::wire::rfc3339_seconds(fixture.recorded_at);
        let output = crate::support::quotatrack(
            &[
                "--data-dir",
                data.path().to_str().unwrap(),
                "--fixtures",
                fixtures.path().to_str().unwrap(),
                "--clock-at",
                &clock,
                "status",
                "--refresh",
                "--json",
                "--provider",
                fixture.provider.as_str(),
            ],
            b"",
        );
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        for window in json["providers"][0]["windows"].as_array().unwrap() {
            for name in [
                "used_percent",
                "remaining_percent",
                "progress",
                "used_time_s",
                "remaining_time_s",
                "total_time_s",
                "total",
            ] {
                assert!(window.get(name).is_some(), "{name} missing from {window}");
            }
        }
        insta::assert_json_snapshot!(json);
    });
}

#[test]
fn a_snapshot_file_from_before_the_window_values_reads_with_them_derived() {
    let store = store_after(vec![fetched(usage(vec![window("5h", 0.45, Some(at(8_580)))]))]);
    let view = status::view(&store, at(600), &StatusOptions::default());
    // The snapshot file as an older version wrote it: no derived values.
    let mut old = serde_json::to_value(&view).unwrap();
    let derived = [
        "total",
        "used_percent",
        "remaining_percent",
        "progress",
        "used_time_s",
        "remaining_time_s",
        "total_time_s",
    ];
    for window in old["providers"][0]["windows"].as_array_mut().unwrap() {
        for name in derived {
            window.as_object_mut().unwrap().remove(name);
        }
    }
    let data = tempfile::tempdir().unwrap();
    std::fs::write(status::snapshot_path(data.path()), old.to_string()).unwrap();
    let mut read = status::read_snapshot(data.path()).unwrap().unwrap();
    assert_eq!(read.providers[0].windows[0].used_time_s, None);
    status::settle(&mut read, at(600), &StatusOptions::default());
    assert_eq!(read, view);
    assert_eq!(read.providers[0].windows[0].remaining_time_s, Some(7_980));
}

/// A window whose response states no length (Copilot's month) takes its
/// length from its quota's rule for pace as for the time values: even use
/// over a day of readings is on track against the calendar month that
/// ends at the reset, with a projection from the readings kept.
#[test]
fn pace_of_a_window_without_a_stated_length_follows_its_quota_rule() {
    // 2026-09-01T00:00:00Z: the month that ends there is August, 31 days.
    let reset: Timestamp = "2026-09-01T00:00:00Z".parse().unwrap();
    let month = 31 * 86_400;
    let month_start = reset - SignedDuration::from_secs(month);
    let now = month_start + SignedDuration::from_hours(24 * 10);
    let even = |at: Timestamp| at.duration_since(month_start).as_secs_f64() / month as f64;
    let envelopes: Vec<Envelope> = (0..=24)
        .map(|hour| {
            let at = now - SignedDuration::from_hours(24 - hour);
            let mut premium = window("premium", even(at), Some(reset));
            premium.window_seconds = None;
            premium.quota = Some("premium".to_owned());
            Envelope {
                stream: Stream::Tracker(ProviderId::Copilot),
                seq: hour as u64,
                at,
                payload: Event::FetchCompleted {
                    provider: ProviderId::Copilot,
                    exchange: None,
                    body_repeated: false,
                    outcome: usage(vec![premium]),
                    elapsed_ms: 120,
                },
            }
        })
        .collect();
    let store = Store::from_events(&envelopes);
    let view = status::view(&store, now, &StatusOptions::default());
    let premium = &view.providers[0].windows[0];
    assert_eq!(premium.total_time_s, Some(month as u64));
    let pace = premium.pace.as_ref().expect("a pace");
    assert_eq!(pace.stage, "on_track", "{pace:?}");
    assert_eq!(pace.expected_used_ratio, Some(0.322581), "{pace:?}"); // 10 of 31 days
    assert!(pace.readings >= 2, "{pace:?}");
    let projected = pace.projected_at_reset.expect("a projection from the readings");
    assert!((projected - 1.0).abs() < 1e-3, "{pace:?}");
}

/// The snapshot file keeps only what settling cannot derive again, and a
/// reader settles it back to the whole view: for every bundled response
/// (read three times, twenty minutes apart, so pace has a slope; the error
/// responses after a good one), at the clock it was written, a day later
/// and a fortnight later (every reset passed).
#[test]
fn the_snapshot_file_settles_back_to_the_whole_view() {
    for fixture in crate::support::all_fixtures() {
        let exchange: RecordedExchange = serde_json::from_slice(&std::fs::read(&fixture.path).unwrap()).unwrap();
        let good = crate::support::all_fixtures()
            .into_iter()
            .find(|other| other.provider == fixture.provider && other.name().starts_with("ok-"))
            .unwrap();
        let good: RecordedExchange = serde_json::from_slice(&std::fs::read(&good.path).unwrap()).unwrap();
        let now = fixture.recorded_at;
        let readings = [(&good, 40), (&good, 20), (&exchange, 0)];
        let envelopes: Vec<Envelope> = readings
            .iter()
            .enumerate()
            .map(|(seq, (exchange, minutes_before))| {
                let at = now - SignedDuration::from_mins(*minutes_before);
                Envelope {
                    stream: Stream::Tracker(fixture.provider),
                    seq: seq as u64,
                    at,
                    payload: Event::FetchCompleted {
                        provider: fixture.provider,
                        exchange: None,
                        body_repeated: false,
                        outcome: Outcome::read(exchange, at),
                        elapsed_ms: 120,
                    },
                }
            })
            .collect();
        let view = status::view(&Store::from_events(&envelopes), now, &StatusOptions::default());
        let data = tempfile::tempdir().unwrap();
        status::write_snapshot(data.path(), &view).unwrap();
        let file = std::fs::read_to_string(status::snapshot_path(data.path())).unwrap();
        let name = fixture.name();
        assert!(!file.contains("null"), "{name}: {file}");
        for derived in status::DERIVED {
            assert!(!file.contains(&format!("\"{derived}\"")), "{name}: {derived} in {file}");
        }
        assert!(file.len() < serde_json::to_string(&view).unwrap().len(), "{name}");
        for later in [0, 24, 24 * 14] {
            let at = now + SignedDuration::from_hours(later);
            let mut whole = view.clone();
            status::settle(&mut whole, at, &StatusOptions::default());
            let mut read = status::read_snapshot(data.path()).unwrap().unwrap();
            status::settle(&mut read, at, &StatusOptions::default());
            assert_eq!(read, whole, "{name} +{later} h");
        }
    }
}
