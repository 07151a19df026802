//! One cycle for live and replay, end to end: random runs of the live
//! engine (real reqwest to real servers on 127.0.0.1, one per provider,
//! answering with recorded successes, errors, 401s and 429s with
//! Retry-After; status pages; credentials that vanish, change and come
//! back; host events and settings patches through a host session;
//! restarts) are recorded in a real log, exported, and replayed. Replay
//! must produce exactly the recorded event sequence, every time.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use quotatrack::clock::ManualClock;
use quotatrack::credentials::{Credential, FixedCredentials};
use quotatrack::engine::Engine;
use quotatrack::events::{Event, HostEvent};
use quotatrack::exchange::RecordedExchange;
use quotatrack::log::Log;
use quotatrack::providers::ProviderId;
use quotatrack::replay::{self, Options};
use quotatrack::transport::{HttpTransport, load_fixtures};
use serde_json::json;

use crate::support::server::{Reply, Server};

/// The providers a run may use: one Statuspage feed, one Google feed, one
/// without a status page.
const PROVIDERS: [ProviderId; 3] = [ProviderId::Anthropic, ProviderId::Gemini, ProviderId::Zai];

#[derive(Debug, Clone)]
enum Step {
    /// A timer cycle, then the clock moves on a minute.
    Tick,
    /// The clock moves on.
    Wait(u32),
    /// Credentials of a provider: gone, or a new secret.
    Credentials(usize, Option<u8>),
    /// The host says something.
    Host(HostEvent),
    /// The process stops and a new one starts on the same data dir.
    Restart,
}

#[derive(Debug, Clone)]
struct Run {
    /// Per provider: the indexes of the fixtures its server answers with, in order.
    script: Vec<Vec<usize>>,
    /// Per provider: whether its status page answers (else 404).
    pages: Vec<bool>,
    steps: Vec<Step>,
}

fn fixtures() -> &'static BTreeMap<ProviderId, Vec<RecordedExchange>> {
    static FIXTURES: std::sync::OnceLock<BTreeMap<ProviderId, Vec<RecordedExchange>>> = std::sync::OnceLock::new();
    FIXTURES.get_or_init(|| load_fixtures(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/providers")).unwrap())
}

fn host_event() -> impl Strategy<Value = HostEvent> {
    let subset = prop::sample::subsequence(PROVIDERS.to_vec(), 0..=3);
    prop_oneof![
        3 => Just(HostEvent::TurnEnd),
        2 => Just(HostEvent::Refresh),
        1 => Just(HostEvent::ToolResult),
        1 => Just(HostEvent::CycleProvider),
        1 => Just(HostEvent::Interval),
        1 => prop::sample::select(vec!["claude-sonnet-4-5", "gemini-2.5-pro", "glm-4.6"])
            .prop_map(|model| HostEvent::ModelChanged { provider: None, model: model.to_owned() }),
        1 => subset.prop_map(|providers| HostEvent::SettingsPatch { patch: json!({ "providers": providers }) }),
        1 => prop::sample::select(vec![30u64, 60, 120])
            .prop_map(|seconds| HostEvent::SettingsPatch { patch: json!({ "refresh_interval_s": seconds }) }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => Just(Step::Tick),
        2 => (1u32..400).prop_map(Step::Wait),
        2 => (0..PROVIDERS.len(), prop::option::of(0u8..3)).prop_map(|(p, key)| Step::Credentials(p, key)),
        4 => host_event().prop_map(Step::Host),
        1 => Just(Step::Restart),
    ]
}

fn run() -> impl Strategy<Value = Run> {
    let scripts: Vec<_> = PROVIDERS
        .iter()
        .map(|id| prop::collection::vec(0..fixtures()[id].len(), 1..8))
        .collect();
    (
        scripts,
        prop::collection::vec(any::<bool>(), PROVIDERS.len()),
        prop::collection::vec(step(), 1..40),
    )
        .prop_map(|(script, pages, steps)| Run { script, pages, steps })
}

struct Live {
    clock: Arc<ManualClock>,
    credentials: Arc<Mutex<FixedCredentials>>,
    transport: Arc<HttpTransport>,
    runtime: tokio::runtime::Runtime,
}

impl Live {
    fn engine(&self, dir: &Path) -> Engine {
        let mut engine = Engine::builder()
            .data_dir(dir)
            .clock(self.clock.clone())
            .transport(self.transport.clone())
            .credentials(self.credentials.clone())
            .providers(&PROVIDERS)
            .checkpoint_every(41)
            .build()
            .unwrap();
        // As `serve --stdio` does: a host session starts with the engine.
        self.runtime.block_on(engine.start()).unwrap();
        engine
    }
}

/// Runs `run` live against loopback servers, logging into `dir`.
fn record(run: &Run, dir: &Path) {
    let servers: Vec<Server> = PROVIDERS
        .iter()
        .zip(&run.script)
        .zip(&run.pages)
        .map(|((id, picks), page)| {
            let script = picks.iter().map(|i| Reply::exchange(&fixtures()[id][*i])).collect();
            let status = if *page {
                vec![Reply::json(
                    200,
                    r#"{"status":{"indicator":"minor","description":"Elevated errors"}}"#,
                )]
            } else {
                vec![Reply::json(404, r#"{"error":"not found"}"#)]
            };
            Server::with_status_pages(script, status)
        })
        .collect();
    let clock = Arc::new(ManualClock::new("2026-08-22T12:00:00Z".parse::<Timestamp>().unwrap()));
    let origins = PROVIDERS
        .iter()
        .zip(&servers)
        .map(|(id, server)| (*id, server.origin.parse().unwrap()))
        .collect();
    let live = Live {
        clock: clock.clone(),
        credentials: Arc::new(Mutex::new(FixedCredentials::present(PROVIDERS, "test"))),
        transport: Arc::new(HttpTransport::new(clock.clone(), Duration::from_secs(5), origins).unwrap()),
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    };
    let mut engine = live.engine(dir);
    for step in &run.steps {
        match step {
            Step::Tick => {
                live.runtime.block_on(engine.cycle()).unwrap();
                clock.advance(SignedDuration::from_mins(1));
            }
            Step::Wait(seconds) => clock.advance(SignedDuration::from_secs(i64::from(*seconds))),
            Step::Credentials(p, key) => {
                let credential = key.map(|key| Credential::new(format!("key-{p}-{key}"), "test"));
                live.credentials.lock().unwrap().set(PROVIDERS[*p], credential);
            }
            Step::Host(host) => {
                live.runtime.block_on(engine.handle(host.clone())).unwrap();
            }
            Step::Restart => {
                engine.close().unwrap();
                engine = live.engine(dir);
            }
        }
    }
    engine.close().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_live_run_over_http_replays_to_exactly_its_own_log(run in run()) {
        let dir = tempfile::tempdir().unwrap();
        record(&run, dir.path());
        let log = Log::open(dir.path()).unwrap();
        let events: Vec<_> = log.entries(0).map(Result::unwrap).collect();
        let report = replay::replay(&events, &Options::default());
        prop_assert!(report.recorded_decisions > 0);
        prop_assert!(report.identical(), "{}", report.divergence.unwrap().line());
    }
}

/// A login fixed inside the minimum interval, then a new process a few
/// seconds later: the resumed tracker decides as the running one would,
/// and replay, which keeps one engine running, agrees with the log.
#[test]
fn a_login_fixed_inside_the_minimum_interval_replays_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let anthropic = &fixtures()[&ProviderId::Anthropic];
    let pick = |name: &str| {
        anthropic
            .iter()
            .position(|exchange| {
                exchange.response.status == 401 && name == "auth" || exchange.response.status == 200 && name == "ok"
            })
            .unwrap()
    };
    let run = Run {
        script: vec![vec![pick("auth"), pick("ok")], vec![0], vec![0]],
        pages: vec![false; PROVIDERS.len()],
        steps: vec![
            Step::Tick,
            Step::Wait(3),
            Step::Credentials(0, Some(1)),
            Step::Host(HostEvent::Refresh),
            Step::Restart,
            Step::Wait(5),
            Step::Host(HostEvent::Refresh),
            Step::Wait(5),
            Step::Host(HostEvent::Refresh),
            Step::Tick,
        ],
    };
    record(&run, dir.path());
    let log = Log::open(dir.path()).unwrap();
    let events: Vec<_> = log.entries(0).map(Result::unwrap).collect();
    let fetched = events
        .iter()
        .filter(|e| {
            matches!(
                e.payload,
                Event::FetchStarted {
                    provider: ProviderId::Anthropic
                }
            )
        })
        .count();
    // The failed fetch, then the one after the minimum interval with the new login.
    assert_eq!(fetched, 2, "{events:#?}");
    let report = replay::replay(&events, &Options::default());
    assert!(report.identical(), "{}", report.divergence.unwrap().line());
}

/// The lint that keeps the cycle one passes on this tree, and fails, naming
/// the file and line, when a second place starts polling the trackers or
/// stepping the controller.
#[test]
fn a_second_caller_of_the_machines_fails_the_one_cycle_lint() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lint = root.join("tools/check-one-cycle");
    let run = |dir: &Path| std::process::Command::new("bash").arg(&lint).arg(dir).output().unwrap();
    let clean = run(root);
    assert!(clean.status.success(), "{}", String::from_utf8_lossy(&clean.stderr));

    let copies = [
        (
            "src/rogue.rs",
            "fn again(t: &mut Trackers) { t.trackers.poll(p, now); }\n",
        ),
        (
            "src/rogue.rs",
            "fn again(m: &mut M) { m.handle_with_context(&Input::Trigger(x), &mut c); }\n",
        ),
        (
            "src/replay/rogue.rs",
            "fn again() { let t = Trackers::new(rules, &[], &store); }\n",
        ),
    ];
    for (path, code) in copies {
        let copy = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(copy.path().join("src/replay")).unwrap();
        std::fs::write(copy.path().join(path), code).unwrap();
        let output = run(copy.path());
        let said = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{path}: {code}");
        assert!(said.contains(&format!("{path}:1")), "{said}");
    }
}
