//! One deployment's build log as the dashboard keeps it: a bounded ring of display-ready lines.

use std::collections::VecDeque;

use crate::log::{LogEntry, Severity, Tier};
use crate::printable::display;

/// Which stream a line came from, for its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
    Command,
    /// shiplog's own lines: skipped input, degraded stream, outcome.
    System,
}

/// A line ready to show: escapes stripped, control characters removed.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// Position in the deployment's log since shiplog started following it.
    pub seq: u64,
    pub ts: i64,
    pub stream: Stream,
    pub severity: Severity,
    pub text: String,
}

impl LogLine {
    /// An error or a warning (for "jump to the next problem").
    pub fn is_problem(&self) -> bool {
        self.severity >= Severity::Warn
    }
}

/// A bounded log: appending past the capacity drops the oldest lines and counts them.
#[derive(Debug, Clone)]
pub struct LogBuffer {
    lines: VecDeque<LogLine>,
    capacity: usize,
    next_seq: u64,
    dropped: u64,
}

impl LogBuffer {
    pub fn new(capacity: usize) -> Self {
        LogBuffer {
            lines: VecDeque::with_capacity(capacity.min(1024)),
            capacity: capacity.max(1),
            next_seq: 0,
            dropped: 0,
        }
    }

    /// Adds an entry; one entry with several lines of text becomes several lines.
    pub fn push_entry(&mut self, entry: &LogEntry) {
        let stream = match (entry.tier, entry.event.as_str()) {
            (Tier::Build, "stderr") => Stream::Stderr,
            (Tier::Build, "command") => Stream::Command,
            (Tier::Build, _) => Stream::Stdout,
            _ => Stream::System,
        };
        let text = display(&entry.message, false);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        for line in text.split('\n') {
            self.push(LogLine {
                seq: 0,
                ts: entry.ts,
                stream,
                severity: entry.severity,
                text: line.to_owned(),
            });
        }
    }

    pub fn push(&mut self, mut line: LogLine) {
        line.seq = self.next_seq;
        self.next_seq += 1;
        if self.lines.len() == self.capacity {
            self.lines.pop_front();
            self.dropped += 1;
        }
        self.lines.push_back(line);
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Lines dropped because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The sequence number of the oldest line still kept.
    pub fn first_seq(&self) -> u64 {
        self.next_seq - self.lines.len() as u64
    }

    /// The `index`-th line kept (0 is the oldest).
    pub fn line(&self, index: usize) -> Option<&LogLine> {
        self.lines.get(index)
    }

    /// The line with this sequence number, if still kept.
    pub fn get(&self, seq: u64) -> Option<&LogLine> {
        let index = seq.checked_sub(self.first_seq())?;
        self.lines.get(usize::try_from(index).ok()?)
    }

    /// Lines from sequence number `seq` on.
    pub fn since(&self, seq: u64) -> impl Iterator<Item = &LogLine> {
        let skip = seq.saturating_sub(self.first_seq()) as usize;
        self.lines.iter().skip(skip)
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: &str) -> LogEntry {
        LogEntry::at(1, Tier::Build, Severity::Info, "stdout", text)
    }

    #[test]
    fn keeps_the_newest_lines_and_counts_the_rest() {
        let mut buffer = LogBuffer::new(3);
        for i in 0..5 {
            buffer.push_entry(&entry(&format!("line {i}")));
        }
        let texts: Vec<&str> = buffer.since(0).map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["line 2", "line 3", "line 4"]);
        assert_eq!(buffer.dropped(), 2);
        assert_eq!(buffer.first_seq(), 2);
        assert_eq!(buffer.get(3).map(|l| l.text.as_str()), Some("line 3"));
        assert!(buffer.get(1).is_none());
        assert_eq!(buffer.since(4).count(), 1);
    }

    #[test]
    fn multi_line_text_becomes_lines_and_escapes_are_stripped() {
        let mut buffer = LogBuffer::new(10);
        buffer.push_entry(&entry("\u{1b}[31mfirst\u{1b}[0m\nsecond\u{7}\n"));
        let texts: Vec<&str> = buffer.since(0).map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["first", "second"]);
    }
}
