//! `serve --http` over real HTTP on 127.0.0.1: every endpoint against the
//! engine it serves (in process, over real sled and a manual clock), bad
//! paths and methods, the bounds, the token rule, and the real binary as
//! owner and follower. The Prometheus toolchain checks `/metrics` and
//! `contrib/alerts.yml` when it is installed (`.ci/run` installs it);
//! without it those checks say so on stderr and pass.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use quotatrack::clock::ManualClock;
use quotatrack::credentials::FixedCredentials;
use quotatrack::engine::Engine;
use quotatrack::history::{self, Query};
use quotatrack::http::{self, Options, Published, Source, Token, Unavailable};
use quotatrack::providers::ProviderId::{self, Anthropic, Codex};
use quotatrack::transport::ExchangePlayer;
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{exchange, fixtures_dir, quotatrack};

/// How long a process may take to start, answer or stop.
const PATIENCE: Duration = Duration::from_secs(30);

fn start() -> Timestamp {
    "2026-08-22T12:00:00Z".parse().unwrap()
}

/// An engine over two providers' recorded answers, its [`Published`]
/// source and the server, on a manual clock.
struct Rig {
    engine: Engine,
    clock: Arc<ManualClock>,
    published: Arc<Published>,
    base: String,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    dir: TempDir,
}

/// [`Published`], telling each scrape of `/metrics` to `scrapes`.
struct Scraped {
    published: Arc<Published>,
    scrapes: Option<tokio::sync::mpsc::UnboundedSender<()>>,
}

impl Source for Scraped {
    fn status(&self) -> Result<quotatrack::wire::Status, Unavailable> {
        self.published.status()
    }

    async fn history(&self, query: Query) -> Result<Vec<history::Series>, Unavailable> {
        self.published.history(query).await
    }

    fn health(&self) -> http::Health {
        self.published.health()
    }

    fn observation(&self) -> Result<http::metrics::Observation, Unavailable> {
        if let Some(scrapes) = &self.scrapes {
            let _ = scrapes.send(());
        }
        self.published.observation()
    }
}

impl Rig {
    async fn new(options: Options) -> Rig {
        Rig::watched(options, None).await
    }

    /// A rig whose server tells each scrape to `scrapes`.
    async fn watched(options: Options, scrapes: Option<tokio::sync::mpsc::UnboundedSender<()>>) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(start()));
        let script = BTreeMap::from([
            (Anthropic, vec![exchange(Anthropic, "ok-full")]),
            (Codex, vec![exchange(Codex, "ok-free-weekly-only")]),
        ]);
        let providers = [Anthropic, Codex];
        let player = ExchangePlayer::new(script, clock.clone()).holding_last();
        let engine = Engine::builder()
            .data_dir(dir.path())
            .clock(clock.clone())
            .transport(Arc::new(player))
            .credentials(Arc::new(FixedCredentials::present(providers.to_vec(), "test")))
            .providers(&providers)
            .status_pages(None)
            .build()
            .unwrap();
        let published = Arc::new(Published::follower(dir.path(), clock.clone(), Duration::from_secs(60)));
        let listener = http::bind("127.0.0.1:0".parse().unwrap(), options.token.as_ref())
            .await
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let source = Arc::new(Scraped {
            published: Arc::clone(&published),
            scrapes,
        });
        let server = tokio::spawn(http::serve(listener, source, options, async {
            let _ = stopped.await;
        }));
        quotatrack::transport::tls_ready();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut rig = Rig {
            engine,
            clock,
            published,
            base,
            client,
            stop: Some(stop),
            server: Some(server),
            dir,
        };
        rig.cycle().await;
        rig
    }

    /// One cycle, published as the binary's loop does.
    async fn cycle(&mut self) {
        self.engine.cycle().await.unwrap();
        self.published.update(&self.engine);
    }

    fn advance(&self, seconds: i64) {
        self.clock.advance(SignedDuration::from_secs(seconds));
    }

    async fn get(&self, path: &str) -> Answer {
        Answer::of(self.client.get(format!("{}{path}", self.base)).send().await.unwrap()).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        Answer::of(request.send().await.unwrap()).await
    }

    /// The answer to a request the server refuses before reading all of it
    /// (a body or head over its bound): the server answers and closes, and
    /// on a busy machine the client may see the close (a reset) before the
    /// answer; such a send is tried again, a bounded number of times.
    async fn send_refused(&self, request: reqwest::RequestBuilder) -> Answer {
        for _ in 0..50 {
            let attempt = request.try_clone().expect("a request with a plain body");
            if let Ok(response) = attempt.send().await {
                return Answer::of(response).await;
            }
        }
        panic!("no answer in 50 tries")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(PATIENCE, server)
                .await
                .expect("the server stops once asked")
                .unwrap()
                .unwrap();
        }
        self.engine.close().unwrap();
    }
}

/// A response, read whole.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    async fn of(response: reqwest::Response) -> Answer {
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// Asserts a JSON error `{"error":{"message":…}}` with this status.
    fn assert_error(&self, status: u16, says: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(
            self.header("content-type").starts_with("application/json"),
            "{:?}",
            self.headers
        );
        let message = self.json()["error"]["message"].as_str().unwrap_or_default().to_owned();
        assert!(message.contains(says), "{message:?} should say {says:?}");
        assert!(!message.contains('\n'), "one line: {message:?}");
    }
}

/// The value of the sample `name{labels}` in a text exposition; labels in
/// name order, as the encoder writes them.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    let series = if labels.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{}}}", labels.join(","))
    };
    text.lines()
        .find_map(|line| line.strip_prefix(&series)?.strip_prefix(' '))
        .map(|value| value.parse().unwrap())
}

/// Says on the real stderr (not the test harness's captured one) that a
/// check was skipped.
fn skipped(what: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED: {what}");
}

/// `promtool` when installed; otherwise says so and returns `None`.
fn promtool(what: &str) -> Option<Command> {
    match Command::new("promtool").arg("--version").output() {
        Ok(output) if output.status.success() => Some(Command::new("promtool")),
        _ => {
            skipped(&format!(
                "{what}: promtool is not installed (Debian: apt-get install prometheus)"
            ));
            None
        }
    }
}

/// `promtool check metrics` on `text`: it must report nothing.
fn check_metrics(text: &str) {
    let Some(mut promtool) = promtool("promtool check metrics") else {
        return;
    };
    let mut child = promtool
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_exactly_what_status_json_prints() {
    let rig = Rig::new(Options::default()).await;
    let answer = rig.get("/v1/status").await;
    assert_eq!(answer.status, 200);
    assert!(answer.header("content-type").starts_with("application/json"));
    let served = answer.json();
    let data = rig.dir.path().to_str().unwrap().to_owned();
    let at = start().to_string();
    let printed = tokio::task::spawn_blocking(move || {
        quotatrack(&["--data-dir", &data, "--clock-at", &at, "status", "--json"], b"")
    })
    .await
    .unwrap();
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    let printed: Value = serde_json::from_slice(&printed.stdout).unwrap();
    assert_eq!(served, printed);
    let ids: Vec<&str> = served["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["anthropic", "codex"]);
    assert!(!served["providers"][0]["windows"].as_array().unwrap().is_empty());
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_the_series_of_the_log() {
    let mut rig = Rig::new(Options::default()).await;
    for _ in 0..3 {
        rig.advance(60);
        rig.cycle().await;
    }
    let events: Vec<_> = rig
        .engine
        .log()
        .expect("a log on disk")
        .entries(0)
        .map(Result::unwrap)
        .collect();
    let query = Query {
        provider: Some(Anthropic),
        window: Some("5h".into()),
        ..Query::default()
    };
    let expected = serde_json::to_value(history::series(&events, query)).unwrap();
    let answer = rig.get("/v1/history?provider=anthropic&window=5h").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let served = answer.json();
    assert_eq!(served["series"], expected);
    assert_eq!(
        served["series"][0]["points"].as_array().unwrap().len(),
        4,
        "one per cycle"
    );

    // `since` as a duration back from now, and as a time.
    let since_two_minutes = rig
        .get("/v1/history?provider=anthropic&window=5h&since=2m")
        .await
        .json();
    assert_eq!(since_two_minutes["series"][0]["points"].as_array().unwrap().len(), 3);
    let since = (start() + SignedDuration::from_secs(180)).to_string();
    let at_time = rig.get(&format!("/v1/history?since={since}")).await.json();
    for series in at_time["series"].as_array().unwrap() {
        assert_eq!(series["points"].as_array().unwrap().len(), 1, "{series}");
    }
    let everything = rig.get("/v1/history").await.json();
    assert!(everything["series"].as_array().unwrap().len() >= 2, "both providers");

    rig.get("/v1/history?provider=nobody").await.assert_error(400, "nobody");
    let hostile = rig
        .get(&format!("/v1/history?provider=%0A%1B[2J{}", "x".repeat(5000)))
        .await;
    hostile.assert_error(400, "no provider");
    assert!(hostile.body.len() < 400, "the value is cut short: {}", hostile.body);
    rig.get("/v1/history?since=yesterday").await.assert_error(400, "since");
    rig.get("/v1/history?every=0s").await.assert_error(400, "every");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_503_without_a_cycle_for_three_intervals_or_with_a_failed_log() {
    let rig = Rig::new(Options::default()).await;
    let answer = rig.get("/healthz").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["role"], "owner");
    assert_eq!(body["last_cycle_at"], "2026-08-22T12:00:00Z");
    assert_eq!(body["interval_s"], 60);
    assert_eq!(body["log_ok"], true);

    rig.advance(180);
    assert_eq!(rig.get("/healthz").await.status, 200, "three intervals are allowed");
    rig.advance(1);
    let late = rig.get("/healthz").await;
    assert_eq!(late.status, 503);
    assert_eq!(late.json()["status"], "unhealthy");
    assert!(late.json()["reason"].as_str().unwrap().contains("no cycle for 181 s"));

    let mut rig = rig;
    rig.cycle().await;
    assert_eq!(rig.get("/healthz").await.status, 200);
    let damaged = std::io::Error::other("the log in /tmp/x is damaged (test); run `quotatrack log repair`");
    rig.published.failed(&damaged);
    let failed = rig.get("/healthz").await;
    assert_eq!(failed.status, 503);
    assert_eq!(failed.json()["log_ok"], false);
    assert!(failed.json()["reason"].as_str().unwrap().contains("log repair"));
    let metrics = rig.get("/metrics").await.body;
    assert_eq!(sample(&metrics, "quotatrack_log_healthy", &[]), Some(0.0));
    rig.cycle().await;
    assert_eq!(
        rig.get("/healthz").await.status,
        200,
        "a good cycle clears a failed one"
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_every_window_state_and_fetch_in_the_classic_format() {
    let mut rig = Rig::new(Options::default()).await;
    rig.advance(60);
    rig.cycle().await;
    let answer = rig.get("/metrics").await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = &answer.body;
    let status = rig.get("/v1/status").await.json();
    for provider in status["providers"].as_array().unwrap() {
        let id = provider["id"].as_str().unwrap();
        for window in provider["windows"].as_array().unwrap() {
            let labels = [("provider", id), ("window", window["id"].as_str().unwrap())];
            assert_eq!(
                sample(text, "quotatrack_window_used_ratio", &labels),
                window["used_ratio"].as_f64(),
                "{labels:?}"
            );
            let resets: Option<f64> = window["resets_at"]
                .as_str()
                .map(|at| at.parse::<Timestamp>().unwrap().as_second() as f64);
            assert_eq!(
                sample(text, "quotatrack_window_reset_timestamp_seconds", &labels),
                resets
            );
            assert_eq!(
                sample(text, "quotatrack_window_length_seconds", &labels),
                window["total_time_s"].as_f64()
            );
        }
        let states = [
            "fresh",
            "stale",
            "rate_limited",
            "auth_required",
            "unavailable",
            "inactive",
            "unknown",
        ];
        let hot: Vec<&str> = states
            .into_iter()
            .filter(|state| {
                sample(text, "quotatrack_provider_state", &[("provider", id), ("state", state)]) == Some(1.0)
            })
            .collect();
        assert_eq!(hot, [provider["state"].as_str().unwrap()], "one-hot for {id}");
        assert_eq!(
            sample(
                text,
                "quotatrack_fetches_total",
                &[("error_kind", "none"), ("outcome", "ok"), ("provider", id)]
            ),
            Some(2.0),
            "two cycles, two fetches of {id}"
        );
        assert_eq!(
            sample(
                text,
                "quotatrack_provider_last_success_age_seconds",
                &[("provider", id)]
            ),
            Some(0.0)
        );
    }
    let events = rig.engine.log().expect("a log on disk").next_seq() as f64;
    assert_eq!(sample(text, "quotatrack_log_events", &[]), Some(events));
    assert!(sample(text, "quotatrack_log_size_bytes", &[]).unwrap() > 0.0);
    let now = (start() + SignedDuration::from_secs(60)).as_second() as f64;
    assert_eq!(
        sample(text, "quotatrack_log_last_append_timestamp_seconds", &[]),
        Some(now)
    );
    assert_eq!(sample(text, "quotatrack_owner", &[]), Some(1.0));
    assert_eq!(
        sample(text, "quotatrack_build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
        Some(1.0)
    );
    for line in text.lines().filter(|line| line.starts_with("# TYPE")) {
        let mut words = line.split(' ').skip(2);
        let (name, kind) = (words.next().unwrap(), words.next().unwrap());
        assert!(name.starts_with("quotatrack_"), "{line}");
        assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
    }
    check_metrics(text);

    // A scraper that asks for OpenMetrics still gets the classic format.
    let open = rig
        .send(
            rig.client
                .get(rig.url("/metrics"))
                .header("accept", "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
        )
        .await;
    assert_eq!(open.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_paths_are_404_and_bad_methods_405_as_json() {
    let rig = Rig::new(Options::default()).await;
    for path in ["/", "/v1", "/v1/statuses", "/metrics/x", "/v2/status", "/%ff", "/a%0Ab"] {
        rig.get(path).await.assert_error(404, "no such path");
    }
    let long = rig.get(&format!("/{}", "y".repeat(8000))).await;
    long.assert_error(404, "no such path");
    assert!(long.body.len() < 400, "{}", long.body);
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        for path in ["/v1/status", "/v1/history", "/healthz", "/metrics"] {
            let request = rig
                .client
                .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), rig.url(path));
            let answer = rig.send(request).await;
            answer.assert_error(405, method);
            assert_eq!(answer.header("allow"), "GET, HEAD");
        }
    }
    let head = rig.send(rig.client.head(rig.url("/v1/status"))).await;
    assert_eq!(head.status, 200);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_bounded_in_body_head_time_and_connections() {
    let options = Options {
        max_body_bytes: 64,
        max_connections: 2,
        request_time: Duration::from_millis(300),
        ..Options::default()
    };
    let mut rig = Rig::new(options).await;
    // No idle connections kept by the client: they would hold slots.
    quotatrack::transport::tls_ready();
    rig.client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let body = rig
        .send_refused(rig.client.get(rig.url("/v1/status")).body(vec![b'x'; 65]))
        .await;
    body.assert_error(413, "larger than 64 bytes");
    let small = rig
        .send(rig.client.get(rig.url("/v1/status")).body(vec![b'x'; 64]))
        .await;
    assert_eq!(small.status, 200);

    let head = rig
        .send_refused(
            rig.client
                .get(rig.url("/v1/status"))
                .header("x-filler", "y".repeat(20_000)),
        )
        .await;
    assert_eq!(head.status, 431, "a head over 16 KiB");

    // A head that never finishes is cut off at the request time.
    let address = rig.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /v1/status HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(PATIENCE, slow.read_to_end(&mut rest))
        .await
        .expect("the server closes a head that takes longer than the request time")
        .ok();
    drop(slow);

    // Two connections held open; a third is told to come back. (The
    // connections above free their slots as the server sees them close,
    // which may be a moment after: a held one is retried until served.)
    let mut held = Vec::new();
    for _ in 0..10_000 {
        if held.len() == 2 {
            break;
        }
        let mut connection = tokio::net::TcpStream::connect(&address).await.unwrap();
        connection
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut first = [0u8; 12];
        connection.read_exact(&mut first).await.unwrap();
        match &first {
            b"HTTP/1.1 200" => held.push(connection),
            b"HTTP/1.1 503" => tokio::task::yield_now().await,
            other => panic!("{}", String::from_utf8_lossy(other)),
        }
    }
    assert_eq!(held.len(), 2, "two connections are served");
    let mut third = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut refused = Vec::new();
    tokio::time::timeout(PATIENCE, third.read_to_end(&mut refused))
        .await
        .unwrap()
        .unwrap();
    let refused = String::from_utf8_lossy(&refused);
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(
        refused.contains(r#"{"error":{"message":"too many connections"#),
        "{refused}"
    );
    drop(held);
    // The slots come back as the held connections close.
    let mut answered = None;
    for _ in 0..10_000 {
        match rig.client.get(rig.url("/healthz")).send().await {
            Ok(response) if response.status() == 200 => {
                answered = Some(response.status());
                break;
            }
            _ => tokio::task::yield_now().await,
        }
    }
    assert!(answered.is_some(), "a slot came back");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_required_on_every_path_but_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "  s3cret-Token_42\n\n").unwrap();
    let token = Token::read(&file).unwrap();
    assert_eq!(format!("{token:?}"), "Token([redacted])");
    let rig = Rig::new(Options {
        token: Some(token),
        ..Options::default()
    })
    .await;
    for path in ["/v1/status", "/v1/history", "/metrics", "/nowhere"] {
        let bare = rig.get(path).await;
        bare.assert_error(401, "bearer token");
        assert_eq!(bare.header("www-authenticate"), "Bearer");
        assert!(!bare.body.contains("s3cret"));
        for wrong in [
            "Bearer s3cret-Token_4",
            "Bearer s3cret-Token_420",
            "Basic s3cret-Token_42",
            "s3cret-Token_42",
        ] {
            let answer = rig
                .send(rig.client.get(rig.url(path)).header("authorization", wrong))
                .await;
            assert_eq!(answer.status, 401, "{wrong}");
        }
    }
    for path in ["/v1/status", "/v1/history", "/metrics"] {
        let answer = rig
            .send(rig.client.get(rig.url(path)).bearer_auth("s3cret-Token_42"))
            .await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    }
    assert_eq!(rig.get("/healthz").await.status, 200, "health needs no token");
    rig.stop().await;

    for (content, says) in [
        ("", "it is empty"),
        ("  \n", "it is empty"),
        ("a b", "one word of printable ASCII"),
    ] {
        std::fs::write(&file, content).unwrap();
        let error = Token::read(&file).unwrap_err().to_string();
        assert!(error.contains(says), "{error}");
    }
    let missing = Token::read(&dir.path().join("absent")).unwrap_err().to_string();
    assert!(missing.starts_with("cannot use the token file"), "{missing}");
}

#[test]
fn addresses_are_loopback_unless_given() {
    let parse = |text: &str| http::parse_address(text).map(|address| address.to_string());
    assert_eq!(parse("9184").unwrap(), "127.0.0.1:9184");
    assert_eq!(parse(":9184").unwrap(), "127.0.0.1:9184");
    assert_eq!(parse("localhost:9184").unwrap(), "127.0.0.1:9184");
    assert_eq!(parse("0.0.0.0:9184").unwrap(), "0.0.0.0:9184");
    assert_eq!(parse("[::1]:9184").unwrap(), "[::1]:9184");
    assert!(parse("example.com:80").unwrap_err().contains("not an address"));
    assert!(http::check_address("[::1]:1".parse().unwrap(), None).is_ok());
    let refused = http::check_address("0.0.0.0:1".parse().unwrap(), None).unwrap_err();
    assert!(refused.to_string().contains("needs a bearer token"));
    let token = Token::new("t").unwrap();
    assert!(http::check_address("0.0.0.0:1".parse().unwrap(), Some(&token)).is_ok());
}

/// The real binary serving http: its stderr lines as they come.
struct Server {
    child: Child,
    lines: Receiver<String>,
    base: String,
    said: Vec<String>,
}

impl Server {
    /// Starts `quotatrack ARGS` and waits for its `serving http on` line.
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_quotatrack"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        let mut said = Vec::new();
        let base = loop {
            let Ok(line) = lines.recv_timeout(PATIENCE) else {
                let _ = child.kill();
                panic!("quotatrack {args:?} said no address: {said:?}");
            };
            if let Some(address) = line.strip_prefix("quotatrack: serving http on ") {
                break address.to_owned();
            }
            said.push(line);
        };
        Server {
            child,
            lines,
            base,
            said,
        }
    }

    /// Waits for a stderr line containing `what`.
    fn wait_for(&mut self, what: &str) -> String {
        loop {
            match self.lines.recv_timeout(PATIENCE) {
                Ok(line) if line.contains(what) => return line,
                Ok(line) => self.said.push(line),
                Err(_) => panic!("no line saying {what:?} within {PATIENCE:?}: {:?}", self.said),
            }
        }
    }

    /// The same URL on 127.0.0.1 (for a server bound to every address).
    fn local(&self, path: &str) -> String {
        let port = self.base.rsplit(':').next().unwrap();
        format!("http://127.0.0.1:{port}{path}")
    }

    /// SIGTERM, then its exit status and everything it said on stderr.
    fn stop(mut self) -> (ExitStatus, Vec<String>) {
        // SAFETY: a signal to the child this test spawned and still holds.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let (done, finished) = channel();
        let mut child = self.child;
        let pid = child.id();
        std::thread::spawn(move || {
            let _ = done.send(child.wait());
        });
        let Ok(status) = finished.recv_timeout(PATIENCE) else {
            // SAFETY: as above.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("serve --http did not stop on SIGTERM within {PATIENCE:?}");
        };
        while let Ok(line) = self.lines.recv_timeout(PATIENCE) {
            self.said.push(line);
        }
        (status.unwrap(), self.said)
    }
}

/// GET `url`, with a bearer token when given.
async fn fetch(url: &str, token: Option<&str>) -> (u16, String) {
    quotatrack::transport::tls_ready();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let request = client.get(url);
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The fixtures' good answers only (`ok-*`), so every cycle has readings.
fn good_fixtures() -> TempDir {
    let good = tempfile::tempdir().unwrap();
    for provider in ProviderId::ALL {
        let from = fixtures_dir().join(provider.as_str());
        std::fs::create_dir_all(good.path().join(provider.as_str())).unwrap();
        for entry in std::fs::read_dir(&from).unwrap().map(Result::unwrap) {
            if entry.file_name().to_str().unwrap().starts_with("ok-") {
                std::fs::copy(
                    entry.path(),
                    good.path().join(provider.as_str()).join(entry.file_name()),
                )
                .unwrap();
            }
        }
    }
    good
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_as_owner_and_a_second_one_follows_then_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let data = dir.path().to_str().unwrap();
    // Good readings only, so the history has series to compare.
    let good = good_fixtures();
    let fixtures = good.path().to_str().unwrap();
    let at = start().to_string();
    let args = [
        "--data-dir",
        data,
        "--clock-at",
        &at,
        "--fixtures",
        fixtures,
        "serve",
        "--http",
        "127.0.0.1:0",
    ];
    let owner = Server::start(&args);
    assert!(owner.base.starts_with("http://127.0.0.1:"), "{}", owner.base);
    let (code, health) = fetch(&format!("{}/healthz", owner.base), None).await;
    assert_eq!(code, 200, "{health}");
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["role"], "owner");
    assert_eq!(health["last_cycle_at"], at.as_str());
    let (code, status) = fetch(&format!("{}/v1/status", owner.base), None).await;
    assert_eq!(code, 200);
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["providers"].as_array().unwrap().len(), ProviderId::ALL.len());
    let (code, metrics) = fetch(&format!("{}/metrics", owner.base), None).await;
    assert_eq!(code, 200);
    assert_eq!(sample(&metrics, "quotatrack_owner", &[]), Some(1.0));
    check_metrics(&metrics);

    let follower = Server::start(&args);
    let (code, health) = fetch(&format!("{}/healthz", follower.base), None).await;
    assert_eq!(code, 200, "{health}");
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["role"], "follower");
    assert_eq!(health["last_cycle_at"], at.as_str(), "the owner's last cycle");
    let (_, followed) = fetch(&format!("{}/v1/status", follower.base), None).await;
    assert_eq!(
        serde_json::from_str::<Value>(&followed).unwrap(),
        status,
        "the owner's snapshot"
    );
    // The follower asks the owner for history: the same series, whatever the query.
    for query in ["", "?provider=anthropic&every=1h", "?since=2d&window=5h"] {
        let (code, owned) = fetch(&format!("{}/v1/history{query}", owner.base), None).await;
        assert_eq!(code, 200, "{owned}");
        let (code, followed) = fetch(&format!("{}/v1/history{query}", follower.base), None).await;
        assert_eq!(code, 200, "{followed}");
        let owned: Value = serde_json::from_str(&owned).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&followed).unwrap(), owned, "{query}");
        if query.is_empty() {
            assert!(!owned["series"].as_array().unwrap().is_empty(), "{owned}");
        }
    }
    let (_, metrics) = fetch(&format!("{}/metrics", follower.base), None).await;
    assert_eq!(sample(&metrics, "quotatrack_owner", &[]), Some(0.0));
    check_metrics(&metrics);

    // The owner stops: the follower takes the data dir over and runs the engine.
    let (status, said) = owner.stop();
    assert_eq!(status.code(), Some(0), "{said:?}");
    assert!(said.is_empty(), "nothing but the address on stderr: {said:?}");
    let mut follower = follower;
    let line = follower.wait_for("owns it now");
    assert!(line.starts_with("quotatrack: the engine that owned "), "{line}");
    let (code, health) = fetch(&format!("{}/healthz", follower.base), None).await;
    assert_eq!(code, 200, "{health}");
    assert_eq!(serde_json::from_str::<Value>(&health).unwrap()["role"], "owner");
    let (code, history) = fetch(&format!("{}/v1/history", follower.base), None).await;
    assert_eq!(code, 200, "{history}");
    let (_, metrics) = fetch(&format!("{}/metrics", follower.base), None).await;
    assert_eq!(sample(&metrics, "quotatrack_owner", &[]), Some(1.0));
    let (status, said) = follower.stop();
    assert_eq!(status.code(), Some(0), "{said:?}");
    let verify = quotatrack(&["--data-dir", data, "log", "verify"], b"");
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}

/// A follower whose owner is `watch` gets its history from it (read from
/// the owner's log: the series `quotatrack history` reads in place once
/// the owner stopped); one whose owner cannot be reached answers 503 with
/// a JSON error saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_gets_history_from_a_watch_owner_and_says_why_without_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let data = dir.path().to_str().unwrap();
    let good = good_fixtures();
    let fixtures = good.path().to_str().unwrap();
    let at = start().to_string();
    let common = ["--data-dir", data, "--clock-at", &at, "--fixtures", fixtures];
    let mut watch = Command::new(env!("CARGO_BIN_EXE_quotatrack"))
        .args(common)
        .arg("watch")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kept open: `watch` stops when its stdout closes.
    let mut printed = BufReader::new(watch.stdout.take().unwrap());
    let mut first = String::new();
    printed.read_line(&mut first).unwrap();
    let follower = Server::start(&[common.as_slice(), &["serve", "--http", "127.0.0.1:0"]].concat());
    let (code, from_watch) = fetch(&format!("{}/v1/history?since=1d&every=1m", follower.base), None).await;
    assert_eq!(code, 200, "{from_watch}");
    let from_watch: Value = serde_json::from_str(&from_watch).unwrap();
    assert!(!from_watch["series"].as_array().unwrap().is_empty(), "{from_watch}");
    // The owner's socket gone (the follower keeps its snapshot): 503 saying so.
    std::fs::remove_file(dir.path().join("control.sock")).unwrap();
    let (code, body) = fetch(&format!("{}/v1/history", follower.base), None).await;
    assert_eq!(code, 503, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("no engine answers on "),
        "{body}"
    );
    let (status, said) = follower.stop();
    assert!(status.code().is_some(), "{said:?}");
    // SAFETY: a signal to the child this test spawned and still holds.
    unsafe { libc::kill(watch.id() as i32, libc::SIGTERM) };
    watch.wait().unwrap();
    drop(printed);
    // The same series (window by window, point by point) as read in place,
    // the owner gone; `history --json` writes its times and ratios its own way.
    let read = quotatrack(
        &[
            "--data-dir",
            data,
            "--clock-at",
            &at,
            "history",
            "--since",
            "1d",
            "--every",
            "1m",
            "--json",
        ],
        b"",
    );
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    let read: Value = serde_json::from_slice(&read.stdout).unwrap();
    let shape = |series: &Value| -> Vec<(String, String, usize)> {
        series
            .as_array()
            .unwrap()
            .iter()
            .map(|one| {
                (
                    one["provider"].to_string(),
                    one["window"].to_string(),
                    one["points"].as_array().unwrap().len(),
                )
            })
            .collect()
    };
    assert_eq!(shape(&read["series"]), shape(&from_watch["series"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_loopback_the_binary_needs_a_token_and_then_asks_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let fixtures = fixtures_dir();
    let fixtures = fixtures.to_str().unwrap();
    let refused = quotatrack(
        &[
            "--data-dir",
            data,
            "--fixtures",
            fixtures,
            "serve",
            "--http",
            "0.0.0.0:0",
        ],
        b"",
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(refused.stdout.is_empty());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(
        said.starts_with("quotatrack: serving http on 0.0.0.0:0 (not a loopback address) needs a bearer token"),
        "{said}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "refused before touching the data dir"
    );

    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "\n").unwrap();
    let token_path = token_file.to_str().unwrap();
    let empty = quotatrack(
        &[
            "--data-dir",
            data,
            "serve",
            "--http",
            "0.0.0.0:0",
            "--http-token-file",
            token_path,
        ],
        b"",
    );
    assert_eq!(empty.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&empty.stderr).contains("it is empty"));

    let secret = "Zq7-canary-token-4f1c";
    std::fs::write(&token_file, format!("{secret}\n")).unwrap();
    let server = Server::start(&[
        "--data-dir",
        data,
        "--fixtures",
        fixtures,
        "serve",
        "--http",
        "0.0.0.0:0",
        "--http-token-file",
        token_path,
    ]);
    assert!(server.base.starts_with("http://0.0.0.0:"), "{}", server.base);
    let (code, body) = fetch(&server.local("/v1/status"), None).await;
    assert_eq!(code, 401, "{body}");
    assert!(!body.contains(secret));
    assert_eq!(fetch(&server.local("/metrics"), Some("wrong")).await.0, 401);
    assert_eq!(fetch(&server.local("/v1/status"), Some(secret)).await.0, 200);
    assert_eq!(fetch(&server.local("/metrics"), Some(secret)).await.0, 200);
    assert_eq!(fetch(&server.local("/healthz"), None).await.0, 200);
    let (status, said) = server.stop();
    assert_eq!(status.code(), Some(0));
    assert!(said.iter().all(|line| !line.contains(secret)), "{said:?}");
}

#[test]
fn the_alerting_rules_pass_promtool_and_fire_on_their_cases() {
    let Some(mut check) = promtool("promtool check rules contrib/alerts.yml") else {
        return;
    };
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/alerts.yml");
    let output = check.args(["check", "rules"]).arg(&rules).output().unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("SUCCESS: 4 rules found"), "{said}");
    // Each alert fires on its series and not on the near misses.
    let cases = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promtool/alerts_test.yml");
    let Some(mut test) = promtool("promtool test rules") else {
        return;
    };
    let output = test.args(["test", "rules"]).arg(&cases).output().unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_server_and_answers_a_used_ratio_query() {
    let installed = Command::new("prometheus")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !installed {
        skipped("a real prometheus scrape: prometheus is not installed (Debian: apt-get install prometheus)");
        return;
    }
    let (scraped, mut scrapes) = tokio::sync::mpsc::unbounded_channel();
    let rig = Rig::watched(Options::default(), Some(scraped)).await;
    let expected = rig.get("/v1/status").await.json()["providers"][0]["windows"][0].clone();
    let window = expected["id"].as_str().unwrap().to_owned();

    let dir = tempfile::tempdir().unwrap();
    let target = rig.base.trim_start_matches("http://");
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: quotatrack\n    static_configs:\n      - targets: ['{target}']\n"
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    // A free port for its web API (it says none back when given port 0).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // A target's scrapes run one after another, each stored before the
    // next starts: after the second scrape the first one's samples are
    // queryable. No clock is waited on; each scrape is bounded.
    let query = format!(
        "http://127.0.0.1:{port}/api/v1/query?query=quotatrack_window_used_ratio%7Bprovider%3D%22anthropic%22%2Cwindow%3D%22{window}%22%7D"
    );
    let mut answer = Value::Null;
    for _ in 0..10 {
        let scrape = tokio::time::timeout(PATIENCE, scrapes.recv()).await;
        if scrape.is_err() {
            let _ = prometheus.kill();
            panic!("prometheus did not scrape within {PATIENCE:?}");
        }
        let Ok(response) = rig.client.get(&query).send().await else {
            continue;
        };
        answer = response.json().await.unwrap_or(Value::Null);
        if answer["data"]["result"]
            .as_array()
            .is_some_and(|result| !result.is_empty())
        {
            break;
        }
    }
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    let result = &answer["data"]["result"][0];
    assert_eq!(result["metric"]["job"], "quotatrack", "{answer}");
    let value: f64 = result["value"][1].as_str().unwrap().parse().unwrap();
    assert_eq!(Some(value), expected["used_ratio"].as_f64(), "{answer}");
    rig.stop().await;
}

/// `serve --stdio --http`: one process answers its host on stdio and
/// serves the same engine over HTTP (the owner's role, its status), until
/// the host ends the session.
#[test]
fn http_and_stdio_together_serve_one_engine() {
    use std::io::{Read, Write};

    let dir = tempfile::tempdir().unwrap();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/example");
    let mut child = Command::new(env!("CARGO_BIN_EXE_quotatrack"))
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--fixtures",
            example.to_str().unwrap(),
        ])
        .args(["serve", "--stdio", "--http", "127.0.0.1:0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (send, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                return;
            }
        }
    });
    let base = loop {
        let line = lines.recv_timeout(PATIENCE).expect("an address on stderr");
        if let Some(address) = line.strip_prefix("quotatrack: serving http on http://") {
            break address.to_owned();
        }
    };
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"{\"type\":\"session_start\"}\n").unwrap();
    let get = |path: &str| {
        let mut stream = std::net::TcpStream::connect(&base).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    // The engine publishes once its session has started and cycled.
    let mut health = String::new();
    for _ in 0..2_000 {
        health = get("/healthz");
        if health.contains("\"role\":\"owner\"") {
            break;
        }
        std::thread::yield_now();
    }
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("\"role\":\"owner\""), "{health}");
    let status = get("/v1/status");
    assert!(
        status.starts_with("HTTP/1.1 200") && status.contains("\"id\":\"anthropic\""),
        "{status}"
    );

    stdin.write_all(b"{\"type\":\"session_shutdown\"}\n").unwrap();
    drop(stdin);
    let (done, finished) = channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = finished
        .recv_timeout(PATIENCE)
        .expect("serve ends with its session")
        .unwrap();
    assert!(output.status.success());
    let told = String::from_utf8_lossy(&output.stdout);
    assert!(
        told.lines().next().unwrap_or("").contains("\"type\":\"ready\""),
        "{told}"
    );
}
