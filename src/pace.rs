//! Pace: whether a window's usage will last until its reset, computed from
//! the readings the log holds rather than from the latest one alone.
//!
//! For a window with a length and a reset time, the **expected** used ratio
//! is the share of the window's time that has passed (what even use would
//! have spent by now). The **delta** is the actual ratio minus the expected
//! one: positive means more has been spent than even use would have.
//! The **projection** extends the recent slope (a least-squares line through
//! the readings of the current cycle within the recent span, at least
//! [`MIN_READINGS`] of them) to the reset; when the line crosses 100 % before
//! the reset, that is when the window runs out.
//!
//! Everything here is pure: readings and the clock reading come in, and the
//! same inputs always give the same answer. The store keeps each window's
//! recent readings in a bounded ring ([`keep`]); a view turns them into the
//! `pace` object of `status --json` ([`body`]) and a later reader re-derives
//! that at its own clock from the slope it carries ([`rederive`]).

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::wire::{PaceBody, rfc3339_seconds, round6};

/// The fewest readings a projection is drawn through: two points make a
/// line through any noise, so a slope needs a third to mean anything.
pub const MIN_READINGS: usize = 3;
/// The shortest time the readings of a projection must span.
pub const MIN_SPAN: SignedDuration = SignedDuration::from_secs(120);
/// A fall in the used ratio larger than this between two readings is a
/// reset, even when the provider's reset time did not say so (a rolling
/// window, or a reset earlier than announced).
pub const RESET_DROP: f64 = 0.02;
/// How far a delta may stray from even use and still be on track.
pub const ON_TRACK: f64 = 0.05;
/// Beyond this delta the pace is far ahead or far behind.
pub const FAR: f64 = 0.20;

/// The most readings the store keeps per window ([`keep`]).
pub const RING: usize = 64;

/// The length a window's ring is spaced by when its response states none
/// but it has a reset (Copilot's month and Gemini's day come from the
/// quota's rule, which the fold does not read): a day, so the ring reaches
/// back at least the last 72 minutes of readings.
pub const KEPT_WITHOUT_LENGTH: u64 = 86_400;

/// One reading of a window: its used ratio at a time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// When the provider reported it.
    pub at: Timestamp,
    /// Its used ratio, 0..1.
    pub used_ratio: f64,
}

/// What is known of a window's current cycle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// The window's length.
    pub seconds: u64,
    /// When the current cycle ends.
    pub resets_at: Timestamp,
}

/// How usage compares with even use over the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Within [`ON_TRACK`] of even use.
    OnTrack,
    /// More spent than even use, by up to [`FAR`].
    Ahead,
    /// More spent than even use, by more than [`FAR`].
    FarAhead,
    /// Less spent than even use, by up to [`FAR`].
    Behind,
    /// Less spent than even use, by more than [`FAR`].
    FarBehind,
}

/// Why a pace, or its projection, is not known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unknown {
    /// The window has no reset time or no length.
    NoResetTime,
    /// The reset time has passed; the next reading starts a new cycle.
    ResetPassed,
    /// No reading of the current cycle.
    NoReadings,
    /// Fewer than [`MIN_READINGS`] readings over [`MIN_SPAN`] in the
    /// current cycle: enough for the stage, not for a slope.
    TooFewReadings,
}

/// The pace of one window at one clock reading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pace {
    /// The used ratio even use would have reached by now.
    pub expected_used_ratio: f64,
    /// The latest reading's used ratio.
    pub used_ratio: f64,
    /// `used_ratio - expected_used_ratio`.
    pub delta: f64,
    /// How the delta reads.
    pub stage: Stage,
    /// The used ratio at the reset if the recent slope holds; above 1 when
    /// it would run out first. `None` when [`Pace::projection_unknown`]
    /// says why.
    pub projected_at_reset: Option<f64>,
    /// When the window runs out at the recent slope, if that is before the
    /// reset (now, when it already has).
    pub runs_out_at: Option<Timestamp>,
    /// Why there is no projection.
    pub projection_unknown: Option<Unknown>,
    /// How many readings the projection was drawn through.
    pub readings: usize,
    /// The recent slope the projection extends, in used ratio per second
    /// (never negative); `None` without a projection.
    pub slope_per_second: Option<f64>,
}

impl Stage {
    /// The stage of a delta.
    pub fn of(delta: f64) -> Stage {
        if delta > FAR {
            Stage::FarAhead
        } else if delta > ON_TRACK {
            Stage::Ahead
        } else if delta < -FAR {
            Stage::FarBehind
        } else if delta < -ON_TRACK {
            Stage::Behind
        } else {
            Stage::OnTrack
        }
    }
}

/// The pace of `window` at `now` from its readings (in any order; those
/// after `now` are ignored).
pub fn pace(window: Window, readings: &[Reading], now: Timestamp) -> Result<Pace, Unknown> {
    if window.seconds == 0 {
        return Err(Unknown::NoResetTime);
    }
    if window.resets_at <= now {
        return Err(Unknown::ResetPassed);
    }
    let length = SignedDuration::from_secs(i64::try_from(window.seconds).unwrap_or(i64::MAX));
    let cycle_start = window.resets_at.checked_sub(length).unwrap_or(Timestamp::MIN);
    let cycle = current_cycle(readings, cycle_start, now);
    let latest = *cycle.last().ok_or(Unknown::NoReadings)?;
    if latest.used_ratio >= 1.0 {
        return Ok(project(window, latest.used_ratio, Ok(0.0), cycle.len(), now));
    }
    let recent = recent(&cycle, length, now);
    let span = match (recent.first(), recent.last()) {
        (Some(first), Some(last)) => last.at.duration_since(first.at),
        _ => SignedDuration::ZERO,
    };
    if recent.len() < MIN_READINGS || span < MIN_SPAN {
        return Ok(project(window, latest.used_ratio, Err(Unknown::TooFewReadings), 0, now));
    }
    // Usage within a cycle only grows; a falling line is read as no use.
    let per_second = slope(recent).max(0.0);
    Ok(project(window, latest.used_ratio, Ok(per_second), recent.len(), now))
}

/// The pace of a window whose latest used ratio is `used_ratio`, at `now`,
/// given the recent slope (used ratio per second) or why there is none,
/// drawn through `readings` readings. [`pace`] finds the slope in the
/// readings; a reader of an older view re-derives the pace at its own
/// clock from the slope the view carries.
pub fn project(window: Window, used_ratio: f64, slope: Result<f64, Unknown>, readings: usize, now: Timestamp) -> Pace {
    let length = SignedDuration::from_secs(i64::try_from(window.seconds).unwrap_or(i64::MAX));
    let cycle_start = window.resets_at.checked_sub(length).unwrap_or(Timestamp::MIN);
    let elapsed = now.duration_since(cycle_start).as_secs_f64().max(0.0);
    let expected_used_ratio = if window.seconds == 0 {
        0.0
    } else {
        (elapsed / window.seconds as f64).clamp(0.0, 1.0)
    };
    let delta = used_ratio - expected_used_ratio;
    let mut pace = Pace {
        expected_used_ratio,
        used_ratio,
        delta,
        stage: Stage::of(delta),
        projected_at_reset: None,
        runs_out_at: None,
        projection_unknown: None,
        readings,
        slope_per_second: None,
    };
    if used_ratio >= 1.0 {
        pace.projected_at_reset = Some(used_ratio);
        pace.runs_out_at = Some(now);
        pace.slope_per_second = Some(slope.unwrap_or(0.0).max(0.0));
        return pace;
    }
    let per_second = match slope {
        Ok(per_second) if per_second.is_finite() => per_second.max(0.0),
        Ok(_) => {
            pace.projection_unknown = Some(Unknown::TooFewReadings);
            return pace;
        }
        Err(unknown) => {
            pace.projection_unknown = Some(unknown);
            pace.readings = 0;
            return pace;
        }
    };
    let to_reset = window.resets_at.duration_since(now).as_secs_f64().max(0.0);
    pace.projected_at_reset = Some(used_ratio + per_second * to_reset);
    pace.slope_per_second = Some(per_second);
    if per_second > 0.0 {
        let seconds = (1.0 - used_ratio) / per_second;
        pace.runs_out_at = SignedDuration::try_from_secs_f64(seconds)
            .ok()
            .and_then(|until| now.checked_add(until).ok())
            .filter(|at| *at < window.resets_at);
    }
    pace
}

/// Adds `reading` to a window's ring of recent readings, kept for
/// [`pace`]: readings closer together than a 48th of the window's recent
/// span replace the newest one instead of adding to it, and the ring holds
/// at most [`RING`], so it always reaches back at least the recent span
/// (63 gaps of span/48) whatever the polling rate. A reading older than
/// the newest kept is ignored.
pub fn keep(ring: &mut Vec<Reading>, reading: Reading, window_seconds: u64) {
    if !reading.used_ratio.is_finite() || ring.last().is_some_and(|last| reading.at < last.at) {
        return;
    }
    let length = SignedDuration::from_secs(i64::try_from(window_seconds).unwrap_or(i64::MAX));
    let spacing = recent_span(length) / 48;
    let crowded = ring.len() >= 2 && reading.at.duration_since(ring[ring.len() - 2].at) < spacing;
    match ring.last_mut() {
        Some(last) if crowded => *last = reading,
        _ => ring.push(reading),
    }
    if ring.len() > RING {
        let extra = ring.len() - RING;
        ring.drain(..extra);
    }
}

/// The readings since the cycle started and since the last fall in the
/// used ratio, in time order, none after `now`.
fn current_cycle(readings: &[Reading], cycle_start: Timestamp, now: Timestamp) -> Vec<Reading> {
    let mut sorted: Vec<Reading> = readings
        .iter()
        .filter(|reading| reading.at >= cycle_start && reading.at <= now && reading.used_ratio.is_finite())
        .copied()
        .collect();
    sorted.sort_by_key(|reading| reading.at);
    let after_reset = sorted
        .windows(2)
        .rposition(|pair| pair[1].used_ratio < pair[0].used_ratio - RESET_DROP)
        .map_or(0, |index| index + 1);
    sorted.split_off(after_reset)
}

/// The readings of the recent span: the last twentieth of the window, but
/// at least 15 minutes, so a 5-hour window looks at its last quarter hour
/// and a week at its last 8.4 hours.
fn recent(cycle: &[Reading], length: SignedDuration, now: Timestamp) -> &[Reading] {
    let span = recent_span(length);
    let since = now.checked_sub(span).unwrap_or(Timestamp::MIN);
    let first = cycle.partition_point(|reading| reading.at < since);
    &cycle[first..]
}

/// The span a projection looks back over for a window of `length`.
pub fn recent_span(length: SignedDuration) -> SignedDuration {
    (length / 20).max(SignedDuration::from_mins(15))
}

/// The least-squares slope of the used ratio over time, per second.
fn slope(readings: &[Reading]) -> f64 {
    let origin = readings[0].at;
    let points: Vec<(f64, f64)> = readings
        .iter()
        .map(|reading| (reading.at.duration_since(origin).as_secs_f64(), reading.used_ratio))
        .collect();
    let n = points.len() as f64;
    let mean_t = points.iter().map(|(t, _)| t).sum::<f64>() / n;
    let mean_r = points.iter().map(|(_, r)| r).sum::<f64>() / n;
    let covariance: f64 = points.iter().map(|(t, r)| (t - mean_t) * (r - mean_r)).sum();
    let variance: f64 = points.iter().map(|(t, _)| (t - mean_t).powi(2)).sum();
    if variance > 0.0 { covariance / variance } else { 0.0 }
}

/// The `pace` object of `window` at `now`, from the store's ring of its
/// recent readings.
pub fn body(window: &crate::wire::Window, length: Option<u64>, readings: &[Reading], now: Timestamp) -> PaceBody {
    let reset = window.resets_at.as_deref().and_then(|text| text.parse().ok());
    match of_window(length, reset) {
        Some(of) => to_body(pace(of, readings, now)),
        None => to_body(Err(Unknown::NoResetTime)),
    }
}

/// The `pace` object of `window` re-derived at `now` from the slope an
/// earlier body carries (a snapshot read later): the expected ratio, the
/// delta and the projection move with the clock, the slope does not. A
/// window whose reset has passed, or without a number, has no pace.
/// `reset` is the window's `resets_at`, parsed.
pub fn rederive(
    window: &crate::wire::Window,
    length: Option<u64>,
    reset: Option<Timestamp>,
    earlier: Option<&PaceBody>,
    now: Timestamp,
) -> PaceBody {
    let Some(of) = of_window(length, reset) else {
        return to_body(Err(Unknown::NoResetTime));
    };
    if of.resets_at <= now || window.reset_passed {
        return to_body(Err(Unknown::ResetPassed));
    }
    let Some(used_ratio) = window.used_ratio else {
        return to_body(Err(Unknown::NoReadings));
    };
    let slope = earlier
        .and_then(|body| body.slope_per_hour)
        .map(|per_hour| per_hour / 3_600.0)
        .ok_or(Unknown::TooFewReadings);
    let readings = earlier.map_or(0, |body| body.readings);
    to_body(Ok(project(of, used_ratio, slope, readings, now)))
}

/// What pace needs of a window: its length (`length`: what the response
/// stated, else its quota's rule; see [`crate::status::window_length`])
/// and its reset time, parsed.
fn of_window(length: Option<u64>, reset: Option<Timestamp>) -> Option<Window> {
    let seconds = length.filter(|seconds| *seconds > 0)?;
    Some(Window {
        seconds,
        resets_at: reset?,
    })
}

fn to_body(pace: Result<Pace, Unknown>) -> PaceBody {
    match pace {
        Err(unknown) => PaceBody {
            stage: "unknown".to_owned(),
            expected_used_ratio: None,
            delta: None,
            projected_at_reset: None,
            runs_out_at: None,
            reason: Some(unknown.as_str().to_owned()),
            slope_per_hour: None,
            readings: 0,
        },
        Ok(pace) => PaceBody {
            stage: pace.stage.as_str().to_owned(),
            expected_used_ratio: Some(round6(pace.expected_used_ratio)),
            delta: Some(round6(pace.delta)),
            projected_at_reset: pace.projected_at_reset.map(round6),
            runs_out_at: pace.runs_out_at.map(rfc3339_seconds),
            reason: pace.projection_unknown.map(|unknown| unknown.as_str().to_owned()),
            slope_per_hour: pace.slope_per_second.map(|per_second| round6(per_second * 3_600.0)),
            readings: pace.readings,
        },
    }
}

impl Stage {
    /// The name, as `status --json` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::OnTrack => "on_track",
            Stage::Ahead => "ahead",
            Stage::FarAhead => "far_ahead",
            Stage::Behind => "behind",
            Stage::FarBehind => "far_behind",
        }
    }
}

impl Unknown {
    /// The name, as `status --json` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Unknown::NoResetTime => "no_reset_time",
            Unknown::ResetPassed => "reset_passed",
            Unknown::NoReadings => "no_readings",
            Unknown::TooFewReadings => "too_few_readings",
        }
    }
}
