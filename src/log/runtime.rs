//! The runtime tier's vocabulary: what a runtime row's entry carries, the notes the runtime
//! follower writes about itself, and filters over rows (`shiplog logs`, alert rules).

use regex::Regex;

use super::{LogEntry, Severity, Tier};

/// The event of the note that says where runtime rows may be missing.
pub const POSSIBLE_GAP: &str = "possible_gap";
/// The event of the note that says the followed deployment changed with production.
pub const PRODUCTION_MOVED: &str = "production_moved";
/// The event of the note that says a new production deployment fails more than the last one.
pub const DEPLOY_REGRESSION: &str = "deploy_regression";
/// The event of the note that says a row was too long to read.
pub const ROW_SKIPPED: &str = "row_skipped";
/// The event of the note that says a deployment's runtime logs cannot be followed.
pub const RUNTIME_UNAVAILABLE: &str = "runtime_unavailable";

/// The notes the runtime follower writes about itself, among the rows.
const NOTES: [&str; 5] = [
    POSSIBLE_GAP,
    PRODUCTION_MOVED,
    DEPLOY_REGRESSION,
    ROW_SKIPPED,
    RUNTIME_UNAVAILABLE,
];

/// A runtime row's level as a severity (`warning` and `warn` alike); `None` for a name that is
/// no level.
pub fn level_severity(level: &str) -> Option<Severity> {
    Some(match level.trim().to_ascii_lowercase().as_str() {
        "trace" | "debug" => Severity::Debug,
        "info" => Severity::Info,
        "warning" | "warn" => Severity::Warn,
        "error" => Severity::Error,
        "fatal" => Severity::Critical,
        _ => return None,
    })
}

/// The response status a runtime row's entry carries.
pub fn status_of(entry: &LogEntry) -> Option<u16> {
    let status = entry.metadata.extra.get("status")?.as_u64()?;
    u16::try_from(status).ok()
}

/// Is this a runtime row (not a note of the follower, nor another tier's entry)?
pub fn is_row(entry: &LogEntry) -> bool {
    entry.tier == Tier::Runtime && !NOTES.contains(&entry.event.as_str())
}

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

    pub fn matches(self, status: u16) -> bool {
        match self {
            StatusMatch::Class(class) => status / 100 == class,
            StatusMatch::Code(code) => status == code,
        }
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

/// How large a path filter's regular expression may be once compiled.
const PATH_REGEX_SIZE: usize = 1 << 20;

impl RowFilter {
    /// The filter of these parts, as written (by flags, the dashboard's quick filter or a
    /// rule): a level name, statuses (`5xx`, `502`), a path regex, sources. A bad part is
    /// named with what to write instead.
    pub fn of(
        level: Option<&str>,
        statuses: &[String],
        path: Option<&str>,
        sources: &[String],
    ) -> Result<RowFilter, String> {
        Ok(RowFilter {
            at_least: level
                .map(|level| {
                    level_severity(level).ok_or_else(|| {
                        format!(
                            "{level:?} is not a level: use debug, info, warning, error or fatal"
                        )
                    })
                })
                .transpose()?,
            statuses: statuses
                .iter()
                .flat_map(|s| s.split(','))
                .map(StatusMatch::parse)
                .collect::<Result<_, _>>()?,
            path: path
                .map(|p| {
                    regex::RegexBuilder::new(p)
                        .size_limit(PATH_REGEX_SIZE)
                        .build()
                        .map_err(|_| format!("{p:?} is not a regular expression"))
                })
                .transpose()?,
            sources: sources
                .iter()
                .flat_map(|s| s.split(','))
                .map(|s| s.trim().to_ascii_lowercase())
                .collect(),
        })
    }

    /// Shown: a row these filters keep, or anything that is not a row (a filter narrows the
    /// rows, never the warnings).
    pub fn matches(&self, entry: &LogEntry) -> bool {
        !is_row(entry) || self.matches_row(entry)
    }

    /// A row these filters keep; false for anything that is not a row.
    pub fn matches_row(&self, entry: &LogEntry) -> bool {
        is_row(entry)
            && self.at_least.is_none_or(|min| entry.severity >= min)
            && (self.statuses.is_empty()
                || status_of(entry).is_some_and(|s| self.statuses.iter().any(|m| m.matches(s))))
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
    use crate::vercel::RuntimeRow;

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
            None,
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
            at_least: level_severity("warning"),
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
        assert_eq!(level_severity("loud"), None);
        assert_eq!(level_severity("WARN"), Some(Severity::Warn));
    }
}
