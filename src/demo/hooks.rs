//! The simulator's `/v1/webhooks` and `/v1/drains`, and the signed deliveries it posts to the
//! registered webhooks as its deployments are created, end, and move production: the shape of
//! Vercel's envelope, `x-vercel-signature` over the exact bytes, and on demand the faults
//! Vercel allows itself (a delivery sent twice under two ids, a build's end before its start).

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::distr::{Alphanumeric, SampleString};
use serde_json::{json, Value};

use super::model::ReadyState;
use super::server::{error_response, AppState};
use super::state::{lock, SimDeployment, Simulation, TEAM_ID, USER_ID};
use crate::clock::now_ms;
use crate::vercel::hooks::texts;
use crate::vercel::signature::sign;

/// What the simulator does wrong on purpose when delivering.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookFaults {
    /// Every delivery is sent again under a new id (a retry Vercel thought needed).
    pub duplicate: bool,
    /// A build's `deployment.created` is sent after its end.
    pub reorder: bool,
}

#[derive(Debug, Clone)]
struct SimHook {
    id: String,
    url: String,
    secret: String,
    events: Vec<String>,
    project_ids: Vec<String>,
    created_at: i64,
}

impl SimHook {
    fn listing(&self) -> Value {
        json!({"id": self.id, "url": self.url, "events": self.events,
               "projectIds": self.project_ids, "createdAt": self.created_at,
               "updatedAt": self.created_at, "ownerId": TEAM_ID})
    }
}

/// The registered webhooks and drains.
#[derive(Debug, Default)]
pub(crate) struct Hooks {
    webhooks: Mutex<Vec<SimHook>>,
    drains: Mutex<Vec<Value>>,
    pub faults: Mutex<WebhookFaults>,
}

fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        Alphanumeric.sample_string(&mut rand::rng(), 20)
    )
}

fn bad_request(message: &str) -> Response {
    error_response(StatusCode::BAD_REQUEST, "bad_request", message, Value::Null)
}

fn not_found(what: &str) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("{what} not found"),
        Value::Null,
    )
}

/// `POST /v1/webhooks` `{url, events, projectIds?}`: the webhook, with its secret this once.
pub(super) async fn create_webhook(State(shared): State<AppState>, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("Invalid request body: expected a JSON object");
    };
    let strings = |key: &str| texts(&body, key);
    let url = body.get("url").and_then(Value::as_str).unwrap_or_default();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return bad_request("Invalid request: `url` must be an http(s) URL");
    }
    let events = strings("events");
    if events.is_empty() {
        return bad_request("Invalid request: `events` must name at least one event");
    }
    let hook = SimHook {
        id: new_id("hook_"),
        url: url.to_owned(),
        secret: Alphanumeric.sample_string(&mut rand::rng(), 24),
        events,
        project_ids: strings("projectIds"),
        created_at: now_ms(),
    };
    let mut answer = hook.listing();
    answer["secret"] = json!(hook.secret);
    lock(&shared.hooks.webhooks).push(hook);
    (StatusCode::OK, axum::Json(answer)).into_response()
}

/// `GET /v1/webhooks`: an array, without secrets.
pub(super) async fn list_webhooks(State(shared): State<AppState>) -> Response {
    let all: Vec<Value> = lock(&shared.hooks.webhooks)
        .iter()
        .map(SimHook::listing)
        .collect();
    axum::Json(all).into_response()
}

/// `DELETE /v1/webhooks/{id}`: 204.
pub(super) async fn delete_webhook(
    State(shared): State<AppState>,
    Path(id): Path<String>,
) -> Response {
    let mut hooks = lock(&shared.hooks.webhooks);
    let before = hooks.len();
    hooks.retain(|hook| hook.id != id);
    if hooks.len() == before {
        return not_found("Webhook");
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /v1/drains`: kept as sent (its secret too: Vercel signs with it), with an id.
pub(super) async fn create_drain(State(shared): State<AppState>, body: Bytes) -> Response {
    let Ok(mut drain) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("Invalid request body: expected a JSON object");
    };
    let endpoint = drain["delivery"]["endpoint"].as_str().unwrap_or_default();
    if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
        return bad_request("Invalid request: `delivery.endpoint` must be an http(s) URL");
    }
    drain["id"] = json!(new_id("ld_"));
    drain["status"] = json!("enabled");
    drain["createdAt"] = json!(now_ms());
    lock(&shared.hooks.drains).push(drain.clone());
    if let Some(delivery) = drain.get_mut("delivery").and_then(Value::as_object_mut) {
        delivery.remove("secret");
    }
    (StatusCode::OK, axum::Json(drain)).into_response()
}

/// `GET /v1/drains`: `{"drains": [...]}`, without secrets.
pub(super) async fn list_drains(State(shared): State<AppState>) -> Response {
    let mut all = lock(&shared.hooks.drains).clone();
    for drain in &mut all {
        if let Some(delivery) = drain.get_mut("delivery").and_then(Value::as_object_mut) {
            delivery.remove("secret");
        }
    }
    axum::Json(json!({ "drains": all })).into_response()
}

/// `DELETE /v1/drains/{id}`: 204.
pub(super) async fn delete_drain(
    State(shared): State<AppState>,
    Path(id): Path<String>,
) -> Response {
    let mut drains = lock(&shared.hooks.drains);
    let before = drains.len();
    drains.retain(|drain| drain["id"] != id.as_str());
    if drains.len() == before {
        return not_found("Log drain");
    }
    StatusCode::NO_CONTENT.into_response()
}

/// Posts `deployment.created` now and the build's end when it comes (the other way round with
/// the `reorder` fault), to every webhook that wants them.
pub(crate) fn announce(shared: &Arc<Simulation>, dep: &Arc<SimDeployment>) {
    let (shared, dep) = (shared.clone(), dep.clone());
    let runtime = shared.runtime.clone();
    runtime.spawn(async move {
        let reorder = lock(&shared.hooks.faults).reorder;
        let created = envelope("deployment.created", deployment_payload(&dep));
        if !reorder {
            deliver(&shared, &dep.project_id, created.clone()).await;
        }
        let mut progress = dep.progress.subscribe();
        let mut shutdown = shared.shutdown.subscribe();
        let ended = tokio::select! {
            ended = progress.wait_for(|p| p.state.is_terminal()) => ended.map(|p| p.state).ok(),
            _ = shutdown.wait_for(|s| *s) => None,
        };
        let kind = match ended {
            Some(ReadyState::Ready) => "deployment.succeeded",
            Some(ReadyState::Error) => "deployment.error",
            Some(ReadyState::Canceled) => "deployment.canceled",
            _ => return,
        };
        let ended = envelope(kind, deployment_payload(&dep));
        deliver(&shared, &dep.project_id, ended).await;
        if reorder {
            deliver(&shared, &dep.project_id, created).await;
        }
    });
}

/// Posts `deployment.promoted` (`kind` promote) or `deployment.rollback`.
pub(crate) fn production_moved(
    shared: &Arc<Simulation>,
    dep: &SimDeployment,
    from: Option<String>,
    kind: &str,
) {
    let (name, payload) = if kind == "rollback" {
        let payload = json!({"team": {"id": TEAM_ID}, "user": {"id": USER_ID},
            "project": {"id": dep.project_id}, "fromDeploymentId": from,
            "toDeploymentId": dep.id});
        ("deployment.rollback", payload)
    } else {
        ("deployment.promoted", deployment_payload(dep))
    };
    let (shared, project) = (shared.clone(), dep.project_id.clone());
    let sending = envelope(name, payload);
    shared
        .runtime
        .clone()
        .spawn(async move { deliver(&shared, &project, sending).await });
}

fn deployment_payload(dep: &SimDeployment) -> Value {
    let mut meta = json!({"githubCommitRef": dep.branch, "githubCommitSha": dep.commit_sha,
        "githubCommitMessage": dep.commit_message});
    for (key, value) in &dep.meta {
        meta[key] = json!(value);
    }
    json!({"team": {"id": TEAM_ID}, "user": {"id": USER_ID},
        "deployment": {"id": dep.id, "meta": meta, "url": dep.url, "name": dep.project},
        "links": {"deployment": format!("https://vercel.com/acme/{}/{}", dep.project, dep.id),
                  "project": format!("https://vercel.com/acme/{}", dep.project)},
        "target": dep.target, "project": {"id": dep.project_id}, "plan": "pro",
        "regions": ["iad1"], "name": dep.project, "type": "LAMBDAS", "url": dep.url})
}

fn envelope(kind: &str, payload: Value) -> Value {
    json!({"id": new_id(""), "type": kind, "createdAt": now_ms(), "region": "iad1",
           "payload": payload})
}

/// Signs and posts `envelope` to each webhook of the project that wants its event, one after
/// the other (so that the order of deliveries is the order of calls); with the `duplicate`
/// fault, again under a new id.
async fn deliver(shared: &Simulation, project_id: &str, envelope: Value) {
    let kind = envelope["type"].as_str().unwrap_or_default().to_owned();
    let hooks: Vec<SimHook> = lock(&shared.hooks.webhooks)
        .iter()
        .filter(|hook| hook.events.contains(&kind))
        .filter(|hook| {
            hook.project_ids.is_empty() || hook.project_ids.iter().any(|p| p == project_id)
        })
        .cloned()
        .collect();
    let duplicate = lock(&shared.hooks.faults).duplicate;
    let client = reqwest::Client::new();
    for hook in hooks {
        let mut copies = vec![envelope.clone()];
        if duplicate {
            let mut retry = envelope.clone();
            retry["id"] = json!(new_id(""));
            copies.push(retry);
        }
        for copy in copies {
            let body = serde_json::to_vec(&copy).unwrap_or_default();
            post_until_taken(shared, &client, &hook, body).await;
        }
    }
}

/// Posts a delivery until it is answered 2xx, as Vercel retries with a growing pause (here a
/// few times, the pauses scaled by the simulator's speed).
async fn post_until_taken(
    shared: &Simulation,
    client: &reqwest::Client,
    hook: &SimHook,
    body: Vec<u8>,
) {
    const TRIES: u32 = 6;
    for attempt in 0..TRIES {
        let sent = client
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("x-vercel-signature", sign(&hook.secret, &body))
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(answer) if answer.status().is_success() => return,
            Ok(answer) => {
                tracing::debug!(status = %answer.status(), url = %hook.url, "a webhook delivery was refused")
            }
            Err(err) => tracing::debug!(%err, url = %hook.url, "a webhook delivery failed"),
        }
        if attempt + 1 < TRIES {
            let pause = super::state::scaled(1000.0 * f64::from(2u32.pow(attempt)), shared.speed);
            tokio::time::sleep(pause).await;
        }
    }
}
