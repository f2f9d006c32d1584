//! Plain webhooks: `POST` [`payload`] as `application/json` to `ALERT_WEBHOOK_URL`
//! (`webhook_url` in the config file); there is no switch: a URL turns it on. The document is stable (its shape
//! changes only with a new `version`) and nothing in it is cut: `entry` is the whole unified
//! entry, as `shiplog follow --json` prints it.
//!
//! ```json
//! {"version": "1", "fingerprint": "…40 hex…", "rule": "deploy_failed", "severity": "high",
//!  "state": "firing", "count": 1, "title": "[HIGH] deploy_failed: …",
//!  "message": "the first line, cleaned", "deployment_id": "vercel-dpl_…", "build_id": "dpl_…",
//!  "project_id": "prj_…", "ts": "2026-07-08T00:47:18.756Z", "link": "https://…",
//!  "entry": { … }}
//! ```
//! Ids and `link` are `null` when absent.

use serde_json::{json, Value};

use super::text::{summary, title, Notification};
use super::{Destination, Request, RequestError, Setting, Switch, Vars};
use crate::secret::Secret;

/// The version of the document's shape.
pub const VERSION: &str = "1";

const URL: Setting = Setting::secret("ALERT_WEBHOOK_URL", "webhook_url");

/// Where plain webhook alerts go.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: Secret,
}

impl Destination for Webhook {
    const SWITCH: Option<Switch> = None;
    const KEYS: &'static [Setting] = &[URL];
    const NEEDS: &'static str = URL.env;

    fn read(vars: &Vars) -> Option<Self> {
        vars.secret(URL).map(|url| Webhook { url })
    }

    fn request(&self, n: &Notification<'_>) -> Result<Request, RequestError> {
        Ok(Request::json(&self.url, payload(n)))
    }
}

/// The webhook JSON.
pub fn payload(n: &Notification) -> Value {
    let alert = n.alert;
    let entry = &alert.entry;
    json!({
        "version": VERSION,
        "fingerprint": alert.fingerprint.as_str(),
        "rule": alert.rule,
        "severity": alert.severity,
        "state": n.state,
        "count": n.count,
        "title": title(n),
        "message": summary(n),
        "deployment_id": entry.deployment_id,
        "build_id": entry.build_id,
        "project_id": entry.project_id,
        "ts": entry.ts_rfc3339(),
        "link": n.link,
        "entry": serde_json::to_value(&**entry).unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::super::text::test_support::*;
    use super::super::text::Notification;
    use super::*;
    use crate::alert::AlertSeverity;
    use crate::log::{LogEntry, Severity, Tier};

    #[test]
    fn the_document_has_every_key_and_round_trips_the_entry() {
        let alert = an_alert("Deployment dpl_2A1YdwhTadMp5nphik5kEwFBwnxR is ERROR\nmore");
        let payload = payload(&note(&alert));
        let mut keys: Vec<&str> = payload
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let mut expected = vec![
            "version",
            "fingerprint",
            "rule",
            "severity",
            "state",
            "count",
            "title",
            "message",
            "deployment_id",
            "build_id",
            "project_id",
            "ts",
            "link",
            "entry",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(
            payload,
            json!({
                "version": "1",
                "fingerprint": alert.fingerprint.as_str(),
                "rule": "deploy_failed",
                "severity": "high",
                "state": "firing",
                "count": 37,
                "title": "[HIGH] deploy_failed x37: storefront dpl_2A1YdwhTadMp5nphik5kEwFBwnxR: Deployment dpl_2A1YdwhTadMp5nphik5kEwFBwnxR is ERROR",
                "message": "Deployment dpl_2A1YdwhTadMp5nphik5kEwFBwnxR is ERROR",
                "deployment_id": "vercel-dpl_2A1YdwhTadMp5nphik5kEwFBwnxR-01JD0ABC",
                "build_id": "dpl_2A1YdwhTadMp5nphik5kEwFBwnxR",
                "project_id": "prj_7Hk2pQ",
                "ts": "2026-07-08T00:47:18.756Z",
                "link": "https://vercel.com/acme/storefront/2A1YdwhTadMp5nphik5kEwFBwnxR",
                "entry": serde_json::to_value(&*alert.entry).expect("serialises"),
            })
        );
        let back: LogEntry = serde_json::from_value(payload["entry"].clone()).expect("an entry");
        assert_eq!(back, *alert.entry);
        assert_eq!(back.metadata.get_str("ready_state"), Some("ERROR"));
    }

    #[test]
    fn absent_ids_and_link_are_null_and_giants_are_kept_whole() {
        let entry = LogEntry::at(TS, Tier::System, Severity::Critical, "degraded", "");
        let alert = alert_of(entry, "stream_degraded", AlertSeverity::Critical);
        let doc = payload(&Notification::firing(&alert));
        for key in ["deployment_id", "build_id", "project_id", "link"] {
            assert!(doc[key].is_null(), "{key}");
        }
        assert_eq!(doc["message"], "degraded");
        assert_eq!(doc["count"], 1);
        for giant in giant_alerts() {
            let name = giant.name;
            let doc = payload(&note(&giant.alert));
            let back: LogEntry = serde_json::from_value(doc["entry"].clone()).expect(name);
            assert_eq!(back.message, giant.message, "{name}");
            let text = serde_json::to_string(&doc).expect("serialises");
            let again: Value = serde_json::from_str(&text).expect("parses");
            assert_eq!(again, doc, "{name}");
        }
    }
}
