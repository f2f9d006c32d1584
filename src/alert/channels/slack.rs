//! Slack incoming webhooks: `POST` [`payload`] as `application/json` to the webhook URL
//! (`SLACK_WEBHOOK_URL`, `slack_webhook_url` in the config file); success is HTTP 200 with the
//! body `ok`. On unless `SLACK_ALERTS_ENABLED` (`slack_enabled`) is false.
//!
//! Limits (characters), from Slack's API documentation:
//! - `text` (the notification fallback) is truncated by Slack above 40 000
//!   (api.slack.com/changelog/2018-04-truncating-really-long-messages): [`TEXT_MAX`].
//! - section block `text` ≤ 3000, `fields` ≤ 10 items of ≤ 2000 each: [`SECTION_TEXT_MAX`],
//!   [`FIELDS_MAX`], [`FIELD_MAX`].
//! - header block text ≤ 150 (docs.slack.dev/reference/block-kit/blocks/header-block):
//!   [`HEADER_MAX`].
//! - ≤ 50 blocks per message (commonly cited but unverified; the slack-blocks and
//!   slack-messaging crates document it too): [`BLOCKS_MAX`]. This payload has
//!   at most 5.
//! - a context block has ≤ 10 elements (Block Kit reference); this one has 1.
//!
//! Slack uses `&`, `<` and `>` as control characters in text objects, so they are sent as
//! `&amp;`, `&lt;` and `&gt;` everywhere (Slack's "Escaping text" section of
//! docs.slack.dev/messaging/formatting-message-text): log text can never mention `<!channel>`,
//! a user or a link. Limits are applied to the escaped text, and an entity is never cut.

use serde_json::{json, Value};

use super::text::{
    chat_fields, fit_escaped, message_lines, short_fingerprint, summary, title, web_link,
    Notification,
};
use super::{Destination, Request, RequestError, Setting, Switch, Vars};
use crate::secret::Secret;

pub const TEXT_MAX: usize = 40_000;
pub const HEADER_MAX: usize = 150;
pub const SECTION_TEXT_MAX: usize = 3_000;
pub const FIELD_MAX: usize = 2_000;
pub const FIELDS_MAX: usize = 10;
pub const BLOCKS_MAX: usize = 50;
/// The message's lines shown after its first.
pub const MORE_LINES: usize = 12;

const URL: Setting = Setting::secret("SLACK_WEBHOOK_URL", "slack_webhook_url");

/// Where Slack alerts go: an incoming webhook.
#[derive(Debug, Clone)]
pub struct SlackWebhook {
    pub url: Secret,
}

impl Destination for SlackWebhook {
    const SWITCH: Option<Switch> = Some(Switch::new("SLACK_ALERTS_ENABLED", "slack_enabled", true));
    const KEYS: &'static [Setting] = &[URL];
    const NEEDS: &'static str = URL.env;

    fn read(vars: &Vars) -> Option<Self> {
        vars.secret(URL).map(|url| SlackWebhook { url })
    }

    fn request(&self, n: &Notification<'_>) -> Result<Request, RequestError> {
        Ok(Request::json(&self.url, payload(n)))
    }
}

/// The incoming-webhook JSON: `text` (the notification fallback) plus `blocks`: a header with
/// the title, a section of fields (severity, rule, project, deployment, count, state), a section
/// with the message's first line in a code span, and a context line with the fingerprint's first
/// 12 characters and the link.
pub fn payload(n: &Notification) -> Value {
    let title = title(n);
    let fields: Vec<Value> = chat_fields(n)
        .iter()
        .take(FIELDS_MAX)
        .map(|(name, value)| field(name, value))
        .collect();

    let mut blocks = vec![
        json!({
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": fit_escaped(&title, HEADER_MAX, escape_char),
                "emoji": true,
            },
        }),
        json!({ "type": "section", "fields": fields }),
    ];
    let summary = summary(n);
    if !summary.is_empty() {
        // Two characters for the backticks around the code span.
        let code = fit_escaped(&summary, SECTION_TEXT_MAX - 2, escape_code_char);
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": format!("`{code}`") },
        }));
    }
    // The lines after the first (a group's members, a stack trace), in a code block.
    let (lines, left_out) = message_lines(n, MORE_LINES + 1);
    if lines.len() > 1 {
        let mut more = lines[1..].join("\n");
        if left_out > 0 {
            more.push_str(&format!("\n… {left_out} more lines"));
        }
        // Six characters for the fences.
        let code = fit_escaped(&more, SECTION_TEXT_MAX - 6, escape_code_char);
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": format!("```{code}```") },
        }));
    }
    let mut context = format!("Fingerprint `{}`", short_fingerprint(n));
    if let Some(link) = web_link(n) {
        context.push_str(&format!(" · <{}|Open>", link_target(&link)));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{ "type": "mrkdwn", "text": context }],
    }));
    blocks.truncate(BLOCKS_MAX);

    json!({
        "text": fit_escaped(&title, TEXT_MAX, escape_char),
        "blocks": blocks,
        "unfurl_links": false,
        "unfurl_media": false,
    })
}

/// `text` with `&`, `<` and `>` escaped the way Slack requires.
pub fn escape(text: &str) -> String {
    fit_escaped(text, usize::MAX, escape_char)
}

fn escape_char(c: char) -> Option<&'static str> {
    match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        _ => None,
    }
}

/// Inside a code span a backtick would end it: it becomes a look-alike (U+02CB).
fn escape_code_char(c: char) -> Option<&'static str> {
    match c {
        '`' => Some("\u{2cb}"),
        c => escape_char(c),
    }
}

/// A mrkdwn field: the name in bold, a line break, the value; at most [`FIELD_MAX`] characters.
fn field(name: &str, value: &str) -> Value {
    let head = format!("*{name}*\n");
    let room = FIELD_MAX - head.chars().count();
    json!({
        "type": "mrkdwn",
        "text": format!("{head}{}", fit_escaped(value, room, escape_char)),
    })
}

/// A URL inside `<url|label>`: `&` as an entity, and what would end the link percent-encoded.
fn link_target(url: &str) -> String {
    url.replace('&', "&amp;")
        .replace('<', "%3C")
        .replace('>', "%3E")
        .replace('|', "%7C")
}

#[cfg(test)]
mod tests {
    use super::super::text::test_support::*;
    use super::super::text::{Notification, ACKNOWLEDGED, RESOLVED};
    use super::*;

    fn text_of(value: &Value) -> &str {
        value.as_str().expect("a string")
    }

    /// Every limit of the payload, with what broke it.
    fn check_limits(payload: &Value, name: &str) {
        assert!(chars(text_of(&payload["text"])) <= TEXT_MAX, "{name}: text");
        let blocks = payload["blocks"].as_array().expect("blocks");
        assert!(!blocks.is_empty() && blocks.len() <= BLOCKS_MAX, "{name}");
        let mut total = 0;
        for block in blocks {
            match block["type"].as_str() {
                Some("header") => {
                    let text = text_of(&block["text"]["text"]);
                    assert!(
                        !text.is_empty() && chars(text) <= HEADER_MAX,
                        "{name}: header"
                    );
                    assert!(!text.contains('\n'), "{name}: header on one line");
                    total += chars(text);
                }
                Some("section") => {
                    if let Some(text) = block["text"]["text"].as_str() {
                        assert!(chars(text) <= SECTION_TEXT_MAX, "{name}: section");
                        total += chars(text);
                    }
                    if let Some(fields) = block["fields"].as_array() {
                        assert!(fields.len() <= FIELDS_MAX, "{name}: fields");
                        for field in fields {
                            let text = text_of(&field["text"]);
                            assert!(!text.is_empty() && chars(text) <= FIELD_MAX, "{name}");
                            total += chars(text);
                        }
                    }
                }
                Some("context") => {
                    let elements = block["elements"].as_array().expect("elements");
                    assert!(!elements.is_empty() && elements.len() <= 10, "{name}");
                    for element in elements {
                        let text = text_of(&element["text"]);
                        assert!(chars(text) <= SECTION_TEXT_MAX, "{name}: context");
                        total += chars(text);
                    }
                }
                other => panic!("{name}: unexpected block {other:?}"),
            }
        }
        // Slack also refuses messages whose blocks add up to about 13 000 characters
        // (`msg_blocks_too_long`, slackapi/bolt-js#2509): stay well below.
        assert!(total <= 8_000, "{name}: {total} characters of blocks");
    }

    #[test]
    fn every_limit_holds_for_giant_messages() {
        for giant in giant_alerts() {
            let name = giant.name;
            for alert in [&giant.alert, &giant.monster] {
                for state in ["firing", ACKNOWLEDGED, RESOLVED] {
                    let n = Notification {
                        state,
                        ..note(alert)
                    };
                    check_limits(&payload(&n), name);
                }
            }
        }
    }

    #[test]
    fn a_small_alert_reads_well() {
        let alert = an_alert("Deployment dpl_2A1YdwhTadMp5nphik5kEwFBwnxR is ERROR\nsecond line");
        let payload = payload(&note(&alert));
        let title = "[HIGH] deploy_failed x37: storefront dpl_2A1YdwhTadMp5nphik5kEwFBwnxR: Deployment dpl_2A1YdwhTadMp5nphik5kEwFBwnxR is ERROR";
        assert_eq!(payload["text"], title);
        assert_eq!(payload["blocks"][0]["type"], "header");
        assert_eq!(payload["blocks"][0]["text"]["text"], title);
        let fields: Vec<&str> = payload["blocks"][1]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|f| text_of(&f["text"]))
            .collect();
        assert_eq!(
            fields,
            [
                "*Severity*\nHIGH",
                "*Rule*\ndeploy_failed x37",
                "*Project*\nstorefront",
                "*Deployment*\ndpl_2A1YdwhTadMp5nphik5kEwFBwnxR",
                "*Count*\n37",
                "*State*\nfiring",
            ]
        );
        assert_eq!(
            payload["blocks"][2]["text"]["text"],
            "`Deployment dpl_2A1YdwhTadMp5nphik5kEwFBwnxR is ERROR`"
        );
        assert_eq!(payload["blocks"][3]["text"]["text"], "```second line```");
        let context = text_of(&payload["blocks"][4]["elements"][0]["text"]);
        let fp = &alert.fingerprint.as_str()[..12];
        assert_eq!(
            context,
            format!("Fingerprint `{fp}` · <https://vercel.com/acme/storefront/2A1YdwhTadMp5nphik5kEwFBwnxR|Open>")
        );
    }

    #[test]
    fn log_text_cannot_mention_link_or_break_the_code_span() {
        let alert =
            an_alert("<!channel> <@channel> <@U024BE7LH> & <https://evil.example|click> `x`");
        let n = Notification {
            link: Some("https://vercel.com/a?b=1&c=<2>|3"),
            incident_key: None,
            ..note(&alert)
        };
        let payload = payload(&n);
        assert_eq!(
            payload["blocks"][2]["text"]["text"],
            "`&lt;!channel&gt; &lt;@channel&gt; &lt;@U024BE7LH&gt; &amp; &lt;https://evil.example|click&gt; \u{2cb}x\u{2cb}`"
        );
        assert!(text_of(&payload["text"]).contains("&lt;!channel&gt; &lt;@channel&gt;"));
        assert_eq!(
            text_of(&payload["blocks"][3]["elements"][0]["text"]).split_once(" · "),
            Some((
                format!("Fingerprint `{}`", &alert.fingerprint.as_str()[..12]).as_str(),
                "<https://vercel.com/a?b=1&amp;c=%3C2%3E%7C3|Open>"
            ))
        );
        // Apart from the one link, no text has a raw `<`, `>` or an `&` that is not an entity.
        let mut texts = vec![text_of(&payload["text"]).to_owned()];
        for block in payload["blocks"].as_array().expect("blocks") {
            for text in [&block["text"]["text"], &block["elements"][0]["text"]] {
                if let Some(text) = text.as_str() {
                    texts.push(text.split(" · <").next().unwrap_or("").to_owned());
                }
            }
            for field in block["fields"].as_array().into_iter().flatten() {
                texts.push(text_of(&field["text"]).to_owned());
            }
        }
        for text in texts {
            assert!(!text.contains(['<', '>']), "{text}");
            let stripped = text
                .replace("&amp;", "")
                .replace("&lt;", "")
                .replace("&gt;", "");
            assert!(!stripped.contains('&'), "{text}");
        }
    }

    #[test]
    fn escaped_limits_never_cut_an_entity() {
        let alert = an_alert(&"<&>".repeat(5_000));
        let payload = payload(&Notification::firing(&alert));
        let code = text_of(&payload["blocks"][2]["text"]["text"]);
        assert!(chars(code) <= SECTION_TEXT_MAX);
        let inner = code.trim_matches('`').trim_end_matches('…');
        assert!(
            inner.ends_with("&lt;") || inner.ends_with("&amp;") || inner.ends_with("&gt;"),
            "{}",
            &inner[inner.len() - 10..]
        );
        let header = text_of(&payload["blocks"][0]["text"]["text"]);
        assert!(chars(header) <= HEADER_MAX && header.ends_with('…'));
        assert_eq!(escape("a<b>&c"), "a&lt;b&gt;&amp;c");
    }

    #[test]
    fn a_bad_link_is_left_out() {
        let alert = an_alert("x");
        let n = Notification {
            link: Some("javascript:alert(1)"),
            incident_key: None,
            ..note(&alert)
        };
        let context = payload(&n)["blocks"][3]["elements"][0]["text"].clone();
        assert!(!text_of(&context).contains("Open"), "{context}");
    }
}
