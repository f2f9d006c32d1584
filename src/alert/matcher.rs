//! Label matchers in Alertmanager's syntax, for silences, inhibition rules and grouping:
//! `name OP value` with `=`, `!=`, `=~`, `!~`, a comma-separated list that all must match,
//! braces optional, one trailing comma allowed: `{rule="deploy_failed", project=~"shop|web"}`.
//! Values are bare (`rule=deploy_failed`) or double-quoted with Go's escapes (`"a\"b"`,
//! `"\u00e9"`). Regular expressions are anchored at both ends (`=~"web"` does not match
//! `website`), and a label an alert does not have is the empty string, so `branch!="main"`
//! matches an alert without a branch. Only the names in [`super::labels::NAMES`] are accepted:
//! a typo would otherwise silently match nothing (or everything).

use std::fmt;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use super::labels::{Labels, NAMES};

/// How a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }

    fn is_regex(self) -> bool {
        matches!(self, MatchOp::Regex | MatchOp::NotRegex)
    }

    fn is_equal(self) -> bool {
        matches!(self, MatchOp::Equal | MatchOp::Regex)
    }
}

/// One `name OP value`. Stored as Alertmanager stores it (`name`, `value`, `isRegex`,
/// `isEqual`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "Stored", into = "Stored")]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    /// The anchored expression, for `=~` and `!~`.
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        (&self.name, self.op, &self.value) == (&other.name, other.op, &other.value)
    }
}

impl Eq for Matcher {}

/// The most a matcher's compiled expression may take (a regex from a user is bounded).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl Matcher {
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, MatcherError> {
        if !NAMES.contains(&name) {
            return Err(MatcherError::UnknownLabel(name.to_owned()));
        }
        let regex = if op.is_regex() {
            let anchored = format!("^(?:{value})$");
            let compiled = RegexBuilder::new(&anchored)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|err| MatcherError::BadRegex {
                    name: name.to_owned(),
                    reason: first_line(&err.to_string()),
                })?;
            Some(compiled)
        } else {
            None
        };
        Ok(Matcher {
            name: name.to_owned(),
            op,
            value: value.to_owned(),
            regex,
        })
    }

    /// Does the value of this matcher's label in `labels` satisfy it?
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.name))
    }

    fn matches_value(&self, value: &str) -> bool {
        let found = match &self.regex {
            Some(regex) => regex.is_match(value),
            None => value == self.value,
        };
        found == self.op.is_equal()
    }

    /// Whether it matches an alert that lacks the label.
    pub fn matches_empty(&self) -> bool {
        self.matches_value("")
    }
}

/// `rule="deploy_failed"`: what [`parse`] reads back.
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // JSON's string escapes are a subset of Go's, which the parser reads.
        let quoted = serde_json::to_string(&self.value).map_err(|_| fmt::Error)?;
        write!(f, "{}{}{quoted}", self.name, self.op.as_str())
    }
}

/// `{rule="deploy_failed", project=~"shop|web"}`.
pub fn describe(matchers: &[Matcher]) -> String {
    let parts: Vec<String> = matchers.iter().map(Matcher::to_string).collect();
    format!("{{{}}}", parts.join(", "))
}

/// Do all `matchers` match `labels`?
pub fn all_match(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    name: String,
    value: String,
    is_regex: bool,
    #[serde(default = "yes")]
    is_equal: bool,
}

fn yes() -> bool {
    true
}

impl TryFrom<Stored> for Matcher {
    type Error = MatcherError;

    fn try_from(s: Stored) -> Result<Self, Self::Error> {
        let op = match (s.is_regex, s.is_equal) {
            (false, true) => MatchOp::Equal,
            (false, false) => MatchOp::NotEqual,
            (true, true) => MatchOp::Regex,
            (true, false) => MatchOp::NotRegex,
        };
        Matcher::new(&s.name, op, &s.value)
    }
}

impl From<Matcher> for Stored {
    fn from(m: Matcher) -> Self {
        Stored {
            is_regex: m.op.is_regex(),
            is_equal: m.op.is_equal(),
            name: m.name,
            value: m.value,
        }
    }
}

/// Why matchers could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    /// At character `at` (counted from 1).
    #[error("at character {at}: {what}")]
    Syntax { at: usize, what: String },
    #[error("unknown label {0:?} (labels are {names})", names = NAMES.join(", "))]
    UnknownLabel(String),
    #[error("the regular expression for {name} does not compile: {reason}")]
    BadRegex { name: String, reason: String },
}

/// Reads a list of matchers (possibly empty).
pub fn parse(input: &str) -> Result<Vec<Matcher>, MatcherError> {
    Parser::new(input).list()
}

struct Parser<'a> {
    input: &'a str,
    /// Byte offset of the next character.
    pos: usize,
}

/// Characters that end a bare name or value.
fn ends_bare(c: char) -> bool {
    c.is_whitespace() || "{}!=~,\"'\\".contains(c)
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        Parser { input, pos: 0 }
    }

    fn list(mut self) -> Result<Vec<Matcher>, MatcherError> {
        self.skip_space();
        let braced = self.eat('{');
        let mut matchers = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                None if braced => return Err(self.error("expected a closing brace")),
                None => break,
                Some('}') if braced => {
                    self.pos += 1;
                    self.skip_space();
                    if self.peek().is_some() {
                        return Err(self.error("expected nothing after the closing brace"));
                    }
                    break;
                }
                Some('}') => return Err(self.error("a closing brace without an opening one")),
                Some(_) => {}
            }
            matchers.push(self.matcher()?);
            self.skip_space();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some('}') | None => {}
                Some(_) => return Err(self.error("expected a comma or a closing brace")),
            }
        }
        Ok(matchers)
    }

    fn matcher(&mut self) -> Result<Matcher, MatcherError> {
        let at = self.at();
        let name = self.text("a label name")?;
        self.skip_space();
        let op = if self.eat_str("=~") {
            MatchOp::Regex
        } else if self.eat_str("!=") {
            MatchOp::NotEqual
        } else if self.eat_str("!~") {
            MatchOp::NotRegex
        } else if self.eat('=') {
            MatchOp::Equal
        } else {
            return Err(self.error("expected one of =, !=, =~, !~"));
        };
        self.skip_space();
        let value = match self.peek() {
            // `foo=` is the empty value, as `foo=""`.
            Some(',' | '}') | None => String::new(),
            _ => self.text("a value")?,
        };
        Matcher::new(&name, op, &value).map_err(|err| match err {
            MatcherError::Syntax { .. } => err,
            other => MatcherError::Syntax {
                at,
                what: other.to_string(),
            },
        })
    }

    /// A bare word or a quoted string.
    fn text(&mut self, what: &str) -> Result<String, MatcherError> {
        match self.peek() {
            Some('"') => self.quoted(),
            Some(c) if !ends_bare(c) => {
                let start = self.pos;
                while self.peek().is_some_and(|c| !ends_bare(c)) {
                    self.bump();
                }
                Ok(self.input[start..self.pos].to_owned())
            }
            Some(c) => Err(self.error(&format!("expected {what}, found {c:?}"))),
            None => Err(self.error(&format!("expected {what}, found the end"))),
        }
    }

    /// A double-quoted string with Go's escapes; the bytes they make must be UTF-8.
    fn quoted(&mut self) -> Result<String, MatcherError> {
        let start = self.at();
        self.pos += 1;
        let mut bytes = Vec::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(MatcherError::Syntax {
                    at: start,
                    what: "a quote that is never closed".to_owned(),
                });
            };
            match c {
                '"' => break,
                '\\' => self.escape(&mut bytes)?,
                '\n' => return Err(self.error("a line break inside quotes (write \\n)")),
                c => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        String::from_utf8(bytes).map_err(|_| MatcherError::Syntax {
            at: start,
            what: "the escapes in this string are not valid UTF-8".to_owned(),
        })
    }

    /// After a backslash; an error points at the backslash.
    fn escape(&mut self, bytes: &mut Vec<u8>) -> Result<(), MatcherError> {
        let at = self.at() - 1;
        let error = |what: String| MatcherError::Syntax { at, what };
        let simple = |c| match c {
            'a' => Some(7u8),
            'b' => Some(8),
            'f' => Some(12),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(11),
            '\\' => Some(b'\\'),
            '"' => Some(b'"'),
            _ => None,
        };
        let Some(c) = self.bump() else {
            return Err(error("a backslash at the end".to_owned()));
        };
        if let Some(byte) = simple(c) {
            bytes.push(byte);
            return Ok(());
        }
        let (digits, radix) = match c {
            'x' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            '0'..='7' => (2, 8),
            other => return Err(error(format!("unknown escape \\{other}"))),
        };
        let mut text = String::new();
        if radix == 8 {
            text.push(c);
        }
        for _ in 0..digits {
            match self.bump() {
                Some(d) if d.is_digit(radix) => text.push(d),
                _ => return Err(error(format!("\\{c} needs {digits} more digits"))),
            }
        }
        let value =
            u32::from_str_radix(&text, radix).map_err(|_| error(format!("bad escape \\{text}")))?;
        match c {
            'u' | 'U' => {
                let ch = char::from_u32(value)
                    .ok_or_else(|| error(format!("\\{c}{text} is not a character")))?;
                bytes.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
            }
            _ => bytes
                .push(u8::try_from(value).map_err(|_| error(format!("\\{text} is not a byte")))?),
        }
        Ok(())
    }

    fn peek(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        let found = self.peek() == Some(c);
        if found {
            self.pos += c.len_utf8();
        }
        found
    }

    fn eat_str(&mut self, s: &str) -> bool {
        let found = self.input[self.pos..].starts_with(s);
        if found {
            self.pos += s.len();
        }
        found
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    /// The next character's position, counted in characters from 1.
    fn at(&self) -> usize {
        self.input[..self.pos].chars().count() + 1
    }

    fn error(&self, what: &str) -> MatcherError {
        MatcherError::Syntax {
            at: self.at(),
            what: what.to_owned(),
        }
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().map(|(k, v)| (*k, Some(*v))))
    }

    /// Alertmanager's own parser examples (`matcher/parse/parse_test.go`), with our label
    /// names: `rule` for `foo`, `project` for `bar`.
    #[test]
    fn alertmanagers_examples_read_the_same() {
        use MatchOp::*;
        let one = |op, value: &str| vec![Matcher::new("rule", op, value).expect("valid")];
        let cases: Vec<(&str, Vec<Matcher>)> = vec![
            ("", vec![]),
            ("{}", vec![]),
            ("{rule=bar}", one(Equal, "bar")),
            ("{rule=bar,}", one(Equal, "bar")),
            ("{rule!=bar}", one(NotEqual, "bar")),
            ("{rule=~[a-z]+}", one(Regex, "[a-z]+")),
            ("{rule!~[a-z]+}", one(NotRegex, "[a-z]+")),
            ("{rule=🙂}", one(Equal, "🙂")),
            ("{rule=🙂bar}", one(Equal, "🙂bar")),
            ("rule=bar", one(Equal, "bar")),
            ("rule=bar,", one(Equal, "bar")),
            ("rule!=bar", one(NotEqual, "bar")),
            ("rule=~[a-z]+", one(Regex, "[a-z]+")),
            ("rule!~[a-z]+", one(NotRegex, "[a-z]+")),
            (r#"{"rule"="bar"}"#, one(Equal, "bar")),
            (r#"{"rule"="bar",}"#, one(Equal, "bar")),
            (r#"{"rule"!="bar"}"#, one(NotEqual, "bar")),
            (r#"{"rule"=~"[a-z]+"}"#, one(Regex, "[a-z]+")),
            (r#"{"rule"!~"[a-z]+"}"#, one(NotRegex, "[a-z]+")),
            (r#"{"rule"="🙂"}"#, one(Equal, "🙂")),
            (r#"{"rule"="\xf0\x9f\x99\x82"}"#, one(Equal, "🙂")),
            (r#"{"rule"="\U0001f642"}"#, one(Equal, "🙂")),
            (r#"{"rule"="bar\n"}"#, one(Equal, "bar\n")),
            (r#"{"rule"="bar\t"}"#, one(Equal, "bar\t")),
            (r#"{"rule"="\"bar\""}"#, one(Equal, "\"bar\"")),
            (r#"{"rule"="bar\\"}"#, one(Equal, "bar\\")),
            (r#""rule"="bar""#, one(Equal, "bar")),
            (r#""rule"="bar","#, one(Equal, "bar")),
            (
                "{rule=bar,project!=baz}",
                vec![
                    Matcher::new("rule", Equal, "bar").expect("valid"),
                    Matcher::new("project", NotEqual, "baz").expect("valid"),
                ],
            ),
            (
                r#" { rule = "bar" , project != "baz" } "#,
                vec![
                    Matcher::new("rule", Equal, "bar").expect("valid"),
                    Matcher::new("project", NotEqual, "baz").expect("valid"),
                ],
            ),
            ("rule=", one(Equal, "")),
        ];
        for (input, expected) in cases {
            assert_eq!(parse(input), Ok(expected), "{input}");
        }
    }

    #[test]
    fn alertmanagers_bad_examples_are_refused_saying_where() {
        let cases = [
            (",", 1, "expected a label name"),
            ("{,}", 2, "expected a label name"),
            ("{", 2, "closing brace"),
            ("}", 1, "without an opening one"),
            ("rule=bar}", 9, "without an opening one"),
            ("{rule=bar", 10, "closing brace"),
            (r#"{rule=:"bar"}"#, 8, "expected a comma"),
            (r#"{rule="bar\w"}"#, 11, "unknown escape"),
            (r"{rule=bar\n}", 10, "expected a comma"),
            (r#"{"rule"="\xf0\x9f"}"#, 9, "not valid UTF-8"),
            (r#"rule="bar"#, 6, "never closed"),
            ("rule", 5, "expected one of"),
            ("{rule=bar}x", 11, "nothing after"),
            ("{rule=bar,,}", 11, "expected a label name"),
        ];
        for (input, at, what) in cases {
            match parse(input) {
                Err(MatcherError::Syntax {
                    at: found,
                    what: said,
                }) => {
                    assert_eq!(found, at, "{input}: {said}");
                    assert!(said.contains(what), "{input}: {said}");
                }
                other => panic!("{input}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_labels_and_bad_regexes_are_refused_by_name() {
        let err = parse("rul=deploy_failed").expect_err("a typo");
        assert!(err.to_string().contains(r#"unknown label "rul""#), "{err}");
        assert!(err.to_string().contains("rule, severity, project"), "{err}");
        let err = parse("rule=~\"((\"").expect_err("bad regex");
        assert!(
            err.to_string().contains("for rule does not compile"),
            "{err}"
        );
    }

    #[test]
    fn regexes_are_anchored_and_a_missing_label_is_empty() {
        let alert = labels(&[("rule", "deploy_failed"), ("project", "website")]);
        let cases = [
            ("project=~web", false),
            ("project=~web.*", true),
            ("project!~web", true),
            ("project=website", true),
            ("project!=website", false),
            ("branch!=main", true),
            ("branch=", true),
            ("branch=~.*", true),
            ("branch=~.+", false),
            ("rule=~\"deploy_failed|build_failed\"", true),
            ("{rule=deploy_failed, project=~shop}", false),
            ("{rule=deploy_failed, project=~\"shop|website\"}", true),
        ];
        for (input, expected) in cases {
            let matchers = parse(input).expect(input);
            assert_eq!(all_match(&matchers, &alert), expected, "{input}");
        }
        assert!(parse("branch=~.*").expect("valid")[0].matches_empty());
        assert!(!parse("branch=~.+").expect("valid")[0].matches_empty());
    }

    #[test]
    fn a_matcher_is_stored_as_alertmanager_stores_it() {
        let m = &parse("project!~\"shop|web\"").expect("valid")[0];
        let json = serde_json::to_value(m).expect("serialises");
        assert_eq!(
            json,
            serde_json::json!({"name": "project", "value": "shop|web", "isRegex": true, "isEqual": false})
        );
        let back: Matcher = serde_json::from_value(json).expect("reads");
        assert_eq!(&back, m);
        assert!(!back.matches(&labels(&[("project", "web")])));
    }

    proptest! {
        #[test]
        fn any_input_is_read_or_refused_without_a_panic(input in "\\PC{0,40}") {
            let _ = parse(&input);
        }

        #[test]
        fn a_matcher_written_out_reads_back_the_same(
            name in proptest::sample::select(NAMES.to_vec()),
            op in proptest::sample::select(vec![MatchOp::Equal, MatchOp::NotEqual]),
            value in "(?s).{0,20}",
        ) {
            let m = Matcher::new(name, op, &value).expect("a plain matcher");
            prop_assert_eq!(parse(&m.to_string()), Ok(vec![m.clone()]));
            prop_assert_eq!(parse(&describe(std::slice::from_ref(&m))), Ok(vec![m]));
        }
    }
}
