//! Every recorded provider response parses to its reviewed snapshot (one
//! insta snapshot per fixture) and to the outcome its file name promises.

use quotatrack::providers::ProviderId;
use quotatrack::wire::ParseOutput;

use crate::support::{Expect, Fixture, all_fixtures, assert_windows_in_range, check};

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
