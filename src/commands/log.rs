//! The `log` subcommands: export, import, verify, repair, stats, compact
//! and the stress writer the crash tests use.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use jiff::{SignedDuration, Timestamp};

use super::open_input;
use crate::cli::{LogArgs, LogCommand};
use crate::journal::Journal;
use crate::log::{Log, damage};
use crate::stress::stress;

pub(super) fn run_log(data_dir: &Path, args: LogArgs, now: Timestamp) -> anyhow::Result<ExitCode> {
    match args.command {
        LogCommand::Export { since } => {
            let report = damage::export(data_dir, since, &mut std::io::stdout().lock())?;
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
            let input = open_input(&file)?;
            let imported = damage::import(data_dir, input)?;
            println!("imported {imported} events into {}", data_dir.display());
            Ok(ExitCode::SUCCESS)
        }
        LogCommand::Verify => {
            let verified = damage::verify(data_dir)?;
            for line in verified.lines() {
                println!("{line}");
            }
            Ok(if verified.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        LogCommand::Repair => {
            match damage::repair(data_dir, now)? {
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
            let stats = damage::stats(data_dir)?;
            for line in stats.lines() {
                println!("{line}");
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
            let mut log = Log::open(data_dir)?;
            let keep = SignedDuration::from_hours(24 * i64::from(keep_days));
            let shortened = log.compact(now, keep)?;
            log.close()?;
            println!("dropped the bodies of {shortened} fetches older than {keep_days} days");
            Ok(ExitCode::SUCCESS)
        }
        LogCommand::Stress { count } => {
            let journal = Journal::from_log(data_dir, Log::open(data_dir)?)?;
            stress(journal, count, &mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
