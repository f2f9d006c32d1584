//! PagerDuty, through its Events API v2: `POST` [`payload`] as `application/json` to
//! `https://events.pagerduty.com/v2/enqueue` (`PAGERDUTY_EVENTS_URL`, for tests), the
//! integration's routing key (`PAGERDUTY_ROUTING_KEY`, `pagerduty_routing_key`; a secret) in the
//! body. On unless `PAGERDUTY_ALERTS_ENABLED` (`pagerduty_enabled`) is false.
//!
//! A firing alert is a `trigger`; acknowledging or resolving it in shiplog sends `acknowledge`
//! or `resolve` with the same `dedup_key` (the alert's incident key, see `alert::incident`),
//! which PagerDuty applies only with the same routing key. 202 is success; 400 is the event's
//! fault and final; 429 and 5xx are tried again (429 after its `Retry-After`, else 30 s, as
//! PagerDuty suggests retrying after tens of seconds).
//!
//! Limits, from PagerDuty's Events API v2 reference: `summary` ≤ 1,024 characters
//! ([`SUMMARY_MAX`]); `dedup_key` ≤ 255 ([`DEDUP_KEY_MAX`]); the request ≤ 512 KB (this one
//! stays far below: the message's first lines only); about 120 events a minute per routing key
//! ([`EVENTS_PER_MINUTE`], kept across instances by the delivery queue).

use std::time::Duration;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::text::{
    deployment, headline, message_lines, project, short_fingerprint, truncate, web_link,
    Notification, ACKNOWLEDGED, RESOLVED,
};
use super::{Destination, RateLimit, Request, RequestError, Setting, Switch, Vars};
use crate::alert::AlertSeverity;
use crate::secret::Secret;

pub const SUMMARY_MAX: usize = 1_024;
pub const DEDUP_KEY_MAX: usize = 255;
pub const EVENTS_PER_MINUTE: u32 = 120;
/// The longest text in `custom_details`.
const DETAIL_MAX: usize = 1_000;

const ROUTING_KEY: Setting = Setting::secret("PAGERDUTY_ROUTING_KEY", "pagerduty_routing_key");
/// PagerDuty's Events API unless set (a local server in tests).
const EVENTS_URL: Setting = Setting::text("PAGERDUTY_EVENTS_URL", "pagerduty_events_url");
const DEFAULT_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Where PagerDuty alerts go: an Events API v2 integration.
#[derive(Debug, Clone)]
pub struct PagerDuty {
    pub events_url: Secret,
    pub routing_key: Secret,
}

impl Destination for PagerDuty {
    const SWITCH: Option<Switch> = Some(Switch::new(
        "PAGERDUTY_ALERTS_ENABLED",
        "pagerduty_enabled",
        true,
    ));
    const KEYS: &'static [Setting] = &[ROUTING_KEY, EVENTS_URL];
    const NEEDS: &'static str = ROUTING_KEY.env;
    /// A page must survive PagerDuty being away for a while: the queue's backoff doubles from
    /// 2 s, so ten tries cover about 17 minutes.
    const ATTEMPTS: Option<u32> = Some(10);

    fn read(vars: &Vars) -> Option<Self> {
        Some(PagerDuty {
            routing_key: vars.secret(ROUTING_KEY)?,
            events_url: Secret::new(
                vars.text(EVENTS_URL)
                    .unwrap_or_else(|| DEFAULT_EVENTS_URL.to_owned()),
            ),
        })
    }

    fn request(&self, n: &Notification<'_>) -> Result<Request, RequestError> {
        let mut request = Request::json(&self.events_url, payload(n, &self.routing_key));
        if let Request::Http(http) = &mut request {
            http.hidden.push(self.routing_key.clone());
            http.rate_limited_pause = Duration::from_secs(30);
        }
        Ok(request)
    }

    fn rate_limit(&self) -> Option<RateLimit> {
        // The key itself is a secret: the shared counter is named by a digest of it.
        let digest = Sha256::digest(self.routing_key.expose().as_bytes());
        let scope: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Some(RateLimit {
            scope: format!("pagerduty:{scope}"),
            limit: EVENTS_PER_MINUTE,
            window: Duration::from_secs(60),
        })
    }
}

/// `trigger`, `acknowledge` or `resolve`, from the notification's state.
pub fn event_action(n: &Notification) -> &'static str {
    match n.state {
        ACKNOWLEDGED => "acknowledge",
        RESOLVED => "resolve",
        _ => "trigger",
    }
}

/// The key PagerDuty groups events into one alert by: the alert's incident key, else (a test
/// notification) one made from the fingerprint.
pub fn dedup_key(n: &Notification) -> String {
    let key = match n.incident_key {
        Some(key) => key.to_owned(),
        None => format!("shiplog:{}:{}", n.alert.rule, n.alert.fingerprint),
    };
    truncate_bytes(&key, DEDUP_KEY_MAX)
}

/// The event: a trigger with everything an on-call engineer reads first, or an acknowledge or
/// resolve with only the keys.
pub fn payload(n: &Notification, routing_key: &Secret) -> Value {
    let action = event_action(n);
    let mut event = json!({
        "routing_key": routing_key.expose(),
        "event_action": action,
        "dedup_key": dedup_key(n),
    });
    if action != "trigger" {
        return event;
    }
    let entry = &n.alert.entry;
    let project = project(n);
    let deployment = deployment(n);
    let meta = &entry.metadata;
    let source = meta
        .get_str("url")
        .map(|url| truncate(url, 255))
        .or_else(|| project.clone())
        .unwrap_or_else(|| "shiplog".to_owned());
    let mut details = Map::new();
    details.insert("rule".into(), json!(n.alert.rule));
    details.insert("count".into(), json!(n.count));
    details.insert("fingerprint".into(), json!(short_fingerprint(n)));
    let texts = [
        ("deployment", deployment.clone()),
        ("project", project.clone()),
        (
            "vercel_project_id",
            entry.project_id.as_deref().map(str::to_owned),
        ),
        ("target", meta.get_str("target").map(str::to_owned)),
        ("branch", meta.get_str("branch").map(str::to_owned)),
        ("commit", meta.get_str("commit").map(str::to_owned)),
        (
            "first_error",
            meta.get_str("first_error").map(str::to_owned),
        ),
    ];
    for (name, value) in texts {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            details.insert(name.into(), json!(truncate(&value, DETAIL_MAX)));
        }
    }
    let (lines, _) = message_lines(n, 5);
    let lines: Vec<String> = lines.iter().map(|l| truncate(l, DETAIL_MAX)).collect();
    details.insert("message".into(), json!(lines));
    let body = &mut event;
    body["payload"] = json!({
        "summary": headline(n, SUMMARY_MAX),
        "source": source,
        "severity": severity(n.alert.severity),
        "timestamp": entry.ts_rfc3339(),
        "component": deployment.unwrap_or_else(|| entry.tier.as_str().to_owned()),
        "group": project.unwrap_or_else(|| "shiplog".to_owned()),
        "class": n.alert.rule,
        "custom_details": details,
    });
    body["client"] = json!("shiplog");
    if let Some(link) = web_link(n) {
        body["client_url"] = json!(link);
        body["links"] = json!([{ "href": link, "text": "Deployment in Vercel" }]);
    }
    event
}

/// PagerDuty's four severities.
pub fn severity(severity: AlertSeverity) -> &'static str {
    match severity {
        AlertSeverity::Critical => "critical",
        AlertSeverity::High => "error",
        AlertSeverity::Medium => "warning",
        AlertSeverity::Low => "info",
    }
}

/// At most `max` bytes (the dedup key's limit is in bytes or characters; bytes is the stricter),
/// on a character boundary.
fn truncate_bytes(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::super::text::test_support::*;
    use super::*;

    fn key() -> Secret {
        Secret::new("0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn a_trigger_carries_what_the_on_call_engineer_reads_first() {
        let alert = an_alert("Deployment dpl_2A1YdwhTadMp5nphik5kEwFBwnxR is ERROR\nmore");
        let mut n = note(&alert);
        n.incident_key = Some("shiplog:production:storefront:deploy_failed:abc:1");
        let event = payload(&n, &key());
        assert_eq!(event["event_action"], "trigger");
        assert_eq!(event["routing_key"], "0123456789abcdef0123456789abcdef");
        assert_eq!(
            event["dedup_key"],
            "shiplog:production:storefront:deploy_failed:abc:1"
        );
        let p = &event["payload"];
        assert_eq!(p["severity"], "error");
        assert_eq!(p["group"], "storefront");
        assert_eq!(p["class"], "deploy_failed");
        assert_eq!(p["component"], "dpl_2A1YdwhTadMp5nphik5kEwFBwnxR");
        assert_eq!(p["custom_details"]["count"], 37);
        assert_eq!(p["custom_details"]["rule"], "deploy_failed");
        assert_eq!(
            p["custom_details"]["message"][0],
            "Deployment dpl_2A1YdwhTadMp5nphik5kEwFBwnxR is ERROR"
        );
        assert!(p["summary"]
            .as_str()
            .expect("summary")
            .contains("deploy_failed"));
        assert_eq!(
            event["links"][0]["href"],
            "https://vercel.com/acme/storefront/2A1YdwhTadMp5nphik5kEwFBwnxR"
        );
    }

    #[test]
    fn acknowledge_and_resolve_carry_only_the_keys() {
        let alert = an_alert("x");
        for (state, action) in [(ACKNOWLEDGED, "acknowledge"), (RESOLVED, "resolve")] {
            let mut n = Notification::firing(&alert);
            n.state = state;
            n.incident_key = Some("k1");
            let event = payload(&n, &key());
            assert_eq!(
                event,
                json!({"routing_key": key().expose(), "event_action": action, "dedup_key": "k1"})
            );
        }
    }

    #[test]
    fn limits_hold_for_giant_alerts() {
        for giant in giant_alerts() {
            let mut n = note(&giant.alert);
            let long_key = "k".repeat(300) + "é";
            n.incident_key = Some(&long_key);
            let event = payload(&n, &key());
            let summary = event["payload"]["summary"].as_str().expect("summary");
            assert!(summary.chars().count() <= SUMMARY_MAX, "{}", giant.name);
            assert!(event["dedup_key"].as_str().expect("key").len() <= DEDUP_KEY_MAX);
            let size = serde_json::to_vec(&event).expect("serialises").len();
            assert!(size < 64 * 1024, "{}: {size} bytes", giant.name);
        }
    }
}
