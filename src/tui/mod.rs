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

use crate::actions::desk::{ActionAnswer, ActivityView};
use crate::alert::book::AlertRecord;
use crate::alert::queue::worker::QueueSnapshot;
use crate::alert::silence::Silence;
use crate::breakglass::desk::{AccessResult, BreakglassView};
use crate::log::{EntryReceiver, LogEntry};
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
    pub entries: EntryReceiver,
    /// The alert book, when alerting runs.
    pub alerts: Option<watch::Receiver<Vec<AlertRecord>>>,
    /// The delivery queue, when alerting runs.
    pub queue: Option<watch::Receiver<QueueSnapshot>>,
    /// The silences, when alerting runs.
    pub silences: Option<watch::Receiver<Vec<Silence>>>,
    /// The breakglass engine's view, and its answers to requests.
    pub breakglass: Option<watch::Receiver<BreakglassView>>,
    pub breakglass_answers: Option<mpsc::Receiver<AccessResult>>,
    /// The actions engine's activity, and its answers to the screen's requests.
    pub actions: Option<watch::Receiver<ActivityView>>,
    pub action_answers: Option<mpsc::Receiver<ActionAnswer>>,
    /// The entries' channel is still open.
    entries_open: bool,
}

/// A change from an engine, for the screens.
enum Change {
    Snapshot(EngineSnapshot),
    Alerts(Vec<AlertRecord>),
    Queue(QueueSnapshot),
    Silences(Vec<Silence>),
    Breakglass(BreakglassView),
    Answer(AccessResult),
    Activity(ActivityView),
    ActionAnswer(ActionAnswer),
    /// New entries are in the batch.
    Entries,
    /// An engine went away; nothing to show.
    Nothing,
}

impl Feeds {
    /// The streaming engine's feeds; alerting and breakglass are added when they run.
    pub fn new(snapshots: watch::Receiver<EngineSnapshot>, entries: EntryReceiver) -> Self {
        Feeds {
            snapshots,
            entries,
            alerts: None,
            queue: None,
            silences: None,
            breakglass: None,
            breakglass_answers: None,
            actions: None,
            action_answers: None,
            entries_open: true,
        }
    }

    /// Waits for the next change from any engine; entries arrive in `batch`.
    async fn next(&mut self, batch: &mut Vec<Arc<LogEntry>>) -> Change {
        tokio::select! {
            changed = self.snapshots.changed() => match changed {
                Ok(()) => Change::Snapshot(self.snapshots.borrow_and_update().clone()),
                Err(_) => Change::Nothing,
            },
            changed = watched(&mut self.alerts) => changed.map_or(Change::Nothing, Change::Alerts),
            changed = watched(&mut self.queue) => changed.map_or(Change::Nothing, Change::Queue),
            changed = watched(&mut self.silences) => {
                changed.map_or(Change::Nothing, Change::Silences)
            }
            changed = watched(&mut self.breakglass) => {
                changed.map_or(Change::Nothing, Change::Breakglass)
            }
            result = next_result(&mut self.breakglass_answers) => {
                result.map_or(Change::Nothing, Change::Answer)
            }
            changed = watched(&mut self.actions) => {
                changed.map_or(Change::Nothing, Change::Activity)
            }
            answer = next_result(&mut self.action_answers) => {
                answer.map_or(Change::Nothing, Change::ActionAnswer)
            }
            received = self.entries.recv_many(batch, BATCH), if self.entries_open => {
                self.entries_open = received > 0;
                Change::Entries
            }
        }
    }
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
    let mut last_draw = Instant::now() - FRAME;
    loop {
        if dirty && last_draw.elapsed() >= FRAME {
            let _drawing = terminal::drawing();
            guard.terminal.draw(|frame| {
                app.deployments.log_height = ui::log_height(frame.area(), &app);
                ui::render(frame, &app, &theme)
            })?;
            dirty = false;
            last_draw = Instant::now();
        }
        let next_frame = last_draw + FRAME;
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(event)) => dirty |= on_event(&mut app, event),
                Some(Err(err)) => return Err(err),
                None => break,
            },
            change = feeds.next(&mut batch) => dirty |= apply(&mut app, change, &mut batch),
            _ = clock.tick() => dirty |= on_tick(&mut app),
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

/// A key, the mouse wheel or a resize; returns whether anything visible changed.
fn on_event(app: &mut App, event: Event) -> bool {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => app.on_key(key),
        Event::Mouse(mouse) => match mouse.kind {
            MouseEventKind::ScrollUp => {
                app.deployments.scroll_by(-3);
                true
            }
            MouseEventKind::ScrollDown => {
                app.deployments.scroll_by(3);
                true
            }
            _ => false,
        },
        Event::Resize(..) => true,
        _ => false,
    }
}

/// Hands an engine's change to the screen it is for; returns whether anything visible changed.
fn apply(app: &mut App, change: Change, batch: &mut Vec<Arc<LogEntry>>) -> bool {
    match change {
        Change::Snapshot(snapshot) => app.apply_snapshot(snapshot),
        Change::Alerts(alerts) => app.alerts.records = alerts,
        Change::Queue(queue) => app.queue = queue,
        Change::Silences(silences) => app.alerts.silences = silences,
        Change::Breakglass(view) => app.breakglass.apply_view(view),
        Change::Answer(result) => app.breakglass.on_result(result),
        Change::Activity(view) => app.actions.view = Some(view),
        Change::ActionAnswer(answer) => app.on_action_answer(answer),
        Change::Entries => {
            app.ingest(batch);
            batch.clear();
        }
        Change::Nothing => return false,
    }
    true
}

/// Once a second: whether anything on screen moves with time.
fn on_tick(app: &mut App) -> bool {
    let now = app.now();
    app.deployments.something_runs() | app.breakglass.tick(now) | app.breakglass.is_revealing()
}

/// The next value of an engine's snapshot; `None` when the engine is gone (and the feed is
/// dropped). Never resolves when the engine does not run.
async fn watched<T: Clone>(feed: &mut Option<watch::Receiver<T>>) -> Option<T> {
    let Some(receiver) = feed else {
        return std::future::pending().await;
    };
    match receiver.changed().await {
        Ok(()) => Some(receiver.borrow_and_update().clone()),
        Err(_) => {
            *feed = None;
            None
        }
    }
}

/// An engine's next answer; never resolves when it does not run.
async fn next_result<T>(results: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    let Some(receiver) = results else {
        return std::future::pending().await;
    };
    let result = receiver.recv().await;
    if result.is_none() {
        *results = None;
    }
    result
}
