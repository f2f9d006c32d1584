//! Twilio SMS: `POST` [`encode_form`] of [`form`] as `application/x-www-form-urlencoded` to
//! [`messages_url`], with HTTP Basic auth (AccountSid:AuthToken); success is 201 Created. The
//! destination is [`Twilio`]; SMS is opt-in: `SMS_ALERTS_ENABLED` (`sms_enabled`) turns it on.
//!
//! Limits, from Twilio's Messages API documentation:
//! - `Body` up to 1600 characters ([`BODY_MAX`]).
//! - more than 160 GSM-7 or 70 UCS-2 characters are split into segments, each billed.
//!
//! The body is kept to at most two segments ([`MAX_SEGMENTS`]). A concatenated message's
//! segments hold 153 GSM-7 septets or 67 UCS-2 code units each (the other 6 bytes carry the
//! concatenation header), so two segments are 306 GSM-7 characters (the `^{}\[~]|€` of the
//! extension table count twice) or 134 UTF-16 code units as soon as one character is outside
//! GSM-7 (an emoji counts twice). Those per-part sizes are standard (3GPP TS 23.038 / 23.040)
//! rather than from Twilio's documentation. A GSM-7 body is cut with "..." ("…" is not GSM-7 and would
//! switch the whole body to UCS-2).

use super::text::{deployment, project, rule_with_count, summary, tag, truncate, Notification};
use super::{Body, Destination, HttpRequest, Request, RequestError, Setting, Switch, Vars};
use crate::secret::Secret;

pub const BODY_MAX: usize = 1_600;
pub const MAX_SEGMENTS: usize = 2;

const GSM_SINGLE: usize = 160;
const GSM_PART: usize = 153;
const UCS2_SINGLE: usize = 70;
const UCS2_PART: usize = 67;

/// The GSM 03.38 default alphabet (one septet each; the escape code itself left out).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table: an escape plus the character, two septets each.
const GSM_EXTENSION: &str = "\u{c}^{}\\[~]|€";

const ACCOUNT_SID: Setting = Setting::text("TWILIO_ACCOUNT_SID", "twilio_account_sid");
const AUTH_TOKEN: Setting = Setting::secret("TWILIO_AUTH_TOKEN", "twilio_auth_token");
const FROM: Setting = Setting::text("TWILIO_FROM", "twilio_from");
const TO: Setting = Setting::text("ALERT_SMS_TO", "sms_to");
/// Twilio's API unless set (a local server in tests).
const API_URL: Setting = Setting::text("TWILIO_API_URL", "twilio_api_url");

/// Where SMS alerts go: a Twilio account, the sender and one recipient.
#[derive(Debug, Clone)]
pub struct Twilio {
    pub api_url: String,
    pub account_sid: String,
    pub auth_token: Secret,
    /// A phone number, or a Messaging Service SID.
    pub from: String,
    pub to: String,
}

impl Destination for Twilio {
    const SWITCH: Option<Switch> = Some(Switch::new("SMS_ALERTS_ENABLED", "sms_enabled", false));
    const KEYS: &'static [Setting] = &[ACCOUNT_SID, AUTH_TOKEN, FROM, TO, API_URL];
    const NEEDS: &'static str = "TWILIO_* and ALERT_SMS_TO";

    fn read(vars: &Vars) -> Option<Self> {
        Some(Twilio {
            account_sid: vars.text(ACCOUNT_SID)?,
            auth_token: vars.secret(AUTH_TOKEN)?,
            from: vars.text(FROM)?,
            to: vars.text(TO)?,
            api_url: vars
                .text(API_URL)
                .unwrap_or_else(|| "https://api.twilio.com".to_owned()),
        })
    }

    fn request(&self, n: &Notification<'_>) -> Result<Request, RequestError> {
        Ok(Request::Http(HttpRequest {
            url: Secret::new(messages_url(&self.api_url, &self.account_sid)),
            body: Body::Form(encode_form(&form(n, &self.from, &self.to))),
            basic_auth: Some((self.account_sid.clone(), self.auth_token.clone())),
            hidden: Vec::new(),
            rate_limited_pause: super::request::RATE_LIMITED_PAUSE,
        }))
    }
}

/// The form fields: `To`, `From` (or `MessagingServiceSid` when `from` is a Messaging Service
/// SID, `MG` + 32 hex digits) and `Body`.
pub fn form(n: &Notification, from: &str, to: &str) -> Vec<(String, String)> {
    let from = from.trim();
    let from_key = if is_messaging_service_sid(from) {
        "MessagingServiceSid"
    } else {
        "From"
    };
    vec![
        ("To".to_owned(), to.trim().to_owned()),
        (from_key.to_owned(), from.to_owned()),
        ("Body".to_owned(), body(n)),
    ]
}

/// The SMS text: `[HIGH] deploy_failed storefront: <first line>` (the state in front when not
/// firing, `x37` after the rule when repeated), cut to fit [`MAX_SEGMENTS`] segments.
pub fn body(n: &Notification) -> String {
    // Short rule and target, so the message's first line always gets some of the room.
    let mut text = format!("{} {}", tag(n), rule_with_count(n, 40));
    if let Some(target) = project(n).or_else(|| deployment(n)) {
        text.push(' ');
        text.push_str(&truncate(&target, 30));
    }
    text.push_str(": ");
    text.push_str(&summary(n));
    fit_segments(&text, MAX_SEGMENTS)
}

/// `application/x-www-form-urlencoded` (the WHATWG serializer): ASCII letters, digits and
/// `*-._` as they are, space as `+`, every other byte of the UTF-8 as `%XX`.
pub fn encode_form(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// `{base}/2010-04-01/Accounts/{AccountSid}/Messages.json`; `base` is
/// `https://api.twilio.com` in production (a local server in tests). The SID is percent-encoded,
/// so it can never change the path.
pub fn messages_url(base: &str, account_sid: &str) -> String {
    format!(
        "{}/2010-04-01/Accounts/{}/Messages.json",
        base.trim().trim_end_matches('/'),
        form_urlencoded::byte_serialize(account_sid.trim().as_bytes()).collect::<String>()
    )
}

/// How many SMS segments `text` is billed as (0 for an empty text).
pub fn segments(text: &str) -> usize {
    if text.is_empty() {
        return 0;
    }
    let (units, single, part): (Vec<usize>, _, _) =
        match text.chars().map(gsm_septets).collect::<Option<Vec<_>>>() {
            Some(septets) => (septets, GSM_SINGLE, GSM_PART),
            None => (
                text.chars().map(char::len_utf16).collect(),
                UCS2_SINGLE,
                UCS2_PART,
            ),
        };
    if units.iter().sum::<usize>() <= single {
        return 1;
    }
    // A character (an escape pair, a surrogate pair) is never split between segments.
    let (mut count, mut used) = (1, 0);
    for unit in units {
        if used + unit > part {
            count += 1;
            used = 0;
        }
        used += unit;
    }
    count
}

/// Is every character of `text` in the GSM-7 alphabet (basic or extension table)?
pub fn is_gsm7(text: &str) -> bool {
    text.chars().all(|c| gsm_septets(c).is_some())
}

fn gsm_septets(c: char) -> Option<usize> {
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if GSM_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// `text`, or its longest prefix plus an ellipsis that fits `max` segments and [`BODY_MAX`].
fn fit_segments(text: &str, max: usize) -> String {
    if segments(text) <= max && text.chars().count() <= BODY_MAX {
        return text.to_owned();
    }
    // No two-segment text is longer than this many characters.
    let longest = (GSM_PART * max).min(BODY_MAX);
    let chars: Vec<char> = text.chars().take(longest + 1).collect();
    for keep in (0..chars.len()).rev() {
        let prefix: String = chars[..keep].iter().collect();
        let prefix = prefix.trim_end_matches(|c: char| c.is_whitespace() || c == '\u{200d}');
        let ellipsis = if is_gsm7(prefix) { "..." } else { "…" };
        let candidate = format!("{prefix}{ellipsis}");
        if segments(&candidate) <= max && candidate.chars().count() <= BODY_MAX {
            return candidate;
        }
    }
    String::new()
}

fn is_messaging_service_sid(text: &str) -> bool {
    text.len() == 34 && text.starts_with("MG") && text[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::super::text::test_support::*;
    use super::super::text::{Notification, RESOLVED};
    use super::*;

    #[test]
    fn segments_follow_gsm7_and_ucs2_sizes() {
        // (text, segments)
        let cases: Vec<(String, usize)> = vec![
            (String::new(), 0),
            ("a".repeat(160), 1),
            ("a".repeat(161), 2),
            ("a".repeat(306), 2),
            ("a".repeat(307), 3),
            ("€".repeat(80), 1),
            ("€".repeat(81), 2),
            // 306 septets, but the escape pair cannot straddle the two parts: three.
            (format!("{}€{}", "a".repeat(152), "a".repeat(152)), 3),
            (format!("{}€{}", "a".repeat(151), "a".repeat(153)), 2),
            ("漢".repeat(70), 1),
            ("漢".repeat(71), 2),
            ("漢".repeat(134), 2),
            ("漢".repeat(135), 3),
            ("🚀".repeat(35), 1),
            ("🚀".repeat(36), 2),
            // One character outside GSM-7 makes the whole text UCS-2.
            (format!("{}`", "a".repeat(69)), 1),
            (format!("{}`", "a".repeat(70)), 2),
            (format!("{}…", "a".repeat(133)), 2),
        ];
        for (text, expected) in cases {
            assert_eq!(
                segments(&text),
                expected,
                "{} chars: {text:?}",
                text.chars().count()
            );
        }
        assert!(is_gsm7("Build failed: {x} [y] ~ | ^ € \\ @£$¥ ÄÖÑÜ§¿ 100%"));
        assert!(!is_gsm7("a`b") && !is_gsm7("…") && !is_gsm7("✓"));
    }

    #[test]
    fn the_body_is_short_and_fits_two_segments() {
        let alert = an_alert("Deployment dpl_2A1YdwhTadMp5nphik5kEwFBwnxR is ERROR\nsecond line");
        assert_eq!(
            body(&Notification::firing(&alert)),
            "[HIGH] deploy_failed storefront: Deployment dpl_2A1YdwhTadMp5nphik5kEwFBwnxR is ERROR"
        );
        let resolved = Notification {
            state: RESOLVED,
            ..note(&alert)
        };
        assert!(body(&resolved).starts_with("[RESOLVED] [HIGH] deploy_failed x37 storefront: "));
        for giant in giant_alerts() {
            let (name, message) = (giant.name, &giant.message);
            for alert in [&giant.alert, &giant.monster] {
                let sms = body(&note(alert));
                assert!(segments(&sms) <= MAX_SEGMENTS, "{name}: {sms}");
                assert!(sms.chars().count() <= BODY_MAX, "{name}");
                assert!(sms.starts_with('['), "{name}");
                if message.contains('\n') {
                    // Only (some of) the first line is sent.
                    assert!(!sms.contains('\n'), "{name}: {sms}");
                } else if is_gsm7(&sms) {
                    assert!(sms.ends_with("..."), "{name}: {sms}");
                } else {
                    assert!(sms.ends_with('…'), "{name}: {sms}");
                }
            }
        }
        // A long GSM-7 text uses both segments fully, not the UCS-2 size.
        let ascii = an_alert(&"word ".repeat(1_000));
        let sms = body(&Notification::firing(&ascii));
        assert!(is_gsm7(&sms) && sms.chars().count() > 290, "{sms}");
        // A long text with one emoji is UCS-2: 134 code units at most.
        let emoji = an_alert(&format!("🚀 {}", "word ".repeat(1_000)));
        let sms = body(&Notification::firing(&emoji));
        let units = sms.encode_utf16().count();
        assert!(units <= 134 && units > 120, "{units}: {sms}");
    }

    #[test]
    fn form_has_to_from_and_body() {
        let alert = an_alert("Build failed");
        let n = Notification::firing(&alert);
        let pairs = form(&n, " +15005550006 ", "+14155552671");
        assert_eq!(
            pairs,
            [
                ("To".to_owned(), "+14155552671".to_owned()),
                ("From".to_owned(), "+15005550006".to_owned()),
                (
                    "Body".to_owned(),
                    "[HIGH] deploy_failed storefront: Build failed".to_owned()
                ),
            ]
        );
        let service = "MG0123456789abcdef0123456789ABCDEF";
        assert_eq!(form(&n, service, "+1")[1].0, "MessagingServiceSid");
    }

    #[test]
    fn form_encoding_escapes_what_it_must() {
        let pair = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        // (key, value, encoded)
        let cases = [
            ("Body", "a b", "Body=a+b"),
            ("Body", "a&b=c", "Body=a%26b%3Dc"),
            ("Body", "1+1", "Body=1%2B1"),
            ("To", "+14155552671", "To=%2B14155552671"),
            (
                "Body",
                "▲✓漢字",
                "Body=%E2%96%B2%E2%9C%93%E6%BC%A2%E5%AD%97",
            ),
            ("Body", "🚀", "Body=%F0%9F%9A%80"),
            ("Body", "*-._~%/?#", "Body=*-._%7E%25%2F%3F%23"),
            ("Body", "line\r\nnext", "Body=line%0D%0Anext"),
            ("K y", "", "K+y="),
        ];
        for (key, value, expected) in cases {
            assert_eq!(encode_form(&pair(key, value)), expected, "{value:?}");
        }
        let alert = an_alert("x");
        let pairs = form(&Notification::firing(&alert), "+1 5", "+2&3");
        assert_eq!(
            encode_form(&pairs),
            "To=%2B2%263&From=%2B1+5&Body=%5BHIGH%5D+deploy_failed+storefront%3A+x"
        );
        // The same as the url crate's serializer (reached through reqwest::Url).
        let mut url = reqwest::Url::parse("http://x/").expect("url");
        let tricky = vec![
            (
                "Body".to_owned(),
                "a b&c=d+e ▲✓漢字🚀 *-._~!'()%".to_owned(),
            ),
            ("To".to_owned(), "+1".to_owned()),
        ];
        url.query_pairs_mut().extend_pairs(tricky.iter());
        assert_eq!(Some(encode_form(&tricky).as_str()), url.query());
    }

    #[test]
    fn messages_url_is_the_accounts_messages_resource() {
        let sid = "AC0123456789abcdef0123456789abcdef";
        assert_eq!(
            messages_url("https://api.twilio.com", sid),
            "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"
        );
        assert_eq!(
            messages_url("http://127.0.0.1:8080/", "AC1"),
            "http://127.0.0.1:8080/2010-04-01/Accounts/AC1/Messages.json"
        );
        assert_eq!(
            messages_url("https://api.twilio.com", "../x?y#z"),
            "https://api.twilio.com/2010-04-01/Accounts/..%2Fx%3Fy%23z/Messages.json"
        );
    }
}
