//! The log's speed and size at scale: `cargo bench --bench log` (or
//! `tools/bench-log`). One measured run each, printed as a table; the
//! goals are in the left column. Set `QUOTATRACK_BENCH_EVENTS` for a
//! smaller log than the 1,000,000 events of the goals.
//!
//! The 1M-event log is the steady state after retention: one update cycle
//! of seven providers is 28 events (fetch started, fetch completed with two
//! windows, transition, store entry), fetch bodies dropped.
//!
//! With `QUOTATRACK_BENCH_DEMO=DIR` (a data dir holding a demo day,
//! `quotatrack --data-dir DIR demo --hours 24`) it also simulates a year
//! of that workload: the day's events are replayed 365 times (`at` and
//! `recorded_at` shifted by a day each time, numbers continued), written
//! as the engine writes them (one frame per append batch; one flush per
//! simulated hour), with a full retention pass at the end of every day under
//! the default retention (bodies 30 days, events 400 days); the size on
//! disk at the end is the year's footprint. `QUOTATRACK_BENCH_DAYS`
//! simulates fewer days.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use quotatrack::events::{Cause, Envelope, Event, Outcome, Stream};
use quotatrack::journal::Journal;
use quotatrack::log::Log;
use quotatrack::log::retention::Retention;
use quotatrack::providers::ProviderId;
use quotatrack::quota::Unit;
use quotatrack::status::StatusOptions;
use quotatrack::wire::Window;

fn main() {
    // `QUOTATRACK_BENCH_ONLY=year`: the simulated year alone (its size,
    // split by tree, and its retention steps), without the 1M-event log,
    // `status` or `history`, for a quick comparison of storage changes.
    if std::env::var("QUOTATRACK_BENCH_ONLY").is_ok_and(|only| only == "year") {
        let demo = std::env::var("QUOTATRACK_BENCH_DEMO").expect("QUOTATRACK_BENCH_DEMO names a demo day's data dir");
        let dir = tempfile::tempdir().unwrap();
        // `QUOTATRACK_BENCH_YEAR_DIR` keeps the simulated log there.
        let year_dir = std::env::var("QUOTATRACK_BENCH_YEAR_DIR").map_or_else(|_| dir.path().join("year"), Into::into);
        year(Path::new(&demo), &year_dir, false);
        return;
    }
    // `QUOTATRACK_BENCH_ONLY=rebuild`: the full rebuild alone, run
    // `QUOTATRACK_BENCH_RUNS` times (5) over the 1M-event log, which is
    // kept in `QUOTATRACK_BENCH_BIG_DIR` when set (and reused when there).
    if std::env::var("QUOTATRACK_BENCH_ONLY").is_ok_and(|only| only == "rebuild") {
        rebuild_only();
        return;
    }
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
    let cpu_began = cpu_time();
    for cycle in 0..cycles {
        journal.record(cycle_events(start, cycle)).unwrap();
    }
    let append = began.elapsed();
    let append_cpu = cpu_time() - cpu_began;
    let append_load = load();
    let appended = journal.next_seq();
    drop(journal);

    // A large log, written by import (batched, one flush at the end).
    let big = dir.path().join("big");
    let lines = big_log_lines(total, start);
    let seq = lines.iter().filter(|byte| **byte == b'\n').count() as u64;
    let mut log = Log::open(&big).unwrap();
    let began = Instant::now();
    log.import(lines.as_slice()).unwrap();
    let import = began.elapsed();
    let raw_bytes = lines.len();
    drop(lines);

    let began = Instant::now();
    let cpu_began = cpu_time();
    let store = log.rebuild().unwrap();
    let rebuild = began.elapsed();
    let rebuild_cpu = cpu_time() - cpu_began;
    let rebuild_load = load();
    log.write_checkpoint(&store).unwrap();
    let size = size_of(&big.join("log"));
    drop(log);

    // The first open after a crash replays sled's write-ahead log.
    let began = Instant::now();
    let log = Log::open(&big).unwrap();
    let sled_open = began.elapsed();
    log.close().unwrap();
    // The open a status line or an engine start waits for: median of 5
    // (each a clean close and a new open, as after a shutdown).
    let mut opens = Vec::new();
    let mut open_cpus = Vec::new();
    for _ in 0..4 {
        let began = Instant::now();
        let cpu_began = cpu_time();
        let journal = Journal::open(&big).unwrap();
        opens.push(began.elapsed());
        open_cpus.push(cpu_time() - cpu_began);
        journal.close().unwrap();
    }
    let began = Instant::now();
    let cpu_began = cpu_time();
    let journal = Journal::open(&big).unwrap();
    opens.push(began.elapsed());
    open_cpus.push(cpu_time() - cpu_began);
    opens.sort();
    open_cpus.sort();
    let open = opens[2];
    let open_load = load();
    let options = StatusOptions::default();
    journal.publish(start, &options, options.stale_after).unwrap();
    drop(journal);

    let status = time_status(&big, 20);

    let per_s = |n: u64, d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "log benchmark, {seq} events ({} MB of JSON lines)",
        raw_bytes / 1_000_000
    );
    println!(
        "append, flushed batch per cycle    {:>10.0} events/s  {:>8.0} cycles/s  ({appended} events in {cycles} cycles; goal ≥ 50,000/s; {:.0} µs cpu per cycle, all threads; load {append_load})",
        per_s(appended, append),
        per_s(cycles, append),
        append_cpu.as_secs_f64() * 1e6 / cycles as f64
    );
    println!(
        "import (batched)                   {:>10.0} events/s",
        per_s(seq, import)
    );
    println!(
        "full rebuild (goal ≤ 1.5 s at 1M)  {:>10.3} s        {:>8.0} events/s  ({:.3} s cpu, all threads; load {rebuild_load})",
        rebuild.as_secs_f64(),
        per_s(seq, rebuild),
        rebuild_cpu.as_secs_f64()
    );
    println!(
        "open with checkpoint (goal ≤ 20 ms) {:>9.1} ms       (median of 5, {:.1}–{:.1} ms; {:.1} ms cpu median; first open after a crash: {:.1} ms; load {open_load})",
        open.as_secs_f64() * 1e3,
        opens[0].as_secs_f64() * 1e3,
        opens[4].as_secs_f64() * 1e3,
        open_cpus[2].as_secs_f64() * 1e3,
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
    if let Ok(demo) = std::env::var("QUOTATRACK_BENCH_DEMO") {
        let demo = Path::new(&demo);
        compare_status(demo);
        year(demo, &dir.path().join("year"), true);
    }
}

/// The JSON lines of the 1M-event log: `cycle_events` from `start` until
/// `total` events.
fn big_log_lines(total: u64, start: Timestamp) -> Vec<u8> {
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
    lines
}

/// The full rebuild alone, several runs over one log (see `main`).
fn rebuild_only() {
    let total: u64 = std::env::var("QUOTATRACK_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = std::env::var("QUOTATRACK_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let big = std::env::var("QUOTATRACK_BENCH_BIG_DIR").map_or_else(|_| dir.path().join("big"), Into::into);
    if !big.join("log").exists() {
        let lines = big_log_lines(total, Timestamp::from_second(1_795_000_000).unwrap());
        let mut log = Log::open(&big).unwrap();
        log.import(lines.as_slice()).unwrap();
        log.close().unwrap();
    }
    let log = Log::open(&big).unwrap();
    for run in 1..=runs {
        let load = load();
        let began = Instant::now();
        let cpu_began = cpu_time();
        let store = log.rebuild().unwrap();
        println!(
            "full rebuild {run}/{runs}: {:.3} s wall, {:.3} s cpu (all threads), {} events, load {load}",
            began.elapsed().as_secs_f64(),
            (cpu_time() - cpu_began).as_secs_f64(),
            store.applied.map_or(0, |seq| seq + 1)
        );
    }
}

/// `status` over the demo's snapshot against a hello-world binary built
/// with the same profile (`QUOTATRACK_BENCH_HELLO`, and linked statically
/// as the front is, `QUOTATRACK_BENCH_HELLO_STATIC`), alternating, median
/// wall of 400 runs each; then `node -e` printing the same snapshot file,
/// 20 runs on its own: node's start evicts enough caches that whatever ran
/// right after it would start cold.
fn compare_status(demo: &Path) {
    let binary = release_binary();
    let snapshot = demo.join("status.json");
    let mut status = Command::new(&binary);
    status.args(["--data-dir", demo.to_str().unwrap(), "status"]);
    let mut pair: Vec<(&str, Command)> = vec![("quotatrack status", status)];
    if let Ok(hello) = std::env::var("QUOTATRACK_BENCH_HELLO") {
        pair.push(("hello world (same profile)", Command::new(hello)));
    }
    // The front is linked statically (build.rs); the same hello so linked
    // shows what the loader's share was.
    if let Ok(hello) = std::env::var("QUOTATRACK_BENCH_HELLO_STATIC") {
        pair.push(("hello world (same, static)", Command::new(hello)));
    }
    let mut medians = median_walls(&mut pair, 400);
    let mut names: Vec<&str> = pair.iter().map(|(name, _)| *name).collect();
    if Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
    {
        let mut node = Command::new("node");
        node.args([
            "-e",
            "process.stdout.write(require('fs').readFileSync(process.argv[1]))",
            snapshot.to_str().unwrap(),
        ]);
        let mut alone = vec![("node -e (print the snapshot)", node)];
        medians.extend(median_walls(&mut alone, 20));
        names.push(alone[0].0);
    } else {
        println!("node -e                            skipped: node is not installed");
    }
    for (name, median) in names.iter().zip(&medians) {
        println!(
            "{name:<34} {:>10.3} ms median wall  ({:.2}× quotatrack status)",
            median.as_secs_f64() * 1e3,
            median.as_secs_f64() / medians[0].as_secs_f64()
        );
    }
}

/// The median wall time of each command, run `runs` times in turn (after
/// a round not counted), each a whole process with its output read.
fn median_walls(commands: &mut [(&str, Command)], runs: usize) -> Vec<Duration> {
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); commands.len()];
    for round in 0..=runs {
        for (index, (_, command)) in commands.iter_mut().enumerate() {
            let began = Instant::now();
            let output = command.output().expect("the command starts");
            assert!(output.status.success());
            if round > 0 {
                times[index].push(began.elapsed());
            }
        }
    }
    times
        .iter_mut()
        .map(|times| {
            times.sort();
            times[times.len() / 2]
        })
        .collect()
}

/// The simulated year (see the module doc).
fn year(demo: &Path, dir: &Path, history: bool) {
    let days: i64 = std::env::var("QUOTATRACK_BENCH_DAYS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(365);
    // The demo day as the engine appended it: a batch per phase of a cycle.
    let template: Vec<Envelope> = {
        let log = Log::open(demo).unwrap();
        let events = log.entries(0).map(Result::unwrap).collect();
        log.close().unwrap();
        events
    };
    let mut batches: Vec<Vec<&Envelope>> = Vec::new();
    for envelope in &template {
        let completed = matches!(envelope.payload, Event::FetchCompleted { .. });
        let starts = match batches.last().and_then(|batch| batch.last()) {
            None => true,
            Some(last) => last.at != envelope.at || completed != matches!(last.payload, Event::FetchCompleted { .. }),
        };
        if starts {
            batches.push(Vec::new());
        }
        batches.last_mut().unwrap().push(envelope);
    }
    let per_hour = batches.len().div_ceil(24);
    let retention = Retention::days(30, 400);
    let mut log = Log::open(dir).unwrap();
    let began = Instant::now();
    let mut worst_step = Duration::ZERO;
    let mut worst_kind = Default::default();
    let mut worst_cpu = Duration::ZERO;
    let mut walls: Vec<Duration> = Vec::new();
    let mut steps = 0u64;
    let mut append_time = Duration::ZERO;
    let start_load = load();
    // `QUOTATRACK_BENCH_SLOW_MS`: print every step longer than this (wall),
    // with what it did, to see where the long ones go.
    let slow = std::env::var("QUOTATRACK_BENCH_SLOW_MS")
        .ok()
        .and_then(|ms| ms.parse::<u64>().ok())
        .map(Duration::from_millis);
    for day in 0..days {
        let shift = SignedDuration::from_hours(24 * day);
        for hour in batches.chunks(per_hour) {
            let shifted = hour.iter().map(|batch| {
                batch
                    .iter()
                    .map(|envelope| {
                        let mut payload = envelope.payload.clone();
                        if let Event::FetchCompleted {
                            exchange: Some(exchange),
                            ..
                        } = &mut payload
                        {
                            exchange.recorded_at += shift;
                        }
                        (envelope.at + shift, envelope.stream, payload)
                    })
                    .collect()
            });
            let began = Instant::now();
            log.append_batches(shifted).unwrap();
            append_time += began.elapsed();
        }
        let now = template.last().unwrap().at + shift;
        loop {
            let step_began = Instant::now();
            let cpu_began = thread_cpu_time();
            let step = log.retain_step(now, &retention).unwrap();
            let cpu = thread_cpu_time() - cpu_began;
            worst_cpu = worst_cpu.max(cpu);
            let wall = step_began.elapsed();
            if slow.is_some_and(|slow| wall > slow) {
                println!(
                    "  slow step: day {day}, {:.1} ms wall, {:.1} ms cpu: {step:?}",
                    wall.as_secs_f64() * 1e3,
                    cpu.as_secs_f64() * 1e3
                );
            }
            walls.push(wall);
            if wall > worst_step {
                worst_step = wall;
                worst_kind = step;
            }
            steps += 1;
            if step.done {
                break;
            }
        }
    }
    let events = log.next_seq();
    let trees = log.tree_bytes();
    log.close().unwrap();
    let simulated = began.elapsed();
    let size = size_of(dir);
    println!(
        "simulated year ({days} days of the demo, retention 30/400 d) {:>6.1} MB on disk (goal ≤ 100 MB)  ({events} events, {:.0} s to simulate, {:.0} s of it appending; load {start_load} at its start, {} at its end)",
        size as f64 / 1e6,
        simulated.as_secs_f64(),
        append_time.as_secs_f64(),
        load()
    );
    let blobs = dir.join("log/blobs");
    let blob_count = std::fs::read_dir(&blobs).map_or(0, Iterator::count);
    println!(
        "  of which: sled's file {:.1} MB, {blob_count} blob files {:.1} MB, snapshots and the rest {:.1} MB",
        file_len(&dir.join("log/db")) as f64 / 1e6,
        size_of(&blobs) as f64 / 1e6,
        (size - file_len(&dir.join("log/db")) - size_of(&blobs)) as f64 / 1e6
    );
    let stored = trees
        .iter()
        .map(|(name, entries, bytes)| format!("{name} {:.1} MB in {entries}", *bytes as f64 / 1e6))
        .collect::<Vec<_>>()
        .join(", ");
    println!("  stored (keys and values, by tree): {stored}");
    walls.sort();
    let quantile = |q: f64| {
        walls
            .get(((walls.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    let over = walls.iter().filter(|wall| **wall > Duration::from_millis(50)).count();
    println!(
        "retention step over the year (goal ≤ 50 ms) {:>6.1} ms longest of {steps} steps ({worst_kind:?}); p50 {:.1} ms, p99 {:.1} ms, {over} over 50 ms; the most cpu one step took: {:.1} ms",
        worst_step.as_secs_f64() * 1e3,
        quantile(0.5).as_secs_f64() * 1e3,
        quantile(0.99).as_secs_f64() * 1e3,
        worst_cpu.as_secs_f64() * 1e3
    );
    if !history {
        return;
    }
    // `history` over the whole year, as a person runs it (one process,
    // the default 240 points per series), median of 5 runs.
    let binary = release_binary();
    let now = template.last().unwrap().at + SignedDuration::from_hours(24 * (days - 1));
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let began = Instant::now();
            let output = Command::new(&binary)
                .args(["--data-dir", dir.to_str().unwrap(), "--clock-at", &now.to_string()])
                .args(["history", "--since", &format!("{}d", days + 1), "--csv"])
                .output()
                .expect("build the release binary first: cargo build --release");
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            began.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "history over the year (goal < 1 s)  {:>9.3} s median wall, whole process (--since {}d --csv; load {})",
        times[2].as_secs_f64(),
        days + 1,
        load()
    );
}

/// The length of one file (0 when it cannot be read).
fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |meta| meta.len())
}

/// Bytes in the files under `dir`.
fn size_of(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| match entry.metadata() {
                    Ok(meta) if meta.is_dir() => size_of(&entry.path()),
                    Ok(meta) => meta.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
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
    let binary = release_binary();
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

/// The `quotatrack` binary of the target dir this benchmark was built in
/// (`target/release/deps/log-…` → `target/release/quotatrack`).
fn release_binary() -> std::path::PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("quotatrack")))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/quotatrack"))
}

/// The 1-minute load average, as `/proc/loadavg` gives it: a wall time on
/// a shared machine means little without it.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// The CPU time this process used so far (all threads): what the figures
/// cost apart from waiting for the disk or for other processes.
fn cpu_time() -> Duration {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// The CPU time this thread used so far.
fn thread_cpu_time() -> Duration {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn clock(id: libc::clockid_t) -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(id, &mut now) };
    Duration::new(now.tv_sec.max(0) as u64, now.tv_nsec.clamp(0, 999_999_999) as u32)
}
