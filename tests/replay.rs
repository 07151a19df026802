//! Replay: every recorded incident re-drives to exactly its recorded
//! decisions; a changed rule or a differently read response diverges with
//! one readable line; generated runs replay to themselves; and a tracker
//! resumed from the store continues exactly where the live one was.

use std::path::Path;

use quotatrack::events::{Envelope, Event, read_lines};
use quotatrack::machines::tracker::Rules;
use quotatrack::replay::{self, Options};

use crate::support::quotatrack;

fn incident(name: &str) -> Vec<Envelope> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/incidents")
        .join(format!("{name}.jsonl"));
    read_events(&path)
}

fn read_events(path: &Path) -> Vec<Envelope> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    read_lines(std::io::BufReader::new(file)).map(Result::unwrap).collect()
}

/// The one helper through which tests replay: the report, checked for
/// what every replay promises.
fn check(events: &[Envelope], options: &Options) -> replay::Report {
    let report = replay::replay(events, options);
    assert_eq!(report.events, events.len());
    report
}

#[test]
fn every_incident_replays_to_its_recorded_decisions() {
    insta::glob!("../fixtures/incidents", "*.jsonl", |path| {
        let events = read_events(path);
        let report = check(&events, &Options::default());
        assert!(report.recorded_decisions > 0, "{} holds decisions", path.display());
        assert!(
            report.identical(),
            "{}: {}",
            path.display(),
            report.divergence.unwrap().line()
        );
        insta::assert_snapshot!("decisions", replay::timeline(&events).join("\n"));
    });
}

#[test]
fn every_incident_replays_with_exit_0_through_the_tool() {
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents")).unwrap() {
        let path = entry.unwrap().path();
        let output = quotatrack(&["replay", path.to_str().unwrap()], b"");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{}: {stdout}", path.display());
        assert!(stdout.starts_with("replay: identical ("), "{stdout}");
    }
}

#[test]
fn a_changed_backoff_rule_diverges_at_the_first_affected_decision() {
    let events = incident("backoff-climb");
    let altered = Rules {
        max_backoff: 4,
        ..Rules::default()
    };
    let report = check(&events, &Options { rules: Some(altered) });
    let divergence = report
        .divergence
        .expect("a cap of 4 instead of 8 changes when fetches happen");
    // Fetches at minutes 0, 2, 5, 9, 14 …: with the cap at 4 the fifth comes at 13.
    assert_eq!(divergence.at, "2026-08-22T12:13:00Z");
    assert_eq!(divergence.stream, "tracker/anthropic");
    assert_eq!(
        divergence.line(),
        format!(
            "diverged at seq {} (tracker/anthropic 2026-08-22T12:13:00Z): expected transitioned backing_off → backing_off (throttle_skipped), got fetch_started",
            divergence.seq
        )
    );
    assert!(!divergence.line().contains('\n'), "one line");
    assert_eq!(divergence.context.len(), 3, "with the events before it");
}

#[test]
fn a_response_read_differently_diverges_with_exit_1() {
    // Replay re-parses every recorded response; a parser that now reads a
    // body differently is the same as a body that differs from what was
    // parsed when it was recorded. Change one recorded utilization.
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents/stale-last-good.jsonl"))
            .unwrap();
    let altered = text.replacen("\"utilization\":37.0", "\"utilization\":38.0", 1);
    assert_ne!(altered, text, "the incident holds the recorded body");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("altered.jsonl");
    std::fs::write(&path, altered).unwrap();

    let output = quotatrack(&["replay", path.to_str().unwrap()], b"");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let first = stdout.lines().next().unwrap();
    assert!(
        first.starts_with("replay: diverged at seq 5 (tracker/anthropic 2026-08-22T12:00:00Z): expected fetch_completed usage [5h 37.0%"),
        "{first}"
    );
    assert!(first.contains("got fetch_completed usage [5h 38.0%"), "{first}");

    let json = quotatrack(&["replay", "--json", path.to_str().unwrap()], b"");
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["identical"], false);
    assert_eq!(value["divergence"]["seq"], 5);
}

#[test]
fn an_input_only_file_gets_the_decisions_printed() {
    let inputs: Vec<String> = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents/rate-limit-storm.jsonl"),
    )
    .unwrap()
    .lines()
    .filter(|line| {
        let event = Envelope::from_json(line.as_bytes()).unwrap();
        !(event.payload.is_decision() || matches!(event.payload, Event::FetchStarted { .. }))
    })
    .map(str::to_owned)
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inputs.jsonl");
    std::fs::write(&path, inputs.join("\n")).unwrap();
    let output = quotatrack(&["replay", path.to_str().unwrap()], b"");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("tracker/anthropic transitioned ready → rate_limited (rate_limited)"),
        "{stdout}"
    );
    assert!(
        stdout
            .trim_end()
            .ends_with("the lines above are what the machines decided"),
        "{stdout}"
    );
}

#[test]
fn replay_at_a_time_shows_the_store_as_it_was() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents/rate-limit-storm.jsonl");
    let output = quotatrack(&["replay", path.to_str().unwrap(), "--at", "2026-08-22T12:03:00Z"], b"");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout.contains("⏳ 3m"), "rate limited until 12:06 at 12:03: {stdout}");

    // Failing since 12:02: at 12:10 the last good values (from 12:01) are shown with their age.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents/stale-last-good.jsonl");
    let output = quotatrack(&["replay", path.to_str().unwrap(), "--at", "2026-08-22T12:10:00Z"], b"");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("Claude 5h ━━━━────── 37%"), "{stdout}");
    assert!(stdout.trim_end().ends_with("(9m ago)"), "{stdout}");
}

#[test]
fn an_unreadable_line_is_named() {
    let output = quotatrack(&["replay", "-"], b"{\"v\":1}\nnot json\n");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 1"));
}

mod generated {
    //! Record → replay is the identity: generated runs (random providers,
    //! random recorded responses including every error kind, credentials
    //! vanishing and returning, an engine restart in the middle) replay to
    //! exactly their own log.

    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use jiff::{SignedDuration, Timestamp};
    use proptest::prelude::*;
    use proptest::test_runner::FileFailurePersistence;
    use quotatrack::clock::ManualClock;
    use quotatrack::credentials::{Credential, FixedCredentials};
    use quotatrack::engine::Engine;
    use quotatrack::exchange::RecordedExchange;
    use quotatrack::log::Log;
    use quotatrack::providers::ProviderId;
    use quotatrack::replay::{self, Options};
    use quotatrack::transport::load_fixtures;

    #[derive(Debug, Clone)]
    struct Run {
        script: BTreeMap<ProviderId, Vec<usize>>,
        toggles: Vec<(u32, ProviderId, bool)>,
        minutes: u32,
        restart_at: Option<u32>,
    }

    fn fixtures() -> &'static BTreeMap<ProviderId, Vec<RecordedExchange>> {
        static FIXTURES: std::sync::OnceLock<BTreeMap<ProviderId, Vec<RecordedExchange>>> = std::sync::OnceLock::new();
        FIXTURES.get_or_init(|| {
            load_fixtures(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/providers")).unwrap()
        })
    }

    fn run() -> impl Strategy<Value = Run> {
        let providers = prop::sample::subsequence(ProviderId::ALL.to_vec(), 1..=3);
        providers
            .prop_flat_map(|providers| {
                let scripts: Vec<_> = providers
                    .iter()
                    .map(|id| prop::collection::vec(0..fixtures()[id].len(), 1..12))
                    .collect();
                let toggles =
                    prop::collection::vec((0u32..90, prop::sample::select(providers.clone()), any::<bool>()), 0..4);
                (Just(providers), scripts, toggles, 5u32..90, prop::option::of(1u32..90))
            })
            .prop_map(|(providers, scripts, toggles, minutes, restart_at)| Run {
                script: providers.into_iter().zip(scripts).collect(),
                toggles,
                minutes,
                restart_at,
            })
    }

    fn engine(
        dir: &std::path::Path,
        clock: &Arc<ManualClock>,
        player: &Arc<quotatrack::transport::ExchangePlayer>,
        credentials: &Arc<Mutex<FixedCredentials>>,
        providers: &[ProviderId],
    ) -> Engine {
        Engine::builder()
            .data_dir(dir)
            .clock(clock.clone())
            .transport(player.clone())
            .credentials(credentials.clone())
            .providers(providers)
            .checkpoint_every(37)
            .build()
            .unwrap()
    }

    fn record(run: &Run, dir: &std::path::Path) {
        let start: Timestamp = "2026-08-22T12:00:00Z".parse().unwrap();
        let clock = Arc::new(ManualClock::new(start));
        let script = run
            .script
            .iter()
            .map(|(id, picks)| (*id, picks.iter().map(|i| fixtures()[id][*i].clone()).collect()))
            .collect();
        let player = Arc::new(quotatrack::transport::ExchangePlayer::new(script, clock.clone()));
        let providers: Vec<ProviderId> = run.script.keys().copied().collect();
        let credentials = Arc::new(Mutex::new(FixedCredentials::present(providers.clone(), "test")));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut live = engine(dir, &clock, &player, &credentials, &providers);
        for minute in 0..run.minutes {
            if run.restart_at == Some(minute) {
                live.close().unwrap();
                live = engine(dir, &clock, &player, &credentials, &providers);
            }
            for (at, provider, present) in &run.toggles {
                if *at == minute {
                    let credential = present.then(|| Credential::new(format!("key-{minute}"), "test"));
                    credentials.lock().unwrap().set(*provider, credential);
                }
            }
            runtime.block_on(live.cycle()).unwrap();
            clock.advance(SignedDuration::from_mins(1));
        }
        live.close().unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 24,
            failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
            ..ProptestConfig::default()
        })]

        #[test]
        fn a_recorded_run_replays_to_itself(run in run()) {
            let dir = tempfile::tempdir().unwrap();
            record(&run, dir.path());
            let log = Log::open(dir.path()).unwrap();
            let events: Vec<_> = log.entries(0).map(Result::unwrap).collect();
            let report = replay::replay(&events, &Options::default());
            prop_assert!(report.recorded_decisions > 0);
            prop_assert!(report.identical(), "{}", report.divergence.unwrap().line());
        }
    }
}
