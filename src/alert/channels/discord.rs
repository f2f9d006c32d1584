//! Discord webhooks: `POST` [`payload`] as JSON to [`url_with_wait`] of the webhook URL
//! (`DISCORD_WEBHOOK_URL`, `discord_webhook_url` in the config file; with `wait=true` Discord
//! answers 200 with the message; without it, 204, and "a message that is not saved does not
//! return an error"). On unless `DISCORD_ALERTS_ENABLED` (`discord_enabled`) is false.
//!
//! Limits (characters, which Discord counts as code points: discord-api-docs#1315), from Discord's
//! API documentation (`discord-api-docs@c98d64bc`, `developers/resources/webhook.mdx` and
//! `message.mdx` "Embed Limits"):
//! - `content` ≤ 2000: [`CONTENT_MAX`]; ≤ 10 embeds (this payload has 1).
//! - embed `title` 256, `description` 4096, ≤ 25 fields, field `name` 256 / `value` 1024,
//!   `footer.text` 2048: the `*_MAX` constants.
//! - the sum of title, description, field names and values, footer text and author name over
//!   all embeds ≤ 6000 ([`EMBED_TOTAL_MAX`]); the description is cut first to stay under it.
//! - breaking a limit gets a 400.
//!
//! `allowed_mentions: {"parse": []}` stops log text from pinging @everyone, @here, users or
//! roles (Discord's advice for webhooks); `@everyone`/`@here` in the content are also defused with a
//! zero-width space.

use serde_json::{json, Value};

use super::text::{
    chars, chat_fields, message_lines, short_fingerprint, title, truncate, web_link, Notification,
    RESOLVED,
};
use super::{Destination, Request, RequestError, Setting, Switch, Vars};
use crate::alert::AlertSeverity;
use crate::secret::Secret;

pub const CONTENT_MAX: usize = 2_000;
pub const TITLE_MAX: usize = 256;
pub const DESCRIPTION_MAX: usize = 4_096;
pub const FIELDS_MAX: usize = 25;
pub const FIELD_NAME_MAX: usize = 256;
pub const FIELD_VALUE_MAX: usize = 1_024;
pub const FOOTER_MAX: usize = 2_048;
pub const EMBED_TOTAL_MAX: usize = 6_000;

/// How many of the message's lines go into the description.
const MESSAGE_LINES: usize = 40;
/// Our own field values are identifiers: cut well below [`FIELD_VALUE_MAX`], so the fixed part
/// of the embed always leaves room for the description.
const OUR_FIELD_MAX: usize = 256;

const URL: Setting = Setting::secret("DISCORD_WEBHOOK_URL", "discord_webhook_url");

/// Where Discord alerts go: a channel's webhook.
#[derive(Debug, Clone)]
pub struct DiscordWebhook {
    pub url: Secret,
}

impl Destination for DiscordWebhook {
    const SWITCH: Option<Switch> = Some(Switch::new(
        "DISCORD_ALERTS_ENABLED",
        "discord_enabled",
        true,
    ));
    const KEYS: &'static [Setting] = &[URL];
    const NEEDS: &'static str = URL.env;

    fn read(vars: &Vars) -> Option<Self> {
        vars.secret(URL).map(|url| DiscordWebhook { url })
    }

    fn request(&self, n: &Notification<'_>) -> Result<Request, RequestError> {
        let url = Secret::new(url_with_wait(self.url.expose()));
        Ok(Request::json(&url, payload(n)))
    }
}

/// The webhook JSON: a short `content` (the title, what a push notification shows), one embed
/// (title, the message's first lines in a code block, colour by severity, fields, footer with the
/// fingerprint, timestamp of the entry, the link as the title's URL) and `allowed_mentions` that
/// allow none.
pub fn payload(n: &Notification) -> Value {
    let title = title(n);
    let fields: Vec<(String, String)> = chat_fields(n)
        .into_iter()
        .take(FIELDS_MAX)
        .map(|(name, value)| {
            (
                truncate(name, FIELD_NAME_MAX),
                non_empty(truncate(&value, OUR_FIELD_MAX.min(FIELD_VALUE_MAX))),
            )
        })
        .collect();
    let embed_title = truncate(&title, TITLE_MAX);
    let footer = truncate(
        &format!("shiplog · fingerprint {}", short_fingerprint(n)),
        FOOTER_MAX,
    );

    let fixed = chars(&embed_title)
        + chars(&footer)
        + fields
            .iter()
            .map(|(name, value)| chars(name) + chars(value))
            .sum::<usize>();
    let room = DESCRIPTION_MAX.min(EMBED_TOTAL_MAX.saturating_sub(fixed));
    let description = description(n, room);

    let mut embed = json!({
        "title": embed_title,
        "color": color(n),
        "fields": fields
            .iter()
            .map(|(name, value)| json!({ "name": name, "value": value, "inline": true }))
            .collect::<Vec<_>>(),
        "footer": { "text": footer },
        "timestamp": n.alert.entry.ts_rfc3339(),
    });
    if !description.is_empty() {
        embed["description"] = Value::String(description);
    }
    if let Some(link) = web_link(n) {
        embed["url"] = Value::String(link);
    }
    json!({
        "content": defuse_mentions(&truncate(&title, CONTENT_MAX)),
        "embeds": [embed],
        "allowed_mentions": { "parse": [] },
    })
}

/// The webhook URL with `wait=true` (any `wait` already there replaced, other query parameters
/// such as `thread_id` kept).
pub fn url_with_wait(webhook: &str) -> String {
    let (url, fragment) = match webhook.find('#') {
        Some(at) => webhook.split_at(at),
        None => (webhook, ""),
    };
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut params: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some("wait"))
        .collect();
    params.push("wait=true");
    format!("{path}?{}{fragment}", params.join("&"))
}

/// The characters of an embed that count towards [`EMBED_TOTAL_MAX`]: title, description,
/// field names and values, footer text, author name.
pub fn embed_chars(embed: &Value) -> usize {
    let text = |v: &Value| v.as_str().map_or(0, chars);
    text(&embed["title"])
        + text(&embed["description"])
        + text(&embed["footer"]["text"])
        + text(&embed["author"]["name"])
        + embed["fields"].as_array().map_or(0, |fields| {
            fields
                .iter()
                .map(|f| text(&f["name"]) + text(&f["value"]))
                .sum()
        })
}

/// The embed colour: by severity while firing or acknowledged (red shades to blue), green once
/// resolved.
fn color(n: &Notification) -> u32 {
    if n.state.trim().eq_ignore_ascii_case(RESOLVED) {
        return 0x2e_cc71;
    }
    match n.alert.severity {
        AlertSeverity::Critical => 0x99_2d22,
        AlertSeverity::High => 0xe7_4c3c,
        AlertSeverity::Medium => 0xe6_7e22,
        AlertSeverity::Low => 0x34_98db,
    }
}

/// The message's first lines in a code block, at most `room` characters in all (the fences
/// included); empty when there is no room or no message.
fn description(n: &Notification, room: usize) -> String {
    const FENCES: usize = "```\n\n```".len();
    let (lines, left_out) = message_lines(n, MESSAGE_LINES);
    if lines.is_empty() || room <= FENCES + 1 {
        return String::new();
    }
    let mut text = lines.join("\n");
    if left_out > 0 {
        text.push_str(&format!("\n… {left_out} more lines"));
    }
    // A backtick could close the block: it becomes a look-alike (U+02CB).
    let text = text.replace('`', "\u{2cb}");
    format!("```\n{}\n```", truncate(&text, room - FENCES))
}

/// `@everyone` and `@here` with a zero-width space after the `@`, so even a client ignoring
/// `allowed_mentions` shows them as text.
fn defuse_mentions(text: &str) -> String {
    text.replace("@everyone", "@\u{200b}everyone")
        .replace("@here", "@\u{200b}here")
}

fn non_empty(text: String) -> String {
    if text.trim().is_empty() {
        "-".to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::super::text::test_support::*;
    use super::super::text::Notification;
    use super::*;

    fn check_limits(payload: &Value, name: &str) {
        let content = payload["content"].as_str().expect("content");
        assert!(
            !content.is_empty() && chars(content) <= CONTENT_MAX,
            "{name}"
        );
        assert_eq!(
            payload["allowed_mentions"],
            json!({ "parse": [] }),
            "{name}"
        );
        let embeds = payload["embeds"].as_array().expect("embeds");
        assert!(embeds.len() <= 10, "{name}");
        let mut total = 0;
        for embed in embeds {
            let title = embed["title"].as_str().expect("title");
            assert!(chars(title) <= TITLE_MAX, "{name}: title");
            if let Some(description) = embed["description"].as_str() {
                assert!(chars(description) <= DESCRIPTION_MAX, "{name}: description");
                assert!(description.starts_with("```\n") && description.ends_with("\n```"));
            }
            let fields = embed["fields"].as_array().expect("fields");
            assert!(fields.len() <= FIELDS_MAX, "{name}");
            for field in fields {
                let (field_name, value) = (
                    field["name"].as_str().expect("name"),
                    field["value"].as_str().expect("value"),
                );
                assert!(!field_name.is_empty() && chars(field_name) <= FIELD_NAME_MAX);
                assert!(!value.trim().is_empty() && chars(value) <= FIELD_VALUE_MAX);
            }
            let footer = embed["footer"]["text"].as_str().expect("footer");
            assert!(chars(footer) <= FOOTER_MAX, "{name}");
            assert!(embed["color"].is_u64(), "{name}");
            total += embed_chars(embed);
        }
        assert!(total <= EMBED_TOTAL_MAX, "{name}: {total}");
    }

    #[test]
    fn every_limit_holds_for_giant_messages() {
        for giant in giant_alerts() {
            let (name, message) = (giant.name, &giant.message);
            for alert in [&giant.alert, &giant.monster] {
                let payload = payload(&note(alert));
                check_limits(&payload, name);
                let embed = &payload["embeds"][0];
                let description = embed["description"].as_str().expect("description");
                assert!(description.contains('…'), "{name}: cut");
                if message.contains('\n') {
                    // Many short lines: cut by line count, saying how many were left out.
                    assert!(description.contains("more lines\n```"), "{name}");
                    continue;
                }
                // The description is what gives way: it uses what the rest leaves.
                assert!(
                    embed_chars(embed) >= EMBED_TOTAL_MAX - 10
                        || chars(description) >= DESCRIPTION_MAX - 10,
                    "{name}: {} / {}",
                    embed_chars(embed),
                    chars(description)
                );
            }
        }
    }

    #[test]
    fn a_small_alert_reads_well() {
        let alert = an_alert("Deployment dpl_2A1YdwhTadMp5nphik5kEwFBwnxR is ERROR\nat `step` 3\n");
        let payload = payload(&note(&alert));
        let title = "[HIGH] deploy_failed x37: storefront dpl_2A1YdwhTadMp5nphik5kEwFBwnxR: Deployment dpl_2A1YdwhTadMp5nphik5kEwFBwnxR is ERROR";
        assert_eq!(payload["content"], title);
        let embed = &payload["embeds"][0];
        assert_eq!(embed["title"], title);
        assert_eq!(
            embed["description"],
            "```\nDeployment dpl_2A1YdwhTadMp5nphik5kEwFBwnxR is ERROR\nat \u{2cb}step\u{2cb} 3\n```"
        );
        assert_eq!(embed["color"], 0xe7_4c3c);
        assert_eq!(embed["timestamp"], "2026-07-08T00:47:18.756Z");
        assert_eq!(
            embed["url"],
            "https://vercel.com/acme/storefront/2A1YdwhTadMp5nphik5kEwFBwnxR"
        );
        assert_eq!(
            embed["footer"]["text"],
            format!(
                "shiplog · fingerprint {}",
                &alert.fingerprint.as_str()[..12]
            )
        );
        let fields: Vec<(&str, &str)> = embed["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|f| (f["name"].as_str().unwrap(), f["value"].as_str().unwrap()))
            .collect();
        assert_eq!(
            fields,
            [
                ("Severity", "HIGH"),
                ("Rule", "deploy_failed x37"),
                ("Project", "storefront"),
                ("Deployment", "dpl_2A1YdwhTadMp5nphik5kEwFBwnxR"),
                ("Count", "37"),
                ("State", "firing"),
            ]
        );
    }

    #[test]
    fn colour_follows_severity_and_resolution() {
        let cases = [
            (AlertSeverity::Critical, "firing", 0x99_2d22),
            (AlertSeverity::High, "acknowledged", 0xe7_4c3c),
            (AlertSeverity::Medium, "firing", 0xe6_7e22),
            (AlertSeverity::Low, "firing", 0x34_98db),
            (AlertSeverity::Critical, "resolved", 0x2e_cc71),
        ];
        for (severity, state, expected) in cases {
            let alert = alert_of(entry("x"), "r", severity);
            let n = Notification {
                state,
                ..Notification::firing(&alert)
            };
            assert_eq!(
                payload(&n)["embeds"][0]["color"],
                expected,
                "{severity:?} {state}"
            );
        }
    }

    #[test]
    fn everyone_in_a_message_cannot_mention() {
        let alert = an_alert("@everyone @here <@123456789012345678> <@&42> deploy is down");
        let payload = payload(&Notification::firing(&alert));
        assert_eq!(payload["allowed_mentions"], json!({ "parse": [] }));
        let content = payload["content"].as_str().expect("content");
        assert!(
            content.contains("@\u{200b}everyone @\u{200b}here"),
            "{content}"
        );
        assert!(!content.contains("@everyone") && !content.contains("@here"));
    }

    #[test]
    fn no_message_no_description_and_no_bad_url() {
        let alert = an_alert("");
        let n = Notification {
            link: Some("ftp://x"),
            incident_key: None,
            ..Notification::firing(&alert)
        };
        let embed = &payload(&n)["embeds"][0];
        assert!(embed.get("description").is_none());
        assert!(embed.get("url").is_none());
        assert_eq!(
            embed["title"],
            "[HIGH] deploy_failed: storefront dpl_2A1YdwhTadMp5nphik5kEwFBwnxR: failed"
        );
    }

    #[test]
    fn wait_is_added_and_other_parameters_kept() {
        let cases = [
            (
                "https://discord.com/api/webhooks/1/tok",
                "https://discord.com/api/webhooks/1/tok?wait=true",
            ),
            (
                "https://discord.com/api/webhooks/1/tok?thread_id=9",
                "https://discord.com/api/webhooks/1/tok?thread_id=9&wait=true",
            ),
            (
                "https://discord.com/api/webhooks/1/tok?wait=false&thread_id=9",
                "https://discord.com/api/webhooks/1/tok?thread_id=9&wait=true",
            ),
            (
                "https://discord.com/api/webhooks/1/tok?",
                "https://discord.com/api/webhooks/1/tok?wait=true",
            ),
            (
                "http://127.0.0.1:9/w?a=1&waiter=2#f",
                "http://127.0.0.1:9/w?a=1&waiter=2&wait=true#f",
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(url_with_wait(url), expected);
        }
    }
}
