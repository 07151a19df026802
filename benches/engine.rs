//! The engine over a simulated day: `cargo bench --bench engine` (or
//! `tools/bench-engine`). One measured run, printed as a table with the
//! goals in the left column.
//!
//! The run is the demo's seven providers polled every minute for 24 h
//! under a virtual clock (1,440 cycles, fetch bodies kept), recorded into
//! a real sled log. Measured: the engine's cycle rate, its resident memory
//! as the day goes on (it must stay flat), and the time to replay the whole
//! day's log through fresh machines and the current parsers.
//!
//! `QUOTATRACK_BENCH_HOURS=48` runs a longer day, to see whether memory
//! keeps climbing or has settled. Next to resident memory the table shows
//! the heap actually in use (glibc's `mallinfo2`), which separates growth
//! of live data from allocator high-water.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use jiff::{SignedDuration, Timestamp};
use quotatrack::clock::ManualClock;
use quotatrack::credentials::FixedCredentials;
use quotatrack::engine::Engine;
use quotatrack::log::Log;
use quotatrack::providers::ProviderId;
use quotatrack::replay;
use quotatrack::scenario::{self, DEMO};
use quotatrack::transport::ExchangePlayer;

fn main() {
    let hours: u64 = std::env::var("QUOTATRACK_BENCH_HOURS")
        .ok()
        .and_then(|h| h.parse().ok())
        .unwrap_or(24);
    let dir = tempfile::tempdir().unwrap();
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

    let mut rss = Vec::new();
    let began = Instant::now();
    for minute in 0..hours * 60 {
        runtime.block_on(engine.cycle()).unwrap();
        clock.advance(SignedDuration::from_mins(1));
        if (minute + 1) % 360 == 0 {
            rss.push(((minute + 1) / 60, rss_kib(), heap_in_use_kib()));
        }
    }
    let recording = began.elapsed();
    engine.close().unwrap();

    let log = Log::open(dir.path()).unwrap();
    let events: std::sync::Arc<[_]> = log.entries(0).map(Result::unwrap).collect();
    let size = log.stats().size_on_disk;
    drop(log);
    let mut replays = Vec::new();
    for _ in 0..5 {
        let began = Instant::now();
        let report = replay::replay_shared(events.clone(), &replay::Options::default());
        replays.push(began.elapsed());
        assert!(report.identical(), "{:?}", report.divergence);
    }
    replays.sort();

    println!(
        "engine, {hours} h of 7 providers at 60 s ({} cycles, {} events, {:.1} MB on disk)",
        hours * 60,
        events.len(),
        size as f64 / 1e6
    );
    println!("| goal | measured |");
    println!("|---|---|");
    println!(
        "| record | {:.2} s ({:.0} cycles/s, each flushed to sled and published) |",
        recording.as_secs_f64(),
        (hours * 60) as f64 / recording.as_secs_f64()
    );
    println!(
        "| replay the whole log (goal < 200 ms for 24 h) | {:.0} ms median of 5 (min {:.0} ms) |",
        replays[2].as_secs_f64() * 1e3,
        replays[0].as_secs_f64() * 1e3
    );
    let series: Vec<String> = rss
        .iter()
        .map(|(hour, rss, _)| format!("{hour} h {:.1} MB", *rss as f64 / 1024.0))
        .collect();
    println!("| engine RSS < 15 MB, flat | {} |", series.join(", "));
    let heap: Vec<String> = rss
        .iter()
        .map(|(hour, _, heap)| format!("{hour} h {:.1} MB", *heap as f64 / 1024.0))
        .collect();
    println!("| heap in use (main arena) | {} |", heap.join(", "));
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

/// Bytes the program holds in glibc's main arena, in KiB: live data,
/// without the free space the allocator keeps.
fn heap_in_use_kib() -> u64 {
    // SAFETY: mallinfo2 only reads the allocator's counters (glibc >= 2.33).
    let info = unsafe { mallinfo2() };
    (info.uordblks / 1024) as u64
}

/// glibc's `struct mallinfo2`.
#[repr(C)]
struct MallInfo2 {
    arena: usize,
    ordblks: usize,
    smblks: usize,
    hblks: usize,
    hblkhd: usize,
    usmblks: usize,
    fsmblks: usize,
    uordblks: usize,
    fordblks: usize,
    keepcost: usize,
}

unsafe extern "C" {
    fn mallinfo2() -> MallInfo2;
}
