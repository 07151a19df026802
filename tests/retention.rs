//! Retention with real processes: a pass killed with SIGKILL at any point
//! leaves a log that opens and verifies, with every event and body it
//! should keep, the same store, and the same end state once a later pass
//! finishes; `log export` → `log import` → `log export` is byte-identical
//! with the compact storage; format-1 logs are converted and keep their
//! export. History gives every reading before, during and after a pass.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use jiff::{SignedDuration, Timestamp};
use quotatrack::events::{Envelope, Event};
use quotatrack::history::{Query, Source, read, series};
use quotatrack::log::Log;
use quotatrack::log::retention::Retention;
use serde_json::Value;

use crate::support::{Rng, quotatrack, retention_pass, sled_released};

/// Set in a child process: the data dir it runs retention passes on.
const CHILD_DIR: &str = "QUOTATRACK_RETENTION_CHILD";
/// The child's clock reading and retention, as `now bodies_s events_s`.
const CHILD_ARGS: &str = "QUOTATRACK_RETENTION_ARGS";

/// Run by the test binary as a child process (and a no-op otherwise): about
/// one unit rewritten per step, a line on stdout after each, `done` at the
/// end.
#[test]
fn retention_child() {
    let (Ok(dir), Ok(args)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_ARGS)) else {
        return;
    };
    let numbers: Vec<i64> = args.split(' ').map(|n| n.parse().unwrap()).collect();
    let now = Timestamp::from_second(numbers[0]).unwrap();
    let retention = Retention {
        bodies: Some(SignedDuration::from_secs(numbers[1])),
        events: Some(SignedDuration::from_secs(numbers[2])),
    };
    let mut log = Log::open(Path::new(&dir)).unwrap();
    let mut out = std::io::stdout().lock();
    loop {
        let step = log.retain_step_within(now, &retention, 300).unwrap();
        writeln!(out, "step").unwrap();
        out.flush().unwrap();
        if step.done {
            break;
        }
    }
    log.close().unwrap();
    writeln!(out, "done").unwrap();
}

/// Runs the child on `dir`; kills it (SIGKILL) after `steps` steps, or lets
/// it finish when `None`. Whether it finished.
fn child(dir: &Path, args: &str, steps: Option<u64>) -> bool {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "retention::retention_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .env(CHILD_ARGS, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = 0;
    let mut finished = false;
    for line in lines {
        let line = line.unwrap();
        if line == "done" {
            finished = true;
            break;
        }
        if line == "step" {
            seen += 1;
            if steps == Some(seen) {
                break;
            }
        }
    }
    child.kill().ok(); // SIGKILL, mid-step most of the time
    child.wait().unwrap();
    finished
}

fn export(dir: &Path) -> String {
    let output = quotatrack(&["--data-dir", dir.to_str().unwrap(), "log", "export"], b"");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `log import FILE` into the data dir `into`, which must succeed.
fn import(file: &Path, into: &Path) {
    let output = quotatrack(
        &[
            "--data-dir",
            into.to_str().unwrap(),
            "log",
            "import",
            file.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn envelopes(text: &str) -> Vec<Envelope> {
    let (_, events, _) = quotatrack::log::split_base(text.as_bytes()).unwrap();
    std::str::from_utf8(events)
        .unwrap()
        .lines()
        .map(|line| Envelope::from_json(line.as_bytes()).unwrap())
        .collect()
}

/// Each fetch's body as replay sees it (a repeated body resolved), by seq.
fn bodies(events: &[Envelope]) -> BTreeMap<u64, Option<Value>> {
    let mut last = BTreeMap::new();
    let mut out = BTreeMap::new();
    for envelope in events {
        if let Event::FetchCompleted {
            provider,
            exchange,
            body_repeated,
            ..
        } = &envelope.payload
        {
            let body = match exchange {
                None => None,
                Some(_) if *body_repeated => last.get(provider).cloned(),
                Some(exchange) => Some(exchange.response.body.clone()),
            };
            match &body {
                Some(body) => last.insert(*provider, body.clone()),
                None => last.remove(provider),
            };
            out.insert(envelope.seq, body);
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_retention_pass_killed_anywhere_leaves_a_log_that_opens_verifies_and_keeps_what_it_should() {
    let mut rng = Rng::seeded("QUOTATRACK_RETENTION_SEED", 0x7e7e_17e5_u64);
    let root = tempfile::tempdir().unwrap();
    let base = root.path().join("base");
    let demo = quotatrack(&["--data-dir", base.to_str().unwrap(), "demo", "--hours", "3"], b"");
    assert_eq!(demo.status.code(), Some(0), "{}", String::from_utf8_lossy(&demo.stderr));
    let original = envelopes(&export(&base));
    let store = Log::open(&base).unwrap().rebuild().unwrap();
    let last = original.last().unwrap().at;
    // Bodies older than 1 h go, events older than 1.5 h fold into the base
    // (the first unit of the demo's events does; the start's
    // `settings_changed` before it folds too, but stays in the log).
    let (bodies_s, events_s) = (3_600, 5_400);
    let body_cut = last - SignedDuration::from_secs(bodies_s);
    let event_cut = last - SignedDuration::from_secs(events_s);
    let args = format!("{} {bodies_s} {events_s}", last.as_second());
    let original_bodies = bodies(&original);
    // Every reading, as history gives it: retention keeps all of them.
    let readings = |dir: &Path| read(&Source::DataDir(dir.to_owned()), Query::default()).unwrap().series;
    let original_readings = series(&original, Query::default());
    assert!(original_readings.iter().map(|s| s.points.len()).sum::<usize>() > 1_000);

    // The same pass, never interrupted.
    let reference = root.path().join("reference");
    copy_dir(&base, &reference);
    assert!(child(&reference, &args, None));
    let reference_export = export(&reference);
    let kept = envelopes(&reference_export);
    assert!(kept.len() + 1_000 < original.len(), "nothing was folded");
    let settings = |events: &[Envelope]| -> Vec<Envelope> {
        events
            .iter()
            .filter(|e| matches!(e.payload, Event::SettingsChanged { .. }))
            .cloned()
            .collect()
    };
    assert!(!settings(&original).is_empty());
    assert_eq!(settings(&kept), settings(&original), "a fold lost the settings");
    assert!(kept.first().unwrap().at < event_cut + SignedDuration::from_hours(1));
    let stripped = kept
        .iter()
        .filter(|e| matches!(&e.payload, Event::FetchCompleted { exchange: None, .. }))
        .count();
    assert!(stripped > 0, "no body was dropped");
    assert_eq!(readings(&reference), original_readings, "folding lost readings");

    for round in 0..2 {
        let dir = root.path().join(format!("case-{round}"));
        copy_dir(&base, &dir);
        let mut kills = 0;
        while !child(&dir, &args, Some(1 + rng.below(3))) {
            kills += 1;
            let what = format!("round {round}, after kill {kills}");
            let verify = quotatrack(&["--data-dir", dir.to_str().unwrap(), "log", "verify"], b"");
            assert_eq!(
                verify.status.code(),
                Some(0),
                "{what}: {}",
                String::from_utf8_lossy(&verify.stdout)
            );
            let log = Log::open(&dir).unwrap();
            assert_eq!(log.load().unwrap(), store, "{what}: the store changed");
            drop(log);
            let now = envelopes(&export(&dir));
            let by_seq: BTreeMap<u64, &Envelope> = now.iter().map(|e| (e.seq, e)).collect();
            let now_bodies = bodies(&now);
            for envelope in &original {
                if envelope.at >= event_cut {
                    let kept = by_seq
                        .get(&envelope.seq)
                        .unwrap_or_else(|| panic!("{what}: event {} lost", envelope.seq));
                    assert_eq!((kept.at, kept.payload.name()), (envelope.at, envelope.payload.name()));
                }
                if envelope.at >= body_cut && original_bodies.contains_key(&envelope.seq) {
                    assert_eq!(
                        now_bodies.get(&envelope.seq),
                        original_bodies.get(&envelope.seq),
                        "{what}: the body of fetch {} changed",
                        envelope.seq
                    );
                }
            }
            assert!(
                readings(&dir) == original_readings,
                "{what}: history lost or changed readings"
            );
            assert!(kills < 200, "{what}: the pass never ends");
        }
        assert_eq!(export(&dir), reference_export, "round {round}: ended elsewhere");
    }
}

#[test]
fn export_import_export_is_byte_identical_and_a_v1_log_is_converted_keeping_its_export() {
    let root = tempfile::tempdir().unwrap();
    let demo = root.path().join("demo");
    let ran = quotatrack(&["--data-dir", demo.to_str().unwrap(), "demo", "--hours", "1"], b"");
    assert_eq!(ran.status.code(), Some(0));
    let first = export(&demo);
    let file = root.path().join("demo.jsonl");
    std::fs::write(&file, &first).unwrap();
    let imported = root.path().join("imported");
    import(&file, &imported);
    assert_eq!(export(&imported), first);

    // The committed format-1 log, written as format 1 (CRC-32 + JSON per
    // event), converted by a retention pass that keeps everything.
    let v1 = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/logs/v1-every-event.jsonl"))
        .unwrap();
    let dir = root.path().join("v1");
    {
        let db = sled::Config::new()
            .path(dir.join("log"))
            .segment_size(16 * 1024)
            .open()
            .unwrap();
        let events = db.open_tree("events").unwrap();
        for line in v1.lines() {
            let seq = Envelope::from_json(line.as_bytes()).unwrap().seq;
            let mut value = crc32fast::hash(line.as_bytes()).to_be_bytes().to_vec();
            value.extend_from_slice(line.as_bytes());
            events.insert(seq.to_be_bytes(), value).unwrap();
        }
        db.flush().unwrap();
    }
    sled_released(&dir);
    assert_eq!(export(&dir), v1);
    let mut log = Log::open(&dir).unwrap();
    let before = log.rebuild().unwrap();
    let forever = Retention {
        bodies: None,
        events: None,
    };
    let mut converted = 0;
    loop {
        let step = log
            .retain_step(Timestamp::from_second(2_000_000_000).unwrap(), &forever)
            .unwrap();
        converted += step.converted;
        if step.done {
            break;
        }
    }
    assert_eq!(converted, v1.lines().count() as u64);
    assert_eq!(log.rebuild().unwrap(), before);
    log.close().unwrap();
    assert_eq!(export(&dir), v1);
}

#[test]
fn a_readings_block_is_gathered_over_short_steps_and_holds_every_reading_of_its_events() {
    use quotatrack::log::readings::{self, BLOCK_EVENTS, INDEX_STEP_EVENTS, Reading};
    let root = tempfile::tempdir().unwrap();
    let demo = root.path().join("demo");
    let ran = quotatrack(&["--data-dir", demo.to_str().unwrap(), "demo", "--hours", "3"], b"");
    assert_eq!(ran.status.code(), Some(0));
    let text = export(&demo);
    // Imported: a log whose record is not written yet.
    let dir = root.path().join("imported");
    let mut log = Log::open(&dir).unwrap();
    log.import(text.as_bytes()).unwrap();
    assert!(log.next_seq() >= BLOCK_EVENTS, "{} events", log.next_seq());
    let covered = |log: &Log| log.readings(None, None, |_| {}).unwrap().events;
    assert_eq!(covered(&log), 0);
    let forever = Retention {
        bodies: None,
        events: None,
    };
    let now = Timestamp::from_second(2_000_000_000).unwrap();
    let mut steps = 0;
    while covered(&log) == 0 {
        let step = log.retain_step(now, &forever).unwrap();
        assert!(step.indexed && !step.done, "step {steps}: {step:?}");
        steps += 1;
        assert!(steps <= 100, "no block after {steps} steps");
    }
    // Each step read at most its share of the block.
    assert_eq!(
        steps,
        BLOCK_EVENTS.div_ceil(INDEX_STEP_EVENTS),
        "steps to the first block"
    );
    assert_eq!(covered(&log), BLOCK_EVENTS);
    let key = |reading: &Reading| (reading.provider, reading.window.clone(), reading.at);
    let mut from_events: Vec<Reading> = envelopes(&text)
        .iter()
        .filter(|envelope| envelope.seq < BLOCK_EVENTS)
        .flat_map(|envelope| readings::of(envelope).collect::<Vec<_>>())
        .collect();
    from_events.sort_by_key(key);
    let mut from_record = Vec::new();
    log.readings(None, None, |reading| from_record.push(reading.clone()))
        .unwrap();
    from_record.sort_by_key(key);
    assert!(!from_events.is_empty());
    assert_eq!(from_record, from_events);
    log.close().unwrap();
}

/// A pass regroups the complete units newer than the cuts: each unit of
/// small per-batch frames becomes one frame. The export, the store and
/// the readings stay the same, the stored bytes drop, appends go on after
/// it, and a second pass finds nothing left to regroup.
#[test]
fn a_pass_stores_complete_units_as_one_frame_each_with_the_same_export() {
    let root = tempfile::tempdir().unwrap();
    let demo = root.path().join("demo");
    let ran = quotatrack(&["--data-dir", demo.to_str().unwrap(), "demo", "--hours", "4"], b"");
    assert_eq!(ran.status.code(), Some(0));
    let events: Vec<Envelope> = {
        let log = Log::open(&demo).unwrap();
        let events = log.entries(0).map(Result::unwrap).collect();
        log.close().unwrap();
        events
    };
    // Appended as the engine appends: one batch per clock reading.
    let mut batches: Vec<Vec<(Timestamp, quotatrack::events::Stream, Event)>> = Vec::new();
    for envelope in &events {
        if batches
            .last()
            .and_then(|batch| batch.last())
            .is_none_or(|last| last.0 != envelope.at)
        {
            batches.push(Vec::new());
        }
        batches
            .last_mut()
            .unwrap()
            .push((envelope.at, envelope.stream, envelope.payload.clone()));
    }
    let dir = root.path().join("log");
    let mut log = Log::open(&dir).unwrap();
    let (head, tail) = batches.split_at(batches.len() * 3 / 4);
    log.append_batches(head.iter().cloned()).unwrap();
    let stored = |log: &Log| -> u64 { log.stats().stored_by_hour.values().sum() };
    let before_bytes = stored(&log);
    let before_store = log.rebuild().unwrap();
    let before_export = export_of(&log);
    let now = events.last().unwrap().at;
    let keep = Retention::days(30, 400);
    let mut regrouped = 0;
    for step in retention_pass(&mut log, now, &keep) {
        regrouped += step.regrouped;
        assert_eq!((step.shortened, step.folded), (0, 0));
    }
    assert!(regrouped > 0, "nothing regrouped");
    assert_eq!(export_of(&log), before_export);
    assert_eq!(log.rebuild().unwrap(), before_store);
    let after_bytes = stored(&log);
    assert!(
        after_bytes * 2 < before_bytes,
        "stored {before_bytes} bytes before the pass, {after_bytes} after"
    );
    // Appends go on; a second pass regroups only what they completed, and
    // a third nothing.
    log.append_batches(tail.iter().cloned()).unwrap();
    for expected_more in [true, false] {
        let again: u64 = retention_pass(&mut log, now, &keep)
            .iter()
            .map(|step| step.regrouped)
            .sum();
        assert_eq!(again > 0, expected_more, "regrouped {again}");
    }
    log.close().unwrap();
    let whole: String = events
        .iter()
        .map(|e| format!("{}\n", String::from_utf8(e.to_json()).unwrap()))
        .collect();
    assert_eq!(export(&dir), whole);
    let log = Log::open(&dir).unwrap();
    assert_eq!(log.verify().first_problem, None);
    log.close().unwrap();
}

/// The export of an open log.
fn export_of(log: &Log) -> Vec<u8> {
    let mut out = Vec::new();
    log.export(0, &mut out).unwrap();
    out
}

/// Folding keeps the settings: the `settings_changed` events of folded
/// units stay in the log (and in `log export`, byte for byte), so a replay
/// of the export starts from the settings the engine had, not the
/// defaults. Loads, `log verify` and later passes are unchanged by them,
/// and `log export` → `log import` → `log export` is byte-identical.
#[test]
fn a_fold_keeps_the_settings_in_the_export() {
    let root = tempfile::tempdir().unwrap();
    let demo = root.path().join("demo");
    let ran = quotatrack(&["--data-dir", demo.to_str().unwrap(), "demo", "--hours", "5"], b"");
    assert_eq!(ran.status.code(), Some(0));
    let events: Vec<Envelope> = {
        let log = Log::open(&demo).unwrap();
        let events = log.entries(0).map(Result::unwrap).collect();
        log.close().unwrap();
        events
    };
    // The demo's events, with a settings file's change and a host's patch
    // early on, each in a batch of its own.
    let settings = |stream, patch: Value| (events[0].at, stream, Event::SettingsChanged { patch });
    let mut batches: Vec<Vec<(Timestamp, quotatrack::events::Stream, Event)>> = vec![
        vec![settings(
            quotatrack::events::Stream::Engine,
            serde_json::json!({"min_interval_s": 120, "status_pages": false}),
        )],
        vec![settings(
            quotatrack::events::Stream::Controller,
            serde_json::json!({"min_interval_s": 90}),
        )],
    ];
    for envelope in &events {
        batches.push(vec![(envelope.at, envelope.stream, envelope.payload.clone())]);
    }
    let dir = root.path().join("log");
    let mut log = Log::open(&dir).unwrap();
    log.append_batches(batches).unwrap();
    let before = export_of(&log);
    let store = log.load().unwrap();
    let settings_lines: Vec<&[u8]> = before
        .split(|b| *b == b'\n')
        .filter(|line| line.windows(18).any(|w| w == b"\"settings_changed\""))
        .collect();
    assert!(settings_lines.len() >= 2);
    // Events older than 3 h fold, bodies older than 2 h go (so a pass
    // ends past the fold, where the next one goes on: past units whose
    // bodies went, which fold later).
    let now = events.last().unwrap().at;
    let keep = Retention {
        bodies: Some(SignedDuration::from_hours(2)),
        events: Some(SignedDuration::from_hours(3)),
    };
    let pass_at =
        |log: &mut Log, now: Timestamp| -> u64 { retention_pass(log, now, &keep).iter().map(|step| step.folded).sum() };
    let pass = |log: &mut Log| pass_at(log, now);
    assert!(pass(&mut log) > 1_000, "nothing folded");
    let after = export_of(&log);
    assert!(after.len() < before.len());
    let kept: Vec<&[u8]> = after
        .split(|b| *b == b'\n')
        .filter(|line| line.windows(18).any(|w| w == b"\"settings_changed\""))
        .collect();
    assert_eq!(kept, settings_lines, "the settings were folded away");
    // What replay folds from the export: the engine's settings.
    let exported = envelopes(std::str::from_utf8(&after).unwrap());
    let replayed = quotatrack::store::Store::from_events(&exported);
    assert_eq!(
        (&replayed.settings, &replayed.file_settings, &replayed.patched),
        (&store.settings, &store.file_settings, &store.patched)
    );
    assert_eq!(log.load().unwrap(), store);
    let verified = log.verify();
    assert_eq!(verified.first_problem, None);
    // It counts what the export holds, the kept settings included.
    assert_eq!(verified.events as usize, exported.len());
    // A second pass folds nothing more and keeps them once.
    assert_eq!(pass(&mut log), 0);
    assert_eq!(export_of(&log), after);
    // Later passes fold on after the kept settings.
    let later = now + SignedDuration::from_mins(80);
    assert!(pass_at(&mut log, later) > 0, "a later pass folded nothing");
    let later_export = export_of(&log);
    let kept_later: Vec<&[u8]> = later_export
        .split(|b| *b == b'\n')
        .filter(|line| line.windows(18).any(|w| w == b"\"settings_changed\""))
        .collect();
    assert_eq!(kept_later, settings_lines);
    assert_eq!(log.verify().first_problem, None);
    log.close().unwrap();
    // A pass of a fresh open (from the log's start) finds nothing left.
    let mut log = Log::open(&dir).unwrap();
    assert_eq!(pass_at(&mut log, later), 0, "a pass passed over units it should fold");
    log.close().unwrap();
    // Export → import → export.
    let file = root.path().join("export.jsonl");
    std::fs::write(&file, &after).unwrap();
    let imported = root.path().join("imported");
    import(&file, &imported);
    assert_eq!(export(&imported).into_bytes(), after);
    let verify = quotatrack(&["--data-dir", imported.to_str().unwrap(), "log", "verify"], b"");
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

/// Over days of the engine's own retention (`demo`, bodies 1 day, events
/// 2 days), the settings kept at the log's start never stop the folds
/// after them: the export keeps the start's `settings_changed` and then
/// nothing older than about the event cut.
#[test]
fn kept_settings_do_not_stop_later_folds() {
    let root = tempfile::tempdir().unwrap();
    let (config, data) = (root.path().join("config.toml"), root.path().join("data"));
    std::fs::write(&config, "[retention]\nbodies_days = 1\nevents_days = 2\n").unwrap();
    let ran = quotatrack(
        &[
            "--config",
            config.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
            "demo",
            "--hours",
            "72",
        ],
        b"",
    );
    assert_eq!(ran.status.code(), Some(0), "{}", String::from_utf8_lossy(&ran.stderr));
    let events = envelopes(&export(&data));
    assert!(matches!(events[0].payload, Event::SettingsChanged { .. }));
    let first = events
        .iter()
        .find(|e| !matches!(e.payload, Event::SettingsChanged { .. }))
        .unwrap();
    let last = events.last().unwrap();
    assert!(
        first.at >= last.at - SignedDuration::from_hours(49 + 2),
        "events from {} are still in the log at {}",
        first.at,
        last.at
    );
}

/// A provider failing on and on across the fold point (7 failures and in
/// backoff at the cut). The export of the whole log replays identically,
/// and so does the export after the fold: its base line carries the
/// tracker's credentials, failures and backoff, and replay starts from
/// it. The same events without the base line (an export from before the
/// base was written) start from fresh trackers, and a divergence says so.
#[test]
fn replay_of_a_folded_export_starts_from_its_base() {
    use crate::support::exchange;
    use crate::support::server::{Reply, Server};
    use quotatrack::providers::ProviderId;
    let server = Server::start(vec![
        Reply::exchange(&exchange(ProviderId::Anthropic, "ok-full")),
        Reply::exchange(&exchange(ProviderId::Anthropic, "err-unavailable-502-html")),
    ]);
    let root = tempfile::tempdir().unwrap();
    let (config, data) = (root.path().join("config.toml"), root.path().join("data"));
    std::fs::write(&config, "providers = [\"anthropic\"]\nstatus_pages = false\n").unwrap();
    let env = [
        ("QUOTATRACK_ANTHROPIC_BASE_URL", server.origin.as_str()),
        ("QUOTATRACK_ANTHROPIC_TOKEN", "sk-ant-oat01-retention-test"),
    ];
    let start: Timestamp = "2026-08-22T12:00:00Z".parse().unwrap();
    let minutes = 60;
    for minute in 0..minutes {
        let at = (start + SignedDuration::from_mins(minute)).to_string();
        let ran = crate::live::run(
            root.path(),
            &env,
            &[
                "--config",
                config.to_str().unwrap(),
                "--clock-at",
                &at,
                "status",
                "--refresh",
            ],
        );
        assert!(ran.status.code().is_some(), "{}", String::from_utf8_lossy(&ran.stderr));
    }
    let whole = envelopes(&export(&data));
    let fails = |events: &[Envelope]| -> Vec<u32> {
        events
            .iter()
            .filter_map(|e| match e.payload {
                Event::StoreUpdated { fails, .. } => Some(fails),
                _ => None,
            })
            .collect()
    };
    assert!(fails(&whole).iter().any(|f| *f >= 3), "{:?}", fails(&whole));
    let report = quotatrack::replay::replay(&whole, &Default::default());
    assert!(
        report.identical(),
        "before the fold: {:?}",
        report.divergence.map(|d| d.line())
    );

    // Events older than 30 minutes fold into the base.
    let now = start + SignedDuration::from_mins(minutes);
    let keep = Retention {
        bodies: None,
        events: Some(SignedDuration::from_mins(30)),
    };
    let mut log = Log::open(&data).unwrap();
    let folded: u64 = retention_pass(&mut log, now, &keep)
        .iter()
        .map(|step| step.folded)
        .sum();
    log.close().unwrap();
    assert!(folded > 0, "nothing folded");
    let after = envelopes(&export(&data));
    assert!(after.len() < whole.len());
    let base = after
        .iter()
        .find(|e| !matches!(e.payload, Event::SettingsChanged { .. }))
        .unwrap();
    let failing_at_cut = whole
        .iter()
        .filter(|e| e.seq < base.seq)
        .filter_map(|e| match e.payload {
            Event::StoreUpdated { fails, .. } => Some(fails),
            _ => None,
        })
        .next_back();
    assert!(failing_at_cut.is_some_and(|fails| fails >= 3), "{failing_at_cut:?}");
    assert_eq!(
        quotatrack::replay::folded_start(&after),
        after.iter().position(|e| e.seq == base.seq)
    );
    assert_eq!(quotatrack::replay::folded_start(&whole), None);
    let exported = export(&data);
    let (carried, _, _) = quotatrack::log::split_base(exported.as_bytes()).unwrap();
    let carried = carried.expect("the export after a fold starts with its base");
    assert_eq!(carried.applied, Some(base.seq - 1));
    let options = quotatrack::replay::Options {
        base: Some(carried),
        ..Default::default()
    };
    let report = quotatrack::replay::replay(&after, &options);
    assert!(
        report.identical(),
        "from the base: {:?}",
        report.divergence.map(|d| d.line())
    );
    // Without the base line, a divergence carries the note.
    let report = quotatrack::replay::replay(&after, &Default::default());
    if let Some(divergence) = &report.divergence {
        let note = divergence.note.as_deref().unwrap_or_default();
        assert!(
            note.contains(&format!("starts at seq {}", base.seq)) && note.contains("backoff"),
            "{divergence:?}"
        );
    }
    // `quotatrack replay` of the export: identical, exit 0.
    let file = root.path().join("folded.jsonl");
    std::fs::write(&file, &exported).unwrap();
    let replayed = quotatrack(&["replay", file.to_str().unwrap()], b"");
    let text = String::from_utf8_lossy(&replayed.stdout);
    assert_eq!(replayed.status.code(), Some(0), "{text}");
    assert!(text.starts_with("replay: identical ("), "{text}");
}
