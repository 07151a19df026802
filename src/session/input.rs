//! The host's side of `serve --stdio` as lines: read with a bound, numbered
//! from 1, and turned into host events, or into the `error` event that
//! says why a line is not one.
//!
//! A host is not trusted to send well-formed lines. Memory holds at most
//! one line of [`MAX_LINE`] bytes: the rest of a longer line is read and
//! dropped as it arrives, never buffered. A line that is too long, not
//! UTF-8, not JSON or not a known host event each get an `error` naming the
//! line, and the session goes on with the next line.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::events::HostEvent;
use crate::session::EngineEvent;

/// The longest line read (1 MiB); a longer one is skipped with an error.
pub const MAX_LINE: usize = 1 << 20;

/// A host's input lines, numbered from 1.
pub struct HostLines<R> {
    reader: R,
    /// The current line so far (never more than [`MAX_LINE`] bytes).
    line: Vec<u8>,
    /// The current line passed [`MAX_LINE`]: the rest of it is skipped.
    too_long: bool,
    /// The number of the last line returned.
    number: usize,
}

/// One raw line: its bytes, or the fact that it was too long.
enum Line {
    Bytes(Vec<u8>),
    TooLong,
}

impl<R: AsyncBufRead + Unpin> HostLines<R> {
    /// Lines from `reader`.
    pub fn new(reader: R) -> HostLines<R> {
        HostLines {
            reader,
            line: Vec::new(),
            too_long: false,
            number: 0,
        }
    }

    /// The next event with its line number, or the `error` event (its line
    /// set) for a line that is not one; blank lines are skipped; `None` at
    /// the end of input. Cancel-safe: a line read in part is kept for the
    /// next call.
    pub async fn next(&mut self) -> std::io::Result<Option<(usize, Result<HostEvent, EngineEvent>)>> {
        loop {
            let Some(line) = self.next_line().await? else {
                return Ok(None);
            };
            self.number += 1;
            if let Some(event) = host_event(line) {
                let number = self.number;
                return Ok(Some((
                    number,
                    event.map_err(|message| EngineEvent::Error {
                        line: Some(number),
                        message,
                    }),
                )));
            }
        }
    }

    /// The next raw line, without its newline; `None` at the end of input.
    /// Only `fill_buf` awaits, and nothing is consumed before it returns,
    /// so a cancelled call loses nothing.
    async fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                if self.line.is_empty() && !self.too_long {
                    return Ok(None);
                }
                return Ok(Some(self.take()));
            }
            let newline = available.iter().position(|byte| *byte == b'\n');
            let part = &available[..newline.unwrap_or(available.len())];
            if !self.too_long {
                if self.line.len() + part.len() > MAX_LINE {
                    self.too_long = true;
                    self.line = Vec::new();
                } else {
                    self.line.extend_from_slice(part);
                }
            }
            let used = newline.map_or(available.len(), |at| at + 1);
            self.reader.consume(used);
            if newline.is_some() {
                return Ok(Some(self.take()));
            }
        }
    }

    fn take(&mut self) -> Line {
        let line = if std::mem::take(&mut self.too_long) {
            Line::TooLong
        } else {
            Line::Bytes(std::mem::take(&mut self.line))
        };
        self.line = Vec::new();
        line
    }
}

/// Nothing for a blank line, else the host event or why it is not one.
fn host_event(line: Line) -> Option<Result<HostEvent, String>> {
    let bytes = match line {
        Line::TooLong => {
            return Some(Err(format!(
                "line longer than {MAX_LINE} bytes (1 MiB), skipped: send one host event per line"
            )));
        }
        Line::Bytes(bytes) => bytes,
    };
    let text = match std::str::from_utf8(&bytes) {
        Ok(text) => text,
        Err(error) => {
            return Some(Err(format!(
                "not UTF-8 (invalid byte at offset {}): send JSON text",
                error.valid_up_to()
            )));
        }
    };
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.trim().is_empty() {
        return None;
    }
    Some(serde_json::from_str(text).map_err(|error| format!("not a host event: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(input: &[u8]) -> Vec<(usize, Result<HostEvent, EngineEvent>)> {
        let mut lines = HostLines::new(tokio::io::BufReader::with_capacity(64, input));
        let mut all = Vec::new();
        while let Some(line) = lines.next().await.unwrap() {
            all.push(line);
        }
        all
    }

    fn message(event: &Result<HostEvent, EngineEvent>) -> &str {
        match event {
            Err(EngineEvent::Error { message, .. }) => message,
            other => panic!("not an error: {other:?}"),
        }
    }

    #[tokio::test]
    async fn every_bad_line_is_named_and_the_next_line_is_read() {
        let mut input = Vec::new();
        input.extend_from_slice(b"{\"type\":\"refresh\"}\n\n");
        input.extend_from_slice(b"\xff\xfe not utf-8\n");
        input.extend_from_slice(b"not json\n");
        input.extend_from_slice(b"{\"type\":\"teleport\"}\n");
        input.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        input.extend_from_slice(b"\n{\"type\":\"turn_end\"}");
        let read = read_all(&input).await;
        let numbers: Vec<usize> = read.iter().map(|(number, _)| *number).collect();
        assert_eq!(numbers, [1, 3, 4, 5, 6, 7]);
        assert_eq!(read[0].1, Ok(HostEvent::Refresh));
        assert!(message(&read[1].1).starts_with("not UTF-8"), "{:?}", read[1]);
        assert!(message(&read[2].1).starts_with("not a host event"));
        assert!(message(&read[3].1).contains("teleport"));
        assert!(message(&read[4].1).starts_with("line longer than 1048576 bytes"));
        assert_eq!(read[5].1, Ok(HostEvent::TurnEnd));
    }

    #[tokio::test]
    async fn a_line_of_exactly_the_limit_is_read() {
        let mut input = b"{\"type\":\"refresh\"}".to_vec();
        input.extend(std::iter::repeat_n(b' ', MAX_LINE - input.len()));
        input.push(b'\n');
        assert_eq!(read_all(&input).await, [(1, Ok(HostEvent::Refresh))]);
    }
}
