//! What people and bars see: the status table at 80 and 160 columns, the
//! status line's length budget, and each ready integration, over the
//! demo's seven providers and every bundled incident, at fixed times.

use std::path::Path;

use jiff::{SignedDuration, Timestamp};
use quotatrack::events::{Envelope, read_lines};
use quotatrack::quota::{ResetBehavior, Unit, WindowType};
use quotatrack::render::{self, Form, Options};
use quotatrack::status::{self, StatusOptions};
use quotatrack::store::Store;
use quotatrack::wire::{CurrentModelRequests, Freshness, ModelRequests, PaceBody, Status, StatusWindow, Window};

/// The demo's last minute of its first hour: seven providers, all fresh.
const DEMO_END: &str = "2026-08-22T12:59:30Z";

/// The demo's first hour's snapshot, read back and settled at `now`.
pub fn demo_view(now: Timestamp) -> Status {
    let mut view = status::read_snapshot(demo_dir()).unwrap().unwrap();
    status::settle(&mut view, now, &StatusOptions::default());
    view
}

/// An incident's log folded and viewed 30 s after its last event.
fn incident_view(path: &Path) -> (Status, Timestamp) {
    let events = incident_events(path);
    let now = events.last().unwrap().at + SignedDuration::from_secs(30);
    let store = Store::from_events(&events);
    (status::view(&store, now, &StatusOptions::default()), now)
}

fn incident_events(path: &Path) -> Vec<Envelope> {
    let file = std::fs::File::open(path).unwrap();
    read_lines(std::io::BufReader::new(file)).map(Result::unwrap).collect()
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn check(view: &Status, form: Form, options: &Options) -> String {
    render::status_text(view, form, None, options).unwrap()
}

#[test]
fn the_demo_table_fits_80_columns_and_uses_160_when_given() {
    let now = at(DEMO_END);
    let view = demo_view(now);
    let narrow = check(&view, Form::Table, &Options::plain(now, 80));
    let wide = check(&view, Form::Table, &Options::plain(now, 160));
    for line in narrow.lines() {
        assert!(line.chars().count() <= 80, "{} columns: {line}", line.chars().count());
    }
    let widest = wide.lines().map(|line| line.chars().count()).max().unwrap();
    assert!(widest > 80, "the wide table stays at {widest} columns");
    insta::assert_snapshot!("demo_table_80", narrow);
    insta::assert_snapshot!("demo_table_160", wide);
}

#[test]
fn every_incident_renders_as_a_table_and_a_line() {
    insta::glob!("../fixtures/incidents", "*.jsonl", |path| {
        let events = incident_events(path);
        let (start, end) = (events[0].at, events.last().unwrap().at);
        let part = |fraction: i64| start + (end.duration_since(start) / 4) * fraction as i32;
        let mut out = String::new();
        for (fraction, width) in [(2, 80), (2, 160), (3, 80)] {
            let (view, now) = view_at(&events, part(fraction));
            let table = check(&view, Form::Table, &Options::plain(now, width));
            for line in table.lines() {
                assert!(
                    line.chars().count() <= width,
                    "{} > {width}: {line}",
                    line.chars().count()
                );
            }
            out.push_str(&format!("── table at {width} columns, {now}\n{table}"));
        }
        for fraction in 1..=4 {
            let (view, now) = view_at(&events, part(fraction));
            out.push_str(&format!(
                "── line at {now}\n{}\n",
                check(&view, Form::Line, &Options::plain(now, 120))
            ));
        }
        insta::assert_snapshot!(out);
    });
}

#[test]
fn every_view_reads_back_from_its_snapshot_unchanged() {
    // `status` reads the snapshot with a flat list of each window's
    // fields; one it missed would come back empty here.
    let mut windows = 0;
    let mut check = |view: &Status| {
        let written = serde_json::to_string(view).unwrap();
        let read: Status = serde_json::from_str(&written).unwrap();
        assert_eq!(&read, view, "{written}");
        windows += view
            .providers
            .iter()
            .map(|provider| provider.windows.len())
            .sum::<usize>();
    };
    check(&demo_view(at(DEMO_END)));
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|extension| extension == "jsonl") {
            check(&incident_view(&path).0);
        }
    }
    // Every field set, none to its default: a field added to the window
    // must be added here (the literal names them all) and read back.
    let mut view = demo_view(at(DEMO_END));
    view.providers[0].windows[0] = full_window();
    check(&view);
    assert!(windows > 40, "only {windows} windows read back");
}

fn full_window() -> StatusWindow {
    let requests = ModelRequests {
        multiplier: 0.33,
        requests_left: Some(12.0),
    };
    StatusWindow {
        window: Window {
            id: "premium".into(),
            label: "Premium".into(),
            used_ratio: Some(0.25),
            remaining_ratio: Some(0.75),
            used: Some(75.0),
            remaining: Some(225.0),
            limit: Some(300.0),
            unit: Some(Unit::Currency("eur".into())),
            resets_at: Some("2026-09-01T00:00:00Z".into()),
            window_seconds: Some(2_592_000),
            model: Some("gpt-5".into()),
            quota: Some("premium".into()),
            window_type: Some(WindowType::Fixed),
            reset_behavior: Some(ResetBehavior::Calendar),
            model_ids: vec!["gpt-5".into(), "o3".into()],
            reset_passed: true,
        },
        total: Some(300.0),
        used_percent: Some(25.0),
        remaining_percent: Some(75.0),
        progress: Some(70.1),
        used_time_s: Some(1_800_000),
        remaining_time_s: Some(792_000),
        total_time_s: Some(2_592_000),
        requests_left_by_model: [("o3".to_owned(), requests.clone())].into(),
        current_model: Some(CurrentModelRequests {
            model: "o3-mini".into(),
            matched: Some("o3".into()),
            requests,
        }),
        pace: Some(PaceBody {
            stage: "ahead".into(),
            expected_used_ratio: Some(0.2),
            delta: Some(0.05),
            projected_at_reset: Some(1.1),
            runs_out_at: Some("2026-08-30T00:00:00Z".into()),
            reason: None,
            slope_per_hour: Some(0.001),
            readings: 9,
        }),
    }
}

/// The incident as it stood at `now` (every event up to then folded).
fn view_at(events: &[Envelope], now: Timestamp) -> (Status, Timestamp) {
    let store = Store::from_events(events.iter().filter(|envelope| envelope.at <= now));
    (status::view(&store, now, &StatusOptions::default()), now)
}

#[test]
fn problem_rows_say_what_is_wrong_and_what_to_do() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents");
    let said = |name: &str| {
        let (view, now) = incident_view(&path.join(format!("{name}.jsonl")));
        check(&view, Form::Table, &Options::plain(now, 100))
    };
    let mid = |name: &str| {
        let events = incident_events(&path.join(format!("{name}.jsonl")));
        let (start, end) = (events[0].at, events.last().unwrap().at);
        let (view, now) = view_at(&events, start + end.duration_since(start) / 2);
        check(&view, Form::Table, &Options::plain(now, 100))
    };
    let lost = mid("credentials-lost-restored");
    assert!(lost.contains("login needed"), "{lost}");
    let storm = mid("rate-limit-storm");
    assert!(storm.contains("rate limited for"), "{storm}");
    assert!(storm.contains("the provider asked us to wait"), "{storm}");
    let failing = mid("stale-last-good");
    assert!(failing.contains("the numbers shown were read"), "{failing}");
    assert!(said("backoff-climb").contains("fresh"));
    // A demo snapshot read 20 minutes late: every provider is stale, says
    // how old its numbers are and how to refresh them.
    let late = at(DEMO_END) + SignedDuration::from_mins(20);
    let view = demo_view(late);
    let table = check(&view, Form::Table, &Options::plain(late, 100));
    assert!(table.contains("stale 20m ago"), "{table}");
    assert!(table.contains("quotatrack status --refresh"), "{table}");
}

#[test]
fn the_line_has_one_segment_per_provider_within_120_characters_fresh_and_160_stale() {
    let now = at(DEMO_END);
    let view = demo_view(now);
    assert_eq!(view.providers.len(), 7);
    let fresh = check(&view, Form::Line, &Options::plain(now, 120));
    assert!(
        fresh.chars().count() <= 120,
        "{} characters: {fresh}",
        fresh.chars().count()
    );
    assert_eq!(fresh.matches(" │ ").count(), 6, "{fresh}");
    let late = now + SignedDuration::from_mins(20);
    let mut stale = view.clone();
    status::settle(&mut stale, late, &StatusOptions::default());
    assert!(
        stale
            .providers
            .iter()
            .all(|provider| provider.state == Freshness::Stale)
    );
    let stale_line = check(&stale, Form::Line, &default_budget(late));
    assert!(
        stale_line.chars().count() <= 160,
        "{} characters: {stale_line}",
        stale_line.chars().count()
    );
    assert_eq!(stale_line.matches("(20m ago)").count(), 7, "{stale_line}");
    insta::assert_snapshot!("demo_line_fresh", fresh);
    insta::assert_snapshot!("demo_line_stale", stale_line);
    // Given room, the line shows window names, a second window above the
    // threshold and the bar.
    let wide = check(&view, Form::Line, &Options::plain(now, 400));
    insta::assert_snapshot!("demo_line_wide", wide);
    assert!(
        wide.contains("Antigravity claude-opus-4-5-thinking 100% ↺3h10m · gemini-3-flash 80% ↺4h"),
        "{wide}"
    );
}

/// The budget `status --line` and `statusline claude` get when no width
/// is asked for: 120 columns, 160 when the line carries ages.
fn default_budget(now: Timestamp) -> Options {
    Options {
        age_room: render::terminal::AGE_ROOM,
        ..Options::plain(now, render::terminal::LINE_WIDTH)
    }
}

/// The status line's segments, without the shared-age segment.
fn segments(line: &str) -> Vec<&str> {
    line.split(" │ ")
        .filter(|segment| !segment.starts_with("all ("))
        .collect()
}

#[test]
fn every_fresh_segment_keeps_its_countdown_and_every_stale_one_its_age_in_brackets() {
    // From the demo's end, in steps of 7 hours 13 minutes over 120 days:
    // fresh for the first minutes, then stale with every kind of age.
    let end = at(DEMO_END);
    for step in 0..400 {
        let now = end + SignedDuration::from_mins(433 * step);
        let view = demo_view(now);
        let line = check(&view, Form::Line, &default_budget(now));
        let fresh = view.providers.iter().all(|provider| provider.state == Freshness::Fresh);
        let budget = if fresh { 120 } else { 160 };
        assert!(
            line.chars().count() <= budget,
            "{} > {budget} at {now}: {line}",
            line.chars().count()
        );
        assert_eq!(segments(&line).len(), 7, "{line}");
        for (provider, segment) in view.providers.iter().zip(segments(&line)) {
            let window = render::most_constraining(provider);
            let counts_down = window.and_then(|window| window.resets_at.as_deref()).is_some();
            if provider.state == Freshness::Fresh && counts_down {
                assert!(segment.contains('↺'), "no countdown at {now} in {segment:?}: {line}");
            }
            if provider.state == Freshness::Stale {
                assert!(segment.ends_with(" ago)"), "no age at {now} in {segment:?}: {line}");
            }
        }
    }
}

#[test]
fn a_line_too_narrow_for_every_age_tells_the_shared_one_once() {
    let late = at(DEMO_END) + SignedDuration::from_hours(3);
    let view = demo_view(late);
    let line = check(&view, Form::Line, &Options::plain(late, 120));
    assert!(line.chars().count() <= 120, "{line}");
    assert!(line.ends_with(" │ all (3h ago)"), "{line}");
    assert_eq!(line.matches("ago").count(), 1, "{line}");
    // Given the room, each provider carries its own, to the minute.
    let wide = check(&view, Form::Line, &Options::plain(late, 400));
    assert_eq!(wide.matches("(3h ago)").count(), 7, "{wide}");
}

#[test]
fn the_most_constraining_window_wins_and_ties_go_to_the_sooner_reset() {
    let now = at(DEMO_END);
    let view = demo_view(now);
    let line = check(&view, Form::Line, &Options::plain(now, 400));
    // Claude: 7d at 61% beats 5h at 37%; Z.ai: 7d at 98% beats 5h at 0%.
    assert!(line.contains("Claude 7d"), "{line}");
    assert!(line.contains("Z.ai 7d 98%"), "{line}");
    // Gemini's pro and gemini-2.5-pro tie at 25% with the same reset; the
    // 100% preview model wins over both.
    assert!(line.contains("Gemini gemini-3-pro-preview 100%"), "{line}");
}

#[test]
fn colour_marks_thresholds_only_when_asked() {
    let now = at(DEMO_END);
    let view = demo_view(now);
    let plain = check(&view, Form::Line, &Options::plain(now, 120));
    assert!(!plain.contains('\x1b'));
    let colored = check(
        &view,
        Form::Line,
        &Options {
            color: true,
            ..Options::plain(now, 120)
        },
    );
    assert!(colored.contains("\x1b[31m98%\x1b[0m"), "{colored:?}");
    assert!(colored.contains("\x1b[32m61%\x1b[0m"), "{colored:?}");
}

#[test]
fn integrations_render_the_demo() {
    let now = at(DEMO_END);
    let view = demo_view(now);
    let options = Options::plain(now, 120);
    let waybar: serde_json::Value = serde_json::from_str(&check(&view, Form::Waybar, &options)).unwrap();
    assert_eq!(waybar["class"], "critical");
    assert_eq!(waybar["percentage"], 100);
    assert!(waybar["tooltip"].as_str().unwrap().starts_with("provider"));
    insta::assert_snapshot!("demo_waybar", serde_json::to_string_pretty(&waybar).unwrap());
    insta::assert_snapshot!("demo_tmux", check(&view, Form::Tmux, &options));
    let i3bar: serde_json::Value = serde_json::from_str(&check(&view, Form::I3bar, &options)).unwrap();
    assert_eq!(i3bar.as_array().unwrap().len(), 7);
    insta::assert_snapshot!("demo_i3bar", serde_json::to_string_pretty(&i3bar).unwrap());
    insta::assert_snapshot!("demo_prompt", check(&view, Form::Prompt, &options));
}

/// Runs the real binary with `envs` set and `NO_COLOR`/`COLUMNS` cleared.
fn run(args: &[&str], envs: &[(&str, &str)]) -> (String, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_quotatrack"));
    command.args(args).env_remove("NO_COLOR").env_remove("COLUMNS");
    for (name, value) in envs {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// A data dir holding the demo's first hour, run once by the real binary
/// for every test that reads it (they only read it). It lives under
/// Cargo's scratch dir for integration tests.
pub fn demo_dir() -> &'static Path {
    static DEMO: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DEMO.get_or_init(|| {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let path = dir.path().to_str().unwrap();
        run(&["--data-dir", path, "demo", "--hours", "1"], &[]);
        dir
    })
    .path()
}

#[test]
fn status_through_the_binary_gives_the_line_off_a_terminal_and_each_form_on_request() {
    let dir = demo_dir();
    let path = dir.to_str().unwrap();
    let status = |extra: &[&str], envs: &[(&str, &str)]| {
        let mut args = vec!["--data-dir", path, "--clock-at", DEMO_END, "status"];
        args.extend_from_slice(extra);
        run(&args, envs).0
    };
    let line = status(&[], &[]);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.trim_end().chars().count() <= 120, "{line}");
    assert!(!line.contains('\x1b'));
    assert_eq!(status(&["--line"], &[]), line);
    assert_eq!(status(&["--output", "prompt"], &[]), line);
    // Providers come in the order of the settings.
    let config = tempfile::tempdir().unwrap();
    let config = config.path().join("config.toml");
    std::fs::write(&config, "providers = [\"zai\", \"anthropic\"]\n").unwrap();
    let ordered = status(&["--config", config.to_str().unwrap()], &[]);
    assert!(ordered.starts_with("Z.ai"), "{ordered}");
    // The table, at the width asked for, in colour only when asked.
    let table = status(&["--table", "--width", "80"], &[]);
    assert!(table.starts_with("provider"), "{table}");
    assert!(table.lines().all(|line| line.chars().count() <= 80), "{table}");
    let colored = status(&["--table", "--width", "80", "--color", "always"], &[]);
    assert!(colored.contains("\x1b[31m"), "{colored}");
    assert!(!status(&["--table", "--color", "auto"], &[("NO_COLOR", "1")]).contains('\x1b'));
    let wide = status(&["--table"], &[("COLUMNS", "160")]);
    assert!(wide.lines().any(|line| line.chars().count() > 80), "{wide}");
    let waybar: serde_json::Value = serde_json::from_str(&status(&["--output", "waybar"], &[])).unwrap();
    assert_eq!(waybar["class"], "critical");
    assert!(status(&["--output", "tmux"], &[]).contains("#[fg=red]"));
    let i3bar: serde_json::Value = serde_json::from_str(&status(&["--output", "i3bar"], &[])).unwrap();
    assert_eq!(i3bar[0]["instance"], "anthropic");
    // --format keeps working over every footer value.
    let formatted = status(
        &["--format", "{anthropic.7d.used_percent}% ↺{anthropic.7d.resets_in}"],
        &[],
    );
    assert_eq!(formatted.trim_end(), "61% ↺3d20h");
}

#[test]
fn control_characters_from_a_provider_never_reach_the_terminal() {
    let now = at(DEMO_END);
    let mut view = demo_view(now);
    let hostile = "evil\x1b[2J\x1b]0;pwned\x07\nsecond line\r";
    view.providers[4].windows[0].window.label = hostile.to_owned();
    view.providers[4].windows[0].window.id = hostile.to_owned();
    view.providers[0].label = hostile.to_owned();
    view.providers[1].status_page = Some(quotatrack::wire::StatusPageBody {
        indicator: "major".to_owned(),
        description: Some(hostile.to_owned()),
    });
    for form in [
        Form::Table,
        Form::Line,
        Form::Waybar,
        Form::Tmux,
        Form::I3bar,
        Form::Prompt,
    ] {
        let text = check(&view, form, &Options::plain(now, 400));
        assert!(
            !text.contains('\x1b') && !text.contains('\x07') && !text.contains('\r'),
            "{form:?}: {text:?}"
        );
        if form != Form::Table {
            assert_eq!(text.lines().count(), 1, "{form:?}: {text:?}");
        }
        assert!(text.contains("evil"), "{form:?}");
    }
}
