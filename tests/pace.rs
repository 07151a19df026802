//! Pace from hand-built readings with answers worked out by hand: even use,
//! a burst, a reset in the middle, one reading, a window already spent.

use jiff::{SignedDuration, Timestamp};
use quotatrack::pace::{Pace, Reading, Stage, Unknown, Window, pace};

const FIVE_HOURS: u64 = 5 * 3600;

fn start() -> Timestamp {
    "2026-08-22T12:00:00Z".parse().unwrap()
}

fn at(minutes: i64) -> Timestamp {
    start() + SignedDuration::from_mins(minutes)
}

/// A 5-hour window that started at `start()`.
fn window() -> Window {
    Window {
        seconds: FIVE_HOURS,
        resets_at: at(300),
    }
}

/// One reading a minute from `from` to `to` (minutes), the ratio given by `ratio(minute)`.
fn readings(from: i64, to: i64, ratio: impl Fn(i64) -> f64) -> Vec<Reading> {
    (from..=to)
        .map(|minute| Reading {
            at: at(minute),
            used_ratio: ratio(minute),
        })
        .collect()
}

fn check(readings: &[Reading], now_minutes: i64) -> Pace {
    pace(window(), readings, at(now_minutes)).expect("a pace")
}

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() < 1e-6
}

#[test]
fn even_use_is_on_track_and_lasts_exactly_to_the_reset() {
    let even = readings(0, 150, |minute| minute as f64 / 300.0);
    let pace = check(&even, 150);
    assert!(close(pace.expected_used_ratio, 0.5), "{pace:?}");
    assert!(close(pace.used_ratio, 0.5));
    assert!(close(pace.delta, 0.0));
    assert_eq!(pace.stage, Stage::OnTrack);
    assert!(close(pace.projected_at_reset.unwrap(), 1.0), "{pace:?}");
    // Running out exactly at the reset is not running out before it.
    assert_eq!(pace.runs_out_at, None);
    // The recent span of a 5-hour window is its last 15 minutes: 16 readings.
    assert_eq!(pace.readings, 16);
}

#[test]
fn a_burst_projects_running_out_before_the_reset() {
    // Flat at 10 % for two and a half hours, then 10 % → 40 % over 15 minutes.
    let mut burst = readings(0, 150, |_| 0.1);
    burst.extend(readings(151, 165, |minute| 0.1 + 0.3 * (minute - 150) as f64 / 15.0));
    let pace = check(&burst, 165);
    assert!(close(pace.expected_used_ratio, 0.55));
    assert!(close(pace.used_ratio, 0.4));
    // Behind even use over the whole window, and still running out: the
    // slope of the last quarter hour (about 2 % a minute) spends the
    // remaining 60 % in about half an hour, long before the reset at 17:00.
    assert_eq!(pace.stage, Stage::Behind, "{pace:?}");
    let runs_out = pace.runs_out_at.expect("runs out");
    let minutes = runs_out.duration_since(at(165)).as_secs_f64() / 60.0;
    assert!((25.0..35.0).contains(&minutes), "runs out {minutes:.1} min from now");
    assert!(pace.projected_at_reset.unwrap() > 3.0, "{pace:?}");
}

#[test]
fn a_reset_in_the_middle_starts_the_readings_over() {
    // 90 % before a reset at minute 100 (the provider reset early), then 1 % a minute.
    let mut readings_ = readings(0, 99, |_| 0.9);
    readings_.extend(readings(100, 130, |minute| (minute - 100) as f64 * 0.001));
    let pace = check(&readings_, 130);
    assert!(close(pace.used_ratio, 0.03));
    // Only readings after the fall count: the slope is 0.1 % a minute, so
    // 170 more minutes add 17 %.
    assert!(close(pace.projected_at_reset.unwrap(), 0.2), "{pace:?}");
    assert_eq!(pace.runs_out_at, None);
    assert_eq!(pace.stage, Stage::FarBehind);
}

#[test]
fn one_reading_gives_the_stage_but_no_projection() {
    let one = [Reading {
        at: at(60),
        used_ratio: 0.5,
    }];
    let pace = check(&one, 60);
    assert!(close(pace.expected_used_ratio, 0.2));
    assert!(close(pace.delta, 0.3));
    assert_eq!(pace.stage, Stage::FarAhead);
    assert_eq!(pace.projected_at_reset, None);
    assert_eq!(pace.runs_out_at, None);
    assert_eq!(pace.projection_unknown, Some(Unknown::TooFewReadings));
}

#[test]
fn readings_too_close_together_give_no_projection() {
    // Three readings within one minute: a slope over 60 s says nothing.
    let close_together: Vec<Reading> = [0, 30, 60]
        .iter()
        .map(|seconds| Reading {
            at: at(100) + SignedDuration::from_secs(*seconds),
            used_ratio: 0.3,
        })
        .collect();
    let pace = pace(window(), &close_together, at(101)).unwrap();
    assert_eq!(pace.projection_unknown, Some(Unknown::TooFewReadings));
}

#[test]
fn a_spent_window_has_run_out_now() {
    let spent = readings(0, 200, |minute| (minute as f64 / 100.0).min(1.0));
    let pace = check(&spent, 200);
    assert_eq!(pace.runs_out_at, Some(at(200)));
    assert_eq!(pace.stage, Stage::FarAhead);
}

#[test]
fn stages_follow_the_delta() {
    assert_eq!(Stage::of(0.0), Stage::OnTrack);
    assert_eq!(Stage::of(0.05), Stage::OnTrack);
    assert_eq!(Stage::of(0.06), Stage::Ahead);
    assert_eq!(Stage::of(0.21), Stage::FarAhead);
    assert_eq!(Stage::of(-0.06), Stage::Behind);
    assert_eq!(Stage::of(-0.21), Stage::FarBehind);
}

#[test]
fn unknown_paces_say_why() {
    let some = readings(0, 10, |_| 0.1);
    assert_eq!(pace(window(), &some, at(300)), Err(Unknown::ResetPassed));
    assert_eq!(pace(window(), &[], at(10)), Err(Unknown::NoReadings));
    let no_length = Window {
        seconds: 0,
        resets_at: at(300),
    };
    assert_eq!(pace(no_length, &some, at(10)), Err(Unknown::NoResetTime));
    // Readings from before the cycle began, or from the future, are not this cycle's.
    let old = [Reading {
        at: at(-10),
        used_ratio: 0.4,
    }];
    assert_eq!(pace(window(), &old, at(10)), Err(Unknown::NoReadings));
}

#[test]
fn any_readings_give_an_answer_without_panicking() {
    let odd = [
        Reading {
            at: Timestamp::MIN,
            used_ratio: f64::NAN,
        },
        Reading {
            at: at(5),
            used_ratio: f64::INFINITY,
        },
        Reading {
            at: at(6),
            used_ratio: -3.0,
        },
        Reading {
            at: at(7),
            used_ratio: 0.2,
        },
    ];
    let extreme = Window {
        seconds: u64::MAX,
        resets_at: Timestamp::MAX,
    };
    assert!(pace(extreme, &odd, at(8)).is_ok());
    assert!(pace(window(), &odd, at(8)).is_ok());
}

mod in_the_store_and_the_view {
    //! The store's ring of recent readings, and the pace it gives the view,
    //! the table and the footer.

    use std::path::Path;

    use jiff::{SignedDuration, Timestamp};
    use quotatrack::events::{Envelope, Event, Outcome, read_lines};
    use quotatrack::pace::{RING, Reading, keep, recent_span};
    use quotatrack::render::{Form, Options};
    use quotatrack::status::{self, StatusOptions};
    use quotatrack::store::Store;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn the_ring_stays_bounded_and_reaches_back_over_the_recent_span() {
        for (window_seconds, every) in [(5 * 3_600, 60), (7 * 86_400, 60), (7 * 86_400, 10), (30 * 86_400, 300)] {
            let mut ring = Vec::new();
            let start = at("2026-08-22T00:00:00Z");
            for step in 0..(window_seconds / every) as i64 {
                let reading = Reading {
                    at: start + SignedDuration::from_secs(step * every as i64),
                    used_ratio: 0.5,
                };
                keep(&mut ring, reading, window_seconds);
                assert!(ring.len() <= RING);
            }
            let span = ring.last().unwrap().at.duration_since(ring[0].at);
            let wanted = recent_span(SignedDuration::from_secs(window_seconds as i64));
            assert!(
                span >= wanted,
                "{window_seconds} s window every {every} s: {span:?} < {wanted:?}"
            );
        }
    }

    /// A Claude fetch from a recorded incident, replayed once a minute from
    /// 12:00 for `minutes` minutes with the 5h window rising 1 % a minute
    /// from 37 %.
    fn rising(minutes: i64) -> Vec<Envelope> {
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
        (0..=minutes)
            .map(|minute| {
                let mut envelope = template.clone();
                envelope.seq = minute as u64;
                envelope.at = at("2026-08-22T12:00:00Z") + SignedDuration::from_mins(minute);
                if let Event::FetchCompleted {
                    outcome: Outcome::Usage { windows, .. },
                    ..
                } = &mut envelope.payload
                {
                    windows[0].used_ratio = Some(0.37 + 0.01 * minute as f64);
                }
                envelope
            })
            .collect()
    }

    #[test]
    fn a_rising_window_runs_out_before_its_reset_in_the_view_the_table_and_the_footer() {
        let now = at("2026-08-22T12:30:00Z");
        let store = Store::from_events(&rising(30));
        let view = status::view(&store, now, &StatusOptions::default());
        let five_hours = &view.providers[0].windows[0];
        let pace = five_hours.pace.as_ref().unwrap();
        // 3.5 h of 5 h gone: 70 % expected, 67 % used.
        assert_eq!(pace.expected_used_ratio, Some(0.7));
        assert_eq!(pace.stage, "on_track");
        assert!((pace.slope_per_hour.unwrap() - 0.6).abs() < 1e-6, "{pace:?}");
        // 33 % left at 1 % a minute: 13:03, 57 minutes before the 14:00 reset.
        assert_eq!(pace.runs_out_at.as_deref(), Some("2026-08-22T13:03:00Z"));
        assert!(pace.projected_at_reset.unwrap() > 1.0);
        insta::assert_json_snapshot!("rising_5h_pace", pace);
        let table = quotatrack::render::status_text(&view, Form::Table, None, &Options::plain(now, 100)).unwrap();
        insta::assert_snapshot!("rising_5h_table", table);
        assert!(
            table.contains("5h at this pace: runs out 13:03, 57m before reset"),
            "{table}"
        );
        let footer = quotatrack::footer::render(
            "{anthropic.5h.pace_stage} {anthropic.5h.pace_delta} {anthropic.5h.pace_runs_out_in} {anthropic.5h.pace_projected_percent}",
            &view,
            now,
        )
        .unwrap();
        assert_eq!(footer, "on_track -3 33m 157");
        // A reader of the same view ten minutes later re-derives it from
        // the slope the view carries.
        let mut later = view.clone();
        status::settle(
            &mut later,
            now + SignedDuration::from_mins(10),
            &StatusOptions::default(),
        );
        let pace = later.providers[0].windows[0].pace.as_ref().unwrap();
        assert_eq!(pace.runs_out_at.as_deref(), Some("2026-08-22T13:13:00Z"));
    }

    #[test]
    fn a_window_with_two_readings_says_why_it_has_no_projection() {
        let now = at("2026-08-22T12:01:00Z");
        let view = status::view(&Store::from_events(&rising(1)), now, &StatusOptions::default());
        let windows = &view.providers[0].windows;
        let pace = windows[0].pace.as_ref().unwrap();
        assert_eq!(pace.reason.as_deref(), Some("too_few_readings"));
        assert_eq!(pace.projected_at_reset, None);
        assert_ne!(pace.stage, "unknown");
        // Extra usage has no reset time: no pace at all, and it says why.
        let extra = windows.iter().find(|w| w.id == "extra").unwrap().pace.as_ref().unwrap();
        assert_eq!(
            (extra.stage.as_str(), extra.reason.as_deref()),
            ("unknown", Some("no_reset_time"))
        );
    }

    #[test]
    fn a_checkpoint_written_before_the_ring_loads_with_an_empty_one() {
        let store = Store::from_events(&rising(30));
        assert!(!store.providers.values().next().unwrap().readings.is_empty());
        let mut json = serde_json::to_value(&store).unwrap();
        for entry in json["providers"].as_object_mut().unwrap().values_mut() {
            entry.as_object_mut().unwrap().remove("readings");
        }
        let old: Store = serde_json::from_value(json).unwrap();
        assert!(old.providers.values().all(|entry| entry.readings.is_empty()));
    }
}
