//! The breakglass screen's state: the chosen entry, the two-step request (a justification,
//! then the connection id typed again to confirm), and the answer: a denial's reason, or the
//! granted token, masked until revealed and hidden again 30 s after.

use crossterm::event::{KeyCode, KeyEvent};
use tokio::sync::mpsc;

use super::{step, Ask};
use crate::breakglass::access::Grant;
use crate::breakglass::desk::{AccessRequest, AccessResult, BreakglassView};
use crate::tui::input::InputKind;

/// How long a revealed token stays on screen.
pub const REVEAL_MS: i64 = 30_000;

/// The answer to the last request.
#[derive(Debug, Clone)]
pub enum Answer {
    Waiting {
        connection_id: String,
    },
    Denied(String),
    Granted {
        grant: Grant,
        /// Until when (ms) the token is shown in full; masked otherwise.
        revealed_until: Option<i64>,
    },
}

#[derive(Debug, Default)]
pub struct BreakglassScreen {
    /// What the engine last published; `None` when breakglass does not run here.
    pub view: Option<BreakglassView>,
    /// The chosen entry's connection id.
    pub selected: Option<String>,
    pub answer: Option<Answer>,
    requests: Option<mpsc::Sender<AccessRequest>>,
    /// The justification given, waiting for the confirmation.
    justification: Option<String>,
}

impl BreakglassScreen {
    pub fn connect(&mut self, requests: mpsc::Sender<AccessRequest>) {
        self.requests = Some(requests);
    }

    pub fn apply_view(&mut self, view: BreakglassView) {
        let listed = |id: &String| view.entries.iter().any(|e| &e.connection_id == id);
        if !self.selected.as_ref().is_some_and(listed) {
            self.selected = view.entries.first().map(|e| e.connection_id.clone());
        }
        self.view = Some(view);
    }

    pub fn on_key(&mut self, key: KeyEvent, now: i64) -> Option<Ask> {
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::Enter if self.selected.is_some() => {
                return Some(Ask::input(InputKind::Justification))
            }
            KeyCode::Char('v') => {
                if let Some(Answer::Granted { revealed_until, .. }) = &mut self.answer {
                    *revealed_until = match revealed_until {
                        Some(_) => None,
                        None => Some(now + REVEAL_MS),
                    };
                }
            }
            // Forget the token.
            KeyCode::Char('c') => self.answer = None,
            _ => return None,
        }
        Some(Ask::Nothing)
    }

    /// The justification is given: the connection id must be typed next.
    pub fn justified(&mut self, text: &str) {
        self.justification = Some(text.trim().to_owned());
    }

    /// The confirmation is typed: sends the request if it names the chosen connection.
    pub fn confirmed(&mut self, typed: &str) {
        let (Some(connection_id), Some(justification)) =
            (self.selected.clone(), self.justification.take())
        else {
            return;
        };
        if typed.trim() != connection_id {
            self.answer = Some(Answer::Denied(format!(
                "Not sent: the confirmation must be the connection id {connection_id}"
            )));
            return;
        }
        let sent = self.requests.as_ref().is_some_and(|requests| {
            requests
                .try_send(AccessRequest {
                    connection_id: connection_id.clone(),
                    justification,
                })
                .is_ok()
        });
        self.answer = Some(if sent {
            Answer::Waiting { connection_id }
        } else {
            Answer::Denied("Breakglass is not running here".to_owned())
        });
    }

    pub fn on_result(&mut self, result: AccessResult) {
        self.answer = Some(match result {
            Ok(grant) => Answer::Granted {
                grant,
                revealed_until: None,
            },
            Err(denial) => Answer::Denied(format!("Denied: {denial}")),
        });
    }

    /// Hides a revealed token once its time is up; true if that changed the screen.
    pub fn tick(&mut self, now: i64) -> bool {
        if let Some(Answer::Granted { revealed_until, .. }) = &mut self.answer {
            if revealed_until.is_some_and(|until| now >= until) {
                *revealed_until = None;
                return true;
            }
        }
        false
    }

    /// Whether a revealed token is on screen (the clock must tick to hide it).
    pub fn is_revealing(&self) -> bool {
        matches!(
            self.answer,
            Some(Answer::Granted {
                revealed_until: Some(_),
                ..
            })
        )
    }

    /// Where the chosen entry is in the list.
    pub fn selected_index(&self) -> Option<usize> {
        let (view, id) = (self.view.as_ref()?, self.selected.as_ref()?);
        view.entries.iter().position(|e| &e.connection_id == id)
    }

    fn move_selection(&mut self, delta: isize) {
        let Some(view) = &self.view else { return };
        if let Some(next) = step(view.entries.len(), self.selected_index(), delta) {
            self.selected = Some(view.entries[next].connection_id.clone());
        }
    }
}

/// `vcp_••••••••7f3a`: enough to tell tokens apart, not enough to use one.
pub fn masked(token: &str) -> String {
    let chars: Vec<char> = token.chars().collect();
    if chars.len() < 12 {
        return "•".repeat(12);
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "•".repeat(12))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_keeps_only_the_ends() {
        assert_eq!(masked("vcp_abcdefghijklmnop7f3a"), "vcp_••••••••••••7f3a");
        assert_eq!(masked("short"), "••••••••••••");
    }
}
