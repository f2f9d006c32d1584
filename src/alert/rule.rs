//! Alert rules: which entries are worth waking someone for, how loud, through which channels,
//! and how long repeats stay quiet. Built-in defaults, overridden or extended in the config file.

use std::time::Duration;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use super::channels::Channel;
use crate::log::runtime::RowFilter;
use crate::log::{LogEntry, Severity, Tier};

/// How loud an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertSeverity {
    Low,
    Medium,
    High,
    Critical,
}

impl AlertSeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSeverity::Low => "low",
            AlertSeverity::Medium => "medium",
            AlertSeverity::High => "high",
            AlertSeverity::Critical => "critical",
        }
    }

    /// The severity of the log entry that announces such an alert.
    pub fn entry_severity(self) -> Severity {
        match self {
            AlertSeverity::Critical => Severity::Critical,
            AlertSeverity::High => Severity::Error,
            AlertSeverity::Medium => Severity::Warn,
            AlertSeverity::Low => Severity::Info,
        }
    }
}

/// A rule as written in the config file (`[[alert_rules]]`). A rule whose `key` is a built-in's
/// replaces that built-in; `enabled = false` switches one off.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub key: String,
    pub tier: Option<Tier>,
    /// Matches entries of at least this severity.
    pub severity_at_least: Option<Severity>,
    /// Matches any of these events.
    #[serde(default)]
    pub event: Vec<String>,
    /// A regular expression the message must match.
    pub message: Option<String>,
    /// Metadata field -> regular expression its text value must match.
    #[serde(default)]
    pub metadata: std::collections::BTreeMap<String, String>,
    /// Runtime rows whose response status is one of these: a class (`5xx`) or a code (`502`).
    #[serde(default)]
    pub status: Vec<String>,
    /// Runtime rows whose request path matches this regular expression.
    pub path: Option<String>,
    /// Runtime rows from one of these sources (`request`, `serverless`, `edge-function`,
    /// `edge-middleware`).
    #[serde(default)]
    pub source: Vec<String>,
    /// Fires only once this many matching entries of one deployment came within
    /// `within_seconds` (a burst, not a single line).
    pub at_least: Option<u32>,
    pub within_seconds: Option<u64>,
    pub severity: Option<AlertSeverity>,
    pub channels: Option<Vec<String>>,
    pub suppression_minutes: Option<u64>,
    pub enabled: Option<bool>,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub key: String,
    tier: Option<Tier>,
    severity_at_least: Option<Severity>,
    events: Vec<String>,
    message: Option<Regex>,
    metadata: Vec<(String, Regex)>,
    /// Status, path and source matchers: only runtime rows can match them.
    rows: Option<RowFilter>,
    /// Fires on this many matches of one deployment within the window.
    pub burst: Option<Burst>,
    pub severity: AlertSeverity,
    pub channels: Vec<Channel>,
    pub suppression: Duration,
}

impl Rule {
    /// Does this entry match every matcher of the rule?
    pub fn matches(&self, entry: &LogEntry) -> bool {
        self.tier.is_none_or(|tier| entry.tier == tier)
            && self.severity_at_least.is_none_or(|s| entry.severity >= s)
            && (self.events.is_empty() || self.events.contains(&entry.event))
            && self
                .message
                .as_ref()
                .is_none_or(|re| re.is_match(matched_part(&entry.message)))
            && self.metadata.iter().all(|(key, re)| {
                entry
                    .metadata
                    .get_str(key)
                    .is_some_and(|value| re.is_match(matched_part(value)))
            })
            && self
                .rows
                .as_ref()
                .is_none_or(|rows| rows.matches_row(entry))
    }
}

/// A rule that fires on many matches, not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Burst {
    pub count: u32,
    pub within: Duration,
}

/// How much of a text a rule's regular expression looks at: its first 16 KiB. A build line
/// can be 1 MiB, and no rule may stall alerting on one.
pub const MATCHED_BYTES: usize = 16 * 1024;

/// How large a rule's regular expression may be once compiled: room for Unicode classes
/// (`\w` alone is tens of KiB), not for thousands of states.
const REGEX_SIZE_LIMIT: usize = 1024 * 1024;

/// The largest count a rule's `{n}` or `{n,m}` may have. A pattern such as `[a-z]{3000}[0-9]`
/// is small to write but makes the matcher track thousands of positions at every byte.
pub const MAX_REPETITION: u32 = 100;

/// The first counted repetition in `pattern` over [`MAX_REPETITION`], nested counts multiplied
/// (`(a{20}){20}` counts 400), if any.
fn costly_repetition(pattern: &str) -> Option<u32> {
    use regex_syntax::hir::{Hir, HirKind};
    let hir = regex_syntax::parse(pattern).ok()?;
    let mut stack: Vec<(&Hir, u32)> = vec![(&hir, 1)];
    while let Some((hir, outer)) = stack.pop() {
        match hir.kind() {
            HirKind::Repetition(rep) => {
                let count = outer.saturating_mul(rep.max.unwrap_or(rep.min).max(rep.min).max(1));
                if count > MAX_REPETITION {
                    return Some(count);
                }
                stack.push((&rep.sub, count));
            }
            HirKind::Capture(capture) => stack.push((&capture.sub, outer)),
            HirKind::Concat(all) | HirKind::Alternation(all) => {
                stack.extend(all.iter().map(|hir| (hir, outer)));
            }
            _ => {}
        }
    }
    None
}

fn matched_part(text: &str) -> &str {
    if text.len() <= MATCHED_BYTES {
        return text;
    }
    let mut end = MATCHED_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A rule that cannot be used: names the file, the line and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}, line {line}: alert rule {key:?}: {problem}")]
pub struct RuleError {
    pub origin: String,
    pub line: usize,
    pub key: String,
    pub problem: String,
}

/// The rules in force, in order.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

/// The built-in rules: the plan's four, then a production set.
pub const BUILTIN: &str = r#"
[[alert_rules]]
key = "system_error"
tier = "system"
severity_at_least = "error"
severity = "high"
channels = ["slack", "discord"]
suppression_minutes = 30

[[alert_rules]]
key = "build_failed"
tier = "build"
event = ["failed"]
severity = "medium"
channels = ["slack"]
suppression_minutes = 15

[[alert_rules]]
key = "deploy_failed"
tier = "deploy"
event = ["failed"]
severity = "high"
channels = ["slack", "discord", "email"]
suppression_minutes = 10

[[alert_rules]]
key = "security_hmac_failed"
message = "(?i)HMAC.*validation.*failed"
severity = "critical"
channels = ["slack", "discord", "email", "sms"]
suppression_minutes = 5

[[alert_rules]]
key = "stream_degraded"
tier = "system"
event = ["degraded"]
severity = "high"
channels = ["slack", "discord"]
suppression_minutes = 30

[[alert_rules]]
key = "circuit_open"
message = "(?i)circuit (is )?open"
severity = "high"
channels = ["slack"]
suppression_minutes = 15

[[alert_rules]]
key = "rate_limited"
message = "(?i)\\b429\\b|rate.?limit"
severity_at_least = "warn"
severity = "medium"
channels = ["slack"]
suppression_minutes = 30

[[alert_rules]]
key = "build_out_of_memory"
tier = "build"
message = "(?i)heap out of memory|out of memory|\\bOOM\\b|exited with (code )?137|SIGKILL"
severity = "high"
channels = ["slack", "discord"]
suppression_minutes = 15

[[alert_rules]]
key = "breakglass_access"
message = "VERCEL_BREAKGLASS_ACCESS"
severity = "critical"
channels = ["slack", "discord", "email", "sms"]
suppression_minutes = 0

[[alert_rules]]
key = "production_changed"
tier = "action"
event = ["promoted", "rolled_back"]
severity = "high"
channels = ["slack", "discord"]
suppression_minutes = 10

[[alert_rules]]
key = "runtime_error_burst"
tier = "runtime"
severity_at_least = "error"
metadata = { target = "^production$" }
at_least = 10
within_seconds = 60
severity = "high"
channels = ["slack", "discord"]
suppression_minutes = 15

[[alert_rules]]
key = "deploy_regression"
tier = "runtime"
event = ["deploy_regression"]
severity = "critical"
channels = ["slack", "discord", "email"]
suppression_minutes = 30

[[alert_rules]]
key = "alert_queue_failed"
tier = "system"
event = ["alert_queue_failed"]
severity = "high"
channels = ["slack", "email"]
suppression_minutes = 60
"#;

/// A rule from a file, with where it was written.
#[derive(Debug, Clone)]
pub struct LocatedRule {
    /// `config file <its path>`
    pub origin: String,
    pub line: usize,
    pub config: RuleConfig,
}

#[derive(Deserialize)]
struct RulesFile {
    #[serde(default)]
    alert_rules: Vec<toml::Spanned<RuleConfig>>,
}

impl RuleSet {
    /// The built-in rules alone.
    pub fn builtin() -> RuleSet {
        RuleSet::with_overrides(Vec::new()).expect("built-in rules compile")
    }

    /// The built-ins with these rules laid over them: a rule with a built-in's key replaces it,
    /// others are added after the built-ins.
    pub fn with_overrides(overrides: Vec<LocatedRule>) -> Result<RuleSet, RuleError> {
        let mut located = rules_in(BUILTIN, "built-in rules").expect("built-in rules parse");
        for rule in overrides {
            match located.iter_mut().find(|r| r.config.key == rule.config.key) {
                Some(existing) => *existing = rule,
                None => located.push(rule),
            }
        }
        let mut rules = Vec::new();
        for rule in located {
            if rule.config.enabled != Some(false) {
                rules.push(compile(rule)?);
            }
        }
        Ok(RuleSet { rules })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rules this entry matches.
    pub fn matching<'a>(&'a self, entry: &'a LogEntry) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules.iter().filter(move |rule| rule.matches(entry))
    }
}

/// The `[[alert_rules]]` tables of a TOML text (a config file), each with its line.
pub fn rules_in(text: &str, origin: &str) -> Result<Vec<LocatedRule>, RuleError> {
    let file: RulesFile = toml::from_str(text).map_err(|err| {
        let (line, problem) = toml_problem(text, &err);
        RuleError {
            origin: origin.to_owned(),
            line,
            key: String::new(),
            problem,
        }
    })?;
    Ok(file
        .alert_rules
        .into_iter()
        .map(|spanned| LocatedRule {
            origin: origin.to_owned(),
            line: line_of(text, spanned.span().start),
            config: spanned.into_inner(),
        })
        .collect())
}

/// A TOML error as it may be shown: its line and what is wrong, without the line's text or any
/// value quoted from it (a config file holds webhook URLs and tokens).
pub fn toml_problem(text: &str, err: &toml::de::Error) -> (usize, String) {
    let line = err.span().map_or(0, |s| line_of(text, s.start));
    let mut problem = String::new();
    let mut quoted = false;
    let mut chars = err.message().chars();
    while let Some(c) = chars.next() {
        if quoted && c == '\\' {
            chars.next();
        } else if c == '"' {
            if !quoted {
                problem.push_str("\"…\"");
            }
            quoted = !quoted;
        } else if !quoted {
            problem.push(c);
        }
    }
    (line, problem.trim().replace('\n', " "))
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(0, |before| before.matches('\n').count() + 1)
}

fn compile(located: LocatedRule) -> Result<Rule, RuleError> {
    let LocatedRule {
        origin,
        line,
        config,
    } = located;
    let problem = |problem: String| RuleError {
        origin: origin.clone(),
        line,
        key: config.key.clone(),
        problem,
    };
    if config.key.trim().is_empty() {
        return Err(problem("a rule needs a key".to_owned()));
    }
    let regex = |pattern: &str| rule_regex(pattern).map_err(&problem);
    let message = config.message.as_deref().map(regex).transpose()?;
    let mut metadata = Vec::new();
    for (key, pattern) in &config.metadata {
        metadata.push((key.clone(), regex(pattern)?));
    }
    let mut channels = Vec::new();
    for name in config.channels.clone().unwrap_or_default() {
        let channel: Channel = serde_json::from_value(serde_json::Value::String(name.clone()))
            .map_err(|_| {
                let known = [Channel::ALL.as_slice(), &[Channel::Demo]].concat();
                problem(format!(
                    "unknown channel {name:?} ({})",
                    Channel::named(&known)
                ))
            })?;
        channels.push(channel);
    }
    let rows = rows_of(&config).map_err(&problem)?;
    let burst = burst_of(&config).map_err(&problem)?;
    if config.tier.is_none()
        && config.severity_at_least.is_none()
        && config.event.is_empty()
        && message.is_none()
        && metadata.is_empty()
        && rows.is_none()
    {
        return Err(problem("a rule needs at least one matcher".to_owned()));
    }
    Ok(Rule {
        key: config.key.clone(),
        tier: config.tier,
        severity_at_least: config.severity_at_least,
        events: config.event.clone(),
        message,
        metadata,
        rows,
        burst,
        severity: config.severity.unwrap_or(AlertSeverity::Medium),
        channels,
        suppression: Duration::from_secs(config.suppression_minutes.unwrap_or(15) * 60),
    })
}

/// A rule's regular expression, within the limits that keep alerting fast.
fn rule_regex(pattern: &str) -> Result<Regex, String> {
    if let Some(count) = costly_repetition(pattern) {
        return Err(format!(
            "regular expression {pattern:?} repeats {count} times; at most {MAX_REPETITION} \
             are allowed, so that no rule can stall alerting on a long line"
        ));
    }
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(4 * REGEX_SIZE_LIMIT)
        .build()
        .map_err(|err| {
            let reason = err.to_string();
            format!(
                "bad regular expression {pattern:?}: {}",
                reason.lines().last().unwrap_or("invalid").trim()
            )
        })
}

/// The runtime row matchers (status, path, source), when the rule has any: only runtime rows
/// have them, so a rule of another tier cannot use them.
fn rows_of(config: &RuleConfig) -> Result<Option<RowFilter>, String> {
    if config.status.is_empty() && config.path.is_none() && config.source.is_empty() {
        return Ok(None);
    }
    if config.tier.is_some_and(|tier| tier != Tier::Runtime) {
        return Err(
            "status, path and source match runtime rows: the tier must be runtime".to_owned(),
        );
    }
    if let Some(path) = &config.path {
        rule_regex(path)?;
    }
    RowFilter::of(None, &config.status, config.path.as_deref(), &config.source).map(Some)
}

/// The most matches a burst may ask for (each is remembered until the burst is complete).
const MAX_BURST: u32 = 10_000;

fn burst_of(config: &RuleConfig) -> Result<Option<Burst>, String> {
    match (config.at_least, config.within_seconds) {
        (None, None) => Ok(None),
        (Some(count @ 1..=MAX_BURST), Some(seconds @ 1..=86_400)) => Ok(Some(Burst {
            count,
            within: Duration::from_secs(seconds),
        })),
        _ => Err(
            "at_least and within_seconds go together: a count of at least 1 within 1 \
                  to 86400 seconds"
                .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_failed() -> LogEntry {
        LogEntry::at(
            1,
            Tier::Build,
            Severity::Error,
            "failed",
            "Command \"npm run build\" exited with 1",
        )
    }

    fn keys(set: &RuleSet, entry: &LogEntry) -> Vec<String> {
        set.matching(entry).map(|r| r.key.clone()).collect()
    }

    fn runtime_row(status: u16, path: &str, source: &str, target: &str) -> LogEntry {
        let mut entry = LogEntry::at(1, Tier::Runtime, Severity::Info, source, "GET / 200");
        let extra = &mut entry.metadata.extra;
        extra.insert("status".into(), status.into());
        extra.insert("request_path".into(), path.into());
        extra.insert("target".into(), target.into());
        if status >= 500 {
            entry.severity = Severity::Error;
        }
        entry
    }

    #[test]
    fn runtime_rows_match_on_status_path_and_source() {
        let text = r#"
[[alert_rules]]
key = "checkout_5xx"
status = ["5xx", "429"]
path = "^/api/checkout"
source = ["serverless"]
"#;
        let set =
            RuleSet::with_overrides(rules_in(text, "test").expect("parses")).expect("compiles");
        let hits = |e: &LogEntry| keys(&set, e).contains(&"checkout_5xx".to_owned());
        assert!(hits(&runtime_row(502, "/api/checkout", "serverless", "")));
        assert!(hits(&runtime_row(
            429,
            "/api/checkout/pay",
            "serverless",
            ""
        )));
        assert!(!hits(&runtime_row(404, "/api/checkout", "serverless", "")));
        assert!(!hits(&runtime_row(502, "/cart", "serverless", "")));
        assert!(!hits(&runtime_row(502, "/api/checkout", "request", "")));
        // A build line mentioning a 502 is no runtime row.
        assert!(!hits(&LogEntry::at(
            1,
            Tier::Build,
            Severity::Error,
            "serverless",
            "502"
        )));
    }

    #[test]
    fn the_error_burst_counts_production_errors_only() {
        let set = RuleSet::builtin();
        let burst = set
            .rules()
            .iter()
            .find(|r| r.key == "runtime_error_burst")
            .expect("built-in");
        assert_eq!(burst.burst.map(|b| b.count), Some(10));
        assert!(burst.matches(&runtime_row(500, "/", "request", "production")));
        assert!(!burst.matches(&runtime_row(500, "/", "request", "preview")));
        assert!(!burst.matches(&runtime_row(200, "/", "request", "production")));
    }

    #[test]
    fn a_burst_needs_both_its_count_and_its_window() {
        for (fields, ok) in [
            ("at_least = 5\nwithin_seconds = 60", true),
            ("at_least = 5", false),
            ("within_seconds = 60", false),
            ("at_least = 0\nwithin_seconds = 60", false),
            ("at_least = 5\nwithin_seconds = 0", false),
            ("status = [\"6xx\"]", false),
            ("at_least = 100000\nwithin_seconds = 60", false),
        ] {
            let text = format!("[[alert_rules]]\nkey = \"r\"\ntier = \"runtime\"\n{fields}\n");
            let compiled = rules_in(&text, "test").map(RuleSet::with_overrides);
            assert_eq!(matches!(compiled, Ok(Ok(_))), ok, "{fields}");
        }
    }

    #[test]
    fn the_builtin_rules_match_what_they_say() {
        let set = RuleSet::builtin();
        assert!(set.rules().len() >= 10);
        assert_eq!(keys(&set, &build_failed()), ["build_failed"]);
        let degraded = LogEntry::system(Severity::Error, "degraded", "Lost the build log stream");
        assert_eq!(keys(&set, &degraded), ["system_error", "stream_degraded"]);
        let oom = LogEntry::at(
            1,
            Tier::Build,
            Severity::Error,
            "stderr",
            "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
        );
        assert_eq!(keys(&set, &oom), ["build_out_of_memory"]);
        let hmac = LogEntry::system(
            Severity::Warn,
            "webhook",
            "HMAC signature validation failed",
        );
        assert_eq!(keys(&set, &hmac), ["security_hmac_failed"]);
        let info = LogEntry::at(
            1,
            Tier::Build,
            Severity::Info,
            "stdout",
            "Compiled successfully",
        );
        assert!(keys(&set, &info).is_empty());
    }

    #[test]
    fn config_rules_replace_switch_off_and_extend_the_builtins() {
        let text = r#"
[[alert_rules]]
key = "build_failed"
tier = "build"
event = ["failed"]
severity = "high"
channels = ["discord"]
suppression_minutes = 5

[[alert_rules]]
key = "rate_limited"
enabled = false

[[alert_rules]]
key = "prisma_migration"
message = "P3009|migration failed"
metadata = { vercel_type = "^stderr$" }
channels = ["webhook"]
"#;
        let set = RuleSet::with_overrides(rules_in(text, "config file c.toml").expect("parses"))
            .expect("compiles");
        let rule = set
            .rules()
            .iter()
            .find(|r| r.key == "build_failed")
            .expect("rule");
        assert_eq!(
            (rule.severity, rule.channels.clone()),
            (AlertSeverity::High, vec![Channel::Discord])
        );
        assert_eq!(rule.suppression, Duration::from_secs(300));
        assert!(set.rules().iter().all(|r| r.key != "rate_limited"));
        let mut entry = LogEntry::at(
            1,
            Tier::Build,
            Severity::Error,
            "stderr",
            "Error: P3009 migrate found failed migrations",
        );
        assert!(
            !keys(&set, &entry).contains(&"prisma_migration".to_owned()),
            "metadata must match too"
        );
        entry.metadata.vercel_type = Some("stderr".to_owned());
        assert!(keys(&set, &entry).contains(&"prisma_migration".to_owned()));
    }

    #[test]
    fn a_costly_regex_is_refused_and_long_lines_are_matched_on_their_start() {
        let rule = |pattern: &str| {
            let text = format!("[[alert_rules]]\nkey = \"r\"\nmessage = '{pattern}'\n");
            RuleSet::with_overrides(rules_in(&text, "config file c.toml").expect("parses"))
        };
        let err = rule("[a-z]{3000}[0-9]").expect_err("too costly");
        assert!(err.to_string().contains("repeats 3000 times"), "{err}");
        assert!(rule("(a{50}){3}").is_err());
        assert!(rule("x{101,}").is_err());
        assert!(rule("(a{10}b+){10}").is_ok());
        for ordinary in [
            r"(?i)(error|fatal).*timeout",
            r"^Error: .*ENOENT",
            r"\w+@\w+\.\w+",
            r"(?i)out of memory|heap limit|SIGKILL",
            r"[a-z]{30}[0-9]",
        ] {
            rule(ordinary).unwrap_or_else(|err| panic!("{ordinary}: {err}"));
        }
        let set = rule("needle").expect("compiles");
        let at = |offset: usize| {
            let text = format!("{}needle", "é".repeat(offset / 2));
            LogEntry::at(1, Tier::Build, Severity::Info, "stdout", text)
        };
        assert!(keys(&set, &at(MATCHED_BYTES - 100)).contains(&"r".to_owned()));
        assert!(!keys(&set, &at(MATCHED_BYTES + 100)).contains(&"r".to_owned()));
    }

    #[test]
    fn a_bad_rule_names_the_file_line_and_rule() {
        let text = "[[alert_rules]]\nkey = \"ok\"\nevent = [\"failed\"]\n\n[[alert_rules]]\nkey = \"broken\"\nmessage = \"(unclosed\"\n";
        let err = RuleSet::with_overrides(rules_in(text, "config file c.toml").expect("parses"))
            .expect_err("bad regex");
        assert_eq!((err.line, err.key.as_str()), (5, "broken"));
        let text = err.to_string();
        assert!(
            text.starts_with(
                "config file c.toml, line 5: alert rule \"broken\": bad regular expression"
            ),
            "{text}"
        );
        let bad_channel =
            "[[alert_rules]]\nkey = \"x\"\nevent = [\"failed\"]\nchannels = [\"pager\"]\n";
        let err =
            RuleSet::with_overrides(rules_in(bad_channel, "config file c.toml").expect("parses"))
                .expect_err("channel");
        assert!(
            err.to_string().contains("unknown channel \"pager\""),
            "{err}"
        );
        let unknown_key = "[[alert_rules]]\nkey = \"x\"\nevents = [\"failed\"]\n";
        let err = rules_in(unknown_key, "config file c.toml").expect_err("unknown field");
        assert!(
            err.to_string().contains("line 3") && err.to_string().contains("events"),
            "{err}"
        );
    }
}
