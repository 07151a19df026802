//! `quotatrack parse` as a real process, against `parse-contract.md`: the
//! JSON it prints, its exit codes, and that no input makes it exit 2 or 101.

use std::process::Output;

use quotatrack::wire::ParseOutput;
use serde_json::Value;

use crate::support::{Expect, Fixture, all_fixtures, check, quotatrack};

/// Runs `parse` on a fixture's body with its status, headers and clock.
fn parse_fixture(fixture: &Fixture) -> Output {
    let provider = fixture.provider.to_string();
    let status = fixture.status.to_string();
    let now = fixture.recorded_at.to_string();
    let headers: Vec<String> = fixture.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let mut args = vec!["parse", &provider, "-", "--status", &status, "--now", &now, "--json"];
    for header in &headers {
        args.extend(["--header", header]);
    }
    quotatrack(&args, &fixture.body)
}

#[test]
fn parse_prints_the_contract_output_for_every_fixture() {
    for fixture in all_fixtures() {
        let output = parse_fixture(&fixture);
        let name = fixture.path.display();
        let stdout: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = serde_json::to_value(ParseOutput::new(fixture.provider, &check(&fixture))).unwrap();
        assert_eq!(stdout, expected, "{name}");
        let code = output.status.code();
        match fixture.expect() {
            Expect::Usage => assert_eq!(code, Some(0), "{name}"),
            Expect::Error(kind) => {
                assert_eq!(code, Some(1), "{name}");
                assert_eq!(stdout["error"]["kind"], kind.as_str(), "{name}");
            }
        }
    }
}

#[test]
fn success_output_has_every_contract_field() {
    let fixture = all_fixtures().into_iter().find(|f| f.name() == "ok-plus").unwrap();
    let stdout: Value = serde_json::from_slice(&parse_fixture(&fixture).stdout).unwrap();
    assert_eq!(stdout["provider"], "codex");
    assert_eq!(stdout["plan"], "plus");
    let fields = [
        "id",
        "label",
        "used_ratio",
        "remaining_ratio",
        "used",
        "remaining",
        "limit",
        "unit",
        "resets_at",
        "window_seconds",
        "model",
    ];
    let window = stdout["windows"][0].as_object().unwrap();
    let mut keys: Vec<_> = window.keys().map(String::as_str).collect();
    keys.sort();
    let mut expected = fields.to_vec();
    expected.sort();
    assert_eq!(keys, expected);
    assert_eq!(window["resets_at"], "2026-08-22T15:30:12Z");
}

#[test]
fn garbage_input_is_a_parse_error_never_a_usage_error_or_panic() {
    let inputs: [&[u8]; 6] = [
        b"",
        b"\xff\xfe\x00garbage",
        b"null",
        b"[1,2,3]",
        b"{\"a\":",
        &[b'['; 50_000],
    ];
    for provider in ["anthropic", "antigravity", "codex", "copilot", "gemini", "kiro", "zai"] {
        for input in inputs {
            for status in ["200", "401", "429", "503"] {
                let output = quotatrack(&["parse", provider, "-", "--status", status, "--json"], input);
                assert_eq!(
                    output.status.code(),
                    Some(1),
                    "{provider} {status} {:?}",
                    String::from_utf8_lossy(input)
                );
                let stdout: Value = serde_json::from_slice(&output.stdout).unwrap();
                assert!(stdout["error"]["kind"].is_string());
            }
        }
    }
}

#[test]
fn retry_after_as_http_date_is_relative_to_now() {
    let body = br#"{"error":{"type":"rate_limit_error","message":"Rate limited. Please try again later."}}"#;
    let args = [
        "parse",
        "anthropic",
        "-",
        "--status",
        "429",
        "--header",
        "Retry-After: Wed, 21 Oct 2026 07:28:00 GMT",
        "--now",
        "2026-10-21T07:00:00Z",
        "--json",
    ];
    let output = quotatrack(&args, body);
    let stdout: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(stdout["error"]["retry_after_s"], 1680);
}

#[test]
fn usage_errors_exit_2_with_one_line_on_stderr() {
    let cases: [&[&str]; 4] = [
        &["parse", "openrouter", "-"],
        &["parse", "codex", "/nonexistent/body.json"],
        &["parse", "codex", "-", "--header", "no colon here"],
        &["parse", "codex", "-", "--now", "yesterday"],
    ];
    for args in cases {
        let output = quotatrack(args, b"{}");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.trim().is_empty(), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn text_output_names_each_window() {
    let fixture = all_fixtures().into_iter().find(|f| f.name() == "ok-full").unwrap();
    let output = quotatrack(
        &["parse", "anthropic", "-", "--now", "2026-08-22T12:00:00Z"],
        &fixture.body,
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("anthropic\n"), "{text}");
    assert!(text.contains("5h") && text.contains("37.0% used"), "{text}");
    assert!(text.contains("extra") && text.contains("12.75 of 50 usd"), "{text}");
}

#[test]
fn exchange_flag_reads_status_headers_body_and_clock_from_a_recorded_exchange() {
    for fixture in all_fixtures() {
        let path = fixture.path.to_string_lossy().into_owned();
        let provider = fixture.provider.to_string();
        let output = quotatrack(&["parse", &provider, &path, "--exchange", "--json"], b"");
        let stdout: Value = serde_json::from_slice(&output.stdout).unwrap();
        let expected = serde_json::to_value(ParseOutput::new(fixture.provider, &check(&fixture))).unwrap();
        assert_eq!(stdout, expected, "{path}");
    }
    let output = quotatrack(&["parse", "codex", "-", "--exchange"], b"{\"not\":\"an exchange\"}");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a recorded exchange"));
}

mod engine_commands {
    //! `demo`, `status --refresh` and `watch` as real processes.

    use std::io::{BufRead, BufReader};
    use std::path::Path;
    use std::process::{Command, Stdio};

    use crate::support::quotatrack;

    fn fixtures() -> String {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/providers")
            .display()
            .to_string()
    }

    #[test]
    fn demo_in_its_own_temporary_dir_keeps_it_private_under_a_loose_umask() {
        use std::os::unix::process::CommandExt;
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_quotatrack"));
        command.args(["demo", "--hours", "1"]);
        // SAFETY: umask is async-signal-safe and touches only the child.
        unsafe {
            command.pre_exec(|| {
                libc::umask(0o022);
                Ok(())
            });
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        assert!(!stderr.contains("other users"), "{stderr}");
    }

    #[test]
    fn demo_prints_a_timeline_and_keeps_a_replayable_log() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let output = quotatrack(&["--data-dir", data, "demo", "--hours", "3"], b"");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{stdout}");
        assert!(stdout.contains("12:00  Claude 5h 37% ↺2h00m"), "{stdout}");
        assert!(
            stdout.contains("(1m ago)"),
            "the failure streak shows stale values: {stdout}"
        );
        assert!(stdout.contains("⏳ 5m"), "the rate limit shows its wait: {stdout}");
        assert!(stdout.contains("Codex: login needed"), "the lost credential: {stdout}");
        assert!(stdout.contains("\nfinal  "), "{stdout}");

        let export = quotatrack(&["--data-dir", data, "log", "export"], b"");
        assert_eq!(export.status.code(), Some(0));
        let replayed = quotatrack(&["replay", "-"], &export.stdout);
        assert_eq!(
            replayed.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&replayed.stdout)
        );
    }

    #[test]
    fn status_refresh_over_fixtures_fetches_once_and_then_honours_the_rules() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let first = quotatrack(
            &[
                "--data-dir",
                data,
                "--fixtures",
                &fixtures(),
                "status",
                "--refresh",
                "--json",
            ],
            b"",
        );
        assert_eq!(
            first.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&first.stderr)
        );
        let view: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
        let providers = view["providers"].as_array().unwrap();
        assert_eq!(providers.len(), 7);
        // File-name order: anthropic's first recorded exchange is an expired token.
        assert_eq!(providers[0]["state"], "auth_required");
        assert!(providers[0]["error"]["message"].as_str().unwrap().contains("expired"));

        let second = quotatrack(
            &["--data-dir", data, "--fixtures", &fixtures(), "status", "--refresh"],
            b"",
        );
        assert_eq!(second.status.code(), Some(0));
        let stats = quotatrack(&["--data-dir", data, "log", "stats"], b"");
        let stats = String::from_utf8_lossy(&stats.stdout);
        let fetches: u64 = stats
            .lines()
            .find(|line| line.trim_start().starts_with("fetch_started"))
            .and_then(|line| line.split_whitespace().last())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert_eq!(
            fetches, 7,
            "the second refresh within a minute fetched nothing: {stats}"
        );
    }

    #[test]
    fn status_refresh_without_credentials_says_where_it_looked_and_what_to_run() {
        let home = tempfile::tempdir().unwrap();
        let first = crate::live::run(home.path(), &[], &["status"]);
        assert_eq!(String::from_utf8_lossy(&first.stdout), "no usage data yet\n");
        assert!(String::from_utf8_lossy(&first.stderr).contains("run `quotatrack status --refresh`"));
        let output = crate::live::run(home.path(), &[], &["status", "--refresh"]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "missing credentials are data, not a failure"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(
                "no credentials found for anthropic (looked in $QUOTATRACK_ANTHROPIC_TOKEN, \
                 ~/.claude/.credentials.json, ~/.pi/agent/auth.json); run `claude /login`"
            ),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 7, "one line per provider: {stderr}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.starts_with("Claude: login needed │ Codex: login needed"),
            "{stdout}"
        );
    }

    #[test]
    fn watch_prints_updates_and_stops_cleanly_on_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_quotatrack"))
            .args(["--data-dir", data, "--fixtures", &fixtures(), "watch"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(first.starts_with("Claude: login needed │ "), "{first}");
        let kill = Command::new("sh")
            .args(["-c", &format!("kill -TERM {}", child.id())])
            .status()
            .unwrap();
        assert!(kill.success());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");
        let verify = quotatrack(&["--data-dir", data, "log", "verify"], b"");
        let verify = String::from_utf8_lossy(&verify.stdout);
        assert!(
            verify.contains("checkpoint agrees"),
            "clean shutdown wrote a checkpoint: {verify}"
        );
    }

    /// `watch --json`: each cycle prints one line, the object `status
    /// --json` prints for the snapshot that cycle wrote. Two cycles (the
    /// first, then a refresh asked over the control socket a minute later
    /// by the clock file) are two lines, each parsing as that object.
    #[test]
    fn watch_json_judges_age_by_the_settings_in_force_patches_included() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let clock = dir.path().join("clock");
        let config = dir.path().join("config.toml");
        // No fetch is due again for 50 minutes: values keep the age of the
        // first fetch.
        std::fs::write(&config, "refresh_interval_s = 10\nmin_interval_s = 3000\n").unwrap();
        std::fs::write(&clock, "2026-08-22T12:00:00Z").unwrap();
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/example");
        let fixtures = example.to_str().unwrap().to_owned();
        let common = [
            "--data-dir",
            data.to_str().unwrap(),
            "--clock-file",
            clock.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--fixtures",
            &fixtures,
        ];
        // A host patched the stale threshold to 10 minutes; the patch is kept.
        let patch = [
            r#"{"type":"settings_patch","patch":{"stale_after_s":600}}"#,
            r#"{"type":"session_shutdown"}"#,
        ]
        .join("\n");
        let served = quotatrack(&[common.as_slice(), &["serve", "--stdio"]].concat(), patch.as_bytes());
        assert!(served.status.success(), "{}", String::from_utf8_lossy(&served.stderr));
        // Four minutes on: stale by the file's 180 s, fresh by the patch.
        std::fs::write(&clock, "2026-08-22T12:04:00Z").unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_quotatrack"))
            .args(common)
            .args(["watch", "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        assert_eq!(child.wait().unwrap().code(), Some(0));
        let providers = first["providers"].as_array().unwrap();
        assert!(!providers.is_empty(), "{first}");
        for provider in providers {
            assert_eq!(provider["age_s"], 240, "{provider}");
            assert_eq!(provider["state"], "fresh", "{provider}");
        }
    }

    #[test]
    fn watch_json_prints_the_status_object_once_per_cycle() {
        use std::io::Write;
        use std::os::unix::net::UnixStream;

        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let clock = dir.path().join("clock");
        std::fs::write(&clock, "2026-08-22T12:00:00Z").unwrap();
        let fixtures = fixtures();
        let common = [
            "--data-dir",
            data.to_str().unwrap(),
            "--clock-file",
            clock.to_str().unwrap(),
            "--fixtures",
            &fixtures,
        ];
        let mut child = Command::new(env!("CARGO_BIN_EXE_quotatrack"))
            .args(common)
            .args(["watch", "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next = || -> serde_json::Value {
            let line = lines.next().unwrap().unwrap();
            serde_json::from_str(&line).unwrap_or_else(|error| panic!("{error}: {line}"))
        };
        let status_json = || -> serde_json::Value {
            let output = quotatrack(&[common.as_slice(), &["status", "--json"]].concat(), b"");
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            serde_json::from_slice(&output.stdout).unwrap()
        };
        let first = next();
        assert_eq!(first["schema"], 1, "{first}");
        assert_eq!(first["generated_at"], "2026-08-22T12:00:00Z", "{first}");
        assert!(!first["providers"].as_array().unwrap().is_empty(), "{first}");
        assert_eq!(first, status_json());

        // The socket is bound before the first cycle's line is printed.
        std::fs::write(&clock, "2026-08-22T12:01:00Z").unwrap();
        let mut socket = UnixStream::connect(data.join("control.sock")).unwrap();
        socket.write_all(b"{\"refresh\":null}\n").unwrap();
        let mut done = String::new();
        BufReader::new(&socket).read_line(&mut done).unwrap();
        assert_eq!(done.trim(), r#"{"done":true}"#);
        let second = next();
        assert_eq!(second["generated_at"], "2026-08-22T12:01:00Z", "{second}");
        assert_ne!(second, first);
        assert_eq!(second, status_json());

        let kill = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        assert_eq!(child.wait().unwrap().code(), Some(0));
        assert!(lines.next().is_none(), "nothing after the two cycles");
    }
}

/// `--fixtures` goes on through the recorded answers from one process to
/// the next on the same data dir (the position is the fetches its log
/// recorded), and the offline example starts with a success for every
/// provider.
#[test]
fn fixtures_keep_their_position_across_processes_and_the_example_starts_well() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = dir.path().join("fx/anthropic");
    std::fs::create_dir_all(&fixtures).unwrap();
    let source = crate::support::fixtures_dir().join("anthropic");
    std::fs::copy(source.join("ok-full.json"), fixtures.join("1.json")).unwrap();
    std::fs::copy(source.join("err-auth-expired.json"), fixtures.join("2.json")).unwrap();
    let data = dir.path().join("data");
    let state = |offset: &str| {
        let output = crate::support::quotatrack(
            &[
                "--data-dir",
                data.to_str().unwrap(),
                "--fixtures",
                dir.path().join("fx").to_str().unwrap(),
                "--now-offset",
                offset,
                "status",
                "--refresh",
                "--json",
            ],
            b"",
        );
        let view: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        view["providers"][0]["state"].as_str().unwrap().to_owned()
    };
    assert_eq!(state("0"), "fresh");
    assert_eq!(
        state("120"),
        "auth_required",
        "the second process gets the second answer"
    );

    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/example");
    for provider in std::fs::read_dir(&example).unwrap().map(Result::unwrap) {
        if !provider.path().is_dir() {
            continue;
        }
        let mut names: Vec<String> = std::fs::read_dir(provider.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".json"))
            .collect();
        names.sort();
        assert!(
            names[0].starts_with("1-ok-"),
            "{}: {names:?}",
            provider.path().display()
        );
    }
}

/// `demo` runs the engine with the settings file, automatic retention
/// included: a day and an hour of virtual time with `bodies_days = 1` leaves
/// the first hour's fetches without their bodies, and the log still replays
/// to itself.
#[test]
fn demo_applies_the_retention_of_the_settings_file() {
    let dir = tempfile::tempdir().unwrap();
    let (config, data) = (dir.path().join("config.toml"), dir.path().join("data"));
    std::fs::write(&config, "[retention]\nbodies_days = 1\nevents_days = 2\n").unwrap();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let demo = crate::support::quotatrack(
        &[
            "--config",
            &path(&config),
            "--data-dir",
            &path(&data),
            "demo",
            "--hours",
            "25",
        ],
        b"",
    );
    assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));
    let export = crate::support::quotatrack(&["--data-dir", &path(&data), "log", "export"], b"");
    assert!(export.status.success());
    let events: Vec<quotatrack::events::Envelope> = quotatrack::events::read_lines(export.stdout.as_slice())
        .map(Result::unwrap)
        .collect();
    let start = events[0].at;
    let with_body = |keep: bool| {
        events.iter().filter(move |e| {
            matches!(&e.payload, quotatrack::events::Event::FetchCompleted { exchange, .. } if exchange.is_some() == keep)
        })
    };
    let first_body = with_body(true).map(|e| e.at).min().unwrap();
    assert!(
        first_body.duration_since(start) >= jiff::SignedDuration::from_mins(55),
        "{first_body}"
    );
    assert!(with_body(false).count() > 0);
    let report = quotatrack::replay::replay(&events, &Default::default());
    assert!(report.identical(), "{}", report.divergence.unwrap().line());
}

/// Every command that prints data prints one JSON object with `--json`.
mod json_everywhere {
    use std::path::Path;

    use serde_json::Value;

    use crate::support::quotatrack;

    /// A data dir with an hour of the demo's log.
    fn demo_dir(root: &Path) -> String {
        let data = root.join("data");
        let data = data.to_str().unwrap().to_owned();
        let demo = quotatrack(&["--data-dir", &data, "demo", "--hours", "1"], b"");
        assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));
        data
    }

    fn strs(args: &[String]) -> Vec<&str> {
        args.iter().map(String::as_str).collect()
    }

    /// Runs `args`: exit 0 and one line of stdout that parses as a JSON object.
    fn json_of(args: &[&str], stdin: &[u8]) -> Value {
        let output = quotatrack(args, stdin);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{args:?}: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(stdout.lines().count(), 1, "{args:?}: one line: {stdout}");
        let value: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"));
        assert!(value.is_object(), "{args:?}: {value}");
        value
    }

    #[test]
    fn every_command_that_prints_data_prints_json() {
        let dir = tempfile::tempdir().unwrap();
        let data = demo_dir(dir.path());
        let on = |args: &[&'static str]| -> Vec<String> {
            ["--data-dir", data.as_str()]
                .iter()
                .chain(args)
                .map(|arg| arg.to_string())
                .collect()
        };

        let store = json_of(&strs(&on(&["store", "--json"])), b"");
        assert!(store["providers"]["anthropic"].is_object(), "{store}");
        let stats = json_of(&strs(&on(&["log", "stats", "--json"])), b"");
        let events = stats["events"].as_u64().unwrap();
        assert!(events > 100, "{stats}");
        assert!(stats["by_type"]["fetch_completed"].as_u64().unwrap() > 0, "{stats}");
        let verify = json_of(&strs(&on(&["log", "verify", "--json"])), b"");
        assert_eq!(verify["ok"], true, "{verify}");
        assert_eq!(verify["sled"]["events"].as_u64(), Some(events), "{verify}");
        let repair = json_of(&strs(&on(&["log", "repair", "--json"])), b"");
        assert_eq!(repair["damaged"], false, "{repair}");
        let compact = json_of(&strs(&on(&["log", "compact", "--keep-days", "3650", "--json"])), b"");
        assert_eq!(compact["bodies_dropped"], 0, "{compact}");
        let status = json_of(&strs(&on(&["status", "--json"])), b"");
        assert!(status["providers"].is_array(), "{status}");
        let history = json_of(
            &strs(&on(&["history", "--json", "--since", "2026-08-01T00:00:00Z"])),
            b"",
        );
        assert!(history["series"].is_array(), "{history}");

        let exported = quotatrack(&strs(&on(&["log", "export"])), b"");
        assert!(exported.status.success());
        let fresh = dir.path().join("fresh");
        let import = json_of(
            &["--data-dir", fresh.to_str().unwrap(), "log", "import", "-", "--json"],
            &exported.stdout,
        );
        assert_eq!(import["imported"].as_u64(), Some(events), "{import}");
        let replayed = json_of(&["replay", "-", "--json"], &exported.stdout);
        assert_eq!(replayed["identical"], true, "{replayed}");

        let demo = json_of(&["demo", "--hours", "1", "--json"], b"");
        assert_eq!(demo["minutes"], 60, "{demo}");
        assert!(demo["final"].as_str().unwrap().contains("Claude"), "{demo}");

        // No credentials in an empty home: each provider says where it looked.
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_quotatrack"))
            .args(["credentials", "--json"])
            .env_clear()
            .env("HOME", &home)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let credentials: Value = serde_json::from_slice(&output.stdout).unwrap();
        let providers = credentials["providers"].as_array().unwrap();
        assert_eq!(providers.len(), quotatrack::providers::ProviderId::ALL.len());
        for provider in providers {
            assert_eq!(provider["found"], false, "{provider}");
            assert!(!provider["message"].as_str().unwrap().is_empty(), "{provider}");
        }
    }

    #[test]
    fn log_commands_show_no_progress_when_stderr_is_not_a_terminal() {
        let dir = tempfile::tempdir().unwrap();
        let data = demo_dir(dir.path());
        let exported = quotatrack(&["--data-dir", &data, "log", "export"], b"");
        let fresh = dir.path().join("fresh");
        let runs: [(&str, &[&str]); 6] = [
            (data.as_str(), &["export"]),
            (data.as_str(), &["stats"]),
            (data.as_str(), &["verify"]),
            (data.as_str(), &["repair"]),
            (data.as_str(), &["compact", "--keep-days", "3650"]),
            (fresh.to_str().unwrap(), &["import", "-"]),
        ];
        for (data, command) in runs {
            // Shown at once were stderr a terminal: it is a pipe here.
            let args = [&["--data-dir", data, "log", "--progress-after-ms", "0"], command].concat();
            let stdin: &[u8] = if command[0] == "import" { &exported.stdout } else { b"" };
            let output = quotatrack(&args, stdin);
            assert!(output.status.success(), "{args:?}");
            assert!(
                output.stderr.is_empty(),
                "{args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    /// On a terminal (`script` gives the command one) the same command
    /// shows its progress on stderr, and stdout stays the export alone.
    #[test]
    fn log_export_shows_progress_on_a_terminal() {
        if std::process::Command::new("script").arg("--version").output().is_err() {
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"SKIPPED: log_export_shows_progress_on_a_terminal: `script` (util-linux) is not installed\n",
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let data = demo_dir(dir.path());
        let out = dir.path().join("export.jsonl");
        let command = format!(
            "{} --data-dir {data} log --progress-after-ms 0 export > {}",
            env!("CARGO_BIN_EXE_quotatrack"),
            out.display()
        );
        let terminal = std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .output()
            .unwrap();
        assert!(terminal.status.success(), "{terminal:?}");
        let shown = String::from_utf8_lossy(&terminal.stdout);
        assert!(shown.contains("exporting the log"), "{shown}");
        let exported = std::fs::read_to_string(&out).unwrap();
        assert!(!exported.contains("exporting the log"));
        let plain = quotatrack(&["--data-dir", &data, "log", "export"], b"");
        assert_eq!(exported.as_bytes(), plain.stdout.as_slice(), "the same events");
    }
}
