//! The dashboard's screens. Each owns its state and its keys; the app routes keys to the
//! screen on show and does what the screen asks of it in return.

pub mod actions;
pub mod alerts;
pub mod breakglass;
pub mod deployments;
pub mod line_filter;
pub mod runtime;

use super::input::InputKind;

/// What a screen asks of the app after handling a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// Nothing more: the key was handled.
    Nothing,
    /// Open the input box for `kind`, holding `initial`.
    Input { kind: InputKind, initial: String },
    /// Show a short message in the status bar.
    Notice(String),
    /// Show this deployment's build log from the first line at or after `at_ms`.
    OpenLog { build_id: String, at_ms: i64 },
    /// Open the actions on this deployment (`x`).
    Act { deployment: String },
}

impl Ask {
    /// Open an empty input box for `kind`.
    pub fn input(kind: InputKind) -> Self {
        Ask::Input {
            kind,
            initial: String::new(),
        }
    }
}

/// The row `delta` away from `current` (the first when none is chosen) in a list of `len`
/// rows, kept within it; `None` for an empty list.
pub(crate) fn step(len: usize, current: Option<usize>, delta: isize) -> Option<usize> {
    let last = len.checked_sub(1)? as isize;
    Some((current.unwrap_or(0) as isize + delta).clamp(0, last) as usize)
}
