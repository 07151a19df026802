//! Private files and directories: the one place that knows how quotatrack
//! writes to a data dir. Files are 0600 and replaced atomically (a
//! temporary file renamed over the old one, so a reader sees the old file
//! or the new one, never a torn one, and a symlink in the way is replaced,
//! never followed); directories are 0700. Used by the status snapshot and
//! by the log, which both sit above this module. Files a short command
//! reads (the snapshot, the settings) are read by [`read_plain`], which
//! neither waits on a FIFO nor reads a device without end.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The bytes of the plain file at `path`, at most `max` of them. Opened
/// without waiting, so a FIFO in its place returns at once. Errors, by
/// kind: `NotFound` as the system gives it, `IsADirectory` for a
/// directory, `InvalidInput` for anything else that is not a plain file (a
/// FIFO, a device, a socket), `FileTooLarge` above `max` bytes; each
/// message says which, and the caller names `path`.
pub fn read_plain(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(io::Error::new(io::ErrorKind::IsADirectory, "is a directory"));
    }
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a plain file (a FIFO, a device or a socket)",
        ));
    }
    if meta.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("{} bytes, more than the {max} it may hold", meta.len()),
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // Bounded again: the file may grow while it is read.
    (&file).take(max).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Writes `bytes` to `path` through a 0600 temporary file, fsync and a
/// rename, then fsyncs the directory. Whatever is in the way at `path` (a
/// directory) is left as it is and the temporary file is removed; the
/// caller names `path` in its error.
pub fn write_private_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace_private(path, bytes, true)
}

/// [`write_private_atomically`], durable only when `durable`: without it
/// there is no fsync, so after a crash the file may be the old one or
/// empty, never another file's bytes.
pub fn replace_private(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("file");
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        if fs::symlink_metadata(path).is_ok_and(|found| found.is_dir()) {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory, in the way of a file: move it away",
            ));
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temporary)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(&temporary, path)?;
        if durable {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    written.inspect_err(|_| {
        let _ = fs::remove_file(&temporary);
    })
}

/// Creates `dir` 0700 (and, when `parents`, its missing parents 0700).
pub fn create_private_dir(dir: &Path, parents: bool) -> io::Result<()> {
    fs::DirBuilder::new().recursive(parents).mode(0o700).create(dir)
}

/// Sets `path` to `mode` unless it has it already.
pub fn set_mode(path: &Path, current: u32, mode: u32) -> io::Result<()> {
    if current & 0o777 == mode {
        return Ok(());
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// Takes `file`'s exclusive lock without waiting (the lock sled takes on
/// the log, and `statusline claude` on its spool): `Ok(false)` when another
/// holder has it. Released when the file closes.
pub fn try_lock(file: &File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor the caller keeps open for the call; it
    // touches no memory. (std's `File::try_lock` is newer than this
    // crate's minimum Rust.)
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let error = io::Error::last_os_error();
    if error.kind() == io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(error)
    }
}
