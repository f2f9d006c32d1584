//! The dashboard's state and how it changes. Rendering reads it (see `ui`); nothing here draws.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui_textarea::TextArea;
use regex::Regex;

use tokio::sync::mpsc;

use super::breakglass::{Ask, BreakglassScreen};
use super::buffer::{LogBuffer, LogLine};
use crate::alert::book::{AlertRecord, AlertState};
use crate::alert::queue::worker::QueueSnapshot;
use crate::alert::runner::AlertCommand;
use crate::clock::now_ms;
use crate::log::{LogEntry, Severity, Tier};
use crate::stream::engine::EngineSnapshot;
use crate::stream::StreamHealth;
use crate::vercel::DeploymentSummary;

/// Where the data comes from, for the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in simulator.
    Demo,
    /// A real team (or the token's own account when `None`).
    Team(Option<String>),
}

/// The screens, one per engine so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// Deployments and build logs (key `1`).
    Deployments,
    /// The alert feed (key `2`).
    Alerts,
    /// The delivery queue (key `3`).
    Queue,
    /// Breakglass: emergency access to stored tokens (key `4`).
    Breakglass,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Deployments,
    Log,
}

/// What the one-line input at the bottom is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Filter,
    Search,
    /// The optional note of an acknowledgement.
    AckNote,
    /// Why breakglass access is needed.
    Justification,
    /// The connection id typed again, to confirm a breakglass request.
    Confirmation,
}

impl InputKind {
    /// Its text is a pattern (checked as it is typed).
    fn is_pattern(self) -> bool {
        matches!(self, InputKind::Filter | InputKind::Search)
    }
}

/// The open input box: its text area and whether its text is a valid pattern.
pub struct Input {
    pub kind: InputKind,
    pub text: TextArea<'static>,
    pub error: Option<String>,
}

impl Input {
    /// What is typed (the box holds one line).
    fn line(&self) -> String {
        self.text.lines().first().cloned().unwrap_or_default()
    }
}

/// Which lines of the log are shown: `pattern` keeps matching lines, `!pattern` hides them.
#[derive(Debug, Clone)]
pub struct LineFilter {
    pub source: String,
    regex: Regex,
    exclude: bool,
}

impl LineFilter {
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let (exclude, pattern) = match text.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let regex = compile(pattern)?;
        Ok(Some(LineFilter {
            source: text.to_owned(),
            regex,
            exclude,
        }))
    }

    pub fn keeps(&self, line: &LogLine) -> bool {
        self.regex.is_match(&line.text) != self.exclude
    }

    /// Where the pattern matches in `text` (for highlighting search hits).
    pub fn matches<'t>(
        &'t self,
        text: &'t str,
    ) -> impl Iterator<Item = std::ops::Range<usize>> + 't {
        self.regex
            .find_iter(text)
            .filter(|m| !m.is_empty())
            .map(|m| m.range())
    }
}

/// Case-insensitive unless the pattern has an upper-case letter ("smart case").
fn compile(pattern: &str) -> Result<Regex, String> {
    let smart = !pattern.chars().any(char::is_uppercase);
    regex::RegexBuilder::new(pattern)
        .case_insensitive(smart)
        .size_limit(1 << 20)
        .build()
        .map_err(|err| match err {
            regex::Error::Syntax(text) => text
                .lines()
                .last()
                .unwrap_or("invalid pattern")
                .trim()
                .to_owned(),
            other => other.to_string(),
        })
}

/// The log pane's position: following the end, or a fixed top line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scroll {
    Follow,
    /// The sequence number of the top line.
    At(u64),
}

/// The lines of the selected deployment that pass the filter, kept up to date incrementally.
#[derive(Debug, Default)]
struct FilteredView {
    deployment: String,
    filter: Option<String>,
    seqs: Vec<u64>,
    scanned_to: u64,
}

/// One row of the deployments list.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    pub deployment: &'a DeploymentSummary,
    pub health: Option<StreamHealth>,
    pub lines: usize,
}

pub struct App {
    pub screen: Screen,
    /// The alert book as the alerting engine last published it, newest first.
    pub alerts: Vec<AlertRecord>,
    /// The selected alert's fingerprint.
    pub selected_alert: Option<String>,
    /// The delivery queue as its worker last published it.
    pub queue: QueueSnapshot,
    pub breakglass: BreakglassScreen,
    /// Where acknowledgements and resolutions go; `None` when alerting is off.
    pub alert_commands: Option<mpsc::Sender<AlertCommand>>,
    pub source: Source,
    pub backend: String,
    pub snapshot: EngineSnapshot,
    pub logs: HashMap<String, LogBuffer>,
    pub buffer_capacity: usize,
    /// The selected deployment's Vercel id.
    pub selected: Option<String>,
    pub focus: Pane,
    pub scroll: Scroll,
    pub wrap: bool,
    pub timestamps: bool,
    pub filter: Option<LineFilter>,
    pub search: Option<LineFilter>,
    pub input: Option<Input>,
    pub help: bool,
    /// Warnings for the status bar (bad theme file, API errors, store trouble).
    pub warnings: Vec<String>,
    /// A short-lived message ("saved to ...").
    pub notice: Option<String>,
    /// How far behind Vercel the last build line arrived.
    pub lag_ms: Option<i64>,
    pub should_quit: bool,
    /// The log pane's height (lines) at the last draw, for paging.
    pub log_height: Cell<u16>,
    /// A fixed "now" (ms) instead of the clock, so that rendered ages are reproducible in tests.
    pub frozen_now: Option<i64>,
    view: FilteredView,
}

impl App {
    pub fn new(source: Source, backend: impl Into<String>, buffer_capacity: usize) -> Self {
        App {
            screen: Screen::Deployments,
            alerts: Vec::new(),
            selected_alert: None,
            queue: QueueSnapshot::default(),
            breakglass: BreakglassScreen::default(),
            alert_commands: None,
            source,
            backend: backend.into(),
            snapshot: EngineSnapshot::default(),
            logs: HashMap::new(),
            buffer_capacity,
            selected: None,
            focus: Pane::Deployments,
            scroll: Scroll::Follow,
            wrap: false,
            timestamps: true,
            filter: None,
            search: None,
            input: None,
            help: false,
            warnings: Vec::new(),
            notice: None,
            lag_ms: None,
            should_quit: false,
            log_height: Cell::new(20),
            frozen_now: None,
            view: FilteredView::default(),
        }
    }

    /// The current time in ms (see [`App::frozen_now`]).
    pub fn now(&self) -> i64 {
        self.frozen_now.unwrap_or_else(now_ms)
    }

    // ---- engine input -------------------------------------------------------------------

    pub fn apply_snapshot(&mut self, snapshot: EngineSnapshot) {
        self.snapshot = snapshot;
        let still_listed = self
            .selected
            .as_ref()
            .is_some_and(|id| self.snapshot.deployments.iter().any(|d| &d.uid == id));
        if !still_listed {
            self.selected = self.snapshot.deployments.first().map(|d| d.uid.clone());
            self.scroll = Scroll::Follow;
        }
        self.refresh_view();
    }

    /// Files a batch of entries from the logger into the deployments' buffers.
    pub fn ingest(&mut self, entries: &[Arc<LogEntry>]) {
        for entry in entries {
            match entry.build_id.as_deref() {
                Some(id) => {
                    let capacity = self.buffer_capacity;
                    self.logs
                        .entry(id.to_owned())
                        .or_insert_with(|| LogBuffer::new(capacity))
                        .push_entry(entry);
                    if entry.tier == Tier::Build {
                        self.lag_ms = Some((self.now() - entry.ts).max(0));
                    }
                }
                None if entry.severity >= Severity::Warn => self.warn(entry.message.clone()),
                None => {}
            }
        }
        self.refresh_view();
    }

    pub fn warn(&mut self, message: String) {
        if !self.warnings.contains(&message) {
            self.warnings.push(message);
        }
        if self.warnings.len() > 5 {
            self.warnings.remove(0);
        }
    }

    // ---- what the screens read -----------------------------------------------------------

    pub fn rows(&self) -> Vec<Row<'_>> {
        self.snapshot
            .deployments
            .iter()
            .map(|d| Row {
                deployment: d,
                health: self.snapshot.health.get(&d.uid).copied(),
                lines: self.logs.get(&d.uid).map_or(0, LogBuffer::len),
            })
            .collect()
    }

    pub fn selected_index(&self) -> Option<usize> {
        let id = self.selected.as_ref()?;
        self.snapshot.deployments.iter().position(|d| &d.uid == id)
    }

    pub fn selected_buffer(&self) -> Option<&LogBuffer> {
        self.logs.get(self.selected.as_ref()?)
    }

    /// A deployment is still queued or building: its age and duration keep moving.
    pub fn something_runs(&self) -> bool {
        self.snapshot
            .deployments
            .iter()
            .any(|d| !d.state().is_terminal())
    }

    pub fn streams_live(&self) -> usize {
        self.snapshot
            .health
            .values()
            .filter(|h| **h == StreamHealth::Live)
            .count()
    }

    /// How many lines the log pane can show (filtered when a filter is set).
    pub fn view_len(&self) -> usize {
        match (&self.filter, self.selected_buffer()) {
            (_, None) => 0,
            (None, Some(buffer)) => buffer.len(),
            (Some(_), Some(_)) => self.view.seqs.len(),
        }
    }

    /// The `index`-th line of the log pane.
    pub fn view_line(&self, index: usize) -> Option<&LogLine> {
        let buffer = self.selected_buffer()?;
        match &self.filter {
            None => buffer.line(index),
            Some(_) => buffer.get(*self.view.seqs.get(index)?),
        }
    }

    /// The index in the view of the line with sequence number `seq` (or the next one after it).
    fn view_index_of(&self, seq: u64) -> usize {
        match (&self.filter, self.selected_buffer()) {
            (_, None) => 0,
            (None, Some(buffer)) => seq.saturating_sub(buffer.first_seq()) as usize,
            (Some(_), Some(_)) => self.view.seqs.partition_point(|s| *s < seq),
        }
    }

    /// The index of the top line when scrolled, or `None` when following.
    pub fn top_index(&self) -> Option<usize> {
        match self.scroll {
            Scroll::Follow => None,
            Scroll::At(seq) => Some(
                self.view_index_of(seq)
                    .min(self.view_len().saturating_sub(1)),
            ),
        }
    }

    // ---- keys -----------------------------------------------------------------------------

    /// Handles a key; returns whether anything visible changed.
    pub fn on_key(&mut self, key: KeyEvent) -> bool {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.should_quit = true;
            return true;
        }
        self.notice = None;
        if self.input.is_some() {
            self.on_input_key(key);
            return true;
        }
        if self.help {
            // Any key closes the help; `q` still quits.
            self.help = false;
            if key.code == KeyCode::Char('q') {
                self.should_quit = true;
            }
            return true;
        }
        match key.code {
            KeyCode::Char('q') => self.should_quit = true,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Char('1') => self.screen = Screen::Deployments,
            KeyCode::Char('2') => self.screen = Screen::Alerts,
            KeyCode::Char('3') => self.screen = Screen::Queue,
            KeyCode::Char('4') => self.screen = Screen::Breakglass,
            _ if self.screen == Screen::Breakglass => return self.on_breakglass_key(key),
            _ if self.screen == Screen::Alerts => return self.on_alerts_key(key),
            // The queue screen has nothing to move or open.
            _ if self.screen == Screen::Queue => return false,
            KeyCode::Tab | KeyCode::BackTab => {
                self.focus = match self.focus {
                    Pane::Deployments => Pane::Log,
                    Pane::Log => Pane::Deployments,
                }
            }
            KeyCode::Enter if self.focus == Pane::Deployments => self.focus = Pane::Log,
            KeyCode::Esc if self.focus == Pane::Log => self.focus = Pane::Deployments,
            KeyCode::Char('/') => self.open_input(InputKind::Search),
            KeyCode::Char('f') => self.open_input(InputKind::Filter),
            KeyCode::Char('n') => self.jump_to_match(true),
            KeyCode::Char('N') => self.jump_to_match(false),
            KeyCode::Char(']') => self.jump_to_problem(true),
            KeyCode::Char('[') => self.jump_to_problem(false),
            KeyCode::Char('w') => self.wrap = !self.wrap,
            KeyCode::Char('t') => self.timestamps = !self.timestamps,
            KeyCode::Char('s') => self.save(),
            KeyCode::End | KeyCode::Char('G') => self.scroll = Scroll::Follow,
            KeyCode::Home | KeyCode::Char('g') => self.scroll_to(0),
            KeyCode::PageUp => self.scroll_by(-self.page()),
            KeyCode::PageDown => self.scroll_by(self.page()),
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            _ => return false,
        }
        true
    }

    /// Keys of the alert feed.
    fn on_alerts_key(&mut self, key: KeyEvent) -> bool {
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => self.move_alert(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_alert(1),
            KeyCode::Char('a') => match self.selected_alert_record() {
                Some(record) if !matches!(record.state, AlertState::Resolved { .. }) => {
                    self.open_input(InputKind::AckNote)
                }
                Some(_) => self.notice = Some("This alert is resolved".to_owned()),
                None => {}
            },
            KeyCode::Char('r') => {
                if let Some(fingerprint) = self.selected_alert.clone() {
                    self.send_alert_command(AlertCommand::Resolve { fingerprint });
                }
            }
            KeyCode::Enter => self.jump_to_alert_line(),
            _ => return false,
        }
        true
    }

    fn on_breakglass_key(&mut self, key: KeyEvent) -> bool {
        match self.breakglass.on_key(key, self.now()) {
            Some(Ask::Justification) => self.open_input(InputKind::Justification),
            Some(Ask::Nothing) => {}
            None => return false,
        }
        true
    }

    /// Where the selected alert is in the feed (the newest when none was chosen).
    pub fn selected_alert_index(&self) -> Option<usize> {
        match &self.selected_alert {
            Some(fp) => self.alerts.iter().position(|a| &a.fingerprint == fp),
            None => (!self.alerts.is_empty()).then_some(0),
        }
    }

    /// The selected alert (the newest when none was chosen).
    pub fn selected_alert_record(&self) -> Option<&AlertRecord> {
        self.selected_alert_index().map(|i| &self.alerts[i])
    }

    fn move_alert(&mut self, delta: isize) {
        if let Some(next) = step(self.alerts.len(), self.selected_alert_index(), delta) {
            self.selected_alert = Some(self.alerts[next].fingerprint.clone());
        }
    }

    fn send_alert_command(&mut self, command: AlertCommand) {
        let sent = self
            .alert_commands
            .as_ref()
            .is_some_and(|commands| commands.try_send(command).is_ok());
        if !sent {
            self.notice = Some("Alerting is not running here (see --alerts)".to_owned());
        }
    }

    /// Shows the selected alert's deployment log at the line that fired it.
    fn jump_to_alert_line(&mut self) {
        let Some(record) = self.selected_alert_record().cloned() else {
            return;
        };
        let Some(build) = record.build_id else {
            self.notice = Some("This alert is not about a deployment".to_owned());
            return;
        };
        self.screen = Screen::Deployments;
        self.focus = Pane::Log;
        self.selected = Some(build);
        self.filter = None;
        let line = (0..self.view_len())
            .find(|&i| self.view_line(i).is_some_and(|l| l.ts >= record.entry_ts));
        match line {
            Some(index) => self.scroll_to(index),
            None => self.notice = Some("That line is no longer in the buffer".to_owned()),
        }
    }

    fn page(&self) -> isize {
        (self.log_height.get() as isize - 1).max(1)
    }

    fn move_by(&mut self, delta: isize) {
        match self.focus {
            Pane::Log => self.scroll_by(delta),
            Pane::Deployments => {
                let count = self.snapshot.deployments.len();
                let Some(next) = step(count, self.selected_index(), delta) else {
                    return;
                };
                let id = self.snapshot.deployments[next].uid.clone();
                if self.selected.as_ref() != Some(&id) {
                    self.selected = Some(id);
                    self.scroll = Scroll::Follow;
                    self.refresh_view();
                }
            }
        }
    }

    /// The first line shown when following (the pane ends with the last line).
    fn following_top(&self) -> usize {
        self.view_len()
            .saturating_sub(self.log_height.get() as usize)
    }

    /// Scrolls the log; scrolling up leaves follow mode, reaching the end resumes it.
    pub fn scroll_by(&mut self, delta: isize) {
        let last_top = self.following_top();
        let top = self.top_index().unwrap_or(last_top) as isize;
        let next = (top + delta).max(0) as usize;
        if next >= last_top {
            self.scroll = Scroll::Follow;
        } else {
            self.scroll_to(next);
        }
    }

    fn scroll_to(&mut self, index: usize) {
        self.scroll = match self.view_line(index) {
            Some(line) => Scroll::At(line.seq),
            None => Scroll::Follow,
        };
    }

    fn open_input(&mut self, kind: InputKind) {
        let current = match kind {
            InputKind::Filter => self.filter.as_ref().map(|f| f.source.clone()),
            InputKind::Search => self.search.as_ref().map(|f| f.source.clone()),
            InputKind::AckNote | InputKind::Justification | InputKind::Confirmation => None,
        };
        let mut text = TextArea::new(vec![current.unwrap_or_default()]);
        text.move_cursor(ratatui_textarea::CursorMove::End);
        self.input = Some(Input {
            kind,
            text,
            error: None,
        });
    }

    fn on_input_key(&mut self, key: KeyEvent) {
        let Some(input) = self.input.as_mut() else {
            return;
        };
        match key.code {
            KeyCode::Esc => self.input = None,
            KeyCode::Enter => self.submit_input(),
            // One line only: no new lines, no tab characters.
            KeyCode::Tab | KeyCode::BackTab => {}
            _ => {
                input.text.input(key);
                if input.kind.is_pattern() {
                    input.error = LineFilter::parse(&input.line()).err();
                }
            }
        }
    }

    /// Enter in the input box: acts on its text (a bad pattern stays open with its error).
    fn submit_input(&mut self) {
        let Some(mut input) = self.input.take() else {
            return;
        };
        let text = input.line();
        match input.kind {
            InputKind::Filter | InputKind::Search => match LineFilter::parse(&text) {
                Err(err) => {
                    input.error = Some(err);
                    self.input = Some(input);
                }
                Ok(parsed) if input.kind == InputKind::Filter => {
                    self.filter = parsed;
                    self.scroll = Scroll::Follow;
                    self.refresh_view();
                }
                Ok(parsed) => {
                    self.search = parsed;
                    self.jump_to_match(true);
                }
            },
            InputKind::AckNote => {
                if let Some(fingerprint) =
                    self.selected_alert_record().map(|r| r.fingerprint.clone())
                {
                    let note = Some(text).filter(|n| !n.trim().is_empty());
                    self.send_alert_command(AlertCommand::Acknowledge { fingerprint, note });
                }
            }
            InputKind::Justification => {
                self.breakglass.justified(&text);
                self.open_input(InputKind::Confirmation);
            }
            InputKind::Confirmation => self.breakglass.confirmed(&text),
        }
    }

    /// Moves to the next (or previous) line matching the search, from the current position.
    fn jump_to_match(&mut self, forward: bool) {
        let Some(search) = self.search.clone() else {
            self.notice = Some("No search: press / to search".to_owned());
            return;
        };
        self.jump(forward, |line| search.keeps(line), "No more matches");
    }

    fn jump_to_problem(&mut self, forward: bool) {
        self.jump(forward, LogLine::is_problem, "No more errors or warnings");
    }

    fn jump(&mut self, forward: bool, wanted: impl Fn(&LogLine) -> bool, none: &str) {
        let len = self.view_len();
        if len == 0 {
            return;
        }
        let from = self.top_index().unwrap_or(self.following_top());
        let found = if forward {
            (from + 1..len).find(|&i| self.view_line(i).is_some_and(&wanted))
        } else {
            (0..from)
                .rev()
                .find(|&i| self.view_line(i).is_some_and(&wanted))
        };
        match found {
            Some(index) => self.scroll_to(index),
            None => self.notice = Some(none.to_owned()),
        }
    }

    /// Writes the shown lines (filter applied) of the selected deployment to a file.
    fn save(&mut self) {
        let Some(id) = self.selected.clone() else {
            return;
        };
        let stamp = crate::log::entry::rfc3339(now_ms()).replace([':', '.'], "-");
        let path = PathBuf::from(format!("shiplog-{id}-{stamp}.log"));
        let text: String = (0..self.view_len())
            .filter_map(|i| self.view_line(i))
            .map(|l| format!("{}\n", l.text))
            .collect();
        self.notice = Some(match std::fs::write(&path, text) {
            Ok(()) => format!("Saved {} lines to {}", self.view_len(), path.display()),
            Err(err) => format!("Could not save to {}: {err}", path.display()),
        });
    }

    /// Brings the filtered view up to date with the selection, the filter and new lines.
    fn refresh_view(&mut self) {
        let Some(filter) = self.filter.clone() else {
            return;
        };
        let selected = self.selected.clone().unwrap_or_default();
        if self.view.deployment != selected || self.view.filter.as_deref() != Some(&filter.source) {
            self.view = FilteredView {
                deployment: selected.clone(),
                filter: Some(filter.source.clone()),
                ..FilteredView::default()
            };
        }
        let Some(buffer) = self.logs.get(&selected) else {
            return;
        };
        let first = buffer.first_seq();
        let stale = self.view.seqs.partition_point(|s| *s < first);
        self.view.seqs.drain(..stale);
        for line in buffer.since(self.view.scanned_to) {
            if filter.keeps(line) {
                self.view.seqs.push(line.seq);
            }
        }
        self.view.scanned_to = buffer.next_seq();
    }
}

/// The row `delta` away from `current` (the first when none is chosen) in a list of `len`
/// rows, kept within it; `None` for an empty list.
pub(crate) fn step(len: usize, current: Option<usize>, delta: isize) -> Option<usize> {
    let last = len.checked_sub(1)? as isize;
    Some((current.unwrap_or(0) as isize + delta).clamp(0, last) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vercel::ReadyState;
    use crossterm::event::KeyEvent;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn deployment(uid: &str) -> DeploymentSummary {
        serde_json::from_value(serde_json::json!({
            "uid": uid, "name": "storefront", "readyState": "BUILDING", "created": 1
        }))
        .expect("summary")
    }

    fn app_with_lines(n: usize) -> App {
        let mut app = App::new(Source::Demo, "embedded", 100);
        app.apply_snapshot(EngineSnapshot {
            deployments: vec![deployment("dpl_a"), deployment("dpl_b")],
            ..EngineSnapshot::default()
        });
        let entries: Vec<Arc<LogEntry>> = (0..n)
            .map(|i| {
                let severity = if i % 10 == 9 {
                    Severity::Error
                } else {
                    Severity::Info
                };
                Arc::new(
                    LogEntry::at(
                        i as i64,
                        Tier::Build,
                        severity,
                        "stdout",
                        format!("line {i}"),
                    )
                    .with_build("dpl_a"),
                )
            })
            .collect();
        app.ingest(&entries);
        app.log_height.set(10);
        app
    }

    fn type_text(app: &mut App, text: &str) {
        for c in text.chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
    }

    #[test]
    fn the_newest_deployment_is_selected_and_lines_are_filed_by_deployment() {
        let app = app_with_lines(5);
        assert_eq!(app.selected.as_deref(), Some("dpl_a"));
        assert_eq!(app.view_len(), 5);
        assert_eq!(app.rows()[0].lines, 5);
        assert_eq!(app.rows()[1].lines, 0);
        assert_eq!(app.rows()[0].deployment.state(), ReadyState::Building);
    }

    #[test]
    fn scrolling_up_pauses_follow_and_end_resumes_it() {
        let mut app = app_with_lines(50);
        app.focus = Pane::Log;
        assert_eq!(app.scroll, Scroll::Follow);
        app.on_key(key(KeyCode::Up));
        assert_eq!(app.top_index(), Some(39));
        // New lines do not move a paused view.
        app.ingest(&[Arc::new(
            LogEntry::at(99, Tier::Build, Severity::Info, "stdout", "late").with_build("dpl_a"),
        )]);
        assert_eq!(app.top_index(), Some(39));
        app.on_key(key(KeyCode::PageDown));
        assert_eq!(app.scroll, Scroll::Follow, "reaching the end follows again");
        app.on_key(key(KeyCode::Home));
        assert_eq!(app.top_index(), Some(0));
        app.on_key(key(KeyCode::End));
        assert_eq!(app.scroll, Scroll::Follow);
    }

    #[test]
    fn a_filter_narrows_the_view_and_a_bad_pattern_is_reported() {
        let mut app = app_with_lines(30);
        app.on_key(key(KeyCode::Char('f')));
        type_text(&mut app, "line (1");
        let error = app.input.as_ref().and_then(|i| i.error.clone());
        assert!(
            error.is_some_and(|e| e.contains("unclosed")),
            "{:?}",
            app.input.as_ref().map(|i| &i.error)
        );
        app.on_key(key(KeyCode::Enter));
        assert!(app.input.is_some(), "a bad pattern is not applied");
        type_text(&mut app, ")");
        app.on_key(key(KeyCode::Enter));
        assert!(app.input.is_none());
        let shown: Vec<&str> = (0..app.view_len())
            .filter_map(|i| app.view_line(i))
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(
            shown,
            [
                "line 1", "line 10", "line 11", "line 12", "line 13", "line 14", "line 15",
                "line 16", "line 17", "line 18", "line 19"
            ]
        );
        // Exclusion, and new lines pass through the same filter.
        app.on_key(key(KeyCode::Char('f')));
        for _ in 0..10 {
            app.on_key(key(KeyCode::Backspace));
        }
        type_text(&mut app, "!line [0-9]$");
        app.on_key(key(KeyCode::Enter));
        assert_eq!(app.view_len(), 20);
        app.ingest(&[Arc::new(
            LogEntry::at(1, Tier::Build, Severity::Info, "stdout", "line 5").with_build("dpl_a"),
        )]);
        assert_eq!(app.view_len(), 20);
    }

    #[test]
    fn search_and_problem_jumps_move_the_view() {
        let mut app = app_with_lines(40);
        app.on_key(key(KeyCode::Char('/')));
        type_text(&mut app, "line 3");
        app.on_key(key(KeyCode::Enter));
        // Following shows 30..39; the next match after the top (30) is 31.
        assert_eq!(
            app.view_line(app.top_index().unwrap_or(99))
                .map(|l| l.text.as_str()),
            Some("line 31")
        );
        app.on_key(key(KeyCode::Char('N')));
        assert_eq!(app.top_index(), Some(30));
        app.on_key(key(KeyCode::Char('N')));
        assert_eq!(app.top_index(), Some(3));
        app.on_key(key(KeyCode::Char(']')));
        assert_eq!(
            app.view_line(app.top_index().unwrap_or(0))
                .map(|l| l.text.as_str()),
            Some("line 9")
        );
        app.on_key(key(KeyCode::Char('[')));
        assert!(app.notice.is_some(), "nothing before line 9");
    }

    #[test]
    fn selection_moves_and_resets_the_view() {
        let mut app = app_with_lines(5);
        app.focus = Pane::Log;
        app.on_key(key(KeyCode::Up));
        app.on_key(key(KeyCode::Tab));
        assert_eq!(app.focus, Pane::Deployments);
        app.on_key(key(KeyCode::Char('j')));
        assert_eq!(app.selected.as_deref(), Some("dpl_b"));
        assert_eq!(app.scroll, Scroll::Follow);
        assert_eq!(app.view_len(), 0);
        app.on_key(key(KeyCode::Char('j')));
        assert_eq!(
            app.selected.as_deref(),
            Some("dpl_b"),
            "stays on the last row"
        );
    }

    #[test]
    fn help_opens_and_any_key_closes_it_and_q_quits() {
        let mut app = app_with_lines(1);
        app.on_key(key(KeyCode::Char('?')));
        assert!(app.help);
        app.on_key(key(KeyCode::Char('x')));
        assert!(!app.help && !app.should_quit);
        app.on_key(key(KeyCode::Char('q')));
        assert!(app.should_quit);
    }

    fn record(fp: &str, state: AlertState) -> AlertRecord {
        AlertRecord {
            fingerprint: fp.to_owned(),
            rule: "deploy_failed".to_owned(),
            severity: crate::alert::AlertSeverity::High,
            channels: vec![],
            summary: "Deployment is ERROR".to_owned(),
            deployment_id: None,
            build_id: Some("dpl_a".to_owned()),
            entry_ts: 25,
            first_seen: 1,
            last_seen: 1,
            count: 1,
            state,
            deliveries: Default::default(),
        }
    }

    #[test]
    fn the_alert_feed_acknowledges_resolves_and_jumps_to_the_line() {
        let mut app = app_with_lines(40);
        let (commands, mut sent) = mpsc::channel(8);
        app.alert_commands = Some(commands);
        app.alerts = vec![
            record("new", AlertState::Firing),
            record("old", AlertState::Firing),
        ];
        app.on_key(key(KeyCode::Char('2')));
        assert_eq!(app.screen, Screen::Alerts);
        app.on_key(key(KeyCode::Down));
        assert_eq!(app.selected_alert.as_deref(), Some("old"));
        app.on_key(key(KeyCode::Char('a')));
        assert_eq!(app.input.as_ref().map(|i| i.kind), Some(InputKind::AckNote));
        type_text(&mut app, "on it (rolling back)");
        app.on_key(key(KeyCode::Enter));
        assert_eq!(
            sent.try_recv().ok(),
            Some(AlertCommand::Acknowledge {
                fingerprint: "old".to_owned(),
                note: Some("on it (rolling back)".to_owned())
            }),
            "a note is free text, not a pattern"
        );
        app.on_key(key(KeyCode::Char('r')));
        assert_eq!(
            sent.try_recv().ok(),
            Some(AlertCommand::Resolve {
                fingerprint: "old".to_owned()
            })
        );
        app.on_key(key(KeyCode::Enter));
        assert_eq!((app.screen, app.focus), (Screen::Deployments, Pane::Log));
        let top = app
            .top_index()
            .and_then(|i| app.view_line(i))
            .map(|l| l.text.clone());
        assert_eq!(
            top.as_deref(),
            Some("line 25"),
            "the log opens at the line that fired it"
        );
    }

    #[test]
    fn buffers_are_bounded_per_deployment() {
        let app = app_with_lines(250);
        let buffer = app.selected_buffer().expect("buffer");
        assert_eq!(buffer.len(), 100);
        assert_eq!(buffer.dropped(), 150);
    }
}
