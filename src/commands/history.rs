//! `quotatrack history`: the arguments read into a query, the log (or an
//! exported file) read through [`crate::history`], and the series drawn by
//! [`crate::render::history`] as a chart, CSV or JSON.

use jiff::SignedDuration;

use crate::cli::HistoryArgs;
use crate::history::{DEFAULT_STEPS, HistoryError, Query, Source, parse_duration, parse_time, read};
use crate::render;
use crate::wire::rfc3339_seconds;

/// Why `history` could not run.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// An argument is wrong (a time, a duration, an empty span).
    #[error("{0}")]
    Usage(String),
    /// The source could not be read.
    #[error(transparent)]
    Read(#[from] HistoryError),
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
    let read = read(source, query)?;
    Ok(if args.json {
        render::history::json(&read.series, since, until)
    } else if args.csv {
        render::history::csv(&read.series)
    } else {
        render::history::chart(&read.series, since, until, options)
    })
}
