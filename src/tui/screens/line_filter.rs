//! Which lines of a log are shown or found: `pattern` keeps matching lines, `!pattern` hides
//! them. Patterns are regular expressions, case-insensitive unless they hold an upper-case letter.

use regex::Regex;

use crate::tui::buffer::LogLine;

#[derive(Debug, Clone)]
pub struct LineFilter {
    pub source: String,
    regex: Regex,
    exclude: bool,
}

impl LineFilter {
    pub fn parse(text: &str) -> Result<Option<Self>, PatternError> {
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

/// Why a pattern is not a regular expression shiplog can use, in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PatternError(String);

/// Case-insensitive unless the pattern has an upper-case letter ("smart case").
fn compile(pattern: &str) -> Result<Regex, PatternError> {
    let smart = !pattern.chars().any(char::is_uppercase);
    regex::RegexBuilder::new(pattern)
        .case_insensitive(smart)
        .size_limit(1 << 20)
        .build()
        .map_err(|err| {
            PatternError(match err {
                regex::Error::Syntax(text) => text
                    .lines()
                    .last()
                    .unwrap_or("invalid pattern")
                    .trim()
                    .to_owned(),
                other => other.to_string(),
            })
        })
}
