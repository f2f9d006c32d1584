//! `POST /pagerduty/webhook`: an acknowledgement, resolution or reopening made in PagerDuty,
//! back to the shiplog alert it was paged for. The route checks the signature and answers 202
//! at once (PagerDuty wants an answer within 5 s); the desk behind its queue drops a repeat
//! (`X-Webhook-Id`, the same on every retry), finds the alert (by the incident's key, else by
//! the incident's id seen before, else by asking PagerDuty's REST API for the incident's alert
//! keys when `PAGERDUTY_API_TOKEN` is set) and hands the change to the alerting engine, which
//! applies it without sending it back.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;
use tokio::sync::mpsc;

use super::ledger::DeliveryLedger;
use super::pagerduty::{parse_event, verify, IncidentChange, IncidentEvent, PAGERDUTY_ROUTE};
use super::routes::{busy, read_body, refusal, signature_refused, Ingest, Peer};
use crate::alert::incident::IncidentKeys;
use crate::alert::runner::{AlertCommand, Mirrored};
use crate::log::{LogEntry, Logger, Severity, Tier};
use crate::metrics::Metrics;
use crate::secret::Secret;
use crate::shutdown::Shutdown;
use crate::store::StateStore;

/// PagerDuty guarantees webhooks up to 55 KB and tries up to 256 KB.
const BODY_LIMIT: usize = 512 * 1024;

/// PagerDuty's REST API, to find an incident's alerts when its webhook names no key.
#[derive(Debug, Clone)]
pub struct PagerDutyApi {
    pub url: String,
    pub token: Secret,
}

pub(super) async fn webhook(
    State(ingest): State<Arc<Ingest>>,
    Extension(Peer(peer)): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if ingest.pagerduty_secrets.is_empty() {
        // PagerDuty retries a 5xx for 48 hours: set the secret and restart, nothing is lost.
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "PagerDuty webhooks are not set up here: start serve with PAGERDUTY_WEBHOOK_SECRET",
        );
    }
    let why = "PagerDuty sends at most 256 KB";
    let body = match read_body(body, &headers, BODY_LIMIT, why).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let signature = headers
        .get("x-pagerduty-signature")
        .map(HeaderValue::as_bytes);
    if !verify(&ingest.pagerduty_secrets, &body, signature) {
        let why = match signature {
            None => "no X-PagerDuty-Signature header",
            Some(_) => "the X-PagerDuty-Signature does not match",
        };
        signature_refused(&ingest, peer, PAGERDUTY_ROUTE, why);
        // A 4xx: PagerDuty does not retry it (a forged request has nothing to retry).
        return refusal(StatusCode::FORBIDDEN, why);
    }
    let webhook_id = headers
        .get("x-webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let event = match parse_event(&body, webhook_id) {
        Ok(event) => event,
        Err(err) => return refusal(StatusCode::BAD_REQUEST, &err.to_string()),
    };
    match ingest.pagerduty_queue.try_send(event) {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({ "ok": true }))).into_response(),
        Err(_) => busy("the queue of PagerDuty webhooks is full"),
    }
}

/// Takes PagerDuty's webhooks one at a time, in arrival order (PagerDuty orders them per
/// incident).
pub struct PagerDutyDesk {
    ledger: DeliveryLedger,
    incidents: IncidentKeys,
    logger: Logger,
    metrics: Arc<Metrics>,
    alerts: Option<mpsc::Sender<Mirrored>>,
    api: Option<PagerDutyApi>,
    http: reqwest::Client,
}

impl PagerDutyDesk {
    pub fn new(
        store: StateStore,
        logger: Logger,
        metrics: Arc<Metrics>,
        alerts: Option<mpsc::Sender<Mirrored>>,
        api: Option<PagerDutyApi>,
    ) -> Self {
        PagerDutyDesk {
            incidents: IncidentKeys::new(store.clone()),
            ledger: DeliveryLedger::new(store),
            logger,
            metrics,
            alerts,
            api,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }

    /// Takes webhooks from `queue` until `shutdown` (then those still queued).
    pub async fn run(self, mut queue: mpsc::Receiver<IncidentEvent>, mut shutdown: Shutdown) {
        let mut stopping = false;
        while let Some(event) = super::next_queued(&mut queue, &mut shutdown, &mut stopping).await {
            self.take(event).await;
        }
    }

    pub async fn take(&self, event: IncidentEvent) {
        if !self.first_time(&event).await {
            self.metrics.duplicate_delivered(PAGERDUTY_ROUTE);
            return;
        }
        let Some(change) = event.change else {
            return;
        };
        let Some(fingerprint) = self.alert_of(&event).await else {
            tracing::info!(
                incident = event.incident_id.as_deref().unwrap_or("?"),
                "a PagerDuty incident that is not one of shiplog's alerts"
            );
            return;
        };
        let by = match &event.agent {
            Some(agent) => format!("{agent} (PagerDuty)"),
            None => "PagerDuty".to_owned(),
        };
        self.logger.write(
            LogEntry::new(
                Tier::Action,
                Severity::Info,
                "pagerduty",
                format!(
                    "{by} {} the incident of alert {}",
                    change.as_str(),
                    crate::alert::Fingerprint::short(&fingerprint)
                ),
            )
            .with_meta("fingerprint", fingerprint.as_str()),
        );
        let command = match change {
            IncidentChange::Acknowledged => AlertCommand::Acknowledge {
                fingerprint,
                note: Some("acknowledged in PagerDuty".to_owned()),
            },
            IncidentChange::Resolved => AlertCommand::Resolve { fingerprint },
            IncidentChange::Unacknowledged | IncidentChange::Reopened => {
                AlertCommand::Reopen { fingerprint }
            }
        };
        let mirrored = Mirrored {
            command,
            by,
            incident_key: event.incident_key.clone(),
        };
        match &self.alerts {
            Some(alerts) if alerts.send(mirrored).await.is_ok() => {}
            _ => tracing::warn!("alerting is not running here; a PagerDuty change was not applied"),
        }
    }

    /// True the first time a webhook is offered, on any instance. Both its `X-Webhook-Id` (the
    /// same on every retry) and its event's id are claimed: the header is not signed, so a
    /// signed body replayed under a new id is still a repeat. A store that cannot answer takes
    /// it: the same change twice is nothing.
    async fn first_time(&self, event: &IncidentEvent) -> bool {
        let keys = [("delivery", &event.webhook_id), ("event", &event.event_id)]
            .into_iter()
            .filter(|(_, id)| !id.is_empty())
            .map(|(kind, id)| format!("pagerduty:{kind}:{id}"))
            .collect::<Vec<_>>();
        self.ledger.first_of_all(keys).await.unwrap_or_else(|err| {
            tracing::warn!(%err, "could not check the PagerDuty ledger; taking the webhook");
            true
        })
    }

    /// The fingerprint of the alert the incident was paged for: by its key, else by its id
    /// (remembered from an earlier webhook), else by the keys of its alerts in PagerDuty.
    async fn alert_of(&self, event: &IncidentEvent) -> Option<String> {
        let by_key = match &event.incident_key {
            Some(key) => self.incidents.alert_of(key).await.ok().flatten(),
            None => None,
        };
        let incident = event.incident_id.as_deref()?;
        let found = match by_key {
            Some(found) => Some(found),
            None => match self
                .incidents
                .alert_of_incident(incident)
                .await
                .ok()
                .flatten()
            {
                Some(found) => return Some(found),
                None => self.ask_pagerduty(incident).await,
            },
        }?;
        if let Err(err) = self.incidents.remember_incident(incident, &found).await {
            tracing::warn!(%err, "could not remember a PagerDuty incident");
        }
        Some(found)
    }

    /// `GET /incidents/{id}/alerts`: the first of the incident's alert keys that is one of
    /// ours.
    async fn ask_pagerduty(&self, incident: &str) -> Option<String> {
        let api = self.api.as_ref()?;
        // An incident id is a few letters and digits; anything else is not put in a URL.
        if incident.is_empty() || !incident.chars().all(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        let url = format!(
            "{}/incidents/{incident}/alerts",
            api.url.trim_end_matches('/')
        );
        let response = self
            .http
            .get(url)
            .header("authorization", format!("Token token={}", api.token.expose()))
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|err| tracing::warn!(error = %err.without_url(), "could not ask PagerDuty about an incident"))
            .ok()?;
        if !response.status().is_success() {
            tracing::warn!(
                status = response.status().as_u16(),
                "PagerDuty did not say which alerts an incident has"
            );
            return None;
        }
        let body: serde_json::Value = response.json().await.ok()?;
        let keys = body["alerts"].as_array()?;
        for key in keys.iter().filter_map(|alert| alert["alert_key"].as_str()) {
            if let Ok(Some(found)) = self.incidents.alert_of(key).await {
                return Some(found);
            }
        }
        None
    }
}
