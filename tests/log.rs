//! The sled log with real processes and real files: a committed v1 log
//! loads forever, appends survive SIGKILL, altered bytes are reported by
//! sequence number, a second process gets a clear "owned" error while
//! `status` keeps working from the snapshot file.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use jiff::SignedDuration;
use quotatrack::events::{DecodeError, Envelope, Event, Stream};
use quotatrack::journal::Journal;
use quotatrack::log::{Log, LogError};
use quotatrack::providers::ProviderId;
use quotatrack::status::{self, StatusOptions};

use crate::projection::{at, window};
use crate::support::{Rng, quotatrack, retention_pass, sled_released};

fn v1_log() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/logs/v1-every-event.jsonl")
}

fn run(data_dir: &Path, args: &[&str]) -> std::process::Output {
    let mut full = vec!["--data-dir", data_dir.to_str().unwrap()];
    full.extend(args);
    quotatrack(&full, b"")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_committed_v1_log_loads_forever() {
    let bytes = std::fs::read(v1_log()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path()).unwrap();
    assert_eq!(log.import(bytes.as_slice()).unwrap(), 27);
    let report = log.verify();
    assert_eq!(
        (report.events, report.first_problem, report.checkpoint_agrees),
        (27, None, Some(true))
    );
    // Every event kind of version 1 is in the file.
    let stats = log.stats();
    assert_eq!(stats.by_type.len(), 13, "{:?}", stats.by_type);
    // Loading and writing it back changes no byte.
    let mut exported = Vec::new();
    log.export(0, &mut exported).unwrap();
    assert_eq!(text(&exported), text(&bytes));
    let store = log.load().unwrap();
    insta::assert_json_snapshot!("v1_log_store", store);
    insta::assert_json_snapshot!("v1_log_status", status::view(&store, "2026-11-20T09:30:00Z".parse().unwrap(), &StatusOptions::default()), {
        ".generated_at" => "[generated_at]",
    });
}

#[test]
fn an_event_from_a_newer_version_is_reported_not_a_panic() {
    let newer = br#"{"v":2,"seq":0,"at":"2026-11-20T09:00:00Z","stream":"engine","type":"teleported"}"#;
    assert_eq!(Envelope::from_json(newer), Err(DecodeError::NewerVersion { found: 2 }));
    let garbage = br#"{"v":1,"seq":0,"type":"fetch_started"}"#;
    assert!(matches!(Envelope::from_json(garbage), Err(DecodeError::Invalid(_))));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("newer.jsonl");
    std::fs::write(&file, newer).unwrap();
    let output = run(&dir.path().join("data"), &["log", "import", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stderr).trim(),
        "quotatrack: line 1: event format v2 is newer than this quotatrack understands (v1); upgrade quotatrack"
    );
}

/// Reads acknowledged sequence numbers from a `log stress` child.
struct Appender {
    child: Child,
    acks: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Appender {
    fn start(data_dir: &Path) -> Appender {
        let mut child = Command::new(env!("CARGO_BIN_EXE_quotatrack"))
            .args(["--data-dir", data_dir.to_str().unwrap(), "log", "stress"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let acks = BufReader::new(child.stdout.take().unwrap()).lines();
        Appender { child, acks }
    }

    /// The last sequence number acknowledged after `n` more acknowledgements.
    fn ack(&mut self, n: u64) -> u64 {
        let mut last = 0;
        for _ in 0..n {
            last = self
                .acks
                .next()
                .expect("the appender stopped")
                .unwrap()
                .parse()
                .unwrap();
        }
        last
    }

    fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

#[test]
fn appends_that_returned_survive_sigkill() {
    let mut rng = Rng::seeded("QUOTATRACK_CRASH_SEED", 0x5eed_cafe_u64);
    let dir = tempfile::tempdir().unwrap();
    for round in 0..50 {
        let mut appender = Appender::start(dir.path());
        let acknowledged = appender.ack(1 + rng.below(40));
        appender.kill();
        let verify = run(dir.path(), &["log", "verify"]);
        assert_eq!(verify.status.code(), Some(0), "round {round}: {}", text(&verify.stdout));
        let log = Log::open(dir.path()).unwrap();
        assert!(
            log.next_seq() > acknowledged,
            "round {round}: event {acknowledged} was acknowledged but the log ends before it"
        );
        assert_eq!(log.verify().first_problem, None, "round {round}");
        // Dropped, the log is free at once for the next round's appender.
        drop(log);
    }
}

/// A log of `n` events, closed cleanly.
fn log_of(dir: &Path, n: u64) {
    let mut journal = Journal::open(dir).unwrap().checkpoint_every(4);
    for index in 0..n {
        let provider = ProviderId::ALL[(index % 7) as usize];
        journal
            .record([(
                at(index as i64),
                Stream::Tracker(provider),
                Event::FetchStarted { provider },
            )])
            .unwrap();
    }
    journal.close().unwrap();
}

/// The sled database of the closed log in `dir`, opened as sled itself,
/// below the log's own checks. A closed (or dropped) log is free at once.
fn raw_sled(dir: &Path) -> sled::Db {
    // The log's segment size (see `log::segment_size`): sled refuses another.
    sled::Config::new()
        .path(dir.join("log"))
        .segment_size(16 * 1024)
        .open()
        .expect("a closed log opens at once")
}

/// Edits the `events` tree of the closed log in `dir` as sled itself,
/// below the log's own checks, as damage would, and returns once sled has
/// let go of the files. The raw files keep every copy they held: sled
/// removes the file of a blob (a stored node over a quarter of a segment)
/// once no page refers to it, on its own threads, in some runs before the
/// edit ends and in others never, so a removed or replaced frame's only
/// copy would be there or not by timing (issue 18: the folded log's test
/// lost a frame of its tail in one run of five). A blob file it removed is
/// put back, unreferenced, as an old copy: what sled no longer holds stays
/// in its raw files, as when sled loses entries while recovering.
fn edit_raw_sled(dir: &Path, edit: impl FnOnce(&sled::Tree)) {
    let blobs = dir.join("log/blobs");
    let held: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&blobs)
        .map(|entries| {
            entries
                .map(|entry| entry.unwrap().path())
                .map(|path| {
                    let bytes = std::fs::read(&path).unwrap();
                    (path, bytes)
                })
                .collect()
        })
        .unwrap_or_default();
    let db = raw_sled(dir);
    edit(&db.open_tree("events").unwrap());
    db.flush().unwrap();
    drop(db);
    sled_released(dir);
    for (path, bytes) in held {
        if std::fs::symlink_metadata(&path).is_err() {
            std::fs::write(&path, bytes).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
}

/// Rewrites the stored value of `seq` through `alter`, as a disk error would.
fn alter_stored_value(dir: &Path, seq: u64, alter: impl FnOnce(&mut Vec<u8>)) {
    edit_raw_sled(dir, |events| {
        let mut value = events.get(seq.to_be_bytes()).unwrap().unwrap().to_vec();
        alter(&mut value);
        events.insert(seq.to_be_bytes(), value).unwrap();
    });
}

#[test]
fn altered_bytes_are_reported_by_sequence_number_and_export_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    log_of(dir.path(), 20);
    // A digit changed inside the JSON: still valid JSON, caught by the checksum.
    alter_stored_value(dir.path(), 7, |value| {
        let at = value.iter().position(|b| *b == b'7').unwrap();
        value[at] = b'8';
    });
    let verify = run(dir.path(), &["log", "verify"]);
    assert_eq!(verify.status.code(), Some(1));
    // sled keeps the page's older version, so the raw files still hold an
    // intact copy of event 7.
    assert_eq!(
        text(&verify.stdout),
        "log entry 7: checksum mismatch (the stored bytes were altered)\n\
         damaged: 20 events readable (1 only from the raw files), none known lost; \
         run `quotatrack log repair` to rebuild the log from them\n"
    );
    let export = run(dir.path(), &["log", "export"]);
    assert_eq!(export.status.code(), Some(1));
    let lines: Vec<Envelope> = text(&export.stdout)
        .lines()
        .map(|line| Envelope::from_json(line.as_bytes()).unwrap())
        .collect();
    let seqs: Vec<u64> = lines.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (0..20).collect::<Vec<_>>());
    assert!(
        text(&export.stderr).contains("is damaged") && text(&export.stderr).contains("1 from the raw files"),
        "{}",
        text(&export.stderr)
    );
    // A rebuild stops at the unreadable entry instead of skipping it silently.
    let error = Log::open(dir.path()).unwrap().rebuild().unwrap_err();
    assert!(matches!(error, LogError::Corrupt { seq: 7, .. }), "{error}");
    // Repair keeps every event, the damaged files aside; verify passes.
    let repair = run(dir.path(), &["log", "repair"]);
    assert_eq!(repair.status.code(), Some(0), "{}", text(&repair.stderr));
    assert!(
        text(&repair.stdout).starts_with("kept 20 events (0–19), 1 of them recovered from the raw files\nlost none\n"),
        "{}",
        text(&repair.stdout)
    );
    let verify = run(dir.path(), &["log", "verify"]);
    assert_eq!(text(&verify.stdout), "ok: 20 events readable, checkpoint agrees\n");
}

#[test]
fn a_second_process_gets_a_clear_owned_error_and_status_still_works() {
    let parent = tempfile::tempdir().unwrap();
    // A data dir the tool creates is 0700 (one the user made is only warned about).
    let dir = parent.path().join("data");
    let dir = dir.as_path();
    let mut journal = Journal::open(dir).unwrap();
    journal
        .record([(
            at(0),
            Stream::Tracker(ProviderId::Anthropic),
            Event::FetchCompleted {
                provider: ProviderId::Anthropic,
                exchange: None,
                body_repeated: false,
                outcome: quotatrack::events::Outcome::Usage {
                    plan: Some("max".to_owned()),
                    windows: vec![window("5h", 0.45, Some(at(8_000)))],
                },
                elapsed_ms: 100,
            },
        )])
        .unwrap();
    let options = StatusOptions::default();
    journal.publish(at(0), &options, options.stale_after).unwrap();
    journal.close().unwrap();
    let snapshot = status::snapshot_path(dir);
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&snapshot), 0o600);
    assert_eq!(mode(dir), 0o700);

    let mut owner = Appender::start(dir);
    owner.ack(1);
    let pid = owner.child.id();
    let second = run(dir, &["log", "verify"]);
    assert_eq!(second.status.code(), Some(3));
    let expected = format!("owned by another quotatrack (pid {pid})");
    assert!(text(&second.stderr).contains(&expected), "{}", text(&second.stderr));
    let store = run(dir, &["store"]);
    assert_eq!(store.status.code(), Some(3));

    let status = run(dir, &["status", "--json"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["schema"], 1);
    assert_eq!(json["providers"][0]["id"], "anthropic");
    assert_eq!(json["providers"][0]["plan"], "max");
    // Written long ago, read now: the age is this reader's, not the writer's.
    assert_eq!(json["providers"][0]["state"], "stale");
    assert!(json["providers"][0]["age_s"].as_u64().unwrap() > 3_600);
    owner.kill();
}

#[test]
fn retention_drops_old_bodies_but_keeps_outcomes_and_the_store() {
    let bytes = std::fs::read(v1_log()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path()).unwrap();
    log.import(bytes.as_slice()).unwrap();
    let before = log.rebuild().unwrap();
    let recorded = log.entries(0).next().unwrap().unwrap().at;
    assert_eq!(log.compact(recorded, SignedDuration::from_hours(24 * 30)).unwrap(), 0);
    let later = recorded + SignedDuration::from_hours(24 * 31);
    assert_eq!(log.compact(later, SignedDuration::from_hours(24 * 30)).unwrap(), 1);
    assert_eq!(log.rebuild().unwrap(), before);
    let report = log.verify();
    assert_eq!((report.first_problem, report.events), (None, 27));
    let bodies = log
        .entries(0)
        .filter(|e| {
            matches!(
                &e.as_ref().unwrap().payload,
                Event::FetchCompleted { exchange: Some(_), .. }
            )
        })
        .count();
    assert_eq!(bodies, 0);
}

#[test]
fn the_log_commands_over_the_committed_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = v1_log();
    let import = run(&data, &["log", "import", file.to_str().unwrap()]);
    assert_eq!(import.status.code(), Some(0), "{}", text(&import.stderr));
    assert_eq!(
        text(&import.stdout),
        format!("imported 27 events into {}\n", data.display())
    );
    let again = run(&data, &["log", "import", file.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stderr).contains("already holds 27 events"),
        "{}",
        text(&again.stderr)
    );

    let since = run(&data, &["log", "export", "--since", "20"]);
    let seqs: Vec<u64> = text(&since.stdout)
        .lines()
        .map(|line| Envelope::from_json(line.as_bytes()).unwrap().seq)
        .collect();
    assert_eq!(seqs, (20..27).collect::<Vec<_>>());

    let verify = run(&data, &["log", "verify"]);
    assert_eq!(text(&verify.stdout), "ok: 27 events readable, checkpoint agrees\n");
    let stats = text(&run(&data, &["log", "stats"]).stdout);
    assert!(stats.contains("events        27\n"), "{stats}");
    assert!(stats.contains("first         2026-11-20T09:00:00Z\n"), "{stats}");
    assert!(stats.contains("  fetch_completed      3\n"), "{stats}");
    insta::assert_snapshot!("v1_log_store_table", text(&run(&data, &["store"]).stdout));
}

/// The committed log's lines, to craft bad imports from.
fn v1_lines() -> Vec<String> {
    std::fs::read_to_string(v1_log())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `line` with its `seq` replaced.
fn with_seq(line: &str, seq: serde_json::Value) -> String {
    let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
    value["seq"] = seq;
    value.to_string()
}

#[test]
fn import_rejects_bad_numbering_and_unknown_events_naming_the_line_and_writes_nothing() {
    let lines = v1_lines();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            [&lines[..3], &lines[4..]].concat(),
            "line 4: event 4 follows event 2: event 3 is missing",
        ),
        (
            [&lines[..3], &lines[2..]].concat(),
            "line 4: event 2 is a duplicate of the line before",
        ),
        (
            vec![lines[1].clone(), lines[0].clone()],
            "line 2: event 0 comes after event 1 (sequence numbers must increase by one)",
        ),
        (
            vec![with_seq(&lines[0], serde_json::json!(u64::MAX))],
            "line 1: sequence number 18446744073709551615 is out of range (a log's are below 281474976710656)",
        ),
        (
            vec![lines[0].clone(), with_seq(&lines[1], serde_json::json!(u64::MAX - 1))],
            "line 2: sequence number 18446744073709551614 is out of range (a log's are below 281474976710656)",
        ),
        (
            vec![lines[0].replace("\"v\":1", "\"v\":0")],
            "line 1: not a valid event: unknown event format v0",
        ),
        (
            vec![lines[0].clone(), lines[1].replace("transitioned", "teleported")],
            "line 2: not a valid event",
        ),
        (
            vec![lines[0].clone(), with_seq(&lines[1], serde_json::json!(-1))],
            "line 2: not a valid event",
        ),
    ];
    for (file_lines, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("import.jsonl");
        std::fs::write(&file, file_lines.join("\n")).unwrap();
        let data = dir.path().join("data");
        let output = run(&data, &["log", "import", file.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(2), "{expected}");
        let stderr = text(&output.stderr);
        assert!(stderr.starts_with(&format!("quotatrack: {expected}")), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        // Nothing written: not even the data dir.
        assert!(!data.exists(), "{expected}: the data dir was created");
    }
}

#[test]
fn sled_files_are_private_and_a_users_open_data_dir_is_warned_about_not_changed() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let bytes = std::fs::read(v1_log()).unwrap();
    // A large event makes sled write a blob file.
    let import = run(&data, &["log", "import", v1_log().to_str().unwrap()]);
    assert_eq!(import.status.code(), Some(0), "{}", text(&import.stderr));
    assert!(!bytes.is_empty());
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let mut seen = 0;
    let mut stack = vec![data.clone()];
    while let Some(dir) = stack.pop() {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
                seen += 1;
            }
        }
    }
    assert!(seen >= 3, "{seen}");

    // A directory the user made, readable by others: warned about once, left as it is.
    let shared = parent.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stats = run(&shared, &["log", "stats"]);
    assert_eq!(stats.status.code(), Some(0));
    let warnings: Vec<String> = text(&stats.stderr)
        .lines()
        .filter(|line| line.contains("can be read by other users"))
        .map(str::to_owned)
        .collect();
    assert_eq!(warnings.len(), 1, "{}", text(&stats.stderr));
    assert!(warnings[0].contains(&shared.display().to_string()));
    assert_eq!(mode(&shared), 0o755);
}

#[test]
fn a_file_where_the_data_dir_should_be_is_named_once() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    std::fs::write(&data, b"not a dir").unwrap();
    let output = run(&data, &["log", "verify"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(stderr.matches(&data.display().to_string()).count(), 1, "{stderr}");
    assert_eq!(std::fs::read(&data).unwrap(), b"not a dir");
}

mod crafted {
    //! proptest over crafted imports and logs: any field of any event set
    //! to an extreme or a wrong type; import, verify and rebuild answer
    //! (accept or reject) and never panic.

    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::{v1_lines, with_seq};
    use quotatrack::log::{Log, damage};

    fn extreme() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!(u64::MAX)),
            Just(json!(i64::MIN)),
            Just(json!(-1)),
            Just(json!(1e308)),
            Just(json!(-1e308)),
            Just(json!(0)),
            Just(json!(null)),
            Just(json!(true)),
            Just(json!("")),
            Just(json!("9999-12-31T23:59:59Z")),
            Just(json!("-009999-01-01T00:00:00Z")),
            Just(json!([])),
            Just(json!({})),
            any::<u64>().prop_map(|n| json!(n)),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            "[a-z0-9_]{0,12}".prop_map(|s| json!(s)),
        ]
    }

    /// Sets the `index`th field (counting nested ones too) to `value`.
    fn set_field(value: &mut Value, mut index: usize, new: &Value) -> bool {
        fn walk(value: &mut Value, index: &mut usize, new: &Value) -> bool {
            match value {
                Value::Object(map) => {
                    for (_, field) in map.iter_mut() {
                        if *index == 0 {
                            *field = new.clone();
                            return true;
                        }
                        *index -= 1;
                        if walk(field, index, new) {
                            return true;
                        }
                    }
                    false
                }
                Value::Array(items) => items.iter_mut().any(|item| walk(item, index, new)),
                _ => false,
            }
        }
        walk(value, &mut index, new)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn crafted_imports_and_logs_never_panic(
            edits in proptest::collection::vec((0usize..27, 0usize..40, extreme()), 1..4),
            renumber in proptest::option::of(0u64..(1 << 50)),
        ) {
            let mut lines = v1_lines();
            for (line, field, new) in &edits {
                let mut value: Value = serde_json::from_str(&lines[*line]).unwrap();
                set_field(&mut value, *field, new);
                lines[*line] = value.to_string();
            }
            if let Some(first) = renumber {
                lines = lines
                    .iter()
                    .enumerate()
                    .map(|(index, line)| with_seq(line, json!(first + index as u64)))
                    .collect();
            }
            let file = lines.join("\n");
            let dir = tempfile::tempdir().unwrap();
            // The library: import either takes the whole file or nothing.
            let mut log = Log::open(dir.path()).unwrap();
            match log.import(file.as_bytes()) {
                Ok(imported) => {
                    prop_assert_eq!(imported, 27);
                    let report = log.verify();
                    prop_assert_eq!(report.events, 27);
                    let _ = log.rebuild();
                    let _ = log.load();
                    let _ = log.stats();
                }
                Err(_) => prop_assert!(log.is_empty()),
            }
            drop(log);
            let verified = damage::verify(dir.path());
            prop_assert!(verified.is_ok());
        }
    }
}

/// A healthy log of `n` events whose JSON is long (a status description
/// of 1 KB) but compresses to little: its raw files stay small, while
/// holding every event in memory takes well over `n` KB.
fn long_log(dir: &Path, n: u64) {
    const BATCH: u64 = 1_000;
    let description = "Elevated errors on Claude Opus for some requests. ".repeat(20);
    let mut journal = Journal::open(dir).unwrap().checkpoint_every(n);
    for batch in 0..n.div_ceil(BATCH) {
        let events = (batch * BATCH..((batch + 1) * BATCH).min(n)).map(|index| {
            (
                at(index as i64),
                Stream::Tracker(ProviderId::Anthropic),
                Event::StatusChecked {
                    provider: ProviderId::Anthropic,
                    indicator: "minor".to_owned(),
                    description: Some(description.clone()),
                    exchange: None,
                    body_repeated: false,
                },
            )
        });
        journal.record(events).unwrap();
    }
    journal.close().unwrap();
}

/// The most memory (data and heap, as `RLIMIT_DATA` counts it) a log
/// command gets below: what the commands need over the long log, with room
/// to spare. Holding its events, as the commands once did, takes more
/// than twice as much.
const LOG_COMMAND_DATA_BYTES: u64 = 160 << 20;

/// Runs the binary on `data_dir` with stdout to `stdout` and its memory
/// limited to [`LOG_COMMAND_DATA_BYTES`] (the limit is the process's own;
/// its peak RSS as `wait4` reports it would include this test process's);
/// its exit code, `None` when a signal ended it (an allocation the limit
/// refused aborts).
fn run_limited(data_dir: &Path, args: &[&str], stdout: &Path) -> Option<i32> {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(env!("CARGO_BIN_EXE_quotatrack"));
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(stdout).unwrap())
        .stderr(Stdio::null());
    // SAFETY: setrlimit is async-signal-safe and touches no memory of ours.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: LOG_COMMAND_DATA_BYTES,
                rlim_max: LOG_COMMAND_DATA_BYTES,
            };
            if libc::setrlimit(libc::RLIMIT_DATA, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    command.status().unwrap().code()
}

/// `log verify`, `export` and `repair` hold neither sled's events nor the
/// raw files' copies of them: their memory is bounded by the damage, not by
/// the log's length (verifying a year's log once took 24 GB).
#[test]
fn verify_export_and_repair_of_a_long_log_stay_within_a_memory_limit() {
    const EVENTS: u64 = 150_000;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    long_log(&data, EVENTS);
    let out = dir.path().join("out");
    let read = |path: &Path| std::fs::read_to_string(path).unwrap();

    let code = run_limited(&data, &["log", "verify"], &out);
    assert_eq!(code, Some(0), "log verify: {}", read(&out));
    assert_eq!(read(&out), format!("ok: {EVENTS} events readable, checkpoint agrees\n"));
    let code = run_limited(&data, &["log", "export"], &out);
    assert_eq!(code, Some(0), "log export ended by a signal (the memory limit)");
    let mut lines = 0;
    let mut last = String::new();
    for line in BufReader::new(std::fs::File::open(&out).unwrap()).lines() {
        last = line.unwrap();
        lines += 1;
    }
    assert_eq!(lines, EVENTS);
    assert_eq!(Envelope::from_json(last.as_bytes()).unwrap().seq, EVENTS - 1);

    // Damaged at its start: the keyframe of the first frames. What the
    // commands hold is what the damage touches.
    alter_stored_value(&data, 0, |value| {
        let end = value.len() - 1;
        value[end] ^= 0x55;
    });
    let code = run_limited(&data, &["log", "verify"], &out);
    assert_eq!(code, Some(1), "log verify: {}", read(&out));
    assert!(
        read(&out).starts_with("log entry 0: checksum mismatch"),
        "{}",
        read(&out)
    );
    assert!(
        read(&out).contains(&format!("damaged: {EVENTS} events readable")),
        "{}",
        read(&out)
    );
    let code = run_limited(&data, &["log", "repair"], &out);
    assert_eq!(code, Some(0), "log repair: {}", read(&out));
    assert!(
        read(&out).starts_with(&format!("kept {EVENTS} events")),
        "{}",
        read(&out)
    );
    let code = run_limited(&data, &["log", "verify"], &out);
    assert_eq!(code, Some(0), "{}", read(&out));
}

/// Removes every stored value from the frame holding `from` on from sled's
/// tree, as a recovery that lost the log's tail does: sled then ends
/// early, while its raw files still hold the removed frames' copies.
fn drop_tail(dir: &Path, from: u64) {
    edit_raw_sled(dir, |events| {
        let start = events
            .range(..=from.to_be_bytes())
            .next_back()
            .map_or(from.to_be_bytes().to_vec(), |entry| entry.unwrap().0.to_vec());
        let keys: Vec<sled::IVec> = events.range(start..).map(|entry| entry.unwrap().0).collect();
        assert!(!keys.is_empty(), "nothing stored from {from} on");
        for key in keys {
            events.remove(key).unwrap();
        }
    });
}

/// `log verify`, `export`, `stats` and `repair` of a long log whose tail
/// sled lost (its raw files hold the rest) hold no copy of what only the
/// raw files have: memory is bounded by a constant and a small index, not
/// by the events sled lacks, and every event is still exported and kept.
#[test]
fn a_long_log_whose_tail_sled_lost_is_exported_and_repaired_within_a_memory_limit() {
    const EVENTS: u64 = 150_000;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    long_log(&data, EVENTS);
    let out = dir.path().join("out");
    let read = |path: &Path| std::fs::read_to_string(path).unwrap();
    let before = dir.path().join("before");
    assert_eq!(run_limited(&data, &["log", "export"], &before), Some(0));

    drop_tail(&data, 10_000);
    let code = run_limited(&data, &["log", "verify"], &out);
    assert_eq!(code, Some(1), "log verify: {}", read(&out));
    assert!(
        read(&out).contains(&format!("damaged: {EVENTS} events readable")),
        "{}",
        read(&out)
    );
    assert!(read(&out).contains("none known lost"), "{}", read(&out));

    // Every event, byte for byte, in order: sled's then the raw files'.
    let code = run_limited(&data, &["log", "export"], &out);
    assert_eq!(code, Some(1), "log export ended by a signal (the memory limit)");
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&before).unwrap());

    let code = run_limited(&data, &["log", "stats"], &out);
    assert_eq!(code, Some(0), "log stats ended by a signal (the memory limit)");
    assert!(
        read(&out).starts_with(&format!("events        {EVENTS}\n")),
        "{}",
        read(&out)
    );

    let code = run_limited(&data, &["log", "repair"], &out);
    assert_eq!(code, Some(0), "log repair ended by a signal (the memory limit)");
    assert!(
        read(&out).starts_with(&format!("kept {EVENTS} events (0–{})", EVENTS - 1)),
        "{}",
        read(&out)
    );
    let code = run_limited(&data, &["log", "verify"], &out);
    assert_eq!(code, Some(0), "{}", read(&out));
    assert_eq!(run_limited(&data, &["log", "export"], &out), Some(0));
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&before).unwrap());
}

/// A log whose older half retention folded, keeping two
/// `settings_changed` from before its base (a host's patch and a settings
/// file's change, early on), closed; sled's raw files still hold old
/// copies of folded events. Returns the log's export.
fn folded_log(root: &Path, dir: &Path) -> Vec<u8> {
    use quotatrack::log::retention::Retention;
    let demo = root.join("demo");
    let ran = quotatrack(&["--data-dir", demo.to_str().unwrap(), "demo", "--hours", "5"], b"");
    assert_eq!(ran.status.code(), Some(0));
    let log = Log::open(&demo).unwrap();
    let events: Vec<Envelope> = log.entries(0).map(Result::unwrap).collect();
    log.close().unwrap();
    let settings = |stream, patch: serde_json::Value| vec![(events[0].at, stream, Event::SettingsChanged { patch })];
    let mut batches = vec![
        settings(Stream::Engine, serde_json::json!({"min_interval_s": 120})),
        settings(Stream::Controller, serde_json::json!({"min_interval_s": 90})),
    ];
    batches.extend(
        events
            .iter()
            .map(|envelope| vec![(envelope.at, envelope.stream, envelope.payload.clone())]),
    );
    let mut log = Log::open(dir).unwrap();
    log.append_batches(batches).unwrap();
    let keep = Retention {
        bodies: Some(SignedDuration::from_hours(2)),
        events: Some(SignedDuration::from_hours(3)),
    };
    let now = events.last().unwrap().at;
    let folded: u64 = retention_pass(&mut log, now, &keep)
        .iter()
        .map(|step| step.folded)
        .sum();
    assert!(folded > 1_000, "nothing folded");
    log.close().unwrap();
    let export = run(dir, &["log", "export"]);
    assert_eq!(export.status.code(), Some(0), "{}", text(&export.stderr));
    export.stdout
}

/// A folded log's export, what it holds and what the damage commands must
/// give back for it.
struct Folded {
    /// The healthy log's export.
    before: Vec<u8>,
    /// Its events.
    lines: Vec<Envelope>,
    /// How many of them are settings a fold kept (they come first).
    kept: usize,
}

impl Folded {
    /// The folded log of [`folded_log`] in `data`, and what it holds.
    fn new(root: &Path, data: &Path) -> Folded {
        let before = folded_log(root, data);
        // The export starts with the base line, then the events.
        let (base, events, _) = quotatrack::log::split_base(&before).unwrap();
        assert!(base.is_some(), "the export carries the base");
        let lines: Vec<Envelope> = text(events)
            .lines()
            .map(|line| Envelope::from_json(line.as_bytes()).unwrap())
            .collect();
        // The kept settings, then a gap (the folded events), then the rest.
        let kept = lines
            .windows(2)
            .position(|pair| pair[1].seq > pair[0].seq + 1)
            .expect("a fold leaves a gap")
            + 1;
        assert!(kept >= 2, "the fold kept the settings");
        assert!(
            lines[..kept]
                .iter()
                .all(|e| matches!(e.payload, Event::SettingsChanged { .. }))
        );
        assert!(
            lines[kept].seq > 1_000,
            "events after the base start at {}",
            lines[kept].seq
        );
        Folded { before, lines, kept }
    }

    /// The first event after the base.
    fn first(&self) -> &Envelope {
        &self.lines[self.kept]
    }

    /// `log stats` on `data` counts the events, gives the oldest event
    /// history still has and the kept settings apart.
    fn expect_stats(&self, data: &Path) {
        let stats = run(data, &["log", "stats"]);
        assert_eq!(stats.status.code(), Some(0), "{}", text(&stats.stderr));
        let stats = text(&stats.stdout);
        assert!(
            stats.starts_with(&format!("events        {}\n", self.lines.len())),
            "{stats}"
        );
        let oldest = format!("first         {}\n", quotatrack::wire::rfc3339_seconds(self.first().at));
        assert!(stats.contains(&oldest), "{stats}");
        let kept_line = format!(
            "kept settings {} settings_changed a fold kept, from {} (before the first event)\n",
            self.kept,
            quotatrack::wire::rfc3339_seconds(self.lines[0].at)
        );
        assert!(stats.contains(&kept_line), "{stats}");
    }

    /// `log verify` on the damaged log in `data` exits 1 and finds every
    /// event readable and none lost; `log export` writes the healthy
    /// export, byte for byte; `log stats` is the healthy one's. Returns
    /// what `verify` printed.
    fn expect_damaged_but_whole(&self, data: &Path) -> String {
        let verify = run(data, &["log", "verify"]);
        let said = text(&verify.stdout);
        assert_eq!(verify.status.code(), Some(1), "{said}{}", text(&verify.stderr));
        assert!(
            said.contains(&format!("damaged: {} events readable", self.lines.len())),
            "{said}"
        );
        assert!(said.contains("none known lost"), "{said}");
        let export = run(data, &["log", "export"]);
        assert_eq!(export.status.code(), Some(1), "{}", text(&export.stderr));
        assert!(
            export.stdout == self.before,
            "the export of the damaged log is not the healthy one"
        );
        self.expect_stats(data);
        said
    }

    /// `log repair` on `data` loses nothing; the repaired log verifies
    /// without holes, exports the healthy export and loads from its base,
    /// kept settings included.
    fn expect_repaired(&self, data: &Path) {
        let repair = run(data, &["log", "repair"]);
        assert_eq!(repair.status.code(), Some(0), "{}", text(&repair.stderr));
        assert!(
            text(&repair.stdout).contains("\nlost none\n"),
            "{}",
            text(&repair.stdout)
        );
        let verify = run(data, &["log", "verify"]);
        assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stdout));
        assert!(!text(&verify.stdout).contains("holes"), "{}", text(&verify.stdout));
        let export = run(data, &["log", "export"]);
        assert_eq!(export.status.code(), Some(0));
        assert!(
            export.stdout == self.before,
            "the repaired log's export is not the healthy one"
        );
        self.expect_stats(data);
        let log = Log::open(data).unwrap();
        assert_eq!(
            log.read_base().and_then(|base| base.applied),
            Some(self.first().seq - 1)
        );
        assert!(log.load().is_ok());
        log.close().unwrap();
    }
}

/// A folded log keeps the settings its folds kept before its base; the
/// numbers between them were folded, not lost. When sled loses the log's
/// tail, `verify`, `export`, `stats` and `repair` bring back neither the
/// folded events nor report them lost: the export stays the healthy one,
/// byte for byte, and the repaired log keeps its base and its kept
/// settings (no holes). `stats` gives the oldest event history still has,
/// and the kept settings apart.
#[test]
fn a_folded_log_that_lost_its_tail_is_read_and_repaired_as_folded() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let folded = Folded::new(root.path(), &data);
    folded.expect_stats(&data);
    drop_tail(&data, folded.lines[folded.lines.len() - 1_000].seq);
    folded.expect_damaged_but_whole(&data);
    folded.expect_repaired(&data);
}

/// A folded log that sled cannot open at all (its `conf` garbage, as
/// tests/faults.rs breaks it) is still read as folded: its raw files say
/// which stored checkpoint is the base. `verify`, `export`, `stats` and
/// `repair` then read it as when sled loses only its tail: the numbers
/// before the base were folded, not lost, and the repaired log keeps its
/// base and its kept settings.
#[test]
fn a_folded_log_sled_cannot_open_is_read_and_repaired_as_folded() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let folded = Folded::new(root.path(), &data);
    // The readings record is read through sled only: the export and the
    // repaired log have no readings lines.
    let before: Vec<&[u8]> = folded
        .before
        .split_inclusive(|b| *b == b'\n')
        .filter(|line| !line.starts_with(br#"{"v":1,"type":"readings","#))
        .collect();
    let folded = Folded {
        before: before.concat(),
        ..folded
    };
    std::fs::write(data.join("log/conf"), [0x5a; 62]).unwrap();
    let said = folded.expect_damaged_but_whole(&data);
    assert!(said.contains("sled cannot open the log"), "{said}");
    folded.expect_repaired(&data);
}
