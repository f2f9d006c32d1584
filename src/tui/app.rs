//! The dashboard's shared state and key routing: which screen is shown, the input box, the help
//! overlay, warnings and notices. Each screen owns its own state and keys (see `screens`);
//! rendering reads it all (see `ui`); nothing here draws.

use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::input::{Input, InputKind};
use super::screens::actions::ActionsPanel;
use super::screens::alerts::AlertsScreen;
use super::screens::breakglass::BreakglassScreen;
use super::screens::deployments::DeploymentsScreen;
use super::screens::line_filter::LineFilter;
use super::screens::Ask;
use crate::alert::queue::worker::QueueSnapshot;
use crate::clock::now_ms;
use crate::log::{LogEntry, Severity};
use crate::stream::engine::EngineSnapshot;

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

pub struct App {
    pub screen: Screen,
    pub deployments: DeploymentsScreen,
    pub alerts: AlertsScreen,
    /// The delivery queue as its worker last published it (the queue screen only shows it).
    pub queue: QueueSnapshot,
    pub breakglass: BreakglassScreen,
    /// Actions on deployments: the one being taken, and the activity panel.
    pub actions: ActionsPanel,
    pub source: Source,
    pub backend: String,
    pub input: Option<Input>,
    pub help: bool,
    /// Warnings for the status bar (bad theme file, API errors, store trouble).
    pub warnings: Vec<String>,
    /// A short-lived message ("saved to ...").
    pub notice: Option<String>,
    pub should_quit: bool,
    /// A fixed "now" (ms) instead of the clock, so that rendered ages are reproducible in tests.
    pub frozen_now: Option<i64>,
}

impl App {
    pub fn new(source: Source, backend: impl Into<String>, buffer_capacity: usize) -> Self {
        App {
            screen: Screen::Deployments,
            deployments: DeploymentsScreen::new(buffer_capacity),
            alerts: AlertsScreen::default(),
            queue: QueueSnapshot::default(),
            breakglass: BreakglassScreen::default(),
            actions: ActionsPanel::default(),
            source,
            backend: backend.into(),
            input: None,
            help: false,
            warnings: Vec::new(),
            notice: None,
            should_quit: false,
            frozen_now: None,
        }
    }

    /// The current time in ms (see [`App::frozen_now`]).
    pub fn now(&self) -> i64 {
        self.frozen_now.unwrap_or_else(now_ms)
    }

    // ---- engine input -------------------------------------------------------------------

    pub fn apply_snapshot(&mut self, snapshot: EngineSnapshot) {
        self.deployments.apply_snapshot(snapshot);
    }

    /// Files a batch of entries from the logger: build lines into the deployments' buffers,
    /// warnings about nothing in particular into the status bar.
    pub fn ingest(&mut self, entries: &[Arc<LogEntry>]) {
        for entry in entries {
            if entry.build_id.is_none() && entry.severity >= Severity::Warn {
                self.warn(entry.message.clone());
            }
        }
        let now = self.now();
        self.deployments.ingest(entries, now);
    }

    pub fn warn(&mut self, message: String) {
        if !self.warnings.contains(&message) {
            self.warnings.push(message);
        }
        if self.warnings.len() > 5 {
            self.warnings.remove(0);
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
        if self.actions.is_open() {
            let ask = self.actions.on_key(key);
            self.answer(ask);
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
            _ => {
                let now = self.now();
                let ask = match self.screen {
                    Screen::Deployments => self.deployments.on_key(key),
                    Screen::Alerts => self.alerts.on_key(key),
                    // The queue screen has nothing to move or open.
                    Screen::Queue => None,
                    Screen::Breakglass => self.breakglass.on_key(key, now),
                };
                match ask {
                    Some(ask) => self.answer(ask),
                    None => return false,
                }
            }
        }
        true
    }

    /// Does what a screen asked for.
    fn answer(&mut self, ask: Ask) {
        match ask {
            Ask::Nothing => {}
            Ask::Input { kind, initial } => self.input = Some(Input::new(kind, initial)),
            Ask::Notice(text) => self.notice = Some(text),
            Ask::OpenLog { build_id, at_ms } => {
                self.screen = Screen::Deployments;
                let ask = self.deployments.open_at(build_id, at_ms);
                self.answer(ask);
            }
            Ask::Act { deployment } => {
                let ask = match self.deployments.summary(&deployment) {
                    Some(summary) => self.actions.open(summary),
                    None => Ask::Notice(format!("{deployment} is not in the list")),
                };
                self.answer(ask);
            }
        }
    }

    /// The actions engine answered: say how it went, and show a finished cancel at once.
    pub fn on_action_answer(&mut self, answer: crate::actions::desk::ActionAnswer) {
        let (ask, finished) = self.actions.on_answer(answer);
        if let Some(finished) = finished {
            self.deployments.acted(&finished);
        }
        self.answer(ask);
    }

    fn on_input_key(&mut self, key: KeyEvent) {
        let Some(input) = self.input.as_mut() else {
            return;
        };
        match key.code {
            KeyCode::Esc => {
                let kind = input.kind;
                self.input = None;
                if matches!(kind, InputKind::ProjectName | InputKind::Reason) {
                    let ask = self.actions.typing_cancelled();
                    self.answer(ask);
                }
            }
            KeyCode::Enter => self.submit_input(),
            // One line only: no new lines, no tab characters.
            KeyCode::Tab | KeyCode::BackTab => {}
            _ => {
                input.text.input(key);
                if input.kind.is_pattern() {
                    input.error = LineFilter::parse(&input.line())
                        .err()
                        .map(|e| e.to_string());
                }
            }
        }
    }

    /// Enter in the input box: hands its text to the screen it is for (a bad pattern stays open
    /// with its error).
    fn submit_input(&mut self) {
        let Some(mut input) = self.input.take() else {
            return;
        };
        let text = input.line();
        let ask = match input.kind {
            InputKind::Filter | InputKind::Search => match LineFilter::parse(&text) {
                Err(err) => {
                    input.error = Some(err.to_string());
                    self.input = Some(input);
                    return;
                }
                Ok(parsed) if input.kind == InputKind::Filter => {
                    self.deployments.set_filter(parsed);
                    Ask::Nothing
                }
                Ok(parsed) => self.deployments.set_search(parsed),
            },
            InputKind::Only => match self.deployments.set_only(&text) {
                Err(err) => {
                    input.error = Some(err);
                    self.input = Some(input);
                    return;
                }
                Ok(()) => Ask::Nothing,
            },
            InputKind::SilenceMatchers | InputKind::SilenceFor | InputKind::SilenceComment => {
                let written = match input.kind {
                    InputKind::SilenceMatchers => self.alerts.silence_matchers(&text),
                    InputKind::SilenceFor => self.alerts.silence_for(&text),
                    _ => self.alerts.silence_comment(&text),
                };
                match written {
                    Ok(ask) => ask,
                    Err(err) => {
                        input.error = Some(err);
                        self.input = Some(input);
                        return;
                    }
                }
            }
            InputKind::AckNote => self.alerts.acknowledge(&text),
            InputKind::Justification => {
                self.breakglass.justified(&text);
                Ask::input(InputKind::Confirmation)
            }
            InputKind::Confirmation => {
                self.breakglass.confirmed(&text);
                Ask::Nothing
            }
            InputKind::ProjectName | InputKind::Reason => self.actions.typed(input.kind, &text),
        };
        self.answer(ask);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::book::{AlertRecord, AlertState};
    use crate::alert::runner::AlertCommand;
    use crate::log::Tier;
    use crate::tui::screens::actions::Step;
    use crate::tui::screens::deployments::{Pane, Scroll};
    use crate::vercel::{DeploymentSummary, ReadyState};
    use crossterm::event::KeyEvent;
    use tokio::sync::mpsc;

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
        app.deployments.log_height = 10;
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
        assert_eq!(app.deployments.selected.as_deref(), Some("dpl_a"));
        assert_eq!(app.deployments.view_len(), 5);
        assert_eq!(app.deployments.rows()[0].lines, 5);
        assert_eq!(app.deployments.rows()[1].lines, 0);
        assert_eq!(
            app.deployments.rows()[0].deployment.state(),
            ReadyState::Building
        );
    }

    #[test]
    fn scrolling_up_pauses_follow_and_end_resumes_it() {
        let mut app = app_with_lines(50);
        app.deployments.focus = Pane::Log;
        assert_eq!(app.deployments.scroll, Scroll::Follow);
        app.on_key(key(KeyCode::Up));
        assert_eq!(app.deployments.top_index(), Some(39));
        // New lines do not move a paused view.
        app.ingest(&[Arc::new(
            LogEntry::at(99, Tier::Build, Severity::Info, "stdout", "late").with_build("dpl_a"),
        )]);
        assert_eq!(app.deployments.top_index(), Some(39));
        app.on_key(key(KeyCode::PageDown));
        assert_eq!(
            app.deployments.scroll,
            Scroll::Follow,
            "reaching the end follows again"
        );
        app.on_key(key(KeyCode::Home));
        assert_eq!(app.deployments.top_index(), Some(0));
        app.on_key(key(KeyCode::End));
        assert_eq!(app.deployments.scroll, Scroll::Follow);
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
        let shown: Vec<&str> = (0..app.deployments.view_len())
            .filter_map(|i| app.deployments.view_line(i))
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
        assert_eq!(app.deployments.view_len(), 20);
        app.ingest(&[Arc::new(
            LogEntry::at(1, Tier::Build, Severity::Info, "stdout", "line 5").with_build("dpl_a"),
        )]);
        assert_eq!(app.deployments.view_len(), 20);
    }

    #[test]
    fn search_and_problem_jumps_move_the_view() {
        let mut app = app_with_lines(40);
        app.on_key(key(KeyCode::Char('/')));
        type_text(&mut app, "line 3");
        app.on_key(key(KeyCode::Enter));
        // Following shows 30..39; the next match after the top (30) is 31.
        assert_eq!(
            app.deployments
                .view_line(app.deployments.top_index().unwrap_or(99))
                .map(|l| l.text.as_str()),
            Some("line 31")
        );
        app.on_key(key(KeyCode::Char('N')));
        assert_eq!(app.deployments.top_index(), Some(30));
        app.on_key(key(KeyCode::Char('N')));
        assert_eq!(app.deployments.top_index(), Some(3));
        app.on_key(key(KeyCode::Char(']')));
        assert_eq!(
            app.deployments
                .view_line(app.deployments.top_index().unwrap_or(0))
                .map(|l| l.text.as_str()),
            Some("line 9")
        );
        app.on_key(key(KeyCode::Char('[')));
        assert!(app.notice.is_some(), "nothing before line 9");
    }

    #[test]
    fn selection_moves_and_resets_the_view() {
        let mut app = app_with_lines(5);
        app.deployments.focus = Pane::Log;
        app.on_key(key(KeyCode::Up));
        app.on_key(key(KeyCode::Tab));
        assert_eq!(app.deployments.focus, Pane::Deployments);
        app.on_key(key(KeyCode::Char('j')));
        assert_eq!(app.deployments.selected.as_deref(), Some("dpl_b"));
        assert_eq!(app.deployments.scroll, Scroll::Follow);
        assert_eq!(app.deployments.view_len(), 0);
        app.on_key(key(KeyCode::Char('j')));
        assert_eq!(
            app.deployments.selected.as_deref(),
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
            rollback_to: None,
            labels: Default::default(),
            muted: None,
        }
    }

    #[test]
    fn acting_on_a_regression_offers_the_deployment_production_left() {
        let mut app = app_with_lines(1);
        let (commands, _sent) = mpsc::channel(8);
        app.actions.connect(commands);
        let mut regression = record("regressed", AlertState::Firing);
        regression.build_id = Some("dpl_a".to_owned());
        regression.rollback_to = Some("dpl_b".to_owned());
        app.alerts.records = vec![regression];
        app.on_key(key(KeyCode::Char('2')));
        app.on_key(key(KeyCode::Char('x')));
        assert!(
            matches!(&app.actions.step, Step::Menu { deployment, .. } if deployment == "dpl_b"),
            "{:?}",
            app.actions.step
        );
    }

    #[test]
    fn the_alert_feed_acknowledges_resolves_and_jumps_to_the_line() {
        let mut app = app_with_lines(40);
        let (commands, mut sent) = mpsc::channel(8);
        app.alerts.connect(commands, mpsc::channel(1).0);
        app.alerts.records = vec![
            record("new", AlertState::Firing),
            record("old", AlertState::Firing),
        ];
        app.on_key(key(KeyCode::Char('2')));
        assert_eq!(app.screen, Screen::Alerts);
        app.on_key(key(KeyCode::Down));
        assert_eq!(app.alerts.selected.as_deref(), Some("old"));
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
        assert_eq!(
            (app.screen, app.deployments.focus),
            (Screen::Deployments, Pane::Log)
        );
        let top = app
            .deployments
            .top_index()
            .and_then(|i| app.deployments.view_line(i))
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
        let buffer = app.deployments.selected_buffer().expect("buffer");
        assert_eq!(buffer.len(), 100);
        assert_eq!(buffer.dropped(), 150);
    }
}
