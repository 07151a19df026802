//! `history`'s outputs: on a terminal a chart per window (four rows of
//! block characters, 0–100 %, resets marked `↺` under the chart, the time
//! axis labelled in local time) with its summary; `--json` and `--csv`
//! give the series themselves.

use jiff::Timestamp;
use serde_json::json;

use crate::history::Series;
use crate::render::{Level, Options, paint, style};

/// Rows of the chart.
const ROWS: usize = 4;
/// The left margin: `100% ┤`.
const MARGIN: usize = 6;

/// The charts of `series` between `since` and `until`, each with its
/// summary.
pub fn chart(series: &[Series], since: Timestamp, until: Timestamp, options: &Options) -> String {
    if series.is_empty() {
        return "no readings in that time: widen --since, or check the provider and window ids\n".to_owned();
    }
    let columns = options.width.saturating_sub(MARGIN).max(10);
    let mut out = String::new();
    for one in series {
        out.push_str(&style(
            &format!(
                "{} {} · {} → {}",
                one.provider.provider().label(),
                one.window
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect::<String>(),
                stamp(since, options),
                stamp(until, options)
            ),
            "1",
            options.color,
        ));
        out.push('\n');
        let (heights, resets) = columns_of(one, since, until, columns);
        for row in (0..ROWS).rev() {
            let label = match row {
                r if r == ROWS - 1 => "100% ┤",
                0 => "  0% ┤",
                _ => "     │",
            };
            out.push_str(label);
            let line: String = heights
                .iter()
                .map(|height| match height {
                    None => " ".to_owned(),
                    Some(ratio) => paint(&cell(*ratio, row).to_string(), Level::of(Some(*ratio)), options.color),
                })
                .collect();
            out.push_str(line.trim_end());
            out.push('\n');
        }
        if resets.iter().any(|reset| *reset) {
            let marks: String = resets.iter().map(|reset| if *reset { '↺' } else { ' ' }).collect();
            out.push_str(&format!("{}{}\n", " ".repeat(MARGIN), marks.trim_end()));
        }
        out.push_str(&axis(since, until, columns, options));
        for line in summary(one, options) {
            out.push_str(&line);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// The series as one JSON object: `{"schema":1,"since":…,"until":…,
/// "series":[{"provider","window","points":[{"at","used_ratio",
/// "resets_at","reset"}],"summary":{…}}]}`.
pub fn json(series: &[Series], since: Timestamp, until: Timestamp) -> String {
    use crate::wire::{rfc3339_seconds, round6};
    let series: Vec<serde_json::Value> = series
        .iter()
        .map(|one| {
            let points: Vec<serde_json::Value> = one
                .points
                .iter()
                .map(|point| {
                    json!({
                        "at": rfc3339_seconds(point.at),
                        "used_ratio": round6(point.used_ratio),
                        "resets_at": point.resets_at.map(rfc3339_seconds),
                        "reset": point.reset,
                    })
                })
                .collect();
            let summary = &one.summary;
            json!({
                "provider": one.provider,
                "window": one.window,
                "points": points,
                "summary": {
                    "peak": round6(summary.peak),
                    "peak_at": summary.peak_at.map(rfc3339_seconds),
                    "cycles": summary.cycles,
                    "average_cycle_peak": round6(summary.average_cycle_peak),
                    "ran_out": summary.ran_out.iter().map(|at| rfc3339_seconds(*at)).collect::<Vec<_>>(),
                },
            })
        })
        .collect();
    json!({
        "schema": 1,
        "since": rfc3339_seconds(since),
        "until": rfc3339_seconds(until),
        "series": series,
    })
    .to_string()
        + "\n"
}

/// The series as CSV, one row per point:
/// `provider,window,at,used_ratio,resets_at,reset`.
pub fn csv(series: &[Series]) -> String {
    let mut out = "provider,window,at,used_ratio,resets_at,reset\n".to_owned();
    for one in series {
        let window = if one.window.contains([',', '"', '\n']) {
            format!("\"{}\"", one.window.replace('"', "\"\""))
        } else {
            one.window.clone()
        };
        for point in &one.points {
            out.push_str(&format!(
                "{},{window},{},{},{},{}\n",
                one.provider,
                crate::wire::rfc3339_seconds(point.at),
                crate::wire::round6(point.used_ratio),
                point.resets_at.map(crate::wire::rfc3339_seconds).unwrap_or_default(),
                point.reset
            ));
        }
    }
    out
}

/// Per chart column, the highest used ratio of the points in it (carried
/// on from the last point across columns without one), and whether a
/// cycle started in it.
fn columns_of(series: &Series, since: Timestamp, until: Timestamp, columns: usize) -> (Vec<Option<f64>>, Vec<bool>) {
    let span = until.duration_since(since).as_secs_f64().max(1.0);
    let mut heights: Vec<Option<f64>> = vec![None; columns];
    let mut resets = vec![false; columns];
    let mut filled = vec![false; columns];
    for point in &series.points {
        let offset = point.at.duration_since(since).as_secs_f64() / span;
        if !(0.0..=1.0).contains(&offset) {
            continue;
        }
        let column = ((offset * (columns - 1) as f64).round() as usize).min(columns - 1);
        resets[column] |= point.reset;
        heights[column] = Some(if filled[column] {
            heights[column].unwrap_or(0.0).max(point.used_ratio)
        } else {
            point.used_ratio
        });
        filled[column] = true;
    }
    let last_column = series
        .points
        .last()
        .map(|point| {
            let offset = point.at.duration_since(since).as_secs_f64() / span;
            ((offset.clamp(0.0, 1.0) * (columns - 1) as f64).round()) as usize
        })
        .unwrap_or(0);
    let mut carried = None;
    for (column, height) in heights.iter_mut().enumerate() {
        if filled[column] {
            carried = *height;
        } else if column <= last_column {
            *height = carried;
        }
    }
    (heights, resets)
}

/// The character of `row` (0 the lowest) for a column filled to `ratio`.
fn cell(ratio: f64, row: usize) -> char {
    const EIGHTHS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let eighths = (ratio.clamp(0.0, 1.0) * (ROWS * 8) as f64).round() as usize;
    let in_row = eighths.saturating_sub(row * 8).min(8);
    // A used ratio above zero always shows on the lowest row.
    if row == 0 && in_row == 0 && ratio > 0.0 {
        return '▁';
    }
    EIGHTHS[in_row]
}

/// The time axis: `└` under the chart, the first, middle and last times.
fn axis(since: Timestamp, until: Timestamp, columns: usize, options: &Options) -> String {
    let first = stamp(since, options);
    let last = stamp(until, options);
    let middle = stamp(since + until.duration_since(since) / 2, options);
    let mut labels: Vec<char> = vec![' '; columns];
    let mut put = |start: usize, text: &str| {
        for (index, character) in text.chars().enumerate() {
            if let Some(slot) = labels.get_mut(start + index) {
                *slot = character;
            }
        }
    };
    put(0, &first);
    let width = last.chars().count();
    if columns > 3 * width + 4 {
        put(columns / 2 - width / 2, &middle);
    }
    put(columns.saturating_sub(width), &last);
    let labels: String = labels.into_iter().collect();
    format!(
        "     └{}\n{}{}\n",
        "─".repeat(columns),
        " ".repeat(MARGIN),
        labels.trim_end()
    )
}

/// The summary under a chart: the peak and the average cycle peak, then
/// the cycles that ran out (the first five), each on its own line.
fn summary(series: &Series, options: &Options) -> Vec<String> {
    let summary = &series.summary;
    let peaks = format!(
        "peak {}%{} · average cycle peak {}% over {} cycle{}",
        (summary.peak * 100.0).round(),
        summary
            .peak_at
            .map(|at| format!(" at {}", stamp(at, options)))
            .unwrap_or_default(),
        (summary.average_cycle_peak * 100.0).round(),
        summary.cycles,
        if summary.cycles == 1 { "" } else { "s" }
    );
    let ran_out = match summary.ran_out.len() {
        0 => "never ran out".to_owned(),
        count => {
            let when: Vec<String> = summary.ran_out.iter().take(5).map(|at| stamp(*at, options)).collect();
            let more = if count > 5 { ", …" } else { "" };
            format!("ran out {count}×: {}{more}", when.join(", "))
        }
    };
    vec![peaks, ran_out]
}

/// `08-22 14:05` in the options' time zone.
fn stamp(at: Timestamp, options: &Options) -> String {
    at.to_zoned(options.time_zone.get()).strftime("%m-%d %H:%M").to_string()
}
