//! Every recorded provider response parses to its reviewed snapshot (one
//! insta snapshot per fixture) and to the outcome its file name promises;
//! the general parser rules (zone-less timestamps, Antigravity buckets
//! without a window, Copilot resets and unknown quotas, z.ai counts) hold
//! for variants of those bodies too.

use jiff::Timestamp;
use quotatrack::providers::{ParsedUsage, ProviderId};
use quotatrack::wire::ParseOutput;
use serde_json::{Value, json};

use crate::support::{Expect, Fixture, all_fixtures, assert_windows_in_range, check, fixtures_dir};

#[test]
fn every_fixture_matches_its_snapshot() {
    insta::glob!("../fixtures/providers", "*/*.json", |path| {
        let fixture = Fixture::load(path);
        let output = ParseOutput::new(fixture.provider, &check(&fixture));
        insta::assert_json_snapshot!(output);
    });
}

#[test]
fn every_fixture_has_the_outcome_its_name_promises() {
    for fixture in all_fixtures() {
        match (fixture.expect(), check(&fixture)) {
            (Expect::Usage, Ok(usage)) => assert_windows_in_range(&usage),
            (Expect::Error(kind), Err(error)) => {
                assert_eq!(error.kind().as_str(), kind, "{}: {error}", fixture.name())
            }
            (expect, got) => panic!("{}: expected {expect:?}, got {got:?}", fixture.path.display()),
        }
    }
}

#[test]
fn each_provider_has_five_successes_and_three_error_kinds() {
    let fixtures = all_fixtures();
    for provider in ProviderId::ALL {
        let mine: Vec<_> = fixtures.iter().filter(|f| f.provider == provider).collect();
        let successes = mine.iter().filter(|f| f.expect() == Expect::Usage).count();
        let mut kinds: Vec<_> = mine
            .iter()
            .filter_map(|f| match f.expect() {
                Expect::Error(kind) => Some(kind),
                Expect::Usage => None,
            })
            .collect();
        kinds.sort();
        kinds.dedup();
        assert!(successes >= 5, "{provider}: {successes} success fixtures");
        assert!(kinds.len() >= 3, "{provider}: error kinds {kinds:?}");
    }
}

#[test]
fn fixture_files_hold_no_secrets() {
    let secret_shapes = ["sk-ant-", "ghu_", "gho_", "ya29.", "eyJhbGci", "Bearer "];
    for fixture in all_fixtures() {
        let text = std::fs::read_to_string(&fixture.path).unwrap();
        for shape in secret_shapes {
            assert!(!text.contains(shape), "{} contains {shape:?}", fixture.path.display());
        }
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let auth = &json["request"]["headers"]["authorization"];
        assert!(auth.is_null() || auth == "[redacted]", "{}", fixture.path.display());
    }
}

#[test]
fn every_provider_declares_its_request_and_quotas() {
    for id in ProviderId::ALL {
        let provider = id.provider();
        assert_eq!(provider.id(), id);
        assert!(!provider.quotas().is_empty(), "{id}");
        let request = provider.request();
        assert!(request.url().starts_with("https://"), "{id}: {}", request.url());
    }
    let claude = ProviderId::Anthropic.provider().request();
    let header = |name: &str| claude.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    assert_eq!(header("anthropic-beta"), Some("oauth-2025-04-20"));
    assert!(header("user-agent").is_some_and(|ua| ua.starts_with("claude-code/")));
}

/// The fixture `<provider>/<name>.json` with its body changed by `edit`.
fn variant(provider: ProviderId, name: &str, edit: impl FnOnce(&mut Value)) -> Fixture {
    let fixture = Fixture::load(&fixtures_dir().join(provider.as_str()).join(format!("{name}.json")));
    let mut body: Value = serde_json::from_slice(&fixture.body).unwrap();
    edit(&mut body);
    fixture.with_body(serde_json::to_vec(&body).unwrap())
}

/// The fixture's body with the value at `pointer` replaced.
fn with_value(provider: ProviderId, name: &str, pointer: &str, value: Value) -> Fixture {
    variant(provider, name, |body| {
        *body
            .pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{name}: no {pointer}")) = value;
    })
}

fn parsed(fixture: &Fixture) -> ParsedUsage {
    check(fixture).unwrap_or_else(|error| panic!("{}: {error}", fixture.path.display()))
}

fn ids(usage: &ParsedUsage) -> Vec<&str> {
    usage.windows.iter().map(|w| w.id.as_str()).collect()
}

/// Every provider's reset field read as a zone-less time keeps its time of
/// day, in UTC, whatever the fraction or separator.
#[test]
fn a_zoneless_reset_is_utc_with_its_time_of_day_in_every_provider() {
    use ProviderId::*;
    let fields = [
        (Anthropic, "ok-full", "/five_hour/resets_at"),
        (Antigravity, "ok-models", "/models/gemini-3-pro-low/quotaInfo/resetTime"),
        (Antigravity, "ok-summary", "/groups/0/buckets/0/resetTime"),
        (Codex, "ok-plus", "/rate_limit/primary_window/reset_at"),
        (Copilot, "ok-paid", "/quota_reset_date_utc"),
        (Gemini, "ok-quota", "/buckets/0/resetTime"),
        (Kiro, "ok-free", "/nextDateReset"),
        (Zai, "ok-credit-limit", "/data/limits/1/nextResetTime"),
    ];
    let texts = [
        ("2026-08-23T07:15:30.123456", "2026-08-23T07:15:30.123456Z"),
        ("2026-08-23T07:15:30", "2026-08-23T07:15:30Z"),
        ("2026-08-23 07:15:30", "2026-08-23T07:15:30Z"),
        ("2026-08-23T07:15:30.1", "2026-08-23T07:15:30.1Z"),
        ("2026-08-23 07:15:30.123456789012", "2026-08-23T07:15:30.123456789Z"),
    ];
    for (provider, name, pointer) in fields {
        for (text, expect) in texts {
            let usage = parsed(&with_value(provider, name, pointer, json!(text)));
            let expect: Timestamp = expect.parse().unwrap();
            assert!(
                usage.windows.iter().any(|w| w.resets_at == Some(expect)),
                "{provider} {name} {pointer} = {text:?}: {:?}",
                usage.windows.iter().map(|w| w.resets_at).collect::<Vec<_>>()
            );
        }
    }
}

/// Summary buckets with no `window` are known by id or display name; the
/// ids are those of buckets that have one.
#[test]
fn antigravity_buckets_without_a_window_are_known_by_id_or_name() {
    let summary = |groups: Value| {
        variant(ProviderId::Antigravity, "ok-summary", |body| {
            *body = json!({ "groups": groups })
        })
    };
    let bucket = |key: &str, name: &str, fraction: f64| json!({ key: name, "remainingFraction": fraction, "resetTime": "2026-08-22T16:00:00Z" });
    let cases = [
        (
            json!([{ "buckets": [
                bucket("bucketId", "gemini-5h", 0.5), bucket("bucketId", "gemini-weekly", 0.5),
                bucket("bucketId", "3p-5h", 0.5), bucket("bucketId", "3p-weekly", 0.5),
            ]}]),
            vec!["5h-gemini", "7d-gemini", "5h-3p", "7d-3p"],
        ),
        (
            json!([
                { "displayName": "Gemini models", "buckets": [bucket("displayName", "5-hour", 0.5), bucket("displayName", "Weekly", 0.5)] },
                { "displayName": "Claude and other models", "buckets": [bucket("displayName", "5 hours", 0.5), bucket("displayName", "7-day limit", 0.5)] },
            ]),
            vec!["5h-gemini", "7d-gemini", "5h-3p", "7d-3p"],
        ),
        (
            json!([{ "buckets": [
                bucket("bucketId", "gemini_session", 0.5), bucket("bucketId", "gemini-5h limit", 0.5),
                bucket("bucketId", "claude-weekly", 0.5), bucket("bucketId", "THIRD_PARTY_FIVE_HOUR", 0.5),
            ]}]),
            vec!["5h-gemini", "5h-gemini-2", "7d-3p", "5h-3p"],
        ),
        (
            json!([{ "displayName": "Gemini models", "buckets": [
                bucket("bucketId", "gemini-image-5h", 0.5), bucket("bucketId", "Nano Banana Pro", 0.5),
                bucket("displayName", "Deep Research", 0.5),
            ]}]),
            vec!["gemini-image-5h", "nano-banana-pro", "deep-research"],
        ),
        (
            // A window that names no length: the name decides, and a bucket
            // that is no pool stays out.
            json!([{ "buckets": [
                { "bucketId": "gemini-5h", "window": "WINDOW_UNSPECIFIED", "remainingFraction": 0.5 },
                { "bucketId": "mystery", "window": "fortnight", "remainingFraction": 0.5 },
                { "bucketId": "3p-weekly", "window": 604800, "remainingFraction": 0.5 },
            ]}]),
            vec!["5h-gemini", "7d-3p"],
        ),
    ];
    for (groups, expect) in cases {
        let usage = parsed(&summary(groups.clone()));
        assert_eq!(ids(&usage), expect, "{groups}");
        assert_windows_in_range(&usage);
    }
    // The length comes with the id: a known bucket is 5 h or a week long.
    let usage = parsed(&summary(
        json!([{ "buckets": [bucket("bucketId", "3p-weekly", 0.25)] }]),
    ));
    assert_eq!(usage.windows[0].window_seconds, Some(604_800));
    assert_eq!(usage.windows[0].used_ratio, 0.75);
}

/// A Copilot body with no reset date, an empty or a null one, has windows
/// with no reset; keys it does not know are windows of their own.
#[test]
fn copilot_states_a_reset_only_when_the_body_does_and_reads_unknown_quotas() {
    let no_reset = |value: Option<Value>| {
        variant(ProviderId::Copilot, "ok-paid", |body| {
            for key in ["quota_reset_date", "quota_reset_date_utc"] {
                match &value {
                    Some(value) => body[key] = value.clone(),
                    None => drop(body.as_object_mut().unwrap().remove(key)),
                }
            }
        })
    };
    for value in [
        None,
        Some(json!("")),
        Some(json!(null)),
        Some(json!("  ")),
        Some(json!(0)),
    ] {
        let usage = parsed(&no_reset(value.clone()));
        assert!(
            usage.windows.iter().all(|w| w.resets_at.is_none()),
            "{value:?}: {:?}",
            usage.windows
        );
    }
    let legacy = variant(ProviderId::Copilot, "ok-free-legacy-monthly", |body| {
        body.as_object_mut().unwrap().remove("limited_user_reset_date");
    });
    assert!(parsed(&legacy).windows.iter().all(|w| w.resets_at.is_none()));

    let extra = variant(ProviderId::Copilot, "ok-paid", |body| {
        body["quota_snapshots"]["Spark Sessions"] = json!({ "entitlement": 20, "remaining": 5, "unlimited": false });
        body["quota_snapshots"]["agent_mode"] =
            json!({ "entitlement": 100, "percent_remaining": 40.0, "quota_remaining": 40.0, "unlimited": false });
        body["quota_snapshots"]["web_search"] = json!({ "entitlement": 0, "unlimited": true });
        body["quota_snapshots"]["not_an_object"] = json!("n/a");
    });
    let usage = parsed(&extra);
    // Each by its own name, exactly as the body spells it.
    assert_eq!(ids(&usage), ["premium", "Spark Sessions", "agent_mode"]);
    let spark = &usage.windows[1];
    assert_eq!(
        (spark.used, spark.remaining, spark.limit),
        (Some(15.0), Some(5.0), Some(20.0))
    );
    assert_eq!(spark.used_ratio, 0.75);
    assert_eq!(usage.windows[2].used_ratio, 0.6);
    assert_eq!(
        spark.resets_at, usage.windows[0].resets_at,
        "the body's reset applies to every quota"
    );
}

/// An unknown Copilot key is a window under the key itself, never a slug
/// of it (two keys a slug would merge stay two windows); an empty key, or
/// one naming a window already read, is no window of its own.
#[test]
fn copilot_unknown_keys_keep_their_own_names() {
    let bucket = |left: f64| json!({ "entitlement": 100, "quota_remaining": left, "percent_remaining": left, "unlimited": false });
    let usage = parsed(&variant(ProviderId::Copilot, "ok-paid", |body| {
        let snapshots = &mut body["quota_snapshots"];
        snapshots["fancy_new_thing"] = bucket(10.0);
        snapshots["fancy-new-thing"] = bucket(20.0);
        snapshots["Fancy.New Thing"] = bucket(30.0);
        snapshots[""] = bucket(40.0);
        snapshots["premium"] = bucket(50.0);
    }));
    assert_eq!(
        ids(&usage),
        ["premium", "Fancy.New Thing", "fancy-new-thing", "fancy_new_thing"]
    );
    let used: Vec<f64> = usage.windows.iter().map(|w| w.used_ratio).collect();
    assert_eq!(used[1..], [0.7, 0.8, 0.9]);
    assert_eq!(usage.windows[3].label, "Fancy new thing");
    assert_eq!(usage.windows[3].quota, "other");
}

/// A Copilot bucket's two ratios come from one source and add up to 1:
/// the stated percentage when there is one (whatever the balance says),
/// else the balance over the entitlement; overage keeps them in 0..1.
#[test]
fn copilot_used_and_remaining_ratios_add_up_to_one() {
    let premium = |bucket: Value| {
        let usage = parsed(&variant(ProviderId::Copilot, "ok-paid", |body| {
            body["quota_snapshots"]["premium_interactions"] = bucket;
        }));
        let window = usage.windows.into_iter().find(|w| w.id == "premium").unwrap();
        (window.used_ratio, window.remaining_ratio, window.remaining)
    };
    let cases = [
        // The percentage and the balance disagree: the percentage rules both.
        (
            json!({ "entitlement": 1000, "percent_remaining": 40.0, "quota_remaining": 900.0 }),
            (0.6, 0.4, Some(900.0)),
        ),
        (
            json!({ "entitlement": 300, "percent_remaining": 99.3, "quota_remaining": 198.6, "remaining": 198 }),
            (0.007, 0.993, Some(198.6)),
        ),
        // Overage: 115 % used.
        (
            json!({ "entitlement": 300, "percent_remaining": -15.0, "quota_remaining": 0.0 }),
            (1.0, 0.0, Some(0.0)),
        ),
        // No percentage: the balance.
        (
            json!({ "entitlement": 200, "quota_remaining": 50.0 }),
            (0.75, 0.25, Some(50.0)),
        ),
        (
            json!({ "entitlement": 200, "remaining": 150 }),
            (0.25, 0.75, Some(150.0)),
        ),
        // No balance: the percentage, and the amounts from it.
        (
            json!({ "entitlement": 200, "percent_remaining": 30.0 }),
            (0.7, 0.3, Some(60.0)),
        ),
    ];
    for (bucket, (used, remaining, left)) in cases {
        let got = premium(bucket.clone());
        assert!((got.0 - used).abs() < 1e-9, "{bucket}: {got:?}");
        assert!((got.1 - remaining).abs() < 1e-9, "{bucket}: {got:?}");
        assert!((got.0 + got.1 - 1.0).abs() < 1e-9, "{bucket}: {got:?}");
        assert_eq!(got.2.map(|l| (l * 1e6).round() / 1e6), left, "{bucket}");
    }
}

/// z.ai limits with counts but no percentage have a used share from the
/// counts, whichever counts are given.
#[test]
fn zai_counts_without_a_percentage_give_the_used_share() {
    let limit = |counts: Value| {
        variant(ProviderId::Zai, "ok-credit-limit", |body| {
            let mut entry = json!({ "type": "CREDIT_LIMIT", "unit": 3, "number": 5 });
            entry
                .as_object_mut()
                .unwrap()
                .extend(counts.as_object().unwrap().clone());
            body["data"]["limits"] = json!([entry]);
        })
    };
    let cases = [
        (json!({ "usage": 2000, "currentValue": 500 }), 0.25),
        (json!({ "usage": 2000, "remaining": 1500 }), 0.25),
        (json!({ "currentValue": 500, "remaining": 1500 }), 0.25),
        (json!({ "total": 2000, "currentValue": 500 }), 0.25),
        (json!({ "total": 2000, "remaining": 1500 }), 0.25),
        (json!({ "total": 2000, "usage": 500 }), 0.25),
        (
            json!({ "usage": "2000", "currentValue": "500", "remaining": "1500" }),
            0.25,
        ),
        (json!({ "usage": 2000, "currentValue": 2600, "remaining": 0 }), 1.0),
        (json!({ "usage": 1000, "currentValue": 0, "remaining": 1000 }), 0.0),
    ];
    for (counts, expect) in cases {
        let usage = parsed(&limit(counts.clone()));
        assert_eq!(ids(&usage), ["5h"], "{counts}");
        let window = &usage.windows[0];
        assert!((window.used_ratio - expect).abs() < 1e-9, "{counts}: {window:?}");
        assert_eq!(window.window_seconds, Some(18_000));
    }
    // A percentage, when there, is the share; too little to derive is no window.
    let stated = parsed(&limit(json!({ "usage": 2000, "currentValue": 500, "percentage": 30 })));
    assert_eq!(stated.windows[0].used_ratio, 0.3);
    for counts in [
        json!({ "currentValue": 500 }),
        json!({ "usage": 0, "currentValue": 0 }),
        json!({ "remaining": 10 }),
    ] {
        assert!(check(&limit(counts.clone())).is_err(), "{counts}");
    }
    // Tool calls: `usage` is the allowance there too.
    let tools = variant(ProviderId::Zai, "ok-credit-limit", |body| {
        body["data"]["limits"] =
            json!([{ "type": "TIME_LIMIT", "unit": 5, "number": 1, "usage": 1000, "remaining": 900 }]);
    });
    let usage = parsed(&tools);
    assert_eq!(ids(&usage), ["tools"]);
    assert!((usage.windows[0].used_ratio - 0.1).abs() < 1e-9);
}

/// Every string in `value`, however deep.
fn strings(value: &Value) -> Vec<&str> {
    match value {
        Value::String(text) => vec![text.as_str()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::Object(map) => map.values().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// A date and time of day with no zone (`2026-08-23 07:15:30.5`).
fn zoneless(text: &str) -> bool {
    let bytes = text.as_bytes();
    let shape = |at: usize, c: u8| bytes.get(at) == Some(&c);
    let digits = |range: std::ops::Range<usize>| range.clone().all(|i| bytes.get(i).is_some_and(u8::is_ascii_digit));
    text.len() >= 16
        && digits(0..4)
        && shape(4, b'-')
        && shape(7, b'-')
        && (shape(10, b'T') || shape(10, b' '))
        && digits(11..13)
        && shape(13, b':')
        && !text.ends_with('Z')
        && !text[10..].contains(['+', '-'])
}

fn body_of(fixture: &Fixture) -> Value {
    serde_json::from_slice(&fixture.body).unwrap()
}

/// Issue 19's parser rules (items 13-16) each have at least two bundled
/// fixtures of their own, and each of those fixtures shows its rule in
/// what `parse` gives: zone-less resets keep their time of day in UTC,
/// summary buckets without a `window` are pools by id or name, a Copilot
/// body with no reset date has no reset, unknown Copilot keys are windows
/// by their own names, and z.ai counts without a percentage give the used
/// share.
#[test]
fn each_parser_rule_has_two_fixtures_of_its_own() {
    use ProviderId::*;
    let load = |provider: ProviderId, name: &str| {
        Fixture::load(&fixtures_dir().join(provider.as_str()).join(format!("{name}.json")))
    };
    // 13: every zone-less time in the body is a reset, to the minute, in UTC.
    let naive = [
        (Anthropic, "ok-naive-timestamps"),
        (Gemini, "ok-naive-reset-times"),
        (Kiro, "ok-naive-iso-reset"),
    ];
    for (provider, name) in naive {
        let fixture = load(provider, name);
        let body = body_of(&fixture);
        let texts: Vec<&str> = strings(&body).into_iter().filter(|t| zoneless(t)).collect();
        assert!(!texts.is_empty(), "{name}: no zone-less time");
        let resets: Vec<String> = parsed(&fixture)
            .windows
            .iter()
            .filter_map(|w| w.resets_at)
            .map(|at| at.strftime("%Y-%m-%d %H:%M").to_string())
            .collect();
        for text in texts {
            let minute = text[..16].replace('T', " ");
            assert!(resets.contains(&minute), "{name}: {text} not in {resets:?}");
        }
    }
    // 14: no bucket has a `window`, yet pools come out with their lengths.
    let unwindowed = [
        "ok-summary-bucket-ids-only",
        "ok-summary-display-names-only",
        "ok-summary-unknown-buckets",
    ];
    for name in unwindowed {
        let fixture = load(Antigravity, name);
        assert!(!String::from_utf8_lossy(&fixture.body).contains("\"window\""), "{name}");
        let usage = parsed(&fixture);
        let pools: Vec<_> = usage
            .windows
            .iter()
            .filter(|w| ["5h-gemini", "7d-gemini", "5h-3p", "7d-3p"].contains(&w.id.as_str()))
            .collect();
        assert!(pools.len() >= 2, "{name}: {:?}", ids(&usage));
        assert!(
            pools.iter().all(|w| matches!(w.window_seconds, Some(18_000 | 604_800))),
            "{name}"
        );
    }
    // 15: no reset date, or an empty one, and no window has a reset.
    for name in [
        "ok-free-no-reset-date",
        "ok-no-percent-no-reset-date",
        "ok-reset-date-null",
    ] {
        let fixture = load(Copilot, name);
        let body = body_of(&fixture);
        for key in ["quota_reset_date", "quota_reset_date_utc"] {
            assert!(body.get(key).is_none_or(|v| v.is_null() || v == ""), "{name} {key}");
        }
        let usage = parsed(&fixture);
        assert!(usage.windows.iter().all(|w| w.resets_at.is_none()), "{name}");
    }
    // 15: every metered key Copilot's table does not know is a window of
    // that very name.
    for name in ["ok-unknown-snapshot-keys", "ok-unknown-keys-own-names"] {
        let fixture = load(Copilot, name);
        let body = body_of(&fixture);
        let usage = parsed(&fixture);
        let unknown: Vec<&String> = body["quota_snapshots"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(key, bucket)| {
                !["premium_interactions", "chat", "completions"].contains(&key.as_str())
                    && bucket["unlimited"] != true
                    && bucket["entitlement"].as_f64().is_some_and(|e| e > 0.0)
            })
            .map(|(key, _)| key)
            .collect();
        assert!(unknown.len() >= 2, "{name}");
        for key in unknown {
            assert!(
                ids(&usage).contains(&key.as_str()),
                "{name}: {key} not in {:?}",
                ids(&usage)
            );
        }
    }
    // 15: a bucket that states only its share (no entitlement) is still a
    // window: an unknown key counted in percent, the premium quota on its
    // stated share; nothing else is made up (no reset the body lacks).
    for (name, key, used) in [
        ("ok-percent-only-snapshots", "immediate_usage_interval", 0.2),
        ("ok-percent-only-overage", "agent_sessions", 0.645),
    ] {
        let fixture = load(Copilot, name);
        let body = body_of(&fixture);
        assert!(
            !String::from_utf8_lossy(&fixture.body).contains("entitlement"),
            "{name}"
        );
        let usage = parsed(&fixture);
        let window = usage
            .windows
            .iter()
            .find(|w| w.id == key)
            .unwrap_or_else(|| panic!("{name}: no {key}"));
        assert!((window.used_ratio - used).abs() < 1e-9, "{name}: {window:?}");
        assert_eq!(window.limit, Some(100.0), "{name}");
        let premium = usage.windows.iter().find(|w| w.id == "premium").unwrap();
        let stated = body["quota_snapshots"]["premium_interactions"]["percent_remaining"]
            .as_f64()
            .unwrap();
        let expected = ((100.0 - stated) / 100.0).clamp(0.0, 1.0);
        assert!((premium.used_ratio - expected).abs() < 1e-9, "{name}: {premium:?}");
        let stated_reset = body.get("quota_reset_date_utc").is_some();
        assert_eq!(window.resets_at.is_some(), stated_reset, "{name}");
    }
    // 16: no percentage anywhere; the shares are the counts' (worked by hand).
    let counted = [
        (
            "ok-counts-used-and-remaining",
            [("5h", 0.3), ("7d", 0.25), ("tools", 0.25)],
        ),
        (
            "ok-counts-without-percentage",
            [("5h", 0.25), ("7d", 0.275), ("tools", 0.06)],
        ),
    ];
    for (name, shares) in counted {
        let fixture = load(Zai, name);
        assert!(!String::from_utf8_lossy(&fixture.body).contains("percentage"), "{name}");
        let usage = parsed(&fixture);
        for (id, share) in shares {
            let window = usage.windows.iter().find(|w| w.id == id).unwrap();
            assert!((window.used_ratio - share).abs() < 1e-9, "{name} {id}: {window:?}");
        }
    }
}
