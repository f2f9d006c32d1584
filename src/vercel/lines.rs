//! Splits a byte stream into lines, whatever the network's chunk boundaries, with bounded memory.

/// What the splitter found.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A whole line, without `\n` or `\r\n`.
    Complete(&'a [u8]),
    /// A line longer than the limit; its bytes were discarded as they arrived.
    Oversized { bytes: usize },
}

/// Incremental NDJSON line splitter. Holds at most `max_line` bytes of one unfinished line.
#[derive(Debug)]
pub struct LineSplitter {
    pending: Vec<u8>,
    max_line: usize,
    /// While discarding an oversized line: how many of its bytes went by.
    discarding: Option<usize>,
}

/// Lines longer than this are skipped (1 MiB).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

impl Default for LineSplitter {
    fn default() -> Self {
        LineSplitter::new(MAX_LINE_BYTES)
    }
}

impl LineSplitter {
    pub fn new(max_line: usize) -> Self {
        LineSplitter {
            pending: Vec::new(),
            max_line,
            discarding: None,
        }
    }

    /// Feeds one chunk; calls `emit` for every line it completes.
    pub fn push(&mut self, mut chunk: &[u8], mut emit: impl FnMut(Line<'_>)) {
        while !chunk.is_empty() {
            let newline = memchr::memchr(b'\n', chunk);
            let (piece, rest) = match newline {
                Some(i) => (&chunk[..i], &chunk[i + 1..]),
                None => (chunk, &[][..]),
            };
            chunk = rest;
            if let Some(seen) = self.discarding.as_mut() {
                *seen += piece.len();
                if newline.is_some() {
                    let bytes = *seen;
                    self.discarding = None;
                    emit(Line::Oversized { bytes });
                }
                continue;
            }
            if self.pending.len() + piece.len() > self.max_line {
                self.discarding = Some(self.pending.len() + piece.len());
                self.pending = Vec::new();
                if newline.is_some() {
                    let bytes = self.discarding.take().unwrap_or_default();
                    emit(Line::Oversized { bytes });
                }
                continue;
            }
            match newline {
                // Fast path: a whole line inside one chunk needs no copy.
                Some(_) if self.pending.is_empty() => emit_line(piece, &mut emit),
                Some(_) => {
                    self.pending.extend_from_slice(piece);
                    emit_line(&self.pending, &mut emit);
                    self.pending.clear();
                }
                None => self.pending.extend_from_slice(piece),
            }
        }
    }

    /// The stream ended cleanly: a last line without a newline still counts.
    pub fn finish(&mut self, mut emit: impl FnMut(Line<'_>)) {
        if let Some(bytes) = self.discarding.take() {
            emit(Line::Oversized { bytes });
        } else if !self.pending.is_empty() {
            emit_line(&self.pending, &mut emit);
        }
        self.pending.clear();
    }

    /// The stream broke: an unfinished line is incomplete and is dropped (it will be sent again).
    pub fn reset(&mut self) {
        self.pending.clear();
        self.discarding = None;
    }

    /// Bytes held for an unfinished line.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }
}

fn emit_line(line: &[u8], emit: &mut impl FnMut(Line<'_>)) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if !line.iter().all(u8::is_ascii_whitespace) {
        emit(Line::Complete(line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, PartialEq, Eq, Clone)]
    enum Got {
        Line(Vec<u8>),
        Oversized(usize),
    }

    fn split(chunks: &[&[u8]], max: usize, clean_end: bool) -> Vec<Got> {
        let mut splitter = LineSplitter::new(max);
        let mut got = Vec::new();
        let mut collect = |line: Line<'_>| match line {
            Line::Complete(l) => got.push(Got::Line(l.to_vec())),
            Line::Oversized { bytes } => got.push(Got::Oversized(bytes)),
        };
        for chunk in chunks {
            splitter.push(chunk, &mut collect);
        }
        if clean_end {
            splitter.finish(&mut collect);
        }
        got
    }

    #[test]
    fn crlf_blank_lines_and_a_last_line_without_newline() {
        let got = split(&[b"a\r\n\r\n  \nb", b"c\nd"], 100, true);
        assert_eq!(
            got,
            vec![
                Got::Line(b"a".to_vec()),
                Got::Line(b"bc".to_vec()),
                Got::Line(b"d".to_vec())
            ]
        );
    }

    #[test]
    fn a_broken_stream_drops_the_half_line() {
        let got = split(&[b"{\"a\":1}\n{\"b\""], 100, false);
        assert_eq!(got, vec![Got::Line(b"{\"a\":1}".to_vec())]);
    }

    #[test]
    fn oversized_lines_are_skipped_without_buffering_them() {
        let mut splitter = LineSplitter::new(10);
        let mut got = Vec::new();
        splitter.push(b"short\n0123456789abc", |l| got.push(format!("{l:?}")));
        assert!(splitter.pending_bytes() <= 10);
        splitter.push(&[b'x'; 1000], |l| got.push(format!("{l:?}")));
        assert_eq!(splitter.pending_bytes(), 0);
        splitter.push(b"def\nnext\n", |l| got.push(format!("{l:?}")));
        assert_eq!(got.len(), 3);
        assert_eq!(got[1], "Oversized { bytes: 1016 }");
        assert!(got[2].contains("[110, 101, 120, 116]"));
    }

    proptest! {
        /// However the network cuts the bytes, the same lines come out.
        #[test]
        fn chunk_boundaries_do_not_matter(
            lines in proptest::collection::vec("[a-z{}\":, é▲✓]{0,40}", 0..20),
            cuts in proptest::collection::vec(0usize..400, 0..12),
            crlf in any::<bool>(),
        ) {
            let sep = if crlf { "\r\n" } else { "\n" };
            let body: Vec<u8> = lines.iter().flat_map(|l| format!("{l}{sep}").into_bytes()).collect();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(body.len())).collect();
            cuts.sort_unstable();
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut start = 0;
            for cut in cuts {
                chunks.push(&body[start..cut]);
                start = cut;
            }
            chunks.push(&body[start..]);
            let whole = split(&[&body], 1000, true);
            prop_assert_eq!(split(&chunks, 1000, true), whole.clone());
            let expected: Vec<Got> = lines
                .iter()
                .filter(|l| !l.trim().is_empty())
                .map(|l| Got::Line(l.as_bytes().to_vec()))
                .collect();
            prop_assert_eq!(whole, expected);
        }
    }
}
