//! Settings that govern the running engine: each provider's status page
//! turned off or read from another URL; the staleness threshold following
//! the refresh interval; a patched interval retiming the timer; patched
//! settings surviving a restart. Real sled logs on temp dirs, a manual
//! clock, a transport that records every request; every session replays
//! with no divergence.

use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use quotatrack::clock::{BoxFuture, Clock, ManualClock};
use quotatrack::credentials::FixedCredentials;
use quotatrack::engine::Engine;
use quotatrack::events::HostEvent;
use quotatrack::exchange::RecordedExchange;
use quotatrack::providers::ProviderId::{self, Anthropic, Codex};
use quotatrack::replay;
use quotatrack::settings::Settings;
use quotatrack::transport::{Purpose, Request, Transport, TransportError};
use serde_json::json;
use tempfile::TempDir;

use crate::support::exchange;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_787_400_000 + seconds).unwrap()
}

/// Answers usage with each provider's good fixture and any status page
/// with an operational one; records (provider, purpose, URL) of each.
struct Recording {
    clock: Arc<ManualClock>,
    asked: Mutex<Vec<(ProviderId, Purpose, String)>>,
}

impl Transport for Recording {
    fn send<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<RecordedExchange, TransportError>> {
        let url = request.default_url().map(|url| url.to_string()).unwrap_or_default();
        self.asked
            .lock()
            .unwrap()
            .push((request.provider, request.purpose, url));
        let mut answer = match (request.provider, request.purpose) {
            (_, Purpose::StatusPage) => exchange(Anthropic, "status/none"),
            (Anthropic, _) => exchange(Anthropic, "ok-full"),
            (provider, _) => exchange(provider, "ok-plus"),
        };
        answer.recorded_at = self.clock.now();
        Box::pin(std::future::ready(Ok(answer)))
    }
}

struct Rig {
    runtime: tokio::runtime::Runtime,
    clock: Arc<ManualClock>,
    transport: Arc<Recording>,
    dir: TempDir,
}

impl Rig {
    fn new() -> Rig {
        let clock = Arc::new(ManualClock::new(at(0)));
        Rig {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap(),
            transport: Arc::new(Recording {
                clock: clock.clone(),
                asked: Mutex::new(Vec::new()),
            }),
            clock,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// An engine on the rig's data dir with `settings` (the file's).
    fn engine(&self, settings: Settings) -> Engine {
        Engine::builder()
            .data_dir(self.dir.path())
            .clock(self.clock.clone())
            .transport(self.transport.clone())
            .credentials(Arc::new(FixedCredentials::present([Anthropic, Codex], "test")))
            .settings(settings)
            .build()
            .unwrap()
    }

    fn pages(&self) -> Vec<(ProviderId, String)> {
        let asked = std::mem::take(&mut *self.transport.asked.lock().unwrap());
        asked
            .into_iter()
            .filter(|(_, purpose, _)| *purpose == Purpose::StatusPage)
            .map(|(provider, _, url)| (provider, url))
            .collect()
    }
}

fn settings(patch: serde_json::Value) -> Settings {
    Settings::default().patched(&patch).unwrap()
}

/// Replays the rig's log: no divergence.
fn replays(engine: &Engine) {
    let events: Vec<_> = engine.log().unwrap().entries(0).map(Result::unwrap).collect();
    let report = replay::replay(&events, &replay::Options::default());
    assert!(report.identical(), "{}", report.divergence.unwrap().line());
}

/// One provider's status page is turned off and another's read from a URL
/// of the user's; a host patch turns the first back on, and its page is
/// read at the next cycle after the TTL.
#[test]
fn each_providers_status_page_can_be_turned_off_or_read_elsewhere() {
    let rig = Rig::new();
    let mut engine = rig.engine(settings(json!({
        "providers": ["anthropic", "codex"],
        "status_page": {
            "anthropic": {"enabled": false},
            "codex": {"url": "http://127.0.0.1:9/mirror/summary.json?v=2"}
        }
    })));
    rig.runtime.block_on(engine.cycle()).unwrap();
    assert_eq!(
        rig.pages(),
        [(Codex, "http://127.0.0.1:9/mirror/summary.json?v=2".to_owned())],
        "Claude's page is off; Codex's is read from the URL given"
    );
    let status = engine.status();
    let codex = status.providers.iter().find(|entry| entry.id == Codex).unwrap();
    assert!(codex.status_page.is_some(), "the mirror's reading is Codex's");

    rig.runtime.block_on(engine.start()).unwrap();
    let told = rig
        .runtime
        .block_on(engine.handle(HostEvent::SettingsPatch {
            patch: json!({"status_page": {"codex": {"url": "http://127.0.0.1:9/mirror/summary.json?v=2"}}}),
        }))
        .unwrap();
    assert!(
        told.iter()
            .any(|event| serde_json::to_value(event).unwrap()["type"] == "settings_updated"),
        "{told:?}"
    );
    rig.clock.advance(SignedDuration::from_secs(300));
    rig.runtime.block_on(engine.cycle()).unwrap();
    let pages: Vec<ProviderId> = rig.pages().into_iter().map(|(provider, _)| provider).collect();
    assert_eq!(
        pages,
        [Anthropic, Codex],
        "the whole table was replaced: Claude's page is on again"
    );
    replays(&engine);
}

/// A bad entry names its key and what it allows; the settings stay.
#[test]
fn a_bad_status_page_entry_names_its_key() {
    let base = Settings::default();
    let cases = [
        (
            json!({"status_page": {"claude": {}}}),
            "unknown setting `status_page.claude`",
        ),
        (
            json!({"status_page": {"codex": {"url": "ftp://x.example/a"}}}),
            "status_page.codex.url must be an absolute http or https URL",
        ),
        (
            json!({"status_page": {"codex": {"url": "https://user:pw@x.example/a"}}}),
            "status_page.codex.url must be an absolute http or https URL",
        ),
        (
            json!({"status_page": {"codex": {"enabled": "no"}}}),
            "status_page.codex.enabled must be true or false",
        ),
        (
            json!({"status_page": {"codex": {"colour": 1}}}),
            "unknown setting `status_page.codex.colour`",
        ),
    ];
    for (patch, message) in cases {
        let error = base.patched(&patch).unwrap_err().to_string();
        assert!(error.starts_with(message), "{patch}: {error}");
        assert!(!error.contains("pw@"), "a password is never quoted back: {error}");
    }
}

/// "Stale" follows the refresh interval: three intervals, never under
/// 180 s, unless `stale_after_s` says otherwise; a patch of either moves
/// it at once. The session replays with no divergence.
#[test]
fn stale_follows_the_refresh_interval_unless_set() {
    let state = |engine: &Engine| {
        let status = engine.status();
        let entry = status.providers.iter().find(|entry| entry.id == Anthropic).unwrap();
        serde_json::to_value(entry.state).unwrap().as_str().unwrap().to_owned()
    };
    assert_eq!(Settings::default().stale_after(), SignedDuration::from_secs(180));
    assert_eq!(
        settings(json!({"refresh_interval_s": 10})).stale_after(),
        SignedDuration::from_secs(180),
        "the floor"
    );
    assert_eq!(
        settings(json!({"refresh_interval_s": 300})).stale_after(),
        SignedDuration::from_secs(900)
    );

    let rig = Rig::new();
    let mut engine = rig.engine(settings(json!({"providers": ["anthropic"], "refresh_interval_s": 300})));
    rig.runtime.block_on(engine.start()).unwrap();
    rig.runtime.block_on(engine.cycle()).unwrap();
    rig.clock.advance(SignedDuration::from_secs(600));
    assert_eq!(state(&engine), "fresh", "600 s is two 300 s intervals: not stale yet");
    rig.clock.advance(SignedDuration::from_secs(301));
    assert_eq!(state(&engine), "stale", "901 s is past three intervals");

    let patch = |engine: &mut Engine, patch: serde_json::Value| {
        rig.runtime
            .block_on(engine.handle(HostEvent::SettingsPatch { patch }))
            .unwrap();
    };
    patch(&mut engine, json!({"stale_after_s": 3600}));
    assert_eq!(state(&engine), "fresh", "set explicitly, the threshold is an hour");
    patch(&mut engine, json!({"stale_after_s": null}));
    assert_eq!(state(&engine), "stale", "unset, it is derived again");
    patch(&mut engine, json!({"refresh_interval_s": 600}));
    assert_eq!(state(&engine), "fresh", "a longer interval moves it at once (1800 s)");
    replays(&engine);
}

/// Patched settings survive a restart of `serve` (real processes on one
/// data dir): the next `ready` shows them. A key the config file changes
/// afterwards is the file's again; a patched key the file leaves alone
/// stays patched. The combined log replays with no divergence.
#[test]
fn patched_settings_survive_a_restart_until_the_file_changes_them() {
    use crate::support::{fixtures_dir, quotatrack};

    let dir = tempfile::tempdir().unwrap();
    let (fixtures, data, config) = (
        dir.path().join("fx"),
        dir.path().join("data"),
        dir.path().join("config.toml"),
    );
    std::fs::create_dir_all(fixtures.join("anthropic")).unwrap();
    std::fs::copy(
        fixtures_dir().join("anthropic/ok-full.json"),
        fixtures.join("anthropic/1.json"),
    )
    .unwrap();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let (fixtures, data, config_path) = (path(&fixtures), path(&data), path(&config));
    // One session: `lines` in, the settings of its `ready` out.
    let session = |lines: &str| {
        let args = [
            "--fixtures",
            &fixtures,
            "--data-dir",
            &data,
            "--config",
            &config_path,
            "--clock-at",
            "2026-08-22T12:00:00Z",
            "serve",
            "--stdio",
        ];
        let output = quotatrack(&args, lines.as_bytes());
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8(output.stdout).unwrap();
        let ready: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
        assert_eq!(ready["type"], "ready", "{stdout}");
        ready["settings"].clone()
    };
    let shutdown = "{\"type\":\"session_shutdown\"}\n";
    std::fs::write(
        &config,
        "providers = [\"anthropic\"]\nrefresh_interval_s = 60\ncache_ttl_s = 60\n",
    )
    .unwrap();

    let first = session(&format!(
        "{{\"type\":\"settings_patch\",\"patch\":{{\"refresh_interval_s\":120,\"cache_ttl_s\":90}}}}\n{shutdown}"
    ));
    assert_eq!(first["refresh_interval_s"], 60, "the file's, before the patch");

    let second = session(shutdown);
    assert_eq!(second["refresh_interval_s"], 120, "the patch survived the restart");
    assert_eq!(second["cache_ttl_s"], 90);

    // The user edits the interval in the file: the edit is newer than the
    // patch and wins for that key; the patched TTL stays.
    std::fs::write(
        &config,
        "providers = [\"anthropic\"]\nrefresh_interval_s = 300\ncache_ttl_s = 60\n",
    )
    .unwrap();
    let third = session(shutdown);
    assert_eq!(third["refresh_interval_s"], 300, "the file changed it since the patch");
    assert_eq!(third["cache_ttl_s"], 90, "the file left it alone: still patched");
    let fourth = session(shutdown);
    assert_eq!(
        (fourth["refresh_interval_s"].clone(), fourth["cache_ttl_s"].clone()),
        (json!(300), json!(90))
    );

    let export = quotatrack(&["--data-dir", &data, "log", "export"], b"");
    assert!(export.status.success());
    let log = dir.path().join("log.jsonl");
    std::fs::write(&log, &export.stdout).unwrap();
    let replayed = std::process::Command::new(env!("CARGO_BIN_EXE_replay"))
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        replayed.status.success(),
        "{}{}",
        String::from_utf8_lossy(&replayed.stdout),
        String::from_utf8_lossy(&replayed.stderr)
    );
}

/// A patched `refresh_interval_s` retimes the running timer at once, in
/// both directions (the `Ticker` `serve` and `watch` run on), on tokio's
/// paused clock: no test time passes on the wall.
#[tokio::test(start_paused = true)]
async fn a_patched_interval_retimes_the_running_timer_at_once() {
    use quotatrack::clock::TokioClock;
    use quotatrack::engine::Ticker;
    use tokio::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TokioClock::starting_at(at(0)));
    let transport = Arc::new(Recording {
        clock: Arc::new(ManualClock::new(at(0))),
        asked: Mutex::new(Vec::new()),
    });
    let mut engine = Engine::builder()
        .data_dir(dir.path())
        .clock(clock)
        .transport(transport)
        .credentials(Arc::new(FixedCredentials::present([Anthropic], "test")))
        .settings(settings(json!({"providers": ["anthropic"], "refresh_interval_s": 60})))
        .build()
        .unwrap();
    engine.start().await.unwrap();
    let start = Instant::now();
    let mut ticker = Ticker::new(&engine);
    ticker.tick().await;
    assert_eq!(start.elapsed(), Duration::from_secs(60));

    // Longer: at 70 s the interval becomes 600 s; the next tick is at 670 s,
    // not at 120 s.
    tokio::time::advance(Duration::from_secs(10)).await;
    let patch = |patch| HostEvent::SettingsPatch { patch };
    engine.handle(patch(json!({"refresh_interval_s": 600}))).await.unwrap();
    ticker.follow(&engine);
    ticker.tick().await;
    assert_eq!(start.elapsed(), Duration::from_secs(670));

    // Shorter: at 700 s it becomes 20 s; the next tick is at 720 s, not at
    // 1270 s.
    tokio::time::advance(Duration::from_secs(30)).await;
    engine.handle(patch(json!({"refresh_interval_s": 20}))).await.unwrap();
    ticker.follow(&engine);
    ticker.tick().await;
    assert_eq!(start.elapsed(), Duration::from_secs(720));
    ticker.tick().await;
    assert_eq!(start.elapsed(), Duration::from_secs(740), "and every 20 s after");

    // A patch that leaves the interval alone does not move the timer.
    tokio::time::advance(Duration::from_secs(5)).await;
    engine.handle(patch(json!({"cache_ttl_s": 30}))).await.unwrap();
    ticker.follow(&engine);
    ticker.tick().await;
    assert_eq!(start.elapsed(), Duration::from_secs(760));
    replays(&engine);
}

/// A SIGHUP with the settings file unchanged keeps what a host patched
/// (over `--fixtures`, where the providers are those the fixtures answer
/// for): the next `serve` starts with the patched providers.
#[test]
fn a_sighup_with_the_file_unchanged_keeps_the_hosts_patch() {
    use std::process::{Command, Stdio};

    use crate::support::{fixtures_dir, quotatrack};

    let dir = tempfile::tempdir().unwrap();
    let (fixtures, data, config) = (
        dir.path().join("fx"),
        dir.path().join("data"),
        dir.path().join("config.toml"),
    );
    for provider in ["anthropic", "codex"] {
        std::fs::create_dir_all(fixtures.join(provider)).unwrap();
        let body = if provider == "anthropic" { "ok-full" } else { "ok-plus" };
        std::fs::copy(
            fixtures_dir().join(format!("{provider}/{body}.json")),
            fixtures.join(format!("{provider}/1.json")),
        )
        .unwrap();
    }
    std::fs::write(&config, "providers = [\"anthropic\", \"codex\"]\n").unwrap();
    let common = [
        "--fixtures",
        fixtures.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ];
    let ready = |input: &str| -> serde_json::Value {
        let output = quotatrack(&[common.as_slice(), &["serve", "--stdio"]].concat(), input.as_bytes());
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let first = String::from_utf8(output.stdout).unwrap();
        serde_json::from_str(first.lines().next().unwrap()).unwrap()
    };
    let patch =
        "{\"type\":\"settings_patch\",\"patch\":{\"providers\":[\"codex\"]}}\n{\"type\":\"session_shutdown\"}\n";
    ready(patch);
    let mut child = Command::new(env!("CARGO_BIN_EXE_quotatrack"))
        .args(common)
        .args(["watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut wait_for = output_lines(&mut child);
    // The first status line: the signal handler is in place.
    wait_for("Codex");
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_for("settings reloaded");
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(child.wait().unwrap().success());
    let ready = ready("{\"type\":\"session_shutdown\"}\n");
    assert_eq!(ready["settings"]["providers"], serde_json::json!(["codex"]), "{ready}");
}

/// `watch` reads its settings file again at SIGHUP (a real process): the
/// changed interval is recorded and in force at once, and the log replays
/// with no divergence.
#[test]
fn watch_reloads_its_settings_at_sighup() {
    use std::process::{Command, Stdio};

    use crate::support::{fixtures_dir, quotatrack};

    let dir = tempfile::tempdir().unwrap();
    let (fixtures, data, config) = (
        dir.path().join("fx"),
        dir.path().join("data"),
        dir.path().join("config.toml"),
    );
    std::fs::create_dir_all(fixtures.join("anthropic")).unwrap();
    std::fs::copy(
        fixtures_dir().join("anthropic/ok-full.json"),
        fixtures.join("anthropic/1.json"),
    )
    .unwrap();
    std::fs::write(&config, "providers = [\"anthropic\"]\nrefresh_interval_s = 60\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_quotatrack"))
        .args([
            "--fixtures",
            fixtures.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .args(["--config", config.to_str().unwrap(), "watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut wait_for = output_lines(&mut child);
    wait_for("Claude");
    std::fs::write(&config, "providers = [\"anthropic\"]\nrefresh_interval_s = 600\n").unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let reloaded = wait_for("settings reloaded");
    assert!(reloaded.ends_with("(refresh_interval_s = 600)"), "{reloaded}");
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(child.wait().unwrap().success());

    let export = quotatrack(&["--data-dir", data.to_str().unwrap(), "log", "export"], b"");
    let text = String::from_utf8(export.stdout).unwrap();
    assert!(
        text.lines()
            .any(|line| line.contains("settings_changed") && line.contains(r#""refresh_interval_s":600"#)),
        "{text}"
    );
    let log = dir.path().join("log.jsonl");
    std::fs::write(&log, &text).unwrap();
    let replayed = Command::new(env!("CARGO_BIN_EXE_replay")).arg(&log).output().unwrap();
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stdout)
    );
}

/// A provider the settings turn off reads `inactive` even when its last
/// word was a missing login, and `status --refresh` gives login hints
/// only for the providers in force.
#[test]
fn a_provider_turned_off_is_off_not_waiting_for_a_login() {
    use std::process::Command;

    let dir = tempfile::tempdir().unwrap();
    let (home, data, config) = (
        dir.path().join("home"),
        dir.path().join("data"),
        dir.path().join("c.toml"),
    );
    std::fs::create_dir_all(&home).unwrap();
    let run = |settings: &str, args: &[&str]| {
        std::fs::write(&config, settings).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_quotatrack"));
        // No credentials anywhere: nothing is requested.
        command
            .env_clear()
            .env("HOME", &home)
            .env("PATH", std::env::var_os("PATH").unwrap());
        let output = command
            .args([
                "--data-dir",
                data.to_str().unwrap(),
                "--config",
                config.to_str().unwrap(),
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        (
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    let (_, hints) = run("status_pages = false\n", &["status", "--refresh", "--json"]);
    assert!(hints.contains("no credentials found for codex"), "{hints}");
    let (json, hints) = run(
        "status_pages = false\nproviders = [\"zai\"]\n",
        &["status", "--refresh", "--json"],
    );
    assert!(hints.contains("no credentials found for zai"), "{hints}");
    assert!(!hints.contains("for codex"), "{hints}");
    let view: serde_json::Value = serde_json::from_str(&json).unwrap();
    for provider in view["providers"].as_array().unwrap() {
        let expected = if provider["id"] == "zai" {
            "auth_required"
        } else {
            "inactive"
        };
        assert_eq!(provider["state"], expected, "{provider}");
    }
}

/// A waiter over `child`'s stdout and stderr lines as they come: each call
/// returns the next line holding its text, waiting at most 20 s for each.
fn output_lines(child: &mut std::process::Child) -> impl FnMut(&str) -> String + use<> {
    use std::io::{BufRead, BufReader};

    let (lines, seen) = std::sync::mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
    }
    move |what: &str| loop {
        let line = seen
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no line with {what:?} within 20 s"));
        if line.contains(what) {
            return line;
        }
    }
}
