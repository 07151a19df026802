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
        .block_on(serve::own(
            engine,
            &sources,
            Default::default(),
            &mut input,
            &mut out,
            None,
        ))
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

/// `serve --stdio` args over the fixtures of [`fixtures`] in `dir/fx`, on
/// `dir/data`, with `config` as the settings file.
fn serve_args(dir: &Path, config: &Path) -> Vec<String> {
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    vec![
        "--fixtures".to_owned(),
        path(&dir.join("fx")),
        "--data-dir".to_owned(),
        path(&dir.join("data")),
        "--config".to_owned(),
        path(config),
        "--clock-at".to_owned(),
        "2026-08-22T12:00:00Z".to_owned(),
        "serve".to_owned(),
        "--stdio".to_owned(),
    ]
}

/// The events a `serve --stdio` printed.
fn printed(output: &std::process::Output) -> Vec<Value> {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// What the host is told about the providers: `update_current`'s provider,
/// `update_all`'s providers with their states, and `cycle_unchanged`.
fn told_about(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter_map(|event| match event["type"].as_str()? {
            "update_current" => Some(serde_json::json!(["current", event["provider"]])),
            "update_all" => {
                let all: Vec<String> = event["providers"]
                    .as_array()?
                    .iter()
                    .map(|p| format!("{} {}", p["id"].as_str().unwrap(), p["state"].as_str().unwrap()))
                    .collect();
                Some(serde_json::json!(["all", all]))
            }
            "cycle_unchanged" => Some(serde_json::json!(["stayed", event["reason"], event["provider"]])),
            "settings_updated" => Some(serde_json::json!(["settings", event["settings"]["providers"]])),
            _ => None,
        })
        .collect()
}

/// A patch ends, as every path does, in the view under the new settings:
/// the provider it turned off reads inactive and the one shown moves to
/// an enabled one; with every provider turned off none is shown, and a
/// cycle says none is enabled without naming a provider. The log replays.
#[test]
fn a_settings_patch_is_followed_by_the_view_under_the_new_settings() {
    let dir = tempfile::tempdir().unwrap();
    fixtures(&dir.path().join("fx"));
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "providers = [\"anthropic\", \"codex\", \"copilot\"]\n").unwrap();
    let session = concat!(
        "{\"type\":\"session_start\"}\n",
        "{\"type\":\"model_changed\",\"provider\":\"anthropic\",\"model\":\"claude-sonnet-4-5\"}\n",
        "{\"type\":\"settings_patch\",\"patch\":{\"providers\":[\"codex\"]}}\n",
        "{\"type\":\"cycle_provider\"}\n",
        "{\"type\":\"settings_patch\",\"patch\":{\"providers\":[]}}\n",
        "{\"type\":\"cycle_provider\"}\n",
        "{\"type\":\"session_shutdown\"}\n",
    );
    let args = serve_args(dir.path(), &config);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let events = printed(&quotatrack(&args, session.as_bytes()));
    let told = told_about(&events);
    let patched = told
        .iter()
        .position(|event| event[0] == "settings")
        .expect("settings_updated");
    assert_eq!(
        told[patched - 1],
        serde_json::json!(["current", "anthropic"]),
        "{told:#?}"
    );
    let inactive = ["anthropic", "copilot", "gemini", "antigravity", "kiro", "zai"].map(|id| format!("{id} inactive"));
    let all: Vec<String> = ["codex fresh".to_owned()].into_iter().chain(inactive).collect();
    let every_off: Vec<String> = ["anthropic", "codex", "copilot", "gemini", "antigravity", "kiro", "zai"]
        .map(|id| format!("{id} inactive"))
        .to_vec();
    assert_eq!(
        told[patched..],
        [
            serde_json::json!(["settings", ["codex"]]),
            serde_json::json!(["current", "codex"]),
            serde_json::json!(["all", all]),
            serde_json::json!(["stayed", "none_available", "codex"]),
            serde_json::json!(["settings", []]),
            serde_json::json!(["current", null]),
            serde_json::json!(["all", every_off]),
            serde_json::json!(["stayed", "none_enabled", null]),
        ],
        "{told:#?}"
    );

    let export = Command::new(env!("CARGO_BIN_EXE_quotatrack"))
        .args(["--data-dir", dir.path().join("data").to_str().unwrap(), "log", "export"])
        .output()
        .unwrap();
    assert!(export.status.success());
    let (identical, verdict) = replay(
        &dir.path().join("session.jsonl"),
        &String::from_utf8(export.stdout).unwrap(),
    );
    assert!(identical, "{verdict}");
}

/// A follower (a second `serve --stdio` while an owner holds the data
/// dir) cycles through the providers the owner has not turned off: after
/// the owner's patch to Codex alone it moves to Codex, then stays on it;
/// one whose own settings enable no provider says none is enabled. Real
/// processes; the test waits for the owner's answers, never the clock.
#[test]
fn a_follower_cycles_only_through_the_providers_the_owner_enables() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    fixtures(&dir.path().join("fx"));
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "providers = [\"anthropic\", \"codex\", \"copilot\"]\n").unwrap();
    let mut owner = Command::new(env!("CARGO_BIN_EXE_quotatrack"))
        .args(serve_args(dir.path(), &config))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (sender, lines) = std::sync::mpsc::channel();
    let stdout = owner.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    let mut stdin = owner.stdin.take().unwrap();
    writeln!(
        stdin,
        r#"{{"type":"settings_patch","patch":{{"providers":["codex"]}}}}"#
    )
    .unwrap();
    stdin.flush().unwrap();
    // The snapshot carries the patch once the owner says so (a failure
    // guard, not a pause: the answer comes in milliseconds).
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the owner answers the patch");
        if line.contains(r#""type":"settings_updated""#) {
            break;
        }
    }

    let cycles = concat!(
        "{\"type\":\"cycle_provider\"}\n",
        "{\"type\":\"cycle_provider\"}\n",
        "{\"type\":\"cycle_provider\"}\n",
        "{\"type\":\"session_shutdown\"}\n",
    );
    let args = serve_args(dir.path(), &config);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let events = printed(&quotatrack(&args, cycles.as_bytes()));
    assert_eq!(events[0]["type"], "already_active", "{events:?}");
    let told: Vec<Value> = told_about(&events)
        .into_iter()
        .filter(|event| event[0] != "all")
        .collect();
    assert_eq!(
        told,
        [
            serde_json::json!(["current", "codex"]),
            serde_json::json!(["stayed", "none_available", "codex"]),
            serde_json::json!(["stayed", "none_available", "codex"]),
        ]
    );

    let none = dir.path().join("none.toml");
    std::fs::write(&none, "providers = []\n").unwrap();
    let args = serve_args(dir.path(), &none);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let events = printed(&quotatrack(
        &args,
        b"{\"type\":\"cycle_provider\"}\n{\"type\":\"session_shutdown\"}\n",
    ));
    assert_eq!(events[0]["type"], "already_active", "{events:?}");
    let stayed: Vec<Value> = told_about(&events)
        .into_iter()
        .filter(|event| event[0] == "stayed")
        .collect();
    assert_eq!(stayed, [serde_json::json!(["stayed", "none_enabled", null])]);

    writeln!(stdin, r#"{{"type":"session_shutdown"}}"#).unwrap();
    drop(stdin);
    assert!(owner.wait().unwrap().success());
}
