//! Resolution against the tracker design's test vectors (`platform-tracker.md`
//! §3.2), the deliberate NaN change, multiplier and per-model quotas, and
//! the invariants every resolved window keeps.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use quotatrack::quota::{
    Aggregation, QuotaDefinition, QuotaKind, ResetBehavior, ResolvedUsageWindow, Unit, UsageSnapshot, WindowType,
    resolve_quota, resolve_usage_window,
};

fn amount(total: f64) -> QuotaDefinition {
    QuotaDefinition::new(
        "q",
        WindowType::Fixed,
        ResetBehavior::Calendar,
        QuotaKind::Amount {
            amount: total,
            unit: Unit::Requests,
        },
    )
}

fn duration(seconds: f64) -> QuotaDefinition {
    QuotaDefinition::new(
        "q",
        WindowType::Rolling,
        ResetBehavior::Continuous,
        QuotaKind::Duration { seconds },
    )
}

#[derive(Default, Clone, Copy)]
struct Given {
    remaining: Option<f64>,
    used: Option<f64>,
    remaining_ratio: Option<f64>,
    used_ratio: Option<f64>,
}

/// Resolves and compares `(remaining, used, remaining_ratio, used_ratio)`.
fn check(quota: QuotaDefinition, given: Given, expect: (f64, f64, f64, f64)) {
    let snapshot = UsageSnapshot {
        remaining: given.remaining,
        used: given.used,
        remaining_ratio: given.remaining_ratio,
        used_ratio: given.used_ratio,
        ..UsageSnapshot::of("q")
    };
    let window = resolve_usage_window(&quota, &snapshot);
    let got = (
        window.remaining.unwrap(),
        window.used.unwrap(),
        window.remaining_ratio,
        window.used_ratio,
    );
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    assert!(
        close(got.0, expect.0) && close(got.1, expect.1) && close(got.2, expect.2) && close(got.3, expect.3),
        "total {} {:?}: got {got:?}, expected {expect:?}",
        quota.total(),
        snapshot
    );
}

fn given() -> Given {
    Given::default()
}

#[test]
fn empty_snapshot_is_fully_used() {
    check(amount(100.0), given(), (0.0, 100.0, 0.0, 1.0));
}

#[test]
fn used_ratio_derives_amounts_of_a_duration() {
    let g = Given {
        used_ratio: Some(0.25),
        ..given()
    };
    check(duration(18000.0), g, (13500.0, 4500.0, 0.75, 0.25));
}

#[test]
fn percent_snapshot_matches_used_ratio() {
    let snapshot = UsageSnapshot::of("q").used_percent(25.0);
    let window = resolve_usage_window(&duration(18000.0), &snapshot);
    assert_eq!((window.remaining, window.used), (Some(13500.0), Some(4500.0)));
    assert_eq!((window.remaining_ratio, window.used_ratio), (0.75, 0.25));
}

#[test]
fn remaining_ratio_derives_everything() {
    let g = Given {
        remaining_ratio: Some(0.4),
        ..given()
    };
    check(amount(300.0), g, (120.0, 180.0, 0.4, 0.6));
}

#[test]
fn remaining_amount_derives_everything() {
    let g = Given {
        remaining: Some(120.0),
        ..given()
    };
    check(amount(300.0), g, (120.0, 180.0, 0.4, 0.6));
}

#[test]
fn overuse_is_kept_uncapped_while_ratios_clamp() {
    let g = Given {
        used: Some(450.0),
        ..given()
    };
    check(amount(300.0), g, (0.0, 450.0, 0.0, 1.0));
}

#[test]
fn remaining_above_total_is_kept() {
    let g = Given {
        remaining: Some(500.0),
        ..given()
    };
    check(amount(300.0), g, (500.0, 0.0, 1.0, 0.0));
}

#[test]
fn negative_remaining_floors_at_zero_and_counts_as_overuse() {
    let g = Given {
        remaining: Some(-5.0),
        ..given()
    };
    check(amount(300.0), g, (0.0, 305.0, 0.0, 1.0));
}

#[test]
fn used_ratio_above_one_clamps() {
    let g = Given {
        used_ratio: Some(1.3),
        ..given()
    };
    check(amount(100.0), g, (0.0, 100.0, 0.0, 1.0));
}

#[test]
fn negative_used_ratio_clamps() {
    let g = Given {
        used_ratio: Some(-0.2),
        ..given()
    };
    check(amount(100.0), g, (100.0, 0.0, 1.0, 0.0));
}

#[test]
fn conflicting_explicit_values_each_win_their_field() {
    let g = Given {
        remaining: Some(120.0),
        used_ratio: Some(0.9),
        ..given()
    };
    check(amount(300.0), g, (120.0, 180.0, 0.4, 0.9));
}

#[test]
fn zero_duration_keeps_used_and_derives_no_ratio() {
    let g = Given {
        used: Some(5.0),
        ..given()
    };
    check(duration(0.0), g, (0.0, 5.0, 0.0, 1.0));
}

#[test]
fn zero_total_keeps_explicit_ratio_and_zero_amounts() {
    let g = Given {
        used_ratio: Some(0.5),
        ..given()
    };
    check(amount(0.0), g, (0.0, 0.0, 0.5, 0.5));
}

/// JavaScript kept NaN as a present value and returned (0, 0, 0, 0); we treat
/// a non-finite value as absent, so the snapshot is empty: fully used.
#[test]
fn nan_used_ratio_counts_as_absent() {
    let g = Given {
        used_ratio: Some(f64::NAN),
        ..given()
    };
    check(amount(100.0), g, (0.0, 100.0, 0.0, 1.0));
}

/// JavaScript returned NaN amounts here; we never produce a non-finite number.
#[test]
fn nan_remaining_counts_as_absent() {
    let g = Given {
        remaining: Some(f64::NAN),
        ..given()
    };
    check(amount(100.0), g, (0.0, 100.0, 0.0, 1.0));
}

#[test]
fn explicit_copilot_zero_multiplier_values_pass_through() {
    let g = Given {
        remaining: Some(600.0),
        used: Some(0.0),
        remaining_ratio: Some(0.455),
        used_ratio: Some(0.545),
    };
    check(amount(300.0), g, (600.0, 0.0, 0.455, 0.545));
}

fn copilot_like() -> QuotaDefinition {
    let multipliers = BTreeMap::from([
        ("gpt-4o".to_owned(), 0.0),
        ("claude-sonnet-4.5".to_owned(), 1.0),
        ("claude-opus-4.1".to_owned(), 10.0),
    ]);
    QuotaDefinition::new(
        "premium",
        WindowType::Fixed,
        ResetBehavior::Calendar,
        QuotaKind::Multiplier {
            base_amount: 300.0,
            multipliers,
        },
    )
}

fn requests(pairs: &[(&str, f64)]) -> UsageSnapshot {
    UsageSnapshot {
        requests_by_model: pairs.iter().map(|(m, r)| ((*m).to_owned(), *r)).collect(),
        ..UsageSnapshot::of("premium")
    }
}

#[test]
fn multiplier_use_is_requests_times_multiplier() {
    let quota = copilot_like();
    let snapshot = requests(&[("gpt-4o", 50.0), ("claude-sonnet-4.5", 20.0), ("claude-opus-4.1", 3.0)]);
    let window = resolve_usage_window(&quota, &snapshot);
    assert_eq!(window.used, Some(50.0));
    assert_eq!(window.remaining, Some(250.0));
    assert!((window.used_ratio - 50.0 / 300.0).abs() < 1e-12);
    assert_eq!(quota.requests_left_for("claude-opus-4.1", 250.0), Some(25.0));
}

#[test]
fn zero_multiplier_model_consumes_nothing() {
    let quota = copilot_like();
    let window = resolve_usage_window(&quota, &requests(&[("gpt-4o", 1000.0)]));
    assert_eq!((window.used, window.remaining_ratio), (Some(0.0), 1.0));
    assert_eq!(
        quota.requests_left_for("gpt-4o", 0.0),
        None,
        "a 0x model is never limited"
    );
}

#[test]
fn unlisted_model_costs_one_request() {
    let window = resolve_usage_window(&copilot_like(), &requests(&[("some-new-model", 7.0)]));
    assert_eq!(window.used, Some(7.0));
}

fn per_model(aggregation: Aggregation) -> QuotaDefinition {
    QuotaDefinition::new(
        "family",
        WindowType::Fixed,
        ResetBehavior::Calendar,
        QuotaKind::PerModel { aggregation },
    )
}

fn model_windows(aggregation: Aggregation) -> Vec<ResolvedUsageWindow> {
    let a = UsageSnapshot::of("family").model("a").amounts(Some(100.0), Some(20.0));
    let b = UsageSnapshot::of("family").model("b").amounts(Some(100.0), Some(70.0));
    resolve_quota(&per_model(aggregation), &[&a, &b])
}

#[test]
fn per_model_min_picks_the_most_constrained_model() {
    let windows = model_windows(Aggregation::Min);
    assert_eq!(windows.len(), 1);
    assert_eq!(
        (windows[0].id.as_str(), windows[0].model.as_deref()),
        ("family", Some("b"))
    );
    assert!((windows[0].remaining_ratio - 0.3).abs() < 1e-12);
}

#[test]
fn per_model_max_picks_the_least_constrained_model() {
    let windows = model_windows(Aggregation::Max);
    assert_eq!(windows[0].model.as_deref(), Some("a"));
}

#[test]
fn per_model_sum_adds_amounts_and_recomputes_ratios() {
    let windows = model_windows(Aggregation::Sum);
    assert_eq!(windows.len(), 1);
    assert_eq!((windows[0].used, windows[0].limit), (Some(90.0), Some(200.0)));
    assert!((windows[0].used_ratio - 0.45).abs() < 1e-12);
}

#[test]
fn per_model_individual_keeps_every_model() {
    let windows = model_windows(Aggregation::Individual);
    let models: Vec<_> = windows.iter().map(|w| w.model.as_deref()).collect();
    assert_eq!(models, [Some("a"), Some("b")]);
}

#[test]
fn unlimited_snapshot_has_no_limit_and_nothing_used() {
    let snapshot = UsageSnapshot {
        unlimited: true,
        ..UsageSnapshot::of("q")
    };
    let window = resolve_usage_window(&amount(300.0), &snapshot);
    assert_eq!((window.limit, window.remaining, window.used_ratio), (None, None, 0.0));
}

#[test]
fn quota_definitions_round_trip_through_serde_for_every_kind() {
    let quotas = [
        duration(18000.0),
        amount(300.0),
        QuotaDefinition::new(
            "p",
            WindowType::Session,
            ResetBehavior::SessionStart,
            QuotaKind::PercentageOnly,
        ),
        copilot_like(),
        per_model(Aggregation::Sum),
    ];
    for quota in quotas {
        let json = serde_json::to_string(&quota).unwrap();
        let back: QuotaDefinition = serde_json::from_str(&json).unwrap();
        assert_eq!(back, quota, "{json}");
    }
    let json = serde_json::to_value(duration(18000.0)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"id":"q","window_type":"rolling","reset_behavior":"continuous","kind":"duration","seconds":18000.0})
    );
}

#[test]
fn type_guards_name_exactly_one_kind() {
    let quotas = [
        duration(1.0),
        amount(1.0),
        QuotaDefinition::new(
            "p",
            WindowType::Fixed,
            ResetBehavior::Calendar,
            QuotaKind::PercentageOnly,
        ),
        copilot_like(),
        per_model(Aggregation::Min),
    ];
    for (index, quota) in quotas.iter().enumerate() {
        let guards = [
            quota.is_duration(),
            quota.is_amount(),
            quota.is_percentage_only(),
            quota.is_multiplier(),
            quota.is_per_model(),
        ];
        let expected: Vec<bool> = (0..5).map(|i| i == index).collect();
        assert_eq!(guards.to_vec(), expected, "{quota:?}");
    }
}

fn any_number() -> impl Strategy<Value = f64> {
    prop_oneof![any::<f64>(), -1e6..1e6f64, -0.5..1.5f64, Just(0.0)]
}

fn any_quota() -> impl Strategy<Value = QuotaDefinition> {
    prop_oneof![
        any_number().prop_map(duration),
        any_number().prop_map(amount),
        Just(QuotaDefinition::new(
            "q",
            WindowType::Fixed,
            ResetBehavior::Calendar,
            QuotaKind::PercentageOnly
        )),
        any_number().prop_map(|base_amount| QuotaDefinition::new(
            "q",
            WindowType::Fixed,
            ResetBehavior::Calendar,
            QuotaKind::Multiplier {
                base_amount,
                multipliers: BTreeMap::from([("m".to_owned(), 2.0)])
            }
        )),
    ]
}

fn any_snapshot() -> impl Strategy<Value = UsageSnapshot> {
    let field = || prop::option::of(any_number());
    (
        field(),
        field(),
        field(),
        field(),
        field(),
        prop::option::of(any_number()),
    )
        .prop_map(
            |(remaining, used, remaining_ratio, used_ratio, limit, requests)| UsageSnapshot {
                remaining,
                used,
                remaining_ratio,
                used_ratio,
                limit,
                requests_by_model: requests
                    .map(|r| BTreeMap::from([("m".to_owned(), r)]))
                    .unwrap_or_default(),
                ..UsageSnapshot::of("q")
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn resolved_numbers_stay_in_range(quota in any_quota(), snapshot in any_snapshot()) {
        let window = resolve_usage_window(&quota, &snapshot);
        prop_assert!((0.0..=1.0).contains(&window.used_ratio));
        prop_assert!((0.0..=1.0).contains(&window.remaining_ratio));
        for value in [window.used, window.remaining, window.limit].into_iter().flatten() {
            prop_assert!(value.is_finite() && value >= 0.0, "{value} in {window:?}");
        }
    }

    #[test]
    fn explicit_in_range_values_are_preserved(quota in any_quota(), snapshot in any_snapshot()) {
        let window = resolve_usage_window(&quota, &snapshot);
        let in_unit = |v: Option<f64>| v.filter(|v| (0.0..=1.0).contains(v));
        let non_negative = |v: Option<f64>| v.filter(|v| v.is_finite() && *v >= 0.0);
        if let Some(ratio) = in_unit(snapshot.used_ratio) {
            prop_assert_eq!(window.used_ratio, ratio);
        }
        if let Some(ratio) = in_unit(snapshot.remaining_ratio) {
            prop_assert_eq!(window.remaining_ratio, ratio);
        }
        if let Some(used) = non_negative(snapshot.used) {
            prop_assert_eq!(window.used, Some(used));
        }
        if let Some(remaining) = non_negative(snapshot.remaining) {
            prop_assert_eq!(window.remaining, Some(remaining));
        }
    }
}
