//! Giving back the space retention freed.
//!
//! sled never shrinks its files: a segment whose values were replaced or
//! removed is reused for later writes, never returned, and a node it stored
//! as a blob file is not always removed when the node is written again. So
//! a log whose bodies retention dropped keeps its size on disk (a 72 h
//! demo with bodies kept a day takes about three times the size of the
//! same demo without retention). [`vacuum`] copies what the log holds,
//! every tree key by key, into new files beside it, checks the copy against
//! the log, and exchanges the two directories in one `renameat2` call: at
//! every moment the data dir holds either the old log or the whole copy.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{DB_DIR, Log, LogError, damage, guard, secure_files};

/// The directory a vacuum builds its copy in, beside the log; a stale one
/// (a vacuum killed before its exchange) is removed by the next.
const BUILDING_PREFIX: &str = ".vacuum-";

/// What a vacuum did: the log's bytes on disk before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vacuumed {
    /// The log's bytes on disk before.
    pub before: u64,
    /// The log's bytes on disk after.
    pub after: u64,
}

/// Rewrites the log in `data_dir` into files that hold only what it holds
/// now (see the module). Refuses, like any open, a log another process
/// owns; on any failure before the exchange the log is left as it was and
/// the copy removed.
pub fn vacuum(data_dir: &Path) -> Result<Vacuumed, LogError> {
    let log = Log::open(data_dir)?;
    let before = damage::size_of(&data_dir.join(DB_DIR));
    vacuum_open(log, data_dir, before)
}

/// What the engine's clean close does once its retention dropped or
/// folded something: a [`vacuum`] when one is worth its time, that is when
/// the log's files take more than twice what it holds and 1 MB more, and
/// what it holds is at most [`AUTOMATIC_MOST`] bytes. `None` when not.
pub fn vacuum_if_worth(data_dir: &Path) -> Result<Option<Vacuumed>, LogError> {
    let log = Log::open(data_dir)?;
    let on_disk = damage::size_of(&data_dir.join(DB_DIR));
    let held: u64 = log.tree_bytes().iter().map(|(_, _, bytes)| bytes).sum();
    if held > AUTOMATIC_MOST || on_disk <= 2 * held + (1 << 20) {
        return Ok(None);
    }
    vacuum_open(log, data_dir, on_disk).map(Some)
}

/// The most a clean close copies on its own: about a second here (a log of
/// a million events holds 8.5 MB and is copied in about two). A larger log
/// is given back by `log compact`.
pub const AUTOMATIC_MOST: u64 = 4 << 20;

/// [`vacuum`] of the log `old`, open on `data_dir`, whose files take
/// `before` bytes.
fn vacuum_open(old: Log, data_dir: &Path, before: u64) -> Result<Vacuumed, LogError> {
    let log_dir = data_dir.join(DB_DIR);
    // Owned for the whole vacuum: no other process opens the old log
    // while it is copied and exchanged.
    old.flush()?;
    remove_stale(data_dir);
    let building = data_dir.join(format!("{BUILDING_PREFIX}{}", std::process::id()));
    let copied = copy(&old, &building);
    if let Err(error) = copied {
        let _ = fs::remove_dir_all(&building);
        return Err(error);
    }
    if let Err(error) = exchange(&building.join(DB_DIR), &log_dir, data_dir) {
        let _ = fs::remove_dir_all(&building);
        return Err(LogError::io(&log_dir)(error));
    }
    // The old files are now in `building`; sled lets go of them here.
    drop(old);
    let _ = fs::remove_dir_all(&building);
    secure_files(&log_dir)?;
    Ok(Vacuumed {
        before,
        after: damage::size_of(&log_dir),
    })
}

/// Copies every tree of `old` into a new log in the data dir `building`,
/// checks each copied tree against the log's ([`Digest`]), and closes it.
fn copy(old: &Log, building: &Path) -> Result<(), LogError> {
    // Small batches leave sled the fewest rewritten nodes behind (the
    // 72 h demo's copy: about 435 KB in batches of 16, 600 KB in batches
    // of 1,024 or more).
    const BATCH: u64 = 16;
    let new = Log::open(building)?;
    for name in old.db.tree_names() {
        // Under one guard: sled reading a damaged page panics in `next`.
        let (kept, copied) = guard(&old.dir, || {
            let (from, to) = (old.db.open_tree(&name)?, new.db.open_tree(&name)?);
            let mut batch = sled::Batch::default();
            let mut kept = Digest::default();
            for entry in from.iter() {
                let (key, value) = entry?;
                kept.add(&key, &value);
                batch.insert(key, value);
                if kept.entries % BATCH == 0 {
                    to.apply_batch(std::mem::take(&mut batch))?;
                }
            }
            to.apply_batch(batch)?;
            let mut copied = Digest::default();
            for entry in to.iter() {
                let (key, value) = entry?;
                copied.add(&key, &value);
            }
            Ok((kept.finish(), copied.finish()))
        })?;
        if kept != copied {
            return Err(LogError::Damaged {
                dir: old.dir.clone(),
                detail: "its copy does not read back as the log (the log is left as it was)".to_owned(),
            });
        }
    }
    new.close()
}

/// A tree's entries and a CRC-32 of every key and value in order, each
/// after its length.
#[derive(Default)]
struct Digest {
    entries: u64,
    sum: crc32fast::Hasher,
}

impl Digest {
    fn add(&mut self, key: &[u8], value: &[u8]) {
        for part in [key, value] {
            self.sum.update(&(part.len() as u64).to_be_bytes());
            self.sum.update(part);
        }
        self.entries += 1;
    }

    fn finish(self) -> (u64, u32) {
        (self.entries, self.sum.finalize())
    }
}

/// Exchanges the directories `a` and `b`, both in `parent`, in one step
/// (Linux's `renameat2` with `RENAME_EXCHANGE`), and makes it durable.
fn exchange(a: &Path, b: &Path, parent: &Path) -> std::io::Result<()> {
    let path = |path: &Path| {
        CString::new(path.as_os_str().as_bytes()).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    let (a, b) = (path(a)?, path(b)?);
    // SAFETY: both are valid NUL-terminated paths that outlive the call.
    let result = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if result != 0 {
        return Err(std::io::Error::last_os_error());
    }
    fs::File::open(parent)?.sync_all()
}

/// Removes the copies of vacuums killed before their exchange (the caller
/// owns the log, so none is in progress).
fn remove_stale(data_dir: &Path) {
    let Ok(entries) = fs::read_dir(data_dir) else {
        return;
    };
    let stale: Vec<PathBuf> = entries
        .map_while(Result::ok)
        .filter(|entry| entry.file_name().as_bytes().starts_with(BUILDING_PREFIX.as_bytes()))
        .map(|entry| entry.path())
        .collect();
    for path in stale {
        let _ = fs::remove_dir_all(path);
    }
}
