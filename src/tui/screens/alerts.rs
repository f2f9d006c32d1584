//! The alert feed's state: the alert book as the alerting engine last published it, the chosen
//! alert, and where acknowledgements and resolutions go.

use crossterm::event::{KeyCode, KeyEvent};
use tokio::sync::mpsc;

use super::{step, Ask};
use crate::alert::book::{AlertRecord, AlertState};
use crate::alert::runner::AlertCommand;
use crate::tui::input::InputKind;

#[derive(Debug, Default)]
pub struct AlertsScreen {
    /// The alert book, newest first.
    pub records: Vec<AlertRecord>,
    /// The chosen alert's fingerprint.
    pub selected: Option<String>,
    /// Where acknowledgements and resolutions go; `None` when alerting is off.
    commands: Option<mpsc::Sender<AlertCommand>>,
}

impl AlertsScreen {
    pub fn connect(&mut self, commands: mpsc::Sender<AlertCommand>) {
        self.commands = Some(commands);
    }

    /// Alerting runs here (acknowledgements can be sent).
    pub fn is_running(&self) -> bool {
        self.commands.is_some()
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Option<Ask> {
        match key.code {
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
        let sent = self
            .commands
            .as_ref()
            .is_some_and(|commands| commands.try_send(command).is_ok());
        if sent {
            Ask::Nothing
        } else {
            Ask::Notice("Alerting is not running here (see --alerts)".to_owned())
        }
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
