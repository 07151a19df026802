//! The stored form of events (format 2): a *frame* holds a run of
//! consecutive events as their JSON lines (exactly the bytes `log export`
//! writes), compressed with zstd, under the key of its first sequence
//! number.
//!
//! A log's events say nearly the same thing every minute, so a frame is
//! compressed against an earlier frame's text (its *keyframe*, a zstd raw
//! content dictionary) rather than alone: a cycle of seven fetches costs
//! about 150 bytes instead of 12 KB. A keyframe is compressed alone; a
//! delta names its keyframe (first sequence number and CRC-32 of its text),
//! so reading any frame costs at most two decompressions, and damage to a
//! delta loses only that frame.
//!
//! Before compression each line loses what its place says: `{"v":1,"seq":N,"at":"`
//! is implied by the frame's first number and the line's index, and a
//! clock reading equal to the line before's is left out ([`pack`]); the
//! lines are restored byte for byte ([`unpack`]). Both kinds of frame are
//! compressed with [`PRELUDE`] (typical packed lines) in front of their
//! dictionary, so a small frame unlike its keyframe still compresses.
//!
//! Every frame starts with [`MAGIC`], its length and a CRC-32 of the rest,
//! so the salvage scanner finds intact frames in sled's raw files as it
//! finds format-1 values (a CRC-32 followed by `{"v":1,"seq":`). The header
//! also carries the clock readings of the first and last event and whether
//! any fetch in it still holds its exchange, so retention can decide from
//! headers alone.

/// The first bytes of every frame.
pub const MAGIC: &[u8; 4] = b"QTF\x02";
/// Magic, length and CRC-32.
const OUTER: usize = 12;
/// The header fields the CRC covers, before the compressed text: first,
/// count, first − base, base CRC, text length, first clock reading, last
/// minus first reading, flags.
const INNER: usize = 8 + 2 + 4 + 4 + 4 + 8 + 4 + 1;
/// The most text one frame may hold once decompressed (a frame holds at
/// most [`MAX_EVENTS`] events; a crafted header claiming more is refused
/// before anything is allocated).
pub const MAX_TEXT: usize = 64 << 20;
/// The most events one frame holds.
pub const MAX_EVENTS: usize = 4_096;
/// `flags`: some `fetch_completed` in the frame still holds its exchange.
pub const FLAG_EXCHANGES: u8 = 1;
/// `flags`: the frame holds `settings_changed` events a fold kept (their
/// numbers at or before the base's): retention passes over it, loads and
/// rebuilds start after the base, and `log export` writes them, so a
/// replay of the export starts from the settings the engine had.
pub const FLAG_KEPT: u8 = 4;
/// `flags`: the text is packed ([`pack`]) and compressed with [`PRELUDE`]
/// in front of its dictionary. Every frame this build writes has it.
pub const FLAG_PACKED: u8 = 2;
/// Typical packed lines, in front of every frame's dictionary. Part of the
/// stored format: frames with [`FLAG_PACKED`] need exactly these bytes, so
/// this text never changes (a new one would need a new flag).
pub const PRELUDE: &[u8] = concat!(
    "\u{2}2026-01-01T00:00:00Z\",\"stream\":\"engine\",\"type\":\"clock_ticked\"}\n",
    "\u{1},\"stream\":\"tracker/anthropic\",\"type\":\"fetch_started\",\"provider\":\"anthropic\"}\n",
    "\u{1},\"stream\":\"tracker/antigravity\",\"type\":\"fetch_started\",\"provider\":\"antigravity\"}\n",
    "\u{1},\"stream\":\"tracker/codex\",\"type\":\"fetch_started\",\"provider\":\"codex\"}\n",
    "\u{1},\"stream\":\"tracker/copilot\",\"type\":\"fetch_started\",\"provider\":\"copilot\"}\n",
    "\u{1},\"stream\":\"tracker/gemini\",\"type\":\"fetch_started\",\"provider\":\"gemini\"}\n",
    "\u{1},\"stream\":\"tracker/kiro\",\"type\":\"fetch_started\",\"provider\":\"kiro\"}\n",
    "\u{1},\"stream\":\"tracker/zai\",\"type\":\"fetch_started\",\"provider\":\"zai\"}\n",
    "\u{1},\"stream\":\"tracker/anthropic\",\"type\":\"store_updated\",\"provider\":\"anthropic\",\"fails\":0,\"active\":true,\"blocked_until\":null}\n",
    "\u{1},\"stream\":\"tracker/codex\",\"type\":\"transitioned\",\"provider\":\"codex\",\"from\":\"ready\",\"to\":\"backing_off\",\"cause\":\"fetch_failed\"}\n",
    "\u{1},\"stream\":\"tracker/anthropic\",\"type\":\"fetch_completed\",\"provider\":\"anthropic\",\"exchange\":{\"provider\":\"anthropic\",\"recorded_at\":\"2026-01-01T00:00:00Z\",\"request\":{\"method\":\"GET\",\"url\":\"https://\",\"headers\":{\"accept\":\"application/json\",\"authorization\":\"[redacted]\",\"user-agent\":\"\"}},\"response\":{\"status\":200,\"headers\":{\"content-type\":\"application/json\"},\"body\":null}},\"body_repeated\":true,\"outcome\":{\"result\":\"usage\",\"plan\":null,\"windows\":[{\"id\":\"5h\",\"label\":\"5h\",\"used_ratio\":0.0,\"remaining_ratio\":1.0,\"used\":0.0,\"remaining\":100.0,\"limit\":100.0,\"unit\":\"percent\",\"resets_at\":null,\"window_seconds\":18000,\"model\":null,\"quota\":\"5h\",\"window_type\":\"session\",\"reset_behavior\":\"session_start\"},{\"id\":\"7d\",\"label\":\"7d\",\"window_type\":\"rolling\",\"reset_behavior\":\"continuous\"}]},\"elapsed_ms\":0}\n",
)
.as_bytes();
/// The zstd level: the writes are small, level 3 is fast and near the best
/// ratio for this text.
const LEVEL: i32 = 3;

/// One frame's header, read and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The first event's sequence number (the frame's key).
    pub first: u64,
    /// How many consecutive events it holds.
    pub count: u32,
    /// The keyframe's first sequence number; `first` for a keyframe.
    pub base: u64,
    /// The CRC-32 of the keyframe's text (0 for a keyframe).
    pub base_crc: u32,
    /// The length of the text once decompressed.
    pub text_len: u32,
    /// The first event's clock reading, seconds since the epoch.
    pub first_at: i64,
    /// The last event's clock reading, seconds since the epoch.
    pub last_at: i64,
    /// [`FLAG_EXCHANGES`].
    pub flags: u8,
}

impl Header {
    /// Whether this frame is compressed alone.
    pub fn is_keyframe(&self) -> bool {
        self.base == self.first
    }

    /// The sequence number after its last event.
    pub fn end(&self) -> u64 {
        self.first + u64::from(self.count)
    }
}

/// Whether `value` is stored in this format (it may still be damaged).
pub fn is_frame(value: &[u8]) -> bool {
    value.starts_with(MAGIC)
}

/// The frame at the start of `bytes`: its header, its compressed text, and
/// its whole length, when its checksum holds.
pub fn parse(bytes: &[u8]) -> Result<(Header, &[u8], usize), String> {
    if !bytes.starts_with(MAGIC) || bytes.len() < OUTER {
        return Err(format!("a value of {} bytes is too short", bytes.len()));
    }
    let len = u32::from_be_bytes(bytes[4..8].try_into().unwrap_or_default()) as usize;
    let sum = u32::from_be_bytes(bytes[8..12].try_into().unwrap_or_default());
    let Some(body) = bytes.get(OUTER..OUTER.saturating_add(len)) else {
        return Err("checksum mismatch (the stored bytes were altered)".to_owned());
    };
    if len < INNER || crc32fast::hash(body) != sum {
        return Err("checksum mismatch (the stored bytes were altered)".to_owned());
    }
    let u64_at = |at: usize| u64::from_be_bytes(body[at..at + 8].try_into().unwrap_or_default());
    let u32_at = |at: usize| u32::from_be_bytes(body[at..at + 4].try_into().unwrap_or_default());
    let first = u64_at(0);
    let count = u32::from(u16::from_be_bytes([body[8], body[9]]));
    let back = u64::from(u32_at(10));
    let first_at = u64_at(22) as i64;
    let header = Header {
        first,
        count,
        base: first.wrapping_sub(back),
        base_crc: u32_at(14),
        text_len: u32_at(18),
        first_at,
        last_at: first_at.saturating_add(i64::from(u32_at(30))),
        flags: body[34],
    };
    if header.count == 0 || header.count as usize > MAX_EVENTS || header.text_len as usize > MAX_TEXT {
        return Err(format!("a frame header claiming {} events is invalid", header.count));
    }
    if back > first || header.first >= crate::events::MAX_SEQ {
        return Err("a frame header with an impossible reference".to_owned());
    }
    Ok((header, &body[INNER..], OUTER + len))
}

/// Encodes a frame of `text` (the events' JSON lines), compressed alone
/// when `base` is `None`, else against the keyframe `base` (its first
/// sequence number, its text, and a compressor loaded with that text).
pub fn encode(mut header: Header, text: &[u8], base: Option<(u64, &[u8], &mut Compressor)>) -> Result<Vec<u8>, String> {
    header.text_len = text.len() as u32;
    header.flags |= FLAG_PACKED;
    let compressed = match base {
        Some((first, base_text, compressor)) => {
            header.base = first;
            header.base_crc = crc32fast::hash(base_text);
            compressor.compress(text)?
        }
        None => {
            header.base = header.first;
            header.base_crc = 0;
            Compressor::new(&[]).compress(text)?
        }
    };
    let back = u32::try_from(header.first - header.base).map_err(|_| "a keyframe too far back".to_owned())?;
    let count = u16::try_from(header.count).map_err(|_| "too many events for one frame".to_owned())?;
    let span = u32::try_from(header.last_at.saturating_sub(header.first_at).max(0)).unwrap_or(u32::MAX);
    let mut body = Vec::with_capacity(INNER + compressed.len());
    body.extend_from_slice(&header.first.to_be_bytes());
    body.extend_from_slice(&count.to_be_bytes());
    body.extend_from_slice(&back.to_be_bytes());
    body.extend_from_slice(&header.base_crc.to_be_bytes());
    body.extend_from_slice(&header.text_len.to_be_bytes());
    body.extend_from_slice(&(header.first_at as u64).to_be_bytes());
    body.extend_from_slice(&span.to_be_bytes());
    body.push(header.flags);
    body.extend_from_slice(&compressed);
    let mut value = Vec::with_capacity(OUTER + body.len());
    value.extend_from_slice(MAGIC);
    value.extend_from_slice(&(body.len() as u32).to_be_bytes());
    value.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    value.extend_from_slice(&body);
    Ok(value)
}

/// The text of a frame: `base_text` is its keyframe's text (ignored for a
/// keyframe). A delta whose keyframe text does not match is refused.
pub fn text(header: &Header, compressed: &[u8], base_text: Option<&[u8]>) -> Result<Vec<u8>, String> {
    text_with(header, compressed, base_text, None)
}

/// A decompressor loaded with one keyframe's text (and [`PRELUDE`]), kept
/// while its deltas are read: loading the dictionary is most of the cost
/// of reading a small delta.
pub struct Decompressor {
    /// The CRC-32 of the keyframe text it was loaded with.
    crc: u32,
    inner: zstd::bulk::Decompressor<'static>,
}

/// [`text`], reusing `cache` for packed deltas against the same keyframe.
pub fn text_with(
    header: &Header,
    compressed: &[u8],
    base_text: Option<&[u8]>,
    cache: Option<&mut Option<Decompressor>>,
) -> Result<Vec<u8>, String> {
    if let Some(cache) = cache
        && !header.is_keyframe()
        && header.flags & FLAG_PACKED != 0
        && let Some(base_text) = base_text
    {
        if crc32fast::hash(base_text) != header.base_crc {
            return Err(format!("its keyframe {} does not match", header.base));
        }
        if cache.as_ref().is_none_or(|kept| kept.crc != header.base_crc) {
            let inner = zstd::bulk::Decompressor::with_dictionary(&dictionary(base_text))
                .map_err(|error| format!("cannot decompress: {error}"))?;
            *cache = Some(Decompressor {
                crc: header.base_crc,
                inner,
            });
        }
        let capacity = header.text_len as usize;
        let text = match cache.as_mut() {
            Some(kept) => kept.inner.decompress(compressed, capacity),
            None => return Err("no decompressor".to_owned()),
        }
        .map_err(|error| format!("cannot decompress: {error}"))?;
        if text.len() != capacity {
            return Err("its text has the wrong length".to_owned());
        }
        return Ok(text);
    }
    text_alone(header, compressed, base_text)
}

fn text_alone(header: &Header, compressed: &[u8], base_text: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let capacity = header.text_len as usize;
    let packed = header.flags & FLAG_PACKED != 0;
    let base_text = if header.is_keyframe() {
        &[][..]
    } else {
        let Some(base_text) = base_text else {
            return Err(format!("its keyframe {} is unreadable", header.base));
        };
        if crc32fast::hash(base_text) != header.base_crc {
            return Err(format!("its keyframe {} does not match", header.base));
        }
        base_text
    };
    let text = if packed {
        zstd::bulk::Decompressor::with_dictionary(&dictionary(base_text))
            .and_then(|mut d| d.decompress(compressed, capacity))
    } else if header.is_keyframe() {
        zstd::bulk::decompress(compressed, capacity)
    } else {
        zstd::bulk::Decompressor::with_dictionary(base_text).and_then(|mut d| d.decompress(compressed, capacity))
    }
    .map_err(|error| format!("cannot decompress: {error}"))?;
    if text.len() != capacity {
        return Err("its text has the wrong length".to_owned());
    }
    Ok(text)
}

/// [`PRELUDE`] then a keyframe's text: a frame's zstd dictionary.
fn dictionary(base_text: &[u8]) -> Vec<u8> {
    let mut dictionary = Vec::with_capacity(PRELUDE.len() + base_text.len());
    dictionary.extend_from_slice(PRELUDE);
    dictionary.extend_from_slice(base_text);
    dictionary
}

/// The lines of a frame's text (each event's JSON, without the newline).
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    split_lines(text).filter(|line| !line.is_empty())
}

/// `text` split at each newline, as `split` would (an empty piece after a
/// final newline too), found a word at a time.
fn split_lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', text)
        .chain(std::iter::once(text.len()))
        .map(move |end| {
            let line = &text[start..end];
            start = end + 1;
            line
        })
}

/// The start every event's JSON has, up to its clock reading's text,
/// appended to `out`.
fn push_line_start(seq: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"v\":1,\"seq\":");
    out.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
    out.extend_from_slice(b",\"at\":\"");
}

/// Marks a packed line: kept whole, clock reading as the line before's,
/// clock reading given.
const WHOLE: u8 = 0;
const SAME_AT: u8 = 1;
const NEW_AT: u8 = 2;
/// In a packed line: `"` + the line's clock reading + `"`, the first value
/// of `"recorded_at"` (an exchange is recorded when its fetch completes).
const RECORDED_AT: u8 = 3;
/// The key whose value [`RECORDED_AT`] stands for.
const RECORDED_KEY: &[u8] = b"\"recorded_at\":";

/// `rest` with the first `"recorded_at":"<at>"` shortened to
/// `"recorded_at":` + [`RECORDED_AT`], when its value is `at`.
fn shorten_recorded(rest: &[u8], at: &[u8], text: &mut Vec<u8>) {
    let found = rest
        .windows(RECORDED_KEY.len())
        .position(|window| window == RECORDED_KEY);
    if let Some(key) = found {
        let value = key + RECORDED_KEY.len();
        let tail = &rest[value..];
        if tail.first() == Some(&b'"') && tail[1..].starts_with(at) && tail.get(1 + at.len()) == Some(&b'"') {
            text.extend_from_slice(&rest[..value]);
            text.push(RECORDED_AT);
            text.extend_from_slice(&tail[at.len() + 2..]);
            return;
        }
    }
    text.extend_from_slice(rest);
}

/// [`shorten_recorded`] undone; whether there was anything to restore.
fn restore_recorded(rest: &[u8], at: &[u8], json: &mut Vec<u8>) -> bool {
    match memchr::memchr(RECORDED_AT, rest) {
        Some(mark) => {
            json.extend_from_slice(&rest[..mark]);
            json.push(b'"');
            json.extend_from_slice(at);
            json.push(b'"');
            json.extend_from_slice(&rest[mark + 1..]);
            true
        }
        None => {
            json.extend_from_slice(rest);
            false
        }
    }
}

/// The text of events `first`, `first + 1`… whose JSON lines are `lines`:
/// each line without what its place implies (see the module doc). JSON
/// never holds a raw control character, so the marks cannot be mistaken.
pub fn pack<'a>(first: u64, lines: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut text = Vec::new();
    let mut previous_at: Option<&[u8]> = None;
    let mut start = Vec::new();
    for (index, line) in lines.into_iter().enumerate() {
        start.clear();
        push_line_start(first + index as u64, &mut start);
        let split = line.strip_prefix(start.as_slice()).and_then(|rest| {
            let quote = rest.iter().position(|b| *b == b'"')?;
            Some((&rest[..quote], &rest[quote + 1..]))
        });
        match split {
            Some((at, rest)) if previous_at == Some(at) => {
                text.push(SAME_AT);
                shorten_recorded(rest, at, &mut text);
            }
            Some((at, rest)) => {
                text.push(NEW_AT);
                text.extend_from_slice(at);
                text.push(b'"');
                shorten_recorded(rest, at, &mut text);
                previous_at = Some(at);
            }
            None => {
                text.push(WHOLE);
                text.extend_from_slice(line);
                previous_at = None;
            }
        }
        text.push(b'\n');
    }
    text
}

/// The JSON lines of a frame's text, restored; unpacked text (a frame
/// without [`FLAG_PACKED`]) is split as it is.
pub fn unpack(header: &Header, text: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::with_capacity(header.count as usize);
    unpack_each(header, text, |_, line, _| {
        out.push(line.to_vec());
        Ok(())
    })?;
    Ok(out)
}

/// A restored line in its two parts when it is exactly
/// `{"v":1,"seq":N,"at":"` + `at` + `"` + `rest`: what every line says
/// after its number and clock reading, the same bytes each time the same
/// thing is said again (see [`crate::log`]'s decoder).
#[derive(Clone, Copy)]
pub struct Parts<'a> {
    /// The clock reading's JSON text, between its quotes.
    pub at: &'a [u8],
    /// Everything after the clock reading's closing quote.
    pub rest: &'a [u8],
}

/// [`unpack`] a line at a time: `visit` gets each line's index in the
/// frame, its restored JSON (in one buffer reused for every line, so
/// reading a frame allocates nothing per event) and, for a packed line, its
/// [`Parts`]. Stops at the first error of the text's or of `visit`; the
/// number of lines visited otherwise.
pub fn unpack_each(
    header: &Header,
    text: &[u8],
    mut visit: impl FnMut(usize, &[u8], Option<Parts<'_>>) -> Result<(), String>,
) -> Result<usize, String> {
    if header.flags & FLAG_PACKED == 0 {
        let mut count = 0;
        for line in lines(text) {
            visit(count, line, None)?;
            count += 1;
        }
        return Ok(count);
    }
    let mut count = 0;
    let mut json = Vec::new();
    let mut previous_at: Option<&[u8]> = None;
    for (index, line) in split_lines(text).enumerate() {
        let Some((mark, rest)) = line.split_first() else {
            continue;
        };
        let seq = header.first + index as u64;
        json.clear();
        let parts = match *mark {
            WHOLE => {
                json.extend_from_slice(rest);
                previous_at = None;
                None
            }
            SAME_AT => {
                let at = previous_at.ok_or_else(|| format!("event {seq} repeats a clock reading it has not got"))?;
                push_line_start(seq, &mut json);
                json.extend_from_slice(at);
                json.push(b'"');
                let restored = restore_recorded(rest, at, &mut json);
                (!restored).then_some(Parts { at, rest })
            }
            NEW_AT => {
                let quote = memchr::memchr(b'"', rest).ok_or_else(|| format!("event {seq} has no clock reading"))?;
                let at = &rest[..quote];
                previous_at = Some(at);
                push_line_start(seq, &mut json);
                json.extend_from_slice(&rest[..=quote]);
                let rest = &rest[quote + 1..];
                let restored = restore_recorded(rest, at, &mut json);
                (!restored).then_some(Parts { at, rest })
            }
            _ => return Err(format!("event {seq} is not a packed line")),
        };
        visit(count, &json, parts)?;
        count += 1;
    }
    Ok(count)
}

/// A zstd compressor loaded with one keyframe's text.
pub struct Compressor {
    inner: Option<zstd::bulk::Compressor<'static>>,
}

impl Compressor {
    /// A compressor against `base_text` (with [`PRELUDE`] in front).
    pub fn new(base_text: &[u8]) -> Compressor {
        Compressor {
            inner: zstd::bulk::Compressor::with_dictionary(LEVEL, &dictionary(base_text)).ok(),
        }
    }

    fn compress(&mut self, text: &[u8]) -> Result<Vec<u8>, String> {
        match self.inner.as_mut() {
            Some(inner) => inner
                .compress(text)
                .map_err(|error| format!("cannot compress: {error}")),
            None => Err("no compressor".to_owned()),
        }
    }

    /// Whether it could be made (a zstd failure makes keyframes only).
    pub fn works(&self) -> bool {
        self.inner.is_some()
    }
}
