//! Which runtime rows to show: the quick filters of `shiplog logs` (level, status, path,
//! source). What the follower says about itself (a possible gap, production moving) and every
//! entry that is not a runtime row always pass: a filter narrows the rows, never the warnings.

use regex::Regex;

use super::entries::{severity_of, POSSIBLE_GAP, PRODUCTION_MOVED};
use crate::log::{LogEntry, Severity, Tier};
use crate::vercel::RuntimeRow;

/// A status to keep: a class (`5xx`) or one code (`502`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusMatch {
    Class(u16),
    Code(u16),
}

impl StatusMatch {
    pub fn parse(text: &str) -> Result<StatusMatch, String> {
        let text = text.trim().to_ascii_lowercase();
        let bad =
            || format!("{text:?} is not a status: use a class such as 5xx or a code such as 502");
        if let Some(class) = text.strip_suffix("xx") {
            return match class.parse::<u16>() {
                Ok(class @ 1..=5) => Ok(StatusMatch::Class(class)),
                _ => Err(bad()),
            };
        }
        match text.parse::<u16>() {
            Ok(code @ 100..=599) => Ok(StatusMatch::Code(code)),
            _ => Err(bad()),
        }
    }

    fn matches(self, status: u16) -> bool {
        match self {
            StatusMatch::Class(class) => status / 100 == class,
            StatusMatch::Code(code) => status == code,
        }
    }
}

/// The level a `--level` names, as a severity (`warning` and `warn` alike).
pub fn level_severity(level: &str) -> Result<Severity, String> {
    let level = level.trim().to_ascii_lowercase();
    match level.as_str() {
        "trace" | "debug" | "info" | "warning" | "warn" | "error" | "fatal" => {
            Ok(severity_of(&RuntimeRow {
                level,
                ..RuntimeRow::default()
            }))
        }
        _ => Err(format!(
            "{level:?} is not a level: use debug, info, warning, error or fatal"
        )),
    }
}

#[derive(Debug, Clone, Default)]
pub struct RowFilter {
    /// Rows at or above this severity (a 5xx counts as an error).
    pub at_least: Option<Severity>,
    /// Rows whose status matches one of these.
    pub statuses: Vec<StatusMatch>,
    /// Rows whose request path matches.
    pub path: Option<Regex>,
    /// Rows from one of these sources.
    pub sources: Vec<String>,
}

impl RowFilter {
    pub fn matches(&self, entry: &LogEntry) -> bool {
        if entry.tier != Tier::Runtime
            || [POSSIBLE_GAP, PRODUCTION_MOVED].contains(&entry.event.as_str())
        {
            return true;
        }
        let extra = &entry.metadata.extra;
        let status = extra
            .get("status")
            .and_then(|s| s.as_u64())
            .and_then(|s| u16::try_from(s).ok());
        self.at_least.is_none_or(|min| entry.severity >= min)
            && (self.statuses.is_empty()
                || status.is_some_and(|s| self.statuses.iter().any(|m| m.matches(s))))
            && self.path.as_ref().is_none_or(|re| {
                entry
                    .metadata
                    .get_str("request_path")
                    .is_some_and(|path| re.is_match(path))
            })
            && (self.sources.is_empty()
                || self
                    .sources
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(&entry.event)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::entries::EntryContext;
    use crate::stream::runtime::entries::row_entry;

    fn entry(status: u16, path: &str, source: &str, level: &str) -> LogEntry {
        let ctx = EntryContext {
            deployment_id: "vercel-dpl_a-01J".into(),
            vercel_id: "dpl_a".into(),
            project_id: None,
            project_name: None,
            git: None,
            replayed: false,
        };
        row_entry(
            RuntimeRow {
                level: level.into(),
                row_id: "r".into(),
                source: source.into(),
                request_path: path.into(),
                request_method: "GET".into(),
                status: Some(status),
                ..RuntimeRow::default()
            },
            &ctx,
        )
    }

    #[test]
    fn statuses_levels_paths_and_sources_narrow_the_rows() {
        let filter = RowFilter {
            statuses: vec![
                StatusMatch::parse("5xx").expect("class"),
                StatusMatch::parse("404").expect("code"),
            ],
            ..RowFilter::default()
        };
        assert!(filter.matches(&entry(502, "/", "request", "info")));
        assert!(filter.matches(&entry(404, "/", "request", "info")));
        assert!(!filter.matches(&entry(403, "/", "request", "info")));

        let filter = RowFilter {
            at_least: Some(level_severity("warning").expect("level")),
            path: Some(Regex::new("^/api/").expect("regex")),
            sources: vec!["serverless".into()],
            ..RowFilter::default()
        };
        assert!(filter.matches(&entry(200, "/api/checkout", "serverless", "warning")));
        assert!(!filter.matches(&entry(200, "/api/checkout", "serverless", "info")));
        assert!(!filter.matches(&entry(200, "/cart", "serverless", "error")));
        assert!(!filter.matches(&entry(200, "/api/checkout", "request", "error")));
        assert!(
            filter.matches(&entry(500, "/api/checkout", "serverless", "info")),
            "a 5xx is an error"
        );
    }

    #[test]
    fn bad_statuses_and_levels_are_refused_with_what_to_write() {
        for bad in ["6xx", "5x", "99", "abc", "0xx"] {
            assert!(StatusMatch::parse(bad).is_err(), "{bad}");
        }
        assert!(level_severity("loud").is_err());
        assert_eq!(level_severity("WARN"), Ok(Severity::Warn));
    }
}
