//! Redirects of requests that carry secrets, through real reqwest to real
//! servers on loopback: each origin records every request it receives, and
//! no secret (bearer token, API key, Codex's account-id header, a
//! credential in the body) ever reaches any origin but the one the request
//! was built for. Same-origin redirects are followed up to three hops; a
//! foreign host, a foreign port or a fourth hop ends the fetch as
//! `redirected`, naming the target's origin and never its path or query.
//! HTTPS to HTTP is tested on the rule itself (no TLS server on loopback:
//! the client trusts only the public roots, so an HTTPS origin here would
//! fail its handshake before any redirect).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use quotatrack::clock::ManualClock;
use quotatrack::credentials::{Credential, Secret};
use quotatrack::exchange::RecordedExchange;
use quotatrack::providers::{ErrorKind, ProviderId};
use quotatrack::transport::{
    HttpTransport, MAX_REDIRECTS, Refusal, Request, Transport, TransportError, Url, redirect_hop,
};
use serde_json::Value;

use crate::live::run;
use crate::support::exchange;
use crate::support::server::{Received, Reply, Server};

/// One provider's request and every secret it carries.
struct Case {
    provider: ProviderId,
    request: Request,
    secrets: Vec<&'static str>,
}

/// A bearer token (Claude), an API key (Z.ai), a token with Codex's
/// account-id header, and a token with Gemini's project in the body.
fn cases() -> Vec<Case> {
    let with_extra = |token: &str, extra: &'static str, value: &str| {
        let mut credential = Credential::new(token, "test");
        credential.extras.insert(extra, Secret::new(value));
        credential
    };
    vec![
        Case {
            provider: ProviderId::Anthropic,
            request: Request::usage(
                ProviderId::Anthropic,
                Credential::new("sk-ant-oat01-redirect-canary", "test"),
            ),
            secrets: vec!["sk-ant-oat01-redirect-canary"],
        },
        Case {
            provider: ProviderId::Zai,
            request: Request::usage(ProviderId::Zai, Credential::new("zai-api-key-redirect-canary", "test")),
            secrets: vec!["zai-api-key-redirect-canary"],
        },
        Case {
            provider: ProviderId::Codex,
            request: Request::usage(
                ProviderId::Codex,
                with_extra("codex-token-redirect-canary", "account_id", "acct-redirect-canary"),
            ),
            secrets: vec!["codex-token-redirect-canary", "acct-redirect-canary"],
        },
        Case {
            provider: ProviderId::Gemini,
            request: Request::usage(
                ProviderId::Gemini,
                with_extra("ya29.gemini-redirect-canary", "project", "project-redirect-canary"),
            ),
            secrets: vec!["ya29.gemini-redirect-canary", "project-redirect-canary"],
        },
    ]
}

/// Sends `request` with its provider's origin at `first`.
fn fetch(first: &Server, request: &Request) -> Result<RecordedExchange, TransportError> {
    let clock = Arc::new(ManualClock::new("2026-08-22T12:00:00Z".parse().unwrap()));
    let origins = BTreeMap::from([(request.provider, first.origin.parse().unwrap())]);
    let transport = HttpTransport::new(clock, Duration::from_secs(5), origins).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(transport.send(request))
}

fn text_of(received: &Received) -> String {
    format!("{}\n{}", received.head, String::from_utf8_lossy(&received.body))
}

/// Every request `server` received carries none of `secrets`.
fn assert_clean(server: &Server, secrets: &[&str], what: &str) {
    for received in server.every_request() {
        let text = text_of(&received);
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{what}: {secret} reached {}: {text}",
                server.origin
            );
        }
    }
}

/// Every request `server` received is the provider's whole request: the
/// credential went where it belongs, on every hop.
fn assert_all_carry(server: &Server, case: &Case) {
    for received in server.every_request() {
        let text = text_of(&received);
        for secret in &case.secrets {
            assert!(
                text.contains(secret),
                "{}: a same-origin hop lost {secret}: {text}",
                case.provider
            );
        }
    }
}

/// The fetch ended as `redirected`, naming `host` and nothing of the path.
fn assert_redirected(result: Result<RecordedExchange, TransportError>, host: &str, case: &Case) {
    let error = match result {
        Err(error) => error,
        Ok(exchange) => panic!("{}: followed to {}", case.provider, exchange.request.url),
    };
    assert_eq!(error.kind(), ErrorKind::Redirected, "{}: {error:?}", case.provider);
    assert_eq!(error.kind().as_str(), "redirected");
    let message = error.to_string();
    assert!(message.contains(host), "{}: {message}", case.provider);
    for private in ["steal", "token=", "canary"] {
        assert!(!message.contains(private), "{}: {message}", case.provider);
    }
}

fn ok() -> Reply {
    Reply::json(200, "{}")
}

#[test]
fn same_origin_redirects_are_followed_up_to_three_hops_with_every_secret() {
    for case in cases() {
        for n_hops in 1..=MAX_REDIRECTS {
            let statuses = [307, 302, 308, 301, 303];
            let mut script: Vec<Reply> = (0..n_hops)
                .map(|hop| {
                    Reply::redirect(
                        statuses[(hop + n_hops) % statuses.len()],
                        &format!("/hop-{hop}?n={hop}"),
                    )
                })
                .collect();
            script.push(ok());
            let server = Server::start(script);
            let exchange = fetch(&server, &case.request)
                .unwrap_or_else(|error| panic!("{} after {n_hops} hops: {error}", case.provider));
            assert_eq!(exchange.response.status, 200);
            assert_eq!(
                exchange.request.url,
                format!("{}/hop-{}?n={}", server.origin, n_hops - 1, n_hops - 1)
            );
            let targets: Vec<String> = server
                .every_request()
                .iter()
                .map(|received| received.target().to_owned())
                .collect();
            let mut expected = vec![case.request.path.clone()];
            expected.extend((0..n_hops).map(|hop| format!("/hop-{hop}?n={hop}")));
            assert_eq!(targets, expected, "{}", case.provider);
            let headers: Vec<Option<String>> = server
                .every_request()
                .iter()
                .map(|received| received.header("authorization"))
                .collect();
            assert!(headers.iter().all(Option::is_some), "{}: {headers:?}", case.provider);
            // A POST redirected with 307/308 keeps its body; the first hop always has it.
            assert_all_carry_first(&server, &case);
            let recorded = serde_json::to_string(&exchange).unwrap();
            for secret in &case.secrets {
                assert!(!recorded.contains(secret), "{secret} recorded: {recorded}");
            }
        }
    }
}

fn assert_all_carry_first(server: &Server, case: &Case) {
    let first = text_of(&server.every_request()[0]);
    for secret in &case.secrets {
        assert!(first.contains(secret), "{}: {secret} missing: {first}", case.provider);
    }
}

#[test]
fn a_fourth_same_origin_redirect_is_not_followed() {
    for case in cases() {
        let mut script: Vec<Reply> = (0..=MAX_REDIRECTS)
            .map(|hop| Reply::redirect(307, &format!("/loop-{hop}")))
            .collect();
        script.push(ok());
        let server = Server::start(script);
        let result = fetch(&server, &case.request);
        let host = server.origin.trim_start_matches("http://").to_owned();
        assert_redirected(result, &host, &case);
        assert_eq!(server.every_request().len(), MAX_REDIRECTS + 1, "{}", case.provider);
        assert_all_carry(&server, &case);
    }
}

#[test]
fn a_redirect_to_another_host_is_refused_and_that_host_receives_nothing() {
    for case in cases() {
        let foreign = Server::at("127.0.0.2", vec![ok()], vec![ok()]);
        for status in [301, 302, 303, 307, 308] {
            let location = format!("http://127.0.0.2:{}/steal?token=canary", foreign.port());
            let first = Server::start(vec![Reply::redirect(status, &location)]);
            assert_redirected(fetch(&first, &case.request), "127.0.0.2", &case);
            assert_eq!(first.every_request().len(), 1);
            assert_all_carry(&first, &case);
        }
        assert!(
            foreign.every_request().is_empty(),
            "{}: {:?}",
            case.provider,
            foreign.every_request()
        );
    }
}

#[test]
fn the_same_address_under_another_name_is_another_host() {
    for case in cases() {
        // `localhost` reaches the very same socket: had the request followed,
        // the server would have recorded a second one.
        let server = Server::start(vec![
            Reply::RedirectToSelf {
                status: 302,
                host: "localhost".to_owned(),
                target: "/steal?token=canary".to_owned(),
            },
            ok(),
        ]);
        assert_redirected(fetch(&server, &case.request), "localhost", &case);
        assert_eq!(server.every_request().len(), 1, "{}", case.provider);
    }
}

#[test]
fn a_redirect_to_another_port_is_refused_and_that_port_receives_nothing() {
    for case in cases() {
        let foreign = Server::start(vec![ok()]);
        let first = Server::start(vec![Reply::redirect(
            307,
            &format!("{}/steal?token=canary", foreign.origin),
        )]);
        let host = foreign.origin.trim_start_matches("http://").to_owned();
        assert_redirected(fetch(&first, &case.request), &host, &case);
        assert!(foreign.every_request().is_empty(), "{}", case.provider);
        assert_all_carry(&first, &case);
    }
}

#[test]
fn chains_of_two_to_four_hops_stop_at_the_first_foreign_hop() {
    for case in cases() {
        for n_hops in 2..=4 {
            // Same-origin hops first, the foreign one last: 127.0.0.2, another port,
            // and a scheme-relative location.
            let foreign_host = Server::at("127.0.0.2", vec![ok()], vec![ok()]);
            let foreign_port = Server::start(vec![ok()]);
            let targets = [
                (
                    format!("http://127.0.0.2:{}/steal?token=canary", foreign_host.port()),
                    "127.0.0.2".to_owned(),
                ),
                (
                    format!("{}/steal?token=canary", foreign_port.origin),
                    foreign_port.origin.trim_start_matches("http://").to_owned(),
                ),
                (
                    format!("//127.0.0.2:{}/steal?token=canary", foreign_host.port()),
                    "127.0.0.2".to_owned(),
                ),
            ];
            for (location, host) in targets {
                let mut script: Vec<Reply> = (0..n_hops - 1)
                    .map(|hop| Reply::redirect(307, &format!("/chain-{hop}")))
                    .collect();
                script.push(Reply::redirect(307, &location));
                let first = Server::start(script);
                assert_redirected(fetch(&first, &case.request), &host, &case);
                assert_eq!(first.every_request().len(), n_hops, "{} {n_hops} hops", case.provider);
                assert_all_carry(&first, &case);
            }
            for foreign in [&foreign_host, &foreign_port] {
                assert!(
                    foreign.every_request().is_empty(),
                    "{} {n_hops} hops: {:?}",
                    case.provider,
                    foreign.every_request()
                );
                assert_clean(foreign, &case.secrets, "chain");
            }
        }
    }
}

#[test]
fn a_chain_that_would_leave_and_come_back_never_leaves() {
    for case in cases() {
        let home = Server::start(vec![ok()]);
        // The foreign server would send the request back home; it never gets it.
        let foreign = Server::at(
            "127.0.0.2",
            vec![Reply::redirect(302, &format!("{}/home", home.origin))],
            vec![ok()],
        );
        let first = Server::start(vec![
            Reply::redirect(308, "/one"),
            Reply::redirect(302, &format!("http://127.0.0.2:{}/away", foreign.port())),
        ]);
        assert_redirected(fetch(&first, &case.request), "127.0.0.2", &case);
        assert!(foreign.every_request().is_empty());
        assert!(home.every_request().is_empty());
        assert_eq!(first.every_request().len(), 2);
        assert_all_carry(&first, &case);
    }
}

#[test]
fn the_redirect_rule_never_goes_from_https_to_http_and_never_off_origin_with_secrets() {
    let url = |text: &str| Url::parse(text).unwrap();
    let first = url("https://api.anthropic.com/api/oauth/usage");
    let hop =
        |location: &str, hops: usize, secrets: bool| redirect_hop(&first, &first, 302, Some(location), hops, secrets);

    // Same origin, relative or absolute, explicit default port: followed.
    assert_eq!(
        hop("/api/oauth/usage?page=2", 0, true),
        Ok(Some(url("https://api.anthropic.com/api/oauth/usage?page=2")))
    );
    assert_eq!(
        hop("https://api.anthropic.com:443/v2", 2, true),
        Ok(Some(url("https://api.anthropic.com/v2")))
    );
    // The same host over plain HTTP, on any port: a downgrade, with or without secrets.
    for location in [
        "http://api.anthropic.com/api/oauth/usage?token=x",
        "http://api.anthropic.com:443/",
        "http://evil.example/steal",
    ] {
        for secrets in [true, false] {
            let refusal = hop(location, 0, secrets).unwrap_err();
            assert!(matches!(refusal, Refusal::Downgrade { .. }), "{location}: {refusal:?}");
        }
    }
    let refusal = hop("http://api.anthropic.com/api/oauth/usage?token=x", 0, true).unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "redirected from https to plain http (http://api.anthropic.com); not followed"
    );
    // Another host, port or scheme: refused with secrets, followed without.
    for location in [
        "https://evil.example/steal?token=x",
        "https://api.anthropic.com:8443/api/oauth/usage",
        "https://anthropic.com/api/oauth/usage",
        "//evil.example/x",
    ] {
        let refusal = hop(location, 0, true).unwrap_err();
        assert!(
            matches!(refusal, Refusal::ForeignOrigin { .. }),
            "{location}: {refusal:?}"
        );
        assert!(!refusal.to_string().contains("steal") && !refusal.to_string().contains("token"));
        assert!(hop(location, 0, false).unwrap().is_some(), "{location}");
    }
    // Not a web URL at all.
    assert!(matches!(
        hop("file:///etc/passwd", 0, false),
        Err(Refusal::ForeignOrigin { .. })
    ));
    // The bound holds for public pages too.
    assert!(matches!(
        hop("/again", MAX_REDIRECTS, true),
        Err(Refusal::TooMany { .. })
    ));
    assert!(matches!(
        hop("https://statuspage.example/", MAX_REDIRECTS, false),
        Err(Refusal::TooMany { .. })
    ));
    // Not a redirect: the answer stands.
    assert_eq!(redirect_hop(&first, &first, 304, Some("/x"), 0, true), Ok(None));
    assert_eq!(redirect_hop(&first, &first, 302, None, 0, true), Ok(None));
    // The origin is the first URL's, whatever hop the chain is at.
    let later = url("https://api.anthropic.com/elsewhere");
    assert!(redirect_hop(&first, &later, 307, Some("https://evil.example/"), 1, true).is_err());
}

#[test]
fn a_status_page_without_secrets_may_follow_a_redirect_to_another_origin() {
    let moved = Server::at(
        "127.0.0.2",
        vec![ok()],
        vec![Reply::json(
            200,
            r#"{"status":{"indicator":"none","description":"ok"}}"#,
        )],
    );
    let first = Server::with_status_pages(
        vec![ok()],
        vec![Reply::redirect(
            301,
            &format!("http://127.0.0.2:{}/api/v2/status.json", moved.port()),
        )],
    );
    let request = quotatrack::health::request(ProviderId::Anthropic).unwrap();
    let exchange = fetch(&first, &request).unwrap();
    assert_eq!(exchange.response.status, 200);
    assert_eq!(moved.status_requests(), 1);
    assert!(moved.every_request()[0].header("authorization").is_none());
}

#[test]
fn the_binary_records_a_refused_redirect_and_status_shows_its_kind() {
    let foreign = Server::at("127.0.0.2", vec![ok()], vec![ok()]);
    let first = Server::start(vec![
        Reply::exchange(&exchange(ProviderId::Anthropic, "ok-full")),
        Reply::redirect(302, &format!("http://127.0.0.2:{}/steal?token=canary", foreign.port())),
    ]);
    let home = tempfile::tempdir().unwrap();
    let token = "sk-ant-oat01-binary-redirect-canary";
    let env = [
        ("QUOTATRACK_ANTHROPIC_BASE_URL", first.origin.as_str()),
        ("QUOTATRACK_ANTHROPIC_TOKEN", token),
    ];
    let status = |extra: &[&str]| {
        let mut args = vec!["status", "--json", "--provider", "anthropic"];
        args.extend(extra);
        let output = run(home.path(), &env, &args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let view: Value = serde_json::from_slice(&output.stdout).unwrap();
        view["providers"][0].clone()
    };
    let good = status(&["--refresh"]);
    assert_eq!(good["state"], "fresh", "{good}");
    let refused = status(&["--refresh", "--now-offset", "61"]);
    assert_eq!(refused["state"], "unavailable", "{refused}");
    assert_eq!(refused["error"]["kind"], "redirected", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("127.0.0.2"), "{message}");
    assert!(!message.contains("steal") && !message.contains("token="), "{message}");
    assert_eq!(refused["windows"], good["windows"], "the last good values stay");
    // The snapshot answers the same, and the log holds the error's kind, never the path.
    assert_eq!(status(&[])["error"]["kind"], "redirected");
    let export = run(home.path(), &[], &["log", "export"]);
    let log = String::from_utf8_lossy(&export.stdout);
    assert!(log.contains(r#""kind":"redirected""#), "{log}");
    assert!(!log.contains("steal") && !log.contains(token), "{log}");
    assert!(foreign.every_request().is_empty());
    assert_eq!(first.requests(), 2, "one good fetch, one refused redirect");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Whatever a server puts in `Location`, a request with secrets only
    /// ever moves within its first origin, never to plain HTTP, and never
    /// past the bound.
    #[test]
    fn no_location_takes_secrets_off_origin(
        scheme in proptest::sample::select(vec!["http", "https", "HTTPS", "ftp", "file", "javascript", ""]),
        host in proptest::sample::select(vec!["api.example", "API.example", "api.example.", "evil.example", "127.0.0.1", "[::1]", "", "api.example@evil.example", "evil.example\\@api.example"]),
        port in proptest::sample::select(vec!["", ":443", ":80", ":8443", ":0"]),
        path in "[/a-z?#%.@:\\\\]{0,12}",
        noise in ".{0,20}",
        hops in 0usize..6,
        from_https in proptest::bool::ANY,
    ) {
        let first = Url::parse(if from_https { "https://api.example/usage" } else { "http://api.example/usage" }).unwrap();
        for location in [
            format!("{scheme}://{host}{port}{path}"),
            format!("//{host}{port}{path}"),
            format!("{path}{noise}"),
            noise.clone(),
        ] {
            if let Ok(Some(next)) = redirect_hop(&first, &first, 307, Some(&location), hops, true) {
                proptest::prop_assert_eq!(next.origin(), first.origin(), "{}", location);
                proptest::prop_assert!(hops < MAX_REDIRECTS);
                proptest::prop_assert!(next.username().is_empty() && next.password().is_none());
            }
            if let Ok(Some(next)) = redirect_hop(&first, &first, 302, Some(&location), hops, false) {
                proptest::prop_assert!(!(from_https && next.scheme() == "http"), "{}", location);
            }
        }
    }

    /// Any `Retry-After` value is no hint or a wait of at most a day.
    #[test]
    fn any_retry_after_is_at_most_a_day(value in ".{0,40}", seconds in proptest::num::f64::ANY, day in 0u32..40, year in 0i32..12000) {
        let now: jiff::Timestamp = "2026-08-22T12:00:00Z".parse().unwrap();
        for value in [
            value.clone(),
            seconds.to_string(),
            format!("Sat, {day:02} Aug {year} 13:00:00 GMT"),
            format!("Sunday, {day:02}-Aug-{:02} 13:00:00 GMT", year.rem_euclid(100)),
            format!("Sat Aug {day} 13:00:00 {year}"),
        ] {
            if let Some(wait) = quotatrack::providers::retry_after(&value, now) {
                proptest::prop_assert!(wait <= 86_400, "{} -> {}", value, wait);
            }
        }
    }
}
