//! Secret redaction for build-log lines and JSON payloads.
//!
//! Every line passes through [`Redactor::redact`] before any sink sees it, so
//! the common case (a line with no secret) has to be cheap: a single
//! case-insensitive Aho-Corasick scan for rule keywords decides which regexes
//! run at all, and a line that hits nothing is returned as `Cow::Borrowed`.
//!
//! Conventions for the rule table below:
//! - every *capturing* group of a rule's regex is a secret and is replaced by
//!   [`REDACTED`]; context that must survive uses non-capturing groups;
//! - every rule lists the keywords that must occur (case-insensitively) in a
//!   text for its regex to be able to match.

use std::borrow::Cow;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind};
use regex::Regex;
use serde_json::Value;

/// The replacement for every secret.
pub const REDACTED: &str = "[REDACTED]";

/// Upper bound on redaction passes over one text (see [`Redactor::redact`]).
const MAX_PASSES: usize = 4;

struct RuleSpec {
    keywords: &'static [&'static str],
    pattern: &'static str,
}

/// Key names that mark an assignment or JSON value as secret when a key
/// *ends* with them (case-insensitive). Anchoring at the end is what keeps
/// `tokenizer`, `author`, `accessor`, `primaryKey`, `keyPressed`,
/// `public_key` and `api_version` out. A macro so `concat!` can use it.
macro_rules! secret_key_suffix {
    () => {
        r"(?:token|secret|passwd|password|passphrase|pwd|signature|_auth|(?:api|access|secret|private|signing|encryption|master|auth|client|session|webhook)[_-]?key)"
    };
}

/// Exact JSON keys (normalised: lower-case, `-` → `_`) whose value is secret.
const SENSITIVE_JSON_KEYS: &[&str] = &[
    "authorization",
    "proxy_authorization",
    "cookie",
    "set_cookie",
    "password",
    "passwd",
    "secret",
    "token",
    "access_token",
    "refresh_token",
    "client_secret",
    "api_key",
    "apikey",
    "private_key",
    "x_api_key",
    "x_vercel_signature",
    "bearer",
    "credentials",
];

// Keyword matching is ASCII case-insensitive, so every case-insensitive part
// of a pattern is too (`(?i-u:…)`): under Unicode rules `(?i)s` would also
// match `ſ` and slip past the prefilter.
const RULES: &[RuleSpec] = &[
    // Private key block. Logs arrive line by line, so a BEGIN without an END
    // redacts to the end of the text.
    RuleSpec {
        keywords: &["private key"],
        pattern: r"((?i-u:-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----)(?s:.*?)(?:(?i-u:-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----)|\z))",
    },
    // JWT.
    RuleSpec {
        keywords: &["eyj"],
        pattern: r"(eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)",
    },
    // Vercel tokens (secretlint). `[^\p{L}]` stands in for a look-behind.
    RuleSpec {
        keywords: &["vcp_", "vci_", "vca_", "vcr_", "vck_"],
        pattern: r"(?:^|[^\p{L}])((?:vcp|vci|vca|vcr|vck)_[A-Za-z0-9]{20,})",
    },
    // Legacy unprefixed Vercel token: 24 alphanumerics within 40 characters
    // after the word "vercel" (trufflehog).
    RuleSpec {
        keywords: &["vercel"],
        pattern: r"(?i-u:vercel)(?s:.){0,40}?(?-u:\b)([A-Za-z0-9]{24})(?-u:\b)",
    },
    // GitHub classic tokens.
    RuleSpec {
        keywords: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        pattern: r"((?:ghp|gho|ghu|ghs|ghr)_[0-9A-Za-z]{36,})",
    },
    // GitHub fine-grained personal access token.
    RuleSpec {
        keywords: &["github_pat_"],
        pattern: r"(github_pat_[0-9A-Za-z_]{82,})",
    },
    // AWS access key id.
    RuleSpec {
        keywords: &["a3t", "akia", "asia", "abia", "acca"],
        pattern: r"(?-u:\b)((?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})(?-u:\b)",
    },
    // AWS secret access key in an assignment.
    RuleSpec {
        keywords: &["secret"],
        pattern: r#"(?i-u:aws_?secret_?access_?key["']?[ \t]*[:=][ \t]*["']?)([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
    },
    // Slack bot/user/app/config tokens.
    RuleSpec {
        keywords: &["xox", "xapp-"],
        pattern: r"((?:xox[baprse]|xoxe\.xox[bp]|xapp)-[0-9A-Za-z-]{10,})",
    },
    // Slack webhook URL: keep the host and kind, drop the path.
    RuleSpec {
        keywords: &["hooks.slack"],
        pattern: r"hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9+/]{20,})",
    },
    // Discord webhook URL: the id is public, the token is not.
    RuleSpec {
        keywords: &["discord"],
        pattern: r"(?i-u:discord(?:app)?\.com/api/(?:v[0-9]+/)?webhooks/)[0-9]+/([A-Za-z0-9_-]+)",
    },
    // Stripe secret and restricted keys. The left boundary keeps `task_test_…` out.
    RuleSpec {
        keywords: &[
            "sk_test_", "sk_live_", "sk_prod_", "rk_test_", "rk_live_", "rk_prod_",
        ],
        pattern: r"(?:^|[^A-Za-z0-9])((?:sk|rk)_(?:test|live|prod)_[A-Za-z0-9]{10,})",
    },
    // npm access token.
    RuleSpec {
        keywords: &["npm_"],
        pattern: r"(npm_[A-Za-z0-9]{36,})",
    },
    // Authorization header, any scheme: keep a known scheme, drop the rest of the value.
    RuleSpec {
        keywords: &["authorization"],
        pattern: r#"(?i-u:authorization["']?[ \t]*[:=][ \t]*["']?(?:(?:bearer|basic|token|digest|negotiate|ntlm|dpop|jwt|apikey|api-key|key|hmac|aws4-hmac-sha256)[ \t]+)?)([^\s"'`][^"'`\r\n]*)"#,
    },
    // Bare bearer token anywhere.
    RuleSpec {
        keywords: &["bearer"],
        pattern: r"(?i-u:\bbearer[ \t]+)([A-Za-z0-9._~+/-]+=*)",
    },
    // Cookie and Set-Cookie header values.
    RuleSpec {
        keywords: &["cookie"],
        pattern: r#"(?i-u:\b(?:set-)?cookie["']?[ \t]*:[ \t]*["']?)([^\s"'`][^"'`\r\n]*)"#,
    },
    // Credentials in URLs: `scheme://user:pass@` (user may be empty), or a
    // long token as the whole userinfo. Short users (`ssh://git@…`) stay.
    RuleSpec {
        keywords: &["://"],
        pattern: r#"[A-Za-z][A-Za-z0-9+.-]*://(?:[^\s/?#@:"'`]*:([^\s/?#"'`]+)|([A-Za-z0-9_.~%-]{16,}))@"#,
    },
    // `key=value`, `key: value`, `"key": "value"` where the key ends in a
    // secret-ish name. Values up to whitespace, `&`, `,`, `;` or a quote.
    // The `key…` keywords cover every `(api|access|…)key` suffix.
    RuleSpec {
        keywords: &[
            "token",
            "secret",
            "passw",
            "passphrase",
            "pwd",
            "signature",
            "_auth",
            "key=",
            "key:",
            "key\"",
            "key'",
            "key ",
            "key\t",
        ],
        pattern: concat!(
            "(?i-u:",
            secret_key_suffix!(),
            r#"["']?[ \t]*[:=][ \t]*)"#,
            r#"(?:"((?:[^"\\\r\n]|\\.)*)"|'([^'\r\n]*)'|([^\s"'`&,;=\[{][^\s"'`&,;]*))"#,
        ),
    },
];

/// One compiled rule.
struct Rule {
    regex: Regex,
}

impl Rule {
    /// Replaces every capture group of every match; `None` if nothing changed.
    fn apply(&self, text: &str) -> Option<String> {
        let mut out: Option<String> = None;
        let mut copied = 0;
        for caps in self.regex.captures_iter(text) {
            for secret in caps.iter().skip(1).flatten() {
                if secret.start() < copied || is_placeholder(secret.as_str()) {
                    continue;
                }
                let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
                buf.push_str(&text[copied..secret.start()]);
                buf.push_str(REDACTED);
                copied = secret.end();
            }
        }
        out.map(|mut buf| {
            buf.push_str(&text[copied..]);
            buf
        })
    }
}

/// Values that are not secrets even where a secret is expected. Keeping
/// `token=undefined` readable is worth more to on-call than hiding it.
fn is_placeholder(value: &str) -> bool {
    value.is_empty()
        || value == REDACTED
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
}

impl Redactor {
    /// Compiles the built-in rules. Call once and share (see [`global`]).
    pub fn new() -> Self {
        const _: () = assert!(RULES.len() <= u64::BITS as usize);
        let rules = RULES
            .iter()
            .map(|spec| Rule {
                regex: Regex::new(spec.pattern).expect("built-in rule compiles"),
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

        Redactor {
            rules,
            prefilter,
            keyword_rules,
            secret_key,
        }
    }

    /// Returns `text` with every secret replaced by `[REDACTED]`, borrowing
    /// it unchanged when nothing matched.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
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
                    if let Cow::Owned(redacted) = self.redact(text) {
                        *text = redacted;
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
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn redact(text: &str) -> Cow<'_, str> {
        global().redact(text)
    }

    /// (input, secrets that must not survive)
    const TRUE_POSITIVES: &[(&str, &[&str])] = &[
        ("aws_access_key_id = AKIALALEMEL33243OLIB", &["AKIALALEMEL33243OLIB"]),
        ("key id ASIAY34FZKBOKMUTVV7A in use", &["ASIAY34FZKBOKMUTVV7A"]),
        (
            "aws_secret_access_key = /799NksnRH9ucAUsdMlHUvTCQCyEZDz+TddJ8HyS",
            &["/799NksnRH9ucAUsdMlHUvTCQCyEZDz+TddJ8HyS"],
        ),
        (
            "slack: xoxb-781236542736-2364535789652-GkwFDQoHqzXDVsC6GzqYUypD",
            &["781236542736-2364535789652-GkwFDQoHqzXDVsC6GzqYUypD"],
        ),
        (
            "SLACK_USER=xoxp-7551313735-379907511637-2651676122202-e4fb440034d6608697a8d41bed440e50",
            &["e4fb440034d6608697a8d41bed440e50"],
        ),
        (
            "notify https://hooks.slack.com/services/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",
            &["bJtrpFi1fO1JMCcwLx8uZyAg", "T0DCUJB1Q/B0DD08H5G"],
        ),
        (
            "POST https://discord.com/api/webhooks/1234567890123456789/OlUcR64cXQLioDnkHIfxIq2HZt-PlJhx2jIclHkCiHp6bR1IqfEouHgxzNNAL5wIScGe",
            &["OlUcR64cXQLioDnkHIfxIq2HZt-PlJhx2jIclHkCiHp6bR1IqfEouHgxzNNAL5wIScGe"],
        ),
        (
            "using vcp_aBcDeFgHiJkLmNoPqRsT1234567890abcdefghij",
            &["aBcDeFgHiJkLmNoPqRsT1234567890abcdefghij"],
        ),
        (
            "(vca_BQuu9ChDu3n6Pfh6YQnCshpoYkWDSFKogLqmBtQ0tC8NAA5rXt340sjz)",
            &["BQuu9ChDu3n6Pfh6YQnCshpoYkWDSFKogLqmBtQ0tC8NAA5rXt340sjz"],
        ),
        (
            "VERCEL_TOKEN=abcdefghijklmnopqrstuvwx",
            &["abcdefghijklmnopqrstuvwx"],
        ),
        (
            "vercel deploy --prod --token Xy7kP2mQ9rT4vW1zA8bC3dE5",
            &["Xy7kP2mQ9rT4vW1zA8bC3dE5"],
        ),
        (
            "origin ghp_u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8d ok",
            &["u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8d"],
        ),
        ("gho_KLzdocJ2isAjIhKtJ0RlgLKOmxgJTeKdNnFR", &["KLzdocJ2isAjIhKtJ0RlgLKOmxgJTeKdNnFR"]),
        (
            "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",
            &["FAc9QeWJKY40uvSwMFLZDe_1f8rESQedUStPKR0CsTy4Qwb8DwkNhFdnXsiVpzz63FfkCzJr4i0B3JrTAw"],
        ),
        ("charge with sk_live_VdD53X83RZJzzzzgEOzdmenC", &["VdD53X83RZJzzzzgEOzdmenC"]),
        ("rk_test_khvMdgaKjIg8xNbe3nNyjOq9wMxEhh", &["khvMdgaKjIg8xNbe3nNyjOq9wMxEhh"]),
        (
            "//registry.npmjs.org/:_authToken=npm_R4y9ojfljoQoaF1LlqsajAIxNKu8iS2G8NPR",
            &["R4y9ojfljoQoaF1LlqsajAIxNKu8iS2G8NPR"],
        ),
        (
            "jwt eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
            &["eyJzdWIiOiIxMjM0NTY3ODkwIn0", "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"],
        ),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIItws8phP9nhFyJfm5di4PzJ59FHz5r1pY4OjE2jBMptUsGr7CmY/uCu3ZR1zT\n-----END RSA PRIVATE KEY-----",
            &["MIItws8phP9nhFyJfm5di4PzJ59FHz5r1pY4OjE2jBMptUsGr7CmY/uCu3ZR1zT"],
        ),
        (
            r#"{"private_key": "-----BEGIN PRIVATE KEY-----\nMIItws8phP9nhFyJfm5di4PzJ59FHz5r1pY4OjE2jBM\n-----END PRIVATE KEY-----\n"}"#,
            &["MIItws8phP9nhFyJfm5di4PzJ59FHz5r1pY4OjE2jBM"],
        ),
        (
            "-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ",
            &["b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"],
        ),
        (
            "Authorization: Basic dXNlcjpodW50ZXIy",
            &["dXNlcjpodW50ZXIy"],
        ),
        (
            "proxy-authorization: Custom realm=abc123secret",
            &["realm=abc123secret"],
        ),
        ("Bearer abc.def-ghi_jkl~mno+pqr/stu==", &["abc.def-ghi_jkl~mno+pqr/stu=="]),
        (
            "Set-Cookie: __Secure-authjs.session-token=s3ss10n; Path=/; HttpOnly; Secure",
            &["s3ss10n", "HttpOnly"],
        ),
        (
            "DATABASE_URL=postgres://admin:s3cr3t!P4ss@db.internal:5432/app",
            &["s3cr3t!P4ss"],
        ),
        ("redis://:hunter2hunter2@cache.internal:6379", &["hunter2hunter2"]),
        (
            "https://0123456789abcdef0123456789abcdef@github.com/acme/web.git",
            &["0123456789abcdef0123456789abcdef"],
        ),
        ("password=hunter2", &["hunter2"]),
        ("passwd: hunter2", &["hunter2"]),
        ("mysql -u root --pwd=hunter2", &["hunter2"]),
        ("secret=shh123", &["shh123"]),
        ("token=abc123", &["abc123"]),
        ("api_key=abc123", &["abc123"]),
        ("X-Api-Key: abc123", &["abc123"]),
        ("apiKey: 'abc123'", &["abc123"]),
        ("access_token=abc123&expires_in=3600", &["abc123"]),
        (r#"{"client_secret": "with spaces \" and quote"}"#, &["with spaces", "and quote"]),
        ("auth_token: abc123", &["abc123"]),
        ("GITHUB_TOKEN=abc123", &["abc123"]),
        ("SOME_SECRET=abc123", &["abc123"]),
        ("DATABASE_PASSWORD=abc123", &["abc123"]),
        ("stripeSecretKey = \"abc123\"", &["abc123"]),
        (
            "GET https://bucket.s3.amazonaws.com/a.zip?X-Amz-Signature=8f3a9c7e1b2d&X-Amz-Date=20250101",
            &["8f3a9c7e1b2d"],
        ),
        ("pässwörd ✓ token=🔑geheim", &["🔑geheim"]),
    ];

    /// (input, exact output): the non-secret context survives.
    const CONTEXT_KEPT: &[(&str, &str)] = &[
        (
            "Authorization: Bearer abc123",
            "Authorization: Bearer [REDACTED]",
        ),
        (
            "authorization: token abc123",
            "authorization: token [REDACTED]",
        ),
        (
            r#"curl -H "Authorization: Bearer abc123" https://api.vercel.com/v9/projects"#,
            r#"curl -H "Authorization: Bearer [REDACTED]" https://api.vercel.com/v9/projects"#,
        ),
        (
            "retrying with bearer abc123 now",
            "retrying with bearer [REDACTED] now",
        ),
        ("Cookie: a=1; b=2", "Cookie: [REDACTED]"),
        ("password=hunter2", "password=[REDACTED]"),
        (
            r#"{"password": "hunter2", "user": "bob"}"#,
            r#"{"password": "[REDACTED]", "user": "bob"}"#,
        ),
        ("token: abc, next", "token: [REDACTED], next"),
        ("https://user:pass@host/x", "https://user:[REDACTED]@host/x"),
        (
            "https://0123456789abcdef0123456789abcdef@github.com",
            "https://[REDACTED]@github.com",
        ),
        (
            "https://x-access-token:ghs_IBXuDL7DxtpYlSXpfKtHF4vUCsMehGAkWvj7@github.com/acme/web",
            "https://x-access-token:[REDACTED]@github.com/acme/web",
        ),
        (
            "https://hooks.slack.com/services/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",
            "https://hooks.slack.com/services/[REDACTED]",
        ),
        (
            "https://discord.com/api/webhooks/1234567890/abcDEF_123-xyz",
            "https://discord.com/api/webhooks/1234567890/[REDACTED]",
        ),
        (
            "key vcp_aBcDeFgHiJkLmNoPqRsT1234567890abcdefghij.",
            "key [REDACTED].",
        ),
        (
            "-----BEGIN EC PRIVATE KEY-----\nabc\ndef\n-----END EC PRIVATE KEY-----\ntrailer",
            "[REDACTED]\ntrailer",
        ),
        ("-----BEGIN PRIVATE KEY-----", "[REDACTED]"),
        ("AKIALALEMEL33243OLIB", "[REDACTED]"),
        // Placeholders are not secrets, and seeing them helps debugging.
        (
            "token=undefined password=null",
            "token=undefined password=null",
        ),
        (
            "Authorization: Bearer undefined",
            "Authorization: Bearer undefined",
        ),
    ];

    /// Realistic Vercel / npm / Next.js build output: none of it may change.
    const ORDINARY_LINES: &[&str] = &[
        "Running build in Washington, D.C., USA (East) – iad1",
        "Build machine configuration: 4 cores, 8 GB",
        "Cloning github.com/acme/storefront (Branch: main, Commit: 4f2a9c1)",
        "Cloning completed: 812.000ms",
        "Restored build cache from previous deployment (9Hx2kLmQpR4sT6vW8yZ1aB3cD5eF)",
        "Running \"vercel build\"",
        "Vercel CLI 41.1.4",
        "Installing dependencies...",
        "npm warn deprecated inflight@1.0.6: This module is not supported, and leaks memory. Do not use it.",
        "npm warn deprecated glob@7.2.3: Glob versions prior to v9 are no longer supported",
        "added 1287 packages, and audited 1288 packages in 24s",
        "Detected Next.js version: 15.1.0",
        "Running \"npm run build\"",
        "> storefront@0.1.0 build",
        "> next build",
        "   ▲ Next.js 15.1.0",
        "   - Environments: .env.production",
        "   Creating an optimized production build ...",
        " ✓ Compiled successfully in 12.3s",
        "   Linting and checking validity of types ...",
        " ✓ Generating static pages (24/24)",
        "Route (app)                              Size     First Load JS",
        "┌ ○ /                                    5.2 kB         110 kB",
        "├ ƒ /api/auth/[...nextauth]              0 B                0 B",
        "+ First Load JS shared by all            102 kB",
        "○  (Static)   prerendered as static content",
        "  - Local:        http://localhost:3000",
        "Learn more: https://nextjs.org/telemetry",
        "Warning: Each child in a list should have a unique \"key\" prop.",
        "SyntaxError: Unexpected token '<', \"<!DOCTYPE \"... is not valid JSON",
        "    at Object.<anonymous> (/vercel/path0/node_modules/next/dist/build/index.js:375:21)",
        "Traced Next.js server files in: 402.112ms",
        "Created all serverless functions in: 1.2s",
        "Build Completed in /vercel/output [58s]",
        "Uploading build cache [184.32 MB]...",
        "Inspect: https://vercel.com/acme/storefront/89qyp1cskzkLrVicDaZoDbjyHuDJ [3s]",
        "Production: https://storefront-7h2k9x1qa-acme.vercel.app [45s]",
        "git clone ssh://git@github.com/acme/web.git",
        "npm notice New major version of npm available! 10.8.2 -> 11.0.0",
        "",
    ];

    /// gitleaks `generic-api-key` false positives and other near misses:
    /// they contain keywords, but must not change either.
    const NEAR_MISSES: &[&str] = &[
        "const accessor = \"abc123def456\"",
        "api_version=2024-06-20",
        "author: \"Jane Doe <jane@example.com>\"",
        "primaryKey: \"id\"",
        "keyPressed = \"Enter\"",
        "public_key = \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG\"",
        "tokenizer = \"cl100k_base\"",
        "max_tokens=4096",
        "task_test_1234567890abcdef",
        "Asia/Tokyo",
    ];

    #[test]
    fn true_positives_are_redacted() {
        for (input, secrets) in TRUE_POSITIVES {
            let out = redact(input);
            assert!(out.contains(REDACTED), "not redacted: {input:?} -> {out:?}");
            for secret in *secrets {
                assert!(
                    !out.contains(secret),
                    "{secret:?} leaked: {input:?} -> {out:?}"
                );
            }
        }
    }

    #[test]
    fn context_is_kept() {
        for (input, expected) in CONTEXT_KEPT {
            assert_eq!(redact(input), *expected, "input: {input:?}");
        }
    }

    #[test]
    fn ordinary_lines_and_near_misses_are_borrowed_and_unchanged() {
        for line in ORDINARY_LINES.iter().chain(NEAR_MISSES) {
            match redact(line) {
                Cow::Borrowed(out) => assert_eq!(out, *line),
                Cow::Owned(out) => panic!("changed: {line:?} -> {out:?}"),
            }
        }
    }

    #[test]
    fn most_ordinary_lines_skip_every_rule() {
        let redactor = global();
        let clean = ORDINARY_LINES
            .iter()
            .filter(|line| redactor.candidate_rules(line) == 0)
            .count();
        assert!(
            clean * 10 >= ORDINARY_LINES.len() * 7,
            "only {clean} of {} lines skip the regexes",
            ORDINARY_LINES.len()
        );
    }

    #[test]
    fn redacted_output_is_borrowed_on_second_pass() {
        for (input, _) in TRUE_POSITIVES {
            let once = redact(input).into_owned();
            assert!(
                matches!(redact(&once), Cow::Borrowed(_)),
                "not stable: {input:?} -> {once:?}"
            );
        }
    }

    #[test]
    fn later_rules_can_enable_earlier_ones() {
        // The GitHub token hides the legacy Vercel token more than 40
        // characters after "vercel"; once redacted, the Vercel one is in range.
        let input = "vercel ghp_u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8d abcdefghijklmnopqrstuvwx";
        let once = redact(input);
        assert_eq!(once, "vercel [REDACTED] [REDACTED]");
        assert!(matches!(redact(&once), Cow::Borrowed(_)));
    }

    #[test]
    fn rule_table_is_consistent() {
        let redactor = global();
        assert_eq!(redactor.rules.len(), RULES.len());
        for (rule, spec) in redactor.rules.iter().zip(RULES) {
            assert!(
                rule.regex.captures_len() > 1,
                "no secret group: {}",
                spec.pattern
            );
            assert!(!spec.keywords.is_empty(), "no keyword: {}", spec.pattern);
            for keyword in spec.keywords {
                // `redact` relies on redactions never creating keyword hits.
                let keyword = keyword.to_ascii_lowercase();
                assert!(!keyword.contains(['[', ']']), "{keyword}");
                assert!(!"[redacted]".contains(&keyword), "{keyword}");
            }
        }
    }

    #[test]
    fn every_rule_fires_on_the_corpus_and_passes_the_prefilter() {
        let redactor = global();
        let corpus = TRUE_POSITIVES
            .iter()
            .map(|(input, _)| *input)
            .chain(CONTEXT_KEPT.iter().map(|(input, _)| *input));
        let mut fired = 0u64;
        for input in corpus {
            let candidates = redactor.candidate_rules(input);
            for (index, rule) in redactor.rules.iter().enumerate() {
                if rule.apply(input).is_some() {
                    assert_ne!(
                        candidates & (1 << index),
                        0,
                        "rule {index} filtered out: {input:?}"
                    );
                    fired |= 1 << index;
                }
            }
        }
        for (index, spec) in RULES.iter().enumerate() {
            assert_ne!(
                fired & (1 << index),
                0,
                "no true positive for {}",
                spec.pattern
            );
        }
    }

    #[test]
    fn redactor_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Redactor>();
    }

    #[test]
    fn debug_does_not_dump_regexes() {
        let shown = format!("{:?}", Redactor::new());
        assert_eq!(shown, format!("Redactor {{ rules: {} }}", RULES.len()));
    }

    #[test]
    fn global_is_shared() {
        assert!(std::ptr::eq(global(), global()));
        assert_eq!(Redactor::default().rules.len(), global().rules.len());
    }

    #[test]
    fn redact_value_recurses_and_redacts_sensitive_keys() {
        let mut value = json!({
            "headers": {
                "Authorization": "Bearer abc123",
                "Set-Cookie": ["a=1", "b=2"],
                "X_API_KEY": 12345,
                "accept": "application/json",
            },
            "env": {
                "GITHUB_TOKEN": "plainvalue",
                "NODE_ENV": "production",
                "DATABASE_PASSWORD": "",
            },
            "message": "connect postgres://u:pw@db/app",
            "token": { "value": "opaque", "expires": 3600, "access_token": "opaque" },
            "credentials": null,
            "secret": true,
            "items": [{ "password": "x" }, "Bearer abc123", 42, false],
            "primaryKey": "id",
            "author": "jane",
            "tokenizer": "bpe",
        });
        global().redact_value(&mut value);
        assert_eq!(
            value,
            json!({
                "headers": {
                    "Authorization": "[REDACTED]",
                    "Set-Cookie": ["[REDACTED]", "[REDACTED]"],
                    "X_API_KEY": "[REDACTED]",
                    "accept": "application/json",
                },
                "env": {
                    "GITHUB_TOKEN": "[REDACTED]",
                    "NODE_ENV": "production",
                    "DATABASE_PASSWORD": "[REDACTED]",
                },
                "message": "connect postgres://u:[REDACTED]@db/app",
                "token": { "value": "opaque", "expires": 3600, "access_token": "[REDACTED]" },
                "credentials": null,
                "secret": true,
                "items": [{ "password": "[REDACTED]" }, "Bearer [REDACTED]", 42, false],
                "primaryKey": "id",
                "author": "jane",
                "tokenizer": "bpe",
            })
        );
    }

    #[test]
    fn redact_value_survives_deep_nesting() {
        let mut value = json!("token=abc");
        for _ in 0..100_000 {
            value = Value::Array(vec![value]);
        }
        global().redact_value(&mut value);
        let mut inner = &value;
        while let Value::Array(items) = inner {
            inner = &items[0];
        }
        assert_eq!(inner, "token=[REDACTED]");
        // Dropping a value this deep recurses in serde_json; unwind it by hand.
        while let Value::Array(mut items) = value {
            value = items.pop().unwrap_or(Value::Null);
        }
    }

    /// Pieces that make the rules fire, overlap and interact.
    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("token=".to_owned()),
            Just("\"password\": \"".to_owned()),
            Just("Authorization: Bearer ".to_owned()),
            Just("bearer ".to_owned()),
            Just("Set-Cookie: ".to_owned()),
            Just("apiKey: ".to_owned()),
            Just("aws_secret_access_key=".to_owned()),
            Just("\u{17f}ecret=".to_owned()),
            Just("\u{212a}ey=".to_owned()),
            Just("vercel ".to_owned()),
            Just("https://".to_owned()),
            Just(":".to_owned()),
            Just("@".to_owned()),
            Just("-----BEGIN PRIVATE KEY-----".to_owned()),
            Just("-----END PRIVATE KEY-----".to_owned()),
            Just("vcp_".to_owned()),
            Just("ghp_".to_owned()),
            Just("AKIA".to_owned()),
            Just("xoxb-".to_owned()),
            Just("eyJ".to_owned()),
            Just("sk_live_".to_owned()),
            Just("hooks.slack.com/services/".to_owned()),
            Just(REDACTED.to_owned()),
            "[A-Za-z0-9]{1,30}",
            "[ =:;,&'\"\n.@/_-]{1,3}",
            "[ä€𝄞✓▲ƒ]{1,3}",
            any::<String>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn redaction_is_idempotent(parts in prop::collection::vec(fragment(), 0..12)) {
            let text = parts.concat();
            let once = redact(&text).into_owned();
            let twice = redact(&once);
            prop_assert!(matches!(twice, Cow::Borrowed(_)), "{:?} -> {:?} -> {:?}", text, once, twice);
        }

        #[test]
        fn prefilter_never_hides_a_match(parts in prop::collection::vec(fragment(), 0..12)) {
            let text = parts.concat();
            let redactor = global();
            let candidates = redactor.candidate_rules(&text);
            for (index, rule) in redactor.rules.iter().enumerate() {
                if rule.regex.is_match(&text) {
                    prop_assert_ne!(candidates & (1 << index), 0, "rule {} on {:?}", index, text);
                }
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            let once = redact(&text).into_owned();
            prop_assert_eq!(redact(&once), once.as_str());
        }
    }
}
