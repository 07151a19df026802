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
    let report = check(
        &events,
        &Options {
            rules: Some(altered),
            ..Options::default()
        },
    );
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

// Issue 21 item 4: replay that explains.

/// Runs `quotatrack` with `args` in the zone `tz` (determinism: the
/// timeline and `--why` print local times).
fn in_zone(tz: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_quotatrack"))
        .args(args)
        .env("TZ", tz)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The moment `--why` explains in each bundled incident, and about whom.
fn why_of(name: &str) -> (&'static str, &'static str) {
    match name {
        "backoff-climb" => ("anthropic", "2026-08-22T12:13:00Z"),
        "credentials-lost-restored" => ("codex", "2026-08-22T12:08:00Z"),
        "rate-limit-storm" => ("anthropic", "2026-08-22T12:12:00Z"),
        "stale-last-good" => ("anthropic", "2026-08-22T12:19:00Z"),
        "window-rollover" => ("anthropic", "2026-08-22T14:15:00Z"),
        other => panic!("no --why moment for the incident {other}: add one"),
    }
}

#[test]
fn every_incident_has_a_timeline_and_a_why_for_people() {
    insta::glob!("../fixtures/incidents", "*.jsonl", |path| {
        let file = path.to_str().unwrap();
        let timeline = in_zone("UTC", &["replay", "--timeline", file]);
        assert_eq!(timeline.status.code(), Some(0), "{}", stdout(&timeline));
        insta::assert_snapshot!("timeline", stdout(&timeline));

        let name = path.file_stem().unwrap().to_str().unwrap();
        let (provider, at) = why_of(name);
        let why = in_zone("UTC", &["replay", file, "--why", provider, "--at", at]);
        assert_eq!(why.status.code(), Some(0), "{}", stdout(&why));
        insta::assert_snapshot!("why", stdout(&why));
    });
}

#[test]
fn the_timeline_folds_quiet_cycles_and_names_backoff_decisions() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents/backoff-climb.jsonl");
    let output = in_zone("UTC", &["replay", "--timeline", path.to_str().unwrap()]);
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    // 156 events become a few dozen lines: every failure, the folds, the recovery, the verdict.
    assert!(lines.len() < 40, "{text}");
    assert!(
        lines.contains(&"… 4 quiet cycles 12:10–12:13 (4 fetches skipped)"),
        "{text}"
    );
    assert!(
        text.contains(
            "12:09    anthropic: 4 failures since 12:00 (unavailable: http 502: an HTML error page instead of JSON) → backoff ×5 (5 min) → next eligible 12:14"
        ),
        "{text}"
    );
    assert!(
        text.contains("12:59    anthropic: backing_off → ready (fetch succeeded)"),
        "{text}"
    );
    assert_eq!(
        lines.last(),
        Some(&"replay: identical (156 events, 83 recorded decisions)")
    );
}

#[test]
fn the_timeline_is_in_the_local_zone_tz_names() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents/rate-limit-storm.jsonl");
    // A POSIX TZ string: no zone database needed. 12:00Z is 17:30 there.
    let output = in_zone("XST-5:30", &["replay", "--timeline", path.to_str().unwrap()]);
    let text = stdout(&output);
    assert!(text.starts_with("timeline: 81 events, times in XST\n"), "{text}");
    assert!(
        text.contains("\n17:31    anthropic: ready → rate_limited (rate limited)\n"),
        "{text}"
    );
    assert!(text.contains("Retry-After 300 s until 17:36"), "{text}");

    // `--at` takes the local time the timeline printed, in the same zone.
    let local = in_zone(
        "XST-5:30",
        &[
            "replay",
            path.to_str().unwrap(),
            "--why",
            "anthropic",
            "--at",
            "2026-08-22 17:42",
        ],
    );
    assert!(
        stdout(&local).starts_with("why anthropic at 2026-08-22 17:42:00 (XST):\n  skipped at 17:42: rate limited: Retry-After 300 s until 17:46\n"),
        "{}",
        stdout(&local)
    );

    // `--json` keeps its object, with the timeline in it when asked.
    let output = in_zone("UTC", &["replay", "--timeline", "--json", path.to_str().unwrap()]);
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["identical"], true);
    let timeline = value["timeline"].as_array().unwrap();
    assert!(
        timeline
            .iter()
            .any(|line| line == "12:01    anthropic: ready → rate_limited (rate limited)"),
        "{value}"
    );
}

#[test]
fn why_tells_a_skip_from_a_fetch_and_what_was_shown() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents/rate-limit-storm.jsonl");
    let file = path.to_str().unwrap();
    let skipped = stdout(&in_zone(
        "UTC",
        &["replay", file, "--why", "anthropic", "--at", "2026-08-22T12:12:00Z"],
    ));
    assert!(
        skipped.contains("  skipped at 12:12: rate limited: Retry-After 300 s until 12:16\n"),
        "{skipped}"
    );
    assert!(skipped.contains("3 failures since 12:01"), "{skipped}");
    assert!(
        skipped.contains("  store: tracker rate_limited, data 12m old, 3 failures"),
        "{skipped}"
    );

    // Between cycles: the last cycle before the time, said so.
    let fetched = stdout(&in_zone(
        "UTC",
        &["replay", file, "--why", "anthropic", "--at", "2026-08-22T12:16:30Z"],
    ));
    assert!(
        fetched.contains("  fetched at 12:16 (the last cycle at or before it): the rate limit was over (Retry-After until 12:16)\n  result: succeeded\n"),
        "{fetched}"
    );

    let absent = stdout(&in_zone(
        "UTC",
        &["replay", file, "--why", "codex", "--at", "2026-08-22T12:12:00Z"],
    ));
    assert!(absent.contains("codex does not appear in the recording"), "{absent}");

    // --why needs --at, and a known provider.
    assert_eq!(
        in_zone("UTC", &["replay", file, "--why", "anthropic"]).status.code(),
        Some(2)
    );
    let unknown = in_zone(
        "UTC",
        &["replay", file, "--why", "nobody", "--at", "2026-08-22T12:12:00Z"],
    );
    assert_eq!(unknown.status.code(), Some(2));
}

/// The incident `name` as a log stores it: a body that repeats the
/// provider's previous one is stored once (`body_repeated`, body null).
fn stored_once(name: &str) -> Vec<serde_json::Value> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/incidents/{name}.jsonl")))
            .unwrap();
    let mut last: Option<serde_json::Value> = None;
    let mut events: Vec<serde_json::Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    for event in &mut events {
        if event["type"] != "fetch_completed" {
            continue;
        }
        let body = event["exchange"]["response"]["body"].clone();
        if last.as_ref() == Some(&body) {
            event["exchange"]["response"]["body"] = serde_json::Value::Null;
            event["body_repeated"] = true.into();
        }
        last = Some(body);
    }
    events
}

fn write_lines(dir: &Path, name: &str, events: &[serde_json::Value]) -> String {
    let path = dir.join(name);
    let text: String = events.iter().map(|event| format!("{event}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn reparse_finds_nothing_in_the_bundled_incidents() {
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents")).unwrap() {
        let path = entry.unwrap().path();
        let output = in_zone("UTC", &["replay", "--reparse", path.to_str().unwrap()]);
        let text = stdout(&output);
        assert_eq!(output.status.code(), Some(0), "{}: {text}", path.display());
        assert!(
            text.starts_with("reparse: ") && text.contains("every reading the same"),
            "{text}"
        );
    }
    // Stored once, the repeated bodies are restored and read the same.
    let dir = tempfile::tempdir().unwrap();
    let events = stored_once("rate-limit-storm");
    assert!(
        events.iter().filter(|e| e["body_repeated"] == true).count() >= 5,
        "the fixture repeats its body"
    );
    let file = write_lines(dir.path(), "once.jsonl", &events);
    let output = in_zone("UTC", &["replay", "--reparse", &file]);
    assert_eq!(
        stdout(&output),
        "reparse: 13 bodies read again, every reading the same\n",
        "no body lost"
    );
}

#[test]
fn reparse_lists_each_reading_a_changed_parser_reads_differently_with_exit_1() {
    // A parser change, simulated: the recorded outcomes say 37 %, the
    // body (edited) now reads 38 %. It is the 12:16 body, which the log
    // stores once: the eight fetches after it repeat it, and restored,
    // they read 38 % too.
    let dir = tempfile::tempdir().unwrap();
    let mut events = stored_once("rate-limit-storm");
    let full = events
        .iter_mut()
        .find(|e| e["type"] == "fetch_completed" && e["at"] == "2026-08-22T12:16:00Z")
        .unwrap();
    let body = full["exchange"]["response"]["body"].clone();
    let edited = body
        .to_string()
        .replacen("\"utilization\":37.0", "\"utilization\":38.0", 1);
    assert_ne!(body.to_string(), edited, "the body holds the 5h utilization");
    full["exchange"]["response"]["body"] = serde_json::from_str(&edited).unwrap();
    // And a response that today reads as a failure: an outcome kind change.
    let first = events.iter_mut().find(|e| e["type"] == "fetch_completed").unwrap();
    first["exchange"]["response"]["status"] = 502.into();
    let file = write_lines(dir.path(), "edited.jsonl", &events);

    let output = in_zone("UTC", &["replay", "--reparse", &file]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("2026-08-22 12:00:00 anthropic: usage [5h 37.0%, 7d 61.0%")
            && lines[0].contains("] → failed unavailable: ")
            && lines[0].ends_with("(seq 5, line 6)"),
        "{text}"
    );
    assert_eq!(
        lines[1], "2026-08-22 12:16:00 anthropic 5h: 37.0% → 38.0% (seq 54, line 55)",
        "{text}"
    );
    assert_eq!(
        lines[9], "2026-08-22 12:24:00 anthropic 5h: 37.0% → 38.0% (seq 80, line 81)",
        "{text}"
    );
    assert_eq!(
        lines[10], "reparse: 13 bodies read again, 10 readings now differ",
        "{text}"
    );
    assert_eq!(lines.len(), 11, "{text}");

    let json = in_zone("UTC", &["replay", "--reparse", "--json", &file]);
    assert_eq!(json.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["bodies"], 13);
    assert_eq!(
        value["differences"][0]["window"],
        serde_json::Value::Null,
        "the whole outcome"
    );
    let moved = &value["differences"][1];
    assert_eq!(moved["provider"], "anthropic");
    assert_eq!(moved["at"], "2026-08-22T12:16:00Z");
    assert_eq!(moved["window"], "5h");
    assert_eq!(
        (moved["old"].as_str(), moved["new"].as_str()),
        (Some("37.0%"), Some("38.0%"))
    );
    assert_eq!((moved["seq"].as_u64(), moved["line"].as_u64()), (Some(54), Some(55)));
}

#[test]
fn errors_in_the_incident_file_name_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut events: Vec<serde_json::Value> = stored_once("stale-last-good").into_iter().take(10).collect();
    events[8] = serde_json::json!({"v":1,"seq":8,"at":"2026-08-22T12:01:00Z","stream":"engine","type":"settings_changed","patch":{"min_interval_s":0}});
    // A blank line first: the line is the file's, not the event's place.
    let text: String = std::iter::once("\n".to_owned())
        .chain(events.iter().map(|event| format!("{event}\n")))
        .collect();
    let path = dir.path().join("bounds.jsonl");
    std::fs::write(&path, text).unwrap();
    let file = path.to_str().unwrap();
    for extra in [
        &[][..],
        &["--timeline"],
        &["--reparse"],
        &["--why", "anthropic", "--at", "2026-08-22T12:01:00Z"],
    ] {
        let mut args = vec!["replay", file];
        args.extend_from_slice(extra);
        let output = in_zone("UTC", &args);
        let said = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {said}");
        assert!(
            said.contains(": line 10: log entry 8 (settings_changed): min_interval_s must be"),
            "{said}"
        );
        assert_eq!(said.lines().count(), 1, "one line: {said}");
    }
    let output = in_zone("UTC", &["replay", "-"]);
    assert_eq!(output.status.code(), Some(0), "an empty input replays to nothing");

    // A divergence names the line where the recording says otherwise.
    let altered =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents/stale-last-good.jsonl"))
            .unwrap()
            .replacen("\"utilization\":37.0", "\"utilization\":38.0", 1);
    let path = dir.path().join("altered.jsonl");
    std::fs::write(&path, format!("\n\n{altered}")).unwrap();
    let output = in_zone("UTC", &["replay", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("\n  recorded at line 8 of the file\n"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn why_answers_for_every_provider_at_every_recorded_time_and_beyond() {
    // Never a panic, always one decision line: at each recorded time, just
    // after it, and at the ends of time, for every provider.
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let events = read_events(&path);
        let mut times: Vec<jiff::Timestamp> = events.iter().map(|e| e.at).collect();
        times.dedup();
        let later: Vec<jiff::Timestamp> = times
            .iter()
            .map(|at| at.checked_add(jiff::SignedDuration::from_secs(30)).unwrap())
            .collect();
        times.extend(later);
        times.extend([jiff::Timestamp::MIN, jiff::Timestamp::MAX]);
        for provider in quotatrack::providers::ProviderId::ALL {
            for at in &times {
                let request = replay::Request {
                    at: Some(*at),
                    why: Some(provider),
                    zone: Some(jiff::tz::TimeZone::UTC),
                    ..replay::Request::default()
                };
                let rendered = replay::command(text.as_bytes(), &request).unwrap();
                let lines: Vec<&str> = rendered.text.lines().collect();
                assert!(
                    lines[0].starts_with(&format!("why {provider} at ")),
                    "{}",
                    rendered.text
                );
                let absent = format!("  {provider} does not appear in the recording");
                let decided = lines.get(1).is_some_and(|line| {
                    [
                        "  fetched at ",
                        "  skipped at ",
                        "  not fetched at ",
                        "  the recording starts later",
                        &absent,
                    ]
                    .iter()
                    .any(|start| line.starts_with(start))
                });
                assert!(decided, "{}: {}", path.display(), rendered.text);
            }
        }
    }
}

#[test]
fn the_replay_tool_reparses_with_the_same_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut events = stored_once("stale-last-good");
    let first = events.iter_mut().find(|e| e["type"] == "fetch_completed").unwrap();
    let edited =
        first["exchange"]["response"]["body"]
            .to_string()
            .replacen("\"utilization\":37.0", "\"utilization\":36.0", 1);
    first["exchange"]["response"]["body"] = serde_json::from_str(&edited).unwrap();
    let file = write_lines(dir.path(), "edited.jsonl", &events);
    let run = |file: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_replay"))
            .args(["--reparse", file])
            .env("TZ", "UTC")
            .output()
            .unwrap()
    };
    let output = run(&file);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stdout(&output).starts_with("2026-08-22 12:00:00 anthropic 5h: 37.0% → 36.0% (seq 5, line 6)\n"),
        "{}",
        stdout(&output)
    );
    let clean = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents/stale-last-good.jsonl");
    assert_eq!(run(clean.to_str().unwrap()).status.code(), Some(0));
    assert_eq!(
        run(dir.path().join("missing.jsonl").to_str().unwrap()).status.code(),
        Some(2)
    );
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

/// `quotatrack` with `args`, which must exit 0; its stdout.
fn succeeds(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let output = quotatrack(args, stdin);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The scenario of issue 18: `demo --hours 72` with bodies kept a day and
/// events two, so retention folds the first day into the log's base. The
/// export then starts with that base, replays to exactly the recorded
/// decisions, and imports into a log with the same store that exports
/// byte for byte the same. Without its base line (an export written
/// before it was) the same events import as before, export unchanged and
/// replay from fresh trackers, which the divergence's note says.
#[test]
fn an_export_after_a_fold_carries_its_base_and_replays_to_the_same_decisions() {
    let root = tempfile::tempdir().unwrap();
    let path = |name: &str| root.path().join(name).to_str().unwrap().to_owned();
    std::fs::write(path("config.toml"), "[retention]\nbodies_days = 1\nevents_days = 2\n").unwrap();
    let (data, config) = (path("data"), path("config.toml"));
    succeeds(
        &["--data-dir", &data, "--config", &config, "demo", "--hours", "72"],
        b"",
    );
    let export = |data: &str| succeeds(&["--data-dir", data, "log", "export"], b"");
    let exported = export(&data);
    let (base, events, before) = quotatrack::log::split_base(&exported).unwrap();
    let base = base.expect("an export after a fold starts with its base");
    // The base line, then the folded readings' lines.
    assert!(before > 1);
    assert!(
        exported
            .split(|b| *b == b'\n')
            .take(before)
            .skip(1)
            .all(|line| line.starts_with(br#"{"v":1,"type":"readings","block":""#))
    );
    let applied = base.applied.expect("the base names its last event");
    let first = read_lines(events)
        .map(Result::unwrap)
        .find(|e| !matches!(e.payload, Event::SettingsChanged { .. }))
        .unwrap();
    assert_eq!(first.seq, applied + 1, "the events go on from the base");
    assert!(base.providers.values().any(|entry| entry.credentials.is_some()));

    let file = path("export.jsonl");
    std::fs::write(&file, &exported).unwrap();
    let replayed = String::from_utf8(succeeds(&["replay", &file], b"")).unwrap();
    assert!(replayed.starts_with("replay: identical ("), "{replayed}");

    // Export → import → export, and the imported log is the same log.
    let imported = path("imported");
    succeeds(&["--data-dir", &imported, "log", "import", &file], b"");
    assert!(export(&imported) == exported, "export → import → export differs");
    let store = |data: &str| {
        succeeds(
            &["--data-dir", data, "--clock-at", "2026-08-25T12:00:00Z", "store"],
            b"",
        )
    };
    assert_eq!(
        String::from_utf8(store(&imported)).unwrap(),
        String::from_utf8(store(&data)).unwrap()
    );
    succeeds(&["--data-dir", &imported, "log", "verify"], b"");

    // The same events without the base line: imported and exported as
    // before, and replayed from fresh trackers, with the note.
    let old = path("old.jsonl");
    std::fs::write(&old, events).unwrap();
    let old_import = path("old-import");
    succeeds(&["--data-dir", &old_import, "log", "import", &old], b"");
    assert!(export(&old_import) == events, "an export without a base changed");
    let output = quotatrack(&["replay", &old], b"");
    let text = String::from_utf8_lossy(&output.stdout);
    if output.status.code() != Some(0) {
        assert!(
            text.contains(&format!("  note: the recording starts at seq {}", first.seq)),
            "{text}"
        );
    }

    // `history --from` the export reads the folded readings from its
    // readings lines: the data dir's history; without them, only the
    // events' (the folded days are missing).
    let history = |source: &[&str]| {
        let mut args = vec!["--clock-at", "2026-08-25T12:00:00Z"];
        args.extend(source);
        args.push("history");
        String::from_utf8(succeeds(&args, b"")).unwrap()
    };
    let from = |file: &str| {
        String::from_utf8(succeeds(
            &["--clock-at", "2026-08-25T12:00:00Z", "history", "--from", file],
            b"",
        ))
        .unwrap()
    };
    assert_eq!(from(&file), history(&["--data-dir", &data]));
    assert_eq!(history(&["--data-dir", &imported]), history(&["--data-dir", &data]));
    assert_ne!(from(&old), from(&file));

    // A base line whose events do not follow it, or of another version,
    // is refused with its line.
    let text = std::str::from_utf8(&exported).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|line| line.contains(&format!("\"seq\":{},", first.seq)))
        .unwrap();
    lines.remove(at);
    let gap = path("gap.jsonl");
    std::fs::write(&gap, lines.join("\n")).unwrap();
    let refused = quotatrack(&["--data-dir", &path("gap"), "log", "import", &gap], b"");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("line {}", at + 1)) && stderr.contains(&format!("ends at event {applied}")),
        "{stderr}"
    );
    let newer = path("newer.jsonl");
    std::fs::write(
        &newer,
        text.replacen("{\"v\":1,\"type\":\"base\"", "{\"v\":2,\"type\":\"base\"", 1),
    )
    .unwrap();
    let refused = quotatrack(&["--data-dir", &path("newer"), "log", "import", &newer], b"");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 1") && stderr.contains("version 2"), "{stderr}");
    let replayed = quotatrack(&["replay", &newer], b"");
    assert_eq!(replayed.status.code(), Some(2));
    let alone = path("alone.jsonl");
    std::fs::write(
        &alone,
        &exported[..exported.iter().position(|b| *b == b'\n').unwrap() + 1],
    )
    .unwrap();
    let refused = quotatrack(&["--data-dir", &path("alone"), "log", "import", &alone], b"");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("line 1") && stderr.contains("no event follows it"),
        "{stderr}"
    );
}
