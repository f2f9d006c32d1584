//! What the listener answers. Every answer is one short JSON object (or the metrics' text);
//! bad input costs a clear status, never a crash or a half-taken delivery.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;
use tokio::sync::mpsc;

use super::alarm::SignatureAlarm;
use super::desk::WEBHOOK_ROUTE;
use super::drain_desk::DRAIN_ROUTE;
use super::pagerduty::PAGERDUTY_ROUTE;
use super::webhook::{parse_delivery, Delivery};
use crate::metrics::{Metrics, CONTENT_TYPE};
use crate::store::StateStore;
use crate::vercel::signature::SigningSecrets;

/// A webhook delivery is a few kilobytes; this is room for the largest commit message.
pub const WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;

/// A body must arrive within this long once its headers have.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// What Vercel is asked to wait before retrying when the queue is full.
const RETRY_AFTER_SECS: u64 = 10;

/// The address a request came from: the socket's, not a header anyone can write.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// What every route shares.
pub struct Ingest {
    pub webhook_secrets: SigningSecrets,
    /// The deliveries acknowledged and not yet taken.
    pub queue: mpsc::Sender<Delivery>,
    pub drain_secrets: SigningSecrets,
    /// The code Vercel's ownership check expects in `x-vercel-verify`.
    pub drain_verify: Option<crate::secret::Secret>,
    /// The drained batches acknowledged and not yet taken, and the KiB they may still hold.
    pub drain_queue: mpsc::Sender<super::drain_desk::DrainBatch>,
    pub drain_room: Arc<tokio::sync::Semaphore>,
    /// Batches being read and checked now (see `drain_route::DRAIN_READS`).
    pub drain_reads: Arc<tokio::sync::Semaphore>,
    /// `PAGERDUTY_WEBHOOK_SECRET`: what PagerDuty signs its webhooks with.
    pub pagerduty_secrets: Vec<crate::secret::Secret>,
    /// PagerDuty's webhooks acknowledged and not yet taken.
    pub pagerduty_queue: mpsc::Sender<super::pagerduty::IncidentEvent>,
    pub store: StateStore,
    pub metrics: Arc<Metrics>,
    pub alarm: SignatureAlarm,
}

pub fn router(ingest: Arc<Ingest>) -> Router {
    Router::new()
        .route(WEBHOOK_ROUTE, post(webhook))
        .route(DRAIN_ROUTE, post(super::drain_route::drain))
        .route(PAGERDUTY_ROUTE, post(super::pagerduty_desk::webhook))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(|| async { refusal(StatusCode::NOT_FOUND, "no such route") })
        .method_not_allowed_fallback(|| async {
            refusal(
                StatusCode::METHOD_NOT_ALLOWED,
                "this route takes another method",
            )
        })
        .layer(middleware::from_fn_with_state(ingest.clone(), counted))
        .with_state(ingest)
}

/// Counts every answer by route (unknown paths together) and status.
async fn counted(State(ingest): State<Arc<Ingest>>, request: Request, next: Next) -> Response {
    let route = match request.uri().path() {
        WEBHOOK_ROUTE => WEBHOOK_ROUTE,
        DRAIN_ROUTE => DRAIN_ROUTE,
        PAGERDUTY_ROUTE => PAGERDUTY_ROUTE,
        "/metrics" => "/metrics",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        _ => "other",
    };
    let response = next.run(request).await;
    ingest
        .metrics
        .request_answered(route, response.status().as_u16());
    response
}

/// A request refused for its signature (`why`): counted, and the alarm raised for its source.
pub(super) fn signature_refused(ingest: &Ingest, peer: SocketAddr, route: &'static str, why: &str) {
    ingest.metrics.signature_failed(route);
    ingest.alarm.raise(peer.ip(), route, why);
}

/// Vercel's own answer to a bad signature.
pub(super) fn vercel_forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(json!({"code": "invalid_signature", "error": "signature didn't match"})),
    )
        .into_response()
}

pub(super) fn refusal(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

async fn webhook(
    State(ingest): State<Arc<Ingest>>,
    Extension(Peer(peer)): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if ingest.webhook_secrets.is_empty() {
        // Vercel retries for a day: set the secret and restart, and nothing is lost.
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhooks are not set up here: start serve with VERCEL_WEBHOOK_SECRET",
        );
    }
    let why = "a webhook delivery is a few kilobytes; a larger body is no delivery";
    let body = match read_body(body, &headers, WEBHOOK_BODY_LIMIT, why).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let signature = headers.get("x-vercel-signature").map(HeaderValue::as_bytes);
    if !ingest.webhook_secrets.verify(&body, signature) {
        let why = match signature {
            None => "no x-vercel-signature header",
            Some(_) => "the x-vercel-signature does not match",
        };
        signature_refused(&ingest, peer, WEBHOOK_ROUTE, why);
        return vercel_forbidden();
    }
    let delivery = match parse_delivery(&body) {
        Ok(delivery) => delivery,
        Err(err) => return refusal(StatusCode::BAD_REQUEST, &err.to_string()),
    };
    match ingest.queue.try_send(delivery) {
        Ok(()) => (StatusCode::OK, Json(json!({ "ok": true }))).into_response(),
        Err(_) => busy("the queue of deliveries is full"),
    }
}

/// 503 with `Retry-After`, so that the sender tries again rather than shiplog dropping.
pub(super) fn busy(message: &str) -> Response {
    let mut response = refusal(StatusCode::SERVICE_UNAVAILABLE, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    response
}

/// The whole body, within `limit` bytes and [`BODY_TIMEOUT`]; otherwise the answer to give
/// (over the limit: 413 saying it, and `why` the limit is what it is).
pub(super) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    why: &str,
) -> Result<Bytes, Response> {
    let too_large = || {
        refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body is over this route's limit of {limit} bytes: {why}"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, limit).collect()).await {
        Err(_) => Err(refusal(
            StatusCode::REQUEST_TIMEOUT,
            &format!(
                "the body did not arrive within {} seconds",
                BODY_TIMEOUT.as_secs()
            ),
        )),
        Ok(Err(err)) if err.is::<LengthLimitError>() => Err(too_large()),
        Ok(Err(_)) => Err(refusal(StatusCode::BAD_REQUEST, "the body was cut short")),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

async fn metrics(State(ingest): State<Arc<Ingest>>) -> Response {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        ingest.metrics.render_prometheus(),
    )
        .into_response()
}

async fn healthz() -> Response {
    (StatusCode::OK, Json(json!({ "status": "alive" }))).into_response()
}

/// Ready when the state store answers (Redis itself, not its local fallback) and the queue of
/// deliveries has room.
async fn readyz(State(ingest): State<Arc<Ingest>>) -> Response {
    let probe = tokio::time::timeout(
        Duration::from_secs(2),
        ingest.store.get_json::<serde_json::Value>("readyz"),
    )
    .await;
    let store = match probe {
        Ok(Ok(_)) if !ingest.store.is_degraded() => "ok",
        Ok(Ok(_)) => "degraded: Redis is unreachable, state is kept in local files",
        Ok(Err(_)) => "unreachable",
        Err(_) => "no answer within 2 seconds",
    };
    let queue = if ingest.queue.capacity() > 0 && ingest.drain_queue.capacity() > 0 {
        "ok"
    } else {
        "full"
    };
    let status = if store == "ok" && queue == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({ "store": store, "queue": queue }))).into_response()
}
