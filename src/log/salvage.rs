//! The salvage scanner: finds every intact event and checkpoint in the raw
//! files of a sled directory, without sled. Every stored value is a CRC-32
//! (4 bytes, big-endian) followed by the JSON, and every event's JSON
//! starts `{"v":1,"seq":`, so scanning each file for that prefix, reading
//! the 4 bytes before it as the checksum and one JSON value from it finds
//! every copy of every event that sled ever wrote and has not overwritten,
//! whatever state sled's own structures are in.
//!
//! The scan only reads, takes time linear in the files' size, and never
//! trusts a copy whose checksum fails (though it notes the sequence number
//! such a copy claims, so a loss can be named). sled keeps older versions
//! of its pages, so one event is often found several times; copies are
//! deduplicated by sequence number. Two intact copies that differ can only
//! come from `log compact` (which drops a fetch's body and keeps its
//! outcome) or from an append that was cut off before it was acknowledged;
//! the shorter copy is kept, which is the compacted one in the first case.
//!
//! Format 2 stores events in frames ([`super::frame`]): each starts with
//! `QTF\x02`, its length and a CRC-32, so intact frames are found the same
//! way. A keyframe is read alone; a delta is read once the scan has found
//! an intact copy of the keyframe it names (number and CRC-32 of its text).
//! Checkpoints are stored compressed behind `QTC\x01` with a CRC-32
//! ([`super::CHECKPOINT_MAGIC`]) and found the same way; sealed JSON ones
//! from older builds are still found by their prefix.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::{CRC_BYTES, Checkpoint, frame};
use crate::events::{self, Envelope};
use crate::store::Store;

/// The start of every stored event's JSON.
const EVENT_PREFIX: &[u8] = b"{\"v\":1,\"seq\":";
/// The start of every stored checkpoint's JSON.
const CHECKPOINT_PREFIX: &[u8] = b"{\"v\":1,\"store\":";
/// Files larger than this are not read whole; sled's files stay far below.
const MAX_FILE_BYTES: u64 = 4 << 30;

/// What the raw files hold.
#[derive(Debug, Default)]
pub struct Salvage {
    /// Every intact event by sequence number: its envelope and stored JSON.
    pub events: BTreeMap<u64, (Envelope, Vec<u8>)>,
    /// Sequence numbers claimed by copies whose checksum or JSON fails.
    pub damaged: BTreeSet<u64>,
    /// The intact checkpoint that folded the most events.
    pub checkpoint: Option<Store>,
    /// Files that could not be read, with why.
    pub unreadable: Vec<(PathBuf, String)>,
    /// Keyframes' texts by first number and CRC-32 of the text.
    keyframes: BTreeMap<(u64, u32), Vec<u8>>,
    /// Intact delta frames, read once every keyframe is known.
    deltas: Vec<(frame::Header, Vec<u8>)>,
}

/// Scans every regular file under `log_dir` (one level of subdirectories,
/// which is where sled keeps its blobs). A missing directory holds nothing.
pub fn scan(log_dir: &Path) -> Salvage {
    let mut salvage = Salvage::default();
    for path in files(log_dir, 2, &mut salvage.unreadable) {
        let bytes = match fs::metadata(&path) {
            Ok(meta) if meta.len() > MAX_FILE_BYTES => {
                salvage
                    .unreadable
                    .push((path, format!("larger than {MAX_FILE_BYTES} bytes")));
                continue;
            }
            Ok(_) => match fs::read(&path) {
                Ok(bytes) => bytes,
                Err(error) => {
                    salvage.unreadable.push((path, error.to_string()));
                    continue;
                }
            },
            Err(error) => {
                salvage.unreadable.push((path, error.to_string()));
                continue;
            }
        };
        scan_bytes(&bytes, &mut salvage);
    }
    salvage.finish();
    salvage
}

impl Salvage {
    /// Reads the deltas whose keyframe was found; a delta whose keyframe
    /// is nowhere counts as damaged.
    pub fn finish(&mut self) {
        for (header, compressed) in std::mem::take(&mut self.deltas) {
            let text = self
                .keyframes
                .get(&(header.base, header.base_crc))
                .and_then(|base| frame::text(&header, &compressed, Some(base)).ok());
            match text {
                Some(text) => self.frame_text(&header, &text),
                None => {
                    self.damaged.insert(header.first);
                }
            }
        }
    }

    /// Keeps the events of a frame's text.
    fn frame_text(&mut self, header: &frame::Header, text: &[u8]) {
        let Ok(lines) = frame::unpack(header, text) else {
            self.damaged.insert(header.first);
            return;
        };
        for (index, line) in lines.into_iter().enumerate() {
            let expected = header.first + index as u64;
            match Envelope::from_json(&line) {
                Ok(envelope) if envelope.seq == expected => {
                    let keep = self
                        .events
                        .get(&envelope.seq)
                        .is_none_or(|(_, kept)| line.len() < kept.len());
                    if keep {
                        self.events.insert(envelope.seq, (envelope, line));
                    }
                }
                _ => {
                    self.damaged.insert(expected);
                }
            }
        }
    }
}

/// Adds the frames in `bytes` to `salvage` (deltas wait for
/// [`Salvage::finish`]).
fn scan_frames(bytes: &[u8], salvage: &mut Salvage) {
    let mut from = 0;
    while let Some(found) = bytes.get(from..).and_then(|rest| {
        rest.windows(frame::MAGIC.len())
            .position(|window| window == frame::MAGIC)
    }) {
        let start = from + found;
        from = start + 1;
        match frame::parse(&bytes[start..]) {
            Ok((header, compressed, len)) => {
                from = start + len;
                if header.is_keyframe() {
                    match frame::text(&header, compressed, None) {
                        Ok(text) => {
                            salvage.frame_text(&header, &text);
                            salvage.keyframes.insert((header.first, crc32fast::hash(&text)), text);
                        }
                        Err(_) => {
                            salvage.damaged.insert(header.first);
                        }
                    }
                } else {
                    salvage.deltas.push((header, compressed.to_vec()));
                }
            }
            Err(_) => {
                // A damaged frame: the number it claims, when its header
                // is there to read.
                if let Some(first) = bytes.get(start + 12..start + 20)
                    && let Ok(first) = <[u8; 8]>::try_from(first)
                    && u64::from_be_bytes(first) < events::MAX_SEQ
                {
                    salvage.damaged.insert(u64::from_be_bytes(first));
                }
            }
        }
    }
}

/// Adds what `bytes` holds to `salvage` (call [`Salvage::finish`] once
/// every file is scanned).
pub fn scan_bytes(bytes: &[u8], salvage: &mut Salvage) {
    scan_frames(bytes, salvage);
    scan_checkpoints(bytes, salvage);
    let mut from = 0;
    while let Some(found) = next_brace(bytes, from) {
        from = found + 1;
        let rest = &bytes[found..];
        // An intact value is skipped whole: what it nests is not a copy.
        if rest.starts_with(EVENT_PREFIX) {
            if let Some(end) = event_at(bytes, found, salvage) {
                from = end;
            }
        } else if rest.starts_with(CHECKPOINT_PREFIX)
            && let Some(end) = checkpoint_at(bytes, found, salvage)
        {
            from = end;
        }
    }
}

/// The next `{` at or after `from`.
fn next_brace(bytes: &[u8], from: usize) -> Option<usize> {
    bytes.get(from..)?.iter().position(|b| *b == b'{').map(|at| at + from)
}

/// The JSON value starting at `start`, if its stored checksum holds.
fn sealed_json_at(bytes: &[u8], start: usize) -> Option<&[u8]> {
    let sum = bytes.get(start.checked_sub(CRC_BYTES)?..start)?;
    let mut values = serde_json::Deserializer::from_slice(&bytes[start..]).into_iter::<serde::de::IgnoredAny>();
    values.next()?.ok()?;
    let json = &bytes[start..start + values.byte_offset()];
    (sum == crc32fast::hash(json).to_be_bytes()).then_some(json)
}

/// Keeps the event at `start`; returns where it ends when it is intact.
fn event_at(bytes: &[u8], start: usize, salvage: &mut Salvage) -> Option<usize> {
    let decoded = sealed_json_at(bytes, start).and_then(|json| Some((Envelope::from_json(json).ok()?, json)));
    match decoded {
        Some((envelope, json)) => {
            let keep = salvage
                .events
                .get(&envelope.seq)
                .is_none_or(|(_, kept)| json.len() < kept.len());
            let end = start + json.len();
            if keep {
                salvage.events.insert(envelope.seq, (envelope, json.to_vec()));
            }
            Some(end)
        }
        None => {
            let digits = &bytes[start + EVENT_PREFIX.len()..];
            let end = digits.iter().position(|b| !b.is_ascii_digit()).unwrap_or(digits.len());
            if let Some(seq) = std::str::from_utf8(&digits[..end.min(20)])
                .ok()
                .and_then(|text| text.parse::<u64>().ok())
                && seq < events::MAX_SEQ
            {
                salvage.damaged.insert(seq);
            }
            None
        }
    }
}

/// Keeps the compressed checkpoints in `bytes` ([`super::CHECKPOINT_MAGIC`])
/// that are intact, the newest as [`checkpoint_at`] does.
fn scan_checkpoints(bytes: &[u8], salvage: &mut Salvage) {
    let magic = super::CHECKPOINT_MAGIC;
    let mut from = 0;
    while let Some(found) = bytes
        .get(from..)
        .and_then(|rest| rest.windows(magic.len()).position(|window| window == magic))
    {
        let start = from + found;
        from = start + 1;
        if let Some((json, len)) = super::unpack_checkpoint(&bytes[start..]) {
            from = start + len;
            keep_checkpoint(&json, salvage);
        }
    }
}

/// Keeps the checkpoint at `start` if it is the newest; returns where it
/// ends when it is intact.
fn checkpoint_at(bytes: &[u8], start: usize, salvage: &mut Salvage) -> Option<usize> {
    let json = sealed_json_at(bytes, start)?;
    let end = start + json.len();
    keep_checkpoint(json, salvage);
    Some(end)
}

/// Keeps the checkpoint `json` holds if it is readable and the newest.
fn keep_checkpoint(json: &[u8], salvage: &mut Salvage) {
    let Ok(checkpoint) = serde_json::from_slice::<Checkpoint>(json) else {
        return;
    };
    if checkpoint.v != events::VERSION {
        return;
    }
    let newer = match &salvage.checkpoint {
        None => true,
        Some(kept) => checkpoint.store.applied > kept.applied,
    };
    if newer {
        salvage.checkpoint = Some(checkpoint.store);
    }
}

/// Regular files under `dir`, `depth` levels deep, in name order.
fn files(dir: &Path, depth: u32, unreadable: &mut Vec<(PathBuf, String)>) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return found,
        Err(error) => {
            unreadable.push((dir.to_owned(), error.to_string()));
            return found;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|entry| Some(entry.ok()?.path())).collect();
    paths.sort();
    for path in paths {
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => found.push(path),
            Ok(meta) if meta.is_dir() && depth > 1 => found.extend(files(&path, depth - 1, unreadable)),
            _ => {}
        }
    }
    found
}
