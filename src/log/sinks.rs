//! Sinks: where entries end up. Each runs on its own thread behind the logger's fan-out.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use super::entry::{LogEntry, Tier};

/// Something that writes entries somewhere. Called from a dedicated thread, so it may block.
pub trait Sink: Send + 'static {
    fn write(&mut self, entry: &LogEntry) -> io::Result<()>;
    /// Hands what was written to the operating system.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Flushes, and when the output is a file, waits until it is on disk (a follower saves its
    /// place only after that, so that a power cut cannot leave the place ahead of the file).
    fn sync(&mut self) -> io::Result<()> {
        self.flush()
    }
}

/// How the printer shows an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrintFormat {
    /// `09:20:31.123 stdout  text`, one line per line of text; with `show_project`, the
    /// project's name first (when several deployments share the output).
    Text { color: bool, show_project: bool },
    /// One unified entry as JSON per line.
    Json,
}

/// How many bytes the printer gathers before it writes them out.
const PRINT_BUFFER: usize = 64 * 1024;

/// Prints entries to any writer (stdout in the CLI).
pub struct Printer<W: Write + Send + 'static> {
    out: W,
    /// What is written but not yet handed to `out`; handed over past [`PRINT_BUFFER`].
    pending: Vec<u8>,
    /// Some output could not be written (the reader went away): from then on nothing counts
    /// as out, so no resume state is saved past it.
    lost: bool,
    format: PrintFormat,
    json: super::json_line::JsonLines,
    /// The file behind the writer, when it is a regular file (stdout redirected to one).
    file: Option<File>,
}

impl<W: Write + Send + 'static> Printer<W> {
    pub fn new(out: W, format: PrintFormat) -> Self {
        Printer {
            out,
            pending: Vec::with_capacity(PRINT_BUFFER),
            lost: false,
            format,
            json: Default::default(),
            file: None,
        }
    }
}

impl Printer<io::Stdout> {
    pub fn stdout(format: PrintFormat) -> Self {
        let mut printer = Printer::new(io::stdout(), format);
        printer.file = regular_file(io::stdout().as_fd());
        printer
    }
}

/// The file behind `fd` when it is a regular file, to sync it; not a terminal or a pipe.
fn regular_file(fd: BorrowedFd<'_>) -> Option<File> {
    let file = File::from(fd.try_clone_to_owned().ok()?);
    file.metadata().ok()?.is_file().then_some(file)
}

impl<W: Write + Send + 'static> Sink for Printer<W> {
    fn write(&mut self, entry: &LogEntry) -> io::Result<()> {
        match self.format {
            PrintFormat::Json => {
                // Written field by field: every `--json` line goes through here, and it is
                // what serde_json would write (a property test holds it to that).
                self.json.write(&mut self.pending, entry);
                self.pending.push(b'\n');
            }
            PrintFormat::Text {
                color,
                show_project,
            } => write_text(&mut self.pending, entry, color, show_project)?,
        }
        if self.pending.len() >= PRINT_BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let written = self
            .out
            .write_all(&self.pending)
            .and_then(|()| self.out.flush());
        // Cleared even when the write failed: output that cannot go out must not pile up.
        self.pending.clear();
        self.lost |= written.is_err();
        written
    }

    fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        if self.lost {
            return Err(io::Error::other("earlier output could not be written"));
        }
        match &self.file {
            Some(file) => file.sync_data(),
            None => Ok(()),
        }
    }
}

fn write_text(
    out: &mut impl Write,
    entry: &LogEntry,
    color: bool,
    show_project: bool,
) -> io::Result<()> {
    let mut clock = crate::log::entry::clock(entry.ts);
    if show_project {
        let project = entry.metadata.project.as_deref();
        clock = format!("{clock} {:<16}", project.unwrap_or("shiplog"));
    }
    let label = match entry.tier {
        Tier::Build | Tier::Runtime => entry.event.clone(),
        _ => format!("[{}]", entry.severity.as_str()),
    };
    let text = crate::printable::display(&entry.message, color);
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        // A trailing newline in the event's text is not an extra empty line.
        if line.is_empty() && lines.peek().is_none() && !entry.message.is_empty() {
            break;
        }
        writeln!(out, "{clock} {label:<7} {line}")?;
    }
    Ok(())
}

/// Passes on only the entries `keep` accepts (a worker's stdout shows shiplog's own entries and
/// alerts, not every build line; `shiplog logs` shows the rows its filters keep).
pub struct Only<S: Sink> {
    inner: S,
    keep: Box<dyn Fn(&LogEntry) -> bool + Send>,
}

impl<S: Sink> Only<S> {
    pub fn new(inner: S, keep: impl Fn(&LogEntry) -> bool + Send + 'static) -> Self {
        Only {
            inner,
            keep: Box::new(keep),
        }
    }
}

impl<S: Sink> Sink for Only<S> {
    fn write(&mut self, entry: &LogEntry) -> io::Result<()> {
        if (self.keep)(entry) {
            self.inner.write(entry)
        } else {
            Ok(())
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    fn sync(&mut self) -> io::Result<()> {
        self.inner.sync()
    }
}

/// Appends one JSON entry per line to a file.
pub struct NdjsonFile {
    out: BufWriter<File>,
}

impl NdjsonFile {
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = crate::fsutil::private_file()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(NdjsonFile {
            out: BufWriter::new(file),
        })
    }
}

impl Sink for NdjsonFile {
    fn write(&mut self, entry: &LogEntry) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, entry)?;
        self.out.write_all(b"\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Severity;

    fn text_of(entry: &LogEntry, color: bool) -> String {
        let mut out = Vec::new();
        write_text(&mut out, entry, color, false).expect("writes");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn text_lines_carry_clock_and_stream() {
        let entry = LogEntry::new(Tier::Build, Severity::Warn, "stderr", "Line 1\nLine 2\n")
            .with_ts(1_783_471_638_756);
        assert_eq!(
            text_of(&entry, false),
            "00:47:18.756 stderr  Line 1\n00:47:18.756 stderr  Line 2\n"
        );
    }

    /// A reader that went away after `room` bytes.
    struct ClosedAfter {
        room: usize,
    }

    impl Write for ClosedAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn output_that_cannot_go_out_neither_piles_up_nor_counts_as_out() {
        let mut printer = Printer::new(ClosedAfter { room: 100 }, PrintFormat::Json);
        let entry = LogEntry::new(Tier::Build, Severity::Info, "stdout", "x".repeat(1000));
        for _ in 0..500 {
            let _ = printer.write(&entry);
        }
        assert!(
            printer.pending.len() <= PRINT_BUFFER + 2000,
            "{}",
            printer.pending.len()
        );
        assert!(printer.sync().is_err(), "lost output must not count as out");
        assert!(printer.sync().is_err(), "and stays lost");
    }

    proptest::proptest! {
        /// `--json` lines are the entry as serde_json writes it, whatever the text holds.
        #[test]
        fn json_lines_are_what_serde_json_writes(
            message in "\\PC*|[\"\\\\\u{0}-\u{1f}\u{7f}-\u{9f}a]*",
            event in "\\PC{0,12}",
            ts in -10_000_000_000_000i64..10_000_000_000_000,
            ids in proptest::collection::vec(proptest::option::of("[\"\\\\a-z_\u{1}]{0,6}"), 9),
            created in proptest::option::of(proptest::num::i64::ANY),
            replayed in proptest::bool::ANY,
            extra in proptest::option::of("\\PC{0,8}"),
        ) {
            let shared = |i: usize| ids[i].as_deref().map(std::sync::Arc::<str>::from);
            let mut entry = LogEntry::at(ts, Tier::Build, Severity::Info, event, message);
            entry.deployment_id = shared(0);
            entry.build_id = shared(1);
            entry.project_id = shared(2);
            entry.user_id = shared(3);
            entry.correlation_id = shared(4);
            let meta = &mut entry.metadata;
            meta.vercel_event_id = ids[5].clone();
            meta.vercel_deployment_id = shared(6);
            meta.vercel_type = ids[7].clone();
            meta.level = ids[8].clone();
            meta.project = shared(0);
            meta.created = created;
            meta.replayed = replayed;
            if let Some(extra) = extra {
                entry = entry
                    .with_meta(&extra, serde_json::json!({"n": [1, 2.5, null, true], "s": extra.clone()}))
                    .with_meta("ready_state", "READY");
            }
            let mut printer = Printer::new(Vec::new(), PrintFormat::Json);
            printer.write(&entry).expect("writes");
            printer.write(&entry).expect("writes");
            printer.flush().expect("flushes");
            let line = serde_json::to_string(&entry).expect("serialises");
            proptest::prop_assert_eq!(
                String::from_utf8(printer.out).expect("utf-8"),
                format!("{line}\n{line}\n")
            );
        }
    }
}
