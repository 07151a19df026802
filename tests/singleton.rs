//! One data dir, three `serve --stdio` processes, one loopback server: the
//! first owns the data dir, the others follow, forward their refreshes to
//! it, and one of them takes over when the owner is killed (keeping the
//! provider its host was shown). Every process reads its clock from one
//! file, so the test moves time for all of them at once and never waits on
//! the wall clock (it waits for the processes' answers).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use quotatrack::providers::ProviderId;
use serde_json::Value;

use crate::support::exchange;
use crate::support::server::{Reply, Server};

/// How long an answer may take before the test gives up (a failure guard,
/// not a pause: answers normally come in milliseconds).
const PATIENCE: Duration = Duration::from_secs(60);

struct Engines {
    children: Vec<(Child, ChildStdin)>,
    lines: Receiver<(usize, Value)>,
    sender: Sender<(usize, Value)>,
    /// Lines read while waiting for another process's.
    early: Vec<(usize, Value)>,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
}

impl Engines {
    /// Starts another `serve --stdio`; returns its number.
    fn spawn(&mut self) -> usize {
        self.spawn_running(&["serve", "--stdio"])
    }

    /// Starts another process running `command`; returns its number. A
    /// line that is not JSON (`watch` prints status lines) arrives as a
    /// JSON string.
    fn spawn_running(&mut self, command: &[&str]) -> usize {
        let mut child = Command::new(env!("CARGO_BIN_EXE_quotatrack"))
            .env_clear()
            .envs(self.env.iter().map(|(name, value)| (*name, value)))
            .args(&self.args)
            .args(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let number = self.children.len();
        let stdout = child.stdout.take().unwrap();
        let sender = self.sender.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if sender.send((number, value)).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take().unwrap();
        self.children.push((child, stdin));
        number
    }

    fn send(&mut self, engine: usize, line: &str) {
        let stdin = &mut self.children[engine].1;
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for one of `among` to print an event of type `kind` (`text`: a
    /// line that is not JSON); returns which, and the event.
    fn expect(&mut self, among: &[usize], kind: &str) -> (usize, Value) {
        let matches = |(from, value): &(usize, Value)| {
            among.contains(from) && (value["type"] == kind || kind == "text" && value.is_string())
        };
        if let Some(index) = self.early.iter().position(matches) {
            return self.early.remove(index);
        }
        loop {
            let line = self
                .lines
                .recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("no {kind} from {among:?}; read {:?}", self.early));
            if matches(&line) {
                return line;
            }
            self.early.push(line);
        }
    }

    /// Sends `line`, then an unreadable line, and waits for that line's
    /// error: everything `line` caused has been printed by then.
    fn settle(&mut self, engine: usize, line: &str) {
        self.send(engine, line);
        self.send(engine, "not a host event");
        self.expect(&[engine], "error");
        self.early.retain(|(from, _)| *from != engine);
    }
}

fn set_clock(file: &Path, time: Timestamp) {
    let next = file.with_extension("next");
    std::fs::write(&next, time.to_string()).unwrap();
    std::fs::rename(&next, file).unwrap();
}

/// The clock's start; every process reads the clock from one file.
fn at(seconds: i64) -> Timestamp {
    let start: Timestamp = "2026-08-22T12:00:00Z".parse().unwrap();
    start + SignedDuration::from_secs(seconds)
}

impl Engines {
    /// Processes on `dir/data` with one settings file (Claude only, no
    /// status pages), Claude's API at `server`, and the clock file
    /// `dir/clock` (returned) at the start.
    fn new(dir: &Path, server: &Server) -> (Engines, std::path::PathBuf) {
        Engines::serving(dir, &[(ProviderId::Anthropic, server)])
    }

    /// [`Engines::new`] with `providers` enabled, in that order, each with
    /// a token and its API at its server.
    fn serving(dir: &Path, providers: &[(ProviderId, &Server)]) -> (Engines, std::path::PathBuf) {
        let (clock, config, data) = (dir.join("clock"), dir.join("config.toml"), dir.join("data"));
        set_clock(&clock, at(0));
        let names: Vec<String> = providers.iter().map(|(id, _)| format!("\"{}\"", id.as_str())).collect();
        std::fs::write(
            &config,
            format!("providers = [{}]\nstatus_pages = false\n", names.join(", ")),
        )
        .unwrap();
        let path = |p: &Path| p.to_str().unwrap().to_owned();
        let (sender, lines) = channel();
        let mut env = vec![("HOME", path(dir))];
        for (id, server) in providers {
            let (url, token, secret) = match id {
                ProviderId::Anthropic => (
                    "QUOTATRACK_ANTHROPIC_BASE_URL",
                    "QUOTATRACK_ANTHROPIC_TOKEN",
                    "sk-ant-oat01-singleton-test",
                ),
                ProviderId::Zai => ("QUOTATRACK_ZAI_BASE_URL", "QUOTATRACK_ZAI_TOKEN", "singleton-test-zai"),
                other => panic!("no test token for {other}"),
            };
            env.push((url, server.origin.clone()));
            env.push((token, secret.to_owned()));
        }
        let engines = Engines {
            children: Vec::new(),
            lines,
            sender,
            early: Vec::new(),
            args: [
                "--data-dir",
                &path(&data),
                "--config",
                &path(&config),
                "--clock-file",
                &path(&clock),
            ]
            .map(str::to_owned)
            .to_vec(),
            env,
        };
        (engines, clock)
    }
}

#[test]
fn followers_forward_refreshes_and_take_over_with_one_request_per_interval() {
    let server = Server::start(vec![Reply::exchange(&exchange(ProviderId::Anthropic, "ok-full"))]);
    let dir = tempfile::tempdir().unwrap();
    let (mut engines, clock) = Engines::new(dir.path(), &server);
    let data = dir.path().join("data");
    let path = |p: &Path| p.to_str().unwrap().to_owned();

    // The first engine owns the data dir and fetches once.
    let owner = engines.spawn();
    engines.expect(&[owner], "ready");
    engines.settle(
        owner,
        r#"{"type":"model_changed","provider":"anthropic","model":"claude-sonnet-4-5"}"#,
    );
    assert_eq!(server.requests(), 1);
    let followers = [engines.spawn(), engines.spawn()];
    for follower in followers {
        engines.expect(&[follower], "already_active");
    }
    // A follower shows its own host's provider from the owner's snapshot.
    engines.send(
        followers[0],
        r#"{"type":"model_changed","provider":"anthropic","model":"claude-opus-4-1"}"#,
    );
    let (_, current) = engines.expect(&[followers[0]], "update_current");
    assert_eq!(current["provider"], "anthropic");
    assert!(
        current["display"].as_str().unwrap().starts_with("Claude │ 5h"),
        "{current}"
    );
    engines.expect(&[followers[0]], "update_all");
    assert_eq!(
        server.requests(),
        1,
        "the forwarded model change is within the minimum interval"
    );
    // Settings belong to the owner: a follower refuses a patch and says why.
    engines.send(followers[1], r#"{"type":"settings_patch","patch":{"cache_ttl_s":120}}"#);
    let (_, refused) = engines.expect(&[followers[1]], "error");
    assert_eq!(refused["line"], 1);
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("another engine owns the data dir"),
        "{refused}"
    );
    engines.expect(&[followers[1]], "update_all");

    // Each interval: a follower's refresh reaches the owner and fetches;
    // the other follower's and the owner's, at the same moment, do not.
    for interval in 1..=3 {
        set_clock(&clock, at(60 * interval));
        engines.send(followers[0], r#"{"type":"refresh"}"#);
        engines.expect(&[followers[0]], "update_all");
        assert_eq!(server.requests(), 1 + interval as usize, "forwarded refresh {interval}");
        engines.send(followers[1], r#"{"type":"refresh"}"#);
        engines.expect(&[followers[1]], "update_all");
        engines.settle(owner, r#"{"type":"refresh"}"#);
        assert_eq!(server.requests(), 1 + interval as usize, "same interval {interval}");
    }

    // The owner dies; one follower takes over and says so, the other
    // follows the new owner.
    engines.children[owner].0.kill().unwrap();
    engines.children[owner].0.wait().unwrap();
    let (heir, _) = engines.expect(&followers, "ready");
    let other = followers.into_iter().find(|f| *f != heir).unwrap();
    set_clock(&clock, at(240));
    engines.send(other, r#"{"type":"refresh"}"#);
    engines.expect(&[other], "update_all");
    assert_eq!(server.requests(), 5, "the follower's refresh reaches the new owner");
    engines.settle(heir, r#"{"type":"refresh"}"#);
    assert_eq!(server.requests(), 5);

    // A clean exit hands the data dir on too.
    engines.send(heir, r#"{"type":"session_shutdown"}"#);
    assert!(engines.children[heir].0.wait().unwrap().success());
    engines.expect(&[other], "ready");
    engines.send(other, r#"{"type":"session_shutdown"}"#);
    assert!(engines.children[other].0.wait().unwrap().success());
    assert_eq!(server.requests(), 5, "one request per interval in all");

    // The three owners' log replays with no divergence.
    let export = Command::new(env!("CARGO_BIN_EXE_quotatrack"))
        .args(["--data-dir", &path(&data), "log", "export"])
        .output()
        .unwrap();
    assert!(export.status.success());
    let events = quotatrack::events::read_lines(&export.stdout[..])
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let report = quotatrack::replay::replay(&events, &Default::default());
    assert!(report.identical(), "{:?}", report.divergence.map(|d| d.line()));
}

/// `quotatrack watch` owns the data dir too: a follower's model change is
/// forwarded to it and fetched, and when it stops (SIGTERM) the follower
/// takes over.
#[test]
fn a_watch_owner_serves_forwarded_refreshes_and_hands_over_when_it_stops() {
    let server = Server::start(vec![Reply::exchange(&exchange(ProviderId::Anthropic, "ok-full"))]);
    let dir = tempfile::tempdir().unwrap();
    let (mut engines, clock) = Engines::new(dir.path(), &server);
    let watch = engines.spawn_running(&["watch"]);
    let (_, line) = engines.expect(&[watch], "text");
    assert!(line.as_str().is_some_and(|line| line.starts_with("Claude")), "{line}");
    assert_eq!(server.requests(), 1);

    let follower = engines.spawn();
    engines.expect(&[follower], "already_active");
    set_clock(&clock, at(60));
    engines.send(
        follower,
        r#"{"type":"model_changed","provider":"anthropic","model":"claude-sonnet-4-5"}"#,
    );
    let (_, current) = engines.expect(&[follower], "update_current");
    assert_eq!(current["provider"], "anthropic");
    assert_eq!(server.requests(), 2, "the model change reached watch and was fetched");

    let pid = engines.children[watch].0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(engines.children[watch].0.wait().unwrap().success());
    engines.expect(&[follower], "ready");
    engines.send(follower, r#"{"type":"session_shutdown"}"#);
    assert!(engines.children[follower].0.wait().unwrap().success());
}

/// The provider a follower's host cycled to survives the takeover: the
/// host's footer keeps showing it (with its model) when the owner goes
/// away, rather than jumping back to the model's provider, and the new
/// owner's log (the cycles it made to get there included) replays.
#[test]
fn a_follower_that_takes_over_keeps_the_provider_its_host_cycled_to() {
    let claude = Server::start(vec![Reply::exchange(&exchange(ProviderId::Anthropic, "ok-full"))]);
    let zai = Server::start(vec![Reply::exchange(&exchange(
        ProviderId::Zai,
        "ok-counts-used-and-remaining",
    ))]);
    let dir = tempfile::tempdir().unwrap();
    let (mut engines, clock) =
        Engines::serving(dir.path(), &[(ProviderId::Anthropic, &claude), (ProviderId::Zai, &zai)]);
    let owner = engines.spawn();
    engines.expect(&[owner], "ready");
    engines.settle(owner, r#"{"type":"get_all"}"#);
    assert_eq!((claude.requests(), zai.requests()), (1, 1), "the owner's first cycle");

    // The follower's host works with a Claude model and cycles to Z.ai.
    let follower = engines.spawn();
    engines.expect(&[follower], "already_active");
    engines.send(
        follower,
        r#"{"type":"model_changed","provider":"anthropic","model":"claude-sonnet-4-5"}"#,
    );
    let (_, current) = engines.expect(&[follower], "update_current");
    assert_eq!(current["provider"], "anthropic");
    engines.settle(follower, r#"{"type":"cycle_provider"}"#);
    engines.send(follower, r#"{"type":"get_current"}"#);
    let (_, current) = engines.expect(&[follower], "update_current");
    assert_eq!(current["provider"], "zai", "{current}");

    // The owner goes away; the follower takes over and still shows Z.ai.
    set_clock(&clock, at(60));
    engines.children[owner].0.kill().unwrap();
    engines.children[owner].0.wait().unwrap();
    engines.expect(&[follower], "ready");
    let (_, current) = engines.expect(&[follower], "update_current");
    assert_eq!(
        current["provider"], "zai",
        "the first view after the takeover: {current}"
    );
    assert!(current["display"].as_str().unwrap().starts_with("Z.ai"), "{current}");
    engines.send(follower, r#"{"type":"get_current"}"#);
    let (_, current) = engines.expect(&[follower], "update_current");
    assert_eq!(current["provider"], "zai", "{current}");
    // It stays through the host's turns (a cycled provider stays until the
    // model changes), and the model's provider comes back when it does.
    engines.settle(follower, r#"{"type":"turn_start"}"#);
    engines.send(follower, r#"{"type":"get_current"}"#);
    let (_, current) = engines.expect(&[follower], "update_current");
    assert_eq!(current["provider"], "zai", "after a turn: {current}");
    engines.send(
        follower,
        r#"{"type":"model_changed","provider":"anthropic","model":"claude-opus-4-1"}"#,
    );
    let (_, current) = engines.expect(&[follower], "update_current");
    assert_eq!(current["provider"], "anthropic", "{current}");
    engines.send(follower, r#"{"type":"session_shutdown"}"#);
    assert!(engines.children[follower].0.wait().unwrap().success());
    // Both owners' log replays with no divergence.
    let data = dir.path().join("data");
    let export = Command::new(env!("CARGO_BIN_EXE_quotatrack"))
        .args(["--data-dir", data.to_str().unwrap(), "log", "export"])
        .output()
        .unwrap();
    assert!(export.status.success());
    let events = quotatrack::events::read_lines(&export.stdout[..])
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let report = quotatrack::replay::replay(&events, &Default::default());
    assert!(report.identical(), "{:?}", report.divergence.map(|d| d.line()));
}
