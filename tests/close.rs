//! Closing or dropping a log leaves it free at once: sled lets go of its
//! lock only when its background threads end, and `Log::close` and a
//! dropped `Log` return after that, so the same process or a command
//! started next opens the log without finding it owned.

use std::os::fd::AsRawFd;
use std::path::Path;

use quotatrack::events::{Event, Stream};
use quotatrack::journal::Journal;
use quotatrack::log::{Log, LogError};
use quotatrack::providers::ProviderId;

use crate::projection::at;
use crate::support::quotatrack;

/// Rounds of open → append → close (or drop) in one process.
const ROUNDS: u64 = 200;
/// Rounds that each start a command as a real process.
const PROCESS_ROUNDS: u64 = 40;

/// Appends one event to `log`.
fn append_one(log: &mut Log, index: u64) {
    let provider = ProviderId::ALL[(index % 7) as usize];
    log.append([(
        at(index as i64),
        Stream::Tracker(provider),
        Event::FetchStarted { provider },
    )])
    .unwrap();
}

/// Whether the lock sled takes on the log's `db` file in the data dir
/// `dir` is free now: a try-lock on a fresh descriptor, as another
/// process's open would take it (flock conflicts between two open files
/// even in one process). Let go again at once, explicitly: a child another
/// test is starting holds a copy of the descriptor until it execs.
fn lock_is_free(dir: &Path) -> bool {
    let file = std::fs::File::open(dir.join("log/db")).unwrap();
    // SAFETY: flock on a descriptor this function owns; it touches no memory.
    let free = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 };
    if free {
        // SAFETY: as above.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
    }
    free
}

/// Opens the log in `dir`, failing the test with the round if it is owned.
fn open(dir: &Path, round: u64) -> Log {
    match Log::open(dir) {
        Ok(log) => log,
        Err(error @ LogError::Owned { .. }) => panic!("round {round}: {error}"),
        Err(error) => panic!("round {round}: unexpected error: {error}"),
    }
}

/// Runs `verify` in a new process right after the previous round let go
/// of the log: exit 0, never "owned".
fn verify_in_a_process(dir: &Path, round: u64, events: u64) {
    let output = quotatrack(&["--data-dir", dir.to_str().unwrap(), "log", "verify", "--json"], b"");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "round {round}: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ok"], true, "round {round}");
    assert_eq!(report["sled"]["events"], events, "round {round}");
}

/// `ROUNDS` rounds of open, append and `end` (close or drop, named `how`):
/// the log is free right after each, and opens again in this process.
fn free_after_each_round(how: &str, end: impl Fn(Log)) {
    let dir = tempfile::tempdir().unwrap();
    let mut busy = 0;
    for round in 0..ROUNDS {
        let mut log = open(dir.path(), round);
        assert_eq!(log.next_seq(), round, "round {round}");
        append_one(&mut log, round);
        end(log);
        if !lock_is_free(dir.path()) {
            busy += 1;
        }
    }
    assert_eq!(
        busy, 0,
        "the log was still locked right after {how} in {busy} of {ROUNDS} rounds"
    );
    assert_eq!(open(dir.path(), ROUNDS).next_seq(), ROUNDS);
}

#[test]
fn a_closed_log_is_free_at_once_and_opens_again_in_the_same_process() {
    free_after_each_round("close", |log| log.close().unwrap());
}

#[test]
fn a_dropped_log_is_free_at_once_and_opens_again_in_the_same_process() {
    free_after_each_round("drop", drop);
}

#[test]
fn a_command_started_right_after_close_or_drop_finds_the_log_free() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..PROCESS_ROUNDS {
        let mut log = open(dir.path(), round);
        append_one(&mut log, round);
        if round % 2 == 0 {
            log.close().unwrap();
        } else {
            drop(log);
        }
        verify_in_a_process(dir.path(), round, round + 1);
    }
}

#[test]
fn a_closed_journal_is_free_at_once() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..PROCESS_ROUNDS {
        let mut journal = Journal::open(dir.path()).unwrap();
        let provider = ProviderId::ALL[(round % 7) as usize];
        journal
            .record([(
                at(round as i64),
                Stream::Tracker(provider),
                Event::FetchStarted { provider },
            )])
            .unwrap();
        journal.close().unwrap();
        assert!(
            lock_is_free(dir.path()),
            "round {round}: still locked after the journal closed"
        );
    }
    verify_in_a_process(dir.path(), PROCESS_ROUNDS, PROCESS_ROUNDS);
}

#[test]
fn a_reader_that_outlives_close_keeps_the_log_until_it_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), 0);
    append_one(&mut log, 0);
    let reader = log.reader();
    log.close().unwrap();
    // The reader still holds sled's files: the log stays this process's.
    assert!(!lock_is_free(dir.path()));
    assert_eq!(reader.next_seq(), 1);
    assert_eq!(reader.verify().first_problem, None);
    drop(reader);
    assert!(lock_is_free(dir.path()), "still locked after the last reader dropped");
    verify_in_a_process(dir.path(), 0, 1);
}

#[test]
fn a_read_copy_leaves_the_log_free_and_its_scratch_gone() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), 0);
    append_one(&mut log, 0);
    log.close().unwrap();
    for round in 0..20 {
        let copy = Log::open_copy(dir.path()).unwrap();
        assert_eq!(copy.next_seq(), 1, "round {round}");
        drop(copy);
        assert!(lock_is_free(dir.path()), "round {round}: still locked");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(".read-"))
            .collect();
        assert_eq!(left, Vec::<String>::new(), "round {round}");
    }
}

/// Copies of every descriptor this process has open on the log's `db`
/// file in the data dir `dir` (sled's, which holds its lock, among them):
/// while a copy is open, the lock outlives sled's own threads.
fn copies_of_the_db_descriptors(dir: &Path) -> Vec<std::os::fd::OwnedFd> {
    let db = std::fs::canonicalize(dir.join("log/db")).unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let fd: i32 = entry.file_name().to_str()?.parse().ok()?;
            (std::fs::read_link(entry.path()).ok()? == db).then_some(fd)
        })
        .filter_map(|fd| {
            // SAFETY: borrowed only for the dup; the descriptor stays open
            // (it is sled's or the log's own while the log is open).
            let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            borrowed.try_clone_to_owned().ok()
        })
        .collect()
}

#[test]
fn a_lock_that_outlives_the_bound_never_hangs_a_drop_and_is_waited_for_once_more() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), 0);
    append_one(&mut log, 0);
    let copies = copies_of_the_db_descriptors(dir.path());
    assert!(!copies.is_empty());
    // The lock outlives sled: the drop gives up after its bound and goes on.
    drop(log);
    assert!(!lock_is_free(dir.path()));
    // An open in this process waits for it once more, then says it is
    // owned, naming this process: no hang either.
    match Log::open(dir.path()) {
        Err(LogError::Owned { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
        Err(error) => panic!("unexpected error: {error}"),
        Ok(_) => panic!("opened a log whose lock is held"),
    }
    // Let go: the log opens at once, in this process and in the next command.
    drop(copies);
    let log = open(dir.path(), 1);
    assert_eq!(log.next_seq(), 1);
    log.close().unwrap();
    verify_in_a_process(dir.path(), 1, 1);
}
