//! Secret redaction for build-log lines and JSON payloads.
//!
//! Every line passes through [`Redactor::redact`] before any sink sees it, so the common case
//! (a line with no secret) has to be cheap: a single case-insensitive Aho-Corasick scan for rule
//! keywords decides which regexes run at all, and a line that hits nothing is returned as
//! `Cow::Borrowed`. Only the secret is replaced; the rest of the line stays byte for byte.
//! The rules live in `rules.rs`; [`scrub`] applies them to whole entries, following a private
//! key printed a line at a time.

mod rules;
pub mod scrub;

use std::borrow::Cow;
use std::ops::Range;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind};
use regex::{Captures, Regex};
use serde_json::Value;

use crate::printable;
use rules::{secret_key_suffix, Secret, RULES, SENSITIVE_JSON_KEYS};

/// How a redacted text is shown (see `printable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// A name, a type, an id: one line, no escapes.
    OneLine,
    /// Text as it may reach a terminal, colors kept or not.
    Text { keep_color: bool },
}

/// The replacement for every secret.
pub const REDACTED: &str = "[REDACTED]";

/// Upper bound on redaction passes over one text (see [`Redactor::redact`]).
const MAX_PASSES: usize = 4;

/// One compiled rule.
struct Rule {
    regex: Regex,
    secret: Secret,
}

impl Rule {
    /// Replaces every secret of every match; `None` if nothing changed.
    fn apply(&self, text: &str) -> Option<String> {
        let mut out: Option<String> = None;
        let mut copied = 0;
        let mut spans = Vec::new();
        for caps in self.regex.captures_iter(text) {
            spans.clear();
            self.secrets(&caps, &mut spans);
            for span in spans.iter().cloned() {
                let secret = &text[span.clone()];
                if span.start < copied || is_placeholder(secret) {
                    continue;
                }
                let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
                buf.push_str(&text[copied..span.start]);
                buf.push_str(REDACTED);
                copied = span.end;
            }
        }
        out.map(|mut buf| {
            buf.push_str(&text[copied..]);
            buf
        })
    }

    /// Where the secrets of one match are, in order.
    fn secrets(&self, caps: &Captures<'_>, spans: &mut Vec<Range<usize>>) {
        match self.secret {
            Secret::Groups => spans.extend(caps.iter().skip(1).flatten().map(|m| m.range())),
            Secret::UrlUserinfo => {
                if let Some(user) = caps.get(1).filter(|user| looks_like_token(user.as_str())) {
                    spans.push(user.range());
                }
                if let Some(password) = caps.get(2).filter(|p| !is_port_and_path(p.as_str())) {
                    spans.push(password.range());
                }
                spans.extend(caps.get(3).map(|m| m.range()));
            }
            Secret::CookieValues => {
                let (Some(whole), Some(value)) = (caps.get(0), caps.get(1)) else {
                    return;
                };
                // A Set-Cookie sets one cookie: what follows its value are attributes.
                let set_cookie = whole
                    .as_str()
                    .get(..4)
                    .is_some_and(|s| s.eq_ignore_ascii_case("set-"));
                let mut at = value.start();
                for pair in value.as_str().split(';') {
                    if let Some(eq) = pair.find('=') {
                        // A cookie's value has no space, comma or quote (RFC 6265).
                        let value = &pair[eq + 1..];
                        let len = value
                            .find(|c: char| c.is_whitespace() || matches!(c, ',' | '"' | '\\'))
                            .unwrap_or(value.len());
                        let start = at + eq + 1;
                        if len > 0 {
                            spans.push(start..start + len);
                        }
                    }
                    at += pair.len() + 1;
                    if set_cookie {
                        break;
                    }
                }
            }
        }
    }
}

/// A URL's user name that is a credential: a known token prefix or a long token-like string.
fn looks_like_token(user: &str) -> bool {
    let token_chars = user
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    token_chars && user.len() >= 20 && user.bytes().any(|b| b.is_ascii_digit())
}

/// `3000/@vite/client` after `localhost:`: a port (and a path), not a password.
fn is_port_and_path(password: &str) -> bool {
    let digits = password.bytes().take_while(u8::is_ascii_digit).count();
    (1..=5).contains(&digits)
        && password[digits..]
            .bytes()
            .next()
            .is_none_or(|b| matches!(b, b'/' | b'?' | b'#'))
}

/// Values that are not secrets even where a secret is expected. Keeping
/// `token=undefined` readable is worth more to on-call than hiding it.
fn is_placeholder(value: &str) -> bool {
    value.is_empty()
        // Ours, whole or cut short by a rule that stops at `]`.
        || value.starts_with(&REDACTED[..REDACTED.len() - 1])
        || ["null", "undefined", "true", "false", "none", "nil"]
            .iter()
            .any(|p| value.eq_ignore_ascii_case(p))
}

/// Replaces secrets with `[REDACTED]` before any sink sees a log line.
pub struct Redactor {
    rules: Vec<Rule>,
    /// Case-insensitive scan for every rule keyword.
    prefilter: AhoCorasick,
    /// For each prefilter pattern, the bit set of rules it enables.
    keyword_rules: Vec<u64>,
    /// `secret_key_suffix!()` anchored at the end, for JSON object keys.
    secret_key: Regex,
    /// The first and last lines of a private key block.
    key_begin: Regex,
    key_end: Regex,
}

impl Redactor {
    /// Compiles the built-in rules. Call once and share (see [`global`]).
    pub fn new() -> Self {
        const _: () = assert!(RULES.len() <= u64::BITS as usize);
        let rules = RULES
            .iter()
            .map(|spec| Rule {
                regex: Regex::new(spec.pattern)
                    .unwrap_or_else(|err| panic!("the {} rule does not compile: {err}", spec.name)),
                secret: spec.secret,
            })
            .collect();

        let mut keywords: Vec<&'static str> = Vec::new();
        let mut keyword_rules: Vec<u64> = Vec::new();
        for (index, spec) in RULES.iter().enumerate() {
            for keyword in spec.keywords {
                match keywords
                    .iter()
                    .position(|k| k.eq_ignore_ascii_case(keyword))
                {
                    Some(at) => keyword_rules[at] |= 1 << index,
                    None => {
                        keywords.push(keyword);
                        keyword_rules.push(1 << index);
                    }
                }
            }
        }
        // A DFA: the fastest scan, and every line of every build goes through it.
        let prefilter = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&keywords)
            .expect("built-in rule compiles");
        let secret_key = Regex::new(concat!("(?i-u:", secret_key_suffix!(), ")$"))
            .expect("built-in rule compiles");

        let marker = |edge: &str| {
            Regex::new(&format!(
                "(?i-u:-----{edge}[ A-Z0-9_-]{{0,100}}PRIVATE KEY(?: BLOCK)?-----)"
            ))
            .expect("built-in rule compiles")
        };
        Redactor {
            rules,
            prefilter,
            keyword_rules,
            secret_key,
            key_begin: marker("BEGIN"),
            key_end: marker("END"),
        }
    }

    /// Returns `text` with every secret replaced by `[REDACTED]`, borrowing it unchanged when
    /// nothing matched. Secrets are looked for in the text as a reader sees it: when escape
    /// sequences or control characters hid one, the result is that plain text, redacted.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.redact_seen(text, printable::for_matching(text))
    }

    /// [`Redactor::redact`] of `text` whose plain form (`printable::for_matching`) is `plain`.
    fn redact_seen<'a>(&self, text: &'a str, plain: Cow<'a, str>) -> Cow<'a, str> {
        match plain {
            Cow::Borrowed(plain) => self.redact_plain(plain),
            Cow::Owned(plain) => match self.redact_plain(&plain) {
                // Nothing to hide: the text keeps its colors.
                Cow::Borrowed(_) => Cow::Borrowed(text),
                Cow::Owned(redacted) => Cow::Owned(redacted),
            },
        }
    }

    fn redact_plain<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        let candidates = self.candidate_rules(text);
        if candidates == 0 {
            return out;
        }
        // Rules see each other's output, and a redaction can shorten the text
        // between a keyword and a secret (`vercel … <24 chars>`), so repeat
        // until a pass changes nothing: that makes `redact` idempotent. No
        // keyword contains `[` or `]` or occurs in `[REDACTED]`, so a pass
        // can only remove keyword hits, and the first scan stays valid.
        for _ in 0..MAX_PASSES {
            if !self.redact_pass(candidates, &mut out) {
                break;
            }
        }
        out
    }

    /// `text` redacted, then made fit to show as `shown` says; `None` when it already is both.
    pub fn redact_shown(&self, text: &str, shown: Shown) -> Option<String> {
        self.redact_shown_seen(text, printable::for_matching(text), shown)
    }

    /// [`Redactor::redact_shown`] of `text` whose plain form is `plain` (looked at once for a
    /// private key block and for secrets).
    pub fn redact_shown_seen<'a>(
        &self,
        text: &'a str,
        plain: Cow<'a, str>,
        shown: Shown,
    ) -> Option<String> {
        let show = |text| match shown {
            Shown::OneLine => printable::one_line(text),
            Shown::Text { keep_color } => printable::display(text, keep_color),
        };
        match self.redact_seen(text, plain) {
            Cow::Borrowed(text) => match show(text) {
                Cow::Borrowed(_) => None,
                Cow::Owned(clean) => Some(clean),
            },
            Cow::Owned(redacted) => Some(show(&redacted).into_owned()),
        }
    }

    /// Does `plain` (a line as `printable::for_matching` gives it) begin a private key block
    /// that it does not end (a key printed a line at a time)?
    pub fn opens_key_block(&self, plain: &str) -> bool {
        let Some(begin) = self.key_begin.find_iter(plain).last() else {
            return false;
        };
        !self.key_end.is_match(&plain[begin.end()..])
    }

    /// Where a private key block's END line ends in `plain`, if it has one.
    pub fn key_block_end(&self, plain: &str) -> Option<usize> {
        self.key_end.find(plain).map(|end| end.end())
    }

    /// Runs the `candidates` rules once over `text`; true if any changed it.
    fn redact_pass(&self, candidates: u64, text: &mut Cow<'_, str>) -> bool {
        let mut changed = false;
        for (index, rule) in self.rules.iter().enumerate() {
            if candidates & (1 << index) == 0 {
                continue;
            }
            if let Some(redacted) = rule.apply(text) {
                *text = Cow::Owned(redacted);
                changed = true;
            }
        }
        changed
    }

    /// Bit set of the rules whose keywords occur in `text`.
    fn candidate_rules(&self, text: &str) -> u64 {
        // `is_match` stops early and is cheaper than an overlapping scan on
        // the common line that hits nothing.
        if !self.prefilter.is_match(text) {
            return 0;
        }
        self.prefilter
            .find_overlapping_iter(text)
            .fold(0, |set, hit| {
                set | self.keyword_rules[hit.pattern().as_usize()]
            })
    }

    /// Redacts a JSON value in place: every string is passed through
    /// [`Redactor::redact`], and a string or number under a sensitive key
    /// (see `SENSITIVE_JSON_KEYS`, or a key ending like `GITHUB_TOKEN`) is
    /// replaced whole. Objects under sensitive keys are searched as usual;
    /// arrays pass the key's sensitivity on to their elements.
    pub fn redact_value(&self, value: &mut Value) {
        // An explicit stack: values built in code can nest deeper than the
        // call stack would like.
        let mut stack: Vec<(&mut Value, bool)> = vec![(value, false)];
        while let Some((value, sensitive)) = stack.pop() {
            if sensitive && (value.is_string() || value.is_number()) {
                *value = Value::String(REDACTED.to_owned());
                continue;
            }
            match value {
                Value::String(text) => {
                    if let Some(clean) = self.redact_shown(text, Shown::Text { keep_color: false })
                    {
                        *text = clean;
                    }
                }
                Value::Array(items) => stack.extend(items.iter_mut().map(|item| (item, sensitive))),
                Value::Object(map) => stack.extend(
                    map.iter_mut()
                        .map(|(key, item)| (item, self.is_sensitive_key(key))),
                ),
                Value::Null | Value::Bool(_) | Value::Number(_) => {}
            }
        }
    }

    /// Case-insensitive, with `-` and `_` treated alike.
    fn is_sensitive_key(&self, key: &str) -> bool {
        let normalised = |b: u8| {
            if b == b'-' {
                b'_'
            } else {
                b.to_ascii_lowercase()
            }
        };
        SENSITIVE_JSON_KEYS.iter().any(|name| {
            name.len() == key.len()
                && name
                    .bytes()
                    .zip(key.bytes())
                    .all(|(n, k)| n == normalised(k))
        }) || self.secret_key.is_match(key)
    }
}

impl Default for Redactor {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("rules", &self.rules.len())
            .finish()
    }
}

/// The process-wide redactor, compiled on first use.
pub fn global() -> &'static Redactor {
    static GLOBAL: OnceLock<Redactor> = OnceLock::new();
    GLOBAL.get_or_init(Redactor::new)
}

#[cfg(test)]
mod tests;
