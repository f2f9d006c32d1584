//! How a command fails: an exit code, and one sentence with a hint for whoever ran it.

use std::fmt;

use shiplog::exit;

/// Why a command stopped short. `main` tells the user (see [`CommandError::report`]) and exits
/// with its code, so every function on the way can pass it up with `?`.
#[derive(Debug)]
pub struct CommandError {
    pub code: i32,
    /// `None` when the user has been told already (a denial, a list of problems).
    message: Option<String>,
    hint: Option<String>,
}

impl CommandError {
    pub fn new(code: i32, message: impl fmt::Display) -> Self {
        CommandError {
            code,
            message: Some(message.to_string()),
            hint: None,
        }
    }

    /// The configuration (file, environment, flags) is wrong.
    pub fn config(message: impl fmt::Display) -> Self {
        Self::new(exit::CONFIG, message)
    }

    /// What the user can do about it.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The hint, when there is one.
    pub fn hint_if(self, hint: Option<&str>) -> Self {
        match hint {
            Some(hint) => self.hint(hint),
            None => self,
        }
    }

    /// Ends with `code`; what went wrong has been said already.
    pub fn told(code: i32) -> Self {
        CommandError {
            code,
            message: None,
            hint: None,
        }
    }

    /// Prints the sentence and the hint on stderr.
    pub fn report(&self) {
        if let Some(message) = &self.message {
            super::report(message, self.hint.as_deref());
        }
    }
}

/// What a command ends with: its exit status (0, or an outcome such as "the build failed"),
/// or why it could not do its job.
pub type Exit = Result<i32, CommandError>;
