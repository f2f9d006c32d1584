//! E-mail: a [`subject`] and a plain-text [`body`] in a `text/plain; charset=utf-8` message
//! ([`message`]) that the delivery sends over SMTP (lettre) to the [`Smtp`] destination. Encoding
//! non-ASCII headers (RFC 2047), long lines and dot-stuffing are the transport's job.
//!
//! Header injection is impossible: the subject never holds a CR, LF or any other control or
//! line-separator character, whatever the alert's rule, project, state or message say. It is at
//! most [`SUBJECT_MAX`] characters (RFC 5322 recommends lines of at most 78 characters but
//! allows 998; a longer subject is folded by the transport).
//!
//! The body repeats the title, then one field per line, then the message's first lines in full
//! (up to [`MESSAGE_LINES`] lines and [`MESSAGE_MAX`] characters), then the fingerprint. Each
//! message line is indented by two spaces, so none can start with `From ` or be a lone `.`.

use super::text::{
    deployment, headline, message_lines, project, rule_and_count, severity_label, state, title,
    truncate, web_link, Notification,
};
use super::{Destination, Request, RequestError, Setting, Switch, Vars};
use crate::secret::Secret;

pub const SUBJECT_MAX: usize = 200;
/// How many of the message's lines the body shows.
pub const MESSAGE_LINES: usize = 50;
/// How many characters of the message the body shows.
pub const MESSAGE_MAX: usize = 20_000;

/// `smtp://user:pass@host:port`; `smtps://` for TLS, `?tls=required` for STARTTLS.
const URL: Setting = Setting::secret("SMTP_URL", "smtp_url");
const FROM: Setting = Setting::text("ALERT_EMAIL_FROM", "email_from");
/// Comma-separated.
const TO: Setting = Setting::text("ALERT_EMAIL_TO", "email_to");

/// Where e-mail alerts go: an SMTP server, the sender and the recipients.
#[derive(Debug, Clone)]
pub struct Smtp {
    pub url: Secret,
    pub from: String,
    pub to: Vec<String>,
}

impl Destination for Smtp {
    const SWITCH: Option<Switch> = Some(Switch::new("EMAIL_ALERTS_ENABLED", "email_enabled", true));
    const KEYS: &'static [Setting] = &[URL, FROM, TO];
    const NEEDS: &'static str = "SMTP_URL, ALERT_EMAIL_FROM and ALERT_EMAIL_TO";

    fn read(vars: &Vars) -> Option<Self> {
        Some(Smtp {
            url: vars.secret(URL)?,
            from: vars.text(FROM)?,
            to: vars
                .text(TO)?
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }

    fn request(&self, n: &Notification<'_>) -> Result<Request, RequestError> {
        Ok(Request::Email {
            message: Box::new(message(self, n)?),
            server: self.url.clone(),
        })
    }
}

/// The e-mail of a notification: plain text, subject without line breaks.
pub fn message(smtp: &Smtp, n: &Notification) -> Result<lettre::Message, RequestError> {
    let address = |key: Setting, value: &str| {
        value.parse().map_err(|_| RequestError::NotAnAddress {
            setting: key.env,
            value: value.to_owned(),
        })
    };
    let mut builder = lettre::Message::builder()
        .from(address(FROM, &smtp.from)?)
        .subject(subject(n));
    for to in &smtp.to {
        builder = builder.to(address(TO, to)?);
    }
    Ok(builder.body(body(n))?)
}

/// One line, at most [`SUBJECT_MAX`] characters, no CR/LF ever:
/// `[HIGH] deploy_failed: storefront dpl_abc: Deployment dpl_abc is ERROR`.
pub fn subject(n: &Notification) -> String {
    headline(n, SUBJECT_MAX)
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '\u{2028}' | '\u{2029}'))
        .collect()
}

/// The plain-text body (lines end with `\n`).
pub fn body(n: &Notification) -> String {
    let alert = n.alert;
    let entry = &alert.entry;
    let mut fields: Vec<(&str, String)> = vec![
        ("Severity", severity_label(alert.severity)),
        ("Rule", rule_and_count(n)),
        ("State", state(n)),
        ("Count", n.count.to_string()),
    ];
    if let Some(project) = project(n) {
        fields.push(("Project", project));
    }
    if let Some(deployment) = deployment(n) {
        fields.push(("Deployment", deployment));
    }
    let id_field = |id: Option<&str>| id.map(|id| truncate(&super::text::one_line(id), 200));
    if let Some(id) = id_field(entry.deployment_id.as_deref()) {
        if fields.iter().all(|(_, value)| *value != id) {
            fields.push(("Shiplog id", id));
        }
    }
    if let Some(id) = id_field(entry.project_id.as_deref()) {
        fields.push(("Project id", id));
    }
    fields.push((
        "Source",
        format!(
            "{} / {} ({})",
            entry.tier.as_str(),
            truncate(&super::text::one_line(&entry.event), 100),
            entry.severity.as_str()
        ),
    ));
    fields.push(("Time", entry.ts_rfc3339()));
    if let Some(link) = web_link(n) {
        fields.push(("Link", link));
    }

    let mut out = title(n);
    out.push_str("\n\n");
    for (name, value) in fields {
        out.push_str(&format!("{:<12}{value}\n", format!("{name}:")));
    }
    let (lines, left_out) = message_lines(n, MESSAGE_LINES);
    if !lines.is_empty() {
        out.push_str("\nMessage:\n");
        let text = truncate(&lines.join("\n"), MESSAGE_MAX);
        for line in text.lines() {
            if !line.is_empty() {
                out.push_str("  ");
                out.push_str(line);
            }
            out.push('\n');
        }
        if left_out > 0 {
            out.push_str(&format!("  ({left_out} more lines not shown)\n"));
        }
    }
    out.push_str(&format!("\nFingerprint: {}\n", alert.fingerprint));
    out
}

#[cfg(test)]
mod tests {
    use super::super::text::test_support::*;
    use super::super::text::{Notification, ACKNOWLEDGED};
    use super::*;
    use crate::alert::AlertSeverity;

    fn no_line_breaks(text: &str) -> bool {
        !text.contains(|c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    }

    #[test]
    fn the_subject_can_never_inject_a_header() {
        // Every place a hostile text could come from.
        let hostile = "x\r\nBcc: x@y\r\n\r\nbody";
        let cases = [
            an_alert(hostile),
            an_alert(&format!("\r\nBcc: x@y\n{hostile}")),
            alert_of(entry("fine"), hostile, AlertSeverity::High),
            {
                let mut entry = entry("fine");
                entry.metadata.project = Some(hostile.into());
                entry.build_id = Some("dpl_1\nBcc: x@y".into());
                alert_of(entry, "r", AlertSeverity::Low)
            },
            an_alert("a\u{2028}Bcc: x@y\u{85}Cc: z@y\u{b}\u{c}"),
        ];
        for alert in &cases {
            for state in ["firing", "resolved\r\nBcc: x@y"] {
                let n = Notification {
                    state,
                    ..note(alert)
                };
                let subject = subject(&n);
                assert!(no_line_breaks(&subject), "{subject:?}");
                assert!(!subject.contains('\r') && !subject.contains('\n'));
                assert!(chars(&subject) <= SUBJECT_MAX);
            }
        }
        assert_eq!(
            subject(&Notification::firing(&cases[0])),
            "[HIGH] deploy_failed: storefront dpl_2A1YdwhTadMp5nphik5kEwFBwnxR: x"
        );
        assert_eq!(
            subject(&Notification::firing(&cases[2])),
            "[HIGH] x Bcc: x@y body: storefront dpl_2A1YdwhTadMp5nphik5kEwFBwnxR: fine"
        );
    }

    #[test]
    fn limits_hold_for_giant_messages() {
        for giant in giant_alerts() {
            let name = giant.name;
            for alert in [&giant.alert, &giant.monster] {
                let n = note(alert);
                let subject = subject(&n);
                assert!(chars(&subject) <= SUBJECT_MAX, "{name}");
                assert!(no_line_breaks(&subject), "{name}");
                let body = body(&n);
                assert!(
                    chars(&body) <= MESSAGE_MAX + 5_000,
                    "{name}: {}",
                    chars(&body)
                );
                assert!(body.ends_with(&format!("Fingerprint: {}\n", alert.fingerprint)));
                assert!(
                    body.lines().filter(|l| l.starts_with("  ")).count() <= MESSAGE_LINES + 1,
                    "{name}"
                );
                assert!(!body.contains(['\r', '\u{1b}', '\u{0}']), "{name}");
            }
        }
    }

    #[test]
    fn the_body_has_the_fields_the_message_and_the_fingerprint() {
        let alert = an_alert("Error: build failed\n  at step 3\n\n.\nFrom here\n");
        let n = Notification {
            state: ACKNOWLEDGED,
            ..note(&alert)
        };
        let expected = format!(
            "[ACKNOWLEDGED] [HIGH] deploy_failed x37: storefront dpl_2A1YdwhTadMp5nphik5kEwFBwnxR: Error: build failed

Severity:   HIGH
Rule:       deploy_failed x37
State:      acknowledged
Count:      37
Project:    storefront
Deployment: dpl_2A1YdwhTadMp5nphik5kEwFBwnxR
Shiplog id: vercel-dpl_2A1YdwhTadMp5nphik5kEwFBwnxR-01JD0ABC
Project id: prj_7Hk2pQ
Source:     deploy / failed (error)
Time:       2026-07-08T00:47:18.756Z
Link:       https://vercel.com/acme/storefront/2A1YdwhTadMp5nphik5kEwFBwnxR

Message:
  Error: build failed
    at step 3

  .
  From here

Fingerprint: {}
",
            alert.fingerprint
        );
        assert_eq!(body(&n), expected);
    }

    #[test]
    fn long_messages_say_what_was_left_out() {
        let message: String = (1..=80).map(|i| format!("line {i}\n")).collect();
        let alert = an_alert(&message);
        let body = body(&Notification::firing(&alert));
        assert!(
            body.contains("  line 50\n  (30 more lines not shown)\n"),
            "{body}"
        );
        assert!(!body.contains("line 51"));
        assert!(!body.contains("Link:"));
    }
}
