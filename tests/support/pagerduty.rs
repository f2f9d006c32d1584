//! A local PagerDuty Events API v2 (`POST /v2/enqueue`) that answers as the documented one
//! does: 202 with the dedup key for a valid event, 400 with `errors` for an invalid one; and
//! keeps PagerDuty's alert model: a trigger opens an alert for its dedup key (or adds to the
//! open one), acknowledge and resolve apply to an open alert and are dropped otherwise, a
//! trigger after a resolve opens a new alert. Scripted failures (429, 5xx) come first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// What PagerDuty made of one dedup key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertStatus {
    Triggered,
    Acknowledged,
    Resolved,
}

#[derive(Default)]
struct Book {
    /// Every request's body, answered or not, in order.
    events: Vec<Value>,
    /// The events taken (answered 202).
    taken: Vec<Value>,
    /// The current alert of each dedup key, and how many alerts it has had.
    alerts: HashMap<String, (AlertStatus, u32)>,
    /// Acknowledge and resolve events with no open alert (PagerDuty drops them).
    dropped: Vec<Value>,
    /// Answers given before any event is taken: status, `Retry-After`.
    script: VecDeque<(u16, Option<&'static str>)>,
}

#[derive(Clone)]
pub struct PagerDuty {
    /// `http://127.0.0.1:{port}/v2/enqueue`
    pub events_url: String,
    book: Arc<Mutex<Book>>,
}

impl PagerDuty {
    pub async fn start() -> PagerDuty {
        let book: Arc<Mutex<Book>> = Arc::default();
        let app = Router::new()
            .route("/v2/enqueue", post(enqueue))
            .with_state(book.clone());
        let url = super::http::serve(app).await;
        PagerDuty {
            events_url: format!("{url}/v2/enqueue"),
            book,
        }
    }

    /// The next requests are answered these, in order, before events are taken again.
    pub fn fail_with(&self, answers: &[(u16, Option<&'static str>)]) {
        self.book
            .lock()
            .expect("lock")
            .script
            .extend(answers.iter().copied());
    }

    pub fn events(&self) -> Vec<Value> {
        self.book.lock().expect("lock").events.clone()
    }

    pub fn taken(&self) -> Vec<Value> {
        self.book.lock().expect("lock").taken.clone()
    }

    pub fn dropped(&self) -> Vec<Value> {
        self.book.lock().expect("lock").dropped.clone()
    }

    /// The status of the current alert of `dedup_key`, and how many it has had.
    pub fn alert(&self, dedup_key: &str) -> Option<(AlertStatus, u32)> {
        self.book
            .lock()
            .expect("lock")
            .alerts
            .get(dedup_key)
            .copied()
    }

    /// Waits until `n` events were taken.
    pub async fn wait_taken(&self, n: usize, what: &str) -> Vec<Value> {
        super::wait::eventually(what, async || self.taken().len() >= n).await;
        self.taken()
    }
}

fn invalid(errors: Vec<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors})),
    )
        .into_response()
}

async fn enqueue(State(book): State<Arc<Mutex<Book>>>, body: String) -> Response {
    let mut book = book.lock().expect("lock");
    let event: Value = match serde_json::from_str(&body) {
        Ok(event) => event,
        Err(_) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"status": "Unrecognized object", "message": "Event object format is unrecognized", "errors": ["JSON parse error"]})),
            )
                .into_response()
        }
    };
    book.events.push(event.clone());
    if let Some((status, retry_after)) = book.script.pop_front() {
        let status = StatusCode::from_u16(status).expect("a status");
        return match retry_after {
            Some(wait) => {
                (status, [("retry-after", wait)], "Request Limit Exceeded").into_response()
            }
            None => (status, "Internal Server Error").into_response(),
        };
    }
    let text = |key: &str| event[key].as_str().unwrap_or_default().to_owned();
    let (routing_key, action, dedup_key) =
        (text("routing_key"), text("event_action"), text("dedup_key"));
    let mut errors = Vec::new();
    if routing_key.len() != 32 {
        // Echoes what it was sent, as a careless service might: shiplog must not show it.
        errors.push(format!(
            "Length of 'routing_key' ({routing_key}) is incorrect (should be 32 characters)"
        ));
    }
    if !["trigger", "acknowledge", "resolve"].contains(&action.as_str()) {
        errors.push("'event_action' is invalid".to_owned());
    }
    if dedup_key.is_empty() || dedup_key.len() > 255 {
        errors.push("'dedup_key' is missing or too long".to_owned());
    }
    if action == "trigger" {
        let payload = &event["payload"];
        let summary = payload["summary"].as_str().unwrap_or_default();
        if summary.is_empty() || summary.chars().count() > 1024 {
            errors.push("'payload.summary' is missing or too long".to_owned());
        }
        if payload["source"].as_str().unwrap_or_default().is_empty() {
            errors.push("'payload.source' is missing".to_owned());
        }
        let severity = payload["severity"].as_str().unwrap_or_default();
        if !["critical", "error", "warning", "info"].contains(&severity) {
            errors.push("'payload.severity' is invalid".to_owned());
        }
    }
    if !errors.is_empty() {
        return invalid(errors);
    }
    let current = book.alerts.get(&dedup_key).copied();
    let open = matches!(
        current,
        Some((AlertStatus::Triggered | AlertStatus::Acknowledged, _))
    );
    match action.as_str() {
        "trigger" if open => {}
        "trigger" => {
            let count = current.map_or(0, |(_, n)| n) + 1;
            book.alerts
                .insert(dedup_key.clone(), (AlertStatus::Triggered, count));
        }
        _ if !open => book.dropped.push(event.clone()),
        "acknowledge" => {
            if let Some(alert) = book.alerts.get_mut(&dedup_key) {
                alert.0 = AlertStatus::Acknowledged;
            }
        }
        _ => {
            if let Some(alert) = book.alerts.get_mut(&dedup_key) {
                alert.0 = AlertStatus::Resolved;
            }
        }
    }
    book.taken.push(event);
    (
        StatusCode::ACCEPTED,
        Json(json!({"status": "success", "message": "Event processed", "dedup_key": dedup_key})),
    )
        .into_response()
}
