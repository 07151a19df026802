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
