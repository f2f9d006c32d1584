//! Which entries are "the same problem": a fingerprint over the rule, the entry's place and its
//! message with the parts that change every time (ids, numbers, addresses, times) replaced.

use std::fmt;
use std::sync::OnceLock;

use regex::{Captures, Regex};
use sha1::{Digest, Sha1};

use crate::log::LogEntry;

/// How much of the normalised message counts (the plan's 100 characters).
const MESSAGE_CHARS: usize = 100;

/// SHA1 of `rule|tier|event|deploymentId|normalized message`, as lowercase hex.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn of(rule_key: &str, entry: &LogEntry) -> Fingerprint {
        let tier = entry.tier.as_str();
        let deployment = entry.deployment_id.as_deref().unwrap_or("");
        let message = if entry.message.trim().is_empty() {
            // The plan: without a message, the event and the metadata say what happened.
            let metadata = serde_json::to_string(&entry.metadata).unwrap_or_default();
            let described = format!("{}{metadata}", entry.event);
            normalize(&described.chars().take(300).collect::<String>())
        } else {
            normalize(&entry.message)
        };
        let components = format!("{rule_key}|{tier}|{}|{deployment}|{message}", entry.event);
        let digest = Sha1::digest(components.as_bytes());
        Fingerprint(format!("{digest:x}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its first 12 characters, as screens and messages show it.
    pub fn short(text: &str) -> &str {
        text.get(..12).unwrap_or(text)
    }

    /// A fingerprint as the alert book keeps it.
    pub fn known(text: &str) -> Fingerprint {
        Fingerprint(text.to_owned())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The message with its variable parts replaced by `<kind>`, on one line, whitespace collapsed,
/// cut to 100 characters. More specific patterns come first (an e-mail before a URL, a UUID
/// before a hex id, a timestamp before a number).
pub fn normalize(message: &str) -> String {
    static VARIABLE: OnceLock<Regex> = OnceLock::new();
    let variable = VARIABLE.get_or_init(|| {
        Regex::new(concat!(
            r"(?P<email>[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})",
            r"|(?P<url>\b(?:https?|wss?|ftp)://[^\s'\x22<>]+)",
            r"|(?P<uuid>\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)",
            r"|(?P<ts>\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b)",
            r"|(?P<time>\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b)",
            r"|(?P<ip>\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b|\[?(?:(?:[0-9a-fA-F]{1,4}:){1,6}:(?:[0-9a-fA-F]{1,4}:?){1,7}|(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4})\]?(?::\d{1,5})?)",
            r"|(?P<vercel>\b(?:dpl|bld|prj|team|usr|icfg|oac)_[A-Za-z0-9]{6,}\b)",
            r"|(?P<hex>\b0x[0-9a-fA-F]+\b|\b[0-9a-f]*[0-9][0-9a-f]*[a-f][0-9a-f]*\b|\b[0-9a-f]*[a-f][0-9a-f]*[0-9][0-9a-f]*\b)",
            r"|(?P<num>\b\d{4,}\b)",
        ))
        .expect("the normaliser's pattern compiles")
    });
    let first_line = message.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let replaced = variable.replace_all(first_line, |caps: &Captures| {
        let kind = [
            "email", "url", "uuid", "ts", "time", "ip", "vercel", "hex", "num",
        ]
        .into_iter()
        .find(|name| caps.name(name).is_some())
        .unwrap_or("var");
        // Short hex-looking words ("cafe", "b2c") are words, not ids.
        if kind == "hex" && caps[0].len() < 8 && !caps[0].starts_with("0x") {
            return caps[0].to_owned();
        }
        format!("<{kind}>")
    });
    let collapsed = replaced.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.chars().take(MESSAGE_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{Severity, Tier};

    fn entry(message: &str) -> LogEntry {
        LogEntry::at(1, Tier::Build, Severity::Error, "failed", message)
            .with_deployment("vercel-dpl_a-1")
    }

    /// Pairs that are the same problem and must share a fingerprint.
    const SAME: &[(&str, &str)] = &[
        ("Build failed after 1234 ms", "Build failed after 98765 ms"),
        (
            "connect ECONNREFUSED 10.0.0.12:5432",
            "connect ECONNREFUSED 10.0.3.40:5432",
        ),
        (
            "request 3f2a9c1e-8b7d-4c6a-9e5f-0a1b2c3d4e5f timed out",
            "request 0b8c2d4e-1f3a-4b5c-8d7e-9f0a1b2c3d4e timed out",
        ),
        (
            "fetch https://api.example.com/v1/users?id=7 failed",
            "fetch https://api.example.com/v1/orders failed",
        ),
        (
            "mail to alice@example.com bounced",
            "mail to bob.smith@corp.example.org bounced",
        ),
        (
            "at 2026-11-26T09:20:31.123Z cache miss",
            "at 2026-11-27T23:59:59Z cache miss",
        ),
        (
            "[09:20:31] worker restarted",
            "[23:01:02.5] worker restarted",
        ),
        (
            "commit 3f2a9c1e8b7d failed checks",
            "commit a1b2c3d4e5f6 failed checks",
        ),
        (
            "pointer 0xdeadbeef freed twice",
            "pointer 0x7ffe1234 freed twice",
        ),
        (
            "Deployment dpl_2A1YdwhTadMp5nphik5kEwFBwnxR is ERROR",
            "Deployment dpl_9xQe4MuUu7 is ERROR",
        ),
        ("  spaced    out\tmessage ", "spaced out message"),
        (
            "first line\nsecond line differs",
            "first line\nsomething else",
        ),
        (
            "listening on [fe80::1:2:3]:8080 refused",
            "listening on [fe80::9:8:7]:8081 refused",
        ),
    ];

    /// Pairs that are different problems and must not.
    const DIFFERENT: &[(&str, &str)] = &[
        ("Type error in cart.ts", "Type error in checkout.ts"),
        (
            "Command \"npm run build\" exited with 1",
            "Command \"npm run build\" exited with 137",
        ),
        ("JavaScript heap out of memory", "Command failed"),
        (
            "Module not found: Can't resolve 'react'",
            "Module not found: Can't resolve 'next'",
        ),
        ("cafe menu failed", "bead menu failed"),
        ("port 80 closed", "port 443 closed"),
    ];

    #[test]
    fn variable_parts_group_and_real_differences_do_not() {
        for (a, b) in SAME {
            assert_eq!(
                Fingerprint::of("build_failed", &entry(a)),
                Fingerprint::of("build_failed", &entry(b)),
                "should group: {a:?} / {b:?} -> {:?} / {:?}",
                normalize(a),
                normalize(b)
            );
        }
        for (a, b) in DIFFERENT {
            assert_ne!(
                Fingerprint::of("build_failed", &entry(a)),
                Fingerprint::of("build_failed", &entry(b)),
                "should not group: {a:?} / {b:?} -> {:?}",
                normalize(a)
            );
        }
    }

    #[test]
    fn rule_deployment_tier_and_event_are_part_of_the_identity() {
        let base = entry("Build failed");
        let fp = Fingerprint::of("build_failed", &base);
        assert_eq!(fp.as_str().len(), 40);
        assert_ne!(fp, Fingerprint::of("deploy_failed", &base));
        assert_ne!(
            fp,
            Fingerprint::of(
                "build_failed",
                &base.clone().with_deployment("vercel-dpl_b-2")
            )
        );
        let mut other_event = base.clone();
        other_event.event = "stderr".to_owned();
        assert_ne!(fp, Fingerprint::of("build_failed", &other_event));
    }

    #[test]
    fn without_a_message_the_event_and_metadata_identify_it() {
        let a = entry("").with_meta("ready_state", "ERROR");
        let b = entry("").with_meta("ready_state", "CANCELED");
        assert_ne!(Fingerprint::of("x", &a), Fingerprint::of("x", &b));
        assert_eq!(Fingerprint::of("x", &a), Fingerprint::of("x", &a.clone()));
    }

    #[test]
    fn long_messages_are_cut_to_100_characters() {
        let long = format!("{} tail A", "word ".repeat(40));
        let other = format!("{} tail B", "word ".repeat(40));
        assert_eq!(normalize(&long).chars().count(), 100);
        assert_eq!(normalize(&long), normalize(&other));
    }
}
