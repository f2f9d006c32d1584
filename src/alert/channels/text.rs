//! What every channel says about an alert: the [`Notification`] (an [`Alert`] plus its lifecycle:
//! count, state, link) and the texts built from it (title, summary, fields), which each channel's
//! payload is made of.
//!
//! Nothing here touches the network. Every text is cleaned the same way first (escape sequences
//! and control characters removed, see [`summary`]), then cut to the channel's limits, counted in
//! characters (Unicode scalar values), never bytes. Limits and their sources are listed in each
//! channel's module.
//!
//! Secrets are redacted upstream (the logger redacts an entry before any rule sees it).

use crate::alert::{Alert, AlertSeverity, Fingerprint};
use crate::printable::display;

/// The state of an alert that has just fired.
pub const FIRING: &str = "firing";
/// The state of an alert someone has acknowledged.
pub const ACKNOWLEDGED: &str = "acknowledged";
/// The state of an alert that is over.
pub const RESOLVED: &str = "resolved";

/// The longest [`title`], in characters: Slack's header block limit, the smallest title limit of
/// the channels (header-block reference, docs.slack.dev/reference/block-kit/blocks/header-block).
pub const TITLE_MAX: usize = 150;

/// What every channel needs to say about an alert (built from an Alert plus lifecycle info).
#[derive(Debug, Clone, Copy)]
pub struct Notification<'a> {
    pub alert: &'a Alert,
    /// How many matches so far in this window ("x37"), 1 for the first.
    pub count: u64,
    /// "firing" | "acknowledged" | "resolved"
    pub state: &'a str,
    /// Link to more (e.g. the Vercel inspector URL), optional.
    pub link: Option<&'a str>,
    /// The key the alert is known by in an incident tool (PagerDuty's `dedup_key`): stable for
    /// the life of one alert.
    pub incident_key: Option<&'a str>,
}

impl<'a> Notification<'a> {
    /// The first notification of an alert: count 1, firing, no link.
    pub fn firing(alert: &'a Alert) -> Self {
        Notification {
            alert,
            count: 1,
            state: FIRING,
            link: None,
            incident_key: None,
        }
    }
}

/// One line saying what happened, at most [`TITLE_MAX`] characters:
/// `[HIGH] deploy_failed: storefront dpl_abc: Deployment dpl_abc is ERROR`, with the count when
/// there were repeats (`deploy_failed x37`) and the state in front when it is not firing
/// (`[RESOLVED] [HIGH] …`).
pub fn title(n: &Notification) -> String {
    headline(n, TITLE_MAX)
}

/// The message's first non-blank line, cleaned: escape sequences and control characters removed,
/// tabs made spaces, bidirectional overrides shown as `�`, trimmed. For an entry without a message,
/// its event (e.g. `failed`). Not cut: each channel cuts it to its own limits.
pub fn summary(n: &Notification) -> String {
    let entry = &n.alert.entry;
    let cleaned = display(&entry.message, false);
    let first = cleaned
        .split(['\n', '\u{2028}', '\u{2029}'])
        .map(clean_line)
        .find(|line| !line.is_empty());
    match first {
        Some(line) => line,
        None => one_line(&entry.event),
    }
}

/// Cuts `text` to at most `max` characters (not bytes!) on a char boundary, ending with "…" when
/// cut.
pub fn truncate(text: &str, max: usize) -> String {
    fit_escaped(text, max, |_| None)
}

/// `text` with some characters replaced by `escape` (e.g. `&` by `&amp;`), cut so the *escaped*
/// text has at most `max` characters, ending with "…" when cut. An escape is never split.
pub(crate) fn fit_escaped(
    text: &str,
    max: usize,
    escape: impl Fn(char) -> Option<&'static str>,
) -> String {
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut len = 0;
    // The byte length of `out` while it still leaves room for the ellipsis.
    let mut room_for_ellipsis = 0;
    for c in text.chars() {
        let piece = escape(c);
        let piece_len = piece.map_or(1, |p| p.chars().count());
        if len + piece_len > max {
            out.truncate(room_for_ellipsis);
            // Neither dangling whitespace nor half an emoji sequence before the ellipsis.
            while out.ends_with(|c: char| c.is_whitespace() || c == '\u{200d}') {
                out.pop();
            }
            out.push('…');
            return out;
        }
        match piece {
            Some(p) => out.push_str(p),
            None => out.push(c),
        }
        len += piece_len;
        if len < max {
            room_for_ellipsis = out.len();
        }
    }
    out
}

/// How many characters (Unicode scalar values) `text` has: what the limits count.
pub(crate) fn chars(text: &str) -> usize {
    text.chars().count()
}

/// `HIGH`, `CRITICAL`, …
pub(crate) fn severity_label(severity: AlertSeverity) -> String {
    severity.as_str().to_ascii_uppercase()
}

/// `[HIGH]`, or `[RESOLVED] [HIGH]` when the alert is not firing.
pub(crate) fn tag(n: &Notification) -> String {
    let severity = severity_label(n.alert.severity);
    let state = one_line(n.state);
    if state.is_empty() || state.eq_ignore_ascii_case(FIRING) {
        format!("[{severity}]")
    } else {
        format!(
            "[{}] [{severity}]",
            truncate(&state, 20).to_ascii_uppercase()
        )
    }
}

/// The rule, with the count when there were repeats: `deploy_failed x37`.
/// What a chat message lists about an alert, in order: severity, rule, project (when known),
/// deployment, count, state.
pub(crate) fn chat_fields(n: &Notification) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("Severity", severity_label(n.alert.severity)),
        ("Rule", rule_and_count(n)),
    ];
    if let Some(project) = project(n) {
        fields.push(("Project", project));
    }
    fields.push((
        "Deployment",
        deployment(n).unwrap_or_else(|| "unknown".into()),
    ));
    fields.push(("Count", n.count.to_string()));
    fields.push(("State", state(n)));
    fields
}

pub(crate) fn rule_and_count(n: &Notification) -> String {
    rule_with_count(n, 80)
}

/// The rule cut to `max` characters, with the count when there were repeats.
pub(crate) fn rule_with_count(n: &Notification, max: usize) -> String {
    let rule = truncate(&one_line(&n.alert.rule), max);
    if n.count > 1 {
        format!("{rule} x{}", n.count)
    } else {
        rule
    }
}

/// The project's name, one line, when the entry has one.
pub(crate) fn project(n: &Notification) -> Option<String> {
    let project = n.alert.entry.metadata.project.as_deref()?;
    Some(truncate(&one_line(project), 80)).filter(|p| !p.is_empty())
}

/// The deployment as Vercel names it (`dpl_…`), else shiplog's stable id.
pub(crate) fn deployment(n: &Notification) -> Option<String> {
    let entry = &n.alert.entry;
    let id = entry
        .build_id
        .as_deref()
        .or(entry.metadata.vercel_deployment_id.as_deref())
        .or(entry.deployment_id.as_deref())?;
    Some(truncate(&one_line(id), 80)).filter(|id| !id.is_empty())
}

/// What the alert is about: `storefront dpl_abc`, either part alone, or nothing.
pub(crate) fn target(n: &Notification) -> String {
    [project(n), deployment(n)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The title's words, cut to `max` characters.
pub(crate) fn headline(n: &Notification, max: usize) -> String {
    let mut line = format!("{} {}", tag(n), rule_and_count(n));
    let target = target(n);
    if !target.is_empty() {
        line.push_str(": ");
        line.push_str(&target);
    }
    let summary = summary(n);
    if !summary.is_empty() {
        line.push_str(": ");
        line.push_str(&summary);
    }
    truncate(&line, max)
}

/// The fingerprint's first 12 characters: enough to tell alerts apart in a chat.
pub(crate) fn short_fingerprint(n: &Notification) -> String {
    Fingerprint::short(n.alert.fingerprint.as_str()).to_owned()
}

/// The state, cleaned (`firing` when empty).
pub(crate) fn state(n: &Notification) -> String {
    let state = truncate(&one_line(n.state), 40);
    if state.is_empty() {
        FIRING.to_owned()
    } else {
        state
    }
}

/// The link when it is an absolute http(s) URL, normalised; `None` otherwise, so a channel that
/// rejects bad URLs (Discord answers 400) never gets one.
pub(crate) fn web_link(n: &Notification) -> Option<String> {
    let url = reqwest::Url::parse(n.link?.trim()).ok()?;
    matches!(url.scheme(), "http" | "https")
        .then(|| url.to_string())
        .filter(|url| url.len() <= 2048)
}

/// The message's lines from its first non-blank one, cleaned, at most `max_lines` of them, each
/// with trailing whitespace removed, plus how many lines were left out.
pub(crate) fn message_lines(n: &Notification, max_lines: usize) -> (Vec<String>, usize) {
    let cleaned = display(&n.alert.entry.message, false);
    let mut lines = cleaned
        .split(['\n', '\u{2028}', '\u{2029}'])
        .map(|line| line.replace('\t', "    ").trim_end().to_owned())
        .skip_while(|line| line.trim().is_empty())
        .collect::<Vec<_>>();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let left_out = lines.len().saturating_sub(max_lines);
    lines.truncate(max_lines);
    (lines, left_out)
}

/// Any text on one line: escape sequences and control characters removed, every run of
/// whitespace (line breaks included) one space, trimmed.
pub(crate) fn one_line(text: &str) -> String {
    display(text, false)
        .split(|c: char| c.is_whitespace())
        .filter(|word| !word.is_empty())
        .map(str::to_owned)
        .collect::<Vec<String>>()
        .join(" ")
}

/// One line of cleaned text: tabs as spaces, trimmed.
fn clean_line(line: &str) -> String {
    line.replace('\t', " ").trim().to_owned()
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Alerts to format, and the giant messages every channel must survive.

    use std::sync::{Arc, OnceLock};

    use super::Notification;
    use crate::alert::{Alert, AlertSeverity, Channel, Fingerprint};
    use crate::log::{LogEntry, Severity, Tier};

    pub const TS: i64 = 1_783_471_638_756;

    pub fn entry(message: &str) -> LogEntry {
        let mut entry = LogEntry::at(TS, Tier::Deploy, Severity::Error, "failed", message)
            .with_deployment("vercel-dpl_2A1YdwhTadMp5nphik5kEwFBwnxR-01JD0ABC")
            .with_build("dpl_2A1YdwhTadMp5nphik5kEwFBwnxR")
            .with_project(Some("prj_7Hk2pQ".into()))
            .with_meta("ready_state", "ERROR");
        entry.metadata.project = Some("storefront".into());
        entry
    }

    pub fn alert_of(entry: LogEntry, rule: &str, severity: AlertSeverity) -> Alert {
        Alert {
            fingerprint: Fingerprint::of(rule, &entry),
            rule: rule.to_owned(),
            severity,
            channels: vec![Channel::Slack, Channel::Discord, Channel::Email],
            entry: Arc::new(entry),
        }
    }

    pub fn an_alert(message: &str) -> Alert {
        alert_of(entry(message), "deploy_failed", AlertSeverity::High)
    }

    /// An alert whose every part is huge: message, rule key, project name and ids.
    pub fn monster(message: &str) -> Alert {
        let huge = "▲✓漢字🚀".repeat(2_000);
        let mut entry = entry(message)
            .with_deployment(huge.as_str())
            .with_build(huge.as_str());
        entry.metadata.project = Some(huge.as_str().into());
        alert_of(entry, &huge, AlertSeverity::Critical)
    }

    pub fn note(alert: &Alert) -> Notification<'_> {
        Notification {
            alert,
            count: 37,
            state: "firing",
            link: Some("https://vercel.com/acme/storefront/2A1YdwhTadMp5nphik5kEwFBwnxR"),
            incident_key: None,
        }
    }

    /// (name, message) pairs far beyond every channel's limits.
    pub fn giants() -> Vec<(&'static str, String)> {
        let mixed = "Build ▲ failed ✓ 漢字 🚀 👩‍💻 é ";
        vec![
            (
                "100 KB mixed, one line",
                mixed.repeat(100_000 / mixed.len() + 1),
            ),
            (
                "100 KB mixed, many lines",
                format!("{mixed}\n").repeat(100_000 / (mixed.len() + 1) + 1),
            ),
            ("a 5000-char single word", "x".repeat(5_000)),
            ("a 5000-char multi-byte word", "漢🚀".repeat(2_500)),
            ("100 KB of markup", "<!channel> & @everyone ".repeat(4_500)),
            ("100 KB of ampersands", "&".repeat(100_000)),
            ("emoji sequences", "👩‍💻👨‍👩‍👧‍👦🏳️‍🌈".repeat(4_000)),
            (
                "escapes and control characters",
                "\u{1b}[31mred\u{1b}[0m\r\u{7}\u{0}\u{202e}".repeat(10_000),
            ),
        ]
    }

    /// A giant message with the alerts it makes (built once: fingerprinting 100 KB is slow in a
    /// debug build).
    pub struct Giant {
        pub name: &'static str,
        pub message: String,
        pub alert: Alert,
        pub monster: Alert,
    }

    pub fn giant_alerts() -> &'static [Giant] {
        static GIANTS: OnceLock<Vec<Giant>> = OnceLock::new();
        GIANTS.get_or_init(|| {
            giants()
                .into_iter()
                .map(|(name, message)| Giant {
                    name,
                    alert: an_alert(&message),
                    monster: monster(&message),
                    message,
                })
                .collect()
        })
    }

    pub(crate) use super::chars;
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn truncate_counts_characters_and_never_splits_one() {
        // (text, max, expected)
        let cases: &[(&str, usize, &str)] = &[
            ("hello", 10, "hello"),
            ("hello", 5, "hello"),
            ("hello!", 5, "hell…"),
            ("hello world", 7, "hello…"),
            ("▲✓漢字🚀", 5, "▲✓漢字🚀"),
            ("▲✓漢字🚀x", 5, "▲✓漢字…"),
            ("🚀🚀🚀", 2, "🚀…"),
            ("abc", 1, "…"),
            ("abc", 0, ""),
            ("", 3, ""),
            ("👩‍💻👩‍💻", 4, "👩‍💻…"),
            ("👩‍💻x", 3, "👩…"),
        ];
        for (text, max, expected) in cases {
            let cut = truncate(text, *max);
            assert_eq!(&cut, expected, "truncate({text:?}, {max})");
            assert!(chars(&cut) <= *max);
        }
        for (name, giant) in giants() {
            for max in [1, 2, 7, 150, 2_000, 4_096] {
                let cut = truncate(&giant, max);
                assert!(chars(&cut) <= max, "{name}, {max}");
                assert!(cut.ends_with('…'), "{name}, {max}");
                let kept = cut.trim_end_matches('…');
                assert!(giant.starts_with(kept), "{name}, {max}: a prefix");
            }
        }
    }

    #[test]
    fn escaping_never_splits_an_entity() {
        let amp = |c: char| (c == '&').then_some("&amp;");
        assert_eq!(fit_escaped("a&b", 7, amp), "a&amp;b");
        assert_eq!(fit_escaped("a&b", 6, amp), "a…");
        assert_eq!(fit_escaped("a&b&", 8, amp), "a&amp;b…");
        let cut = fit_escaped(&"&".repeat(1_000), 3_000, amp);
        assert_eq!(chars(&cut), 2_996);
        assert!(cut.ends_with("&amp;…"));
    }

    #[test]
    fn the_title_is_one_short_line() {
        let alert = an_alert("Deployment dpl_2A1YdwhTadMp5nphik5kEwFBwnxR is ERROR\nat step 3");
        let first = Notification::firing(&alert);
        assert_eq!(
            title(&first),
            "[HIGH] deploy_failed: storefront dpl_2A1YdwhTadMp5nphik5kEwFBwnxR: Deployment dpl_2A1YdwhTadMp5nphik5kEwFBwnxR is ERROR"
        );
        let resolved = Notification {
            state: RESOLVED,
            count: 37,
            ..first
        };
        assert!(title(&resolved).starts_with("[RESOLVED] [HIGH] deploy_failed x37: storefront"));
        let hostile = alert_of(
            entry("\u{1b}]0;pwned\u{7}line\rone\u{202e}\u{0}\t end"),
            "rule\r\nBcc: x@y",
            AlertSeverity::Low,
        );
        let text = title(&Notification::firing(&hostile));
        assert_eq!(
            text,
            "[LOW] rule Bcc: x@y: storefront dpl_2A1YdwhTadMp5nphik5kEwFBwnxR: lineone\u{fffd}  end"
        );
        for giant in giant_alerts() {
            let name = giant.name;
            for alert in [&giant.alert, &giant.monster] {
                let text = title(&note(alert));
                assert!(chars(&text) <= TITLE_MAX, "{name}");
                assert!(!text.contains(|c: char| c.is_control()), "{name}");
            }
        }
    }

    #[test]
    fn the_summary_is_the_first_non_blank_line_cleaned() {
        let cases: &[(&str, &str)] = &[
            ("Build failed", "Build failed"),
            ("\n\n  \t\nError: boom\nsecond", "Error: boom"),
            ("\u{1b}[31mError\u{1b}[0m: red\r\n", "Error: red"),
            ("a\u{2028}b", "a"),
            ("tab\there", "tab here"),
            // Characters that reorder the text (the "Trojan Source" ones) show as `�`.
            ("\u{202e}reversed", "\u{fffd}reversed"),
            ("", "failed"),
            ("   \n  ", "failed"),
        ];
        for (message, expected) in cases {
            let alert = an_alert(message);
            assert_eq!(
                summary(&Notification::firing(&alert)),
                *expected,
                "{message:?}"
            );
        }
    }

    #[test]
    fn only_web_links_are_links() {
        let alert = an_alert("x");
        let with = |link| Notification {
            link: Some(link),
            incident_key: None,
            ..Notification::firing(&alert)
        };
        assert_eq!(
            web_link(&with("https://vercel.com/a b")).as_deref(),
            Some("https://vercel.com/a%20b")
        );
        assert_eq!(web_link(&with("javascript:alert(1)")), None);
        assert_eq!(web_link(&with("not a url")), None);
        assert_eq!(web_link(&Notification::firing(&alert)), None);
    }

    #[test]
    fn message_lines_start_at_the_first_text_and_count_what_is_left_out() {
        let alert = an_alert("\n\none\t1  \ntwo\n\nfour\nfive\n\n");
        let (lines, left_out) = message_lines(&Notification::firing(&alert), 3);
        assert_eq!(lines, ["one    1", "two", ""]);
        assert_eq!(left_out, 2);
    }
}
