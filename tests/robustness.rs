//! Every parser survives arbitrary input: mutations of every fixture's JSON
//! tree (delete a field, swap a type, scale a number, null a value),
//! truncated bytes and random bytes never panic, and a success still keeps
//! every number in range. Nothing here reads the wall clock: parse time is
//! measured by `benches/parse.rs` (`tools/bench-parse`), and linearity is
//! shown by counted work (20,000 added models read as 20,000 more windows).

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::FileFailurePersistence;
use serde_json::Value;

use crate::support::{Fixture, all_fixtures, assert_windows_in_range, check};

#[derive(Debug, Clone)]
pub enum Mutation {
    Delete(Index),
    SwapType(Index, u8),
    Scale(Index, f64),
    Null(Index),
    Truncate(Index),
    RandomBytes(Vec<u8>),
}

pub fn any_mutation() -> impl Strategy<Value = Mutation> {
    let factor = prop_oneof![
        Just(-1.0),
        Just(0.0),
        Just(0.001),
        Just(100.0),
        Just(1e12),
        Just(1e300),
        Just(-1e300),
        any::<f64>()
    ];
    prop_oneof![
        any::<Index>().prop_map(Mutation::Delete),
        (any::<Index>(), any::<u8>()).prop_map(|(i, t)| Mutation::SwapType(i, t)),
        (any::<Index>(), factor).prop_map(|(i, f)| Mutation::Scale(i, f)),
        any::<Index>().prop_map(Mutation::Null),
        any::<Index>().prop_map(Mutation::Truncate),
        prop::collection::vec(any::<u8>(), 0..512).prop_map(Mutation::RandomBytes),
    ]
}

/// JSON pointers of every node below the root.
fn pointers(value: &Value, prefix: &str, out: &mut Vec<String>) {
    let escape = |key: &str| key.replace('~', "~0").replace('/', "~1");
    let children: Vec<(String, &Value)> = match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (format!("{prefix}/{}", escape(k)), v))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{prefix}/{i}"), v))
            .collect(),
        _ => Vec::new(),
    };
    for (pointer, child) in children {
        out.push(pointer.clone());
        pointers(child, &pointer, out);
    }
}

fn replacement(kind: u8) -> Value {
    match kind % 9 {
        0 => Value::from("x"),
        1 => Value::from(-1),
        2 => Value::from(1e308),
        3 => Value::from(true),
        4 => serde_json::json!([]),
        5 => serde_json::json!({}),
        6 => Value::from("NaN"),
        7 => Value::from("1970-01-01T00:00:00Z"),
        _ => serde_json::json!([{"a": [1, "2", null]}]),
    }
}

pub fn mutate(body: &[u8], mutation: &Mutation) -> Vec<u8> {
    if let Mutation::RandomBytes(bytes) = mutation {
        return bytes.clone();
    }
    if let Mutation::Truncate(at) = mutation {
        return body[..at.index(body.len() + 1)].to_vec();
    }
    let Ok(mut json) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    let mut all = Vec::new();
    pointers(&json, "", &mut all);
    if all.is_empty() {
        return body.to_vec();
    }
    let pick = |i: &Index| all[i.index(all.len())].clone();
    match mutation {
        Mutation::Delete(i) => {
            let pointer = pick(i);
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            let key = key.replace("~1", "/").replace("~0", "~");
            match json.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    map.remove(&key);
                }
                Some(Value::Array(items)) => {
                    let index: usize = key.parse().unwrap();
                    items.remove(index);
                }
                _ => {}
            }
        }
        Mutation::SwapType(i, kind) => *json.pointer_mut(&pick(i)).unwrap() = replacement(*kind),
        Mutation::Null(i) => *json.pointer_mut(&pick(i)).unwrap() = Value::Null,
        Mutation::Scale(i, factor) => {
            let node = json.pointer_mut(&pick(i)).unwrap();
            if let Some(n) = node.as_f64() {
                *node = serde_json::Number::from_f64(n * factor).map_or(Value::Null, Value::Number);
            }
        }
        Mutation::Truncate(_) | Mutation::RandomBytes(_) => unreachable!(),
    }
    serde_json::to_vec(&json).unwrap()
}

/// Parses without panicking and checks a success's numbers.
fn survives(fixture: &Fixture) {
    if let Ok(usage) = check(fixture) {
        assert_windows_in_range(&usage);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2048,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_fixtures_never_panic_or_hang(which in any::<Index>(), mutation in any_mutation()) {
        let fixtures = fixtures();
        let fixture = &fixtures[which.index(fixtures.len())];
        survives(&fixture.with_body(mutate(&fixture.body, &mutation)));
    }
}

fn fixtures() -> &'static [Fixture] {
    static FIXTURES: std::sync::OnceLock<Vec<Fixture>> = std::sync::OnceLock::new();
    FIXTURES.get_or_init(all_fixtures)
}

#[test]
fn every_fixture_survives_each_error_status() {
    for fixture in fixtures() {
        for status in [0, 204, 301, 400, 401, 403, 404, 429, 500, 529, 999] {
            survives(&Fixture {
                status,
                ..fixture.clone()
            });
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = "[".repeat(100_000);
    for fixture in fixtures().iter().filter(|f| f.name().starts_with("ok-")) {
        let result = check(&fixture.with_body(deep.clone().into_bytes()));
        assert_eq!(result.unwrap_err().kind().as_str(), "malformed");
    }
}

#[test]
fn a_large_body_parses_in_linear_time() {
    let fixture = fixtures().iter().find(|f| f.name() == "ok-models").unwrap();
    let mut json: Value = serde_json::from_slice(&fixture.body).unwrap();
    let models = json["models"].as_object_mut().unwrap();
    for n in 0..20_000 {
        models.insert(
            format!("model-{n}"),
            serde_json::json!({"displayName": format!("Model {n}"), "quotaInfo": {"remainingFraction": 0.5, "resetTime": "2026-08-22T17:00:00Z"}}),
        );
    }
    let usage = check(&fixture.with_body(serde_json::to_vec(&json).unwrap())).unwrap();
    // The fixture meters four models (one of them exhausted) besides the added ones.
    assert_eq!(usage.windows.len(), 20_004);
}

/// A server's error text is shown as one line of plain text: no forged
/// lines, no terminal escapes, no NUL, for every provider and status.
#[test]
fn error_messages_are_one_plain_line() {
    use quotatrack::providers::{ProviderId, Response};
    let hostile = "\u{1b}[2J\u{1b}]0;PWNED\u{7}line1\r\nFAKE: quotatrack: all good\n\u{1b}[31mred\u{0}nul\t\u{85}end";
    let bodies = [
        hostile.to_owned(),
        serde_json::json!({"error": {"message": hostile}}).to_string(),
        serde_json::json!({"message": hostile, "detail": hostile}).to_string(),
    ];
    let now = "2026-08-22T12:00:00Z".parse().unwrap();
    for provider in ProviderId::ALL {
        for status in [400, 401, 403, 404, 429, 500, 503] {
            for body in &bodies {
                let headers = vec![("content-type".to_owned(), "text/plain".to_owned())];
                let response = Response {
                    status,
                    headers: &headers,
                    body: body.as_bytes(),
                };
                let error = provider.provider().parse(&response, now).unwrap_err();
                let message = error.to_string();
                assert!(
                    !message.chars().any(char::is_control),
                    "{provider} {status}: {message:?}"
                );
                assert!(
                    message.contains("line1 FAKE: quotatrack: all good"),
                    "{provider} {status}: {message:?}"
                );
            }
        }
    }
}
