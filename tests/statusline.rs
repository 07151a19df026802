//! `quotatrack statusline claude` as Claude Code runs it: a recorded
//! status-line payload on stdin, with and without `rate_limits`, and
//! broken ones; one line out, exit 0, never an error.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use quotatrack::statusline::claude_windows;

use crate::support::quotatrack;

const NOW: &str = "2026-08-22T12:59:30Z";

fn payload(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/statusline")
            .join(name),
    )
    .unwrap()
}

/// The binary as Claude Code runs it: `input` on stdin, then stdin closed.
fn check(data_dir: &Path, input: &[u8]) -> (String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_quotatrack"))
        .args([
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--clock-at",
            NOW,
            "statusline",
            "claude",
        ])
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).ok();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "exit {:?}", output.status);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout:?}");
    (stdout.trim_end().to_owned(), String::from_utf8(output.stderr).unwrap())
}

#[test]
fn rate_limits_on_stdin_are_claudes_numbers_and_the_rest_comes_from_the_snapshot() {
    let dir = crate::render::demo_dir();
    let (line, _) = check(dir, &payload("claude-with-rate-limits.json"));
    // The snapshot says 5h 37%, 7d 61%; Claude Code says 72.5% and 64%.
    assert!(
        line.starts_with("Claude 5h 73% ↺2h") || line.starts_with("Claude 73%"),
        "{line}"
    );
    assert!(line.contains("Z.ai"), "{line}");
    insta::assert_snapshot!("claude_with_rate_limits", line);
}

#[test]
fn without_rate_limits_the_snapshot_is_shown() {
    let dir = crate::render::demo_dir();
    let (with_payload, _) = check(dir, &payload("claude-without-rate-limits.json"));
    let (without, _) = check(dir, b"");
    assert_eq!(with_payload, without);
    assert!(with_payload.starts_with("Claude 7d 61%"), "{with_payload}");
}

#[test]
fn broken_input_is_ignored_and_an_empty_data_dir_still_prints_a_line() {
    let dir = crate::render::demo_dir();
    let (snapshot_only, _) = check(dir, b"");
    let mut huge = b"{\"rate_limits\":".to_vec();
    huge.extend(std::iter::repeat_n(b'[', 1 << 20));
    for broken in [
        &b"{not json"[..],
        b"null",
        b"[]",
        b"{\"rate_limits\": 7}",
        b"{\"rate_limits\": {\"five_hour\": {\"used_percentage\": \"lots\"}}}",
        b"\xff\xfe\x00",
        &huge,
    ] {
        assert_eq!(check(dir, broken).0, snapshot_only);
    }
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(check(empty.path(), b"").0, "no usage data yet");
    let (line, _) = check(empty.path(), &payload("claude-with-rate-limits.json"));
    assert!(line.starts_with("Claude"), "{line}");
}

#[test]
fn the_payloads_rate_limits_read_as_windows() {
    let windows = claude_windows(&payload("claude-with-rate-limits.json")).unwrap();
    let read: Vec<(&str, Option<f64>, Option<&str>)> = windows
        .iter()
        .map(|window| (window.id.as_str(), window.used_ratio, window.resets_at.as_deref()))
        .collect();
    assert_eq!(
        read,
        [
            ("5h", Some(0.725), Some("2026-08-22T15:00:00Z")),
            ("7d", Some(0.64), Some("2026-08-26T09:00:00Z"))
        ]
    );
    assert_eq!(claude_windows(&payload("claude-without-rate-limits.json")), None);
    assert_eq!(
        claude_windows(b"{\"rate_limits\":{\"five_hour\":{\"used_percentage\":1e999}}}"),
        None
    );
}

#[test]
fn a_host_that_never_closes_stdin_still_gets_its_line() {
    let dir = crate::render::demo_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_quotatrack"))
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "--clock-at",
            NOW,
            "statusline",
            "claude",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Half an object, and stdin held open.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"{\"rate_limits\": {\"five_hour\": ").unwrap();
    let output = crate::support::finish_within(
        child,
        std::time::Duration::from_secs(20),
        "statusline claude, waiting for stdin to close,",
    );
    drop(stdin);
    assert!(output.status.success());
    let line = String::from_utf8(output.stdout).unwrap();
    assert!(line.starts_with("Claude 7d 61%"), "{line}");
}

#[test]
fn values_turn_stale_by_the_settings_threshold_not_a_fixed_one() {
    let dir = crate::render::demo_dir();
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "refresh_interval_s = 600\n").unwrap();
    // 21 minutes after the last fetch: stale at the default 60 s interval
    // (180 s), fresh at 600 s (three intervals, 30 minutes).
    let line = |config: Option<&Path>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_quotatrack"));
        if let Some(config) = config {
            command.args(["--config", config.to_str().unwrap()]);
        }
        let output = command
            .args([
                "--data-dir",
                dir.to_str().unwrap(),
                "--clock-at",
                "2026-08-22T13:20:00Z",
            ])
            .args(["statusline", "claude"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap()
    };
    let by_default = line(None);
    assert!(by_default.contains("ago"), "{by_default}");
    let slower = line(Some(config.path()));
    assert!(!slower.contains("ago"), "{slower}");
    assert!(slower.contains("Claude 7d 61%"), "{slower}");
}

/// `statusline claude` as Claude Code runs it at `at`, on `data_dir`.
fn statusline_at(data_dir: &Path, at: &str, input: &[u8]) {
    let data_dir = data_dir.to_str().unwrap();
    let output = quotatrack(
        &["--data-dir", data_dir, "--clock-at", at, "statusline", "claude"],
        input,
    );
    assert!(output.status.success());
}

/// The tool on `data_dir`, which must succeed; its stdout.
fn tool(data_dir: &Path, args: &[&str]) -> String {
    let output = quotatrack(&[&["--data-dir", data_dir.to_str().unwrap()], args].concat(), b"");
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn claudes_numbers_are_recorded_by_the_engine_and_replay_and_history_show_them() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/example");
    // Two prompts with rate limits, one without, one broken: two readings.
    statusline_at(
        &data_dir,
        "2026-08-22T12:59:00Z",
        &payload("claude-with-rate-limits.json"),
    );
    statusline_at(
        &data_dir,
        "2026-08-22T12:59:30Z",
        &payload("claude-with-rate-limits.json"),
    );
    statusline_at(
        &data_dir,
        "2026-08-22T12:59:40Z",
        &payload("claude-without-rate-limits.json"),
    );
    statusline_at(&data_dir, "2026-08-22T12:59:50Z", b"{\"rate_limits\": ");
    let spool = data_dir.join(quotatrack::statusline::SPOOL);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&spool).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&spool).unwrap().lines().count(), 2);

    // The engine that owns the log takes them in at its next cycle.
    let fixtures = fixtures.to_str().unwrap();
    tool(
        &data_dir,
        &[
            "--fixtures",
            fixtures,
            "--clock-at",
            "2026-08-22T13:00:00Z",
            "status",
            "--refresh",
        ],
    );
    assert_eq!(std::fs::metadata(&spool).unwrap().len(), 0);
    let export = tool(&data_dir, &["log", "export"]);
    let reported: Vec<serde_json::Value> = export
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|event| event["type"] == "reading_reported")
        .collect();
    assert_eq!(reported.len(), 2, "{export}");
    assert_eq!(reported[0]["source"], "claude_code");
    assert_eq!(reported[0]["read_at"], "2026-08-22T12:59:00Z");
    assert_eq!(reported[0]["windows"][0]["used_ratio"], 0.725);

    // Replay reproduces the recording; history has Claude's reading.
    let file = dir.path().join("log.jsonl");
    std::fs::write(&file, &export).unwrap();
    let replay = tool(&data_dir, &["replay", file.to_str().unwrap()]);
    assert!(replay.starts_with("replay: identical ("), "{replay}");
    let csv = tool(
        &data_dir,
        &[
            "--clock-at",
            "2026-08-22T13:00:00Z",
            "history",
            "anthropic",
            "--window",
            "5h",
            "--since",
            "2026-08-22T12:00:00Z",
            "--csv",
        ],
    );
    assert!(
        csv.lines()
            .any(|line| line.starts_with("anthropic,5h,2026-08-22T12:59:00Z,0.725")),
        "{csv}"
    );
}
