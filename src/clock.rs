//! Time as an input. The machines never read a clock; the engine reads
//! one `Clock` and passes the reading along as event data, so a run can be
//! driven by the system clock, by tokio's paused test time or by a manual
//! clock that jumps, and replay can feed recorded readings back.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

/// A boxed, sendable future: what the engine's input traits return, so
/// they can be used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where the engine gets the time and how it waits.
pub trait Clock: Send + Sync {
    /// The current reading.
    fn now(&self) -> Timestamp;
    /// Waits for `duration` of this clock's time.
    fn sleep(&self, duration: SignedDuration) -> BoxFuture<'_, ()>;
}

/// The system clock; waits with tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn sleep(&self, duration: SignedDuration) -> BoxFuture<'_, ()> {
        Box::pin(tokio::time::sleep(duration.unsigned_abs()))
    }
}

/// The system clock shifted by a fixed offset: the binary's hidden
/// `--now-offset` runs "as if it were later", which is how tests of the real
/// binary cross an hour-long `Retry-After` without waiting for it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShiftedClock {
    /// Added to the system clock.
    pub offset: SignedDuration,
    /// Read this instead of the system clock (plus the offset): a real
    /// process whose output must not depend on when it runs (transcripts).
    pub frozen: Option<Timestamp>,
}

impl Clock for ShiftedClock {
    fn now(&self) -> Timestamp {
        self.frozen.unwrap_or_else(Timestamp::now) + self.offset
    }

    fn sleep(&self, duration: SignedDuration) -> BoxFuture<'_, ()> {
        Box::pin(tokio::time::sleep(duration.unsigned_abs()))
    }
}

/// A clock read from a file holding one RFC 3339 time: the binary's hidden
/// `--clock-file`, with which a test moves the clock of several real
/// processes at once. An unreadable file reads as the system clock.
#[derive(Debug, Clone)]
pub struct FileClock {
    /// The file.
    pub path: std::path::PathBuf,
}

impl Clock for FileClock {
    fn now(&self) -> Timestamp {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or_else(Timestamp::now)
    }

    fn sleep(&self, duration: SignedDuration) -> BoxFuture<'_, ()> {
        Box::pin(tokio::time::sleep(duration.unsigned_abs()))
    }
}

/// A clock that starts at a chosen time and moves with tokio's timer. In a
/// test with paused time (`#[tokio::test(start_paused = true)]`) it is
/// virtual: hours pass instantly and exactly.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: Timestamp,
    started: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `origin` now.
    pub fn starting_at(origin: Timestamp) -> TokioClock {
        TokioClock {
            origin,
            started: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        let elapsed = SignedDuration::try_from(self.started.elapsed()).unwrap_or(SignedDuration::MAX);
        self.origin.saturating_add(elapsed).unwrap_or(self.origin)
    }

    fn sleep(&self, duration: SignedDuration) -> BoxFuture<'_, ()> {
        Box::pin(tokio::time::sleep(duration.unsigned_abs()))
    }
}

/// A clock that only moves when told to; `sleep` moves it at once. This is
/// the virtual clock of `demo` and of tests that need no runtime timer.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock { now: Mutex::new(start) }
    }

    /// Moves the clock forward by `duration`.
    pub fn advance(&self, duration: SignedDuration) {
        let mut now = self.now.lock().unwrap_or_else(|poison| poison.into_inner());
        *now = now.saturating_add(duration).unwrap_or(*now);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    fn sleep(&self, duration: SignedDuration) -> BoxFuture<'_, ()> {
        self.advance(duration);
        Box::pin(std::future::ready(()))
    }
}
