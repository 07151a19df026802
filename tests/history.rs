//! History series from readings with known answers (cycles, running out,
//! downsampling that keeps peaks and resets, filters) and from a recorded
//! incident.

use std::fs::File;
use std::io::BufReader;

use jiff::{SignedDuration, Timestamp};
use quotatrack::events::read_lines;
use quotatrack::history::{Builder, Query, series};
use quotatrack::providers::ProviderId;

fn at(minutes: i64) -> Timestamp {
    "2026-08-22T12:00:00Z".parse::<Timestamp>().unwrap() + SignedDuration::from_mins(minutes)
}

/// Two 5-hour cycles of Claude's 5h window: the first climbs 1 % a minute
/// and runs out at minute 100, the second climbs to 40 %.
fn two_cycles(builder: &mut Builder) {
    for minute in 0..300 {
        let ratio = (minute as f64 / 100.0).min(1.0);
        builder.reading(ProviderId::Anthropic, "5h", at(minute), ratio, Some(at(300)));
    }
    for minute in 300..340 {
        let ratio = (minute - 300) as f64 / 100.0;
        builder.reading(ProviderId::Anthropic, "5h", at(minute), ratio, Some(at(600)));
    }
}

#[test]
fn cycles_peaks_and_running_out_are_summarised() {
    let mut builder = Builder::new(Query::default());
    two_cycles(&mut builder);
    let series = builder.finish();
    assert_eq!(series.len(), 1);
    let summary = &series[0].summary;
    assert_eq!(summary.cycles, 2);
    assert_eq!(summary.peak, 1.0);
    assert_eq!(summary.peak_at, Some(at(100)));
    assert_eq!(summary.ran_out, vec![at(100)]);
    assert!(
        (summary.average_cycle_peak - (1.0 + 0.39) / 2.0).abs() < 1e-9,
        "{summary:?}"
    );
    let resets: Vec<Timestamp> = series[0].points.iter().filter(|p| p.reset).map(|p| p.at).collect();
    assert_eq!(resets, vec![at(300)]);
}

#[test]
fn readings_that_quote_a_reset_already_passed_are_not_history() {
    // A provider kept answering with the cycle that reset at minute 60
    // (the demo's Claude 5h does): what it said after that time is not
    // the usage of the cycle then running, as `status` shows it unknown.
    let mut builder = Builder::new(Query::default());
    for minute in 0..120 {
        builder.reading(ProviderId::Anthropic, "5h", at(minute), 0.37, Some(at(60)));
    }
    builder.reading(ProviderId::Anthropic, "5h", at(125), 0.05, Some(at(360)));
    let series = builder.finish();
    let times: Vec<Timestamp> = series[0].points.iter().map(|point| point.at).collect();
    assert_eq!(times.len(), 61, "{times:?}");
    assert_eq!(times[59], at(59));
    assert_eq!(times[60], at(125));
    assert!(series[0].points[60].reset);
    assert_eq!(series[0].summary.cycles, 2);
}

#[test]
fn downsampling_keeps_each_buckets_peak_and_every_reset() {
    let mut builder = Builder::new(Query {
        every: Some(SignedDuration::from_hours(1)),
        ..Query::default()
    });
    two_cycles(&mut builder);
    let points = &builder.finish()[0].points;
    // Hours 12..16 of the first cycle, then the second cycle's first hour.
    assert_eq!(points.len(), 6, "{points:?}");
    // The first hour's point is its highest reading (59 %), not its first.
    assert_eq!(points[0].at, at(59));
    assert!((points[0].used_ratio - 0.59).abs() < 1e-9);
    assert!(points[5].reset);
    assert_eq!(points[5].at, at(339));
    // A reset inside a bucket still starts its own point.
    let mut builder = Builder::new(Query {
        every: Some(SignedDuration::from_hours(1)),
        ..Query::default()
    });
    builder.reading(ProviderId::Codex, "5h", at(10), 0.8, Some(at(20)));
    builder.reading(ProviderId::Codex, "5h", at(30), 0.1, Some(at(320)));
    builder.reading(ProviderId::Codex, "5h", at(40), 0.2, Some(at(320)));
    let points = &builder.finish()[0].points;
    assert_eq!(points.len(), 2);
    assert!(!points[0].reset && points[1].reset);
    assert_eq!((points[1].at, points[1].used_ratio), (at(40), 0.2));
}

#[test]
fn filters_keep_only_what_was_asked() {
    let mut builder = Builder::new(Query {
        provider: Some(ProviderId::Anthropic),
        window: Some("5h".to_owned()),
        since: Some(at(10)),
        until: Some(at(20)),
        every: None,
    });
    two_cycles(&mut builder);
    builder.reading(ProviderId::Anthropic, "7d", at(15), 0.5, None);
    builder.reading(ProviderId::Codex, "5h", at(15), 0.5, None);
    builder.reading(ProviderId::Anthropic, "5h", at(16), f64::NAN, None);
    let series = builder.finish();
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].points.len(), 11);
    assert_eq!(series[0].points.first().unwrap().at, at(10));
    assert_eq!(series[0].points.last().unwrap().at, at(20));
}

#[test]
fn a_recorded_rollover_shows_its_reset() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/incidents/window-rollover.jsonl");
    let events: Vec<_> = read_lines(BufReader::new(File::open(path).unwrap()))
        .collect::<Result<_, _>>()
        .unwrap();
    let all = series(&events, Query::default());
    let five_hours = all
        .iter()
        .find(|series| series.provider == ProviderId::Anthropic && series.window == "5h")
        .unwrap();
    // 37 % until the window rolled over at 14:00; the next reading (14:15) is 0 %.
    let reset = five_hours.points.iter().find(|point| point.reset).expect("a reset");
    assert_eq!(reset.at, "2026-08-22T14:15:00Z".parse::<Timestamp>().unwrap());
    assert_eq!(reset.used_ratio, 0.0);
    assert_eq!(five_hours.summary.cycles, 2);
    assert_eq!(five_hours.summary.peak, 0.37);
    // The weekly window's reset time moved earlier with a lower reading: a new cycle too.
    let week = all.iter().find(|series| series.window == "7d").unwrap();
    assert_eq!(week.summary.cycles, 2);
}

mod command {
    //! `quotatrack history` over a generated log file: the chart, the CSV
    //! and the JSON, as pure functions and through the real binary.

    use std::path::{Path, PathBuf};

    use jiff::{SignedDuration, Timestamp};
    use quotatrack::cli::{ColorChoice, HistoryArgs};
    use quotatrack::commands::history::command;
    use quotatrack::events::{Envelope, Event, Outcome, read_lines};
    use quotatrack::history::Source;
    use quotatrack::render::Options;

    const START: &str = "2026-08-20T00:00:00Z";
    const END: &str = "2026-08-22T00:00:00Z";

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// Two days of Claude readings every 10 minutes: the 5h window climbs
    /// 25 % an hour from each reset (every 5 h from 00:00), so each cycle
    /// runs out after 4 h; the 7d window climbs slowly.
    fn generated_log() -> (tempfile::TempDir, PathBuf) {
        generated_log_every(10)
    }

    /// [`generated_log`] with a reading every `every` minutes.
    fn generated_log_every(every: i64) -> (tempfile::TempDir, PathBuf) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents/stale-last-good.jsonl");
        let events: Vec<Envelope> = read_lines(std::io::BufReader::new(std::fs::File::open(path).unwrap()))
            .map(Result::unwrap)
            .collect();
        let template = events
            .iter()
            .find(|e| {
                matches!(
                    &e.payload,
                    Event::FetchCompleted {
                        outcome: Outcome::Usage { .. },
                        ..
                    }
                )
            })
            .unwrap();
        let mut lines = Vec::new();
        for step in 0..(48 * 60 / every) {
            let minutes = step * every;
            let mut envelope = template.clone();
            envelope.seq = step as u64;
            envelope.at = at(START) + SignedDuration::from_mins(minutes);
            let into_cycle = minutes % 300;
            let reset = at(START) + SignedDuration::from_mins(minutes - into_cycle + 300);
            if let Event::FetchCompleted {
                outcome: Outcome::Usage { windows, .. },
                ..
            } = &mut envelope.payload
            {
                windows[0].used_ratio = Some((into_cycle as f64 / 240.0).min(1.0));
                windows[0].resets_at = Some(quotatrack::wire::rfc3339_seconds(reset));
                windows[1].used_ratio = Some(0.2 + minutes as f64 / 10_000.0);
            }
            lines.extend(envelope.to_json());
            lines.push(b'\n');
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("export.jsonl");
        std::fs::write(&file, lines).unwrap();
        (dir, file)
    }

    fn args(extra: &[&str]) -> HistoryArgs {
        use clap::Parser;
        let mut argv = vec!["quotatrack", "history"];
        if !extra.contains(&"--since") {
            argv.extend(["--since", START]);
        }
        argv.extend_from_slice(extra);
        match quotatrack::cli::Args::parse_from(argv).command {
            quotatrack::cli::Command::History(history) => history,
            other => panic!("{other:?}"),
        }
    }

    fn check(file: &Path, extra: &[&str]) -> String {
        let history = args(extra);
        assert_eq!(history.color, ColorChoice::Auto);
        command(&Source::File(file.to_owned()), &history, &Options::plain(at(END), 80)).unwrap()
    }

    #[test]
    fn the_chart_marks_resets_and_sums_up_each_window() {
        let (_dir, file) = generated_log();
        let chart = check(&file, &["anthropic", "--window", "5h"]);
        for line in chart.lines() {
            assert!(line.chars().count() <= 80, "{line}");
        }
        // Cycles start every 5 h: 10 in two days, the first without a mark.
        assert_eq!(chart.matches('↺').count(), 9, "{chart}");
        assert!(chart.contains("over 10 cycles"), "{chart}");
        // The last cycle (from 21:00) has not run out by the end.
        assert!(chart.contains("ran out 9×: 08-20 04:00, 08-20 09:00"), "{chart}");
        insta::assert_snapshot!("history_chart_5h", chart);
    }

    #[test]
    fn csv_and_json_give_the_series_downsampled_with_peaks_kept() {
        let (_dir, file) = generated_log();
        let csv = check(&file, &["anthropic", "--window", "5h", "--every", "1h", "--csv"]);
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(rows[0], "provider,window,at,used_ratio,resets_at,reset");
        // Each hour keeps its highest reading: 03:50 (95.8 %) for 03:00–04:00,
        // and the first 100 % of 04:00–05:00, at 04:00.
        assert!(
            rows.contains(&"anthropic,5h,2026-08-20T03:50:00Z,0.958333,2026-08-20T05:00:00Z,false"),
            "{csv}"
        );
        assert!(
            rows.contains(&"anthropic,5h,2026-08-20T04:00:00Z,1,2026-08-20T05:00:00Z,false"),
            "{csv}"
        );
        insta::assert_snapshot!("history_csv_5h_hourly", csv);
        let json: serde_json::Value = serde_json::from_str(&check(
            &file,
            &[
                "anthropic",
                "--since",
                "2026-08-21T00:00:00Z",
                "--every",
                "6h",
                "--json",
            ],
        ))
        .unwrap();
        let series = json["series"].as_array().unwrap();
        let names: Vec<&str> = series.iter().map(|s| s["window"].as_str().unwrap()).collect();
        assert_eq!(names, ["5h", "7d", "7d-fable", "7d-sonnet", "extra"]);
        // From 00:00 on the 21st: the cycle from 20:00 the day before runs out
        // at the first reading, then the cycles from 01:00, 06:00, 11:00 and 16:00.
        assert_eq!(series[0]["summary"]["ran_out"].as_array().unwrap().len(), 5);
        insta::assert_json_snapshot!("history_json_6h", json);
    }

    #[test]
    fn the_binary_reads_an_exported_file_and_a_data_dir_and_rejects_bad_times() {
        let (_dir, file) = generated_log();
        let run = |args: &[&str]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_quotatrack"))
                .args(args)
                .env("TZ", "UTC")
                .env_remove("NO_COLOR")
                .output()
                .unwrap()
        };
        let from = file.to_str().unwrap();
        let output = run(&[
            "--clock-at",
            END,
            "history",
            "anthropic",
            "--window",
            "5h",
            "--since",
            START,
            "--from",
            from,
            "--width",
            "80",
        ]);
        assert!(output.status.success());
        assert_eq!(
            String::from_utf8(output.stdout).unwrap(),
            check(&file, &["anthropic", "--window", "5h"])
        );
        // A data dir's log (the demo's first hour), read without owning it.
        let demo = crate::render::demo_dir();
        let output = run(&[
            "--data-dir",
            demo.to_str().unwrap(),
            "--clock-at",
            "2026-08-22T13:00:00Z",
            "history",
            "codex",
            "--window",
            "7d",
            "--since",
            "1h",
            "--csv",
        ]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let csv = String::from_utf8(output.stdout).unwrap();
        assert!(csv.lines().count() > 2, "{csv}");
        assert!(csv.lines().skip(1).all(|line| line.starts_with("codex,7d,")), "{csv}");
        for bad in [["--since", "yesterday"], ["--every", "0h"], ["--until", "8d"]] {
            let output = run(&["history", "--from", from, bad[0], bad[1]]);
            assert_eq!(output.status.code(), Some(2), "{bad:?}");
            let stderr = String::from_utf8(output.stderr).unwrap();
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
        }
    }

    /// Folding old events keeps their readings: `history` over a data dir
    /// gives the same series (every point, every summary) before and after
    /// retention folds the first day, and the same as the exported file.
    #[test]
    fn history_reads_the_same_before_and_after_old_events_fold() {
        use quotatrack::history::{Query, read};
        use quotatrack::log::Log;
        use quotatrack::log::retention::Retention;

        let (dir, file) = generated_log_every(1);
        let data_dir = dir.path().join("data");
        let mut log = Log::open(&data_dir).unwrap();
        log.import(std::io::BufReader::new(std::fs::File::open(&file).unwrap()))
            .unwrap();
        log.close().unwrap();
        let queries = [
            Query::default(),
            Query {
                since: Some(at("2026-08-20T06:00:00Z")),
                until: Some(at("2026-08-21T18:00:00Z")),
                every: Some(SignedDuration::from_hours(1)),
                ..Query::default()
            },
        ];
        let all = |source: &Source| queries.clone().map(|query| read(source, query).unwrap().series);
        let exported = all(&Source::File(file.clone()));
        assert!(exported[0][0].points.len() > 2_000);
        assert_eq!(all(&Source::DataDir(data_dir.clone())), exported);

        // Events older than a day at the end fold into the base.
        let mut log = Log::open(&data_dir).unwrap();
        let retention = Retention {
            bodies: Some(SignedDuration::from_hours(24)),
            events: Some(SignedDuration::from_hours(24)),
        };
        let steps = crate::support::retention_pass(&mut log, at(END), &retention);
        let folded: u64 = steps.iter().map(|step| step.folded).sum();
        let indexed = steps.iter().filter(|step| step.indexed).count() as u64;
        let first_kept = log.entries(0).next().unwrap().unwrap();
        log.close().unwrap();
        assert!(folded > 1_000, "{folded} folded");
        assert!(indexed >= 1, "a full block is indexed by a step of its own");
        assert_eq!(first_kept.seq, folded, "the folded events are gone from the log");
        assert_eq!(all(&Source::DataDir(data_dir.clone())), exported);
        // And the chart a person sees.
        let chart = |source: &Source| command(source, &args(&["anthropic"]), &Options::plain(at(END), 80)).unwrap();
        assert_eq!(chart(&Source::DataDir(data_dir)), chart(&Source::File(file)));
    }

    /// `history` over a data dir that a running engine (`serve --stdio`)
    /// owns asks that engine over its control socket, which reads its own
    /// log: the same series, in CSV and in JSON, as read in place before it
    /// started and after it stopped.
    #[test]
    fn history_asks_the_engine_that_owns_the_data_dir() {
        use std::io::{BufRead, BufReader, Write};
        use std::process::{Command, Stdio};

        use quotatrack::log::Log;

        let (dir, file) = generated_log();
        let data = dir.path().join("data");
        let mut log = Log::open(&data).unwrap();
        log.import(std::io::BufReader::new(std::fs::File::open(&file).unwrap()))
            .unwrap();
        log.close().unwrap();
        let data_arg = data.to_str().unwrap();
        let run = |args: &[&str]| {
            Command::new(env!("CARGO_BIN_EXE_quotatrack"))
                .args(["--data-dir", data_arg, "--clock-at", END])
                .args(args)
                .env("TZ", "UTC")
                .output()
                .unwrap()
        };
        // Up to a minute before the owner's own cycle (at END).
        let queries: [&[&str]; 2] = [
            &["history", "--since", START, "--until", "2026-08-21T23:59:00Z", "--csv"],
            &[
                "history",
                "anthropic",
                "--window",
                "5h",
                "--since",
                "1d",
                "--until",
                "2026-08-21T23:59:00Z",
                "--every",
                "30m",
                "--json",
            ],
        ];
        let series = || {
            queries.map(|args| {
                let output = run(args);
                assert_eq!(
                    output.status.code(),
                    Some(0),
                    "{args:?}: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                String::from_utf8(output.stdout).unwrap()
            })
        };
        let before = series();
        assert!(before[0].lines().count() > 2 * 48 * 6, "{}", before[0]);
        assert!(before[1].contains("\"ran_out\""), "{}", before[1]);

        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/providers");
        let mut owner = Command::new(env!("CARGO_BIN_EXE_quotatrack"))
            .args(["--data-dir", data_arg, "--clock-at", END])
            .args(["--fixtures", fixtures.to_str().unwrap(), "serve", "--stdio"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut input = owner.stdin.take().unwrap();
        let mut output = BufReader::new(owner.stdout.take().unwrap()).lines();
        // A line that is no host event is answered from the owner's loop,
        // which starts once the control socket is bound.
        input.write_all(b"not a host event\n").unwrap();
        loop {
            let line = output.next().unwrap().unwrap();
            if line.contains("\"error\"") && line.contains("\"line\":1") {
                break;
            }
        }
        let owned = run(&["log", "stats"]);
        assert_eq!(owned.status.code(), Some(3), "the engine owns the data dir");
        let during = series();
        input.write_all(b"{\"type\":\"session_shutdown\"}\n").unwrap();
        drop(input);
        for _ in output.by_ref() {}
        assert!(owner.wait().unwrap().success());
        let after = series();
        assert_eq!(during, before);
        assert_eq!(after, before);
    }
}
