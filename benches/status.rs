//! Every status surface against `quotatrack status` itself, as whole
//! processes of the release binary: `cargo bench --bench status` (or
//! `tools/bench-status`). Each surface reads only the settings and the
//! snapshot file, so each should cost what `status` costs (issue 20's goal:
//! at most 1.3×).
//!
//! The snapshot is the one a 6 h demo leaves (`quotatrack demo --hours 6`
//! into a temporary data dir, run first). The commands run interleaved, one
//! after another in each round, so a change in the machine's load touches
//! every command alike; the table shows the median wall time of the rounds
//! and the median CPU time (user + system of the child) beside it, with the
//! load average at start and end. `QUOTATRACK_BENCH_RUNS` sets the rounds
//! (default 200). `QUOTATRACK_BENCH_HELLO=PATH` adds a hello-world binary
//! built with the same release profile, and `QUOTATRACK_BENCH_HELLO_STATIC`
//! the same hello linked statically as the front is (what
//! `tools/bench-status` does).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One command under measurement: its name, arguments and stdin.
struct Case {
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let binary = root.join("target/release/quotatrack");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --release --bin quotatrack --bin quotatrack-engine` first (tools/bench-status does)",
        binary.display()
    );
    let runs: usize = std::env::var("QUOTATRACK_BENCH_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("demo");
    let demo = Command::new(&binary)
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["demo", "--hours", "6"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(demo.success(), "the demo ran");
    // The demo's virtual clock ends at its last cycle; every command reads
    // the snapshot at that time, so the countdowns are the same each run.
    let at = snapshot_time(&data_dir);

    let with_rate_limits = std::fs::read(root.join("fixtures/statusline/claude-with-rate-limits.json")).unwrap();
    let without_rate_limits = std::fs::read(root.join("fixtures/statusline/claude-without-rate-limits.json")).unwrap();
    let common = [
        "--data-dir".to_owned(),
        data_dir.display().to_string(),
        "--clock-at".to_owned(),
        at,
    ];
    let case = |name: &'static str, args: &[&str], stdin: Option<Vec<u8>>| Case {
        name,
        program: binary.clone(),
        args: common
            .iter()
            .cloned()
            .chain(args.iter().map(|arg| arg.to_string()))
            .collect(),
        stdin,
    };
    let mut cases = vec![
        case("status", &["status"], None),
        case("status --line", &["status", "--line"], None),
        case(
            "status --table --width 160",
            &["status", "--table", "--width", "160"],
            None,
        ),
        case("status --json", &["status", "--json"], None),
        case(
            "status --format …",
            &[
                "status",
                "--format",
                "{anthropic.5h.used_percent}% · {anthropic.5h.remaining_time} left ({anthropic.state})",
            ],
            None,
        ),
        case("status --output waybar", &["status", "--output", "waybar"], None),
        case("status --output tmux", &["status", "--output", "tmux"], None),
        case("status --output i3bar", &["status", "--output", "i3bar"], None),
        case("status --output prompt", &["status", "--output", "prompt"], None),
        case(
            "statusline claude (rate_limits)",
            &["statusline", "claude"],
            Some(with_rate_limits),
        ),
        case(
            "statusline claude (no rate_limits)",
            &["statusline", "claude"],
            Some(without_rate_limits),
        ),
    ];
    if let Ok(hello) = std::env::var("QUOTATRACK_BENCH_HELLO") {
        cases.push(Case {
            name: "hello world (same profile)",
            program: PathBuf::from(hello),
            args: Vec::new(),
            stdin: None,
        });
    }
    // The front is linked statically (build.rs); the same hello so linked
    // shows what the loader's share was.
    if let Ok(hello) = std::env::var("QUOTATRACK_BENCH_HELLO_STATIC") {
        cases.push(Case {
            name: "hello world (same, static)",
            program: PathBuf::from(hello),
            args: Vec::new(),
            stdin: None,
        });
    }

    let load_at_start = load();
    let mut walls: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    let mut cpus: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    for _ in 0..runs {
        for (index, case) in cases.iter().enumerate() {
            let (wall, cpu) = run(case);
            walls[index].push(wall);
            cpus[index].push(cpu);
        }
    }
    let walls: Vec<Duration> = walls.into_iter().map(median).collect();
    let cpus: Vec<Duration> = cpus.into_iter().map(median).collect();

    println!(
        "status surfaces, release binary ({} bytes), {runs} interleaved rounds over a 6 h demo snapshot",
        std::fs::metadata(&binary).map(|meta| meta.len()).unwrap_or(0)
    );
    println!(
        "machine: {} cores, {}; load at start {load_at_start}, at end {}",
        std::thread::available_parallelism().map(usize::from).unwrap_or(0),
        std::env::consts::ARCH,
        load()
    );
    println!("| command | median wall | × status | median CPU | × status |");
    println!("|---|---|---|---|---|");
    for (index, case) in cases.iter().enumerate() {
        println!(
            "| `{}` | {:.3} ms | {:.2}× | {:.3} ms | {:.2}× |",
            case.name,
            walls[index].as_secs_f64() * 1e3,
            walls[index].as_secs_f64() / walls[0].as_secs_f64(),
            cpus[index].as_secs_f64() * 1e3,
            cpus[index].as_secs_f64() / cpus[0].as_secs_f64().max(1e-9),
        );
    }
}

/// Runs `case` once: its wall time (spawn to exit) and the CPU time the
/// child used (user + system: what the reaped children's total grew by).
fn run(case: &Case) -> (Duration, Duration) {
    let before = children_cpu();
    let began = Instant::now();
    let mut child = Command::new(&case.program)
        .args(&case.args)
        .stdin(if case.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the command starts");
    if let Some(input) = &case.stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input).unwrap();
    }
    let status = child.wait().unwrap();
    let wall = began.elapsed();
    assert!(status.success(), "{} succeeded", case.name);
    (wall, children_cpu().saturating_sub(before))
}

/// The user + system time of every child this process has reaped.
fn children_cpu() -> Duration {
    // SAFETY: an all-zero rusage is a valid value for getrusage to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: usage outlives the call.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let time = |time: libc::timeval| Duration::new(time.tv_sec as u64, time.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// The median of `times`.
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The snapshot's `generated_at`: the demo's last virtual minute.
fn snapshot_time(data_dir: &Path) -> String {
    let text = std::fs::read_to_string(data_dir.join("status.json")).unwrap();
    let snapshot: serde_json::Value = serde_json::from_str(&text).unwrap();
    snapshot["generated_at"].as_str().unwrap().to_owned()
}

/// The 1-, 5- and 15-minute load averages.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
