//! The stress writer behind `quotatrack log stress`: batches of one to
//! three events appended as fast as the log takes them, each batch's last
//! sequence number printed once its append returned (it is then durable).
//! The crash tests kill the process at a random moment and check that
//! every number printed is still in the log.

use std::io::Write;

use jiff::{SignedDuration, Timestamp};

use crate::events::{Event, Stream};
use crate::journal::Journal;
use crate::log::LogError;
use crate::providers::ProviderId;

/// Appends `count` batches (or until stopped) to `journal`, checkpointing
/// every 50 events, printing each batch's last sequence number to `out`;
/// then closes the journal.
pub fn stress(journal: Journal, count: Option<u64>, out: &mut impl Write) -> Result<(), LogError> {
    let mut journal = journal.checkpoint_every(50);
    let start = Timestamp::from_second(1_800_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
    for round in 0..count.unwrap_or(u64::MAX) {
        let at = start + SignedDuration::from_secs(round as i64);
        let provider = ProviderId::ALL[(round % 7) as usize];
        let stream = Stream::Tracker(provider);
        let mut batch = vec![(at, stream, Event::FetchStarted { provider })];
        for _ in 0..round % 3 {
            batch.push((
                at,
                stream,
                Event::StoreUpdated {
                    provider,
                    fails: (round % 5) as u32,
                    active: true,
                    blocked_until: None,
                },
            ));
        }
        let envelopes = journal.record(batch)?;
        if let Some(last) = envelopes.last() {
            writeln!(out, "{}", last.seq)
                .and_then(|()| out.flush())
                .map_err(LogError::Output)?;
        }
    }
    journal.close()
}
