//! `serve --http` over a simulated day: `cargo bench --bench http` (or
//! `tools/bench-http`). One measured run, printed as a table with the
//! goals in the left column.
//!
//! The run is what the binary's `serve --http` loop does, in one process
//! on one current-thread runtime as the binary runs it: the demo's seven
//! providers polled every minute for 24 h under a virtual clock (1,440
//! cycles into a real sled log, each published to the server with
//! `Published::update`), and `/metrics` scraped over loopback TCP every
//! 15 s of simulated time (5,760 scrapes, a new connection each, as a
//! pessimistic Prometheus). Measured: each scrape's time from connect to
//! the last byte, and the process's resident memory at the end.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use quotatrack::clock::ManualClock;
use quotatrack::credentials::FixedCredentials;
use quotatrack::engine::Engine;
use quotatrack::http::{self, Options, Published};
use quotatrack::providers::ProviderId;
use quotatrack::scenario::{self, DEMO};
use quotatrack::transport::ExchangePlayer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() {
    let hours: u64 = std::env::var("QUOTATRACK_BENCH_HOURS")
        .ok()
        .and_then(|h| h.parse().ok())
        .unwrap_or(24);
    let dir = tempfile::tempdir().unwrap();
    // A data dir others can read draws a warning: not this one.
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let start: Timestamp = DEMO.start.parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let script = scenario::script(&DEMO).unwrap();
    let player = Arc::new(ExchangePlayer::new(script, clock.clone()).holding_last());
    let providers: Vec<ProviderId> = DEMO.responses.iter().map(|(id, _)| *id).collect();
    let credentials = Arc::new(Mutex::new(FixedCredentials::present(providers.clone(), "bench")));
    let mut engine = Engine::builder()
        .data_dir(dir.path())
        .clock(clock.clone())
        .transport(player)
        .credentials(credentials)
        .providers(&providers)
        .status_pages(None)
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let published = Arc::new(Published::follower(dir.path(), clock.clone(), Duration::from_secs(60)));
    let (latencies, bytes, rss_end) = runtime.block_on(async {
        let listener = http::bind("127.0.0.1:0".parse().unwrap(), None).await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(http::serve(
            listener,
            Arc::clone(&published),
            Options::default(),
            async {
                let _ = stopped.await;
            },
        ));
        let mut latencies = Vec::new();
        let mut bytes = 0;
        for _ in 0..hours * 60 {
            engine.cycle().await.unwrap();
            published.update(&engine);
            for _ in 0..4 {
                let began = Instant::now();
                let answer = get(address, "/metrics").await;
                latencies.push(began.elapsed());
                assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
                bytes = answer.len();
                clock.advance(SignedDuration::from_secs(15));
            }
        }
        let rss_end = rss_kib();
        let _ = stop.send(());
        server.await.unwrap().unwrap();
        (latencies, bytes, rss_end)
    });
    engine.close().unwrap();
    let mut sorted = latencies.clone();
    sorted.sort();
    let at = |quantile: f64| {
        let index = ((sorted.len() as f64 * quantile).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[index].as_secs_f64() * 1e3
    };
    println!(
        "serve --http, {hours} h of 7 providers at 60 s ({} cycles), /metrics every 15 s of simulated time ({} scrapes, {:.1} KB each)",
        hours * 60,
        latencies.len(),
        bytes as f64 / 1e3
    );
    println!("| goal | measured |");
    println!("|---|---|");
    println!(
        "| resident memory at the end ≤ 20 MB | {:.1} MB (engine, server and client in one process) |",
        rss_end as f64 / 1024.0
    );
    println!(
        "| /metrics p99 < 5 ms | p99 {:.2} ms (p50 {:.2} ms, max {:.2} ms; connect to last byte) |",
        at(0.99),
        at(0.5),
        sorted.last().map_or(0.0, |last| last.as_secs_f64() * 1e3)
    );
}

/// `GET path` on a new connection; the whole answer, head and body.
async fn get(address: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// The resident set size of this process, in KiB (Linux).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}
