//! The one-line input box at the bottom of the dashboard: what it is for, and its text.

use ratatui_textarea::TextArea;

/// What the one-line input at the bottom is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Filter,
    Search,
    /// The runtime log's quick filter (`status=5xx path=^/api ...`).
    Only,
    /// The optional note of an acknowledgement.
    AckNote,
    /// Why breakglass access is needed.
    Justification,
    /// The connection id typed again, to confirm a breakglass request.
    Confirmation,
    /// The project's name typed again, to confirm an action on production.
    ProjectName,
    /// Why an action is taken (optional).
    Reason,
    /// A new silence's matchers, prefilled from the chosen alert.
    SilenceMatchers,
    /// How long the new silence lasts.
    SilenceFor,
    /// Why (required).
    SilenceComment,
}

impl InputKind {
    /// Its text is a pattern (checked as it is typed).
    pub fn is_pattern(self) -> bool {
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
    /// An input box for `kind`, holding `initial` with the cursor at its end.
    pub fn new(kind: InputKind, initial: String) -> Self {
        let mut text = TextArea::new(vec![initial]);
        text.move_cursor(ratatui_textarea::CursorMove::End);
        Input {
            kind,
            text,
            error: None,
        }
    }

    /// What is typed (the box holds one line).
    pub fn line(&self) -> String {
        self.text.lines().first().cloned().unwrap_or_default()
    }
}
