//! The HTTP side: routes, auth, request recording, error envelopes, the events endpoint.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use axum::Router;
use serde_json::{json, Value};

use crate::clock::now_ms;
use crate::demo::model::{RecordedRequest, SinceMode};
use crate::demo::render;
use crate::demo::state::{RequestFault, SimDeployment, Simulation, TEAM_ID, TEAM_SLUG};
use crate::demo::state::{USERNAME, USER_EMAIL, USER_ID};
use crate::demo::stream::{Plan, Streamer};

/// Content type of NDJSON event responses.
pub const STREAM_CONTENT_TYPE: &str = "application/stream+json";
const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";
/// Nominal rate limit advertised in `X-RateLimit-*` headers.
const RATE_LIMIT_TOTAL: u64 = 100;

type AppState = Arc<Simulation>;

pub(crate) fn router(shared: AppState) -> Router {
    Router::new()
        .route("/v2/user", get(get_user))
        .route("/v2/teams", get(list_teams))
        .route("/v2/teams/{id}", get(get_team))
        // The official CLI asks for `/teams/{id}` without a version.
        .route("/teams", get(list_teams))
        .route("/teams/{id}", get(get_team))
        .route("/v6/deployments", get(list_deployments))
        .route("/v13/deployments/{id_or_url}", get(get_deployment))
        .route("/v12/deployments/{id}/cancel", patch(cancel_deployment))
        .route("/v3/deployments/{id_or_url}/events", get(events))
        .route("/v3/now/deployments/{id_or_url}/events", get(events))
        .route("/v2/deployments/{id_or_url}/events", get(events))
        .route("/v2/now/deployments/{id_or_url}/events", get(events))
        .fallback(not_found_endpoint)
        .method_not_allowed_fallback(method_unknown)
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

/// `{"error":{"code","message",...extra}}` with a JSON content type.
pub(crate) fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    extra: Value,
) -> Response {
    let mut error = json!({ "code": code, "message": message });
    if let (Some(obj), Value::Object(more)) = (error.as_object_mut(), extra) {
        obj.extend(more);
    }
    json_response(status, &json!({ "error": error }))
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(JSON_CONTENT_TYPE),
        )],
        bytes,
    )
        .into_response()
}

fn bad_request(message: &str) -> Response {
    error_response(StatusCode::BAD_REQUEST, "bad_request", message, Value::Null)
}

/// A query parameter that is wrong, answered with 400 and this message.
struct BadParameter(String);

impl IntoResponse for BadParameter {
    fn into_response(self) -> Response {
        bad_request(&self.0)
    }
}

fn deployment_not_found(id: &str) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "not_found",
        "Deployment not found",
        json!({ "id": id }),
    )
}

fn is_authorized(expected: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let Some(token) = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
    else {
        return false;
    };
    let token = token.trim();
    match expected {
        Some(expected) => token == expected,
        None => !token.is_empty(),
    }
}

/// Records every request, enforces auth, adds the rate-limit headers every response carries.
async fn gate(State(shared): State<AppState>, req: Request, next: Next) -> Response {
    let authorized = is_authorized(shared.options.token.as_deref(), req.headers());
    let headers = req
        .headers()
        .iter()
        .map(|(name, value)| {
            let name = name.as_str().to_ascii_lowercase();
            let value = if name == "authorization" {
                "[REDACTED]".to_string()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name, value)
        })
        .collect();
    shared.record(RecordedRequest {
        method: req.method().as_str().to_string(),
        path: req.uri().path().to_string(),
        query: req.uri().query().unwrap_or("").to_string(),
        headers,
        authorized,
    });
    let mut response = if authorized {
        next.run(req).await
    } else {
        error_response(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not authorized",
            Value::Null,
        )
    };
    let h = response.headers_mut();
    if !h.contains_key("x-ratelimit-limit") {
        let reset = now_ms() / 1000 + 60;
        h.insert("x-ratelimit-limit", HeaderValue::from(RATE_LIMIT_TOTAL));
        h.insert(
            "x-ratelimit-remaining",
            HeaderValue::from(RATE_LIMIT_TOTAL - 1),
        );
        h.insert("x-ratelimit-reset", HeaderValue::from(reset));
    }
    response
}

async fn not_found_endpoint() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "not_found",
        "The requested endpoint was not found",
        Value::Null,
    )
}

async fn method_unknown(method: Method) -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_unknown",
        &format!("This endpoint does not respond to {method}"),
        Value::Null,
    )
}

/// Decodes `a=1&b=x%20y` into pairs (`+` is a space; invalid escapes are kept verbatim).
pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Query(Vec<(String, String)>);

impl Query {
    fn from_request(req_query: Option<&str>) -> Query {
        Query(parse_query(req_query.unwrap_or("")))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A millisecond timestamp (integers; fractional values are floored). Empty → absent.
    /// A time parameter in ms (a fraction is cut off); a bad one is answered with 400.
    fn ms(&self, name: &str) -> Result<Option<i64>, BadParameter> {
        match self.get(name).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .or_else(|| {
                    v.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite())
                        .map(|f| f.floor() as i64)
                })
                .map(Some)
                .ok_or_else(|| {
                    BadParameter(format!(
                        "Invalid query parameter `{name}`: {v:?} is not a number"
                    ))
                }),
        }
    }
}

async fn get_user() -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "user": {
                "id": USER_ID,
                "uid": USER_ID,
                "email": USER_EMAIL,
                "name": "Demo User",
                "username": USERNAME,
                "avatar": null,
                "defaultTeamId": TEAM_ID,
                "version": "northstar",
                "createdAt": 1_700_000_000_000_i64,
                "softBlock": null,
                "limited": false,
                "billing": { "plan": "hobby", "period": null, "trial": null, "status": "active" },
                "stagingPrefix": "shiplog-demo",
                "hasTrialAvailable": false,
            }
        }),
    )
}

fn team_json() -> Value {
    json!({
        "id": TEAM_ID,
        "slug": TEAM_SLUG,
        "name": "Shiplog Demo",
        "avatar": null,
        "createdAt": 1_700_000_000_000_i64,
        "creatorId": USER_ID,
        "membership": { "role": "OWNER", "confirmed": true, "createdAt": 1_700_000_000_000_i64 },
        "billing": { "plan": "pro", "status": "active" },
    })
}

async fn list_teams() -> Response {
    json_response(
        StatusCode::OK,
        &json!({ "teams": [team_json()], "pagination": { "count": 1, "next": null, "prev": null } }),
    )
}

async fn get_team(Path(id): Path<String>) -> Response {
    if id == TEAM_ID || id == TEAM_SLUG {
        json_response(StatusCode::OK, &team_json())
    } else {
        error_response(
            StatusCode::NOT_FOUND,
            "not_found",
            "Team not found",
            Value::Null,
        )
    }
}

async fn list_deployments(State(shared): State<AppState>, req: Request) -> Response {
    let q = Query::from_request(req.uri().query());
    let limit = match q.get("limit").map(str::trim) {
        None | Some("") => 20,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 1 => n.min(100) as usize,
            _ => return bad_request(&format!("Invalid query parameter `limit`: {v:?}")),
        },
    };
    let (since, until) = match (q.ms("since"), q.ms("until")) {
        (Ok(since), Ok(until)) => (since, until),
        (Err(bad), _) | (_, Err(bad)) => return bad.into_response(),
    };
    let states: Option<Vec<String>> = q.get("state").filter(|s| !s.is_empty()).map(|s| {
        s.split(',')
            .map(|x| x.trim().to_ascii_uppercase())
            .filter(|x| !x.is_empty())
            .collect()
    });
    let project = q.get("projectId").filter(|s| !s.is_empty());
    let app = q.get("app").filter(|s| !s.is_empty());
    let target = q.get("target").filter(|s| !s.is_empty());
    let branch = q.get("branch").filter(|s| !s.is_empty());
    let sha = q.get("sha").filter(|s| !s.is_empty());

    let mut matching: Vec<Arc<SimDeployment>> = shared
        .all()
        .into_iter()
        .filter(|d| {
            let state = d.progress().state;
            since.is_none_or(|s| d.created_at > s)
                && until.is_none_or(|u| d.created_at < u)
                && states
                    .as_ref()
                    .is_none_or(|list| list.iter().any(|s| s == state.as_str()))
                && project.is_none_or(|p| d.project_id == p || d.project == p)
                && app.is_none_or(|a| d.project == a)
                && target.is_none_or(|t| d.target.as_deref() == Some(t))
                && branch.is_none_or(|b| d.branch == b)
                && sha.is_none_or(|s| d.commit_sha.starts_with(s))
        })
        .collect();
    matching.sort_by_key(|d| std::cmp::Reverse(d.created_at));
    let more = matching.len() > limit;
    matching.truncate(limit);
    let next = if more {
        matching
            .last()
            .map(|d| json!(d.created_at))
            .unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let prev = matching
        .first()
        .map(|d| json!(d.created_at))
        .unwrap_or(Value::Null);
    let items: Vec<Value> = matching.iter().map(|d| render::list_item(d)).collect();
    json_response(
        StatusCode::OK,
        &json!({
            "deployments": items,
            "pagination": { "count": items.len(), "next": next, "prev": prev },
        }),
    )
}

async fn get_deployment(State(shared): State<AppState>, Path(id_or_url): Path<String>) -> Response {
    match shared.find(&id_or_url) {
        Some(dep) => json_response(StatusCode::OK, &render::full_deployment(&dep)),
        None => deployment_not_found(&id_or_url),
    }
}

async fn cancel_deployment(State(shared): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(dep) = shared.find(&id) else {
        return deployment_not_found(&id);
    };
    if dep.cancel() {
        json_response(StatusCode::OK, &render::full_deployment(&dep))
    } else {
        error_response(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &format!(
                "The deployment is {} and cannot be canceled",
                dep.progress().state
            ),
            Value::Null,
        )
    }
}

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

async fn events(
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
