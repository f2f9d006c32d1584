//! The dashboard: app state, pure render functions per screen, themes, and the event loop that
//! ties the terminal to the engines.

pub mod app;
pub mod buffer;
pub mod input;
pub mod screens;
pub mod terminal;
pub mod theme;
pub mod ui;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{Event, EventStream, KeyEventKind, MouseEventKind};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::alert::book::AlertRecord;
use crate::alert::queue::worker::QueueSnapshot;
use crate::log::LogEntry;
use crate::shutdown::{stopped, Shutdown};
use crate::stream::engine::EngineSnapshot;
use app::App;
use terminal::TerminalGuard;
use theme::Theme;

/// At most this often a frame is drawn (about 60 a second).
const FRAME: Duration = Duration::from_millis(16);
/// Entries taken from the channel per wake-up; a burst is drawn once.
const BATCH: usize = 4096;

/// What the dashboard reads from the engines.
pub struct Feeds {
    pub snapshots: watch::Receiver<EngineSnapshot>,
    pub entries: mpsc::Receiver<Arc<LogEntry>>,
    /// The alert book, when alerting runs.
    pub alerts: Option<watch::Receiver<Vec<AlertRecord>>>,
    /// The delivery queue, when alerting runs.
    pub queue: Option<watch::Receiver<QueueSnapshot>>,
    /// The breakglass engine's view, and its answers to requests.
    pub breakglass: Option<watch::Receiver<crate::breakglass::desk::BreakglassView>>,
    pub breakglass_results: Option<mpsc::Receiver<crate::breakglass::desk::AccessResult>>,
}

/// Runs the dashboard until the user quits or `shutdown` fires.
pub async fn run(
    mut app: App,
    theme: Theme,
    mut feeds: Feeds,
    mut shutdown: Shutdown,
    mouse: bool,
) -> io::Result<()> {
    let mut guard = TerminalGuard::enter(mouse)?;
    let mut events = EventStream::new();
    let mut batch = Vec::with_capacity(BATCH);
    // Ages and build durations move once a second, but only while something builds.
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    clock.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut dirty = true;
    let mut entries_open = true;
    let mut last_draw = Instant::now() - FRAME;
    loop {
        if dirty && last_draw.elapsed() >= FRAME {
            let _drawing = terminal::drawing();
            guard.terminal.draw(|frame| {
                app.deployments.log_height = ui::log_height(frame.area(), &app.deployments);
                ui::render(frame, &app, &theme)
            })?;
            dirty = false;
            last_draw = Instant::now();
        }
        let next_frame = last_draw + FRAME;
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(Event::Key(key))) if key.kind != KeyEventKind::Release => {
                    dirty |= app.on_key(key);
                }
                Some(Ok(Event::Mouse(mouse))) => match mouse.kind {
                    MouseEventKind::ScrollUp => { app.deployments.scroll_by(-3); dirty = true; }
                    MouseEventKind::ScrollDown => { app.deployments.scroll_by(3); dirty = true; }
                    _ => {}
                },
                Some(Ok(Event::Resize(..))) => dirty = true,
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err),
                None => break,
            },
            changed = feeds.snapshots.changed() => {
                if changed.is_ok() {
                    let snapshot = feeds.snapshots.borrow_and_update().clone();
                    app.apply_snapshot(snapshot);
                    dirty = true;
                }
            }
            changed = watched(&mut feeds.alerts) => match changed {
                Some(alerts) => {
                    app.alerts.records = alerts;
                    dirty = true;
                }
                None => feeds.alerts = None,
            },
            changed = watched(&mut feeds.queue) => match changed {
                Some(queue) => {
                    app.queue = queue;
                    dirty = true;
                }
                None => feeds.queue = None,
            },
            changed = watched(&mut feeds.breakglass) => match changed {
                Some(view) => {
                    app.breakglass.apply_view(view);
                    dirty = true;
                }
                None => feeds.breakglass = None,
            },
            result = next_result(&mut feeds.breakglass_results) => match result {
                Some(result) => {
                    app.breakglass.on_result(result);
                    dirty = true;
                }
                None => feeds.breakglass_results = None,
            },
            received = feeds.entries.recv_many(&mut batch, BATCH), if entries_open => {
                entries_open = received > 0;
                app.ingest(&batch);
                batch.clear();
                dirty = true;
            }
            _ = clock.tick() => {
                dirty |= app.deployments.something_runs() | app.breakglass.tick(app.now()) | app.breakglass.is_revealing();
            }
            // A change came in too soon after the last frame: draw it when the frame is due.
            _ = tokio::time::sleep_until(next_frame), if dirty => {}
            _ = stopped(&mut shutdown) => break,
        }
        if app.should_quit {
            break;
        }
    }
    Ok(())
}

/// The next value of an engine's snapshot; `None` when the engine is gone. Never resolves when
/// the engine does not run.
async fn watched<T: Clone>(feed: &mut Option<watch::Receiver<T>>) -> Option<T> {
    match feed {
        Some(feed) => match feed.changed().await {
            Ok(()) => Some(feed.borrow_and_update().clone()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

/// The breakglass engine's next answer; never resolves when it does not run.
async fn next_result(
    results: &mut Option<mpsc::Receiver<crate::breakglass::desk::AccessResult>>,
) -> Option<crate::breakglass::desk::AccessResult> {
    match results {
        Some(results) => results.recv().await,
        None => std::future::pending().await,
    }
}
