//! Runtime rows as unified entries (tier `runtime`), and the entries the runtime follower
//! writes about itself: where a gap may be, and when production moved.

use serde_json::Value;

use crate::log::entry::clock;
use crate::log::runtime::{level_severity, POSSIBLE_GAP, PRODUCTION_MOVED};
use crate::log::{LogEntry, Severity, Tier};
use crate::stream::entries::EntryContext;
use crate::vercel::RuntimeRow;

/// A row's severity: its level, raised to `error` for a 5xx response (a failed request is an
/// error for whoever is on call, whatever level the function logged it at).
pub fn severity_of(row: &RuntimeRow) -> Severity {
    let level = level_severity(&row.level).unwrap_or(Severity::Info);
    if row.status.is_some_and(|s| s >= 500) {
        level.max(Severity::Error)
    } else {
        level
    }
}

/// `5xx` for 503.
pub fn status_class(status: u16) -> String {
    format!("{}xx", status / 100)
}

/// The row as an entry: its message (or, for a request row without one, the request), its
/// source as the event, the request fields and the deployment's `target` in metadata.
pub fn row_entry(row: RuntimeRow, ctx: &EntryContext, target: Option<&str>) -> LogEntry {
    let severity = severity_of(&row);
    let message = if row.message.is_empty() && !row.request_path.is_empty() {
        let status = row
            .status
            .map_or_else(|| "---".to_owned(), |s| s.to_string());
        format!("{} {} {status}", row.request_method, row.request_path)
    } else {
        row.message
    };
    let source = if row.source.is_empty() {
        "runtime".to_owned()
    } else {
        row.source
    };
    let mut entry = ctx.entry(row.timestamp_ms, Tier::Runtime, severity, source, message);
    let meta = &mut entry.metadata;
    meta.level = (!row.level.is_empty()).then_some(row.level);
    let extra = &mut meta.extra;
    for (key, value) in [
        ("target", target.unwrap_or_default().to_owned()),
        ("row_id", row.row_id),
        ("domain", row.domain),
        ("request_method", row.request_method),
        ("request_path", row.request_path),
    ] {
        if !value.is_empty() {
            extra.insert(key.to_owned(), Value::String(value));
        }
    }
    if let Some(status) = row.status {
        extra.insert("status".to_owned(), Value::from(status));
        extra.insert(
            "status_class".to_owned(),
            Value::String(status_class(status)),
        );
    }
    if row.message_truncated {
        extra.insert("message_truncated".to_owned(), Value::Bool(true));
    }
    entry
}

/// How much of the limit row's message a gap entry quotes.
const LIMIT_MESSAGE_CHARS: usize = 200;

/// Why a runtime connection ended, as a possible-gap entry says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The server's limit row (its message).
    Limit(String),
    /// The server closed the response.
    Closed,
    /// The connection broke or went quiet.
    Broken(String),
}

/// "Rows between 12:00:01.234 and 12:00:03.456 may be missing": Vercel's runtime logs have no
/// cursor, so rows written while shiplog reconnected cannot be asked for again.
pub fn gap_entry(ctx: &EntryContext, from_ms: i64, to_ms: i64, ended: &Ended) -> LogEntry {
    let why = match ended {
        Ended::Limit(message) if !message.is_empty() => {
            let message: String = message.chars().take(LIMIT_MESSAGE_CHARS).collect();
            format!("Vercel ended the response ({message})")
        }
        Ended::Limit(_) => "Vercel ended the response at its limit".to_owned(),
        Ended::Closed => "Vercel closed the response".to_owned(),
        Ended::Broken(reason) => format!("the connection broke ({reason})"),
    };
    let mut entry = ctx.entry(
        to_ms,
        Tier::Runtime,
        Severity::Warn,
        POSSIBLE_GAP,
        format!(
            "Possible gap: runtime rows between {} and {} may be missing; {why} and runtime logs \
             cannot be read again from a point in time",
            clock(from_ms),
            clock(to_ms)
        ),
    );
    let extra = &mut entry.metadata.extra;
    extra.insert("gap_from".to_owned(), Value::from(from_ms));
    extra.insert("gap_to".to_owned(), Value::from(to_ms));
    entry
}

/// Production moved: the runtime log now follows `ctx`'s deployment.
pub fn moved_entry(ctx: &EntryContext, from: &str, at_ms: i64) -> LogEntry {
    let project = ctx.project_name.as_deref().unwrap_or("the project");
    let mut entry = ctx.entry(
        at_ms,
        Tier::Runtime,
        Severity::Info,
        PRODUCTION_MOVED,
        format!(
            "Production of {project} moved from {from} to {}: following its runtime logs now",
            ctx.vercel_id
        ),
    );
    entry.metadata.extra.insert(
        "previous_deployment".to_owned(),
        Value::String(from.to_owned()),
    );
    entry
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn ctx() -> EntryContext {
        EntryContext {
            deployment_id: "vercel-dpl_a-01J".into(),
            vercel_id: "dpl_a".into(),
            project_id: Some(Arc::from("prj_1")),
            project_name: Some(Arc::from("storefront")),
            git: None,
            replayed: false,
        }
    }

    #[test]
    fn a_request_row_becomes_a_runtime_entry_with_its_request_in_metadata() {
        let row = RuntimeRow {
            level: "info".into(),
            row_id: "r1".into(),
            source: "request".into(),
            timestamp_ms: 1_767_713_105_118,
            request_method: "POST".into(),
            request_path: "/api/checkout".into(),
            status: Some(502),
            ..RuntimeRow::default()
        };
        let entry = row_entry(row, &ctx(), Some("production"));
        assert_eq!(entry.tier, Tier::Runtime);
        assert_eq!(
            entry.severity,
            Severity::Error,
            "a 5xx is an error whatever its level"
        );
        assert_eq!(entry.event, "request");
        assert_eq!(entry.message, "POST /api/checkout 502");
        assert_eq!(entry.metadata.get_str("status_class"), Some("5xx"));
        assert_eq!(
            entry.metadata.get_str("request_path"),
            Some("/api/checkout")
        );
        assert_eq!(entry.metadata.get_str("level"), Some("info"));
        assert_eq!(entry.build_id.as_deref(), Some("dpl_a"));
        assert_eq!(entry.metadata.get_str("target"), Some("production"));
    }

    #[test]
    fn levels_map_to_severities() {
        let of = |level: &str| {
            severity_of(&RuntimeRow {
                level: level.into(),
                ..RuntimeRow::default()
            })
        };
        assert_eq!(of("debug"), Severity::Debug);
        assert_eq!(of("info"), Severity::Info);
        assert_eq!(of("warning"), Severity::Warn);
        assert_eq!(of("error"), Severity::Error);
        assert_eq!(of("fatal"), Severity::Critical);
        assert_eq!(of("something-new"), Severity::Info);
    }
}
