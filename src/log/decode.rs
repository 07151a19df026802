//! Reading events from their stored JSON lines, a frame at a time.
//!
//! A log says the same things every cycle: a fetch started, a machine went
//! idle, a store entry is unchanged. In a packed frame such a line differs
//! from the last time only in its number and clock reading, which come
//! before the rest of the line ([`frame::Parts`]), and what an event says
//! is read from that rest alone. So a [`Decoder`] remembers what a rest it
//! has met twice said, and reads it again with a clone instead of a parse.
//! What it returns is what [`Envelope::from_json`] returns for the whole
//! line: anything it cannot answer from memory (an unknown rest, a clock
//! reading that does not parse plainly, a line that is not packed) is
//! parsed whole, errors included.

use jiff::Timestamp;

use super::frame::Parts;
use crate::events::{DecodeError, Envelope, Event, Stream};

/// How many rests a decoder can remember: slots in a direct-mapped table
/// indexed by the rest's CRC-32. A log's repeated lines are a few dozen; a
/// log whose every line differs costs this many slots and no more.
const SLOTS: usize = 1_024;

pub(crate) struct Decoder {
    /// By slot: a remembered rest, its CRC-32, and what its line said.
    said: Vec<Option<Said>>,
    /// By slot: the CRC-32 of the last rest met there once.
    met: Vec<Option<u32>>,
    /// The last clock reading read plainly: its text and its value.
    clock: Option<(Vec<u8>, Timestamp)>,
}

struct Said {
    sum: u32,
    rest: Box<[u8]>,
    stream: Stream,
    payload: Event,
}

impl Default for Decoder {
    fn default() -> Self {
        Self {
            said: std::iter::repeat_with(|| None).take(SLOTS).collect(),
            met: vec![None; SLOTS],
            clock: None,
        }
    }
}

impl Decoder {
    /// The event whose JSON is `line` (number `seq`), given the line's
    /// [`Parts`] when it was packed.
    pub(crate) fn decode(&mut self, seq: u64, line: &[u8], parts: Option<Parts<'_>>) -> Result<Envelope, DecodeError> {
        let Some(parts) = parts else {
            return Envelope::from_json(line);
        };
        let sum = crc32fast::hash(parts.rest);
        let slot = sum as usize % SLOTS;
        if let Some(said) = &self.said[slot]
            && said.sum == sum
            && *said.rest == *parts.rest
            && let Some(at) = clock(&mut self.clock, parts.at)
        {
            return Ok(Envelope {
                stream: said.stream,
                seq,
                at,
                payload: said.payload.clone(),
            });
        }
        let envelope = Envelope::from_json(line)?;
        // Remembered at its second meeting: a line met once (a fetch's
        // readings, most often) is not worth a copy.
        if self.met[slot] == Some(sum) {
            self.said[slot] = Some(Said {
                sum,
                rest: parts.rest.into(),
                stream: envelope.stream,
                payload: envelope.payload.clone(),
            });
        } else {
            self.met[slot] = Some(sum);
        }
        Ok(envelope)
    }

    /// Whether the rest `rest` is remembered (for the tests).
    #[cfg(test)]
    fn remembers(&self, rest: &[u8]) -> bool {
        let sum = crc32fast::hash(rest);
        self.said[sum as usize % SLOTS]
            .as_ref()
            .is_some_and(|said| said.sum == sum && *said.rest == *rest)
    }
}

/// The clock reading whose JSON text (between its quotes) is `text`, from
/// `kept` (the last one read) or read and kept; `None` when it has escapes
/// or does not parse, which sends the line to be parsed whole, so its error
/// is the whole line's.
fn clock(kept: &mut Option<(Vec<u8>, Timestamp)>, text: &[u8]) -> Option<Timestamp> {
    if let Some((last, at)) = kept
        && last.as_slice() == text
    {
        return Some(*at);
    }
    if text.contains(&b'\\') {
        return None;
    }
    let at: Timestamp = std::str::from_utf8(text).ok()?.parse().ok()?;
    *kept = Some((text.to_vec(), at));
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::frame::{self, FLAG_PACKED, Header};

    /// Every line of a packed frame, read by one decoder, gives what the
    /// whole line's parse gives: the same event, or the same error.
    #[test]
    fn a_remembered_line_reads_as_its_whole_parse_would() {
        let first = 100;
        let rests = [
            // Said again and again: remembered after the second time.
            r#","stream":"tracker/codex","type":"fetch_started","provider":"codex"}"#,
            r#","stream":"tracker/codex","type":"transitioned","from":"fetching","to":"idle","cause":"fetch_succeeded"}"#,
            // Not an event: an error each time, never remembered.
            r#","stream":"tracker/codex","type":"no_such_event"}"#,
            // A key the start of the line already has.
            r#","seq":7,"stream":"engine","type":"clock_ticked"}"#,
        ];
        let clocks = [
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:01:00Z",
            // Escaped: read whole, and still a clock reading.
            "2026-01-01T00:02:00\\u005a",
            // No such day: the whole line's error, though its rest is known.
            "2026-02-30T00:00:00Z",
            "2026-01-01T00:03:00+01:00",
            "not a time",
        ];
        let mut lines = Vec::new();
        for round in 0..4 {
            for clock in clocks {
                for rest in rests {
                    let seq = first + lines.len() as u64;
                    lines.push(format!(r#"{{"v":1,"seq":{seq},"at":"{clock}"{rest}"#).into_bytes());
                }
                // A line the packer keeps whole.
                if round == 1 {
                    let seq = first + lines.len() as u64;
                    lines.push(format!(r#"{{"seq":{seq},"v":1,"at":"{clock}"{}"#, rests[0]).into_bytes());
                }
            }
        }
        let text = frame::pack(first, lines.iter().map(Vec::as_slice));
        let header = Header {
            first,
            count: lines.len() as u32,
            base: first,
            base_crc: 0,
            text_len: text.len() as u32,
            first_at: 0,
            last_at: 0,
            flags: FLAG_PACKED,
        };
        let mut decoder = Decoder::default();
        let mut remembered = 0;
        let visited = frame::unpack_each(&header, &text, |index, line, parts| {
            let seq = first + index as u64;
            assert_eq!(line, lines[index].as_slice(), "line {index} restored");
            remembered += usize::from(parts.is_some_and(|parts| decoder.remembers(parts.rest)));
            let read = decoder.decode(seq, line, parts).map_err(|error| error.to_string());
            let whole = Envelope::from_json(line).map_err(|error| error.to_string());
            assert_eq!(read, whole, "line {index}: {}", String::from_utf8_lossy(line));
            Ok(())
        })
        .unwrap();
        assert_eq!(visited, lines.len());
        // The two events were answered from memory after their second
        // reading: the decoder did remember.
        assert!(
            remembered >= 2 * (4 * clocks.len() - 2),
            "{remembered} lines answered from memory"
        );
    }
}
