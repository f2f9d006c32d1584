//! Owning the terminal: raw mode and the alternate screen while the dashboard runs, restored
//! on every way out (quit, error, signal, and a panic anywhere, engines included).

use std::io;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use ratatui::DefaultTerminal;

/// Restores the terminal when dropped.
pub struct TerminalGuard {
    pub terminal: DefaultTerminal,
    mouse: bool,
}

impl TerminalGuard {
    /// Enters raw mode and the alternate screen. With `mouse`, the wheel scrolls (and the
    /// terminal's own text selection then needs Shift); without, selection works as usual.
    pub fn enter(mouse: bool) -> io::Result<Self> {
        let terminal = ratatui::try_init()?;
        if mouse {
            execute!(io::stdout(), EnableMouseCapture)?;
        }
        Ok(TerminalGuard { terminal, mouse })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        if self.mouse {
            let _ = execute!(io::stdout(), DisableMouseCapture);
        }
        restore();
    }
}

/// Leaves raw mode and the alternate screen, and shows the cursor again (which
/// `ratatui::restore` alone does not).
fn restore() {
    ratatui::restore();
    let _ = execute!(io::stdout(), crossterm::cursor::Show);
}

/// Held while a frame is drawn. The panic hook takes it before restoring the terminal, so a
/// frame drawn on another thread can never land on the restored screen.
static DRAWING: Mutex<()> = Mutex::new(());

/// Hold this while drawing a frame.
pub fn drawing() -> MutexGuard<'static, ()> {
    DRAWING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The drawing lock, unless the panicking thread is the one drawing (then nobody else is).
fn stop_drawing() -> Option<MutexGuard<'static, ()>> {
    let deadline = Instant::now() + Duration::from_millis(250);
    loop {
        match DRAWING.try_lock() {
            Ok(guard) => return Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => return Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(TryLockError::WouldBlock) => return None,
        }
    }
}

/// A panic, on the UI thread or in an engine task, restores the terminal, records the details
/// in the diagnostics log and leaves with one sentence: no backtrace on the user's screen, and
/// no dashboard left drawing over a restored terminal. Install it before the engines start.
pub fn install_panic_hook(log_file: PathBuf) {
    std::panic::set_hook(Box::new(move |info| {
        // Kept until the process exits: no frame after the restore.
        let _no_more_frames = stop_drawing();
        let _ = execute!(io::stdout(), DisableMouseCapture);
        restore();
        let backtrace = std::backtrace::Backtrace::force_capture();
        tracing::error!(%info, %backtrace, "panic");
        eprintln!(
            "shiplog: internal error, the dashboard stopped ({}). Details are in {}.",
            info.payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_owned()),
            log_file.display()
        );
        std::process::exit(101);
    }));
}
