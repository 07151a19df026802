//! Shared test support: loading recorded exchanges and the one `check`
//! helper through which tests parse them.

pub mod server;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use jiff::Timestamp;
use quotatrack::exchange::RecordedExchange;
use quotatrack::log::Log;
use quotatrack::log::retention::{Retention, Step};
use quotatrack::providers::{FetchError, ParsedUsage, ProviderId, Response};

/// A recorded exchange from `fixtures/providers/<id>/<scenario>.json`.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub path: PathBuf,
    pub provider: ProviderId,
    pub recorded_at: Timestamp,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What a fixture's file name promises: `ok-…` parses, `err-<kind>-…` fails with `kind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Usage,
    Error(String),
}

impl Fixture {
    pub fn load(path: &Path) -> Fixture {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let exchange: RecordedExchange =
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Fixture {
            path: path.to_owned(),
            provider: exchange.provider,
            recorded_at: exchange.recorded_at,
            status: exchange.response.status,
            headers: exchange.response.header_pairs(),
            body: exchange.response.body_bytes(),
        }
    }

    pub fn name(&self) -> String {
        self.path.file_stem().unwrap().to_string_lossy().into_owned()
    }

    pub fn expect(&self) -> Expect {
        let name = self.name();
        if name.starts_with("ok-") {
            return Expect::Usage;
        }
        let kind = name
            .strip_prefix("err-")
            .and_then(|rest| rest.split('-').next())
            .unwrap_or_else(|| panic!("fixture {name} must start with ok- or err-<kind>-"));
        Expect::Error(kind.to_owned())
    }

    pub fn with_body(&self, body: Vec<u8>) -> Fixture {
        Fixture { body, ..self.clone() }
    }
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/providers")
}

/// Every provider fixture, sorted by path.
pub fn all_fixtures() -> Vec<Fixture> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .flat_map(|dir| std::fs::read_dir(dir).unwrap())
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths.iter().map(|p| Fixture::load(p)).collect()
}

/// Parses a fixture with its own provider and recorded clock.
pub fn check(fixture: &Fixture) -> Result<ParsedUsage, FetchError> {
    let response = Response {
        status: fixture.status,
        headers: &fixture.headers,
        body: &fixture.body,
    };
    fixture.provider.provider().parse(&response, fixture.recorded_at)
}

/// Asserts the numeric promises every parsed window keeps.
pub fn assert_windows_in_range(usage: &ParsedUsage) {
    assert!(!usage.windows.is_empty(), "a success has at least one window");
    for window in &usage.windows {
        for ratio in [window.used_ratio, window.remaining_ratio] {
            assert!((0.0..=1.0).contains(&ratio), "ratio {ratio} out of range in {window:?}");
        }
        for amount in [window.used, window.remaining, window.limit].into_iter().flatten() {
            assert!(
                amount.is_finite() && amount >= 0.0,
                "amount {amount} invalid in {window:?}"
            );
        }
    }
}

/// Runs the `quotatrack` binary as a real process with `stdin` as input.
pub fn quotatrack(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_quotatrack"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).ok();
    child.wait_with_output().unwrap()
}

/// The output of `child` once it ends; if it runs past `limit`, it is
/// killed (SIGKILL) and the test fails saying `what` hung: a hang fails
/// one test rather than stopping the suite.
pub fn finish_within(child: Child, limit: Duration, what: &str) -> Output {
    let pid = child.id();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    match receiver.recv_timeout(limit) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("{what} (pid {pid}) still running after {limit:?}");
        }
    }
}

/// Waits, at most a minute, until nothing holds the lock on the `db` file
/// of the log in the data dir `dir`, after a test opened it as sled
/// itself, below `Log`: sled's threads keep its files open (and may still
/// write or remove them) for a while after the last handle is dropped,
/// and a command started meanwhile would find the log owned. (A closed or
/// dropped `Log` waits for this itself.)
pub fn sled_released(dir: &Path) {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(dir.join("log/db")).unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: flock on a descriptor this thread owns; it touches no memory.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0;
        // Closing the file releases the lock before anyone is told.
        drop(file);
        let _ = sender.send(locked);
    });
    let limit = std::time::Duration::from_secs(60);
    match receiver.recv_timeout(limit) {
        Ok(true) => {}
        Ok(false) => panic!("cannot lock {}/log/db", dir.display()),
        Err(_) => panic!("sled still holds {}/log/db after {limit:?}", dir.display()),
    }
}

/// Every step of one whole retention pass over `log` at `now`.
pub fn retention_pass(log: &mut Log, now: Timestamp, keep: &Retention) -> Vec<Step> {
    let mut steps = Vec::new();
    loop {
        let step = log.retain_step(now, keep).unwrap();
        steps.push(step);
        if step.done {
            return steps;
        }
    }
}

/// The recorded exchange `fixtures/providers/<provider>/<name>.json`.
pub fn exchange(provider: ProviderId, name: &str) -> RecordedExchange {
    let path = fixtures_dir().join(provider.as_str()).join(format!("{name}.json"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A small seeded generator (xorshift) for tests that pick offsets or
/// counts at random; its seed is printed so a failure can be rerun.
pub struct Rng(u64);

impl Rng {
    /// The generator seeded from the environment variable `var`, else
    /// `default`; prints which seed it uses and how to set it.
    pub fn seeded(var: &str, default: u64) -> Rng {
        let seed = std::env::var(var).ok().and_then(|s| s.parse().ok()).unwrap_or(default);
        println!("seed {seed} ({var})");
        Rng(seed)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}
