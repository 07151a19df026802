//! Footer values and `status --format` templates over a status view at a
//! fixed clock: each value as a host footer would show it, checked against
//! answers worked out by hand from the windows below, unknown values as
//! `--`, and a name that cannot exist as an error naming what can.

use jiff::{SignedDuration, Timestamp};
use quotatrack::footer::{self, FooterError, MODEL_VALUES, WINDOW_VALUES};
use quotatrack::providers::ProviderId;
use quotatrack::quota::{Length, ResetBehavior, Unit, WindowType};
use quotatrack::status::{self, derive_window};
use quotatrack::wire::{Freshness, ProviderStatus, Status, StatusWindow, Window, rfc3339_seconds};

use crate::projection::window;

fn now() -> Timestamp {
    "2026-11-23T10:00:00Z".parse().unwrap()
}

fn in_seconds(seconds: i64) -> Timestamp {
    now() + SignedDuration::from_secs(seconds)
}

/// Claude's 5 h window (18 000 s), 45 % used, resetting in 2h13m (7 980 s):
/// 10 020 s of it have run, 55.67 % of its time.
fn claude_5h() -> Window {
    window("5h", 0.45, Some(in_seconds(7_980)))
}

/// Claude's week (604 800 s), 20 % used, resetting in 3d19h (327 600 s):
/// 277 200 s have run, 45.83 % of its time.
fn claude_week() -> Window {
    Window {
        window_seconds: Some(604_800),
        window_type: Some(WindowType::Rolling),
        reset_behavior: Some(ResetBehavior::Continuous),
        ..window("7d-sonnet", 0.2, Some(in_seconds(327_600)))
    }
}

/// A week whose reset passed five minutes ago: its numbers say nothing.
fn passed_week() -> Window {
    let mut passed = window("7d", 0.61, Some(in_seconds(-300)));
    passed.window_seconds = Some(604_800);
    passed
}

/// Copilot's premium requests: 165 of 300 left, resetting on the 1st
/// (7d14h = 655 200 s away); its window is November, the calendar month
/// that ends at the reset (30 days, 2 592 000 s).
fn copilot_premium() -> Window {
    Window {
        id: "premium".to_owned(),
        label: "Premium".to_owned(),
        used_ratio: Some(0.45),
        remaining_ratio: Some(0.55),
        used: Some(135.0),
        remaining: Some(165.0),
        limit: Some(300.0),
        unit: Some(Unit::Requests),
        resets_at: Some(rfc3339_seconds("2026-12-01T00:00:00Z".parse().unwrap())),
        window_seconds: None,
        model: None,
        quota: Some("premium".to_owned()),
        window_type: Some(WindowType::Fixed),
        reset_behavior: Some(ResetBehavior::Calendar),
        model_ids: Vec::new(),
        reset_passed: false,
    }
}

fn provider(id: ProviderId, state: Freshness, windows: Vec<Window>) -> ProviderStatus {
    ProviderStatus {
        id,
        label: id.provider().label().to_owned(),
        state,
        updated_at: None,
        age_s: Some(42),
        blocked_until: None,
        fails: 0,
        plan: Some("max".to_owned()),
        windows: windows.into_iter().map(StatusWindow::from).collect(),
        status_page: None,
        error: None,
        credentials_missing: false,
    }
}

fn view() -> Status {
    Status {
        schema: 1,
        stale_after_s: None,
        file_stale_after_s: None,
        generated_at: rfc3339_seconds(now()),
        providers: vec![
            provider(
                ProviderId::Anthropic,
                Freshness::Fresh,
                vec![claude_5h(), passed_week(), claude_week()],
            ),
            provider(ProviderId::Copilot, Freshness::Fresh, vec![copilot_premium()]),
            provider(ProviderId::Gemini, Freshness::AuthRequired, Vec::new()),
        ],
    }
}

/// The one helper: renders `template` against the fixed view at `now()`.
fn check(template: &str) -> Result<String, FooterError> {
    footer::render(template, &view(), now())
}

#[test]
fn window_values_render_as_a_footer_shows_them() {
    assert_eq!(
        check("{anthropic.5h.used_percent}% ↺{anthropic.5h.resets_in}").unwrap(),
        "45% ↺2h13m"
    );
    assert_eq!(check("{anthropic.5h.remaining_percent}").unwrap(), "55");
    assert_eq!(check("{anthropic.5h.used}/{anthropic.5h.total}").unwrap(), "45/100");
    assert_eq!(check("{anthropic.5h.remaining}").unwrap(), "55");
    // 2h13m left of a 5h window: 55.7% of its time has passed (not its usage).
    assert_eq!(check("{anthropic.5h.progress}").unwrap(), "56");
}

#[test]
fn a_percent_window_with_a_length_and_a_reset_has_every_time_value() {
    assert_eq!(
        check("{anthropic.5h.used_time} {anthropic.5h.remaining_time} {anthropic.5h.total_time}").unwrap(),
        "2h47m 2h13m 5h00m"
    );
    assert_eq!(
        check("{anthropic.5h.used_time_s} {anthropic.5h.remaining_time_s} {anthropic.5h.total_time_s}").unwrap(),
        "10020 7980 18000"
    );
    assert_eq!(
        check("{anthropic.7d-sonnet.used_time_s} {anthropic.7d-sonnet.remaining_time_s} {anthropic.7d-sonnet.total_time_s}")
            .unwrap(),
        "277200 327600 604800"
    );
    assert_eq!(check("{anthropic.7d-sonnet.progress}").unwrap(), "46");
    // A day or more keeps its hours: 277 200 s is 3d5h, not 3d.
    assert_eq!(check("{anthropic.7d-sonnet.used_time}").unwrap(), "3d5h");
    assert_eq!(check("{anthropic.7d-sonnet.resets_in}").unwrap(), "3d19h");
}

#[test]
fn the_metric_names_of_the_tracker_read_the_same_values() {
    // platform-tracker §1.5 spells its metrics with hyphens, and its amounts
    // as `-used-amount`: each is the value of the same name here.
    let pairs = [
        ("{anthropic.5h.used-percent}", "{anthropic.5h.used_percent}"),
        ("{anthropic.5h.remaining-percent}", "{anthropic.5h.remaining_percent}"),
        ("{anthropic.5h.quota-used-percentage}", "{anthropic.5h.used_percent}"),
        (
            "{anthropic.5h.quota-remaining-percentage}",
            "{anthropic.5h.remaining_percent}",
        ),
        ("{anthropic.5h.progress-percentage}", "{anthropic.5h.progress}"),
        ("{anthropic.5h.used-time}", "{anthropic.5h.used_time}"),
        ("{anthropic.5h.remaining-time}", "{anthropic.5h.remaining_time}"),
        ("{anthropic.5h.total-time}", "{anthropic.5h.total_time}"),
        ("{copilot.premium.used-amount}", "{copilot.premium.used}"),
        ("{copilot.premium.remaining_amount}", "{copilot.premium.remaining}"),
        ("{copilot.premium.total-amount}", "{copilot.premium.total}"),
    ];
    for (tracker, ours) in pairs {
        assert_eq!(check(tracker).unwrap(), check(ours).unwrap(), "{tracker}");
        assert_ne!(check(tracker).unwrap(), footer::UNKNOWN, "{tracker}");
    }
    assert!(matches!(
        check("{anthropic.5h.used-bogus}"),
        Err(FooterError::UnknownName { .. })
    ));
}

#[test]
fn the_whole_percents_of_a_window_add_up_to_a_hundred() {
    for used in [0.255, 0.005, 0.495, 0.505, 0.9951, 0.0, 1.0, 1.0 / 3.0] {
        let view = Status {
            providers: vec![provider(
                ProviderId::Anthropic,
                Freshness::Fresh,
                vec![window("5h", used, Some(in_seconds(7_980)))],
            )],
            ..view()
        };
        let text = footer::render(
            "{anthropic.5h.used_percent} {anthropic.5h.remaining_percent}",
            &view,
            now(),
        )
        .unwrap();
        let (used_text, remaining) = text.split_once(' ').unwrap();
        let sum: i64 = used_text.parse::<i64>().unwrap() + remaining.parse::<i64>().unwrap();
        assert_eq!(sum, 100, "{used} used: {text}");
    }
}

#[test]
fn time_values_are_derived_at_the_clock_the_template_is_rendered_at() {
    let an_hour_later = now() + SignedDuration::from_hours(1);
    let template = "{anthropic.5h.used_time_s} {anthropic.5h.remaining_time} {anthropic.5h.progress}";
    // 10 020 + 3 600 s run of 18 000: 75.7 %.
    assert_eq!(
        footer::render(template, &view(), an_hour_later).unwrap(),
        "13620 1h13m 76"
    );
    // Past the reset the window's time is unknown, not negative.
    let after_reset = in_seconds(8_000);
    assert_eq!(footer::render(template, &view(), after_reset).unwrap(), "-- -- --");
}

#[test]
fn amount_windows_have_amounts_and_a_monthly_window_is_the_month_that_ends_at_its_reset() {
    assert_eq!(
        check("{copilot.premium.used}/{copilot.premium.total} {copilot.premium.remaining} left").unwrap(),
        "135/300 165 left"
    );
    assert_eq!(
        check("{copilot.premium.used_percent} {copilot.premium.remaining_percent}").unwrap(),
        "45 55"
    );
    assert_eq!(
        check("{copilot.premium.remaining_time_s} {copilot.premium.remaining_time}").unwrap(),
        "655200 7d14h"
    );
    // 2026-11-01 to 2026-12-01: 2 592 000 s, of which 1 936 800 have run
    // (74.72 %), though the response states no length.
    assert_eq!(
        check("{copilot.premium.used_time_s} {copilot.premium.total_time_s} {copilot.premium.progress}").unwrap(),
        "1936800 2592000 75"
    );
    assert_eq!(
        check("{copilot.premium.used_time} {copilot.premium.total_time}").unwrap(),
        "22d10h 30d"
    );
}

/// The status view's window `window` (quota `quota` of `provider`) derived
/// at `now()`.
fn derived(provider: ProviderId, quota: &str, window: Window) -> StatusWindow {
    let mut window = StatusWindow::from(Window {
        quota: Some(quota.to_owned()),
        ..window
    });
    derive_window(&mut window, provider.provider().quotas(), now());
    window
}

/// Its three time values and progress.
fn times(window: &StatusWindow) -> (Option<u64>, Option<u64>, Option<u64>, Option<f64>) {
    (
        window.used_time_s,
        window.remaining_time_s,
        window.total_time_s,
        window.progress,
    )
}

/// A window with no stated length, resetting at `reset`.
fn unstated(id: &str, reset: Option<Timestamp>) -> Window {
    Window {
        window_seconds: None,
        ..window(id, 0.5, reset)
    }
}

/// Each quota whose response gives a reset but no length gets one from its
/// provider's definition: Copilot's and Kiro's calendar month, Gemini's
/// day, Antigravity's five hours per model.
#[test]
fn every_quota_with_a_reset_and_no_stated_length_has_its_rule_s_length() {
    use ProviderId::*;
    let day = 86_400;
    // Resets on 2026-12-01: November, 30 days; 7d14h (655 200 s) left.
    let reset: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
    let november = 30 * day;
    let left = 655_200;
    let monthly = (Some(november - left), Some(left), Some(november), Some(74.722222));
    for (provider, quota) in [
        (Copilot, "premium"),
        (Copilot, "chat"),
        (Copilot, "other"),
        (Kiro, "usage"),
        (Kiro, "bonus"),
        (Kiro, "overage"),
        (Codex, "spend"),
        (Zai, "tools"),
    ] {
        let got = derived(provider, quota, unstated("w", Some(reset)));
        assert_eq!(times(&got), monthly, "{provider} {quota}");
    }
    // Gemini's daily quotas, per model and per family: 6 h left of a day.
    for quota in ["model", "pro", "flash"] {
        let got = derived(Gemini, quota, unstated("gemini-2.5-pro", Some(in_seconds(21_600))));
        assert_eq!(
            times(&got),
            (Some(64_800), Some(21_600), Some(day), Some(75.0)),
            "{quota}"
        );
    }
    // Antigravity's per-model quotas: 2 h left of 5 h.
    let got = derived(
        Antigravity,
        "model",
        unstated("claude-sonnet-4-5", Some(in_seconds(7_200))),
    );
    assert_eq!(times(&got), (Some(10_800), Some(7_200), Some(18_000), Some(60.0)));
    // No reset: a calendar month has no length, a fixed length stays.
    let got = derived(Copilot, "premium", unstated("premium", None));
    assert_eq!(times(&got), (None, None, None, None));
    let got = derived(Gemini, "model", unstated("gemini-2.5-pro", None));
    assert_eq!(times(&got), (None, None, Some(day), None));
    // Quotas with no rule: a stated length only (a Kiro trial, a Claude
    // credit grant, an Antigravity bucket that names none).
    for (provider, quota) in [(Kiro, "trial"), (Anthropic, "credits"), (Antigravity, "pool")] {
        let got = derived(provider, quota, unstated("w", Some(in_seconds(3_600))));
        assert_eq!(times(&got), (None, Some(3_600), None, None), "{provider} {quota}");
    }
    // A length the response states wins over the rule.
    let stated = Window {
        window_seconds: Some(7_200),
        ..unstated("gemini-2.5-pro", Some(in_seconds(3_600)))
    };
    let got = derived(Gemini, "model", stated);
    assert_eq!(times(&got), (Some(3_600), Some(3_600), Some(7_200), Some(50.0)));
}

/// A calendar month is the span from the same day and time one month
/// before the reset; a day the earlier month lacks is its last day.
#[test]
fn a_calendar_month_ends_at_the_reset_and_starts_a_month_before() {
    let month = |reset: &str| Length::CalendarMonth.seconds(Some(reset.parse().unwrap()));
    let day = 86_400;
    assert_eq!(month("2026-03-01T00:00:00Z"), Some(28 * day));
    assert_eq!(month("2028-03-01T00:00:00Z"), Some(29 * day));
    assert_eq!(month("2026-09-01T00:00:00Z"), Some(31 * day));
    assert_eq!(month("2026-10-01T00:00:00Z"), Some(30 * day));
    // 2026-02-28T12:00 (no 31st) to 2026-03-31T12:00.
    assert_eq!(month("2026-03-31T12:00:00Z"), Some(31 * day));
    // 2026-01-15T09:30 to 2026-02-15T09:30.
    assert_eq!(month("2026-02-15T09:30:00Z"), Some(31 * day));
    assert_eq!(Length::CalendarMonth.seconds(None), None);
    assert_eq!(Length::Stated.seconds(Some(now())), None);
    assert_eq!(Length::Seconds { seconds: 60 }.seconds(None), Some(60));
    assert_eq!(Length::Seconds { seconds: 0 }.seconds(None), None);
    // A definition's rule survives its JSON.
    for quota in ProviderId::ALL.iter().flat_map(|id| id.provider().quotas()) {
        let json = serde_json::to_string(&quota).unwrap();
        let back: quotatrack::quota::QuotaDefinition = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, quota, "{json}");
    }
    let monthly = quotatrack::quota::QuotaDefinition::monthly_amount("m", Unit::Credits);
    assert_eq!(
        serde_json::to_value(&monthly).unwrap()["length"],
        serde_json::json!({"rule": "calendar_month"})
    );
}

/// When the reset is further off than the window's length (Codex's review
/// week, a Kiro bonus expiring in 88 days under a monthly rule), the
/// length is the larger: the time left is kept as the provider says it,
/// none of the window has run, and what is left never exceeds the length.
#[test]
fn a_reset_further_off_than_the_length_makes_the_length_the_time_left() {
    // A week-long window resetting in eight days.
    let review = Window {
        window_seconds: Some(604_800),
        ..window("review-7d", 0.1, Some(in_seconds(691_200)))
    };
    let got = derived(ProviderId::Codex, "window", review);
    assert_eq!(times(&got), (Some(0), Some(691_200), Some(691_200), Some(0.0)));
    // A bonus expiring in 88 days, under the calendar-month rule (the
    // month before the expiry is 31 days).
    let bonus = unstated("bonus", Some(in_seconds(88 * 86_400)));
    let got = derived(ProviderId::Kiro, "bonus", bonus);
    assert_eq!(times(&got), (Some(0), Some(7_603_200), Some(7_603_200), Some(0.0)));
    // Exactly the length left: the window has just started.
    let fresh = Window {
        window_seconds: Some(604_800),
        ..window("7d", 0.0, Some(in_seconds(604_800)))
    };
    let got = derived(ProviderId::Codex, "window", fresh);
    assert_eq!(times(&got), (Some(0), Some(604_800), Some(604_800), Some(0.0)));
    // The footer says the same.
    let mut view = view();
    view.providers[0].windows.push(StatusWindow::from(Window {
        window_seconds: Some(604_800),
        ..window("review-7d", 0.1, Some(in_seconds(691_200)))
    }));
    assert_eq!(
        footer::render(
            "{anthropic.review-7d.remaining_time_s} {anthropic.review-7d.total_time_s} {anthropic.review-7d.used_time_s} {anthropic.review-7d.progress} {anthropic.review-7d.resets_in}",
            &view,
            now()
        )
        .unwrap(),
        "691200 691200 0 0 8d"
    );
}

#[test]
fn requests_left_for_a_model_is_what_is_left_over_its_multiplier() {
    // 165 left: Opus 4.5 costs 3 (55), Haiku 4.5 0.33 (500), Opus 4.1 10 (16).
    assert_eq!(
        check("{copilot.premium.requests_left.claude-opus-4.5} {copilot.premium.multiplier.claude-opus-4.5}").unwrap(),
        "55 3"
    );
    assert_eq!(
        check("{copilot.premium.requests_left.claude-haiku-4.5}").unwrap(),
        "500"
    );
    assert_eq!(check("{copilot.premium.requests_left.claude-opus-4.1}").unwrap(), "16");
    assert_eq!(
        check("{copilot.premium.requests_left.grok-code-fast-1}").unwrap(),
        "660"
    );
    // A free model has no limit.
    assert_eq!(
        check("{copilot.premium.requests_left.gpt-4o} {copilot.premium.multiplier.gpt-4o}").unwrap(),
        "unlimited 0"
    );
    // A host's spelling of a listed model finds its row; the longest row wins.
    assert_eq!(check("{copilot.premium.multiplier.claude-opus-4-5}").unwrap(), "3");
    assert_eq!(check("{copilot.premium.multiplier.Claude Haiku 4.5}").unwrap(), "0.33");
    assert_eq!(
        check("{copilot.premium.multiplier.gpt-5.1-codex-mini}").unwrap(),
        "0.33"
    );
    assert_eq!(check("{copilot.premium.multiplier.gpt-5.1-codex}").unwrap(), "1");
    // A model the table does not list costs one request.
    assert_eq!(check("{copilot.premium.requests_left.mystery-model}").unwrap(), "165");
}

#[test]
fn every_name_is_listed_for_every_window_and_every_row_of_the_table() {
    let values = footer::values(&view(), now());
    for window in ["5h", "7d", "7d-sonnet"] {
        for value in WINDOW_VALUES {
            assert!(
                values.contains_key(&format!("anthropic.{window}.{value}")),
                "{window}.{value}"
            );
        }
    }
    let rows = values
        .keys()
        .filter(|name| name.starts_with("copilot.premium.requests_left."))
        .count();
    assert_eq!(rows, 20, "one per row of Copilot's multiplier table");
    for value in MODEL_VALUES {
        assert!(
            values.contains_key(&format!("copilot.premium.{value}.gpt-5.2")),
            "{value}"
        );
    }
    // Percent windows have no multiplier table.
    assert!(!values.keys().any(|name| name.starts_with("anthropic.5h.requests_left")));
}

/// A template is resolved name by name, not through the whole table of
/// values: every name of the table renders to its value there, in the
/// test's view and in the demo's snapshot, at several clock readings.
#[test]
fn every_listed_name_renders_to_its_listed_value() {
    let demo = quotatrack::status::read_snapshot(crate::render::demo_dir())
        .unwrap()
        .unwrap();
    let clocks = ["2026-08-22T12:59:30Z", "2026-08-23T12:00:00Z", "2026-11-30T00:00:00Z"];
    let mut cases = vec![(view(), now()), (view(), in_seconds(8_000))];
    cases.extend(clocks.iter().map(|at| (demo.clone(), at.parse().unwrap())));
    let mut names = 0;
    for (view, at) in &cases {
        let values = footer::values(view, *at);
        for (name, value) in &values {
            let rendered = footer::render(&format!("[{{{name}}}]"), view, *at).unwrap();
            assert_eq!(rendered, format!("[{value}]"), "{name} at {at}");
        }
        names += values.len();
    }
    assert!(names > 1_500, "{names} names");
}

#[test]
fn provider_values_render() {
    assert_eq!(
        check("{anthropic.label} {anthropic.plan} {anthropic.state} {anthropic.age}").unwrap(),
        "Claude max fresh 42s"
    );
    assert_eq!(check("{gemini.state}").unwrap(), "auth_required");
}

#[test]
fn unknown_right_now_is_dashes_not_an_error() {
    // The 7d window reset five minutes ago: its old numbers say nothing,
    // though its length still does.
    assert_eq!(
        check("{anthropic.7d.used_percent} {anthropic.7d.resets_in} {anthropic.7d.progress}").unwrap(),
        "-- -- --"
    );
    assert_eq!(
        check("{anthropic.7d.used_time_s} {anthropic.7d.remaining_time_s} {anthropic.7d.total_time_s}").unwrap(),
        "-- -- 604800"
    );
    // Gemini has no windows yet; codex is not in the view at all.
    assert_eq!(
        check("{gemini.pro.used_percent} {codex.5h.used_time} {codex.premium.requests_left.gpt-5}").unwrap(),
        "-- -- --"
    );
}

#[test]
fn a_name_that_cannot_exist_is_an_error_naming_the_valid_ones() {
    let error = check("{anthropic.5h.usd}").unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("unknown footer value \"anthropic.5h.usd\""),
        "{message}"
    );
    assert!(message.contains("used_percent"), "{message}");
    assert!(message.contains("used_time_s"), "{message}");
    assert!(message.contains("requests_left"), "{message}");
    assert!(
        message.contains("windows now: anthropic: 5h, 7d, 7d-sonnet; copilot: premium"),
        "{message}"
    );
    assert!(matches!(check("{nobody.state}"), Err(FooterError::UnknownName { .. })));
    assert!(matches!(
        check("{anthropic.nope}"),
        Err(FooterError::UnknownName { .. })
    ));
    // Claude's windows have no multiplier table.
    assert!(matches!(
        check("{anthropic.5h.requests_left.claude-opus-4.5}"),
        Err(FooterError::UnknownName { .. })
    ));
    assert!(matches!(
        check("{copilot.premium.requests_left.}"),
        Err(FooterError::UnknownName { .. })
    ));
    assert_eq!(
        check("{anthropic.5h.used_percent"),
        Err(FooterError::Unclosed { position: 0 })
    );
}

/// `serve --stdio` as a real process: a host on Copilot's Claude Opus 4.5
/// is told what a request to its model costs and how many are left, in
/// the entry (`current_model`) and in the display string.
#[test]
fn the_hosts_copilot_model_shows_its_requests_left_in_serve_stdio() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = dir.path().join("fx");
    std::fs::create_dir_all(fixtures.join("copilot")).unwrap();
    std::fs::copy(
        crate::support::fixtures_dir().join("copilot/ok-paid.json"),
        fixtures.join("copilot/1.json"),
    )
    .unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "providers = [\"copilot\"]\n").unwrap();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let session = concat!(
        r#"{"type":"session_start"}"#,
        "\n",
        r#"{"type":"model_changed","provider":"github-copilot","model":"claude-opus-4-5"}"#,
        "\n",
        r#"{"type":"session_shutdown"}"#,
        "\n"
    );
    let output = crate::support::quotatrack(
        &[
            "--fixtures",
            &path(&fixtures),
            "--data-dir",
            &path(&dir.path().join("data")),
            "--config",
            &path(&config),
            "--clock-at",
            "2026-08-22T12:00:00Z",
            "serve",
            "--stdio",
        ],
        session.as_bytes(),
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let current = stdout
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .rfind(|event| event["type"] == "update_current" && event["provider"] == "copilot")
        .unwrap_or_else(|| panic!("no copilot update_current in {stdout}"));
    // 937.05 premium requests left; Opus 4.5 costs 3: 312 requests.
    let premium = &current["usage"]["windows"][0];
    assert_eq!(
        premium["current_model"],
        serde_json::json!({"model": "claude-opus-4-5", "matched": "claude-opus-4.5", "multiplier": 3.0, "requests_left": 312.0})
    );
    let display = current["display"].as_str().unwrap();
    assert!(display.ends_with("│ Model multiplier: 3x (312 req. left)"), "{display}");
    // update_all has no host model: no current_model there.
    assert!(
        !stdout
            .lines()
            .any(|line| line.contains("\"update_all\"") && line.contains("current_model"))
    );
}

/// The host's model finds its row of Copilot's table, or costs the
/// default multiplier (1) and the display string says it is the default.
#[test]
fn a_model_the_table_does_not_list_shows_the_default_multiplier() {
    let view = view();
    let copilot = &view.providers[1];
    let unlisted = status::for_model(copilot, "mystery-model-9");
    let current = unlisted.windows[0].current_model.as_ref().unwrap();
    assert_eq!(current.matched, None);
    assert_eq!(current.requests.multiplier, quotatrack::quota::DEFAULT_MULTIPLIER);
    let display = status::display(&unlisted, now());
    assert!(
        display.ends_with("│ Model multiplier: 1x default (165 req. left)"),
        "{display}"
    );
    let listed = status::display(&status::for_model(copilot, "claude-opus-4-5"), now());
    assert!(listed.ends_with("│ Model multiplier: 3x (55 req. left)"), "{listed}");
}
