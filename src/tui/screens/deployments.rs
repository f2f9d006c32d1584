//! The deployments screen's state: the list of deployments as the streaming engine last
//! published it, each deployment's buffered build log, and the log pane's view of the chosen one
//! (following or scrolled, filtered, searched, wrapped).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent};
use tokio::sync::mpsc;

use super::line_filter::LineFilter;
use super::runtime::RuntimeLogs;
use super::{step, Ask};
use crate::actions::{ActionKind, Finished};
use crate::clock::now_ms;
use crate::log::{LogEntry, Tier};
use crate::stream::engine::{EngineSnapshot, StreamCommand};
use crate::stream::StreamHealth;
use crate::tui::buffer::{LogBuffer, LogLine};
use crate::tui::input::InputKind;
use crate::vercel::{DeploymentSummary, ReadyState};

/// Runtime rows kept per deployment: production deployments' rows arrive all the time.
const RUNTIME_ROWS_KEPT: usize = 5_000;

/// The two panes of the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Deployments,
    Log,
}

/// The log pane's position: following the end, or a fixed top line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scroll {
    Follow,
    /// The sequence number of the top line.
    At(u64),
}

/// The lines of the chosen deployment that pass the filter, kept up to date incrementally.
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

#[derive(Debug)]
pub struct DeploymentsScreen {
    pub snapshot: EngineSnapshot,
    pub logs: HashMap<String, LogBuffer>,
    pub buffer_capacity: usize,
    /// The chosen deployment's Vercel id.
    pub selected: Option<String>,
    pub focus: Pane,
    pub scroll: Scroll,
    pub wrap: bool,
    pub timestamps: bool,
    pub filter: Option<LineFilter>,
    pub search: Option<LineFilter>,
    /// The log pane's height (lines) at the last draw, for paging.
    pub log_height: u16,
    /// How far behind Vercel the last build line arrived.
    pub lag_ms: Option<i64>,
    pub runtime: RuntimeLogs,
    view: FilteredView,
    loads: Loads,
}

/// Where to ask for a finished deployment's log, and whose were asked for.
#[derive(Debug, Default)]
struct Loads {
    loader: Option<mpsc::Sender<StreamCommand>>,
    requested: HashSet<String>,
}

impl DeploymentsScreen {
    pub fn new(buffer_capacity: usize) -> Self {
        DeploymentsScreen {
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
            log_height: 20,
            lag_ms: None,
            runtime: RuntimeLogs::new(buffer_capacity.min(RUNTIME_ROWS_KEPT)),
            view: FilteredView::default(),
            loads: Loads::default(),
        }
    }

    /// Finished deployments' logs are read when they are chosen (the engine follows only
    /// running builds by itself).
    pub fn connect(&mut self, loader: mpsc::Sender<StreamCommand>) {
        self.loads.loader = Some(loader);
        self.load_chosen();
    }

    /// Asks for the chosen deployment's log when it has ended and none is here.
    fn load_chosen(&mut self) {
        let Some(loader) = &self.loads.loader else {
            return;
        };
        let Some(id) = self.selected.clone() else {
            return;
        };
        let ended = self.summary(&id).is_some_and(|d| d.state().is_terminal());
        let wanted = ended && !self.logs.contains_key(&id) && !self.loads.requested.contains(&id);
        if wanted && loader.try_send(StreamCommand::Load(id.clone())).is_ok() {
            self.loads.requested.insert(id);
        }
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
            self.load_chosen();
        }
        self.refresh_view();
    }

    /// Files the entries of a batch that belong to a deployment into its buffer.
    pub fn ingest(&mut self, entries: &[Arc<LogEntry>], now: i64) {
        for entry in entries {
            let Some(id) = entry.build_id.as_deref() else {
                continue;
            };
            if entry.tier == Tier::Runtime {
                self.runtime.ingest(id, entry);
                continue;
            }
            // The id is copied only for a deployment's first line, not for every line.
            if !self.logs.contains_key(id) {
                let buffer = LogBuffer::new(self.buffer_capacity);
                self.logs.insert(id.to_owned(), buffer);
            }
            if let Some(buffer) = self.logs.get_mut(id) {
                buffer.push_entry(entry);
            }
            if entry.tier == Tier::Build {
                self.lag_ms = Some((now - entry.ts).max(0));
            }
        }
        self.refresh_view();
    }

    /// An action finished: the list shows its effect before the engine's next look (a cancel
    /// ends the build now; a promote or rollback moves the production mark).
    pub fn acted(&mut self, finished: &Finished) {
        let plan = &finished.plan;
        if matches!(plan.kind, ActionKind::Promote | ActionKind::Rollback) {
            self.snapshot
                .production
                .insert(plan.project_id.clone(), plan.deployment.clone());
        }
        if plan.kind != ActionKind::Cancel {
            return;
        }
        let listed = self
            .snapshot
            .deployments
            .iter_mut()
            .find(|d| d.uid == finished.plan.deployment);
        if let Some(deployment) = listed {
            deployment.ready_state = Some(ReadyState::Canceled);
            deployment.state = None;
        }
    }

    // ---- what the screen shows ------------------------------------------------------------

    /// Does production of its project serve this deployment (as last looked up)?
    pub fn serves_production(&self, deployment: &DeploymentSummary) -> bool {
        deployment
            .project_id
            .as_ref()
            .and_then(|p| self.snapshot.production.get(p))
            .is_some_and(|id| *id == deployment.uid)
    }

    /// The listed deployment `id`.
    pub fn summary(&self, id: &str) -> Option<&DeploymentSummary> {
        self.snapshot.deployments.iter().find(|d| d.uid == id)
    }

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

    /// The log the pane shows: the chosen deployment's build or runtime log.
    pub fn selected_buffer(&self) -> Option<&LogBuffer> {
        shown_log(&self.logs, &self.runtime, self.selected.as_deref()?)
    }

    /// Switches the pane between the build log and the runtime log.
    fn toggle_source(&mut self) {
        self.runtime.shown = !self.runtime.shown;
        self.follow_runtime();
        self.scroll = Scroll::Follow;
        self.refresh_view();
    }

    /// While the runtime log is shown, the chosen deployment's runtime logs are followed (and
    /// no one's once it is hidden; showing it again tries again).
    fn follow_runtime(&mut self) {
        match (self.runtime.shown, self.selected.clone()) {
            (true, Some(id)) => self.runtime.follow(&id),
            (false, _) => self.runtime.stop(),
            (true, None) => {}
        }
    }

    /// A new quick filter for runtime rows.
    pub fn set_only(&mut self, text: &str) -> Result<(), String> {
        self.runtime.set_only(text)?;
        self.scroll = Scroll::Follow;
        self.refresh_view();
        Ok(())
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

    /// The text of the filter or the search, to edit it again.
    pub fn pattern(&self, kind: InputKind) -> String {
        let pattern = match kind {
            InputKind::Filter => self.filter.as_ref(),
            InputKind::Search => self.search.as_ref(),
            _ => None,
        };
        pattern.map(|p| p.source.clone()).unwrap_or_default()
    }

    // ---- keys -----------------------------------------------------------------------------

    pub fn on_key(&mut self, key: KeyEvent) -> Option<Ask> {
        let ask = match key.code {
            KeyCode::Tab | KeyCode::BackTab => {
                self.focus = match self.focus {
                    Pane::Deployments => Pane::Log,
                    Pane::Log => Pane::Deployments,
                };
                Ask::Nothing
            }
            KeyCode::Enter if self.focus == Pane::Deployments => {
                self.focus = Pane::Log;
                Ask::Nothing
            }
            KeyCode::Esc if self.focus == Pane::Log => {
                self.focus = Pane::Deployments;
                Ask::Nothing
            }
            KeyCode::Char('/') => self.edit_pattern(InputKind::Search),
            KeyCode::Char('f') => self.edit_pattern(InputKind::Filter),
            KeyCode::Char('n') => self.jump_to_match(true),
            KeyCode::Char('N') => self.jump_to_match(false),
            KeyCode::Char(']') => self.jump_to_problem(true),
            KeyCode::Char('[') => self.jump_to_problem(false),
            KeyCode::Char('s') => self.save(),
            KeyCode::Char('r') => {
                self.toggle_source();
                Ask::Nothing
            }
            KeyCode::Char('o') if self.runtime.shown => Ask::Input {
                kind: InputKind::Only,
                initial: self
                    .runtime
                    .only
                    .as_ref()
                    .map(|(text, _)| text.clone())
                    .unwrap_or_default(),
            },
            KeyCode::Char('x') => match &self.selected {
                Some(id) => Ask::Act {
                    deployment: id.clone(),
                },
                None => Ask::Nothing,
            },
            _ => return self.on_view_key(key),
        };
        Some(ask)
    }

    /// Keys that only move or change how the log is shown.
    fn on_view_key(&mut self, key: KeyEvent) -> Option<Ask> {
        match key.code {
            KeyCode::Char('w') => self.wrap = !self.wrap,
            KeyCode::Char('t') => self.timestamps = !self.timestamps,
            KeyCode::End | KeyCode::Char('G') => self.scroll = Scroll::Follow,
            KeyCode::Home | KeyCode::Char('g') => self.scroll_to(0),
            KeyCode::PageUp => self.scroll_by(-self.page()),
            KeyCode::PageDown => self.scroll_by(self.page()),
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            _ => return None,
        }
        Some(Ask::Nothing)
    }

    fn edit_pattern(&self, kind: InputKind) -> Ask {
        Ask::Input {
            kind,
            initial: self.pattern(kind),
        }
    }

    /// A new filter: the view shows only the lines it keeps, following the end.
    pub fn set_filter(&mut self, filter: Option<LineFilter>) {
        self.filter = filter;
        self.scroll = Scroll::Follow;
        self.refresh_view();
    }

    /// A new search: the view moves to its next match.
    pub fn set_search(&mut self, search: Option<LineFilter>) -> Ask {
        self.search = search;
        self.jump_to_match(true)
    }

    /// Shows `build_id`'s log, unfiltered, from the first line at or after `at_ms`.
    pub fn open_at(&mut self, build_id: String, at_ms: i64) -> Ask {
        self.focus = Pane::Log;
        self.selected = Some(build_id);
        self.filter = None;
        let line = (0..self.view_len()).find(|&i| self.view_line(i).is_some_and(|l| l.ts >= at_ms));
        match line {
            Some(index) => {
                self.scroll_to(index);
                Ask::Nothing
            }
            None => Ask::Notice("That line is no longer in the buffer".to_owned()),
        }
    }

    fn page(&self) -> isize {
        (self.log_height as isize - 1).max(1)
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
                    self.load_chosen();
                    self.follow_runtime();
                    self.refresh_view();
                }
            }
        }
    }

    /// The first line shown when following (the pane ends with the last line).
    fn following_top(&self) -> usize {
        self.view_len().saturating_sub(self.log_height as usize)
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

    /// Moves to the next (or previous) line matching the search, from the current position.
    fn jump_to_match(&mut self, forward: bool) -> Ask {
        let Some(search) = self.search.clone() else {
            return Ask::Notice("No search: press / to search".to_owned());
        };
        self.jump(forward, |line| search.keeps(line), "No more matches")
    }

    fn jump_to_problem(&mut self, forward: bool) -> Ask {
        self.jump(forward, LogLine::is_problem, "No more errors or warnings")
    }

    fn jump(&mut self, forward: bool, wanted: impl Fn(&LogLine) -> bool, none: &str) -> Ask {
        let len = self.view_len();
        if len == 0 {
            return Ask::Nothing;
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
            Some(index) => {
                self.scroll_to(index);
                Ask::Nothing
            }
            None => Ask::Notice(none.to_owned()),
        }
    }

    /// Writes the shown lines (filter applied) of the chosen deployment to a file.
    fn save(&self) -> Ask {
        let Some(id) = &self.selected else {
            return Ask::Nothing;
        };
        let stamp = crate::log::entry::rfc3339(now_ms()).replace([':', '.'], "-");
        let path = PathBuf::from(format!("shiplog-{id}-{stamp}.log"));
        let text: String = (0..self.view_len())
            .filter_map(|i| self.view_line(i))
            .map(|l| format!("{}\n", l.text))
            .collect();
        Ask::Notice(match std::fs::write(&path, text) {
            Ok(()) => format!("Saved {} lines to {}", self.view_len(), path.display()),
            Err(err) => format!("Could not save to {}: {err}", path.display()),
        })
    }

    /// Brings the filtered view up to date with the selection, the filter and new lines.
    fn refresh_view(&mut self) {
        let Some(filter) = self.filter.clone() else {
            return;
        };
        // The view is of one log: a deployment's build log, or its runtime log as the quick
        // filter last rebuilt it.
        let shown = if self.runtime.shown {
            format!(
                "runtime {} {}",
                self.runtime.generation,
                self.selected.as_deref().unwrap_or_default()
            )
        } else {
            self.selected.clone().unwrap_or_default()
        };
        if self.view.deployment != shown || self.view.filter.as_deref() != Some(&filter.source) {
            self.view = FilteredView {
                deployment: shown,
                filter: Some(filter.source.clone()),
                ..FilteredView::default()
            };
        }
        let selected = self.selected.as_deref().unwrap_or_default();
        let Some(buffer) = shown_log(&self.logs, &self.runtime, selected) else {
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

/// The log of deployment `id` the pane shows: its build log, or its runtime log.
fn shown_log<'a>(
    logs: &'a HashMap<String, LogBuffer>,
    runtime: &'a RuntimeLogs,
    id: &str,
) -> Option<&'a LogBuffer> {
    if runtime.shown {
        runtime.get(id).map(|log| &log.lines)
    } else {
        logs.get(id)
    }
}
