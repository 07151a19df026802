//! Status pages: every recorded variant (none, minor, major, critical,
//! maintenance, unreadable) reads as its file name says; mutated pages never
//! panic; and through the engine and real reqwest, a page that cannot be
//! read or reached keeps the last good reading, on its own TTL.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;
use proptest::prelude::*;
use quotatrack::clock::{Clock, ManualClock};
use quotatrack::credentials::FixedCredentials;
use quotatrack::engine::Engine;
use quotatrack::exchange::RecordedExchange;
use quotatrack::health::{self, Indicator};
use quotatrack::providers::ProviderId;
use quotatrack::status;
use quotatrack::transport::HttpTransport;

use crate::robustness::{any_mutation, mutate};
use crate::support::exchange;
use crate::support::server::{Reply, Server, closed_origin};

fn status_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/status")
}

/// Every status fixture: its name, provider and exchange.
fn status_fixtures() -> Vec<(String, ProviderId, RecordedExchange)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(status_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            let exchange: RecordedExchange = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            (name, exchange.provider, exchange)
        })
        .collect()
}

fn status_page(name: &str) -> Reply {
    let path = status_dir().join(format!("{name}.json"));
    Reply::exchange(&serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap())
}

#[test]
fn every_status_fixture_reads_as_its_name_says() {
    let fixtures = status_fixtures();
    let mut seen = std::collections::BTreeSet::new();
    let mut readings = BTreeMap::new();
    for (name, provider, exchange) in &fixtures {
        let expected = name.split('-').nth(1).unwrap();
        let reading = health::read(*provider, exchange);
        match (&reading, Indicator::parse(expected)) {
            (Ok(health), Some(indicator)) => assert_eq!(health.indicator, indicator, "{name}"),
            (Err(_), None) => assert_eq!(expected, "unreadable", "{name}"),
            _ => panic!("{name}: read as {reading:?}"),
        }
        seen.insert(expected.to_owned());
        readings.insert(
            name.clone(),
            match reading {
                Ok(health) => format!("{}: {}", health.indicator, health.description.unwrap_or_default()),
                Err(error) => format!("error: {error}"),
            },
        );
    }
    for variant in ["none", "minor", "major", "critical", "maintenance", "unreadable"] {
        assert!(seen.contains(variant), "no fixture for {variant}");
    }
    insta::assert_json_snapshot!("status_page_readings", readings);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn mutated_status_pages_never_panic(which in 0usize..64, mutation in any_mutation()) {
        let fixtures = status_fixtures();
        let (_, provider, exchange) = &fixtures[which % fixtures.len()];
        let body = mutate(&exchange.response.body_bytes(), &mutation);
        let mutated = RecordedExchange {
            response: quotatrack::exchange::RecordedResponse {
                body: serde_json::from_slice(&body)
                    .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into_owned())),
                ..exchange.response.clone()
            },
            ..exchange.clone()
        };
        // A reading or an error; never a panic, never an `unknown` reading.
        if let Ok(health) = health::read(*provider, &mutated) {
            prop_assert_ne!(health.indicator, Indicator::Unknown);
        }
    }
}

/// An engine tracking `provider` against `origin` over real reqwest.
fn engine_at(dir: &std::path::Path, clock: Arc<ManualClock>, provider: ProviderId, origin: &str) -> Engine {
    let transport = HttpTransport::new(
        clock.clone(),
        Duration::from_millis(500),
        BTreeMap::from([(provider, origin.parse().unwrap())]),
    )
    .unwrap();
    Engine::builder()
        .data_dir(dir)
        .clock(clock)
        .transport(Arc::new(transport))
        .credentials(Arc::new(FixedCredentials::present(vec![provider], "test")))
        .providers(&[provider])
        .build()
        .unwrap()
}

#[test]
fn a_status_page_is_read_on_its_own_ttl_and_an_unreadable_one_keeps_the_last_reading() {
    let server = Server::with_status_pages(
        vec![Reply::exchange(&exchange(ProviderId::Anthropic, "ok-full"))],
        vec![
            status_page("anthropic-minor"),
            status_page("anthropic-unreadable-405-challenge"),
            status_page("anthropic-none"),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2026-11-22T12:00:00Z".parse().unwrap()));
    let mut engine = engine_at(dir.path(), clock.clone(), ProviderId::Anthropic, &server.origin);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut errors = Vec::new();
    let mut cycle = |minutes: i64| {
        clock.advance(SignedDuration::from_mins(minutes));
        runtime.block_on(engine.cycle()).unwrap();
        errors.push(
            engine.store().providers[&ProviderId::Anthropic]
                .status_page
                .clone()
                .unwrap()
                .error,
        );
        let view = engine.status();
        let page = view.providers[0].status_page.clone().unwrap();
        let line = status::line(&view, clock.now(), None);
        (server.status_requests(), page.indicator, page.description, line)
    };

    let (asked, indicator, description, line) = cycle(0);
    assert_eq!((asked, indicator.as_str()), (1, "minor"));
    assert_eq!(description.as_deref(), Some("Partially Degraded Service"));
    assert!(line.ends_with("⚠ degraded"), "{line}");

    // Within the 5-minute TTL usage is fetched again, the page is not.
    let (asked, indicator, ..) = cycle(1);
    assert_eq!((asked, indicator.as_str()), (1, "minor"));

    // A CloudFront challenge in place of the page: the reading stays, the
    // reason is kept in the store.
    let (asked, indicator, description, line) = cycle(4);
    assert_eq!((asked, indicator.as_str()), (2, "minor"));
    assert_eq!(description.as_deref(), Some("Partially Degraded Service"));
    assert!(line.ends_with("⚠ degraded"), "{line}");

    let (asked, indicator, _, line) = cycle(5);
    assert_eq!((asked, indicator.as_str()), (3, "none"));
    assert!(!line.contains('⚠'), "{line}");
    assert_eq!(server.requests(), 4, "usage kept its own schedule");
    assert_eq!(
        errors,
        [None, None, Some("status page answered HTTP 405".to_owned()), None],
        "the reason a page was not read is kept until the next good reading"
    );
}

#[test]
fn a_status_page_turned_off_no_longer_shows_its_last_reading() {
    let server = Server::with_status_pages(
        vec![Reply::exchange(&exchange(ProviderId::Anthropic, "ok-full"))],
        vec![status_page("anthropic-minor")],
    );
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2026-11-22T12:00:00Z".parse().unwrap()));
    let mut engine = engine_at(dir.path(), clock.clone(), ProviderId::Anthropic, &server.origin);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(engine.cycle()).unwrap();
    let page = |view: &quotatrack::wire::Status| view.providers[0].status_page.clone();
    assert_eq!(page(&engine.status()).unwrap().indicator, "minor");

    // Off for this provider (as `[status_page.anthropic] enabled = false`
    // says): the degraded reading would never be renewed, so it goes from
    // the view, the snapshot file and a reader with the same settings.
    let off = engine
        .settings()
        .patched(&serde_json::json!({"status_page": {"anthropic": {"enabled": false}}}))
        .unwrap();
    engine.configure(off.clone()).unwrap();
    clock.advance(SignedDuration::from_mins(10));
    runtime.block_on(engine.cycle()).unwrap();
    assert_eq!(server.status_requests(), 1, "a page turned off is not read");
    assert_eq!(page(&engine.status()), None);
    let mut snapshot = status::read_snapshot(dir.path()).unwrap().unwrap();
    assert_eq!(page(&snapshot), None);
    assert!(!status::line(&snapshot, clock.now(), None).contains('⚠'));
    status::settle(&mut snapshot, clock.now(), &status::StatusOptions::from_settings(&off));
    assert_eq!(page(&snapshot), None);

    // Every page off (`status_pages = false`) hides it as well.
    let mut engine_view = engine.status();
    engine_view.providers[0].status_page = Some(quotatrack::wire::StatusPageBody {
        indicator: "minor".to_owned(),
        description: None,
    });
    let all_off = quotatrack::settings::Settings {
        status_pages: false,
        ..quotatrack::settings::Settings::default()
    };
    status::settle(
        &mut engine_view,
        clock.now(),
        &status::StatusOptions::from_settings(&all_off),
    );
    assert_eq!(page(&engine_view), None);
}

#[test]
fn an_unreachable_status_page_reads_unknown_with_the_reason() {
    let closed = closed_origin();
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2026-11-22T12:00:00Z".parse().unwrap()));
    let mut engine = engine_at(dir.path(), clock, ProviderId::Gemini, &closed);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(engine.cycle()).unwrap();
    let view = engine.status();
    let page = view.providers[0].status_page.clone().unwrap();
    assert_eq!(page.indicator, "unknown");
    let reason = page.description.unwrap();
    assert!(reason.starts_with("status page: "), "{reason}");
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(json["providers"][0]["status_page"]["indicator"], "unknown");
}

#[test]
fn providers_without_a_status_page_are_never_asked() {
    let server = Server::start(vec![Reply::exchange(&exchange(
        ProviderId::Zai,
        "ok-tokens-limit-with-time-limit",
    ))]);
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2026-11-22T12:00:00Z".parse().unwrap()));
    let mut engine = engine_at(dir.path(), clock, ProviderId::Zai, &server.origin);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(engine.cycle()).unwrap();
    assert_eq!((server.requests(), server.status_requests()), (1, 0));
    assert!(engine.status().providers[0].status_page.is_none());
}
