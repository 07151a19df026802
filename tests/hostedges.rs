//! Everyday edges, with real processes: a closed stdout ends every command
//! that prints quietly (exit 0); a second owner exits 3 naming the owner's
//! pid; a bad `--config` is the first and only line (file, line, key;
//! exit 2); `serve --stdio` answers every bad line by number and goes on,
//! with flat memory and a fixed number of events per host event; a path
//! in the way is named once and never deleted; a crafted log's settings
//! out of bounds are refused by replay, verify and import, naming the
//! event, never a panic.
//!
//! See: issue 16, items 11–15 and 17.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use jiff::Timestamp;
use proptest::prelude::*;
use quotatrack::events::{Event, Stream};
use quotatrack::log::Log;
use quotatrack::providers::ProviderId;
use quotatrack::replay::{self, ReplayError, Request};
use serde_json::{Value, json};

use crate::support::{finish_within, fixtures_dir};

/// No process here may run longer than this.
const LIMIT: Duration = Duration::from_secs(120);

fn bin() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quotatrack"));
    command
        .env_remove("QUOTATRACK_CONFIG")
        .env_remove("QUOTATRACK_DATA_DIR");
    command
}

/// A scratch dir with a fixtures dir (one good Claude response) and a
/// fake home with no credentials.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("fx/anthropic/1.json");
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(fixtures_dir().join("anthropic/ok-full.json"), target).unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Scratch { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn text(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_owned()
    }

    /// The binary with a fake home and `args`, the data dir `data`.
    fn command(&self, data: &str, args: &[&str]) -> Command {
        let mut command = bin();
        command
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("home/.config"))
            .args(["--data-dir", &self.text(data)])
            .args(args);
        command
    }

    /// A data dir with a log and a snapshot, from one refresh over the
    /// fixtures.
    fn filled(&self, data: &str) {
        let output = output(&mut self.command(data, &["--fixtures", &self.text("fx"), "status", "--refresh"]));
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
}

/// Waits for `child` at most [`LIMIT`]; past that it is killed and the
/// test fails.
/// Runs `command` to its end with no input, its output captured, within
/// the same bound as [`finish`].
fn output(command: &mut Command) -> Output {
    finish(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

fn finish(child: Child) -> Output {
    finish_within(child, LIMIT, "quotatrack")
}

fn terminate(child: &Child) {
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

/// The lines of a child's stream, read on a thread, for bounded waits.
fn lines_of(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

/// The first line `matches` accepts, within [`LIMIT`].
fn wait_for(lines: &mpsc::Receiver<String>, what: &str, matches: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if matches(&line) => return line,
            Ok(_) => {}
            Err(error) => panic!("no {what} within {LIMIT:?}: {error}"),
        }
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

// Item 13: a closed stdout.

/// Runs `command` with its stdout a stream whose reader is already gone
/// (a socket pair: a write gets `EPIPE` as on a pipe; `std::io::pipe` is
/// newer than the crate's MSRV).
fn with_closed_stdout(mut command: Command, stdin: &[u8]) -> Output {
    let (reader, writer) = std::os::unix::net::UnixStream::pair().unwrap();
    drop(reader);
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(writer)))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin);
    drop(input);
    finish(child)
}

#[test]
fn every_command_that_prints_ends_quietly_with_exit_0_on_a_closed_stdout() {
    let scratch = Scratch::new();
    scratch.filled("data");
    let export = scratch.command("data", &["log", "export"]).output().unwrap();
    assert!(export.status.success());
    std::fs::write(scratch.path("export.jsonl"), &export.stdout).unwrap();
    let (fx, exported) = (scratch.text("fx"), scratch.text("export.jsonl"));
    let fixture = fixtures_dir().join("anthropic/ok-full.json");
    let fixture = fixture.to_str().unwrap();
    let session = b"{\"type\":\"session_start\"}\n{\"type\":\"session_shutdown\"}\n";
    let commands: [(&str, Vec<&str>, &[u8]); 15] = [
        ("data", vec!["status"], b""),
        ("data", vec!["status", "--json"], b""),
        ("data", vec!["--fixtures", &fx, "status", "--refresh"], b""),
        ("data", vec!["replay", "--timeline", &exported], b""),
        ("data", vec!["replay", &exported], b""),
        ("data", vec!["replay", "-"], &export.stdout),
        ("data", vec!["log", "export"], b""),
        ("data", vec!["log", "stats"], b""),
        ("data", vec!["log", "verify"], b""),
        ("data", vec!["store"], b""),
        ("none", vec!["demo", "--hours", "1"], b""),
        ("none", vec!["credentials"], b""),
        ("none", vec!["parse", "anthropic", "--exchange", fixture], b""),
        ("watched", vec!["--fixtures", &fx, "watch"], b""),
        ("served", vec!["--fixtures", &fx, "serve", "--stdio"], session),
    ];
    for (data, args, stdin) in commands {
        let output = with_closed_stdout(scratch.command(data, &args), stdin);
        let said = stderr(&output);
        assert!(!said.contains("panicked"), "{args:?} panicked: {said}");
        assert_eq!(output.status.code(), Some(0), "{args:?}: {said}");
        assert!(!said.contains("Broken pipe"), "{args:?} reported the pipe: {said}");
    }
    // The served engine still wrote its checkpoint.
    let verify = scratch.command("served", &["log", "verify"]).output().unwrap();
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(said.contains("checkpoint agrees"), "{said}");
}

// Item 14: a second owner.

#[test]
fn a_second_owner_exits_3_naming_the_owners_pid() {
    let scratch = Scratch::new();
    let fx = scratch.text("fx");
    let mut owner = scratch
        .command("data", &["--fixtures", &fx, "watch"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let printed = lines_of(owner.stdout.take().unwrap());
    wait_for(&printed, "status line from the owner", |_| true);
    let pid = format!("(pid {})", owner.id());
    let needing: [Vec<&str>; 6] = [
        vec!["--fixtures", &fx, "watch"],
        vec!["log", "export"],
        vec!["log", "verify"],
        vec!["log", "stats"],
        vec!["store"],
        vec!["demo", "--hours", "1"],
    ];
    for args in needing {
        let output = output(&mut scratch.command("data", &args));
        let said = stderr(&output);
        assert_eq!(output.status.code(), Some(3), "{args:?}: {said}");
        assert!(said.contains(&pid), "{args:?} does not name {pid}: {said}");
        assert_eq!(said.lines().count(), 1, "{args:?}: {said}");
    }
    terminate(&owner);
    assert!(finish(owner).status.success());
}

// Item 15: a bad `--config` first.

#[test]
fn a_bad_config_is_the_first_and_only_line_with_file_line_and_key() {
    let scratch = Scratch::new();
    let fx = scratch.text("fx");
    let files = [
        (
            "providers = [\"anthropic\"]\nrefresh_interval_s = 5\n",
            2,
            "refresh_interval_s must be an integer ≥ 10 (seconds, at most 86400), got 5",
        ),
        (
            "status_ttl_s = 99999999999\n",
            1,
            "status_ttl_s must be an integer ≥ 60 (seconds, at most 86400), got 99999999999",
        ),
        (
            "\n\n[display]\nbar = 3\n",
            4,
            "display.bar must be true or false, got 3",
        ),
        ("# mine\ncolour = \"blue\"\n", 2, "unknown setting `colour`"),
        ("refresh_interval_s = = 1\n", 1, ""),
    ];
    for (index, (text, line, message)) in files.into_iter().enumerate() {
        let config = scratch.path(&format!("config-{index}.toml"));
        std::fs::write(&config, text).unwrap();
        let config = config.to_str().unwrap();
        let commands: [Vec<&str>; 6] = [
            vec!["status"],
            vec!["status", "--refresh"],
            vec!["--fixtures", &fx, "status", "--refresh"],
            vec!["demo", "--hours", "1"],
            vec!["watch"],
            vec!["serve", "--stdio"],
        ];
        for args in commands {
            let mut command = scratch.command("data", &["--config", config]);
            let output = output(command.args(&args));
            let said = stderr(&output);
            assert_eq!(output.status.code(), Some(2), "{args:?}: {said}");
            assert_eq!(said.lines().count(), 1, "{args:?} said more than one line: {said}");
            let start = format!("quotatrack: {config}:{line}: {message}");
            assert!(
                said.starts_with(&start),
                "{args:?}: {said:?} does not start with {start:?}"
            );
            assert!(output.stdout.is_empty(), "{args:?} printed before the error");
        }
    }
}

#[test]
fn a_config_path_that_is_a_directory_or_missing_is_named_first() {
    let scratch = Scratch::new();
    std::fs::create_dir_all(scratch.path("config-dir")).unwrap();
    for (name, says) in [
        ("config-dir", "is a directory, not a settings file"),
        ("absent.toml", "cannot read the settings file: "),
    ] {
        let config = scratch.text(name);
        for args in [vec!["status"], vec!["status", "--refresh"], vec!["watch"]] {
            let mut command = scratch.command("data", &["--config", &config]);
            let output = command.args(&args).stdin(Stdio::null()).output().unwrap();
            let said = stderr(&output);
            assert_eq!(output.status.code(), Some(2), "{args:?}: {said}");
            assert_eq!(said.lines().count(), 1, "{args:?}: {said}");
            assert!(said.starts_with(&format!("quotatrack: {config}: {says}")), "{said}");
        }
    }
}

// Item 12: `serve --stdio` input.

#[test]
fn every_unreadable_stdio_line_gets_an_error_naming_it_and_the_session_goes_on() {
    let scratch = Scratch::new();
    let mut input = Vec::new();
    input.extend_from_slice(b"{\"type\":\"session_start\"}\n");
    input.extend_from_slice(b"{\"type\":\xff\xfe\"turn_start\"}\n");
    input.extend_from_slice(b"{\"type\":\"turn_start\"\n");
    input.extend_from_slice(b"{\"type\":\"teleport\"}\n");
    input.extend_from_slice(b"{\"type\":\"turn_start\",\"pad\":\"");
    input.extend(std::iter::repeat_n(b'x', 3 << 20));
    input.extend_from_slice(b"\"}\n");
    input.extend_from_slice(b"\x00\x01\x02\n");
    input.extend_from_slice(b"{\"type\":\"turn_end\"}\n{\"type\":\"session_shutdown\"}\n");
    let fx = scratch.text("fx");
    let output = crate::support::quotatrack(
        &[
            "--data-dir",
            &scratch.text("data"),
            "--fixtures",
            &fx,
            "serve",
            "--stdio",
        ],
        &input,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let events: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let errors: Vec<(u64, String)> = events
        .iter()
        .filter(|event| event["type"] == "error")
        .map(|event| {
            (
                event["line"].as_u64().unwrap(),
                event["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let lines: Vec<u64> = errors.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, [2, 3, 4, 5, 6], "{errors:?}");
    assert!(errors[0].1.starts_with("not UTF-8"), "{errors:?}");
    assert!(errors[2].1.contains("teleport"), "{errors:?}");
    assert!(errors[3].1.starts_with("line longer than 1048576 bytes"), "{errors:?}");
    assert_eq!(events[0]["type"], "ready");
    // It went on to the end and wrote its checkpoint.
    let verify = scratch.command("data", &["log", "verify"]).output().unwrap();
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(said.contains("checkpoint agrees"), "{said}");
    let export = scratch.command("data", &["log", "export"]).output().unwrap();
    let export = String::from_utf8(export.stdout).unwrap();
    assert!(export.contains("\"host\":{\"type\":\"session_shutdown\"}"));
}

/// The resident memory of process `pid`, in kB.
fn resident_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_long_stream_of_host_events_keeps_memory_flat_and_the_log_growth_fixed() {
    const EVENTS: usize = 100_000;
    const FIRST: usize = 1_000;
    let scratch = Scratch::new();
    let fx = scratch.text("fx");
    // No interval during the test: what is recorded is the host's doing.
    std::fs::write(scratch.path("config.toml"), "refresh_interval_s = 86400\n").unwrap();
    let config = scratch.text("config.toml");
    let mut child = scratch
        .command("data", &["--config", &config, "--fixtures", &fx, "serve", "--stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = lines_of(child.stdout.take().unwrap());
    let mut input = child.stdin.take().unwrap();
    let event = b"{\"type\":\"tool_result\"}\n";
    // A line that is no host event is a marker: its error says every line
    // before it was handled.
    let mark = |input: &mut std::process::ChildStdin, line: usize| {
        input.write_all(b"mark\n").unwrap();
        input.flush().unwrap();
        wait_for(&out, "marker error", |said| {
            said.contains("\"type\":\"error\"") && said.contains(&format!("\"line\":{line},"))
        });
    };
    for _ in 0..FIRST {
        input.write_all(event).unwrap();
    }
    mark(&mut input, FIRST + 1);
    let early = resident_kb(child.id());
    for _ in FIRST..EVENTS {
        input.write_all(event).unwrap();
    }
    mark(&mut input, EVENTS + 2);
    let late = resident_kb(child.id());
    input.write_all(b"{\"type\":\"session_shutdown\"}\n").unwrap();
    drop(input);
    assert!(finish(child).status.success());
    assert!(
        late <= early + 5 * 1024,
        "resident memory grew from {early} kB after {FIRST} events to {late} kB after {EVENTS}"
    );
    let export = scratch.command("data", &["log", "export"]).output().unwrap();
    let export = String::from_utf8(export.stdout).unwrap();
    // A host event that changed nothing leaves no trace; one that is
    // recorded (the host was told something: an age moved on) costs its
    // `host_reported` and the controller's few decisions.
    let events: Vec<Value> = export.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let recorded = events.iter().filter(|event| event["type"] == "host_reported").count();
    assert!(
        recorded <= EVENTS / 20,
        "{recorded} of {EVENTS} no-op host events recorded"
    );
    assert!(
        events.len() <= 50 + 8 * recorded,
        "{} events for {recorded} recorded host events",
        events.len()
    );
    let mut longest = 0;
    let mut run = 0;
    for event in &events {
        if event["type"] == "host_reported" {
            run = 0;
        } else if event["stream"] == "controller" {
            run += 1;
            longest = longest.max(run);
        }
    }
    assert!(longest <= 8, "{longest} controller events after one host event");
}

// Item 17: paths in the way.

#[test]
fn something_in_the_way_of_the_control_socket_is_named_and_kept() {
    for kind in ["file", "directory"] {
        let scratch = Scratch::new();
        let data = scratch.path("data");
        std::fs::create_dir_all(&data).unwrap();
        let socket = data.join("control.sock");
        match kind {
            "file" => std::fs::write(&socket, "mine").unwrap(),
            _ => std::fs::create_dir(&socket).unwrap(),
        }
        let mut owner = scratch
            .command("data", &["--fixtures", &scratch.text("fx"), "watch"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let said = lines_of(owner.stderr.take().unwrap());
        let line = wait_for(&said, "the complaint", |line| line.contains("control.sock"));
        assert_eq!(line.matches(socket.to_str().unwrap()).count(), 1, "{line}");
        assert!(line.contains("move it away"), "{line}");
        terminate(&owner);
        assert!(finish(owner).status.success());
        match kind {
            "file" => assert_eq!(std::fs::read_to_string(&socket).unwrap(), "mine"),
            _ => assert!(socket.is_dir()),
        }
    }
}

#[test]
fn a_directory_where_the_snapshot_goes_is_named_once_and_kept() {
    let scratch = Scratch::new();
    let data = scratch.path("data");
    let snapshot = data.join("status.json");
    std::fs::create_dir_all(snapshot.join("inside")).unwrap();
    // A private data dir, so the only line is about the snapshot (one readable
    // by others gets a warning of its own).
    std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let fx = scratch.text("fx");
    for args in [
        vec!["--fixtures", fx.as_str(), "status", "--refresh"],
        vec!["status"],
        vec!["--fixtures", fx.as_str(), "watch"],
    ] {
        let output = output(&mut scratch.command("data", &args));
        let said = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {said}");
        assert_eq!(said.lines().count(), 1, "{args:?}: {said}");
        assert_eq!(said.matches(snapshot.to_str().unwrap()).count(), 1, "{args:?}: {said}");
        assert!(!said.contains("File exists (os error 17): File exists"), "{said}");
        assert!(snapshot.join("inside").is_dir());
        let leftovers: Vec<_> = std::fs::read_dir(&data)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

#[test]
fn a_file_where_the_data_dir_should_be_is_named_once() {
    let scratch = Scratch::new();
    std::fs::write(scratch.path("data"), "mine").unwrap();
    let output = scratch
        .command("data", &["--fixtures", &scratch.text("fx"), "status", "--refresh"])
        .output()
        .unwrap();
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert_eq!(said.matches(&scratch.text("data")).count(), 1, "{said}");
    assert!(said.matches("os error").count() <= 1, "{said}");
    assert_eq!(said.lines().count(), 1, "{said}");
    assert_eq!(std::fs::read_to_string(scratch.path("data")).unwrap(), "mine");
}

// Item 11: settings out of bounds in a log.

/// The `backoff-climb` incident with `patch` as the settings of an event
/// inserted at `position`.
fn crafted(patch: &Value, position: usize) -> (String, u64) {
    let text = std::fs::read_to_string(fixtures_dir().join("../incidents/backoff-climb.jsonl")).unwrap();
    let mut events: Vec<Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let position = position.min(events.len());
    let at = events[position.saturating_sub(1)]["at"].clone();
    events.insert(
        position,
        json!({"v": 1, "seq": 0, "at": at, "stream": "engine", "type": "settings_changed", "patch": patch}),
    );
    for (seq, event) in events.iter_mut().enumerate() {
        event["seq"] = json!(seq);
    }
    let lines: Vec<String> = events.iter().map(Value::to_string).collect();
    (lines.join("\n") + "\n", position as u64)
}

#[test]
fn replay_verify_and_import_refuse_settings_out_of_bounds_naming_the_event() {
    let scratch = Scratch::new();
    let patches = [
        json!({"refresh_interval_s": 9_223_372_036_854_775_807_u64}),
        json!({"refresh_interval_s": -5}),
        json!({"min_interval_s": u64::MAX}),
        json!({"cache_ttl_s": 0}),
        json!({"status_ttl_s": "soon"}),
    ];
    for (index, patch) in patches.iter().enumerate() {
        let (text, seq) = crafted(patch, 3);
        let file = scratch.path(&format!("crafted-{index}.jsonl"));
        std::fs::write(&file, &text).unwrap();
        let file = file.to_str().unwrap();
        for args in [vec!["replay", file], vec!["replay", "--timeline", file]] {
            let output = scratch.command("none", &args).output().unwrap();
            let said = stderr(&output);
            assert_eq!(output.status.code(), Some(2), "{args:?}: {said}");
            assert!(
                said.contains(&format!("log entry {seq} (settings_changed): ")),
                "{said}"
            );
            assert!(said.contains("must be"), "{said}");
        }
        let data = format!("imported-{index}");
        let output = scratch.command(&data, &["log", "import", file]).output().unwrap();
        let said = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{said}");
        assert!(said.contains(&format!("log entry {seq}: settings_changed: ")), "{said}");
        // A log that holds one anyway (written by an older version, or by
        // hand) fails verify at that event.
        let data = scratch.path(&format!("appended-{index}"));
        let mut log = Log::open(&data).unwrap();
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let provider = ProviderId::Anthropic;
        log.append([
            (at, Stream::Tracker(provider), Event::FetchStarted { provider }),
            (at, Stream::Engine, Event::SettingsChanged { patch: patch.clone() }),
        ])
        .unwrap();
        log.close().unwrap();
        let output = bin()
            .args(["--data-dir", data.to_str().unwrap(), "log", "verify"])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{said}");
        assert!(said.starts_with("log entry 1: settings_changed: "), "{said}");
    }
}

fn any_setting() -> impl Strategy<Value = (String, Value)> {
    let key = prop::sample::select(vec![
        "refresh_interval_s",
        "min_interval_s",
        "cache_ttl_s",
        "status_ttl_s",
    ]);
    let value = prop_oneof![
        (0u64..200_000).prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!("60")),
        Just(Value::Null),
    ];
    (key.prop_map(str::to_owned), value)
}

fn any_time() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        Just(Timestamp::MIN),
        Just(Timestamp::MAX),
        (Timestamp::MIN.as_second()..=Timestamp::MAX.as_second())
            .prop_map(|second| Timestamp::from_second(second).unwrap()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any settings event, at any time: replay answers (identical,
    /// diverged, or refused naming the event), never panics.
    #[test]
    fn crafted_settings_events_never_panic_replay(
        settings in prop::collection::vec(any_setting(), 1..4),
        position in 0usize..40,
        at in any_time(),
        timeline in any::<bool>(),
    ) {
        let patch = Value::Object(settings.into_iter().collect());
        let (text, seq) = crafted(&patch, position);
        let mut events: Vec<Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        events[seq as usize]["at"] = json!(at.to_string());
        let text: String = events.iter().map(|event| format!("{event}\n")).collect();
        let in_bounds = quotatrack::settings::check_recorded(&patch).is_ok();
        for at in [None, Some(at)] {
            let request = Request { at, timeline, ..Request::default() };
            match replay::command(text.as_bytes(), &request) {
                Ok(_) => prop_assert!(in_bounds, "{patch} was replayed"),
                Err(ReplayError::OutOfBounds { seq: refused, .. }) => {
                    prop_assert!(!in_bounds);
                    prop_assert_eq!(refused, seq);
                }
                // An event out of time order is a line error of its own.
                Err(ReplayError::Line(_)) => {}
            }
        }
    }
}

/// `incident` with every time moved by the same amount so that the first
/// is `first` (clamped so the last still fits), and every recorded wait
/// (`retry_after_s`, a `retry-after` header) replaced by `wait`.
fn shifted(incident: &str, first: Timestamp, wait: u64) -> String {
    let path = fixtures_dir().join(format!("../incidents/{incident}.jsonl"));
    let text = std::fs::read_to_string(path).unwrap();
    let mut events: Vec<Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let time = |event: &Value| event["at"].as_str().unwrap().parse::<Timestamp>().unwrap();
    let (start, end) = (time(&events[0]), time(events.last().unwrap()));
    let span = end.duration_since(start);
    let latest = Timestamp::MAX.checked_sub(span).unwrap();
    let first = first.min(latest);
    let offset = first.duration_since(start);
    for event in &mut events {
        let at = time(event).checked_add(offset).unwrap();
        event["at"] = json!(at.to_string());
        set_waits(event, wait);
    }
    events.iter().map(|event| format!("{event}\n")).collect()
}

fn set_waits(value: &mut Value, wait: u64) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                match key.as_str() {
                    "retry_after_s" if inner.is_u64() => *inner = json!(wait),
                    "retry-after" => *inner = json!(wait.to_string()),
                    _ => set_waits(inner, wait),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| set_waits(item, wait)),
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Recorded times anywhere in the representable range, up to its very
    /// end, and any recorded wait: replay answers, never panics.
    #[test]
    fn extreme_times_and_waits_never_panic_replay(
        incident in prop::sample::select(vec![
            "backoff-climb", "credentials-lost-restored", "rate-limit-storm", "stale-last-good", "window-rollover",
        ]),
        first in any_time(),
        wait in prop_oneof![Just(u64::MAX), Just(i64::MAX as u64), any::<u64>(), 0u64..100_000],
        timeline in any::<bool>(),
    ) {
        let text = shifted(incident, first, wait);
        for at in [None, Some(first), Some(Timestamp::MAX)] {
            let request = Request { at, timeline, ..Request::default() };
            let _ = replay::command(text.as_bytes(), &request);
        }
    }
}

// Issue 19, item 20: hints only for the providers the settings enable.

#[test]
fn credential_hints_name_only_enabled_providers() {
    let scratch = Scratch::new();
    let config = scratch.path("config.toml");
    std::fs::write(&config, "providers = [\"anthropic\", \"zai\"]\n").unwrap();
    let run = |args: &[&str]| {
        let mut command = scratch.command("data", args);
        // No credential from the environment, so nothing is fetched.
        command
            .env_clear()
            .env("HOME", scratch.path("home"))
            .env("XDG_CONFIG_HOME", scratch.path("home/.config"))
            .env("QUOTATRACK_CONFIG", &config);
        output(&mut command)
    };
    let refresh = run(&["status", "--refresh"]);
    let hints = stderr(&refresh);
    assert_eq!(refresh.status.code(), Some(0), "{hints}");
    assert!(hints.contains("no credentials found for anthropic"), "{hints}");
    assert!(hints.contains("no credentials found for zai"), "{hints}");
    for disabled in ["codex", "copilot", "gemini", "antigravity", "kiro"] {
        assert!(!hints.contains(disabled), "{disabled} is not enabled: {hints}");
    }
    let listed = run(&["credentials"]);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains("codex: not enabled in the settings"), "{listed}");
    assert!(listed.contains("no credentials found for anthropic"), "{listed}");
}
