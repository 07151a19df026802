//! The one integration-test binary; each module tests one boundary.

mod support;

// The 16 resolution vectors of the tracker design, multiplier and per-model quotas, and invariants.
mod resolution;
// Every recorded provider response parses to its reviewed snapshot and expected kind.
mod providers;
// Mutated and random provider responses never panic, hang or yield out-of-range numbers.
mod robustness;
// The `quotatrack parse` command against the parse contract, run as a real process.
mod cli;
// The store as a fold of the log: live == rebuilt == checkpoint + tail, export/import, the store rules.
mod projection;
// The sled log with real processes: a committed v1 log, SIGKILL, altered bytes, ownership.
mod log;
// Damaged logs: every damage kind × every command as real processes, then `log repair`.
mod faults;
// Retention killed anywhere by SIGKILL, export/import round trips, format-1 conversion, replay of a folded export.
mod retention;
// The engine under paused time: interval, backoff, rate limits, notifications.
mod engine;
// Replay: incidents re-drive to their decisions; changed rules or readings diverge in one line.
mod replay;
// The tracker machine against a reference model of its rules (proptest-state-machine).
mod machines;
// Footer values and status --format templates.
mod footer;
// The live transport and the real binary against a real loopback server.
mod live;
// Redirects never carry a secret off its origin: every hop recorded by loopback servers.
mod redirects;
// Numeric flags of the real binary: out-of-range values say what is allowed.
mod flags;
// Credential discovery from fake homes; a canary token that must never leave memory.
mod credentials;
// Status pages: every variant, mutated pages, TTL and last-good through the engine.
mod health;
// serve --stdio as a real process: a scripted host session, its transcript and its replay.
mod serve;
// The controller in the engine against a reference model of the diagram (proptest-state-machine).
mod controller;
// Three serve processes on one data dir: forwarding, takeover (keeping the host's provider), one request per interval.
mod singleton;
// The status table, the status line and the bar/prompt integrations, over the demo and the incidents.
mod render;
// The `quotatrack` front: status answered alone, byte for byte as the engine; every other line handed to the engine.
mod front;
// `statusline claude` fed recorded Claude Code payloads, with and without rate_limits, and broken ones.
mod statusline;
// Shell completions and the man page name every command.
mod completions;
// Pace from hand-built readings with known answers: even use, a burst, a reset, one reading.
mod pace;
// History series: cycles, running out, downsampling that keeps peaks and resets, a recorded rollover.
mod history;
// Everyday edges as real processes: closed stdout, second owner, bad config, hostile stdio input, paths in the way, settings out of bounds in a log.
mod hostedges;
// serve --http on 127.0.0.1: every endpoint, bounds, the token rule, owner and follower processes, promtool.
mod http;
// Planted secrets echoed back by hostile servers in every form never reach a byte the tool writes.
mod canary;

// One cycle: live runs over loopback HTTP replay to their own log.
mod oneloop;
// Alerts: each crossing once (restarts included), replayed; command and webhook delivery, hanging ones too.
mod alerts;
// Settings that govern: per-provider status pages, stale after, interval retiming, patches that persist.
mod settings;
// Recorded host sessions of serve --stdio (fixtures/sessions): replayed, each promise it was recorded for.
mod sessions;
// Closing or dropping a log leaves it free at once: the same process and the next command open it.
mod close;
// An export after a fold: its readings carried to the import, a fold cut only between cycles.
mod foldexport;
