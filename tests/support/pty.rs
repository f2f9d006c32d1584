//! Pseudo-terminal harness for end-to-end tests: runs a real program in a pty, the way a person
//! would in a terminal, and lets a test type keys and look at the screen.
//!
//! The screen is emulated by `vt100` (no scrollback). A background thread reads everything the
//! program writes, feeds the emulator and keeps the raw bytes. Like a real terminal, the emulator
//! answers the two queries terminal libraries send at start-up: cursor position (`CSI 6 n`) and
//! primary device attributes (`CSI c`), so nothing waits for a reply that never comes.
//!
//! Every wait takes a deadline, and the session kills the program when dropped.
//!
//! ```ignore
//! let bin = Path::new(env!("CARGO_BIN_EXE_shiplog"));
//! let mut s = PtySession::spawn(bin, &["--config", cfg], &[("NO_COLOR", "1")], 100, 30).unwrap();
//! s.wait_for_text("Deployments", Duration::from_secs(5)).or_panic(); // prints the screen on failure
//! s.send_key(Key::Down);
//! s.send(b"q");
//! assert_eq!(s.wait_exit(Duration::from_secs(5)), Some(0));
//! assert!(s.raw_output().windows(8).any(|w| w == b"\x1b[?1049l"));
//! ```

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize};

/// How often the waits look at the screen again.
const POLL: Duration = Duration::from_millis(20);

/// Unwraps a wait result, panicking with the message printed as-is. `.unwrap()` would show the
/// screen dump through `Debug`, i.e. on one line with `\n` escapes.
pub trait OrPanic {
    fn or_panic(self);
}

impl OrPanic for Result<(), String> {
    #[track_caller]
    fn or_panic(self) {
        if let Err(message) = self {
            panic!("{message}");
        }
    }
}

/// A key a person can press. `send_key` turns it into the bytes an xterm would send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Tab,
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    CtrlC,
    Backspace,
}

/// A program running in a pseudo-terminal. Dropping it kills the program.
pub struct PtySession {
    shared: Arc<Mutex<Shared>>,
    writer: Arc<Mutex<Box<dyn Write + Send>>>,
    master: Box<dyn MasterPty + Send>,
    child: Box<dyn Child + Send + Sync>,
    exit_code: Option<u32>,
}

/// State the reader thread updates and the test reads.
struct Shared {
    parser: vt100::Parser<Responder>,
    raw: Vec<u8>,
    /// The reader saw end of file (every process holding the pty has closed it) or an error.
    closed: bool,
}

/// Collects the replies a terminal owes the program for the queries it sent.
#[derive(Default)]
struct Responder {
    replies: Vec<u8>,
}

impl vt100::Callbacks for Responder {
    fn unhandled_csi(
        &mut self,
        screen: &mut vt100::Screen,
        i1: Option<u8>,
        _i2: Option<u8>,
        params: &[&[u16]],
        c: char,
    ) {
        let first = params.first().and_then(|p| p.first()).copied().unwrap_or(0);
        match (i1, c, first) {
            // Device status report: cursor position, 1-based.
            (None, 'n', 6) => {
                let (row, col) = screen.cursor_position();
                self.replies
                    .extend_from_slice(format!("\x1b[{};{}R", row + 1, col + 1).as_bytes());
            }
            // Device status report: "terminal OK".
            (None, 'n', 5) => self.replies.extend_from_slice(b"\x1b[0n"),
            // Primary device attributes: a VT220 with ANSI colour, like xterm says.
            (None, 'c', 0) => self.replies.extend_from_slice(b"\x1b[?62;22c"),
            _ => {}
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking predicate must not make every later call panic too.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn pty_error(context: &str, err: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("{context}: {err:#}"))
}

fn size(cols: u16, rows: u16) -> PtySize {
    PtySize {
        rows,
        cols,
        pixel_width: 0,
        pixel_height: 0,
    }
}

impl PtySession {
    /// Spawns `program args` in a new pseudo-terminal of `cols` x `rows`, with a clean environment
    /// plus `env` (PATH and HOME are kept from the caller unless overridden; TERM=xterm-256color;
    /// portable-pty always adds SHELL).
    /// The program starts in the caller's working directory (the package root under `cargo test`).
    pub fn spawn(
        program: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        cols: u16,
        rows: u16,
    ) -> std::io::Result<PtySession> {
        let pair = native_pty_system()
            .openpty(size(cols, rows))
            .map_err(|e| pty_error("openpty", e))?;

        let mut cmd = CommandBuilder::new(program);
        cmd.args(args);
        // portable-pty starts the child in $HOME unless told otherwise.
        cmd.cwd(std::env::current_dir()?);
        cmd.env_clear();
        for key in ["PATH", "HOME"] {
            if let Some(value) = std::env::var_os(key) {
                cmd.env(key, value);
            }
        }
        cmd.env("TERM", "xterm-256color");
        for (key, value) in env {
            cmd.env(key, value);
        }

        let child = pair
            .slave
            .spawn_command(cmd)
            .map_err(|e| pty_error(&format!("spawning {}", program.display()), e))?;
        // Only the child may hold the slave side, so reads hit end of file once it exits.
        drop(pair.slave);

        let master = pair.master;
        let reader = master
            .try_clone_reader()
            .map_err(|e| pty_error("cloning the pty reader", e))?;
        let writer: Arc<Mutex<Box<dyn Write + Send>>> = Arc::new(Mutex::new(
            master
                .take_writer()
                .map_err(|e| pty_error("taking the pty writer", e))?,
        ));
        let shared = Arc::new(Mutex::new(Shared {
            parser: vt100::Parser::new_with_callbacks(rows, cols, 0, Responder::default()),
            raw: Vec::new(),
            closed: false,
        }));

        let session = PtySession {
            shared: Arc::clone(&shared),
            writer: Arc::clone(&writer),
            master,
            child,
            exit_code: None,
        };
        // If the thread cannot start, `session` is dropped here and kills the child.
        thread::Builder::new()
            .name("pty-reader".into())
            .spawn(move || read_loop(reader, &shared, &writer))?;
        Ok(session)
    }

    /// Types raw bytes, e.g. `b"q"`, `b"\x1b[A"` (up), `b"/"`, `b"\r"` (Enter).
    ///
    /// There is no lone Esc: crossterm tells it apart from the start of an escape sequence only by
    /// its arriving in a read of its own, which a test cannot promise without sleeping.
    ///
    /// Errors are ignored: if the program is gone, the next wait reports that with the screen.
    pub fn send(&mut self, bytes: &[u8]) {
        let mut writer = lock(&self.writer);
        let _ = writer.write_all(bytes).and_then(|()| writer.flush());
    }

    /// Presses a key. Arrows, Home and End follow the cursor-key mode the program set (DECCKM).
    pub fn send_key(&mut self, key: Key) {
        let app_cursor = lock(&self.shared).parser.screen().application_cursor();
        let cursor = |letter: char| {
            let prefix = if app_cursor { "\x1bO" } else { "\x1b[" };
            format!("{prefix}{letter}")
        };
        let bytes = match key {
            Key::Char(c) => c.to_string(),
            Key::Enter => "\r".to_string(),
            Key::Tab => "\t".to_string(),
            Key::Up => cursor('A'),
            Key::Down => cursor('B'),
            Key::Home => cursor('H'),
            Key::End => cursor('F'),
            Key::PageUp => "\x1b[5~".to_string(),
            Key::PageDown => "\x1b[6~".to_string(),
            Key::CtrlC => "\x03".to_string(),
            Key::Backspace => "\x7f".to_string(),
        };
        self.send(bytes.as_bytes());
    }

    /// Resizes the terminal: the emulated screen first, then the pty (the program gets SIGWINCH),
    /// so everything the program draws after the signal lands on a screen of the new size.
    pub fn resize(&mut self, cols: u16, rows: u16) {
        let mut shared = lock(&self.shared);
        shared.parser.screen_mut().set_size(rows, cols);
        self.master
            .resize(size(cols, rows))
            .unwrap_or_else(|e| panic!("resizing the pty to {cols}x{rows}: {e:#}"));
    }

    /// The screen as text: rows joined by newlines, trailing blanks trimmed.
    pub fn contents(&self) -> String {
        lock(&self.shared).parser.screen().contents()
    }

    /// Every byte the program wrote so far, escape sequences included.
    pub fn raw_output(&self) -> Vec<u8> {
        lock(&self.shared).raw.clone()
    }

    /// Polls every ~20 ms until `pred(&screen)` holds. On timeout, or as soon as the program has
    /// closed the terminal without the condition holding, returns Err with `what` and a screen dump.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&vt100::Screen) -> bool,
    ) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let shared = lock(&self.shared);
            if pred(shared.parser.screen()) {
                return Ok(());
            }
            if shared.closed {
                return Err(format!(
                    "the program closed the terminal (exited?) after {:?} while waiting for {what}\n{}",
                    start.elapsed(),
                    dump(&shared)
                ));
            }
            if start.elapsed() >= timeout {
                return Err(format!(
                    "timed out after {timeout:?} waiting for {what}\n{}",
                    dump(&shared)
                ));
            }
            drop(shared);
            thread::sleep(POLL);
        }
    }

    /// Waits until `text` appears anywhere on the screen (within one row; rows are joined by `\n`).
    pub fn wait_for_text(&self, text: &str, timeout: Duration) -> Result<(), String> {
        self.wait_for(&format!("text {text:?}"), timeout, |screen| {
            screen.contents().contains(text)
        })
    }

    /// Waits until the screen (text, colours, cursor, alternate screen) has not changed for `quiet`,
    /// bounded by `timeout`. A blank screen also counts as stable, so wait for some text first.
    pub fn wait_stable(&self, quiet: Duration, timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        let mut last = snapshot(&lock(&self.shared));
        let mut since = Instant::now();
        loop {
            thread::sleep(POLL);
            let shared = lock(&self.shared);
            let now = snapshot(&shared);
            if now != last {
                last = now;
                since = Instant::now();
            } else if since.elapsed() >= quiet {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(format!(
                    "the screen was still changing after {timeout:?} (wanted {quiet:?} of quiet)\n{}",
                    dump(&shared)
                ));
            }
        }
    }

    /// Waits for the program to exit; `Some(exit code)`, or `None` on timeout. A program killed by
    /// a signal reports 1 (portable-pty's convention). After the exit it also waits (at least
    /// 500 ms, at most until `timeout`, whichever is later) for the last output to be read, so
    /// `contents()` and `raw_output()` are complete afterwards.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<u32> {
        let deadline = Instant::now() + timeout;
        let code = loop {
            if let Some(code) = self.exit_code {
                break code;
            }
            match self.child.try_wait() {
                Ok(Some(status)) => self.exit_code = Some(status.exit_code()),
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
                Ok(None) => return None,
                Err(e) => panic!("waiting for the program: {e}"),
            }
        };
        let drain_until = deadline.max(Instant::now() + Duration::from_millis(500));
        while !lock(&self.shared).closed && Instant::now() < drain_until {
            thread::sleep(POLL);
        }
        Some(code)
    }

    /// The child's process id, to send it signals.
    pub fn pid(&self) -> Option<u32> {
        self.child.process_id()
    }

    /// Whether the program switched to the alternate screen (`CSI ? 1049 h`) and is still there.
    pub fn alternate_screen(&self) -> bool {
        lock(&self.shared).parser.screen().alternate_screen()
    }

    /// Whether the program hid the cursor (`CSI ? 25 l`).
    pub fn cursor_hidden(&self) -> bool {
        lock(&self.shared).parser.screen().hide_cursor()
    }
}

impl Drop for PtySession {
    fn drop(&mut self) {
        // Only signal a child we have not reaped: its pid may belong to someone else by now.
        if self.exit_code.is_some() || !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        // portable-pty sends SIGHUP, waits up to ~200 ms, then SIGKILL.
        let _ = self.child.kill();
        // Reap it, but never hang a test on it.
        let deadline = Instant::now() + Duration::from_secs(2);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Reads the pty until end of file. The thread is detached: it ends when every process holding
/// the slave side has exited, which dropping the session arranges for the program itself.
fn read_loop(
    mut reader: Box<dyn Read + Send>,
    shared: &Mutex<Shared>,
    writer: &Mutex<Box<dyn Write + Send>>,
) {
    let mut buf = [0u8; 8192];
    loop {
        let n = match reader.read(&mut buf) {
            // portable-pty turns EIO (slave closed) into Ok(0).
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let replies = {
            let mut shared = lock(shared);
            shared.raw.extend_from_slice(&buf[..n]);
            shared.parser.process(&buf[..n]);
            std::mem::take(&mut shared.parser.callbacks_mut().replies)
        };
        if !replies.is_empty() {
            let mut writer = lock(writer);
            let _ = writer.write_all(&replies).and_then(|()| writer.flush());
        }
    }
    lock(shared).closed = true;
}

/// What `wait_stable` compares.
fn snapshot(shared: &Shared) -> (Vec<u8>, (u16, u16), bool, bool) {
    let screen = shared.parser.screen();
    (
        screen.contents_formatted(),
        screen.cursor_position(),
        screen.hide_cursor(),
        screen.alternate_screen(),
    )
}

/// The screen for an error message: one numbered line per row (trailing blanks trimmed).
fn dump(shared: &Shared) -> String {
    let screen = shared.parser.screen();
    let (rows, cols) = screen.size();
    let (cursor_row, cursor_col) = screen.cursor_position();
    let mut out = format!(
        "--- screen {cols}x{rows}, cursor at row {cursor_row} col {cursor_col}{}{}{}, {} bytes read ---\n",
        if screen.alternate_screen() { ", alternate screen" } else { "" },
        if screen.hide_cursor() { ", cursor hidden" } else { "" },
        if shared.closed { ", program closed the pty" } else { "" },
        shared.raw.len(),
    );
    for (i, row) in screen.rows(0, cols).enumerate() {
        out.push_str(&format!("{i:>3}|{}\n", row.trim_end()));
    }
    out.push_str("--- end of screen ---");
    out
}
