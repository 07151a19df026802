//! The live transport through real reqwest to a real server on 127.0.0.1:
//! headers each provider needs, redaction, faults (hang, broken body,
//! oversized, invalid UTF-8, HTML), and the real binary against it
//! (Retry-After across restarts, a hung server, a 401, last good values).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use quotatrack::clock::ManualClock;
use quotatrack::credentials::Credential;
use quotatrack::events::Outcome;
use quotatrack::providers::{ErrorKind, ProviderId};
use quotatrack::transport::{HttpTransport, MAX_BODY_BYTES, Request, Transport, TransportError};
use serde_json::Value;

use crate::support::exchange;
use crate::support::server::{Reply, Server, closed_origin};

const TOKEN: &str = "sk-ant-oat01-live-test-token";

fn transport(server: &Server, provider: ProviderId, timeout: Duration) -> HttpTransport {
    let clock = Arc::new(ManualClock::new("2026-08-22T12:00:00Z".parse().unwrap()));
    let origins = BTreeMap::from([(provider, server.origin.parse().unwrap())]);
    HttpTransport::new(clock, timeout, origins).unwrap()
}

fn send(
    server: &Server,
    request: Request,
    timeout: Duration,
) -> Result<quotatrack::exchange::RecordedExchange, TransportError> {
    let transport = transport(server, request.provider, timeout);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(transport.send(&request))
}

fn usage_request(provider: ProviderId, credential: Credential) -> Request {
    Request::usage(provider, credential)
}

fn outcome_kind(outcome: &Outcome) -> Option<ErrorKind> {
    match outcome {
        Outcome::Usage { .. } => None,
        Outcome::Failed { error } => Some(error.kind),
    }
}

#[test]
fn claude_gets_its_required_headers_and_the_recorded_exchange_holds_no_token() {
    let server = Server::start(vec![Reply::exchange(&exchange(ProviderId::Anthropic, "ok-full"))]);
    let request = usage_request(ProviderId::Anthropic, Credential::new(TOKEN, "test"));
    let recorded = send(&server, request, Duration::from_secs(5)).unwrap();

    let received = &server.received()[0];
    assert!(
        received.head.starts_with("GET /api/oauth/usage HTTP/1.1"),
        "{}",
        received.head
    );
    assert_eq!(
        received.header("authorization").as_deref(),
        Some(&*format!("Bearer {TOKEN}"))
    );
    assert_eq!(received.header("anthropic-beta").as_deref(), Some("oauth-2025-04-20"));
    assert!(received.header("user-agent").unwrap().starts_with("claude-code/"));

    assert_eq!(recorded.request.headers["authorization"], "[redacted]");
    assert_eq!(recorded.request.url, format!("{}/api/oauth/usage", server.origin));
    assert!(!serde_json::to_string(&recorded).unwrap().contains(TOKEN));
    let outcome = Outcome::read(&recorded, recorded.recorded_at);
    assert!(
        matches!(&outcome, Outcome::Usage { windows, .. } if !windows.is_empty()),
        "{outcome:?}"
    );
}

#[test]
fn codex_account_id_is_sent_as_a_header_and_recorded_redacted_with_echoed_identities() {
    let echo = r#"{"plan_type":"plus","email":"ada@example.com","account_id":"acct-7f3e9c",
        "note":"token sk-codex-secret-1 for ada@example.com","rate_limit":{"allowed":true,"limit_reached":false,
        "primary_window":{"used_percent":12,"limit_window_seconds":18000,"reset_after_seconds":600,"reset_at":1787403600}}}"#;
    let server = Server::start(vec![
        Reply::json(200, echo).with_header("set-cookie", "session=sk-codex-secret-1"),
    ]);
    let mut credential = Credential::new("sk-codex-secret-1", "test");
    credential
        .extras
        .insert("account_id", quotatrack::credentials::Secret::new("acct-7f3e9c"));
    let recorded = send(
        &server,
        usage_request(ProviderId::Codex, credential),
        Duration::from_secs(5),
    )
    .unwrap();

    let received = &server.received()[0];
    assert_eq!(received.header("chatgpt-account-id").as_deref(), Some("acct-7f3e9c"));
    assert_eq!(received.header("originator").as_deref(), Some("codex_cli_rs"));
    let text = serde_json::to_string(&recorded).unwrap();
    for secret in ["sk-codex-secret-1", "acct-7f3e9c", "ada@example.com", "session="] {
        assert!(!text.contains(secret), "{secret} leaked into {text}");
    }
    assert_eq!(recorded.request.headers["chatgpt-account-id"], "[redacted]");
    assert!(!recorded.response.headers.contains_key("set-cookie"));
    assert!(matches!(
        Outcome::read(&recorded, recorded.recorded_at),
        Outcome::Usage { .. }
    ));
}

#[test]
fn google_and_kiro_extras_go_into_the_request_body() {
    let server = Server::start(vec![Reply::json(200, "{}")]);
    let mut credential = Credential::new("ya29.token", "test");
    credential
        .extras
        .insert("project", quotatrack::credentials::Secret::new("gen-lang-client-42"));
    send(
        &server,
        usage_request(ProviderId::Gemini, credential),
        Duration::from_secs(5),
    )
    .unwrap();
    let body: Value = serde_json::from_slice(&server.received()[0].body).unwrap();
    assert_eq!(body, serde_json::json!({"project": "gen-lang-client-42"}));

    let server = Server::start(vec![Reply::json(200, "{}")]);
    let mut credential = Credential::new("aoa-token", "test");
    credential.extras.insert(
        "profile_arn",
        quotatrack::credentials::Secret::new("arn:aws:codewhisperer:us-east-1:1:profile/X"),
    );
    send(
        &server,
        usage_request(ProviderId::Kiro, credential),
        Duration::from_secs(5),
    )
    .unwrap();
    let received = &server.received()[0];
    let body: Value = serde_json::from_slice(&received.body).unwrap();
    assert_eq!(body["profileArn"], "arn:aws:codewhisperer:us-east-1:1:profile/X");
    assert_eq!(body["origin"], "AI_EDITOR");
    assert_eq!(
        received.header("x-amz-target").as_deref(),
        Some("AmazonCodeWhispererService.GetUsageLimits")
    );
}

#[test]
fn copilot_sends_a_token_scheme() {
    let server = Server::start(vec![Reply::exchange(&exchange(
        ProviderId::Copilot,
        "ok-free-legacy-monthly",
    ))]);
    send(
        &server,
        usage_request(ProviderId::Copilot, Credential::new("gho_copilot", "test")),
        Duration::from_secs(5),
    )
    .unwrap();
    let received = &server.received()[0];
    assert_eq!(received.header("authorization").as_deref(), Some("token gho_copilot"));
    assert!(received.header("editor-version").is_some());
}

#[test]
fn retry_after_as_an_http_date_becomes_a_wait() {
    let server = Server::start(vec![
        Reply::json(
            429,
            r#"{"error":{"type":"rate_limit_error","message":"Rate limited. Please try again later."}}"#,
        )
        .with_header("retry-after", "Sat, 22 Aug 2026 13:00:00 GMT"),
    ]);
    let request = usage_request(ProviderId::Anthropic, Credential::new(TOKEN, "test"));
    let recorded = send(&server, request, Duration::from_secs(5)).unwrap();
    let outcome = Outcome::read(&recorded, "2026-08-22T12:00:00Z".parse::<Timestamp>().unwrap());
    match outcome {
        Outcome::Failed { error } => {
            assert_eq!(error.kind, ErrorKind::RateLimited);
            assert_eq!(error.retry_after_s, Some(3600));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn faults_become_clear_errors() {
    let anthropic = || usage_request(ProviderId::Anthropic, Credential::new(TOKEN, "test"));

    let server = Server::start(vec![Reply::Hang]);
    let error = send(&server, anthropic(), Duration::from_millis(300)).unwrap_err();
    assert_eq!(error, TransportError::Timeout { millis: 300 });
    assert_eq!(error.to_string(), "no answer within 0.3 s");

    let server = Server::start(vec![Reply::CloseMidBody]);
    let error = send(&server, anthropic(), Duration::from_secs(5)).unwrap_err();
    assert!(matches!(&error, TransportError::Network(_)), "{error:?}");
    assert_eq!(error.kind(), ErrorKind::Unavailable);

    let huge = format!(r#"{{"padding":"{}"}}"#, "x".repeat(MAX_BODY_BYTES));
    let server = Server::start(vec![Reply::json(200, &huge)]);
    let error = send(&server, anthropic(), Duration::from_secs(5)).unwrap_err();
    assert_eq!(error.to_string(), "response body larger than 1024 KiB");
    assert_eq!(error.kind(), ErrorKind::Malformed);

    // Answers that arrive whole are recorded, and the parser classifies them.
    let read_as = |content_type: &str, status: u16, body: &[u8]| {
        let server = Server::start(vec![Reply::Http {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.to_vec(),
        }]);
        let recorded = send(&server, anthropic(), Duration::from_secs(5)).unwrap();
        outcome_kind(&Outcome::read(&recorded, recorded.recorded_at))
    };
    assert_eq!(
        read_as("application/json", 200, b"{\"five_hour\": \xff\xfe}"),
        Some(ErrorKind::Malformed)
    );
    assert_eq!(
        read_as("text/html", 503, b"<html><title>Just a moment...</title></html>"),
        Some(ErrorKind::Unavailable)
    );

    let closed = closed_origin();
    let clock = Arc::new(ManualClock::new("2026-08-22T12:00:00Z".parse().unwrap()));
    let transport = HttpTransport::new(
        clock,
        Duration::from_secs(5),
        BTreeMap::from([(ProviderId::Anthropic, closed.parse().unwrap())]),
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let error = runtime.block_on(transport.send(&anthropic())).unwrap_err();
    assert!(
        matches!(&error, TransportError::Network(message) if !message.contains(TOKEN) && !message.contains("/api/oauth/usage")),
        "{error:?}"
    );
}

/// The real binary, with nothing from this process's environment but what
/// the test gives it.
pub fn run(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let data = home.join("data");
    let mut command = Command::new(env!("CARGO_BIN_EXE_quotatrack"));
    command.env_clear().env("HOME", home).env("NO_COLOR", "1");
    for (name, value) in env {
        command.env(name, value);
    }
    command.arg("--data-dir").arg(&data).args(args).output().unwrap()
}

fn status_json(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|error| panic!("{error}: {stdout}"))
}

fn claude_env(server: &Server) -> Vec<(&'static str, String)> {
    vec![
        ("QUOTATRACK_ANTHROPIC_BASE_URL", server.origin.clone()),
        ("QUOTATRACK_ANTHROPIC_TOKEN", TOKEN.to_owned()),
    ]
}

fn refresh(home: &Path, env: &[(&'static str, String)], extra: &[&str]) -> Value {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut args = extra.to_vec();
    args.extend(["status", "--refresh", "--json", "--provider", "anthropic"]);
    let view = status_json(&run(home, &env, &args));
    view["providers"][0].clone()
}

#[test]
fn a_429_with_retry_after_blocks_every_later_refresh_even_across_restarts() {
    let server = Server::start(vec![
        Reply::exchange(&exchange(ProviderId::Anthropic, "ok-full")),
        Reply::json(
            429,
            r#"{"error":{"type":"rate_limit_error","message":"Rate limited. Please try again later."}}"#,
        )
        .with_header("retry-after", "3600"),
        Reply::exchange(&exchange(ProviderId::Anthropic, "ok-full")),
    ]);
    let home = tempfile::tempdir().unwrap();
    let env = claude_env(&server);

    let first = refresh(home.path(), &env, &[]);
    assert_eq!(first["state"], "fresh", "{first}");
    // The next minute's refresh meets the 429; each command is a new process.
    let blocked = refresh(home.path(), &env, &["--now-offset", "61"]);
    assert_eq!(blocked["state"], "rate_limited", "{blocked}");
    assert!(blocked["blocked_until"].is_string(), "{blocked}");
    assert!(
        !blocked["windows"].as_array().unwrap().is_empty(),
        "last good values kept: {blocked}"
    );
    assert_eq!(server.requests(), 2);
    for offset in ["200", "1800", "3500"] {
        let again = refresh(home.path(), &env, &["--now-offset", offset]);
        assert_eq!(again["state"], "rate_limited", "{again}");
    }
    assert_eq!(server.requests(), 2, "no request while Retry-After holds");
    let after = refresh(home.path(), &env, &["--now-offset", "3725"]);
    assert_eq!(after["state"], "fresh", "{after}");
    assert_eq!(server.requests(), 3, "the block lifts when Retry-After has passed");
}

#[test]
fn a_hung_server_costs_one_timeout_and_keeps_the_last_good_values() {
    let server = Server::start(vec![
        Reply::exchange(&exchange(ProviderId::Anthropic, "ok-full")),
        Reply::Hang,
    ]);
    let home = tempfile::tempdir().unwrap();
    let env = claude_env(&server);
    let good = refresh(home.path(), &env, &["--timeout", "0.5"]);
    assert_eq!(good["state"], "fresh");
    // A real process that never finished would hang this test; it finishes
    // because the request is cut off at the timeout.
    let hung = refresh(home.path(), &env, &["--timeout", "0.5", "--now-offset", "61"]);
    assert_eq!(hung["state"], "unavailable", "{hung}");
    assert_eq!(hung["error"]["message"], "Claude: no answer within 0.5 s");
    assert_eq!(hung["windows"], good["windows"], "last good values survive");
}

#[test]
fn every_fault_keeps_the_last_good_values() {
    let faults = vec![
        Reply::json(
            500,
            r#"{"type":"error","error":{"type":"api_error","message":"Internal"}}"#,
        ),
        Reply::CloseMidBody,
        Reply::json(200, "not json at all"),
        Reply::Http {
            status: 503,
            headers: vec![("content-type".into(), "text/html".into())],
            body: b"<html>Bad Gateway</html>".to_vec(),
        },
        Reply::json(200, &format!(r#"{{"pad":"{}"}}"#, "y".repeat(MAX_BODY_BYTES))),
    ];
    let n_faults = faults.len();
    let mut script = vec![Reply::exchange(&exchange(ProviderId::Anthropic, "ok-full"))];
    script.extend(faults);
    let server = Server::start(script);
    let home = tempfile::tempdir().unwrap();
    let env = claude_env(&server);
    let good = refresh(home.path(), &env, &[]);
    assert_eq!(good["state"], "fresh");
    // Backoff doubles the wait after each failure: 60 s, then 120 s, 180 s …
    let mut offset = 0;
    for fault in 1..=n_faults {
        offset += 60 * fault as i64 + 1;
        let view = refresh(home.path(), &env, &["--now-offset", &offset.to_string()]);
        assert_eq!(server.requests(), fault + 1, "fault {fault} was fetched: {view}");
        assert_ne!(view["state"], "fresh", "fault {fault}: {view}");
        assert_eq!(
            view["windows"], good["windows"],
            "fault {fault} kept the last good values"
        );
        assert_eq!(view["updated_at"], good["updated_at"]);
    }
}

#[test]
fn a_401_asks_for_a_login_with_the_command_that_fixes_it() {
    let server = Server::start(vec![Reply::exchange(&exchange(
        ProviderId::Anthropic,
        "err-auth-expired",
    ))]);
    let home = tempfile::tempdir().unwrap();
    let view = refresh(home.path(), &claude_env(&server), &[]);
    assert_eq!(view["state"], "auth_required", "{view}");
    let message = view["error"]["message"].as_str().unwrap();
    assert!(message.ends_with("; run `claude /login`"), "{message}");
    let line = run(home.path(), &[], &["status", "--provider", "anthropic"]);
    assert_eq!(String::from_utf8_lossy(&line.stdout).trim(), "Claude: login needed");
}

#[test]
fn an_expired_token_is_never_sent() {
    let server = Server::start(vec![Reply::exchange(&exchange(ProviderId::Anthropic, "ok-full"))]);
    let home = tempfile::tempdir().unwrap();
    let claude = home.path().join(".claude");
    std::fs::create_dir_all(&claude).unwrap();
    std::fs::write(
        claude.join(".credentials.json"),
        r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-old","expiresAt":1000}}"#,
    )
    .unwrap();
    let env = vec![("QUOTATRACK_ANTHROPIC_BASE_URL", server.origin.clone())];
    let view = refresh(home.path(), &env, &[]);
    assert_eq!(view["state"], "auth_required", "{view}");
    assert_eq!(
        view["error"]["message"],
        "Claude: the token in ~/.claude/.credentials.json has expired; run `claude /login`"
    );
    assert_eq!(server.requests(), 0);
}

#[test]
fn the_record_tool_writes_a_redacted_fixture_that_parses_and_never_overwrites() {
    let server = Server::start(vec![Reply::exchange(&exchange(ProviderId::Zai, "ok-credit-limit"))]);
    let home = tempfile::tempdir().unwrap();
    let fixture = home.path().join("zai.json");
    let record = || {
        Command::new(env!("CARGO_BIN_EXE_record"))
            .env_clear()
            .env("HOME", home.path())
            .env("QUOTATRACK_ZAI_BASE_URL", &server.origin)
            .env("QUOTATRACK_ZAI_TOKEN", "zai-secret-key-123")
            .args(["zai", "--output", fixture.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let output = record();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("zai: HTTP 200, "));
    let text = std::fs::read_to_string(&fixture).unwrap();
    assert!(!text.contains("zai-secret-key-123"));
    let parsed = crate::support::quotatrack(
        &["parse", "zai", fixture.to_str().unwrap(), "--exchange", "--json"],
        b"",
    );
    assert_eq!(
        parsed.status.code(),
        Some(0),
        "the fixture parses: {}",
        String::from_utf8_lossy(&parsed.stdout)
    );

    let again = record();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("cannot write the fixture"));
    assert_eq!(
        std::fs::read_to_string(&fixture).unwrap(),
        text,
        "the first fixture is untouched"
    );

    let nobody = Command::new(env!("CARGO_BIN_EXE_record"))
        .env_clear()
        .env("HOME", home.path())
        .arg("kiro")
        .output()
        .unwrap();
    assert_eq!(nobody.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("no credentials found for kiro"));
}

/// `QUOTATRACK_<ID>_BASE_URL` values as the library reads them.
fn base_url(value: &str) -> Result<String, String> {
    let urls =
        quotatrack::transport::base_urls_from(|name| (name == "QUOTATRACK_ZAI_BASE_URL").then(|| value.to_owned()))
            .map_err(|error| error.to_string())?;
    Ok(urls
        .get(&ProviderId::Zai)
        .map_or_else(String::new, |url| url.to_string()))
}

#[test]
fn a_base_url_is_an_origin_and_anything_it_cannot_honour_is_refused_by_name() {
    for (value, origin) in [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
        ("  https://gateway.example  ", "https://gateway.example/"),
        ("HTTPS://Gateway.Example:443", "https://gateway.example/"),
        ("http://[::1]:9000", "http://[::1]:9000/"),
        ("", ""),
    ] {
        assert_eq!(base_url(value), Ok(origin.to_owned()), "{value:?}");
    }
    for (value, problem) in [
        ("https://gateway.example/v1", "has a path"),
        ("https://gateway.example/api/", "has a path"),
        ("https://gateway.example//", "has a path"),
        ("https://gateway.example/?key=1", "has a query"),
        ("https://gateway.example?", "has a query"),
        ("https://gateway.example/#top", "has a fragment"),
        ("https://user:hunter2@gateway.example", "has a user name or password"),
        ("https://user@gateway.example", "has a user name or password"),
        ("ftp://gateway.example", "is not an http or https URL"),
        ("file:///etc/passwd", "is not an http or https URL"),
        ("localhost:8080", "is not an http or https URL"),
        ("gateway.example", "is not an absolute URL"),
        ("/api", "is not an absolute URL"),
        ("http://", "is not an absolute URL"),
    ] {
        let message = base_url(value).unwrap_err();
        assert_eq!(
            message,
            format!(
                "QUOTATRACK_ZAI_BASE_URL {problem}; set it to an absolute http or https URL with only a scheme, \
                 host and port, such as https://gateway.example:8443, or unset it"
            ),
            "{value:?}"
        );
        assert!(!message.contains("hunter2"), "{message}");
    }
}

#[test]
fn a_base_url_with_a_slash_reaches_the_provider_path_and_a_bad_one_stops_the_binary_first() {
    let server = Server::start(vec![Reply::exchange(&exchange(ProviderId::Anthropic, "ok-full"))]);
    let home = tempfile::tempdir().unwrap();
    let env = vec![
        ("QUOTATRACK_ANTHROPIC_BASE_URL", format!("{}/", server.origin)),
        ("QUOTATRACK_ANTHROPIC_TOKEN", TOKEN.to_owned()),
    ];
    assert_eq!(refresh(home.path(), &env, &[])["state"], "fresh");
    assert!(server.received()[0].head.starts_with("GET /api/oauth/usage HTTP/1.1"));

    let requests = server.requests();
    for bad in [
        format!("{}/v1", server.origin),
        format!("{}/?key=1", server.origin),
        format!("{}#x", server.origin),
        server.origin.replace("http://", "http://me:pw@"),
    ] {
        for args in [
            &["status", "--refresh"][..],
            &["status", "--refresh", "--json"],
            &["watch"],
            &["record", "anthropic"],
            &["status"],
        ] {
            let output = run(
                home.path(),
                &[
                    ("QUOTATRACK_ANTHROPIC_BASE_URL", bad.as_str()),
                    ("QUOTATRACK_ANTHROPIC_TOKEN", TOKEN),
                ],
                args,
            );
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{bad} {args:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(
                stderr.starts_with("quotatrack: QUOTATRACK_ANTHROPIC_BASE_URL has a "),
                "{stderr}"
            );
            assert!(!stderr.contains("pw@"), "{stderr}");
        }
    }
    assert_eq!(server.requests(), requests, "nothing was sent");

    let record = Command::new(env!("CARGO_BIN_EXE_record"))
        .env_clear()
        .env("HOME", home.path())
        .env("QUOTATRACK_ZAI_BASE_URL", "https://gateway.example/zai")
        .env("QUOTATRACK_ZAI_TOKEN", "zai-key")
        .arg("zai")
        .output()
        .unwrap();
    assert_eq!(record.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&record.stderr).lines().next().unwrap_or(""),
        "record: QUOTATRACK_ZAI_BASE_URL has a path; set it to an absolute http or https URL with only a scheme, \
         host and port, such as https://gateway.example:8443, or unset it"
    );
}

const DAY_S: u64 = 86_400;

#[test]
fn retry_after_is_read_by_rfc_9110_and_never_beyond_a_day() {
    // 2026-08-22 is a Saturday.
    let now: Timestamp = "2026-08-22T12:00:00Z".parse().unwrap();
    let read = |value: &str| quotatrack::providers::retry_after(value, now);
    for (value, seconds) in [
        ("300", Some(300)),
        ("0", Some(0)),
        ("1.2", Some(2)),
        ("86400", Some(DAY_S)),
        ("86401", Some(DAY_S)),
        ("99999999999", Some(DAY_S)),
        ("184467440737095516160000", Some(DAY_S)),
        ("Sat, 22 Aug 2026 13:00:00 GMT", Some(3600)),
        // A wrong weekday is read by its date.
        ("Mon, 22 Aug 2026 13:00:00 GMT", Some(3600)),
        ("Thu, 22 Aug 2026 13:00:00 GMT", Some(3600)),
        // The two obsolete forms.
        ("Saturday, 22-Aug-26 13:00:00 GMT", Some(3600)),
        ("Sunday, 22-Aug-26 13:00:00 GMT", Some(3600)),
        ("Sat Aug 22 13:00:00 2026", Some(3600)),
        ("Tue Aug 22 13:00:00 2026", Some(3600)),
        // Past dates: retry now.
        ("Sat, 22 Aug 2026 11:59:59 GMT", Some(0)),
        ("Thu, 01 Jan 1970 00:00:00 GMT", Some(0)),
        ("Sunday, 06-Nov-94 08:49:37 GMT", Some(0)),
        // Far dates: a day.
        ("Sun, 23 Aug 2026 12:00:01 GMT", Some(DAY_S)),
        ("Fri, 31 Dec 9999 23:59:59 GMT", Some(DAY_S)),
        ("Mon, 01 Jan 2300 00:00:00 GMT", Some(DAY_S)),
        // Not a wait.
        ("soon", None),
        ("-5", None),
        ("inf", None),
        ("NaN", None),
        ("Sat, 31 Feb 2026 13:00:00 GMT", None),
        ("Sat, 22 Aug 2026 25:00:00 GMT", None),
        ("", None),
    ] {
        assert_eq!(read(value), seconds, "{value:?}");
    }
}

/// The rate limit `provider`'s fixture `name` comes to at its recording
/// time, after `change` to the exchange.
fn retry_after_of(
    provider: ProviderId,
    name: &str,
    change: impl FnOnce(&mut quotatrack::exchange::RecordedExchange),
) -> Option<u64> {
    let mut recorded = exchange(provider, name);
    change(&mut recorded);
    match Outcome::read(&recorded, recorded.recorded_at) {
        Outcome::Failed { error } if error.kind == ErrorKind::RateLimited => error.retry_after_s,
        other => panic!("{provider} {name}: {other:?}"),
    }
}

#[test]
fn reset_hints_in_headers_and_bodies_are_capped_at_a_day() {
    let header = |value: &'static str| {
        move |recorded: &mut quotatrack::exchange::RecordedExchange| {
            recorded
                .response
                .headers
                .insert("retry-after".to_owned(), value.to_owned());
        }
    };
    assert_eq!(
        retry_after_of(
            ProviderId::Anthropic,
            "err-rate_limited-retry300",
            header("99999999999")
        ),
        Some(DAY_S)
    );
    assert_eq!(
        retry_after_of(
            ProviderId::Anthropic,
            "err-rate_limited-retry300",
            header("Fri, 31 Dec 9999 23:59:59 GMT")
        ),
        Some(DAY_S)
    );
    assert_eq!(
        retry_after_of(
            ProviderId::Anthropic,
            "err-rate_limited-retry300",
            header("Mon, 22 Aug 2026 12:10:00 GMT")
        ),
        Some(600)
    );
    // Codex: the reset in seconds, or its time, in the body.
    assert_eq!(
        retry_after_of(ProviderId::Codex, "err-rate_limited-usage-limit", |recorded| {
            recorded.response.body["error"]["resets_in_seconds"] = serde_json::json!(99_999_999_999u64);
        }),
        Some(DAY_S)
    );
    assert_eq!(
        retry_after_of(ProviderId::Codex, "err-rate_limited-usage-limit", |recorded| {
            let body = recorded.response.body["error"].as_object_mut().unwrap();
            body.remove("resets_in_seconds");
            body.insert("resets_at".to_owned(), serde_json::json!(4_102_444_800i64));
        }),
        Some(DAY_S)
    );
    // Gemini: a reset time stamp in the error details.
    assert_eq!(
        retry_after_of(ProviderId::Gemini, "err-rate_limited-reset-timestamp", |recorded| {
            recorded.response.body["error"]["details"][0]["metadata"]["quotaResetTimeStamp"] =
                serde_json::json!("2100-01-01T00:00:00Z");
        }),
        Some(DAY_S)
    );
    // Copilot: GitHub's reset header.
    assert_eq!(
        retry_after_of(ProviderId::Copilot, "err-rate_limited-github-403", |recorded| {
            recorded
                .response
                .headers
                .insert("x-ratelimit-reset".to_owned(), "4102444800".to_owned());
        }),
        Some(DAY_S)
    );
}

#[test]
fn a_rate_limit_lasts_a_day_at_most_and_new_credentials_lift_it_after_the_minimum_interval() {
    use quotatrack::events::Event;
    use quotatrack::machines::tracker::Rules;
    use quotatrack::store::Store;
    use quotatrack::trackers::{Found, Trackers};

    let p = ProviderId::Anthropic;
    let start: Timestamp = "2026-08-22T12:00:00Z".parse().unwrap();
    let at = |seconds: i64| start + jiff::SignedDuration::from_secs(seconds);
    let found = |key: &str| {
        Some(Found {
            fingerprint: key.to_owned(),
            source: "test".to_owned(),
        })
    };
    let mut hostile = exchange(p, "err-rate_limited-retry300");
    hostile
        .response
        .headers
        .insert("retry-after".to_owned(), "99999999999".to_owned());
    let fetches = |items: &[(Timestamp, quotatrack::events::Stream, Event)]| {
        items
            .iter()
            .any(|(_, _, event)| matches!(event, Event::FetchStarted { .. }))
    };

    let blocked = || {
        let mut driver = Trackers::new(Rules::default(), &[p], &Store::default());
        driver.credentials(p, at(0), found("key-1"));
        assert!(driver.poll(p, at(0)).1);
        let outcome = Outcome::read(&hostile, at(0));
        driver.completed(p, at(0), Some(hostile.clone()), outcome, 0);
        assert_eq!(driver.state(p).unwrap().blocked_until(), Some(at(DAY_S as i64)));
        driver
    };

    // The same credentials: blocked for exactly a day.
    let mut driver = blocked();
    assert!(!driver.poll(p, at(DAY_S as i64 - 1)).1);
    assert!(driver.poll(p, at(DAY_S as i64)).1);

    // New credentials lift the block, but no request within 10 s of the last.
    let mut driver = blocked();
    let items = driver.credentials(p, at(3), found("key-2"));
    assert!(
        items.iter().any(|(_, _, event)| matches!(
            event,
            Event::Transitioned {
                cause: quotatrack::events::Cause::CredentialsChanged,
                ..
            }
        )),
        "{items:?}"
    );
    assert_eq!(driver.state(p).unwrap().name(), "pending");
    assert!(!fetches(&driver.poll(p, at(9)).0));
    assert!(driver.poll(p, at(10)).1, "fetched once the minimum interval has passed");

    // Unchanged credentials, seen again every cycle, lift nothing.
    let mut driver = blocked();
    driver.credentials(p, at(60), found("key-1"));
    assert_eq!(driver.state(p).unwrap().name(), "rate_limited");
    assert!(!driver.poll(p, at(3600)).1);
}

#[test]
fn the_binary_holds_a_hostile_retry_after_for_a_day_and_a_new_token_lifts_it() {
    let limited = || {
        Reply::json(
            429,
            r#"{"error":{"type":"rate_limit_error","message":"Rate limited. Please try again later."}}"#,
        )
        .with_header("retry-after", "99999999999")
    };
    let ok = || Reply::exchange(&exchange(ProviderId::Anthropic, "ok-full"));
    // The clock is stopped at a known time, so the block's end is exact.
    let at = |offset: u64| {
        let time =
            "2026-08-22T12:00:00Z".parse::<Timestamp>().unwrap() + jiff::SignedDuration::from_secs(offset as i64);
        time.to_string()
    };

    // A day, then the block is over.
    let server = Server::start(vec![limited(), ok()]);
    let home = tempfile::tempdir().unwrap();
    let env = claude_env(&server);
    let blocked = refresh(home.path(), &env, &["--clock-at", &at(0)]);
    assert_eq!(blocked["state"], "rate_limited", "{blocked}");
    assert_eq!(blocked["error"]["retry_after_s"], DAY_S, "{blocked}");
    assert_eq!(blocked["blocked_until"], "2026-08-23T12:00:00Z", "{blocked}");
    let still = refresh(home.path(), &env, &["--clock-at", &at(DAY_S - 1)]);
    assert_eq!(still["state"], "rate_limited", "{still}");
    assert_eq!(server.requests(), 1);
    let after = refresh(home.path(), &env, &["--clock-at", &at(DAY_S)]);
    assert_eq!(after["state"], "fresh", "{after}");
    assert_eq!(server.requests(), 2);

    // A new token lifts it at the next refresh past the 10 s floor.
    let server = Server::start(vec![limited(), ok()]);
    let home = tempfile::tempdir().unwrap();
    let blocked = refresh(home.path(), &claude_env(&server), &["--clock-at", &at(0)]);
    assert_eq!(blocked["state"], "rate_limited", "{blocked}");
    let same = refresh(home.path(), &claude_env(&server), &["--clock-at", &at(5)]);
    assert_eq!(same["state"], "rate_limited", "the same token stays blocked: {same}");
    let rotated = vec![
        ("QUOTATRACK_ANTHROPIC_BASE_URL", server.origin.clone()),
        ("QUOTATRACK_ANTHROPIC_TOKEN", "sk-ant-oat01-a-new-login".to_owned()),
    ];
    let early = refresh(home.path(), &rotated, &["--clock-at", &at(9)]);
    assert_ne!(early["state"], "rate_limited", "the block is lifted: {early}");
    assert_eq!(server.requests(), 1, "but nothing within 10 s of the last request");
    let lifted = refresh(home.path(), &rotated, &["--clock-at", &at(10)]);
    assert_eq!(lifted["state"], "fresh", "{lifted}");
    assert_eq!(server.requests(), 2);
    assert_eq!(
        server.received()[1].header("authorization").as_deref(),
        Some("Bearer sk-ant-oat01-a-new-login")
    );
}
