//! The readings record: each successful fetch's window values (time,
//! provider, window id, used ratio, reset time), kept apart from the events
//! in compact blocks so that `history` reads a year in well under a second
//! and folding old events into the base loses none of them.
//!
//! A *block* covers a run of sequence numbers `first..end` and holds the
//! readings of the fetches in it, series by series (one provider's window):
//! clock readings as deltas, used ratios as the XOR of their bits with the
//! previous one, reset times as deltas, then zstd. A year of the demo
//! workload takes a few bytes per reading. Blocks live in their own sled
//! tree under the big-endian `first`; the record is derived from the
//! events, so it is written lazily by retention ([`Log::index_readings`])
//! once [`BLOCK_EVENTS`] events wait, gathered over several steps of at
//! most [`INDEX_STEP_EVENTS`] events each (kept in memory meanwhile), and
//! always whole before events are folded away. What it does not cover yet is read from the events themselves.
//!
//! Every block starts with [`MAGIC`] and a CRC-32 of the rest; a block that
//! fails it is skipped by readers (and its events, while still in the log,
//! are read from there instead).

use jiff::Timestamp;

use super::{Log, LogError, guard, key_seq};
use crate::events::{Envelope, Event, Outcome};
use crate::providers::ProviderId;

/// The sled tree of blocks.
pub(crate) const TREE: &str = "readings";
/// The first bytes of every block.
const MAGIC: &[u8; 4] = b"QTR\x01";
/// Magic, CRC-32, first, end, first and last clock reading, text length.
const HEADER: usize = 4 + 4 + 8 + 8 + 8 + 8 + 4;
/// A block is written once this many events wait (about two hours of the
/// demo workload: a few thousand readings, compressed together).
pub const BLOCK_EVENTS: u64 = 2_048;
/// The most events one retention step reads for the record (a block is
/// gathered over several steps, so a step stays short).
pub const INDEX_STEP_EVENTS: u64 = 256;
/// The most text one block may hold once decompressed.
const MAX_TEXT: usize = 64 << 20;
/// The zstd level of blocks.
const LEVEL: i32 = 3;

/// One window's value as a fetch read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The provider fetched.
    pub provider: ProviderId,
    /// The window id.
    pub window: String,
    /// When the fetch completed (the event's clock reading).
    pub at: Timestamp,
    /// The used ratio the provider gave.
    pub used_ratio: f64,
    /// The reset time the provider gave, when it gave a readable one.
    pub resets_at: Option<Timestamp>,
}

/// The readings one event carries: the windows that have a used ratio of
/// a successful fetch (at the event's time) or of a reading another tool
/// reported (at the time it was read).
pub fn of(envelope: &Envelope) -> impl Iterator<Item = Reading> + '_ {
    let windows = match &envelope.payload {
        Event::FetchCompleted {
            provider,
            outcome: Outcome::Usage { windows, .. },
            ..
        } => Some((*provider, envelope.at, windows)),
        Event::ReadingReported {
            provider,
            read_at,
            windows,
            ..
        } => Some((*provider, *read_at, windows)),
        _ => None,
    };
    windows.into_iter().flat_map(move |(provider, at, windows)| {
        windows.iter().filter_map(move |window| {
            Some(Reading {
                provider,
                window: window.id.clone(),
                at,
                used_ratio: window.used_ratio?,
                resets_at: window.resets_at.as_deref().and_then(|text| text.parse().ok()),
            })
        })
    })
}

/// A block's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    first: u64,
    end: u64,
    first_at: i64,
    last_at: i64,
    text_len: u32,
}

/// The readings of events `first..end`, as a stored block.
fn encode(first: u64, end: u64, readings: &[Reading]) -> Result<Vec<u8>, String> {
    let mut series: std::collections::BTreeMap<(ProviderId, &str), Vec<&Reading>> = Default::default();
    for reading in readings {
        series
            .entry((reading.provider, reading.window.as_str()))
            .or_default()
            .push(reading);
    }
    let mut text = Vec::new();
    for ((provider, window), readings) in &series {
        put_str(&mut text, provider.as_str());
        put_str(&mut text, window);
        put_varint(&mut text, readings.len() as u64);
        let mut previous = (0i128, 0u64, 0i128);
        for reading in readings {
            let at = reading.at.as_nanosecond();
            put_signed(&mut text, at - previous.0);
            let bits = reading.used_ratio.to_bits();
            text.extend_from_slice(&(bits ^ previous.1).to_le_bytes());
            match reading.resets_at {
                Some(resets) => {
                    let resets = resets.as_nanosecond();
                    text.push(1);
                    put_signed(&mut text, resets - previous.2);
                    previous.2 = resets;
                }
                None => text.push(0),
            }
            previous.0 = at;
            previous.1 = bits;
        }
    }
    let seconds = readings.iter().map(|reading| reading.at.as_second());
    let first_at = seconds.clone().min().unwrap_or(0);
    let last_at = seconds.max().unwrap_or(0);
    let compressed = zstd::bulk::compress(&text, LEVEL).map_err(|error| format!("cannot compress: {error}"))?;
    let mut rest = Vec::with_capacity(HEADER + compressed.len());
    rest.extend_from_slice(&first.to_be_bytes());
    rest.extend_from_slice(&end.to_be_bytes());
    rest.extend_from_slice(&first_at.to_be_bytes());
    rest.extend_from_slice(&last_at.to_be_bytes());
    rest.extend_from_slice(&(text.len() as u32).to_be_bytes());
    rest.extend_from_slice(&compressed);
    let mut value = Vec::with_capacity(8 + rest.len());
    value.extend_from_slice(MAGIC);
    value.extend_from_slice(&crc32fast::hash(&rest).to_be_bytes());
    value.extend_from_slice(&rest);
    Ok(value)
}

/// A block's header and compressed text, when its checksum holds.
fn parse(value: &[u8]) -> Result<(Header, &[u8]), String> {
    if value.len() < HEADER || !value.starts_with(MAGIC) {
        return Err(format!("a readings block of {} bytes is too short", value.len()));
    }
    let rest = &value[8..];
    if u32::from_be_bytes(value[4..8].try_into().unwrap_or_default()) != crc32fast::hash(rest) {
        return Err("a readings block fails its checksum".to_owned());
    }
    let u64_at = |at: usize| u64::from_be_bytes(rest[at..at + 8].try_into().unwrap_or_default());
    let header = Header {
        first: u64_at(0),
        end: u64_at(8),
        first_at: u64_at(16) as i64,
        last_at: u64_at(24) as i64,
        text_len: u32::from_be_bytes(rest[32..36].try_into().unwrap_or_default()),
    };
    if header.end <= header.first || header.text_len as usize > MAX_TEXT {
        return Err("a readings block with an impossible header".to_owned());
    }
    Ok((header, &rest[36..]))
}

/// The readings of a block, series by series, each in time order (one
/// `Reading` per series, changed in place: no allocation per reading).
fn decode(header: &Header, compressed: &[u8], mut each: impl FnMut(&Reading)) -> Result<(), String> {
    let text = zstd::bulk::decompress(compressed, header.text_len as usize)
        .map_err(|error| format!("cannot decompress a readings block: {error}"))?;
    let bad = || "a readings block is cut short".to_owned();
    let mut at_byte = 0;
    let text = text.as_slice();
    while at_byte < text.len() {
        let provider: ProviderId = get_str(text, &mut at_byte)
            .ok_or_else(bad)?
            .parse()
            .map_err(|_| "a readings block names an unknown provider".to_owned())?;
        let window = get_str(text, &mut at_byte).ok_or_else(bad)?.to_owned();
        let count = get_varint(text, &mut at_byte).ok_or_else(bad)?;
        let mut previous = (0i128, 0u64, 0i128);
        let mut reading = Reading {
            provider,
            window,
            at: Timestamp::UNIX_EPOCH,
            used_ratio: 0.0,
            resets_at: None,
        };
        for _ in 0..count {
            let at = previous.0 + get_signed(text, &mut at_byte).ok_or_else(bad)?;
            let xor = text.get(at_byte..at_byte + 8).ok_or_else(bad)?;
            at_byte += 8;
            let bits = u64::from_le_bytes(xor.try_into().unwrap_or_default()) ^ previous.1;
            let flag = *text.get(at_byte).ok_or_else(bad)?;
            at_byte += 1;
            let resets_at = if flag == 1 {
                let resets = previous.2 + get_signed(text, &mut at_byte).ok_or_else(bad)?;
                previous.2 = resets;
                Some(Timestamp::from_nanosecond(resets).map_err(|_| bad())?)
            } else {
                None
            };
            previous.0 = at;
            previous.1 = bits;
            reading.at = Timestamp::from_nanosecond(at).map_err(|_| bad())?;
            reading.used_ratio = f64::from_bits(bits);
            reading.resets_at = resets_at;
            each(&reading);
        }
    }
    Ok(())
}

/// The standard base64 alphabet, for blocks in an export.
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `bytes` as standard, padded base64.
pub(crate) fn to_base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                BASE64[((n >> (18 - 6 * i)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// Standard, padded base64 back to bytes; `None` for anything else.
pub(crate) fn from_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if text.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for (index, chunk) in text.chunks(4).enumerate() {
        let last = index + 1 == text.len() / 4;
        let pad = chunk.iter().rev().take_while(|c| **c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for c in &chunk[..4 - pad] {
            let value = BASE64.iter().position(|a| a == c)?;
            n = (n << 6) | value as u32;
        }
        n <<= 6 * pad as u32;
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    Some(out)
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A signed value, zigzag-encoded (a clock reading in nanoseconds fits 96
/// bits; deltas are small).
fn put_signed(out: &mut Vec<u8>, value: i128) {
    let zigzag = ((value << 1) ^ (value >> 127)) as u128;
    let mut rest = zigzag;
    while rest >= 0x80 {
        out.push(rest as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    put_varint(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

fn get_varint(text: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *text.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

fn get_signed(text: &[u8], at: &mut usize) -> Option<i128> {
    let mut zigzag = 0u128;
    for shift in (0..128).step_by(7) {
        let byte = *text.get(*at)?;
        *at += 1;
        zigzag |= u128::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some((zigzag >> 1) as i128 ^ -((zigzag & 1) as i128));
        }
    }
    None
}

fn get_str<'a>(text: &'a [u8], at: &mut usize) -> Option<&'a str> {
    let len = usize::try_from(get_varint(text, at)?).ok()?;
    let bytes = text.get(*at..at.checked_add(len)?)?;
    *at += len;
    std::str::from_utf8(bytes).ok()
}

/// A block being gathered by [`Log::index_readings`] over several steps.
pub(crate) struct Pending {
    /// Where the block starts (where the record ended when it began).
    from: u64,
    /// The next event to read.
    next: u64,
    /// The readings of the events `from..next`.
    readings: Vec<Reading>,
}

/// What [`Log::readings`] read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Covered {
    /// The events the blocks read cover (skipped blocks included).
    pub events: u64,
    /// Blocks that could not be read (their readings are lost once their
    /// events are folded; while they are not, they are read from the log).
    pub unreadable: u64,
    /// The sequence number after the last event the blocks cover: the
    /// events from here on are read from the log.
    pub end: u64,
}

/// The events `first..end` of a stored block whose checksum holds.
pub(crate) fn block_span(value: &[u8]) -> Option<(u64, u64)> {
    parse(value).ok().map(|(header, _)| (header.first, header.end))
}

/// A stored block as an export carries it ([`crate::log::readings_line`]):
/// its events `first..end` once its checksum holds and every reading in it
/// decodes, each handed to `each`.
pub(crate) fn read_block(value: &[u8], each: &mut dyn FnMut(&Reading)) -> Result<(u64, u64), String> {
    let (header, compressed) = parse(value)?;
    decode(&header, compressed, each)?;
    Ok((header.first, header.end))
}

impl Log {
    /// The sequence number after the last event the readings record
    /// covers; the log's first event when it has none.
    pub(crate) fn indexed_end(&self) -> Result<u64, LogError> {
        let blocks = guard(&self.dir, || Ok(self.readings.iter().rev()))?;
        for item in blocks {
            let (_, value) = guard(&self.dir, || item)?;
            if let Ok((header, _)) = parse(&value) {
                return Ok(header.end);
            }
        }
        let first = guard(&self.dir, || self.events.first())?;
        Ok(first.and_then(|(key, _)| key_seq(&key)).unwrap_or(0))
    }

    /// Writes the readings of the events from where the record ends up to
    /// `to` (or, with `None`, one bounded part of a block when
    /// [`BLOCK_EVENTS`] wait: see [`Log::index_part`]) without flushing: a
    /// derived record, flushed with what follows it. Returns whether it
    /// did any work. An unreadable event is
    /// [`LogError::Damaged`] and nothing is written.
    pub(crate) fn index_readings(&mut self, to: Option<u64>) -> Result<bool, LogError> {
        let from = self.indexed_end()?;
        let to = match to {
            Some(to) if to > from => to.min(self.next_seq),
            Some(_) => return Ok(false),
            None => return self.index_part(from),
        };
        self.pending_readings = None;
        let mut from = from;
        let mut wrote = false;
        while from < to {
            let end = (from + BLOCK_EVENTS).min(to);
            match self.index_block(from, end)? {
                Some(next) => {
                    wrote = true;
                    from = next;
                }
                None => break,
            }
        }
        Ok(wrote)
    }

    /// A bounded part of the next block ([`INDEX_STEP_EVENTS`] events read,
    /// up to the end of the frame they end in), when [`BLOCK_EVENTS`] events wait after `from` (where
    /// the record ends): the readings gathered so far are kept in memory
    /// (derived, so a crash only loses the work) and the block is written
    /// by the part that reaches its end. Returns whether it did any work.
    fn index_part(&mut self, from: u64) -> Result<bool, LogError> {
        if self.next_seq.saturating_sub(from) < BLOCK_EVENTS {
            return Ok(false);
        }
        let end = from + BLOCK_EVENTS;
        let (mut next, mut readings) = match self.pending_readings.take() {
            Some(pending) if pending.from == from && pending.next <= end => (pending.next, pending.readings),
            _ => (from, Vec::new()),
        };
        // To the end of the frame the budget ends in: a frame is decoded
        // whole, so the next part starts on a frame and decodes none twice.
        let stop = (next + INDEX_STEP_EVENTS).min(end);
        let stop = self
            .frame_end(stop - 1)
            .map_or(stop, |frame_end| frame_end.max(stop).min(end));
        let mut reached = next;
        for entry in self.entries(next) {
            let envelope = match entry {
                Ok(envelope) if envelope.seq >= stop => {
                    // A gap (a repaired hole) is covered too.
                    reached = stop;
                    break;
                }
                Ok(envelope) => envelope,
                Err(LogError::Corrupt { seq, reason }) => {
                    return Err(self.damaged(format!("event {seq} is unreadable: {reason}")));
                }
                Err(error) => return Err(error),
            };
            reached = envelope.seq + 1;
            readings.extend(of(&envelope));
        }
        let progressed = reached > next;
        next = reached.max(next);
        if next < end {
            // Nothing read (the log ends before the block does) is no work.
            self.pending_readings = Some(Pending { from, next, readings });
            return Ok(progressed);
        }
        let value = encode(from, end, &readings).map_err(|message| self.storage_message(message))?;
        guard(&self.dir, || self.readings.insert(from.to_be_bytes(), value))?;
        Ok(true)
    }

    /// The sequence number after the frame holding event `seq`, when a
    /// frame holds it.
    fn frame_end(&self, seq: u64) -> Option<u64> {
        let (key, value) = guard(&self.dir, || {
            self.events.range(..=seq.to_be_bytes()).next_back().transpose()
        })
        .ok()??;
        let (header, _, _) = super::frame::parse(&value).ok()?;
        (key_seq(&key) == Some(header.first) && header.end() > seq).then_some(header.end())
    }

    /// One block of the readings of events `from..to`; returns where it
    /// ends, `None` when no event is there.
    fn index_block(&mut self, from: u64, to: u64) -> Result<Option<u64>, LogError> {
        let mut readings = Vec::new();
        let mut end = from;
        for entry in self.entries(from) {
            let envelope = match entry {
                Ok(envelope) if envelope.seq >= to => {
                    // A gap (a repaired hole) is covered too.
                    end = to;
                    break;
                }
                Ok(envelope) => envelope,
                Err(LogError::Corrupt { seq, reason }) => {
                    return Err(self.damaged(format!("event {seq} is unreadable: {reason}")));
                }
                Err(error) => return Err(error),
            };
            end = envelope.seq + 1;
            readings.extend(of(&envelope));
        }
        if end == from {
            return Ok(None);
        }
        let value = encode(from, end, &readings).map_err(|message| self.storage_message(message))?;
        guard(&self.dir, || self.readings.insert(from.to_be_bytes(), value))?;
        Ok(Some(end))
    }

    /// Every readable stored block (as [`Log::readings`] reads them) that
    /// starts at or before `last`: with the base's last event, the blocks
    /// an export after a fold carries, which together hold the readings of
    /// every folded event.
    pub(crate) fn blocks_through(&self, last: u64) -> Result<Vec<Vec<u8>>, LogError> {
        let mut blocks = Vec::new();
        let mut end = 0;
        let iter = guard(&self.dir, || Ok(self.readings.range(..=last.to_be_bytes())))?;
        for item in iter {
            let (key, value) = guard(&self.dir, || item)?;
            let Some((first, block_end)) = block_span(&value) else {
                continue;
            };
            if key_seq(&key) != Some(first) || first < end {
                continue;
            }
            end = block_end;
            blocks.push(value.to_vec());
        }
        Ok(blocks)
    }

    /// Stores blocks an import or a repair checked ([`block_span`]) as
    /// they are, each under its first event (after magic and CRC).
    pub(crate) fn put_blocks(&self, blocks: &[Vec<u8>]) -> Result<(), LogError> {
        for value in blocks {
            if let Some(key) = value.get(8..16) {
                guard(&self.dir, || self.readings.insert(key, value.as_slice()))?;
            }
        }
        Ok(())
    }

    /// Calls `each` with every reading the record holds between `since`
    /// and `until` (inclusive, by the second; blocks outside are not
    /// decompressed), series by series within a block, blocks in order.
    pub fn readings(
        &self,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        mut each: impl FnMut(&Reading),
    ) -> Result<Covered, LogError> {
        let mut covered = Covered::default();
        let iter = guard(&self.dir, || Ok(self.readings.iter()))?;
        for item in iter {
            let (key, value) = guard(&self.dir, || item)?;
            let Ok((header, compressed)) = parse(&value) else {
                covered.unreadable += 1;
                continue;
            };
            if key_seq(&key) != Some(header.first) || header.first < covered.end {
                covered.unreadable += 1;
                continue;
            }
            covered.events += header.end - header.first;
            covered.end = header.end;
            let outside = since.is_some_and(|since| header.last_at < since.as_second())
                || until.is_some_and(|until| header.first_at > until.as_second());
            if outside {
                continue;
            }
            if decode(&header, compressed, &mut each).is_err() {
                covered.unreadable += 1;
            }
        }
        Ok(covered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_gives_back_its_readings_bit_for_bit() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let readings = vec![
            Reading {
                provider: ProviderId::ALL[0],
                window: "5h".to_owned(),
                at: at("2026-11-20T10:00:00.123456789Z"),
                used_ratio: 0.1 + 0.2,
                resets_at: Some(at("2026-11-20T12:00:00Z")),
            },
            Reading {
                provider: ProviderId::ALL[1],
                window: "7d".to_owned(),
                at: at("2026-11-20T10:00:01Z"),
                used_ratio: 1.0,
                resets_at: None,
            },
            Reading {
                provider: ProviderId::ALL[0],
                window: "5h".to_owned(),
                at: at("2026-11-20T10:01:00Z"),
                used_ratio: -0.0,
                resets_at: Some(at("1969-12-31T23:59:59.5Z")),
            },
        ];
        let value = encode(7, 19, &readings).unwrap();
        let (header, compressed) = parse(&value).unwrap();
        assert_eq!((header.first, header.end), (7, 19));
        let mut back = Vec::new();
        decode(&header, compressed, |reading| back.push(reading.clone())).unwrap();
        let mut expected = readings.clone();
        expected.sort_by_key(|reading| (reading.provider, reading.window.clone()));
        assert_eq!(back.len(), 3);
        for (got, want) in back.iter().zip(&expected) {
            assert_eq!(got.used_ratio.to_bits(), want.used_ratio.to_bits());
            assert_eq!(
                (got.provider, &got.window, got.at, got.resets_at),
                (want.provider, &want.window, want.at, want.resets_at)
            );
        }
        let mut damaged = value.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert!(parse(&damaged).is_err());
    }
}
