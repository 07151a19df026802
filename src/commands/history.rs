//! `quotatrack history`: the arguments read into a query, the log (or an
//! exported file) read through [`crate::history`], and the series drawn by
//! [`crate::render::history`] as a chart, CSV or JSON.
//!
//! A data dir's log is opened in place; when another process owns it, that
//! owner is asked over its control socket ([`crate::owner`]), which reads
//! the same log. Every wait is bounded: [`FIND_OWNER_WITHIN`] for an owner
//! to answer on its socket (or to let the log go), [`ASK_WITHIN`] for its
//! answer.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::SignedDuration;

use crate::cli::HistoryArgs;
use crate::history::{DEFAULT_STEPS, HistoryError, Query, Read, Source, parse_duration, parse_time, read};
use crate::log::LogError;
use crate::owner::{self, AskError};
use crate::render;
use crate::wire::rfc3339_seconds;

/// How long `history` keeps trying when the data dir's owner does not
/// answer on its socket (an engine before its first cycle, or a one-shot
/// command about to release the log).
pub const FIND_OWNER_WITHIN: Duration = Duration::from_secs(3);

/// How long `history` waits for the owner's answer (it reads on its side
/// for at most [`owner::ANSWER_WITHIN`]).
pub const ASK_WITHIN: Duration = Duration::from_secs(12);

/// Why `history` could not run.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// An argument is wrong (a time, a duration, an empty span).
    #[error("{0}")]
    Usage(String),
    /// The source could not be read.
    #[error(transparent)]
    Read(#[from] HistoryError),
    /// Another process owns the data dir and did not give its history.
    #[error("the data dir {} is owned by another quotatrack{}, {why}", dir.display(), pid.map_or_else(String::new, |pid| format!(" (pid {pid})")))]
    Unanswered {
        /// The data dir.
        dir: PathBuf,
        /// The owner's pid, when it wrote one.
        pid: Option<u32>,
        /// Why it did not answer, and what to do.
        why: String,
    },
}

/// `quotatrack history`: reads `source` (a data dir's log or an exported
/// file) and renders what `args` asks for at `now`, with `options`
/// (width, colour, time zone) for the chart.
pub fn command(source: &Source, args: &HistoryArgs, options: &render::Options) -> Result<String, CommandError> {
    let now = options.now;
    let since = parse_time(&args.since, now).map_err(CommandError::Usage)?;
    let until = match &args.until {
        Some(text) => parse_time(text, now).map_err(CommandError::Usage)?,
        None => now,
    };
    if until <= since {
        return Err(CommandError::Usage(format!(
            "--until ({}) must be after --since ({})",
            rfc3339_seconds(until),
            rfc3339_seconds(since)
        )));
    }
    let every = match &args.every {
        Some(text) => parse_duration(text).map_err(CommandError::Usage)?,
        None => {
            let step = (until.duration_since(since).as_secs() / DEFAULT_STEPS).max(60);
            SignedDuration::from_secs(step - step % 60)
        }
    };
    let query = Query {
        provider: args.provider,
        window: args.window.clone(),
        since: Some(since),
        until: Some(until),
        every: Some(every),
    };
    let read = match source {
        Source::DataDir(data_dir) => read_data_dir(data_dir, query)?,
        Source::File(_) => read(source, query)?,
    };
    Ok(if args.json {
        render::history::json(&read.series, since, until)
    } else if args.csv {
        render::history::csv(&read.series)
    } else {
        render::history::chart(&read.series, since, until, options)
    })
}

/// Reads the log of `data_dir`: in place when no process owns it, else
/// from its owner over the control socket. An owner that does not answer
/// on its socket (yet) is given [`FIND_OWNER_WITHIN`], trying both ways
/// again every 100 ms.
fn read_data_dir(data_dir: &Path, query: Query) -> Result<Read, CommandError> {
    let began = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| unanswered(data_dir, None, format!("which this process cannot ask: {error}")))?;
    loop {
        let pid = match read(&Source::DataDir(data_dir.to_owned()), query.clone()) {
            Err(HistoryError::Log(LogError::Owned { pid, .. })) => pid,
            other => return Ok(other?),
        };
        let error = match runtime.block_on(owner::ask_history_typed(data_dir, &query, ASK_WITHIN)) {
            Ok(series) => {
                return Ok(Read {
                    series,
                    ..Read::default()
                });
            }
            Err(error) => error,
        };
        let why = match error {
            AskError::Unreachable { path, .. } if began.elapsed() >= FIND_OWNER_WITHIN => format!(
                "which does not answer on {} (a `status --refresh` or `log` command, or an engine before its first cycle, does not): try again once it is done",
                path.display()
            ),
            AskError::Unreachable { .. } => {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            AskError::Late { limit, .. } => format!(
                "which did not give its history within {} s: try again, or ask for a shorter span (--since)",
                limit.as_secs()
            ),
            AskError::HungUp { .. } => "which hung up before giving its history: try again".to_owned(),
            AskError::Refused(reason) => format!("which did not give its history: {reason}"),
            AskError::Unknown { .. } => {
                "which does not answer history requests (an older version?): restart it".to_owned()
            }
        };
        return Err(unanswered(data_dir, pid, why));
    }
}

fn unanswered(dir: &Path, pid: Option<u32>, why: String) -> CommandError {
    CommandError::Unanswered {
        dir: dir.to_owned(),
        pid,
        why,
    }
}
