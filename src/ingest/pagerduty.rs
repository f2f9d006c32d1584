//! PagerDuty's v3 webhooks, as `POST /pagerduty/webhook` takes them: the signature
//! (`X-PagerDuty-Signature`: one or more comma-separated `v1=<hex HMAC-SHA256 of the raw body>`,
//! several while PagerDuty rotates its secret; any one that matches will do) and the envelope
//! (`{"event": {"id", "event_type", "agent", "data": {incident}}}`, one event per request).
//! Only what acts on an alert is read: acknowledged, unacknowledged, resolved, reopened.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::secret::Secret;

/// The route PagerDuty posts to.
pub const PAGERDUTY_ROUTE: &str = "/pagerduty/webhook";

/// What an incident event asks of the alert it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentChange {
    Acknowledged,
    /// The acknowledgement was withdrawn (or timed out): firing again.
    Unacknowledged,
    Resolved,
    Reopened,
}

impl IncidentChange {
    fn of(event_type: &str) -> Option<IncidentChange> {
        match event_type {
            "incident.acknowledged" => Some(IncidentChange::Acknowledged),
            "incident.unacknowledged" => Some(IncidentChange::Unacknowledged),
            "incident.resolved" => Some(IncidentChange::Resolved),
            "incident.reopened" => Some(IncidentChange::Reopened),
            _ => None,
        }
    }

    /// How a log line says it: `acknowledged`.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentChange::Acknowledged => "acknowledged",
            IncidentChange::Unacknowledged => "unacknowledged",
            IncidentChange::Resolved => "resolved",
            IncidentChange::Reopened => "reopened",
        }
    }
}

/// One webhook, as much of it as acts on alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentEvent {
    /// `X-Webhook-Id`: the same on every retry of one webhook.
    pub webhook_id: String,
    /// `event.id`.
    pub event_id: String,
    pub event_type: String,
    /// None for the events that do not change an alert (a note, a priority, a ping).
    pub change: Option<IncidentChange>,
    /// The incident's id (`Q2W8ZK5M7XJ4RT`).
    pub incident_id: Option<String>,
    /// The incident's `incident_key`: normally the `dedup_key` that opened it.
    pub incident_key: Option<String>,
    /// Who acted (the agent's name), when someone did.
    pub agent: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PagerDutyError {
    #[error("the body is not a PagerDuty webhook: {0}")]
    NotAnEvent(String),
}

#[derive(Deserialize)]
struct Envelope {
    event: Event,
}

#[derive(Deserialize)]
struct Event {
    #[serde(default)]
    id: String,
    event_type: String,
    #[serde(default)]
    agent: Option<Reference>,
    #[serde(default)]
    data: Option<Incident>,
}

#[derive(Deserialize)]
struct Reference {
    #[serde(default)]
    summary: Option<String>,
}

#[derive(Deserialize)]
struct Incident {
    #[serde(default)]
    id: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    incident_key: Option<String>,
}

/// Reads a webhook's body; `webhook_id` is its `X-Webhook-Id` header.
pub fn parse_event(body: &[u8], webhook_id: &str) -> Result<IncidentEvent, PagerDutyError> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|err| PagerDutyError::NotAnEvent(err.to_string()))?;
    let event = envelope.event;
    // Other incident events carry other data (a note, a responder): only an incident says
    // which incident changed.
    let incident = event
        .data
        .filter(|data| data.kind.as_deref().is_none_or(|kind| kind == "incident"));
    let text = |value: Option<String>| {
        value
            .map(|v| {
                crate::printable::one_line(v.trim())
                    .chars()
                    .take(255)
                    .collect::<String>()
            })
            .filter(|v| !v.is_empty())
    };
    let (incident_id, incident_key) = match incident {
        Some(incident) => (text(incident.id), text(incident.incident_key)),
        None => (None, None),
    };
    Ok(IncidentEvent {
        webhook_id: webhook_id.to_owned(),
        change: incident_id
            .as_ref()
            .and(IncidentChange::of(&event.event_type)),
        event_id: event.id,
        event_type: event.event_type,
        incident_id,
        incident_key,
        agent: text(event.agent.and_then(|agent| agent.summary)),
    })
}

/// Whether `header` (the `X-PagerDuty-Signature` value) holds a `v1=` signature of `body` under
/// one of `secrets`. Other versions are ignored; every comparison takes the same time whatever
/// the first wrong byte.
pub fn verify(secrets: &[Secret], body: &[u8], header: Option<&[u8]>) -> bool {
    let Some(header) = header.and_then(|h| std::str::from_utf8(h).ok()) else {
        return false;
    };
    let claimed: Vec<[u8; 32]> = header
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("v1="))
        .filter_map(|hex| crate::secret::decode_hex::<32>(hex.as_bytes()))
        .collect();
    let mut matched = false;
    for secret in secrets {
        let mut mac = keyed(secret.expose());
        mac.update(body);
        for signature in &claimed {
            matched |= mac.clone().verify_slice(signature).is_ok();
        }
    }
    matched
}

/// `v1=<hex>`: how PagerDuty signs `body` with `secret` (for tests and the simulator).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = keyed(secret);
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("v1={hex}")
}

fn keyed(secret: &str) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const FIXTURE: &[u8] =
        include_bytes!("../../tests/fixtures/pagerduty/webhook-incident-acknowledged.json");
    const DOCS: &[u8] = include_bytes!(
        "../../tests/fixtures/pagerduty/webhook-incident-priority-updated-docs.json"
    );
    const SECRET: &str = "shiplog-test-pd-secret";

    #[test]
    fn the_fixtures_verify_with_their_recorded_signatures_and_nothing_else_does() {
        let secrets = [Secret::new(SECRET)];
        let ack = "v1=f5321eaf614a9c09347a96c56347fa073d300381324ccee8fa5f3f8f46e31218";
        let docs = "v1=94ef864c525e07ed4fc1c546b6141abce803039d5c7bc35c01ca72961ac72d55";
        assert!(verify(&secrets, FIXTURE, Some(ack.as_bytes())));
        assert!(verify(&secrets, DOCS, Some(docs.as_bytes())));
        assert_eq!(sign(SECRET, FIXTURE), ack);
        // Rotation: one of several matches; other versions are ignored.
        let rotating = format!("v1=00ff, v2=abc, {ack}");
        assert!(verify(&secrets, FIXTURE, Some(rotating.as_bytes())));
        for bad in [
            docs,
            "v1=",
            "",
            "v2=f5321eaf",
            "f5321eaf614a9c09347a96c56347fa073d300381324ccee8fa5f3f8f46e31218",
        ] {
            assert!(!verify(&secrets, FIXTURE, Some(bad.as_bytes())), "{bad}");
        }
        assert!(!verify(&secrets, FIXTURE, None));
        assert!(!verify(
            &[Secret::new("other")],
            FIXTURE,
            Some(ack.as_bytes())
        ));
        assert!(!verify(&[], FIXTURE, Some(ack.as_bytes())));
        let mut tampered = FIXTURE.to_vec();
        tampered[10] ^= 1;
        assert!(!verify(&secrets, &tampered, Some(ack.as_bytes())));
    }

    #[test]
    fn an_acknowledgement_names_its_incident_its_key_and_who() {
        let event = parse_event(FIXTURE, "wh-1").expect("an event");
        assert_eq!(event.change, Some(IncidentChange::Acknowledged));
        assert_eq!(event.incident_id.as_deref(), Some("Q2W8ZK5M7XJ4RT"));
        assert_eq!(
            event.incident_key.as_deref(),
            Some("shiplog:production:prj_Qm4vT8xKz2LwR9bN6cYs1HdPgE3a:build-failed:7c1e9a42")
        );
        assert_eq!(event.agent.as_deref(), Some("Dana Example"));
        assert_eq!(event.webhook_id, "wh-1");
        let docs = parse_event(DOCS, "wh-2").expect("an event");
        assert_eq!(docs.change, None, "{}: changes no alert", docs.event_type);
    }

    #[test]
    fn odd_bodies_are_refused_or_change_nothing() {
        for body in [&b""[..], b"[]", b"{}", b"{\"event\": 5}", b"\xff\xfe"] {
            assert!(
                parse_event(body, "w").is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        let note = br#"{"event":{"id":"1","event_type":"incident.acknowledged","data":{"type":"incident_note","id":"N1"}}}"#;
        assert_eq!(parse_event(note, "w").expect("an event").change, None);
        let ping = br#"{"event":{"id":"1","event_type":"pagey.ping","agent":null,"data":null}}"#;
        assert_eq!(parse_event(ping, "w").expect("an event").change, None);
        let keyless = br#"{"event":{"id":"1","event_type":"incident.resolved","data":{"type":"incident","id":"Q1","incident_key":null}}}"#;
        let event = parse_event(keyless, "w").expect("an event");
        assert_eq!(
            (event.change, event.incident_key),
            (Some(IncidentChange::Resolved), None)
        );
    }

    proptest! {
        #[test]
        fn any_bytes_are_read_or_refused_without_a_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_event(&body, "w");
            let _ = verify(&[Secret::new("s")], &body, Some(&body));
        }
    }
}
