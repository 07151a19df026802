//! Footer values and `status --format` templates over a status view at a
//! fixed clock: each value as a host footer would show it, unknown values
//! as `--`, and a name that cannot exist as an error naming what can.

use jiff::Timestamp;
use quotatrack::footer::{self, FooterError};
use quotatrack::providers::ProviderId;
use quotatrack::wire::{Freshness, ProviderStatus, Status};

use crate::projection::window;

fn now() -> Timestamp {
    "2026-11-23T10:00:00Z".parse().unwrap()
}

fn view() -> Status {
    let in_2h13m = now() + jiff::SignedDuration::from_secs(2 * 3600 + 13 * 60);
    let passed = now() - jiff::SignedDuration::from_mins(5);
    let mut passed_window = window("7d", 0.61, Some(passed));
    passed_window.used_ratio = None;
    passed_window.remaining_ratio = None;
    passed_window.reset_passed = true;
    let provider = |id: ProviderId, state, windows| ProviderStatus {
        id,
        label: id.provider().label().to_owned(),
        state,
        updated_at: None,
        age_s: Some(42),
        blocked_until: None,
        fails: 0,
        plan: Some("max".to_owned()),
        windows,
        status_page: None,
        error: None,
    };
    Status {
        schema: 1,
        generated_at: "2026-11-23T10:00:00Z".to_owned(),
        providers: vec![
            provider(
                ProviderId::Anthropic,
                Freshness::Fresh,
                vec![window("5h", 0.45, Some(in_2h13m)), passed_window],
            ),
            provider(ProviderId::Gemini, Freshness::AuthRequired, Vec::new()),
        ],
    }
}

/// The one helper: renders `template` against the fixed view.
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
    // Not a window measured in time.
    assert_eq!(check("{anthropic.5h.remaining_time}").unwrap(), "--");
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
    // The 7d window reset five minutes ago: its old numbers say nothing.
    assert_eq!(
        check("{anthropic.7d.used_percent} {anthropic.7d.resets_in}").unwrap(),
        "-- --"
    );
    // Gemini has no windows yet; codex is not in the view at all.
    assert_eq!(
        check("{gemini.pro.used_percent} {codex.5h.used_percent}").unwrap(),
        "-- --"
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
    assert!(message.contains("windows now: anthropic: 5h, 7d"), "{message}");
    assert!(matches!(check("{nobody.state}"), Err(FooterError::UnknownName { .. })));
    assert!(matches!(
        check("{anthropic.nope}"),
        Err(FooterError::UnknownName { .. })
    ));
    assert_eq!(
        check("{anthropic.5h.used_percent"),
        Err(FooterError::Unclosed { position: 0 })
    );
}
