//! `serve --stdio` as a real process: a scripted host session over
//! recorded fixtures, answered line by line (an unreadable line and a bad
//! settings patch get errors naming their line, and the engine keeps
//! going); the transcript is a reviewed snapshot; the session's log
//! replays with no divergence.

use std::path::Path;
use std::process::Command;

use quotatrack::providers::ProviderId;
use serde_json::Value;

use crate::support::{fixtures_dir, quotatrack};

const SESSION: &str = r#"{"type":"session_start"}
{"type":"model_changed","provider":"anthropic","model":"claude-sonnet-4-5"}
{"type":"turn_start"}
{"type":"tool_result"}
{"type":"turn_end"}
{"type":"refresh"}
{"type":"cycle_provider"}
this is not json
{"type":"teleport"}
{"type":"settings_patch","patch":{"refresh_interval_s":"banana"}}
{"type":"settings_patch","patch":{"refresh_interval_s":120,"providers":["codex","anthropic","copilot"]}}
{"type":"cycle_provider"}
{"type":"session_shutdown"}
"#;

/// A fixtures dir with one good response per provider, Claude's status
/// page (all operational) and OpenAI's (a partial outage).
fn fixtures(dir: &Path) {
    let copy = |provider: ProviderId, name: &str, to: &str| {
        let target = dir.join(provider.as_str()).join(to);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(fixtures_dir().join(provider.as_str()).join(name), target).unwrap();
    };
    copy(ProviderId::Anthropic, "ok-full.json", "1.json");
    copy(ProviderId::Anthropic, "status/none.json", "status/1.json");
    copy(ProviderId::Codex, "ok-plus.json", "1.json");
    copy(ProviderId::Codex, "status/major.json", "status/1.json");
    copy(ProviderId::Copilot, "ok-paid.json", "1.json");
}

#[test]
fn a_scripted_stdio_session_is_answered_line_by_line_and_its_log_replays() {
    let dir = tempfile::tempdir().unwrap();
    let (fixture_dir, data, config) = (
        dir.path().join("fx"),
        dir.path().join("data"),
        dir.path().join("config.toml"),
    );
    fixtures(&fixture_dir);
    std::fs::write(&config, "providers = [\"anthropic\", \"codex\", \"copilot\"]\n").unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let args = [
        "--fixtures",
        &path(&fixture_dir),
        "--data-dir",
        &path(&data),
        "--config",
        &path(&config),
        "--clock-at",
        "2026-08-22T12:00:00Z",
        "serve",
        "--stdio",
    ];
    let output = quotatrack(&args, SESSION.as_bytes());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let events: Vec<Value> = stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let types: Vec<&str> = events.iter().map(|event| event["type"].as_str().unwrap()).collect();
    assert_eq!(types[0], "ready", "{types:?}");
    let errors: Vec<(u64, &str)> = events
        .iter()
        .filter(|event| event["type"] == "error")
        .map(|event| (event["line"].as_u64().unwrap(), event["message"].as_str().unwrap()))
        .collect();
    assert_eq!(errors.iter().map(|(line, _)| *line).collect::<Vec<_>>(), [8, 9, 10]);
    assert!(
        errors[2]
            .1
            .starts_with("settings_patch: refresh_interval_s must be an integer ≥ 10")
    );
    // The model change shows Claude; cycling moves to the next provider in
    // the order in force (Codex, then, after the patch reordered them, Claude).
    let current: Vec<&str> = events
        .iter()
        .filter(|event| event["type"] == "update_current")
        .filter_map(|event| event["provider"].as_str())
        .collect();
    assert_eq!(current, ["anthropic", "codex", "anthropic"]);
    // OpenAI's status page reports a partial outage: Codex's line says so.
    let codex = events
        .iter()
        .find(|event| event["type"] == "update_current" && event["provider"] == "codex")
        .unwrap();
    assert_eq!(codex["usage"]["status_page"]["indicator"], "major");
    assert!(codex["display"].as_str().unwrap().ends_with("3% used ⚠ partial outage"));
    insta::assert_snapshot!("stdio_transcript", stdout);

    // The session's log replays with no divergence.
    let export = Command::new(env!("CARGO_BIN_EXE_quotatrack"))
        .args(["--data-dir", &path(&data), "log", "export"])
        .output()
        .unwrap();
    assert!(export.status.success());
    let log = dir.path().join("session.jsonl");
    let recorded = String::from_utf8(export.stdout).unwrap();
    let (identical, verdict) = replay(&log, &recorded);
    assert!(identical, "{verdict}");

    // Replay re-drives the controller: had the host's model been a GPT
    // model, the session would have shown Codex, not Claude.
    let gpt = recorded.replace(
        r#""provider":"anthropic","model":"claude-sonnet-4-5""#,
        r#""provider":"openai","model":"gpt-5""#,
    );
    let (identical, verdict) = replay(&log, &gpt);
    assert!(!identical);
    let first = verdict.lines().next().unwrap();
    assert!(
        first.contains("(controller")
            && first.contains("expected transitioned resolve_provider → hydrate_from_cache (refresh_requested, anthropic), got transitioned resolve_provider → hydrate_from_cache (refresh_requested, codex)"),
        "{verdict}"
    );

    // A patch the recording refused but the current rules accept diverges
    // where the settings would have changed.
    let (identical, verdict) = replay(&log, &recorded.replace(r#""banana""#, "300"));
    assert!(!identical);
    let first = verdict.lines().next().unwrap();
    assert!(
        first.contains(r#"got settings_changed {"refresh_interval_s":300}"#),
        "{verdict}"
    );
}

/// Runs the `replay` tool over `text` (written to `log`): whether it found
/// no divergence, and what it printed.
fn replay(log: &Path, text: &str) -> (bool, String) {
    std::fs::write(log, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_replay")).arg(log).output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), printed)
}

/// The owner's loop as a library call, driven through in-memory pipes: the
/// host hears `ready` first and the views after it, the loop ends at
/// `session_shutdown` with the engine closed (the log reopens and replays
/// to itself) and the control socket removed.
#[test]
fn the_owner_loop_runs_over_in_memory_pipes() {
    use std::sync::Arc;
    use std::time::Duration;

    use quotatrack::clock::ManualClock;
    use quotatrack::commands::{self, Sources, serve};
    use quotatrack::session::input::HostLines;
    use quotatrack::settings::Settings;

    let dir = tempfile::tempdir().unwrap();
    fixtures(&dir.path().join("fx"));
    let sources = Sources {
        clock: Arc::new(ManualClock::new("2026-08-22T12:00:00Z".parse().unwrap())),
        data_dir: dir.path().join("data"),
        fixtures: Some(dir.path().join("fx")),
        timeout: Duration::from_secs(5),
        settings: Settings::default(),
        origins: Default::default(),
        settings_file: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = commands::engine(&sources).unwrap();
    let session = "{\"type\":\"session_start\"}\n{\"type\":\"refresh\"}\n{\"type\":\"session_shutdown\"}\n{\"type\":\"refresh\"}\n";
    let mut input = HostLines::new(tokio::io::BufReader::new(session.as_bytes()));
    let mut out = Vec::new();
    runtime
        .block_on(serve::own(engine, &sources, None, &mut input, &mut out, None))
        .unwrap();

    let told: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(told[0]["type"], "ready", "{told:?}");
    assert!(told.iter().any(|event| event["type"] == "update_all"), "{told:?}");
    assert!(
        !sources.data_dir.join("control.sock").exists(),
        "the socket goes with the owner"
    );
    let log = quotatrack::log::Log::open(&sources.data_dir).unwrap();
    let events: Vec<_> = log.entries(0).map(Result::unwrap).collect();
    let hosts = events
        .iter()
        .filter(|e| matches!(e.payload, quotatrack::events::Event::HostReported { .. }))
        .count();
    assert!(
        hosts <= 3,
        "nothing after session_shutdown is handled: {hosts} host events"
    );
    let report = quotatrack::replay::replay(&events, &Default::default());
    assert!(report.identical(), "{}", report.divergence.unwrap().line());
}
