//! An export after a fold: it carries the folded readings, so `history`
//! of the imported log (and of the export itself) equals the original's;
//! and a fold cuts only between cycles, so replay of the export compares
//! every event after its base. Real sled on temporary data dirs, the
//! demo's virtual clock; no wall clock.

use std::path::Path;

use jiff::{SignedDuration, Timestamp};
use quotatrack::events::{Envelope, Event};
use quotatrack::log::Log;
use quotatrack::log::retention::Retention;
use quotatrack::store::Store;

use crate::support::{quotatrack, retention_pass};

/// `quotatrack ARGS` must exit 0; its stdout.
fn run_ok(args: &[&str]) -> Vec<u8> {
    let output = quotatrack(args, b"");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn export(dir: &Path) -> Vec<u8> {
    run_ok(&["--data-dir", dir.to_str().unwrap(), "log", "export"])
}

/// The export's base and its events.
fn split(exported: &[u8]) -> (Option<Store>, Vec<Envelope>) {
    let (base, rest, _) = quotatrack::log::split_base(exported).unwrap();
    let events = std::str::from_utf8(rest)
        .unwrap()
        .lines()
        .map(|line| Envelope::from_json(line.as_bytes()).unwrap())
        .collect();
    (base, events)
}

fn demo(data: &Path, config: Option<&Path>, hours: &str) {
    let mut args = Vec::new();
    if let Some(config) = config {
        args.extend(["--config", config.to_str().unwrap()]);
    }
    args.extend(["--data-dir", data.to_str().unwrap(), "demo", "--hours", hours]);
    run_ok(&args);
}

/// The user's scenario: `demo --hours 72` with bodies kept a day and
/// events two; `log export`, `replay` of it (identical), `log import` into
/// another data dir; `history` in both (and `history --from` the export)
/// the same, every folded reading included; the import exports again byte
/// for byte. Before the readings lines, the import's history started at
/// its base: two days of readings were gone.
#[test]
fn an_export_after_a_fold_carries_its_readings_to_the_import() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("config.toml");
    std::fs::write(&config, "[retention]\nbodies_days = 1\nevents_days = 2\n").unwrap();
    let (data, copy) = (root.path().join("data"), root.path().join("copy"));
    demo(&data, Some(&config), "72");
    let exported = export(&data);
    let text = String::from_utf8(exported.clone()).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with(r#"{"v":1,"type":"base","store":"#));
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with(r#"{"v":1,"type":"readings","block":""#),
        "no readings line after the base"
    );
    let (base, events) = split(&exported);
    let applied = base.unwrap().applied.unwrap();
    let first_kept = events.iter().find(|e| e.seq > applied).unwrap();
    let last = events.last().unwrap();
    assert!(
        first_kept.at > last.at - SignedDuration::from_hours(60),
        "the fold left events from {} to {}",
        first_kept.at,
        last.at
    );

    let file = root.path().join("export.jsonl");
    std::fs::write(&file, &exported).unwrap();
    let replayed = String::from_utf8(run_ok(&["replay", file.to_str().unwrap()])).unwrap();
    assert!(replayed.starts_with("replay: identical ("), "{replayed}");

    run_ok(&[
        "--data-dir",
        copy.to_str().unwrap(),
        "log",
        "import",
        file.to_str().unwrap(),
    ]);
    assert!(
        export(&copy) == exported,
        "export → import → export is not byte-identical"
    );

    let since = (last.at - SignedDuration::from_hours(75)).to_string();
    let until = last.at.to_string();
    let window = [
        "--since",
        since.as_str(),
        "--until",
        until.as_str(),
        "--every",
        "15m",
        "--json",
    ];
    let history = |source: &[&str]| {
        let mut args: Vec<&str> = source.to_vec();
        args.push("history");
        args.extend(window);
        serde_json::from_slice::<serde_json::Value>(&run_ok(&args)).unwrap()
    };
    let original = history(&["--data-dir", data.to_str().unwrap()]);
    let imported = history(&["--data-dir", copy.to_str().unwrap()]);
    let from_file = {
        let mut args = vec!["history", "--from", file.to_str().unwrap()];
        args.extend(window);
        serde_json::from_slice::<serde_json::Value>(&run_ok(&args)).unwrap()
    };
    // The folded readings are there: points long before the first event
    // the log still holds.
    let earliest = original["series"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|series| series["points"].as_array().unwrap())
        .map(|point| point["at"].as_str().unwrap().parse::<Timestamp>().unwrap())
        .min()
        .unwrap();
    assert!(
        earliest < first_kept.at - SignedDuration::from_hours(20),
        "history starts at {earliest}, the events at {}",
        first_kept.at
    );
    assert_eq!(imported, original, "history of the imported log");
    assert_eq!(from_file, original, "history --from the export");
}

/// An import refuses readings lines that are out of place or damaged,
/// naming the line, and writes nothing.
#[test]
fn an_import_refuses_readings_lines_it_cannot_take() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("config.toml");
    std::fs::write(&config, "[retention]\nbodies_days = 1\nevents_days = 1\n").unwrap();
    let data = root.path().join("data");
    demo(&data, Some(&config), "30");
    let text = String::from_utf8(export(&data)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[1].starts_with(r#"{"v":1,"type":"readings""#),
        "{}",
        &lines[1][..40]
    );
    // A changed byte in the block: its checksum fails.
    let block_at = lines[1].find(r#""block":""#).unwrap() + 9;
    let mut damaged = lines[1].to_owned();
    let swapped = if &damaged[block_at + 20..block_at + 21] == "A" {
        "B"
    } else {
        "A"
    };
    damaged.replace_range(block_at + 20..block_at + 21, swapped);
    let mut cases = vec![
        (
            [&[lines[1]][..], &[lines[0]], &lines[2..]].concat(),
            "line 1: a readings line before any base line",
        ),
        (
            [&[lines[0], damaged.as_str()][..], &lines[2..]].concat(),
            "line 2: a readings block",
        ),
    ];
    // A block given twice: the second does not follow the first.
    cases.push((
        [&[lines[0], lines[1], lines[1]][..], &lines[2..]].concat(),
        "line 3: a readings block of events",
    ));
    for (index, (case, expected)) in cases.iter().enumerate() {
        let file = root.path().join(format!("case{index}.jsonl"));
        std::fs::write(&file, case.join("\n") + "\n").unwrap();
        let into = root.path().join(format!("into{index}"));
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
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_ne!(output.status.code(), Some(0), "case {index}");
        assert!(stderr.contains(expected), "case {index}: {stderr}");
        let empty = run_ok(&["--data-dir", into.to_str().unwrap(), "log", "export"]);
        assert!(empty.is_empty(), "case {index}: the refused import wrote events");
    }
}

/// A fold cuts only between cycles: at several cut times, whatever the
/// stored frames' boundaries, the first event after the base starts a
/// cycle (so replay takes nothing of it as recorded and compares every
/// decision after the base), no event is lost or changed, and replay of
/// the export is identical. Before, a fold removed whole stored units, and
/// the demo's (regrouped, 1,024 events each) end inside a cycle: replay
/// folded that cycle's rest into its starting store uncompared.
#[test]
fn a_fold_cuts_between_cycles_only() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    demo(&data, None, "8");
    let whole = export(&data);
    let (none, all) = split(&whole);
    assert!(none.is_none());
    let (start, end) = (all[0].at, all.last().unwrap().at);
    for hours in [2, 3, 5, 7] {
        let dir = root.path().join(format!("cut{hours}"));
        copy_dir(&data, &dir);
        let cut = start + SignedDuration::from_hours(hours);
        let keep = Retention {
            bodies: None,
            events: Some(end.duration_since(cut)),
        };
        let mut log = Log::open(&dir).unwrap();
        let folded: u64 = retention_pass(&mut log, end, &keep)
            .iter()
            .map(|step| step.folded)
            .sum();
        log.close().unwrap();
        assert!(folded > 0, "cut at {hours} h: nothing folded");
        let exported = export(&dir);
        let (base, events) = split(&exported);
        let base = base.expect("a base line");
        let applied = base.applied.unwrap();
        let after = events.partition_point(|e| e.seq <= applied);
        assert!(
            events[..after]
                .iter()
                .all(|e| matches!(e.payload, Event::SettingsChanged { .. }))
        );
        assert_eq!(
            quotatrack::replay::resumed_at(&events, &base),
            after,
            "cut at {hours} h: the base ends at event {applied}, inside a cycle ({:?} follows it)",
            events.get(after).map(|e| &e.payload)
        );
        // Every event after the base, unchanged (but for a body a folded
        // fetch's successor repeated, which it now holds itself).
        let plain = |e: &Envelope| {
            let mut json: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
            let object = json.as_object_mut().unwrap();
            object.remove("exchange");
            object.remove("body_repeated");
            json
        };
        let kept: Vec<_> = events[after..].iter().map(plain).collect();
        let original: Vec<_> = all.iter().filter(|e| e.seq > applied).map(plain).collect();
        assert!(kept == original, "cut at {hours} h: the events after the base changed");
        let options = quotatrack::replay::Options {
            base: Some(base),
            ..Default::default()
        };
        let report = quotatrack::replay::replay(&events, &options);
        assert!(
            report.identical(),
            "cut at {hours} h: {:?}",
            report.divergence.map(|d| d.line())
        );
    }
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

/// The bytes of every file below `dir`.
fn bytes_below(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|entry| {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                bytes_below(&entry.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

/// Retention gives back to the disk what it freed. sled never shrinks its
/// files: before, the 72 h demo with bodies kept a day and events two took
/// 1.7 MB, three times the same demo without retention. The engine's clean
/// close now rewrites the log when worth it, and `log compact` always does:
/// after a pass by hand, compact shrinks the files, changes nothing the log
/// holds (the export byte for byte, `log verify`), keeps them private, and
/// leaves no copy beside it: a copy a killed compact left is removed too.
#[test]
fn retention_gives_back_the_space_it_freed() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("config.toml");
    std::fs::write(&config, "[retention]\nbodies_days = 1\nevents_days = 2\n").unwrap();
    let data = root.path().join("data");
    let log_dir = data.join("log");
    demo(&data, Some(&config), "72");
    let demoed = bytes_below(&log_dir);
    assert!(demoed < 1_000_000, "the 72 h demo with retention left {demoed} bytes");
    let dir = data.to_str().unwrap();
    run_ok(&["--data-dir", dir, "log", "verify"]);

    // Passes by hand, as an older build's engine left them: nothing given
    // back.
    let exported = export(&data);
    let last = Envelope::from_json(exported.split(|b| *b == b'\n').rfind(|l| !l.is_empty()).unwrap())
        .unwrap()
        .at;
    {
        let mut log = Log::open(&data).unwrap();
        for (bodies, events) in [(18, 44), (12, 38), (6, 32)] {
            let keep = Retention {
                bodies: Some(SignedDuration::from_hours(bodies)),
                events: Some(SignedDuration::from_hours(events)),
            };
            retention_pass(&mut log, last, &keep);
        }
        log.close().unwrap();
    }
    let exported = export(&data);
    let before = bytes_below(&log_dir);
    let stale = data.join(".vacuum-1");
    std::fs::create_dir_all(stale.join("log")).unwrap();
    std::fs::write(stale.join("log").join("db"), b"a copy a killed compact left").unwrap();

    // At the demo's last minute, so compact's own cut drops no body.
    let said = run_ok(&[
        "--data-dir",
        dir,
        "--clock-at",
        &last.to_string(),
        "log",
        "compact",
        "--json",
    ]);
    let said: serde_json::Value = serde_json::from_slice(&said).unwrap();
    assert_eq!(said["bodies_dropped"], 0, "{said}");
    let after = bytes_below(&log_dir);
    let held: u64 = {
        let log = Log::open(&data).unwrap();
        let held = log.tree_bytes().iter().map(|(_, _, bytes)| bytes).sum();
        log.close().unwrap();
        held
    };
    eprintln!("demo {demoed}, after the passes {before}, after compact {after}, held {held}: {said}");
    // Near what the log holds (sled's own overhead aside: a few segments);
    // before, the demo's log alone took seven times it.
    assert!(
        after < 3 * held + 128 * 1024,
        "{after} bytes on disk for {held} bytes held ({before} before compact)"
    );
    // What it says is what it did.
    assert_eq!(said["bytes_after"].as_u64(), Some(after), "{said}");

    assert!(export(&data) == exported, "compact changed what the log holds");
    run_ok(&["--data-dir", dir, "log", "verify"]);
    assert!(!stale.exists(), "the stale copy is still there");
    let names: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|name| name.starts_with(".vacuum")), "{names:?}");
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&log_dir), 0o700);
    assert_eq!(mode(&log_dir.join("db")), 0o600);
}
