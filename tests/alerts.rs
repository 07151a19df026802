//! Alerts (issue 21 item 3): from a recorded Claude response whose 5h
//! window climbs, runs out and resets, each crossing fires exactly once,
//! also across a restart on the same data dir, and replay of the log
//! reproduces every alert; the command and webhook deliveries against a
//! real child process and a real loopback receiver, hanging ones included.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use quotatrack::alerts::Alert;
use quotatrack::alerts::deliver::{Delivery, DeliveryError, Limits, post_webhook, run_command};
use quotatrack::clock::{Clock, ManualClock};
use quotatrack::credentials::FixedCredentials;
use quotatrack::engine::Engine;
use quotatrack::events::{AlertKind, Envelope, Event};
use quotatrack::exchange::RecordedExchange;
use quotatrack::providers::ProviderId::{self, Anthropic};
use quotatrack::settings::Settings;
use quotatrack::transport::{ExchangePlayer, Url};
use serde_json::json;

use crate::support::exchange;
use crate::support::server::{Reply, Server};

/// The recorded `ok-full` response with the 5h window at `percent` used,
/// resetting at `resets_at`.
fn five_hour(percent: f64, resets_at: &str) -> RecordedExchange {
    let mut recorded = exchange(Anthropic, "ok-full");
    recorded.response.body["five_hour"] = json!({"utilization": percent, "resets_at": resets_at});
    recorded
}

/// The incident: 50 %, 85 % (crosses 0.8), 85 % again, 97 % (crosses
/// 0.95), 100 % (exhausted), then after the 14:00 reset 5 % (refilled).
fn incident() -> Vec<RecordedExchange> {
    let first = "2026-08-22T14:00:00Z";
    [50.0, 85.0, 85.0, 97.0, 100.0]
        .iter()
        .map(|percent| five_hour(*percent, first))
        .chain([five_hour(5.0, "2026-08-22T19:00:00Z")])
        .collect()
}

fn start() -> Timestamp {
    "2026-08-22T12:00:00Z".parse().unwrap()
}

fn engine(dir: &std::path::Path, clock: &Arc<ManualClock>, script: Vec<RecordedExchange>) -> Engine {
    let player = ExchangePlayer::new(BTreeMap::from([(Anthropic, script)]), clock.clone());
    Engine::builder()
        .data_dir(dir)
        .settings(Settings::default())
        .clock(clock.clone())
        .transport(Arc::new(player))
        .credentials(Arc::new(FixedCredentials::present(vec![Anthropic], "test")))
        .providers(&[Anthropic])
        .status_pages(None)
        .build()
        .unwrap()
}

/// Runs one cycle per reading, the clock moved past the interval (and,
/// before the last, past the 14:00 reset) in between.
async fn run(engine: &mut Engine, clock: &ManualClock, readings: usize, total: usize, done: usize) {
    for index in done..done + readings {
        if index == total - 1 {
            clock.advance(SignedDuration::from_hours(2));
        }
        engine.cycle().await.unwrap();
        clock.advance(SignedDuration::from_secs(61));
    }
}

fn events(engine: &Engine) -> Vec<Envelope> {
    engine.log().unwrap().entries(0).map(Result::unwrap).collect()
}

/// The alerts in a log as (window, kind, threshold).
fn fired(events: &[Envelope]) -> Vec<(Option<String>, AlertKind, Option<f64>)> {
    events
        .iter()
        .filter_map(|e| match &e.payload {
            Event::AlertFired {
                window,
                kind,
                threshold,
                ..
            } => Some((window.clone(), *kind, *threshold)),
            _ => None,
        })
        .collect()
}

fn expected() -> Vec<(Option<String>, AlertKind, Option<f64>)> {
    let five = || Some("5h".to_owned());
    vec![
        (five(), AlertKind::Threshold, Some(0.8)),
        (five(), AlertKind::Threshold, Some(0.95)),
        (five(), AlertKind::Exhausted, Some(1.0)),
        (five(), AlertKind::Refilled, Some(1.0)),
    ]
}

/// Checks a run of the incident split at `restart` (no restart when it is
/// the whole length): the alerts fired, once each, and replay's verdict.
async fn check(restart: usize) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let script = incident();
    let total = script.len();
    let mut first = engine(dir.path(), &clock, script[..restart].to_vec());
    let mut told = first.subscribe_alerts();
    run(&mut first, &clock, restart, total, 0).await;
    let mut messages = Vec::new();
    while let Ok(alert) = told.try_recv() {
        messages.push(alert.message.clone());
    }
    first.close().unwrap();
    let mut second = engine(dir.path(), &clock, script[restart..].to_vec());
    let mut told = second.subscribe_alerts();
    run(&mut second, &clock, total - restart, total, restart).await;
    while let Ok(alert) = told.try_recv() {
        messages.push(alert.message.clone());
    }
    let log = events(&second);
    assert_eq!(fired(&log), expected(), "restart after reading {restart}");
    assert_eq!(
        messages,
        [
            "Claude 5h at 85% used (crossed 80%)",
            "Claude 5h at 97% used (crossed 95%)",
            "Claude 5h exhausted (100% used)",
            "Claude 5h refilled: 5% used after reaching 100%",
        ],
        "restart after reading {restart}"
    );
    let report = quotatrack::replay::replay(&log, &Default::default());
    assert!(
        report.identical(),
        "restart after reading {restart}: {:?}",
        report.divergence
    );
    assert_store_round_trips(&second, &log);
    second.close().unwrap();
}

#[tokio::test]
async fn each_crossing_fires_exactly_once_and_replays() {
    check(incident().len()).await;
}

#[tokio::test]
async fn a_restart_in_the_middle_fires_nothing_twice() {
    for restart in [2, 3, 4] {
        check(restart).await;
    }
}

#[tokio::test]
async fn a_log_without_alert_settings_fires_nothing() {
    // A log written before alerts existed never recorded `alerts`; replay
    // of such a log must not fire what it never fired. Drop the key from
    // the recorded settings and the alerts, then replay.
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let script = incident();
    let total = script.len();
    let mut live = engine(dir.path(), &clock, script);
    run(&mut live, &clock, total, total, 0).await;
    let mut old: Vec<Envelope> = Vec::new();
    for mut envelope in events(&live) {
        if let Event::SettingsChanged { patch } = &mut envelope.payload {
            patch.as_object_mut().unwrap().remove("alerts");
        }
        if !matches!(envelope.payload, Event::AlertFired { .. }) {
            envelope.seq = old.len() as u64;
            old.push(envelope);
        }
    }
    let report = quotatrack::replay::replay(&old, &Default::default());
    assert!(report.identical(), "{:?}", report.divergence);
    live.close().unwrap();
}

#[test]
fn alert_settings_are_checked_and_targets_never_serialized() {
    let settings = Settings::default()
        .patched(&json!({"alerts": {
            "thresholds": [0.5, 0.9],
            "command": "true",
            "webhook_url": "https://hooks.example/services/SECRET-PATH",
            "stale_minutes": 5,
        }}))
        .unwrap();
    assert_eq!(settings.alerts.thresholds, [0.5, 0.9]);
    let shown = settings.to_json().to_string();
    assert!(!shown.contains("SECRET-PATH") && !shown.contains("\"true\""), "{shown}");
    for (bad, key) in [
        (json!({"thresholds": [0.9, 0.5]}), "alerts.thresholds"),
        (json!({"thresholds": [1.5]}), "alerts.thresholds"),
        (json!({"webhook_url": "ftp://host/x"}), "alerts.webhook_url"),
        (json!({"webhook_url": "file:///etc/passwd"}), "alerts.webhook_url"),
        (json!({"stale_minutes": 0}), "alerts.stale_minutes"),
        (json!({"rate_limited_minutes": 1441}), "alerts.rate_limited_minutes"),
        (json!({"command": ""}), "alerts.command"),
        (json!({"sound": true}), "alerts.sound"),
    ] {
        let error = Settings::default().patched(&json!({ "alerts": bad })).unwrap_err();
        assert_eq!(error.key(), Some(key), "{error}");
    }
    let error = Settings::default()
        .patched(&json!({"alerts": {"webhook_url": "gopher://SECRET-PATH"}}))
        .unwrap_err();
    assert!(!error.to_string().contains("SECRET-PATH"), "{error}");
}

fn alert() -> Alert {
    Alert {
        at: "2026-08-22T12:01:00Z".to_owned(),
        provider: ProviderId::Anthropic,
        window: Some("5h".to_owned()),
        kind: AlertKind::Threshold,
        threshold: Some(0.8),
        used_ratio: Some(0.85),
        message: "Claude 5h at 85% used (crossed 80%)".to_owned(),
    }
}

#[tokio::test]
async fn the_command_gets_the_alert_in_its_environment_and_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let stdin = dir.path().join("stdin.json");
    let env = dir.path().join("env.txt");
    let command = format!(
        "cat > '{}'; printf '%s|%s|%s|%s' \"$QUOTATRACK_ALERT_KIND\" \"$QUOTATRACK_ALERT_PROVIDER\" \"$QUOTATRACK_ALERT_WINDOW\" \"$QUOTATRACK_ALERT_THRESHOLD\" > '{}'",
        stdin.display(),
        env.display()
    );
    run_command(&command, &alert(), Duration::from_secs(30)).await.unwrap();
    let read: serde_json::Value = serde_json::from_slice(&std::fs::read(&stdin).unwrap()).unwrap();
    assert_eq!(read["kind"], "threshold");
    assert_eq!(read["used_ratio"], 0.85);
    assert_eq!(read["message"], "Claude 5h at 85% used (crossed 80%)");
    assert_eq!(std::fs::read_to_string(&env).unwrap(), "threshold|anthropic|5h|0.8");
    let failed = run_command("exit 3", &alert(), Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(matches!(failed, DeliveryError::Failed(_)), "{failed}");
}

#[tokio::test]
async fn a_hanging_command_is_killed_at_its_time_limit() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("after");
    // The shell's child would outlive a kill of the shell alone.
    let command = format!("sleep 600; touch '{}'", marker.display());
    let error = run_command(&command, &alert(), Duration::from_millis(200))
        .await
        .unwrap_err();
    assert_eq!(error, DeliveryError::TimedOut(200));
    assert!(
        error.to_string().starts_with("alert command ran longer than 200 ms"),
        "{error}"
    );
    assert!(!marker.exists());
}

fn quick() -> Limits {
    Limits {
        command: Duration::from_secs(5),
        webhook: Duration::from_secs(5),
        attempts: 3,
        backoff: Duration::ZERO,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_gets_the_alert_as_json_and_is_retried() {
    let server = Server::start(vec![Reply::json(500, "{}"), Reply::json(200, "{}")]);
    let url = Url::parse(&format!("{}/hook/SECRET", server.origin)).unwrap();
    post_webhook(&url, &alert(), quick()).await.unwrap();
    let received = server.received();
    assert_eq!(received.len(), 2, "one failure, one retry");
    assert!(
        received[1].head.starts_with("POST /hook/SECRET "),
        "{}",
        received[1].head
    );
    let body: serde_json::Value = serde_json::from_slice(&received[1].body).unwrap();
    assert_eq!(body["kind"], "threshold");
    assert_eq!(body["provider"], "anthropic");

    let failing = Server::start(vec![Reply::json(503, "{}")]);
    let url = Url::parse(&format!("{}/hook/SECRET", failing.origin)).unwrap();
    let error = post_webhook(&url, &alert(), quick()).await.unwrap_err();
    assert_eq!(failing.requests(), 3, "bounded attempts");
    assert!(!error.to_string().contains("SECRET"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_webhook_gives_up_within_its_bounds() {
    // A listener that accepts and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = Url::parse(&format!("http://{}/hook/SECRET", listener.local_addr().unwrap())).unwrap();
    let limits = Limits {
        webhook: Duration::from_millis(200),
        attempts: 2,
        ..quick()
    };
    let error = post_webhook(&url, &alert(), limits).await.unwrap_err();
    assert!(matches!(&error, DeliveryError::Webhook { attempts: 2, .. }), "{error}");
    assert!(!error.to_string().contains("SECRET"), "{error}");
    drop(listener);
}

/// A failing command and a hanging webhook: each failure is an
/// `alert_delivery_failed` event the next cycle records, counted on
/// `/metrics`, shown by `replay --timeline`, and replay (which delivers
/// nothing) reproduces the log with zero diff.
#[tokio::test(flavor = "multi_thread")]
async fn failed_deliveries_are_logged_counted_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let mut engine = engine(dir.path(), &clock, incident());
    let mut told = engine.subscribe_alerts();
    // A receiver that accepts and never answers.
    let hanging = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let delivery = Delivery {
        command: Some("echo failing on purpose >&2; exit 3".to_owned()),
        webhook_url: Some(Url::parse(&format!("http://{}/hook/SECRET", hanging.local_addr().unwrap())).unwrap()),
        limits: Limits {
            webhook: Duration::from_millis(200),
            attempts: 2,
            ..quick()
        },
        failures: None,
    }
    .reporting(engine.outside());
    run(&mut engine, &clock, 2, 6, 0).await;
    let alert = told.try_recv().expect("85 % crosses 80 %");
    for task in delivery.spawn(&alert) {
        let failed = tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .unwrap()
            .unwrap();
        assert!(failed.is_err());
    }
    let before = events(&engine).len();
    run(&mut engine, &clock, 1, 6, 2).await;
    let log = events(&engine);
    let cycle = &log[before..];
    assert!(matches!(cycle[0].payload, Event::ClockTicked), "{:?}", cycle[0]);
    let mut failures: Vec<(String, String)> = cycle[1..3]
        .iter()
        .map(|envelope| match &envelope.payload {
            Event::AlertDeliveryFailed {
                provider,
                window,
                kind,
                via,
                reason,
            } => {
                assert_eq!(
                    (*provider, window.as_deref(), *kind),
                    (Anthropic, Some("5h"), AlertKind::Threshold)
                );
                assert!(!reason.contains("SECRET"), "{reason}");
                (via.clone(), reason.clone())
            }
            other => panic!("right after the tick: {other:?}"),
        })
        .collect();
    failures.sort();
    assert_eq!(failures[0].0, "command");
    assert!(failures[0].1.starts_with("alert command failed"), "{}", failures[0].1);
    assert_eq!(failures[1].0, "webhook");
    assert!(
        failures[1].1.starts_with("alert webhook failed after 2 attempts"),
        "{}",
        failures[1].1
    );
    // Recorded once: later cycles record nothing more.
    run(&mut engine, &clock, 2, 6, 3).await;
    let log = events(&engine);
    let recorded = log
        .iter()
        .filter(|e| matches!(e.payload, Event::AlertDeliveryFailed { .. }));
    assert_eq!(recorded.count(), 2);

    let report = quotatrack::replay::replay(&log, &Default::default());
    assert!(report.identical(), "{:?}", report.divergence);
    let zone = quotatrack::replay::explain::Zone::new(jiff::tz::TimeZone::UTC);
    let timeline = quotatrack::replay::explain::timeline(&log, &zone).join("\n");
    assert!(timeline.contains("alert: alert delivery failed"), "{timeline}");
    assert!(timeline.contains("via webhook"), "{timeline}");

    let published = quotatrack::http::Published::follower(dir.path(), clock.clone(), Duration::from_secs(60));
    published.update(&engine);
    let observation = quotatrack::http::Source::observation(&published).unwrap();
    let text = quotatrack::http::metrics::render(&observation).unwrap();
    for via in ["command", "webhook"] {
        let line = format!("quotatrack_alert_deliveries_failed_total{{via=\"{via}\"}} 1");
        assert!(text.contains(&line), "{line} in\n{text}");
    }
    assert_store_round_trips(&engine, &log);
    engine.close().unwrap();
    drop(hanging);
}

#[test]
fn serve_stdio_says_the_alert_and_runs_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let (fixtures, data, config, out) = (
        dir.path().join("fx"),
        dir.path().join("data"),
        dir.path().join("config.toml"),
        dir.path().join("alert.json"),
    );
    std::fs::create_dir_all(fixtures.join("anthropic")).unwrap();
    let recorded = five_hour(85.0, "2026-08-22T14:00:00Z");
    std::fs::write(
        fixtures.join("anthropic/1.json"),
        serde_json::to_vec(&recorded).unwrap(),
    )
    .unwrap();
    let settings = format!(
        "providers = [\"anthropic\"]\nstatus_pages = false\n\n[alerts]\nthresholds = [0.8]\ncommand = \"cat > '{}'\"\n",
        out.display()
    );
    std::fs::write(&config, settings).unwrap();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let args = [
        "--fixtures",
        &path(&fixtures),
        "--data-dir",
        &path(&data),
        "--config",
        &path(&config),
        "--clock-at",
        "2026-08-22T12:00:00Z",
        "serve",
        "--stdio",
    ];
    let session = "{\"type\":\"session_start\"}\n{\"type\":\"session_shutdown\"}\n";
    let output = crate::support::quotatrack(&args, session.as_bytes());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let alerts: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|event| event["type"] == "alert")
        .collect();
    assert_eq!(alerts.len(), 1, "{stdout}");
    assert_eq!(alerts[0]["message"], "Claude 5h at 85% used (crossed 80%)");
    assert_eq!(alerts[0]["window"], "5h");
    assert!(!stdout.contains("cat >"), "the command is not shown to hosts");
    let delivered: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(delivered["kind"], "threshold");
    assert_eq!(delivered["threshold"], 0.8);
}

#[tokio::test]
async fn a_long_rate_limit_staleness_and_a_lost_login_fire_once_each_and_count_on_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let script = [
        "ok-full",
        "err-rate_limited-retry300",
        "err-unavailable-502-html",
        "err-auth-expired",
    ]
    .iter()
    .map(|name| exchange(Anthropic, name))
    .collect();
    let player = ExchangePlayer::new(BTreeMap::from([(Anthropic, script)]), clock.clone());
    let settings = Settings::default()
        .patched(&json!({"alerts": {"rate_limited_minutes": 1}}))
        .unwrap();
    let mut engine = Engine::builder()
        .data_dir(dir.path())
        .settings(settings)
        .clock(clock.clone())
        .transport(Arc::new(player))
        .credentials(Arc::new(FixedCredentials::present(vec![Anthropic], "test")))
        .providers(&[Anthropic])
        .status_pages(None)
        .build()
        .unwrap();
    // A fetch at 12:00 (good), 12:01 (rate limited for 5 min), 12:20
    // (unavailable: the last good is 20 min old), then the login rejected.
    let mut fetches = 0;
    for _ in 0..40 {
        if fetches == 4 {
            break;
        }
        fetches += engine.cycle().await.unwrap().fetched.len();
        let step = if fetches == 2 { 19 * 60 } else { 61 };
        clock.advance(SignedDuration::from_secs(step));
    }
    assert_eq!(fetches, 4);
    let kinds: Vec<AlertKind> = fired(&events(&engine)).into_iter().map(|(_, kind, _)| kind).collect();
    assert_eq!(
        kinds,
        [AlertKind::RateLimited, AlertKind::Stale, AlertKind::AuthRequired]
    );
    // More cycles with nothing new fire nothing more.
    for _ in 0..5 {
        clock.advance(SignedDuration::from_secs(30));
        engine.cycle().await.unwrap();
    }
    assert_eq!(fired(&events(&engine)).len(), 3);
    let counts = engine.store().providers[&Anthropic].alarms.counts.clone();
    let observation = quotatrack::http::metrics::Observation {
        role: quotatrack::http::Role::Owner,
        now: clock.now(),
        status: engine.status(),
        fetches: BTreeMap::new(),
        alerts: BTreeMap::from([(Anthropic, counts)]),
        delivery_failures: BTreeMap::new(),
        log: Default::default(),
        log_ok: true,
        last_cycle_at: None,
    };
    let text = quotatrack::http::metrics::render(&observation).unwrap();
    for kind in ["rate_limited", "stale", "auth_required"] {
        let line = format!("quotatrack_alerts_total{{kind=\"{kind}\",provider=\"anthropic\"}} 1");
        assert!(text.contains(&line), "{line} in\n{text}");
    }
    let report = quotatrack::replay::replay(&events(&engine), &Default::default());
    assert!(report.identical(), "{:?}", report.divergence);
    assert_store_round_trips(&engine, &events(&engine));
    engine.close().unwrap();
}

#[tokio::test]
async fn a_host_patch_with_alert_targets_never_writes_them_to_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let mut engine = engine(dir.path(), &clock, incident());
    engine.start().await.unwrap();
    let patch = json!({"alerts": {
        "thresholds": [0.5],
        "webhook_url": "https://hooks.example/services/SECRET-PATH",
        "command": "notify SECRET-COMMAND",
    }});
    engine
        .handle(quotatrack::events::HostEvent::SettingsPatch { patch })
        .await
        .unwrap();
    assert_eq!(engine.settings().alerts.thresholds, [0.5]);
    assert!(engine.settings().alerts.webhook_url.is_some());
    let log: Vec<u8> = events(&engine).iter().flat_map(Envelope::to_json).collect();
    let log = String::from_utf8(log).unwrap();
    assert!(log.contains("0.5"), "the thresholds are recorded");
    assert!(!log.contains("SECRET"), "{log}");
    let report = quotatrack::replay::replay(&events(&engine), &Default::default());
    assert!(report.identical(), "{:?}", report.divergence);
    engine.close().unwrap();
}

#[test]
fn watch_prints_the_alert_line_before_the_status_line() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let (fixtures, data, config) = (
        dir.path().join("fx"),
        dir.path().join("data"),
        dir.path().join("config.toml"),
    );
    std::fs::create_dir_all(fixtures.join("anthropic")).unwrap();
    let recorded = five_hour(97.0, "2026-08-22T14:00:00Z");
    std::fs::write(
        fixtures.join("anthropic/1.json"),
        serde_json::to_vec(&recorded).unwrap(),
    )
    .unwrap();
    std::fs::write(&config, "providers = [\"anthropic\"]\nstatus_pages = false\n").unwrap();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_quotatrack"))
        .args(["--fixtures", &path(&fixtures), "--data-dir", &path(&data)])
        .args([
            "--config",
            &path(&config),
            "--clock-at",
            "2026-08-22T12:00:00Z",
            "watch",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let second = lines.next().unwrap().unwrap();
    let _ = std::process::Command::new("kill").arg(child.id().to_string()).status();
    child.wait().unwrap();
    // A jump past both default thresholds fires the highest only.
    assert_eq!(first, "alert: Claude 5h at 97% used (crossed 95%)");
    assert!(second.starts_with("Claude"), "{second}");
}

/// The live store equals a rebuild from the log and survives a checkpoint's
/// JSON round trip, alarms included.
fn assert_store_round_trips(engine: &Engine, log: &[Envelope]) {
    let live = engine.store().clone();
    assert_eq!(quotatrack::store::Store::from_events(log), live);
    let json = serde_json::to_vec(&live).unwrap();
    let read: quotatrack::store::Store = serde_json::from_slice(&json).unwrap();
    assert_eq!(read, live);
}
