//! What a breakglass request must be: from a role that may break glass, for one of shiplog's
//! connection ids, with a justification of real content.

/// The least a justification must say.
pub const MIN_JUSTIFICATION: usize = 20;

use crate::role::Role;

/// The person asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    pub user: String,
    pub role: Role,
}

/// Connection ids are shiplog's own (`conn_` and lowercase letters, digits, `_`).
pub(super) fn is_connection_id(id: &str) -> bool {
    id.strip_prefix("conn_").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
}

/// What is wrong with a justification, if anything: too short, a placeholder, or mostly the
/// same words again.
pub fn justification_problem(text: &str) -> Option<String> {
    let text = text.trim();
    let length = text.chars().count();
    if length < MIN_JUSTIFICATION {
        return Some(format!(
            "is too short: {length} characters, at least {MIN_JUSTIFICATION} are needed to say why"
        ));
    }
    let lower = text.to_lowercase();
    const PLACEHOLDERS: [&str; 10] = [
        "test",
        "testing",
        "asdf",
        "lorem ipsum",
        "n/a",
        "tbd",
        "todo",
        "xxx",
        "placeholder",
        "justification",
    ];
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let distinct_letters = lower
        .chars()
        .filter(|c| c.is_alphabetic())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let mostly_placeholder = words
        .iter()
        .filter(|w| {
            PLACEHOLDERS
                .iter()
                .any(|p| p.split(' ').any(|part| part == **w))
        })
        .count()
        * 2
        >= words.len();
    // `abcdef abcdef abcdef`: length without content.
    let distinct_words = words
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let mostly_repetition = distinct_words * 2 <= words.len();
    if words.len() < 3 || distinct_letters < 6 || mostly_placeholder || mostly_repetition {
        return Some(
            "looks like a placeholder: say what broke and why these tokens are needed".to_owned(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn justifications_need_real_content() {
        assert!(justification_problem("short").is_some_and(|p| p.contains("too short")));
        for placeholder in [
            "test test test test test",
            "aaaaaaaaaaaaaaaaaaaaaaaaa",
            "asdf asdf asdf asdf asdf",
            "lorem ipsum lorem ipsum dolor",
            "justification placeholder tbd",
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "abcdef abcdef abcdef abcdef",
            "deploy broken deploy broken deploy broken",
        ] {
            assert!(
                justification_problem(placeholder).is_some_and(|p| p.contains("placeholder")),
                "{placeholder}"
            );
        }
        assert_eq!(
            justification_problem(
                "TOKEN_ENCRYPTION_KEY was rotated wrongly; production deploys are blocked"
            ),
            None
        );
    }
}
