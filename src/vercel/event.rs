//! One line of the deployment events stream, in either of Vercel's shapes, normalised.

use std::borrow::Cow;
use std::hash::{Hash, Hasher};

use serde::Deserialize;

/// A build event, whichever shape it arrived in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VercelEvent {
    /// When Vercel created it, ms since the epoch (`created`; `date` for alias events).
    pub created: i64,
    /// Identity for de-duplication: Vercel's `id`, else `serial`, else a hash of the content.
    pub id: String,
    /// `stdout`, `stderr`, `command`, `exit`, `delimiter`, `deployment-state`, `alias-assigned`, ...
    pub kind: String,
    pub text: String,
    /// `error` or `warning` when Vercel set one.
    pub level: Option<String>,
}

/// What one line turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum ParsedLine {
    Event(VercelEvent),
    /// A keepalive: an object without `created`.
    Keepalive,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a deployment event: {0}")]
pub struct MalformedLine(pub String);

/// The line as sent; strings borrow from the line where they can (most need no unescaping).
#[derive(Deserialize)]
struct Wire<'a> {
    created: Option<i64>,
    date: Option<i64>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    serial: Option<Cow<'a, str>>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    level: Option<Cow<'a, str>>,
    #[serde(borrow)]
    payload: Option<Box<Wire<'a>>>,
    alias: Option<Vec<String>>,
}

fn owned(value: Option<Cow<'_, str>>) -> Option<String> {
    value.map(Cow::into_owned)
}

/// Parses one line (without its newline). Invalid UTF-8 is replaced rather than losing the line.
pub fn parse_event(line: &[u8]) -> Result<ParsedLine, MalformedLine> {
    // sonic-rs: SIMD parsing for the one parse every build line takes.
    match sonic_rs::from_slice::<Wire>(line) {
        Ok(wire) => normalise(wire),
        Err(err) if std::str::from_utf8(line).is_err() => {
            let repaired = String::from_utf8_lossy(line);
            let wire: Wire =
                serde_json::from_str(&repaired).map_err(|_| MalformedLine(err.to_string()))?;
            normalise(wire)
        }
        Err(err) => match lone_surrogates_replaced(line) {
            // JSON allows `\ud800` alone; Rust strings do not. Show it as `�`, lose no line.
            Some(repaired) => match sonic_rs::from_slice::<Wire>(&repaired) {
                Ok(wire) => normalise(wire),
                Err(_) => Err(MalformedLine(err.to_string())),
            },
            None => Err(MalformedLine(err.to_string())),
        },
    }
}

/// `line` with every `\uXXXX` escape of a surrogate that is not half of a pair replaced by
/// `\ufffd`; `None` when it has none.
fn lone_surrogates_replaced(line: &[u8]) -> Option<Vec<u8>> {
    let hex = |at: usize| -> Option<u16> {
        let digits = line.get(at..at + 4)?;
        u16::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    };
    let escape_at = |at: usize| line.get(at..at + 2) == Some(b"\\u".as_slice());
    let mut out = Vec::with_capacity(line.len());
    let mut replaced = false;
    let mut at = 0;
    while at < line.len() {
        if line[at] != b'\\' {
            out.push(line[at]);
            at += 1;
            continue;
        }
        let unit = if escape_at(at) { hex(at + 2) } else { None };
        let Some(unit) = unit else {
            // Any other escape, `\\` included, passes whole.
            out.extend_from_slice(&line[at..(at + 2).min(line.len())]);
            at += 2;
            continue;
        };
        let low = if escape_at(at + 6) { hex(at + 8) } else { None };
        match unit {
            0xd800..=0xdbff if low.is_some_and(|low| (0xdc00..=0xdfff).contains(&low)) => {
                out.extend_from_slice(&line[at..at + 12]);
                at += 12;
            }
            0xd800..=0xdfff => {
                out.extend_from_slice(b"\\ufffd");
                replaced = true;
                at += 6;
            }
            _ => {
                out.extend_from_slice(&line[at..at + 6]);
                at += 6;
            }
        }
    }
    replaced.then_some(out)
}

fn normalise(wire: Wire<'_>) -> Result<ParsedLine, MalformedLine> {
    let Wire {
        created,
        date,
        id,
        serial,
        text,
        kind,
        level,
        payload,
        alias,
    } = wire;
    // The older shape: `{type, created, payload: {deploymentId, info, text, id, date, serial}}`.
    if let Some(inner) = payload {
        let created = created.or(inner.created).or(inner.date);
        let Some(created) = created else {
            return Ok(ParsedLine::Keepalive);
        };
        let kind = owned(kind.or(inner.kind)).unwrap_or_else(|| "stdout".to_owned());
        let text = owned(inner.text).unwrap_or_default();
        let id = identity(inner.id.or(inner.serial), created, &kind, &text);
        return Ok(ParsedLine::Event(VercelEvent {
            created,
            id,
            kind,
            text,
            level: owned(inner.level.or(level)),
        }));
    }
    let kind = owned(kind).unwrap_or_else(|| "stdout".to_owned());
    if kind == "alias-assigned" {
        let Some(created) = date.or(created) else {
            return Err(MalformedLine("alias event without a date".to_owned()));
        };
        let text = format!("Aliases assigned: {}", alias.unwrap_or_default().join(", "));
        let id = identity(id, created, &kind, &text);
        return Ok(ParsedLine::Event(VercelEvent {
            created,
            id,
            kind,
            text,
            level: owned(level),
        }));
    }
    let Some(created) = created else {
        return Ok(ParsedLine::Keepalive);
    };
    let text = owned(text).unwrap_or_default();
    let id = identity(id.or(serial), created, &kind, &text);
    Ok(ParsedLine::Event(VercelEvent {
        created,
        id,
        kind,
        text,
        level: owned(level),
    }))
}

/// Vercel's id when present; otherwise a stable hash of what the event says.
fn identity(id: Option<Cow<'_, str>>, created: i64, kind: &str, text: &str) -> String {
    match id {
        Some(id) if !id.is_empty() => id.into_owned(),
        _ => {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            (created, kind, text).hash(&mut hasher);
            format!("h{:016x}", hasher.finish())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(line: &str) -> VercelEvent {
        match parse_event(line.as_bytes()) {
            Ok(ParsedLine::Event(e)) => e,
            other => panic!("expected an event from {line}, got {other:?}"),
        }
    }

    #[test]
    fn reads_the_real_flat_events() {
        let all: Vec<serde_json::Value> = serde_json::from_str(include_str!(
            "../../tests/fixtures/real-events-cli-pr16951.json"
        ))
        .expect("fixture");
        let e = event(&all[0].to_string());
        assert_eq!(e.created, 1_783_471_638_756);
        assert_eq!(e.id, "1783471638756857881582900003");
        assert_eq!(e.kind, "stdout");
        assert_eq!(e.text, "Uploading build cache [80.83 MB]");
    }

    #[test]
    fn reads_the_wrapped_2019_shape() {
        let all: Vec<serde_json::Value> = serde_json::from_str(include_str!(
            "../../tests/fixtures/docs-2019-v2-events-example.json"
        ))
        .expect("fixture");
        let e = event(&all[0].to_string());
        assert_eq!(e.created, 1_548_675_195_849);
        assert_eq!(
            e.id,
            "34536610937913059182614073591023254523011083812228628481"
        );
        assert_eq!(e.kind, "stdout");
        assert!(e.text.starts_with("sandbox worker"));
    }

    #[test]
    fn minimal_events_get_a_content_identity_and_keepalives_are_recognised() {
        for line in include_str!("../../tests/fixtures/cli-test-minimal-build-logs.ndjson").lines()
        {
            let e = event(line);
            assert!(e.id.starts_with('h'));
        }
        assert_eq!(parse_event(b"{}"), Ok(ParsedLine::Keepalive));
        assert_eq!(
            parse_event(b"{\"type\":\"keepalive\"}"),
            Ok(ParsedLine::Keepalive)
        );
    }

    #[test]
    fn alias_events_and_levels() {
        let mut lines = include_str!("../../tests/fixtures/cli-test-alias-assigned.ndjson").lines();
        let alias = event(lines.next().expect("line"));
        assert_eq!(alias.kind, "alias-assigned");
        assert_eq!(alias.text, "Aliases assigned: final.vercel.app");
        let mut lines =
            include_str!("../../tests/fixtures/cli-test-inspect-build-logs.ndjson").lines();
        lines.next();
        let warning = event(lines.next().expect("line"));
        assert_eq!(warning.level.as_deref(), Some("warning"));
        assert_eq!(warning.text, "Line 1\nLine 2\n");
    }

    #[test]
    fn bad_lines_are_errors_not_panics() {
        assert!(parse_event(b"{not json").is_err());
        assert!(parse_event(b"{\"created\":\"yesterday\"}").is_err());
        assert!(parse_event(b"[1,2,3]").is_err());
        let mut invalid = br#"{"created":1,"id":"a","text":"caf"#.to_vec();
        invalid.extend_from_slice(&[0xff, 0xfe]);
        invalid.extend_from_slice(br#""}"#);
        assert_eq!(event_bytes(&invalid).text, "caf\u{fffd}\u{fffd}");
    }

    proptest::proptest! {
        /// Whatever the text holds (quotes, escapes, controls, any script), it reads back as
        /// sent, and any bytes at all are an event, a keepalive or an error, never a panic.
        #[test]
        fn any_text_reads_back_and_junk_never_panics(
            text in "\\PC*|[\"\\\\\u{0}-\u{1f}\u{7f}-\u{9f}a{}]*",
            kind in "[a-z-]{1,12}",
            created in 0i64..4_000_000_000_000,
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            let line = serde_json::json!({"created": created, "id": "e1", "type": kind, "text": text});
            let parsed = event(&line.to_string());
            proptest::prop_assert_eq!(parsed.text, text);
            proptest::prop_assert_eq!(parsed.kind, kind);
            proptest::prop_assert_eq!(parsed.created, created);
            let _ = parse_event(&junk);
        }
    }

    #[test]
    fn a_lone_surrogate_is_shown_not_dropped() {
        let lone = event(
            r#"{"created":1,"id":"a","text":"bad \ud800 half, ok \ud83d\ude00, \\ud800 text"}"#,
        );
        assert_eq!(lone.text, "bad \u{fffd} half, ok \u{1f600}, \\ud800 text");
        let low_first = event(r#"{"created":1,"id":"a","text":"\udc00\ud800"}"#);
        assert_eq!(low_first.text, "\u{fffd}\u{fffd}");
        assert!(parse_event(br#"{"created":1,"text":"cut \ud8"}"#).is_err());
    }

    fn event_bytes(line: &[u8]) -> VercelEvent {
        match parse_event(line) {
            Ok(ParsedLine::Event(e)) => e,
            other => panic!("expected an event, got {other:?}"),
        }
    }
}
