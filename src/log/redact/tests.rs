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
        &["s3ss10n"],
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

/// One case per format: (context before, secret, context after). Whatever surrounds them, only
/// the secret goes.
const FORMATS: &[(&str, &str, &str)] = &[
    ("", "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----", ""),
    ("jwt ", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc_DEF-123", ""),
    ("using ", "vcp_aBcDeFgHiJkLmNoPqRsT1234567890abcdefghij", ""),
    ("vercel login ", "Xy7kP2mQ9rT4vW1zA8bC3dE5", ""),
    ("origin ", "ghp_u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8d", ""),
    (
        "",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghij",
        "",
    ),
    ("GITLAB ", "glpat-Ab3dEf6hIj9kLm2nOp5q", ""),
    ("key ", "AKIALALEMEL33243OLIB", ""),
    ("aws_secret_access_key = ", "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", ""),
    ("maps ", "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", ""),
    ("GET https://maps.googleapis.com/maps/api/geocode/json?address=x&key=", "abc123def456", "&sensor=false"),
    ("OPENAI ", "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345", ""),
    ("OPENAI ", "sk-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghij", ""),
    ("using ", "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz012345-_xyz", ""),
    ("slack ", "xoxb-781236542736-2364535789652-GkwFDQoHqzXDVsC6GzqYUypD", ""),
    ("POST https://hooks.slack.com/services/", "T0DCUJB1Q/B0DD08H5G/bJtrpFi1fO1JMCcwLx8uZyAg", ""),
    (
        r#"{\"url\":\"https:\/\/hooks.slack.com\/services\/"#,
        r"T0DCUJB1Q\/B0DD08H5G\/bJtrpFi1fO1JMCcwLx8uZyAg",
        r#"\"}"#,
    ),
    ("https://discord.com/api/webhooks/1234567890/", "abcDEF_123-xyz", ""),
    ("charge with ", "sk_live_VdD53X83RZJzzzzgEOzdmenC", ""),
    ("SENDGRID ", "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", ""),
    ("auth ", "sntrys_eyJpYXQiOjE2ODczMzY1NDMuNjk4NjI0LCJ1cmwiOm51bGx9", ""),
    ("//registry.npmjs.org/:_authToken=", "npm_R4y9ojfljoQoaF1LlqsajAIxNKu8iS2G8NPR", ""),
    ("Authorization: Bearer ", "abc123", " (retry 2)"),
    (r#""authorization":["Bearer "#, "abc123", r#""]"#),
    (r#"{\"Authorization\":\"Basic "#, "dXNlcjpodW50ZXIy", r#"\"}"#),
    ("retrying with bearer ", "abc123", " now"),
    ("Set-Cookie: __session=", "abc123", "; Path=/; HttpOnly"),
    ("Cookie: sid=", "abc123", ""),
    ("postgres://admin:", "s3cr3t/P#4ss", "@db.internal:5432/app"),
    ("https://", "glpat-Ab3dEf6hIj9kLm2nOp5q", "@gitlab.com/acme/web.git"),
    ("https://acct.blob.core.windows.net/c/b.zip?sv=2022-11-02&sig=", "abc%2Fdef%3D", "&se=2026"),
    (r#"{"auths":{"ghcr.io":{"auth":""#, "dXNlcjpodW50ZXIy", r#""}}}"#),
    ("vercel deploy --prod --token ", "Xy7kP2mQ9rT4vW1zA8bC3dE5", " --yes"),
    ("npx prisma migrate --db-password ", "hunter2", " --force"),
    ("curl -u admin:", "hunter2", " https://example.com"),
    ("mysql -uroot -p", "hunter2", " -h db"),
    ("password=", "hunter2", "&user=bob"),
    (r#"{\"password\":\""#, "hunter2", r#"\"}"#),
    (r#""private_key_id": ""#, "1a2b3c4d5e", r#"""#),
    ("DATABASE_PASSWORD=", "abc123", ""),
];

#[test]
fn every_format_loses_only_its_secret() {
    for (before, secret, after) in FORMATS {
        let line = format!("{before}{secret}{after}");
        assert_eq!(
            redact(&line),
            format!("{before}{REDACTED}{after}"),
            "{line:?}"
        );
    }
}

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
    ("Cookie: a=1; b=2", "Cookie: a=[REDACTED]; b=[REDACTED]"),
    (
        "Set-Cookie: __session=abc; Path=/; HttpOnly",
        "Set-Cookie: __session=[REDACTED]; Path=/; HttpOnly",
    ),
    (
        "https://0123456789abcdef0123456789abcdef:x-oauth-basic@github.com/acme/web.git",
        "https://[REDACTED]:[REDACTED]@github.com/acme/web.git",
    ),
    (
        "  - Local: http://localhost:3000/@vite/client",
        "  - Local: http://localhost:3000/@vite/client",
    ),
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
        .map(str::to_owned)
        .chain(CONTEXT_KEPT.iter().map(|(input, _)| (*input).to_owned()))
        .chain(
            FORMATS
                .iter()
                .map(|(before, secret, after)| format!("{before}{secret}{after}")),
        );
    let mut fired = 0u64;
    for input in corpus {
        let candidates = redactor.candidate_rules(&input);
        for (index, rule) in redactor.rules.iter().enumerate() {
            if rule.apply(&input).is_some() {
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

    /// Any text around any format: the secret goes, the rest stays byte for byte.
    #[test]
    fn only_the_secret_goes(
        case in 0..FORMATS.len(),
        prefix in "[a-z0-9 .,()]{0,20}",
        suffix in "[a-z0-9 .,()]{0,20}",
    ) {
        let (before, secret, after) = FORMATS[case];
        let line = format!("{prefix} {before}{secret}{after} {suffix}");
        prop_assert_eq!(redact(&line), format!("{prefix} {before}{REDACTED}{after} {suffix}"));
    }

    /// Colors around a secret, escapes and control characters inside it: it never survives.
    #[test]
    fn escapes_and_controls_never_hide_a_secret(
        case in 0..FORMATS.len(),
        noise in prop::collection::vec((0usize..200, prop_oneof![
            Just("\u{1b}[33m"), Just("\u{1b}[1m"), Just("\u{1b}[22m"), Just("\u{1b}[0m"),
            Just("\u{7}"), Just("\u{0}"), Just("\r"), Just("\u{85}"), Just("\u{200b}"),
        ]), 1..4),
    ) {
        let (before, secret, after) = FORMATS[case];
        let line = crate::printable::with_inserted(&format!("{before}{secret}{after}"), &noise);
        let out = redact(&line);
        let seen = crate::printable::for_matching(&out);
        prop_assert!(!seen.contains(secret), "{:?} -> {:?}", line, out);
    }

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

#[test]
fn every_keyword_has_a_byte_that_is_not_a_digit() {
    // The scrubber does not scan ids of digits alone: no keyword may be all digits.
    for rule in super::rules::RULES {
        for keyword in rule.keywords {
            assert!(
                !keyword.bytes().all(|b| b.is_ascii_digit()),
                "{}: {keyword:?}",
                rule.name
            );
        }
    }
}
