//! The redaction table: every secret format shiplog knows, in one place. Formats come from
//! gitleaks, secretlint, trufflehog and the vendors' own token documentation.
//!
//! Conventions:
//! - every *capturing* group of a rule's regex is a secret and is replaced by `[REDACTED]`
//!   (unless the rule's [`Secret`] says otherwise); context that must survive uses
//!   non-capturing groups, so only the secret goes and the rest of the line stays byte for byte;
//! - every rule lists keywords, one of which occurs (ASCII case-insensitively) in any text its
//!   regex can match: the prefilter runs a rule only where one of them occurs;
//! - case-insensitive parts are `(?i-u:…)`: under Unicode rules `(?i)s` would also match `ſ`
//!   and slip past the prefilter;
//! - `\\?` before a quote or a slash also matches JSON escaped inside a line (`{\"password\":`,
//!   `https:\/\/hooks.slack.com`).
//!
//! Rules run on the text as a reader sees it (escape sequences and control characters removed,
//! see `printable::for_matching`), so colors or a BEL inside a secret do not hide it.

/// What a rule's capture groups are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Secret {
    /// Every capture group is a secret.
    Groups,
    /// `scheme://user:password@`: the password is a secret unless it is a port and path
    /// (`http://localhost:3000/@vite/client`); the user only when it looks like a token
    /// (`https://<token>:x-oauth-basic@github.com`).
    UrlUserinfo,
    /// The one group is a `Cookie` or `Set-Cookie` header's value: each cookie's value is a
    /// secret, its name and a `Set-Cookie`'s attributes (`Path`, `HttpOnly`...) are not.
    CookieValues,
}

pub(super) struct RuleSpec {
    pub(super) name: &'static str,
    pub(super) keywords: &'static [&'static str],
    pub(super) pattern: &'static str,
    pub(super) secret: Secret,
}

/// Key names that mark an assignment or JSON value as secret when a key *ends* with them
/// (case-insensitive). Anchoring at the end keeps `tokenizer`, `author`, `accessor`,
/// `primaryKey`, `keyPressed`, `public_key` and `api_version` out. A macro so `concat!` can
/// use it.
macro_rules! secret_key_suffix {
    () => {
        r"(?:token|secret|passwd|password|passphrase|pwd|signature|_auth|private_key_id|(?:api|access|secret|private|signing|encryption|master|auth|client|session|webhook)[_-]?key)"
    };
}
pub(super) use secret_key_suffix;

/// Exact JSON keys (normalised: lower-case, `-` → `_`) whose value is secret.
pub(super) const SENSITIVE_JSON_KEYS: &[&str] = &[
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
    "private_key_id",
    "x_api_key",
    "x_vercel_signature",
    "bearer",
    "credentials",
    "auth",
];

pub(super) const RULES: &[RuleSpec] = &[
    // Private key block. Within one text, to its END line or the end of the text; a block
    // printed a line per event is followed across lines by the scrubber.
    RuleSpec {
        name: "private key",
        keywords: &["private key"],
        pattern: r"((?i-u:-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----)(?s:.*?)(?:(?i-u:-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----)|\z))",
        secret: Secret::Groups,
    },
    RuleSpec {
        name: "JSON web token",
        keywords: &["eyj"],
        pattern: r"(eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)",
        secret: Secret::Groups,
    },
    // `[^\p{L}]` stands in for a look-behind.
    RuleSpec {
        name: "Vercel token",
        keywords: &["vcp_", "vci_", "vca_", "vcr_", "vck_"],
        pattern: r"(?:^|[^\p{L}])((?:vcp|vci|vca|vcr|vck)_[A-Za-z0-9]{20,})",
        secret: Secret::Groups,
    },
    // 24 alphanumerics within 40 characters after the word "vercel" (trufflehog).
    RuleSpec {
        name: "Vercel legacy token",
        keywords: &["vercel"],
        pattern: r"(?i-u:vercel)(?s:.){0,40}?(?-u:\b)([A-Za-z0-9]{24})(?-u:\b)",
        secret: Secret::Groups,
    },
    RuleSpec {
        name: "GitHub token",
        keywords: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        pattern: r"((?:ghp|gho|ghu|ghs|ghr)_[0-9A-Za-z]{36,})",
        secret: Secret::Groups,
    },
    RuleSpec {
        name: "GitHub fine-grained token",
        keywords: &["github_pat_"],
        pattern: r"(github_pat_[0-9A-Za-z_]{82,})",
        secret: Secret::Groups,
    },
    RuleSpec {
        name: "GitLab token",
        keywords: &[
            "glpat-", "gldt-", "glrt-", "glptt-", "glft-", "glsoat-", "gloas-", "glimt-", "glcbt-",
            "glagent-",
        ],
        pattern: r"((?:glpat|gldt|glrt|glptt|glft|glsoat|gloas|glimt|glcbt|glagent)-[0-9A-Za-z_-]{20,})",
        secret: Secret::Groups,
    },
    RuleSpec {
        name: "AWS access key id",
        keywords: &["a3t", "akia", "asia", "abia", "acca"],
        pattern: r"(?-u:\b)((?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})(?-u:\b)",
        secret: Secret::Groups,
    },
    RuleSpec {
        name: "AWS secret access key",
        keywords: &["secret"],
        pattern: r#"(?i-u:aws_?secret_?access_?key\\?["']?[ \t]*[:=][ \t]*\\?["']?)([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
        secret: Secret::Groups,
    },
    RuleSpec {
        name: "Google API key",
        keywords: &["aiza"],
        pattern: r"(AIza[0-9A-Za-z_-]{35})",
        secret: Secret::Groups,
    },
    // OpenAI (`sk-…`, `sk-proj-…`, `sk-svcacct-…`, `sk-admin-…`) and Anthropic (`sk-ant-…`).
    // The left boundary keeps `task-…` and `risk-…` out.
    RuleSpec {
        name: "OpenAI or Anthropic key",
        keywords: &["sk-"],
        pattern: r"(?:^|[^A-Za-z0-9_-])(sk-(?:proj-|svcacct-|admin-|ant-[a-z]+[0-9]{2}-)?[A-Za-z0-9_-]{20,})",
        secret: Secret::Groups,
    },
    RuleSpec {
        name: "Slack token",
        keywords: &["xox", "xapp-"],
        pattern: r"((?:xox[baprse]|xoxe\.xox[bp]|xapp)-[0-9A-Za-z-]{10,})",
        secret: Secret::Groups,
    },
    // Keep the host and kind, drop the path.
    RuleSpec {
        name: "Slack webhook",
        keywords: &["hooks.slack"],
        pattern: r"hooks\.slack\.com\\?/(?:services|workflows|triggers)\\?/((?:[A-Za-z0-9+/]|\\/){20,})",
        secret: Secret::Groups,
    },
    // The id is public, the token is not.
    RuleSpec {
        name: "Discord webhook",
        keywords: &["discord"],
        pattern: r"(?i-u:discord(?:app)?\.com\\?/api\\?/(?:v[0-9]+\\?/)?webhooks\\?/)[0-9]+\\?/([A-Za-z0-9_-]+)",
        secret: Secret::Groups,
    },
    // The left boundary keeps `task_test_…` out.
    RuleSpec {
        name: "Stripe key",
        keywords: &[
            "sk_test_", "sk_live_", "sk_prod_", "rk_test_", "rk_live_", "rk_prod_",
        ],
        pattern: r"(?:^|[^A-Za-z0-9])((?:sk|rk)_(?:test|live|prod)_[A-Za-z0-9]{10,})",
        secret: Secret::Groups,
    },
    RuleSpec {
        name: "SendGrid key",
        keywords: &["sg."],
        pattern: r"(?-u:\b)(SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64})",
        secret: Secret::Groups,
    },
    RuleSpec {
        name: "Sentry token",
        keywords: &["sntrys_", "sntryu_"],
        pattern: r"(sntry[su]_[A-Za-z0-9+/=_-]{30,})",
        secret: Secret::Groups,
    },
    RuleSpec {
        name: "npm token",
        keywords: &["npm_"],
        pattern: r"(npm_[A-Za-z0-9]{36,})",
        secret: Secret::Groups,
    },
    // Any scheme: a known one (`Bearer`, `Basic`...) stays and its credential goes; an
    // unknown word and what follows it go together. Also a JSON array of header values.
    RuleSpec {
        name: "Authorization header",
        keywords: &["authorization"],
        pattern: r#"(?i-u:authorization\\?["']?[ \t]*[:=][ \t]*\[?[ \t]*\\?["']?)(?:(?i-u:bearer|basic|token|digest|negotiate|ntlm|dpop|jwt|apikey|api-key|key|hmac|aws4-hmac-sha256)[ \t]+([^\s"'`\\,;\[\]]+)?|([A-Za-z]+[ \t]+[^\s"'`\\,;\[\]]+|[^\s"'`\\,;\[\]]+))"#,
        secret: Secret::Groups,
    },
    RuleSpec {
        name: "bearer token",
        keywords: &["bearer"],
        pattern: r"(?i-u:\bbearer[ \t]+)([A-Za-z0-9._~+/-]+=*)",
        secret: Secret::Groups,
    },
    RuleSpec {
        name: "cookie header",
        keywords: &["cookie"],
        pattern: r#"(?i-u:\b(?:set-)?cookie\\?["']?[ \t]*:[ \t]*\[?[ \t]*\\?["']?)([^"'`\r\n\\]+)"#,
        secret: Secret::CookieValues,
    },
    // `scheme://user:password@`, also with escaped slashes; a long token as the whole
    // userinfo. Short users without a password (`ssh://git@…`) stay.
    RuleSpec {
        name: "credentials in a URL",
        keywords: &["://", r":\/\/"],
        pattern: r#"[A-Za-z][A-Za-z0-9+.-]*:(?://|\\/\\/)(?:([^\s/?#@:"'`\\]*):([^\s"'`@\\]+)|([A-Za-z0-9_.~%-]{16,}))@"#,
        secret: Secret::UrlUserinfo,
    },
    // `?key=…` (Google), `&sig=…` (Azure SAS), in a URL's query.
    RuleSpec {
        name: "secret in a URL query",
        keywords: &["key=", "sig="],
        pattern: r#"[?&;](?i-u:key|sig)=([^&\s#"'`\\]+)"#,
        secret: Secret::Groups,
    },
    // `docker login` writes `"auth": "<base64 of user:password>"`.
    RuleSpec {
        name: "docker auth",
        keywords: &["auth\"", "auth\\\""],
        pattern: r#"(?:^|[^A-Za-z0-9_])(?i-u:auth)\\?"[ \t]*:[ \t]*\\?"([A-Za-z0-9+/=]{8,})"#,
        secret: Secret::Groups,
    },
    // `--token <value>`, `--db-password "x y"`: a flag whose name ends like a secret, then
    // its value after a space (after `=`, the assignment rule below takes it).
    RuleSpec {
        name: "secret command-line flag",
        keywords: &["--"],
        pattern: r#"(?:^|[\s"'])--[A-Za-z0-9-]*(?i-u:token|password|passwd|secret|api-?key|access-?key|auth-?key)[ \t]+(?:"([^"\r\n]*)"|'([^'\r\n]*)'|([^\s"'`-][^\s"'`]*))"#,
        secret: Secret::Groups,
    },
    // `curl -u user:password`, `--user user:password`.
    RuleSpec {
        name: "curl user and password",
        keywords: &["-u", "--user"],
        pattern: r#"(?:^|\s)(?:-u|--user)(?:[ \t]+|=)?["']?[^\s:"'`]*:([^\s"'`]+)"#,
        secret: Secret::Groups,
    },
    // `mysql -uroot -pSECRET`: MySQL's client takes the password glued to `-p`.
    RuleSpec {
        name: "MySQL password flag",
        keywords: &["mysql", "mariadb"],
        pattern: r#"(?i-u:\b(?:mysql|mariadb)[a-z-]*\b)[^\r\n]*?[ \t]-p([^\s"'`-][^\s"'`]*)"#,
        secret: Secret::Groups,
    },
    // `key=value`, `key: value`, `"key": "value"`, `{\"key\":\"value\"}`, `"key": ["value"]`
    // where the key ends in a secret-ish name. Values end at whitespace, `&`, `,`, `;` or a
    // quote. The `key…` keywords cover every `(api|access|…)key` suffix.
    RuleSpec {
        name: "secret assignment",
        keywords: &[
            "token",
            "secret",
            "passw",
            "passphrase",
            "pwd",
            "signature",
            "_auth",
            "key_id",
            "key=",
            "key:",
            "key\"",
            "key'",
            "key ",
            "key\t",
            "key\\",
        ],
        pattern: concat!(
            "(?i-u:",
            secret_key_suffix!(),
            r#"\\?["']?[ \t]*[:=][ \t]*)"#,
            r#"(?:"((?:[^"\\\r\n]|\\.)*)"|\\"((?:[^"\\\r\n]|\\[^"])*)\\"|\[[ \t]*"((?:[^"\\\r\n]|\\.)*)"|'([^'\r\n]*)'|([^\s"'`&,;=\[{\\][^\s"'`&,;\\]*))"#,
        ),
        secret: Secret::Groups,
    },
];
