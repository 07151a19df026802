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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Log;

    #[test]
    fn each_printed_number_is_the_last_of_a_durable_batch() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let mut out = Vec::new();
        stress(journal, Some(6), &mut out).unwrap();
        let printed: Vec<u64> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|line| line.parse().unwrap())
            .collect();
        // Batches of 1, 2, 3, 1, 2, 3 events.
        assert_eq!(printed, [0, 2, 5, 6, 8, 11]);
        let log = Log::open(dir.path()).unwrap();
        assert_eq!(log.next_seq(), 12);
    }
}
