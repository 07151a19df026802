//! Recorded host sessions of `serve --stdio` (fixtures/sessions, made by
//! `tools/record-sessions` from the `.host` files beside them): each replays
//! with zero diff through the tool, and each shows the promise it was
//! recorded for.

use std::path::{Path, PathBuf};

use quotatrack::events::{Envelope, Event, Stream, read_lines};
use quotatrack::providers::ProviderId;

use crate::support::quotatrack;

fn session_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/sessions")
        .join(format!("{name}.jsonl"))
}

fn session(name: &str) -> Vec<Envelope> {
    let file = std::fs::File::open(session_path(name)).unwrap();
    read_lines(std::io::BufReader::new(file)).map(Result::unwrap).collect()
}

/// The sequence number of the first event `matches` picks.
fn first(events: &[Envelope], matches: impl Fn(&Envelope) -> bool) -> u64 {
    events.iter().find(|e| matches(e)).expect("the session has it").seq
}

/// `serve --stdio` on `data_dir` over the example responses, as the
/// sessions were recorded, with `host` as the host's lines.
fn serve(data_dir: &str, host: &[u8]) -> std::process::Output {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/example");
    let fixtures = fixtures.to_str().unwrap();
    let clock = "2026-08-22T12:00:00Z";
    quotatrack(
        &[
            "--data-dir",
            data_dir,
            "--fixtures",
            fixtures,
            "--clock-at",
            clock,
            "serve",
            "--stdio",
        ],
        host,
    )
}

fn patch_of(event: &Event) -> Option<&serde_json::Value> {
    match event {
        Event::SettingsChanged { patch } => Some(patch),
        _ => None,
    }
}

/// A tracker's stream's provider; `None` for the engine's and controller's.
fn tracker(envelope: &Envelope) -> Option<ProviderId> {
    match envelope.stream {
        Stream::Tracker(id) => Some(id),
        _ => None,
    }
}

fn cause_name(cause: &impl serde::Serialize) -> String {
    serde_json::to_value(cause)
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn every_session_replays_identical_through_the_tool() {
    let mut seen = 0;
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sessions")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|ext| ext != "jsonl") {
            continue;
        }
        let output = quotatrack(&["replay", path.to_str().unwrap()], b"");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{}: {stdout}", path.display());
        assert!(
            stdout.starts_with("replay: identical ("),
            "{}: {stdout}",
            path.display()
        );
        seen += 1;
    }
    assert_eq!(seen, 5);
}

#[test]
fn a_patch_that_disables_providers_makes_them_inactive_and_unfetched() {
    let events = session("disable-provider");
    // The host's patch (the start's settings, on the engine stream, list
    // every provider).
    let patched = first(&events, |e| {
        e.stream == Stream::Controller && patch_of(&e.payload).is_some_and(|p| p.get("providers").is_some())
    });
    let enabled = [ProviderId::Anthropic, ProviderId::Codex];
    let mut disabled = Vec::new();
    for envelope in events.iter().filter(|e| e.seq > patched) {
        match &envelope.payload {
            Event::FetchStarted { provider, .. } => {
                assert!(enabled.contains(provider), "{provider:?} fetched after it was disabled");
            }
            Event::Transitioned { to, cause, .. } if to == "inactive" => {
                assert_eq!(cause_name(cause), "disabled");
                disabled.push(tracker(envelope).expect("a tracker goes inactive"));
            }
            _ => {}
        }
    }
    disabled.sort();
    let mut expected: Vec<ProviderId> = ProviderId::ALL
        .iter()
        .copied()
        .filter(|p| !enabled.contains(p))
        .collect();
    expected.sort();
    assert_eq!(disabled, expected);
}

#[test]
fn interval_patches_are_recorded_in_order() {
    let intervals: Vec<u64> = session("interval-patch")
        .iter()
        .filter_map(|e| patch_of(&e.payload)?.get("refresh_interval_s")?.as_u64())
        .collect();
    assert_eq!(intervals, [60, 600, 30]);
}

#[test]
fn a_restart_after_a_patch_starts_with_the_patched_settings() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let path = session_path("restart-after-patch");
    let import = quotatrack(
        &[
            "--data-dir",
            data_dir.to_str().unwrap(),
            "log",
            "import",
            path.to_str().unwrap(),
        ],
        b"",
    );
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    let served = serve(data_dir.to_str().unwrap(), b"{\"type\":\"session_shutdown\"}\n");
    let stdout = String::from_utf8_lossy(&served.stdout);
    let ready: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(ready["type"], "ready", "{stdout}");
    assert_eq!(ready["settings"]["refresh_interval_s"], 120, "{stdout}");
}

#[test]
fn shutdown_before_the_session_starts_is_taken() {
    let events = session("shutdown-before-start");
    let last = events
        .iter()
        .rev()
        .find_map(|e| match &e.payload {
            Event::Transitioned { to, .. } if e.stream == Stream::Controller => Some(to.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(last, "shutdown");
    let started = events.iter().any(|e| {
        matches!(&e.payload, Event::HostReported { host } if serde_json::to_value(host).unwrap()["type"] == "session_start")
    });
    assert!(!started);
}

#[test]
fn cycling_with_one_provider_stays_on_it_and_with_none_enabled_shows_none() {
    let events = session("cycle-none");
    // With only the host's provider enabled, the cycle probes and stays on
    // it; once a patch turns every provider off, none is shown (a disabled
    // provider is not kept as current) and the cycle, with nothing
    // enabled, names none.
    let stayed: Vec<Option<ProviderId>> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Event::Transitioned { from, to, provider, .. }
                if e.stream == Stream::Controller && from == "cycle_requested" && to == "emit_current" =>
            {
                Some(*provider)
            }
            _ => None,
        })
        .collect();
    assert_eq!(stayed, [Some(ProviderId::Anthropic), None]);
    let selected: Vec<Option<ProviderId>> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Event::ProviderSelected { provider } => Some(*provider),
            _ => None,
        })
        .collect();
    assert_eq!(selected, [Some(ProviderId::Anthropic), None]);
    let cycles = events
        .iter()
        .filter(|e| matches!(&e.payload, Event::HostReported { host } if serde_json::to_value(host).unwrap()["type"] == "cycle_provider"))
        .count();
    assert_eq!(cycles, 2);
}

#[test]
fn a_hosts_patch_governs_what_status_shows_without_another_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let session = concat!(
        "{\"type\":\"session_start\"}\n",
        "{\"type\":\"settings_patch\",\"patch\":{\"providers\":[\"anthropic\"],\"refresh_interval_s\":300}}\n",
        "{\"type\":\"session_shutdown\"}\n",
    );
    let served = serve(data, session.as_bytes());
    assert!(served.status.success());
    let state = |at: &str, provider: &str| {
        let format = format!("{{{provider}.state}}");
        let output = quotatrack(
            &["--data-dir", data, "--clock-at", at, "status", "--format", &format],
            b"",
        );
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    // The providers the patch turned off read inactive at once.
    assert_eq!(state("2026-08-22T12:00:05Z", "codex"), "inactive");
    assert_eq!(state("2026-08-22T12:00:05Z", "anthropic"), "fresh");
    // Stale follows the patched interval (3 × 300 s), not the settings
    // file's default (180 s): the status reader has no patch of its own.
    assert_eq!(state("2026-08-22T12:10:00Z", "anthropic"), "fresh");
    assert_eq!(state("2026-08-22T12:16:00Z", "anthropic"), "stale");
}
