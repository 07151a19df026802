//! The log's speed and size at scale: `cargo bench --bench log` (or
//! `tools/bench-log`). One measured run each, printed as a table; the
//! goals are in the left column. Set `QUOTATRACK_BENCH_EVENTS` for a
//! smaller log than the 1,000,000 events of the goals.
//!
//! The 1M-event log is the steady state after retention: one update cycle
//! of seven providers is 28 events (fetch started, fetch completed with two
//! windows, transition, store entry), fetch bodies dropped.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use quotatrack::events::{Cause, Event, Outcome, Stream};
use quotatrack::journal::Journal;
use quotatrack::log::Log;
use quotatrack::providers::ProviderId;
use quotatrack::quota::Unit;
use quotatrack::status::StatusOptions;
use quotatrack::wire::Window;

fn main() {
    let total: u64 = std::env::var("QUOTATRACK_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let start = Timestamp::from_second(1_795_000_000).unwrap();

    // Appends: one flushed batch per cycle, as the engine writes them.
    let append_dir = dir.path().join("append");
    let mut journal = Journal::open(&append_dir).unwrap();
    let cycles = 500;
    let began = Instant::now();
    for cycle in 0..cycles {
        journal.record(cycle_events(start, cycle)).unwrap();
    }
    let append = began.elapsed();
    let appended = journal.next_seq();
    drop(journal);

    // A large log, written by import (batched, one flush at the end).
    let big = dir.path().join("big");
    let mut lines = Vec::new();
    let mut seq = 0;
    let mut cycle = 0;
    while seq < total {
        for (at, stream, payload) in cycle_events(start, cycle) {
            let envelope = quotatrack::events::Envelope {
                stream,
                seq,
                at,
                payload,
            };
            lines.extend_from_slice(&envelope.to_json());
            lines.push(b'\n');
            seq += 1;
        }
        cycle += 1;
    }
    let mut log = Log::open(&big).unwrap();
    let began = Instant::now();
    log.import(lines.as_slice()).unwrap();
    let import = began.elapsed();
    let raw_bytes = lines.len();
    drop(lines);

    let began = Instant::now();
    let store = log.rebuild().unwrap();
    let rebuild = began.elapsed();
    log.write_checkpoint(&store).unwrap();
    let size = log.stats().size_on_disk;
    drop(log);

    // The first open after a crash replays sled's write-ahead log.
    let began = Instant::now();
    let log = Log::open(&big).unwrap();
    let sled_open = began.elapsed();
    log.close().unwrap();
    let began = Instant::now();
    let journal = Journal::open(&big).unwrap();
    let open = began.elapsed();
    journal.publish(start, &StatusOptions::default()).unwrap();
    drop(journal);

    let status = time_status(&big, 20);

    let per_s = |n: u64, d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "log benchmark, {seq} events ({} MB of JSON lines)",
        raw_bytes / 1_000_000
    );
    println!(
        "append, flushed batch per cycle    {:>10.0} events/s  {:>8.0} cycles/s  ({appended} events in {cycles} cycles)",
        per_s(appended, append),
        per_s(cycles, append)
    );
    println!(
        "import (batched)                   {:>10.0} events/s",
        per_s(seq, import)
    );
    println!(
        "full rebuild (goal < 2 s at 1M)    {:>10.3} s        {:>8.0} events/s",
        rebuild.as_secs_f64(),
        per_s(seq, rebuild)
    );
    println!(
        "open with checkpoint (goal < 50 ms) {:>9.1} ms       (first open after a crash: {:.1} ms)",
        open.as_secs_f64() * 1e3,
        sled_open.as_secs_f64() * 1e3
    );
    println!(
        "size on disk                       {:>10.0} MB       {:>8.0} bytes/event",
        size as f64 / 1e6,
        size as f64 / seq as f64
    );
    println!(
        "status from snapshot (goal < 5 ms) {:>10.2} ms median wall, whole process",
        status.as_secs_f64() * 1e3
    );
}

/// One update cycle: every provider fetched, resolved and bookkept.
fn cycle_events(start: Timestamp, cycle: u64) -> Vec<(Timestamp, Stream, Event)> {
    let at = start + SignedDuration::from_secs(60 * cycle as i64);
    let window = |id: &str, used: f64| Window {
        id: id.to_owned(),
        label: id.to_owned(),
        used_ratio: Some(used),
        remaining_ratio: Some(1.0 - used),
        used: Some(used * 100.0),
        remaining: Some(100.0 - used * 100.0),
        limit: Some(100.0),
        unit: Some(Unit::Percent),
        resets_at: Some("2026-11-20T12:00:00Z".to_owned()),
        window_seconds: Some(18_000),
        model: None,
        quota: None,
        window_type: None,
        reset_behavior: None,
        model_ids: Vec::new(),
        reset_passed: false,
    };
    ProviderId::ALL
        .into_iter()
        .flat_map(|provider| {
            let stream = Stream::Tracker(provider);
            let used = (cycle % 100) as f64 / 100.0;
            [
                (at, stream, Event::FetchStarted { provider }),
                (
                    at,
                    stream,
                    Event::FetchCompleted {
                        provider,
                        exchange: None,
                        body_repeated: false,
                        outcome: Outcome::Usage {
                            plan: None,
                            windows: vec![window("5h", used), window("7d", used / 2.0)],
                        },
                        elapsed_ms: 180,
                    },
                ),
                (
                    at,
                    stream,
                    Event::Transitioned {
                        from: "fetching".to_owned(),
                        to: "idle".to_owned(),
                        cause: Cause::FetchSucceeded,
                        provider: None,
                    },
                ),
                (
                    at,
                    stream,
                    Event::StoreUpdated {
                        provider,
                        fails: 0,
                        active: true,
                        blocked_until: None,
                    },
                ),
            ]
        })
        .collect()
}

/// The median wall time of `quotatrack status` run as a process.
fn time_status(data_dir: &Path, runs: usize) -> Duration {
    let binary = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/quotatrack");
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let began = Instant::now();
            let output = Command::new(&binary)
                .args(["--data-dir", data_dir.to_str().unwrap(), "status"])
                .output()
                .expect("build the release binary first: cargo build --release");
            assert!(output.status.success());
            began.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}
