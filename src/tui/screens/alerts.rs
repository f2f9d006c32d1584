//! The alert feed's state: the alert book as the alerting engine last published it, the chosen
//! alert, and where acknowledgements and resolutions go; and the silences: their list (`S`,
//! `e` expires the chosen one) and a new one written for the chosen alert (`s`: its matchers,
//! prefilled from the alert and editable, then how long, then why).

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent};
use tokio::sync::mpsc;

use super::{step, Ask};
use crate::alert::book::{AlertRecord, AlertState};
use crate::alert::matcher::{self, Matcher};
use crate::alert::runner::{AlertCommand, SilenceCommand};
use crate::alert::silence::{NewSilence, Silence, DEFAULT_DURATION};
use crate::tui::input::InputKind;

#[derive(Debug, Default)]
pub struct AlertsScreen {
    /// The alert book, newest first.
    pub records: Vec<AlertRecord>,
    /// The chosen alert's fingerprint.
    pub selected: Option<String>,
    /// Where acknowledgements and resolutions go; `None` when alerting is off.
    commands: Option<mpsc::Sender<AlertCommand>>,
    /// The silences as the engine last published them, newest first.
    pub silences: Vec<Silence>,
    /// The silences are shown rather than the alerts.
    pub showing_silences: bool,
    /// The chosen silence's id.
    pub selected_silence: Option<String>,
    /// Where new and expired silences go.
    silence_commands: Option<mpsc::Sender<SilenceCommand>>,
    /// The silence being written: its matchers, then its duration.
    draft: Option<(Vec<Matcher>, Option<Duration>)>,
}

impl AlertsScreen {
    pub fn connect(
        &mut self,
        commands: mpsc::Sender<AlertCommand>,
        silences: mpsc::Sender<SilenceCommand>,
    ) {
        self.commands = Some(commands);
        self.silence_commands = Some(silences);
    }

    /// Alerting runs here (acknowledgements can be sent).
    pub fn is_running(&self) -> bool {
        self.commands.is_some()
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Option<Ask> {
        if self.showing_silences {
            return self.on_silences_key(key);
        }
        match key.code {
            KeyCode::Char('S') => self.showing_silences = true,
            KeyCode::Char('s') => {
                return Some(match self.selected_record() {
                    Some(record) => Ask::Input {
                        kind: InputKind::SilenceMatchers,
                        initial: prefilled(record),
                    },
                    None => Ask::Notice("Choose an alert to silence".to_owned()),
                })
            }
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::Char('a') => {
                return Some(match self.selected_record() {
                    Some(record) if !matches!(record.state, AlertState::Resolved { .. }) => {
                        Ask::input(InputKind::AckNote)
                    }
                    Some(_) => Ask::Notice("This alert is resolved".to_owned()),
                    None => Ask::Nothing,
                })
            }
            KeyCode::Char('r') => {
                if let Some(fingerprint) = self.selected.clone() {
                    return Some(self.send(AlertCommand::Resolve { fingerprint }));
                }
            }
            KeyCode::Enter => return Some(self.open_log()),
            KeyCode::Char('x') => {
                // A regression's action is the rollback: to the deployment production left.
                let record = self.selected_record();
                let deployment = record
                    .and_then(|r| r.rollback_to.clone())
                    .or_else(|| record.and_then(|r| r.build_id.clone()));
                return Some(match deployment {
                    Some(deployment) => Ask::Act { deployment },
                    None => Ask::Notice("This alert is not about a deployment".to_owned()),
                });
            }
            _ => return None,
        }
        Some(Ask::Nothing)
    }

    fn on_silences_key(&mut self, key: KeyEvent) -> Option<Ask> {
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => self.move_silence(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_silence(1),
            KeyCode::Char('S') | KeyCode::Esc => self.showing_silences = false,
            KeyCode::Char('e') => {
                let Some(silence) = self.selected_silence_record() else {
                    return Some(Ask::Nothing);
                };
                let id = silence.id.clone();
                return Some(self.send_silence(SilenceCommand::Expire { id }));
            }
            _ => return None,
        }
        Some(Ask::Nothing)
    }

    /// The matchers are typed: how long comes next. A matcher that does not read, or matchers
    /// that would mute every alert, keep the box open with why.
    pub fn silence_matchers(&mut self, text: &str) -> Result<Ask, String> {
        let matchers = matcher::parse(text).map_err(|err| err.to_string())?;
        if matchers.is_empty() {
            return Err("a silence needs a matcher".to_owned());
        }
        if matchers.iter().all(Matcher::matches_empty) {
            return Err("these would match every alert".to_owned());
        }
        self.draft = Some((matchers, None));
        Ok(Ask::Input {
            kind: InputKind::SilenceFor,
            initial: "1h".to_owned(),
        })
    }

    /// How long is typed: why comes next.
    pub fn silence_for(&mut self, text: &str) -> Result<Ask, String> {
        let duration = crate::clock::parse_duration(text)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| "write it as 90m, 2h or 1d".to_owned())?;
        match &mut self.draft {
            Some((_, slot)) => *slot = Some(duration),
            None => return Ok(Ask::Nothing),
        }
        Ok(Ask::input(InputKind::SilenceComment))
    }

    /// Why is typed: the silence is sent to the engine, which adds it for every instance.
    pub fn silence_comment(&mut self, text: &str) -> Result<Ask, String> {
        if text.trim().is_empty() {
            return Err("say why: it is shown with every alert it mutes".to_owned());
        }
        let Some((matchers, duration)) = self.draft.take() else {
            return Ok(Ask::Nothing);
        };
        let asked = NewSilence {
            matchers,
            starts_at: None,
            duration: duration.unwrap_or(DEFAULT_DURATION),
            // The engine signs it with this instance's user.
            created_by: String::new(),
            comment: text.trim().to_owned(),
        };
        Ok(match self.send_silence(SilenceCommand::Add(asked)) {
            Ask::Nothing => Ask::Notice("Silence added (S lists the silences)".to_owned()),
            refused => refused,
        })
    }

    /// Where the chosen silence is in the list (the newest when none was chosen).
    pub fn selected_silence_index(&self) -> Option<usize> {
        match &self.selected_silence {
            Some(id) => self.silences.iter().position(|s| &s.id == id),
            None => (!self.silences.is_empty()).then_some(0),
        }
    }

    /// The chosen silence (the newest when none was chosen).
    pub fn selected_silence_record(&self) -> Option<&Silence> {
        self.selected_silence_index().map(|i| &self.silences[i])
    }

    fn move_silence(&mut self, delta: isize) {
        if let Some(next) = step(self.silences.len(), self.selected_silence_index(), delta) {
            self.selected_silence = Some(self.silences[next].id.clone());
        }
    }

    fn send_silence(&self, command: SilenceCommand) -> Ask {
        send_to(self.silence_commands.as_ref(), command)
    }

    /// The note is typed: acknowledges the chosen alert.
    pub fn acknowledge(&mut self, note: &str) -> Ask {
        let Some(fingerprint) = self.selected_record().map(|r| r.fingerprint.clone()) else {
            return Ask::Nothing;
        };
        let note = Some(note.to_owned()).filter(|n| !n.trim().is_empty());
        self.send(AlertCommand::Acknowledge { fingerprint, note })
    }

    /// Where the chosen alert is in the feed (the newest when none was chosen).
    pub fn selected_index(&self) -> Option<usize> {
        match &self.selected {
            Some(fp) => self.records.iter().position(|a| &a.fingerprint == fp),
            None => (!self.records.is_empty()).then_some(0),
        }
    }

    /// The chosen alert (the newest when none was chosen).
    pub fn selected_record(&self) -> Option<&AlertRecord> {
        self.selected_index().map(|i| &self.records[i])
    }

    fn move_selection(&mut self, delta: isize) {
        if let Some(next) = step(self.records.len(), self.selected_index(), delta) {
            self.selected = Some(self.records[next].fingerprint.clone());
        }
    }

    fn send(&self, command: AlertCommand) -> Ask {
        send_to(self.commands.as_ref(), command)
    }

    /// The chosen alert's deployment log, at the line that fired it.
    fn open_log(&self) -> Ask {
        let Some(record) = self.selected_record() else {
            return Ask::Nothing;
        };
        match &record.build_id {
            Some(build_id) => Ask::OpenLog {
                build_id: build_id.clone(),
                at_ms: record.entry_ts,
            },
            None => Ask::Notice("This alert is not about a deployment".to_owned()),
        }
    }
}

/// Hands `command` to the alerting engine, or says it does not run here.
fn send_to<T>(commands: Option<&mpsc::Sender<T>>, command: T) -> Ask {
    if commands.is_some_and(|commands| commands.try_send(command).is_ok()) {
        Ask::Nothing
    } else {
        Ask::Notice("Alerting is not running here (see --alerts)".to_owned())
    }
}

/// The matchers a silence of `record` starts from: its rule, project and deployment, which the
/// user widens or narrows before it is kept.
fn prefilled(record: &AlertRecord) -> String {
    let matchers: Vec<String> = ["rule", "project", "deployment"]
        .into_iter()
        .filter(|name| !record.labels.get(name).is_empty())
        .filter_map(|name| {
            Matcher::new(name, matcher::MatchOp::Equal, record.labels.get(name)).ok()
        })
        .map(|m| m.to_string())
        .collect();
    if matchers.is_empty() {
        format!("rule=\"{}\"", record.rule)
    } else {
        matchers.join(", ")
    }
}
