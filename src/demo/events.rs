//! `GET /v3/deployments/{idOrUrl}/events` (and its older paths): a deployment's build events as
//! a JSON array, or as one JSON object per line, live with `follow=1`; with the faults a test
//! asked for.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::query::{BadParameter, Query};
use super::server::{
    deployment_not_found, error_response, AppState, JSON_CONTENT_TYPE, RATE_LIMIT_TOTAL,
    STREAM_CONTENT_TYPE,
};
use crate::clock::now_ms;
use crate::demo::model::SinceMode;
use crate::demo::render;
use crate::demo::state::{RequestFault, SimDeployment};
use crate::demo::stream::{Plan, Streamer};

/// True when the Accept header ranks `application/stream+json` above `application/json`.
fn prefers_stream(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut q_stream: Option<f32> = None;
    let mut q_json: Option<f32> = None;
    let mut q_any: Option<f32> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .filter_map(|v| v.trim().parse::<f32>().ok())
            .next()
            .unwrap_or(1.0);
        match media.as_str() {
            "application/stream+json" => q_stream = Some(q),
            "application/json" => q_json = Some(q),
            "*/*" | "application/*" => q_any = Some(q_any.map_or(q, |a: f32| a.max(q))),
            _ => {}
        }
    }
    let stream = q_stream.or(q_any).unwrap_or(0.0);
    let json = q_json.or(q_any).unwrap_or(0.0);
    stream > json
}

/// What a request for a deployment's events asks for.
struct EventsAsk {
    follow: bool,
    backward: bool,
    since: Option<i64>,
    until: Option<i64>,
    limit: Option<usize>,
    /// One event per line rather than a JSON array.
    ndjson: bool,
}

impl EventsAsk {
    /// The request's query and `Accept`; a bad parameter is answered with 400.
    fn parse(q: &Query, headers: &HeaderMap) -> Result<Self, BadParameter> {
        let follow = matches!(q.get("follow").map(str::trim), Some("1") | Some("true"));
        let backward = match q.get("direction").map(str::trim) {
            None | Some("") | Some("forward") => false,
            Some("backward") => true,
            Some(other) => {
                return Err(BadParameter(format!(
                    "Invalid query parameter `direction`: {other:?} (expected forward or backward)"
                )))
            }
        };
        if backward && follow {
            return Err(BadParameter(
                "`direction=backward` cannot be combined with `follow=1`".to_owned(),
            ));
        }
        let limit = match q.get("limit").map(str::trim) {
            None | Some("") => None,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n < 0 => None,
                Ok(n) => Some(n as usize),
                Err(_) => {
                    return Err(BadParameter(format!(
                        "Invalid query parameter `limit`: {v:?}"
                    )))
                }
            },
        };
        Ok(EventsAsk {
            follow,
            backward,
            since: q.ms("since")?,
            until: q.ms("until")?,
            limit,
            ndjson: follow || q.get("format") == Some("lines") || prefers_stream(headers),
        })
    }
}

pub(super) async fn events(
    State(shared): State<AppState>,
    Path(id_or_url): Path<String>,
    req: Request,
) -> Response {
    let q = Query::from_request(req.uri().query());
    let Some(dep) = shared.find(&id_or_url) else {
        return deployment_not_found(&id_or_url);
    };
    let ask = match EventsAsk::parse(&q, req.headers()) {
        Ok(ask) => ask,
        Err(bad) => return bad.into_response(),
    };
    if let Some(fault) = dep.take_request_fault() {
        return fault_response(fault);
    }
    let created = &dep.events.created;
    let start = match (shared.options.since_mode, ask.since) {
        (_, None) | (SinceMode::Ignored, _) => 0,
        (SinceMode::Inclusive, Some(s)) => created.partition_point(|&c| c < s),
        (SinceMode::Exclusive, Some(s)) => created.partition_point(|&c| c <= s),
    };
    let mut end = match ask.until {
        Some(u) => created.partition_point(|&c| c <= u),
        None => created.len(),
    };
    if !ask.follow {
        end = end.min(dep.progress().produced);
    }
    let end = end.max(start);

    if !ask.ndjson {
        return json_array(&dep, start, end, ask.limit, ask.backward);
    }
    let plan = Plan {
        start,
        end,
        limit: ask.limit,
        follow: ask.follow,
        backward: ask.backward,
        faults: true,
    };
    let streamer = Streamer::new(
        dep,
        shared.shutdown.subscribe(),
        shared.speed,
        plan,
        shared.open_streams.clone(),
    );
    let mut resp = Response::new(Body::from_stream(streamer.into_stream()));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(STREAM_CONTENT_TYPE),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

/// The answer of an injected request fault: a 429 with Vercel's headers, or a 500.
fn fault_response(fault: RequestFault) -> Response {
    match fault {
        RequestFault::RateLimit { retry_after_secs } => {
            let reset_ms = now_ms() + (retry_after_secs as i64) * 1000;
            let mut resp = error_response(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                &format!("Rate limit exceeded. Try again in {retry_after_secs} seconds"),
                json!({ "limit": {
                    "remaining": 0,
                    "reset": reset_ms / 1000,
                    "resetMs": reset_ms,
                    "total": RATE_LIMIT_TOTAL,
                }}),
            );
            let h = resp.headers_mut();
            h.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            h.insert("x-ratelimit-limit", HeaderValue::from(RATE_LIMIT_TOTAL));
            h.insert("x-ratelimit-remaining", HeaderValue::from(0));
            h.insert("x-ratelimit-reset", HeaderValue::from(reset_ms / 1000));
            resp
        }
        RequestFault::ServerError => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            "An unexpected internal error occurred",
            Value::Null,
        ),
    }
}

fn json_array(
    dep: &SimDeployment,
    start: usize,
    end: usize,
    limit: Option<usize>,
    backward: bool,
) -> Response {
    let limit = limit.unwrap_or(usize::MAX);
    let indices: Box<dyn Iterator<Item = usize>> = if backward {
        Box::new((start..end).rev().take(limit))
    } else {
        Box::new((start..end).take(limit))
    };
    let mut out = bytes::BytesMut::new();
    let mut line = bytes::BytesMut::new();
    let mut scratch = String::new();
    out.extend_from_slice(b"[");
    for (n, i) in indices.enumerate() {
        if n > 0 {
            out.extend_from_slice(b",");
        }
        line.clear();
        render::write_event_line(dep, i, &mut scratch, &mut line);
        out.extend_from_slice(&line[..line.len() - 1]);
    }
    out.extend_from_slice(b"]");
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(JSON_CONTENT_TYPE),
        )],
        out.freeze(),
    )
        .into_response()
}
