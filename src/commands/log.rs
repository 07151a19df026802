//! The `log` subcommands: export, import, verify, repair, stats, compact
//! and the stress writer the crash tests use. Each that prints what it
//! found prints it for people, or as one JSON object with `--json`. One
//! that runs longer than a second shows its progress on stderr when
//! stderr is a terminal ([`Progress`]), and nothing at all otherwise.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::open_input;
use crate::cli::{LogArgs, LogCommand};
use crate::journal::Journal;
use crate::log::{Log, Problem, damage};
use crate::stress::stress;
use crate::wire::rfc3339_seconds;

pub(super) fn run_log(data_dir: &Path, args: LogArgs, now: Timestamp) -> anyhow::Result<ExitCode> {
    let after = Duration::from_millis(args.progress_after_ms);
    let json = args.json;
    match args.command {
        LogCommand::Export { since } => {
            let progress = Progress::start("exporting the log", after);
            let mut out = Counted {
                inner: std::io::stdout().lock(),
                bar: progress.bar(),
            };
            let report = damage::export(data_dir, since, &mut out);
            progress.finish();
            let report = report?;
            for (seq, reason) in &report.skipped {
                eprintln!("quotatrack: skipped log entry {seq}: {reason}");
            }
            if let Some(damage) = &report.damage {
                eprintln!(
                    "quotatrack: the log in {} is damaged ({damage}); exported {} readable events ({} from the raw files), skipped {}; run `quotatrack log repair`",
                    data_dir.display(),
                    report.written,
                    report.from_raw,
                    report.skipped.len()
                );
            }
            Ok(if report.skipped.is_empty() && report.damage.is_none() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        LogCommand::Import { file } => {
            let progress = Progress::start("importing events", after);
            let input = Counted {
                inner: open_input(&file)?,
                bar: progress.bar(),
            };
            let imported = damage::import(data_dir, std::io::BufReader::new(input));
            progress.finish();
            let imported = imported?;
            if json {
                print_json(&json!({"imported": imported, "data_dir": data_dir.display().to_string()}))?;
            } else {
                println!("imported {imported} events into {}", data_dir.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        LogCommand::Verify => {
            let verified = Progress::around("verifying the log", after, || damage::verify(data_dir))?;
            if json {
                print_json(&verified_json(&verified))?;
            } else {
                for line in verified.lines() {
                    println!("{line}");
                }
            }
            Ok(if verified.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        LogCommand::Repair => {
            let repaired = Progress::around("repairing the log", after, || damage::repair(data_dir, now))?;
            if json {
                print_json(&repaired.as_ref().map_or_else(
                    || json!({"damaged": false}),
                    |report| {
                        json!({
                            "damaged": true,
                            "kept": report.kept,
                            "kept_ranges": report.kept_ranges,
                            "from_raw": report.from_raw,
                            "lost": problems_json(&report.lost),
                            "moved_to": report.moved_to.display().to_string(),
                            "from_checkpoint": report.from_checkpoint,
                            "open_ended": report.open_ended,
                        })
                    },
                ))?;
                return Ok(ExitCode::SUCCESS);
            }
            match repaired {
                Some(report) => {
                    for line in report.lines() {
                        println!("{line}");
                    }
                }
                None => println!("the log in {} is not damaged; nothing to repair", data_dir.display()),
            }
            Ok(ExitCode::SUCCESS)
        }
        LogCommand::Stats => {
            let stats = Progress::around("counting the log's events", after, || damage::stats(data_dir))?;
            if json {
                let time = |at: Option<Timestamp>| at.map(rfc3339_seconds);
                print_json(&json!({
                    "events": stats.events,
                    "unreadable": stats.unreadable,
                    "from_raw": stats.from_raw,
                    "damage": stats.damage,
                    "by_type": stats.by_type,
                    "by_provider": stats.by_provider,
                    "first_at": time(stats.first_at),
                    "kept_settings": stats.kept_settings,
                    "kept_settings_first_at": time(stats.kept_first_at),
                    "last_at": time(stats.last_at),
                    "size_on_disk_bytes": stats.size_on_disk,
                    "oldest_body_at": time(stats.oldest_body),
                }))?;
            } else {
                for line in stats.lines() {
                    println!("{line}");
                }
            }
            if let Some(damage) = &stats.damage {
                eprintln!(
                    "quotatrack: the log in {} is damaged ({damage}); counted {} readable events ({} from the raw files); run `quotatrack log repair`",
                    data_dir.display(),
                    stats.events,
                    stats.from_raw
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        LogCommand::Compact { keep_days } => {
            let shortened = Progress::around("compacting the log", after, || {
                let mut log = Log::open(data_dir)?;
                let keep = SignedDuration::from_hours(24 * i64::from(keep_days));
                let shortened = log.compact(now, keep)?;
                log.close()?;
                // What was dropped is given back to the disk.
                let vacuumed = crate::log::vacuum::vacuum(data_dir)?;
                anyhow::Ok((shortened, vacuumed))
            })?;
            let (shortened, vacuumed) = shortened;
            if json {
                print_json(&json!({
                    "bodies_dropped": shortened,
                    "keep_days": keep_days,
                    "bytes_before": vacuumed.before,
                    "bytes_after": vacuumed.after,
                }))?;
            } else {
                println!("dropped the bodies of {shortened} fetches older than {keep_days} days");
                println!(
                    "rewrote the log: {} bytes on disk, {} before",
                    vacuumed.after, vacuumed.before
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        LogCommand::Stress { count } => {
            let journal = Journal::from_log(data_dir, Log::open(data_dir)?)?;
            stress(journal, count, &mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `value` on one line of stdout.
fn print_json(value: &Value) -> std::io::Result<()> {
    writeln!(std::io::stdout().lock(), "{value}")
}

fn problems_json(problems: &[Problem]) -> Value {
    problems
        .iter()
        .map(|problem| json!({"first": problem.first, "last": problem.last, "reason": problem.reason}))
        .collect()
}

/// `log verify --json`: `ok`, sled's report, and what a damaged log still holds.
fn verified_json(verified: &damage::Verified) -> Value {
    let sled = verified.sled.as_ref().map(|report| {
        json!({
            "events": report.events,
            "first_problem": report.first_problem.as_ref().map(|(seq, reason)| json!({"seq": seq, "reason": reason})),
            "problems": problems_json(&report.problems),
            "holes": report.holes,
            "checkpoint_agrees": report.checkpoint_agrees,
        })
    });
    let damaged = verified.damaged.as_ref().map(|readable| {
        json!({
            "readable_events": readable.events,
            "from_raw": readable.from_raw,
            "lost": problems_json(&readable.lost),
            "problems": problems_json(&readable.problems),
            "holes": readable.holes,
        })
    });
    json!({"ok": verified.ok(), "sled": sled, "damaged": damaged})
}

/// A progress display on stderr for a command that runs longer than
/// `after`: drawn only when stderr is a terminal, cleared when the command
/// is done. It counts what passes through a [`Counted`] (events written,
/// bytes read) and shows the time spent.
struct Progress {
    bar: ProgressBar,
    /// Told when the command is done, so the display never starts late.
    done: Option<mpsc::Sender<()>>,
    waiting: Option<JoinHandle<()>>,
}

impl Progress {
    /// A display for `what`, hidden until `after` has passed (and for ever
    /// when stderr is not a terminal).
    fn start(what: &'static str, after: Duration) -> Progress {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        if !std::io::stderr().is_terminal() {
            return Progress {
                bar,
                done: None,
                waiting: None,
            };
        }
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}: {human_pos} so far, {elapsed}") {
            bar.set_style(style);
        }
        bar.set_message(what);
        if after.is_zero() {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(120));
            return Progress {
                bar,
                done: None,
                waiting: None,
            };
        }
        let (done, finished) = mpsc::channel::<()>();
        let shown = bar.clone();
        let waiting = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(after) {
                shown.set_draw_target(ProgressDrawTarget::stderr());
                shown.enable_steady_tick(Duration::from_millis(120));
            }
        });
        Progress {
            bar,
            done: Some(done),
            waiting: Some(waiting),
        }
    }

    /// Runs `work` with a display of `what` (time only).
    fn around<T, E>(what: &'static str, after: Duration, work: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let progress = Progress::start(what, after);
        let result = work();
        progress.finish();
        result
    }

    /// The bar a [`Counted`] moves.
    fn bar(&self) -> ProgressBar {
        self.bar.clone()
    }

    /// The command is done: the display, if it was drawn, is cleared.
    fn finish(mut self) {
        drop(self.done.take());
        if let Some(waiting) = self.waiting.take() {
            let _ = waiting.join();
        }
        self.bar.finish_and_clear();
    }
}

/// A writer or a reader that counts the lines (events) through it on a
/// [`Progress`] bar.
struct Counted<T> {
    inner: T,
    bar: ProgressBar,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.bar.inc(lines(&buf[..written]));
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.bar.inc(lines(&buf[..read]));
        Ok(read)
    }
}

fn lines(bytes: &[u8]) -> u64 {
    u64::try_from(bytes.iter().filter(|byte| **byte == b'\n').count()).unwrap_or(u64::MAX)
}
