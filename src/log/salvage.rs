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
//!
//! Memory is bounded by a constant and a small index, not by the log's
//! length nor by what sled lacks: the commands that merge the two
//! ([`super::damage`]) pass what sled reads intact ([`Covered`]) and the
//! first number they want, and the scan keeps no copy of those (a frame it
//! covers whole is not even decompressed). Of the events it keeps it
//! remembers only where their copies are ([`Index`]: file, offset and
//! length of each frame or sealed value, and of the keyframe a delta was
//! read with), and [`Index::events`] reads them again, in order, when
//! they are written. Identical copies (same place in the numbering, same
//! checksum and length) are read once. Files are read a window at a time
//! ([`WINDOW_BYTES`]), so a year's 40 MB file is never held whole.
//!
//! A fold ([`super::retention`]) removes the events before its base but
//! keeps their `settings_changed` in frames flagged [`frame::FLAG_KEPT`];
//! sled's raw files may still hold old copies of the folded events. Given
//! the base's last number, the scan keeps nothing numbered at or before it
//! but the events of kept frames (and notes no damaged copy there). The
//! base is a checkpoint that says it is one, so when sled cannot tell it
//! from the checkpoint (it cannot open the log), the raw files do
//! ([`find_base`]).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::{CRC_BYTES, frame};
use crate::events::{self, Envelope};
use crate::store::Store;

/// The start of every stored event's JSON.
const EVENT_PREFIX: &[u8] = b"{\"v\":1,\"seq\":";
/// The start of every stored checkpoint's JSON.
const CHECKPOINT_PREFIX: &[u8] = b"{\"v\":1,\"store\":";
/// Files larger than this are not scanned; sled's files stay far below.
const MAX_FILE_BYTES: u64 = 4 << 30;
/// Files are read this many bytes at a time (more when one item is larger).
const WINDOW_BYTES: usize = 4 << 20;

/// What the raw files hold.
#[derive(Debug, Default)]
pub struct Salvage {
    /// Where the intact events kept are, to read them again in order
    /// (empty from [`count_except`]).
    pub index: Index,
    /// The numbers of the intact events found (kept or not).
    pub intact: Covered,
    /// Sequence numbers claimed by copies whose checksum or JSON fails.
    pub damaged: BTreeSet<u64>,
    /// The intact checkpoint that folded the most events (bases aside).
    pub checkpoint: Option<Store>,
    /// The intact copy of a fold's base that folded the most events: the
    /// log's base, whose last event is the last number folded (a fold only
    /// moves it on). Only bases written marked as such are told apart
    /// (see `retention::BaseCheckpoint`); an older build's base counts as a
    /// checkpoint.
    pub base: Option<Store>,
    /// Files that could not be read, with why.
    pub unreadable: Vec<(PathBuf, String)>,
    /// Whether intact events are kept, or only their numbers.
    count_only: bool,
    /// Whether only checkpoints are looked for ([`find_base`]).
    checkpoints_only: bool,
    /// Where intact keyframes are, by first number.
    keyframes: BTreeMap<u64, Vec<Place>>,
    /// Intact delta frames holding events to keep, with where they are and
    /// their rank, read once every keyframe is known.
    deltas: Vec<(frame::Header, Place, u64)>,
    /// Copies read already: first number (or claimed number), checksum,
    /// length. An identical copy holds nothing new.
    seen: HashSet<(u64, u32, u32)>,
    /// Ranks given so far (see [`Source::rank`]).
    ranked: u64,
}

/// Which events to keep.
#[derive(Debug, Clone, Default)]
struct Wanted {
    /// Numbers sled reads intact.
    skip: Covered,
    /// The first number wanted.
    from: u64,
    /// The last number a fold removed (its base's): before it, only the
    /// events of kept frames.
    folded: Option<u64>,
}

impl Wanted {
    /// Whether the event numbered `seq` (in a kept frame when `kept`) is
    /// one to keep.
    fn wants(&self, seq: u64, kept: bool) -> bool {
        seq >= self.from && (kept || self.folded.is_none_or(|base| seq > base)) && !self.skip.contains(seq)
    }

    /// Whether any event of `header`'s frame is one to keep.
    fn wants_any(&self, header: &frame::Header) -> bool {
        let last = header.end().saturating_sub(1);
        let mut first = header.first.max(self.from);
        if header.flags & frame::FLAG_KEPT == 0
            && let Some(base) = self.folded
        {
            first = first.max(base.saturating_add(1));
        }
        first <= last && !self.skip.contains_all(first, last)
    }
}

/// Where a stored value is in the files scanned: file number, offset,
/// length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    file: u32,
    offset: u64,
    len: u32,
}

/// One intact copy holding events to keep: a frame or a sealed value.
#[derive(Debug, Clone, Copy)]
struct Source {
    /// The first and last numbers it holds.
    first: u64,
    last: u64,
    /// Where it is.
    place: Place,
    /// For a frame, whether it is a frame (else a sealed JSON value), and
    /// for a delta, where the keyframe it was read with is.
    frame: bool,
    keyframe: Option<Place>,
    /// The order in which the scan took it: of two intact copies of one
    /// event, the shorter is kept, and of two as long the first taken.
    rank: u64,
}

/// Where the events a scan kept are, to read again in order.
#[derive(Debug, Clone, Default)]
pub struct Index {
    /// The files scanned, in order.
    files: Vec<PathBuf>,
    /// The copies holding events to keep, by first number then rank.
    sources: Vec<Source>,
    /// Which of their events to keep.
    wanted: Wanted,
}

/// Sequence numbers as sorted, disjoint, inclusive ranges: what sled reads
/// intact, so the scan need not keep a copy, or what the scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Covered {
    /// First number of each range → its last.
    ranges: BTreeMap<u64, u64>,
}

impl Covered {
    /// Adds `seq`, in any order (O(log ranges)).
    pub fn insert(&mut self, seq: u64) {
        let before = self
            .ranges
            .range(..=seq)
            .next_back()
            .map(|(first, last)| (*first, *last));
        if before.is_some_and(|(_, last)| last >= seq) {
            return;
        }
        let after = seq
            .checked_add(1)
            .and_then(|next| self.ranges.get(&next).copied().map(|last| (next, last)));
        match (before.filter(|(_, last)| *last + 1 == seq), after) {
            (Some((first, _)), Some((next, last))) => {
                self.ranges.remove(&next);
                self.ranges.insert(first, last);
            }
            (Some((first, _)), None) => {
                self.ranges.insert(first, seq);
            }
            (None, Some((next, last))) => {
                self.ranges.remove(&next);
                self.ranges.insert(seq, last);
            }
            (None, None) => {
                self.ranges.insert(seq, seq);
            }
        }
    }

    /// Whether `seq` is in.
    pub fn contains(&self, seq: u64) -> bool {
        self.contains_all(seq, seq)
    }

    /// Whether every number of `first..=last` is in.
    pub fn contains_all(&self, first: u64, last: u64) -> bool {
        self.ranges
            .range(..=first)
            .next_back()
            .is_some_and(|(_, end)| last <= *end)
    }

    /// The ranges, in order.
    pub fn ranges(&self) -> impl DoubleEndedIterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().map(|(first, last)| (*first, *last))
    }

    /// The numbers from `from` on.
    pub fn from(&self, from: u64) -> Covered {
        let mut ranges: BTreeMap<u64, u64> = self.ranges.range(from..).map(|(a, b)| (*a, *b)).collect();
        if let Some((_, last)) = self.ranges.range(..from).next_back()
            && *last >= from
        {
            ranges.insert(from, *last);
        }
        Covered { ranges }
    }

    /// How many numbers are in.
    pub fn count(&self) -> u64 {
        self.ranges.iter().map(|(first, last)| last - first + 1).sum()
    }

    /// The first number in.
    pub fn first(&self) -> Option<u64> {
        self.ranges.keys().next().copied()
    }

    /// The last number in.
    pub fn last(&self) -> Option<u64> {
        self.ranges.values().next_back().copied()
    }
}

/// Scans every regular file under `log_dir` (one level of subdirectories,
/// which is where sled keeps its blobs), keeping every intact event. A
/// missing directory holds nothing.
pub fn scan(log_dir: &Path) -> Salvage {
    scan_except(log_dir, Covered::default(), 0, None)
}

/// As [`scan`], but keeping no event numbered below `from` or in `skip`
/// (nor noting damaged copies of those), and none at or before `folded`
/// (the last number a fold removed) but those of kept frames: the index
/// grows with the frames kept, never with their events' text.
pub fn scan_except(log_dir: &Path, skip: Covered, from: u64, folded: Option<u64>) -> Salvage {
    let mut salvage = Salvage {
        index: Index {
            wanted: Wanted { skip, from, folded },
            ..Index::default()
        },
        ..Salvage::default()
    };
    scan_files(log_dir, &mut salvage, WINDOW_BYTES);
    salvage
}

/// As [`scan_except`], but keeping only the numbers of the events found
/// ([`Salvage::intact`]), not where they are: what `log verify` needs, in
/// memory that follows the ranges, not the events.
pub fn count_except(log_dir: &Path, skip: Covered, from: u64, folded: Option<u64>) -> Salvage {
    let mut salvage = Salvage {
        index: Index {
            wanted: Wanted { skip, from, folded },
            ..Index::default()
        },
        count_only: true,
        ..Salvage::default()
    };
    scan_files(log_dir, &mut salvage, WINDOW_BYTES);
    salvage
}

/// The log's base as the raw files under `log_dir` hold it
/// ([`Salvage::base`]), looked for alone: what a scan of a log sled cannot
/// open needs first, to keep no old copy of a folded event
/// ([`scan_except`]'s `folded`).
pub fn find_base(log_dir: &Path) -> Option<Store> {
    let mut salvage = Salvage {
        count_only: true,
        checkpoints_only: true,
        ..Salvage::default()
    };
    scan_files(log_dir, &mut salvage, WINDOW_BYTES);
    salvage.base
}

/// Scans the files under `log_dir` into `salvage`, `window` bytes at a time.
fn scan_files(log_dir: &Path, salvage: &mut Salvage, window: usize) {
    for path in files(log_dir, 2, &mut salvage.unreadable) {
        let len = match fs::metadata(&path) {
            Ok(meta) if meta.len() > MAX_FILE_BYTES => {
                salvage
                    .unreadable
                    .push((path, format!("larger than {MAX_FILE_BYTES} bytes")));
                continue;
            }
            Ok(meta) => meta.len(),
            Err(error) => {
                salvage.unreadable.push((path, error.to_string()));
                continue;
            }
        };
        salvage.index.files.push(path.clone());
        let file = salvage.index.files.len() - 1;
        if let Err(error) = scan_file(&path, len, file, salvage, window) {
            salvage.unreadable.push((path, error.to_string()));
        }
    }
    salvage.finish();
}

/// Scans the file at `path` (`len` bytes, number `file` of the scan) a
/// window at a time. Each of the three scans (frames, checkpoints, JSON
/// values) goes on from where it stopped; one stops early at an item the
/// window's end cuts, and the next window starts there (twice as large
/// when it starts at the same place again), so every item is read whole,
/// exactly as in the whole file.
fn scan_file(path: &Path, len: u64, file: usize, salvage: &mut Salvage, window: usize) -> std::io::Result<()> {
    let mut handle = fs::File::open(path)?;
    // Where each scan goes on, in the file (frames, checkpoints, values).
    let mut cursors = [0_u64; 3];
    if salvage.checkpoints_only {
        // Sealed checkpoints of older builds are JSON values: those are
        // read, no event is.
        cursors[0] = len;
    }
    let mut size = window.max(1);
    let mut last_base = None;
    loop {
        let low = cursors.iter().copied().min().unwrap_or(len);
        if low >= len {
            return Ok(());
        }
        // The checksum in front of a sealed value is read too.
        let base = low.saturating_sub(CRC_BYTES as u64);
        size = if last_base == Some(base) {
            size.saturating_mul(2)
        } else {
            window.max(1)
        };
        last_base = Some(base);
        handle.seek(SeekFrom::Start(base))?;
        let mut bytes = Vec::new();
        (&mut handle)
            .take((size as u64).min(len - base))
            .read_to_end(&mut bytes)?;
        let end = base + bytes.len() as u64;
        let window = Window {
            bytes: &bytes,
            more: end < len && bytes.len() as u64 == (size as u64).min(len - base),
            left: len - base,
        };
        let at = |cursor: u64| (cursor.saturating_sub(base)) as usize;
        if cursors[0] < len {
            cursors[0] = base + scan_frames(&window, at(cursors[0]), file, base, salvage) as u64;
        }
        cursors[1] = base + scan_checkpoints(&window, at(cursors[1]), salvage) as u64;
        cursors[2] = base + scan_values(&window, at(cursors[2]), (file, base), salvage) as u64;
        if !window.more {
            return Ok(());
        }
    }
}

/// Part of a file being scanned.
struct Window<'a> {
    bytes: &'a [u8],
    /// Whether the file goes on past these bytes.
    more: bool,
    /// The bytes of the file from this window's start on.
    left: u64,
}

impl Window<'_> {
    /// Whether an item at `at` that needs `need` bytes is cut by the
    /// window's end but not by the file's: it is read in the next window.
    fn cuts(&self, at: usize, need: usize) -> bool {
        self.more && need > self.bytes.len() - at && (at as u64).saturating_add(need as u64) <= self.left
    }

    /// Where a scan that is done with this window goes on: past its end,
    /// less the last `keep` bytes when the file goes on (a magic that
    /// starts there is not whole yet).
    fn done(&self, from: usize, keep: usize) -> usize {
        let end = if self.more {
            self.bytes.len().saturating_sub(keep)
        } else {
            self.bytes.len()
        };
        from.max(end)
    }
}

impl Salvage {
    /// Reads the deltas whose keyframe was found, grouped by keyframe so
    /// one keyframe's text is held at a time (a delta whose keyframe is
    /// nowhere counts as damaged), then orders the index.
    fn finish(&mut self) {
        let mut deltas = std::mem::take(&mut self.deltas);
        deltas.sort_by_key(|(header, _, rank)| (header.base, header.base_crc, *rank));
        // The keyframe read last: its number and CRC-32, where it is and its text.
        let mut keyframe: Option<(KeyframeId, Option<KeyframeText>)> = None;
        let mut cache = None;
        for (header, place, rank) in deltas {
            let key = (header.base, header.base_crc);
            if keyframe.as_ref().is_none_or(|(kept, _)| *kept != key) {
                keyframe = Some((key, self.keyframe_text(header.base, header.base_crc)));
            }
            let base = keyframe.as_ref().and_then(|(_, found)| found.as_ref());
            let text = base.and_then(|(_, base_text)| {
                let bytes = self.index.read(place)?;
                let (again, compressed, _) = frame::parse(&bytes).ok()?;
                (again == header).then_some(())?;
                frame::text_with(&header, compressed, Some(base_text), Some(&mut cache)).ok()
            });
            match (text, base) {
                (Some(text), Some((at, _))) => {
                    let at = *at;
                    self.frame_text(&header, &text, place, Some(at), rank);
                }
                _ => self.note_damaged(header.first),
            }
        }
        self.keyframes.clear();
        self.seen = HashSet::new();
        self.index.sources.sort_by_key(|source| (source.first, source.rank));
    }

    /// The text of an intact keyframe numbered `first` whose CRC-32 is
    /// `crc`, read again from where the scan found it, and where.
    fn keyframe_text(&self, first: u64, crc: u32) -> Option<KeyframeText> {
        self.keyframes
            .get(&first)?
            .iter()
            .find_map(|place| Some((*place, self.index.keyframe_text(*place, crc)?)))
    }

    /// Notes a damaged copy claiming `seq`, when it is one to keep (a
    /// damaged frame does not say whether a fold kept it).
    fn note_damaged(&mut self, seq: u64) {
        if self.index.wanted.wants(seq, false) {
            self.damaged.insert(seq);
        }
    }

    /// Notes the intact events of a frame's text (at `place`, read with the
    /// keyframe at `keyframe`), and where they are when one is kept.
    fn frame_text(&mut self, header: &frame::Header, text: &[u8], place: Place, keyframe: Option<Place>, rank: u64) {
        let Ok(lines) = frame::unpack(header, text) else {
            self.note_damaged(header.first);
            return;
        };
        let kept = header.flags & frame::FLAG_KEPT != 0;
        let mut any = false;
        for (index, line) in lines.into_iter().enumerate() {
            let expected = header.first + index as u64;
            if !self.index.wanted.wants(expected, kept) {
                continue;
            }
            match Envelope::from_json(&line) {
                Ok(envelope) if envelope.seq == expected => {
                    self.intact.insert(expected);
                    any = true;
                }
                _ => {
                    self.damaged.insert(expected);
                }
            }
        }
        if any && !self.count_only {
            self.index.sources.push(Source {
                first: header.first,
                last: header.end().saturating_sub(1),
                place,
                frame: true,
                keyframe,
                rank,
            });
        }
    }

    /// The next rank of a copy taken as the scan finds it (deltas, read at
    /// the end, rank after every one of those).
    fn rank(&mut self) -> u64 {
        self.ranked += 1;
        self.ranked
    }
}

/// A keyframe as a delta names it: first number, CRC-32 of its text.
type KeyframeId = (u64, u32);
/// A keyframe found: where it is, its text.
type KeyframeText = (Place, Vec<u8>);

/// Deltas rank after every copy the scan takes as it finds it.
const DELTA_RANKS: u64 = 1 << 63;

impl Index {
    /// The bytes at `place`, when they are there.
    fn read(&self, place: Place) -> Option<Vec<u8>> {
        read_at(self.files.get(place.file as usize)?, place.offset, place.len as usize)
    }

    /// The text of the keyframe at `place`, when its CRC-32 is `crc`.
    fn keyframe_text(&self, place: Place, crc: u32) -> Option<Vec<u8>> {
        let bytes = self.read(place)?;
        let (header, compressed, _) = frame::parse(&bytes).ok()?;
        let text = frame::text(&header, compressed, None).ok()?;
        (header.is_keyframe() && crc32fast::hash(&text) == crc).then_some(text)
    }

    /// Every event the scan kept from `from` on, in order, read again from
    /// the files: at most the events of the copies that overlap the one
    /// being read are held at once.
    pub fn events(&self, from: u64) -> RawEvents<'_> {
        RawEvents {
            index: self,
            from,
            next: 0,
            pending: BTreeMap::new(),
            keyframes: Vec::new(),
        }
    }
}

/// Keyframes [`RawEvents`] keeps read (the deltas of one region name a
/// few at most: the copies of its generations).
const KEYFRAMES_HELD: usize = 4;

/// The events an [`Index`] points at, in order ([`Index::events`]).
pub struct RawEvents<'a> {
    index: &'a Index,
    from: u64,
    /// The next source to read.
    next: usize,
    /// The best copy read so far of each event not yet given: its rank,
    /// envelope and JSON.
    pending: BTreeMap<u64, (u64, Envelope, Vec<u8>)>,
    /// Keyframes read, newest last: where, text, a decompressor loaded
    /// with it.
    keyframes: Vec<(Place, Vec<u8>, Option<frame::Decompressor>)>,
}

impl Iterator for RawEvents<'_> {
    type Item = (Envelope, Vec<u8>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let due = self.pending.keys().next().copied();
            match self.index.sources.get(self.next).copied() {
                // Every copy that may hold the next event is read first.
                Some(source) if due.is_none_or(|seq| source.first <= seq) => {
                    self.next += 1;
                    if source.last >= self.from {
                        self.read(&source);
                    }
                }
                _ => {
                    let (_, (_, envelope, json)) = self.pending.pop_first()?;
                    return Some((envelope, json));
                }
            }
        }
    }
}

impl RawEvents<'_> {
    /// Reads the events of `source` into `pending`.
    fn read(&mut self, source: &Source) {
        let Some(bytes) = self.index.read(source.place) else {
            return;
        };
        if !source.frame {
            self.offer(source.first, source.rank, false, bytes);
            return;
        }
        let Ok((header, compressed, _)) = frame::parse(&bytes) else {
            return;
        };
        let text = if header.is_keyframe() {
            frame::text(&header, compressed, None)
        } else {
            let Some(at) = source.keyframe else {
                return;
            };
            let held = match self.keyframes.iter().position(|(place, _, _)| *place == at) {
                Some(held) => held,
                None => {
                    let Some(text) = self.index.keyframe_text(at, header.base_crc) else {
                        return;
                    };
                    if self.keyframes.len() == KEYFRAMES_HELD {
                        self.keyframes.remove(0);
                    }
                    self.keyframes.push((at, text, None));
                    self.keyframes.len() - 1
                }
            };
            let (_, base_text, decompressor) = &mut self.keyframes[held];
            frame::text_with(&header, compressed, Some(base_text), Some(decompressor))
        };
        let Ok(lines) = text.and_then(|text| frame::unpack(&header, &text)) else {
            return;
        };
        let kept = header.flags & frame::FLAG_KEPT != 0;
        for (index, line) in lines.into_iter().enumerate() {
            self.offer(header.first + index as u64, source.rank, kept, line);
        }
    }

    /// Keeps `json` as event `seq` when it is one to keep, intact, and
    /// shorter than the copy kept (or as long and ranked first).
    fn offer(&mut self, seq: u64, rank: u64, kept: bool, json: Vec<u8>) {
        if seq < self.from || !self.index.wanted.wants(seq, kept) {
            return;
        }
        if let Some((held_rank, _, held)) = self.pending.get(&seq)
            && (held.len(), *held_rank) <= (json.len(), rank)
        {
            return;
        }
        if let Ok(envelope) = Envelope::from_json(&json)
            && envelope.seq == seq
        {
            self.pending.insert(seq, (rank, envelope, json));
        }
    }
}

/// Adds the frames in `window` from `from` on (file number `file` of the
/// scan, the window at `base` in it) to `salvage` (deltas wait for
/// [`Salvage::finish`]). Returns where to go on.
fn scan_frames(window: &Window, mut from: usize, file: usize, base: u64, salvage: &mut Salvage) -> usize {
    let bytes = window.bytes;
    while let Some(found) = bytes
        .get(from..)
        .and_then(|rest| rest.windows(frame::MAGIC.len()).position(|magic| magic == frame::MAGIC))
    {
        let start = from + found;
        match frame::parse(&bytes[start..]) {
            Ok((header, compressed, len)) => {
                from = start + len;
                let place = Place {
                    file: file as u32,
                    offset: base + start as u64,
                    len: len as u32,
                };
                let wanted = salvage.index.wanted.wants_any(&header);
                // An identical copy of a frame read already holds nothing new.
                let crc =
                    u32::from_be_bytes([bytes[start + 8], bytes[start + 9], bytes[start + 10], bytes[start + 11]]);
                if wanted && !salvage.seen.insert((header.first, crc, place.len)) {
                    continue;
                }
                if header.is_keyframe() {
                    salvage.keyframes.entry(header.first).or_default().push(place);
                }
                if !wanted {
                    // sled reads every event it holds: nothing to decompress.
                    continue;
                }
                if header.is_keyframe() {
                    match frame::text(&header, compressed, None) {
                        Ok(text) => {
                            let rank = salvage.rank();
                            salvage.frame_text(&header, &text, place, None, rank);
                        }
                        Err(_) => salvage.note_damaged(header.first),
                    }
                } else {
                    let rank = DELTA_RANKS + salvage.deltas.len() as u64;
                    salvage.deltas.push((header, place, rank));
                }
            }
            Err(_) => {
                if window.cuts(start, frame_needs(&bytes[start..])) {
                    return start;
                }
                from = start + 1;
                // A damaged frame: the number it claims, when its header
                // is there to read.
                if let Some(first) = bytes.get(start + 12..start + 20)
                    && let Ok(first) = <[u8; 8]>::try_from(first)
                    && u64::from_be_bytes(first) < events::MAX_SEQ
                {
                    salvage.note_damaged(u64::from_be_bytes(first));
                }
            }
        }
    }
    window.done(from, frame::MAGIC.len() - 1)
}

/// The bytes the frame at the start of `rest` needs, as its header says.
fn frame_needs(rest: &[u8]) -> usize {
    let len = rest
        .get(4..8)
        .and_then(|len| <[u8; 4]>::try_from(len).ok())
        .map_or(0, |len| u32::from_be_bytes(len) as usize);
    20_usize.max(12 + len)
}

/// Adds the sealed JSON values (events and checkpoints) in `window` from
/// `from` on to `salvage`. Returns where to go on.
fn scan_values(window: &Window, mut from: usize, at: (usize, u64), salvage: &mut Salvage) -> usize {
    let bytes = window.bytes;
    while let Some(found) = next_brace(bytes, from) {
        let rest = &bytes[found..];
        if window.more && rest.len() < EVENT_PREFIX.len().max(CHECKPOINT_PREFIX.len()) {
            return found;
        }
        from = found + 1;
        // An intact value is skipped whole: what it nests is not a copy.
        let step = if rest.starts_with(EVENT_PREFIX) && !salvage.checkpoints_only {
            event_at(window, found, at, salvage)
        } else if rest.starts_with(CHECKPOINT_PREFIX) {
            checkpoint_at(window, found, salvage)
        } else {
            Step::Broken
        };
        match step {
            Step::Intact(end) => from = end,
            Step::Broken => {}
            Step::Cut => return found,
        }
    }
    window.done(from, 0)
}

/// What reading one value gave.
enum Step<T> {
    /// It is intact (and ends here).
    Intact(T),
    /// It is not.
    Broken,
    /// The window cuts it: read it in the next.
    Cut,
}

/// `len` bytes of the file at `path` from `offset`, if they are there.
fn read_at(path: &Path, offset: u64, len: usize) -> Option<Vec<u8>> {
    let mut file = fs::File::open(path).ok()?;
    file.seek(SeekFrom::Start(offset)).ok()?;
    let mut bytes = Vec::new();
    file.take(len as u64).read_to_end(&mut bytes).ok()?;
    (bytes.len() == len).then_some(bytes)
}

/// The next `{` at or after `from`.
fn next_brace(bytes: &[u8], from: usize) -> Option<usize> {
    bytes.get(from..)?.iter().position(|b| *b == b'{').map(|at| at + from)
}

/// The JSON value starting at `start`, if its stored checksum holds.
fn sealed_json_at<'a>(window: &Window<'a>, start: usize) -> Step<&'a [u8]> {
    let bytes = window.bytes;
    let Some(sum) = start.checked_sub(CRC_BYTES).and_then(|from| bytes.get(from..start)) else {
        return Step::Broken;
    };
    let mut values = serde_json::Deserializer::from_slice(&bytes[start..]).into_iter::<serde::de::IgnoredAny>();
    match values.next() {
        Some(Ok(_)) => {}
        Some(Err(error)) if error.is_eof() && window.more => return Step::Cut,
        _ => return Step::Broken,
    }
    let json = &bytes[start..start + values.byte_offset()];
    if sum == crc32fast::hash(json).to_be_bytes() {
        Step::Intact(json)
    } else {
        Step::Broken
    }
}

/// Notes the event at `start` (in file number `file`, the window at
/// `base` in it), and where it is when it is kept; where it ends when it
/// is intact.
fn event_at(window: &Window, start: usize, (file, base): (usize, u64), salvage: &mut Salvage) -> Step<usize> {
    let bytes = window.bytes;
    let digits = &bytes[start + EVENT_PREFIX.len()..];
    let end = digits.iter().position(|b| !b.is_ascii_digit()).unwrap_or(digits.len());
    if end == digits.len() && window.more {
        return Step::Cut;
    }
    let claimed = std::str::from_utf8(&digits[..end.min(20)])
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
        .filter(|seq| *seq < events::MAX_SEQ);
    let json = match sealed_json_at(window, start) {
        Step::Intact(json) => Some(json),
        Step::Broken => None,
        Step::Cut => return Step::Cut,
    };
    if let Some(seq) = claimed
        && !salvage.index.wanted.wants(seq, false)
    {
        // Not to keep: only where it ends, so what it nests is skipped.
        return json.map_or(Step::Broken, |json| Step::Intact(start + json.len()));
    }
    if let (Some(seq), Some(json)) = (claimed, json) {
        // An identical copy read already holds nothing new.
        let crc = crc32fast::hash(json);
        if !salvage.seen.insert((seq, crc, json.len() as u32)) {
            return Step::Intact(start + json.len());
        }
    }
    match json.and_then(|json| Some((Envelope::from_json(json).ok()?, json))) {
        Some((envelope, json)) => {
            let wanted = salvage.index.wanted.wants(envelope.seq, false);
            if wanted {
                salvage.intact.insert(envelope.seq);
            }
            if wanted && !salvage.count_only {
                let rank = salvage.rank();
                salvage.index.sources.push(Source {
                    first: envelope.seq,
                    last: envelope.seq,
                    place: Place {
                        file: file as u32,
                        offset: base + start as u64,
                        len: json.len() as u32,
                    },
                    frame: false,
                    keyframe: None,
                    rank,
                });
            }
            Step::Intact(start + json.len())
        }
        None => {
            if let Some(seq) = claimed {
                salvage.note_damaged(seq);
            }
            Step::Broken
        }
    }
}

/// Keeps the compressed checkpoints in `window` from `from` on
/// ([`super::CHECKPOINT_MAGIC`]) that are intact, the newest as
/// [`checkpoint_at`] does. Returns where to go on.
fn scan_checkpoints(window: &Window, mut from: usize, salvage: &mut Salvage) -> usize {
    let bytes = window.bytes;
    let magic = super::CHECKPOINT_MAGIC;
    while let Some(found) = bytes
        .get(from..)
        .and_then(|rest| rest.windows(magic.len()).position(|candidate| candidate == magic))
    {
        let start = from + found;
        from = start + 1;
        match super::unpack_checkpoint(&bytes[start..]) {
            Some((json, len)) => {
                from = start + len;
                keep_checkpoint(&json, salvage);
            }
            None => {
                // Magic, CRC-32, compressed length, JSON length: 16 bytes.
                let compressed = bytes
                    .get(start + 8..start + 12)
                    .and_then(|len| <[u8; 4]>::try_from(len).ok())
                    .map_or(0, |len| u32::from_be_bytes(len) as usize);
                if window.cuts(start, 16 + compressed) {
                    return start;
                }
            }
        }
    }
    window.done(from, magic.len() - 1)
}

/// Keeps the checkpoint at `start` if it is the newest; where it ends
/// when it is intact.
fn checkpoint_at(window: &Window, start: usize, salvage: &mut Salvage) -> Step<usize> {
    match sealed_json_at(window, start) {
        Step::Intact(json) => {
            keep_checkpoint(json, salvage);
            Step::Intact(start + json.len())
        }
        Step::Broken => Step::Broken,
        Step::Cut => Step::Cut,
    }
}

/// A stored checkpoint as the scan reads it: [`super::Checkpoint`], and whether
/// it says it is a fold's base.
#[derive(serde::Deserialize)]
struct Found {
    v: u32,
    store: Store,
    #[serde(default)]
    base: bool,
}

/// Keeps the checkpoint `json` holds if it is readable and the newest of
/// its kind (a base or a checkpoint).
fn keep_checkpoint(json: &[u8], salvage: &mut Salvage) {
    let Ok(found) = serde_json::from_slice::<Found>(json) else {
        return;
    };
    if found.v != events::VERSION {
        return;
    }
    let kept = if found.base {
        &mut salvage.base
    } else {
        &mut salvage.checkpoint
    };
    if kept.as_ref().is_none_or(|kept| found.store.applied > kept.applied) {
        *kept = Some(found.store);
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

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::events::{Event, Stream};
    use crate::journal::Journal;
    use crate::providers::ProviderId;

    /// A closed log of `n` events (frames and checkpoints), plus a file of
    /// format-1 sealed events numbered from 1000, one of them altered.
    fn log_dir(n: u64) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path()).unwrap().checkpoint_every(50);
        for index in 0..n {
            let at = Timestamp::from_second(1_795_000_000 + index as i64).unwrap();
            let provider = ProviderId::Codex;
            journal
                .record([(at, Stream::Tracker(provider), Event::FetchStarted { provider })])
                .unwrap();
        }
        journal.close().unwrap();
        let mut sealed = b"not an event {\"v\":1,\"seq\":".to_vec();
        for seq in 1000..1020 {
            let json = format!(
                "{{\"v\":1,\"seq\":{seq},\"at\":\"2026-11-20T09:03:00Z\",\"stream\":\"engine\",\"type\":\"clock_ticked\"}}"
            );
            let mut sum = crc32fast::hash(json.as_bytes()).to_be_bytes();
            if seq == 1007 {
                sum[0] ^= 1;
            }
            sealed.extend_from_slice(&sum);
            sealed.extend_from_slice(json.as_bytes());
            sealed.extend_from_slice(b" {{ junk ");
        }
        fs::write(dir.path().join("log/sealed"), sealed).unwrap();
        dir
    }

    /// What a scan found, to compare: events, damaged numbers, the
    /// checkpoint's last event, unreadable files.
    type Found = (Vec<(u64, Vec<u8>)>, Vec<u64>, Option<Option<u64>>, usize);

    /// The events a scan kept, read again.
    fn kept(salvage: &Salvage) -> BTreeMap<u64, Vec<u8>> {
        salvage
            .index
            .events(0)
            .map(|(envelope, json)| (envelope.seq, json))
            .collect()
    }

    fn found(salvage: &Salvage) -> Found {
        (
            kept(salvage).into_iter().collect(),
            salvage.damaged.iter().copied().collect(),
            salvage.checkpoint.as_ref().map(|store| store.applied),
            salvage.unreadable.len(),
        )
    }

    #[test]
    fn a_scan_a_window_at_a_time_finds_what_a_whole_file_scan_finds() {
        let dir = log_dir(300);
        let log = dir.path().join("log");
        // Damage across sled's file.
        let db = log.join("db");
        let mut bytes = fs::read(&db).unwrap();
        for at in (100..bytes.len()).step_by(997) {
            bytes[at] ^= 0x20;
        }
        fs::write(&db, &bytes).unwrap();
        let mut whole = Salvage::default();
        scan_files(&log, &mut whole, usize::MAX);
        let (events, damaged, checkpoint, _) = found(&whole);
        assert!(
            events.len() > 250 && events.iter().any(|(seq, _)| *seq == 1000),
            "{}",
            events.len()
        );
        assert!(damaged.contains(&1007), "{damaged:?}");
        assert!(checkpoint.is_some());
        for window in [16, 61, 1_000, 4_096] {
            let mut windowed = Salvage::default();
            scan_files(&log, &mut windowed, window);
            // Compared without printing both (they are long).
            assert!(
                found(&windowed) == found(&whole),
                "window {window}: not what the whole file gave"
            );
        }
    }

    #[test]
    fn a_scan_keeps_only_the_events_sled_lacks() {
        let dir = log_dir(300);
        let log = dir.path().join("log");
        let all = scan(&log);
        let mut covered = Covered::default();
        for seq in (0..300).chain(1000..1020) {
            if !(100..110).contains(&seq) {
                covered.insert(seq);
            }
        }
        assert_eq!(
            covered.ranges().collect::<Vec<_>>(),
            [(0, 99), (110, 299), (1000, 1019)]
        );
        let lacking = scan_except(&log, covered, 0, None);
        let seqs: Vec<u64> = kept(&lacking).keys().copied().collect();
        assert_eq!(seqs, (100..110).collect::<Vec<_>>());
        assert_eq!(kept(&lacking)[&105], kept(&all)[&105]);
        assert!(lacking.damaged.is_empty(), "{:?}", lacking.damaged);
        let counted = count_except(&log, lacking.index.wanted.skip.clone(), 0, None);
        assert!(kept(&counted).is_empty());
        assert_eq!(counted.intact.ranges().collect::<Vec<_>>(), [(100, 109)]);
        let tail = scan_except(&log, Covered::default(), 295, None);
        let seqs: Vec<u64> = kept(&tail).keys().copied().collect();
        assert_eq!(
            seqs,
            (295..300)
                .chain((1000..1020).filter(|seq| *seq != 1007))
                .collect::<Vec<_>>()
        );
        assert_eq!(tail.damaged.iter().copied().collect::<Vec<_>>(), vec![1007]);
    }

    #[test]
    fn a_base_is_told_from_a_checkpoint_by_what_it_says() {
        let json = |applied: u64, base: Option<bool>| {
            let store = Store {
                applied: Some(applied),
                ..Store::default()
            };
            let mut value = serde_json::json!({"v": events::VERSION, "store": store});
            if let Some(base) = base {
                value["base"] = base.into();
            }
            serde_json::to_vec(&value).unwrap()
        };
        let mut salvage = Salvage::default();
        // The checkpoint (or an older build's base, alike), an older
        // copy of the base, the base, a checkpoint saying it is none.
        for (applied, base) in [(900, None), (200, Some(true)), (300, Some(true)), (800, Some(false))] {
            keep_checkpoint(&json(applied, base), &mut salvage);
        }
        let applied = |store: &Option<Store>| store.as_ref().and_then(|store| store.applied);
        assert_eq!(applied(&salvage.checkpoint), Some(900));
        assert_eq!(applied(&salvage.base), Some(300));
    }

    #[test]
    fn covered_numbers_join_into_ranges_in_any_order() {
        let mut covered = Covered::default();
        for seq in [5, 6, 7, 1, 3, 2, 9, 8, 20] {
            covered.insert(seq);
        }
        assert_eq!(covered.ranges().collect::<Vec<_>>(), [(1, 3), (5, 9), (20, 20)]);
        covered.insert(4);
        assert_eq!(covered.ranges().collect::<Vec<_>>(), [(1, 9), (20, 20)]);
        assert_eq!(covered.from(7).ranges().collect::<Vec<_>>(), [(7, 9), (20, 20)]);
        assert!(covered.contains_all(2, 8) && !covered.contains_all(8, 20) && !covered.contains(0));
        assert_eq!(
            (covered.count(), covered.first(), covered.last()),
            (10, Some(1), Some(20))
        );
    }
}
