//! The HTTP side: routes, auth, request recording, error envelopes, the events endpoint.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::Router;
use serde_json::{json, Value};

use crate::clock::now_ms;
use crate::demo::actions;
use crate::demo::events::events;
use crate::demo::model::RecordedRequest;
use crate::demo::query::Query;
use crate::demo::render;
use crate::demo::state::{SimDeployment, Simulation, TEAM_ID, TEAM_SLUG};
use crate::demo::state::{USERNAME, USER_EMAIL, USER_ID};

/// Content type of NDJSON event responses.
pub const STREAM_CONTENT_TYPE: &str = "application/stream+json";
pub(super) const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";
/// Nominal rate limit advertised in `X-RateLimit-*` headers.
pub(super) const RATE_LIMIT_TOTAL: u64 = 100;

pub(super) type AppState = Arc<Simulation>;

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
        .route("/v13/deployments", post(actions::create_deployment))
        .route(
            "/v10/projects/{project}/promote/{deployment}",
            post(actions::promote),
        )
        .route(
            "/v1/projects/{project}/rollback/{deployment}",
            post(actions::rollback),
        )
        .route("/v9/projects/{id_or_name}", get(actions::get_project))
        .route(
            "/v1/webhooks",
            post(super::hooks::create_webhook).get(super::hooks::list_webhooks),
        )
        .route("/v1/webhooks/{id}", delete(super::hooks::delete_webhook))
        .route(
            "/v1/drains",
            post(super::hooks::create_drain).get(super::hooks::list_drains),
        )
        .route("/v1/drains/{id}", delete(super::hooks::delete_drain))
        .route(
            "/v1/projects/{project_id}/deployments/{deployment_id}/runtime-logs",
            get(super::runtime::runtime_logs),
        )
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

pub(super) fn json_response(status: StatusCode, body: &Value) -> Response {
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

pub(super) fn bad_request(message: &str) -> Response {
    error_response(StatusCode::BAD_REQUEST, "bad_request", message, Value::Null)
}

pub(super) fn deployment_not_found(id: &str) -> Response {
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
    let meta: Vec<(&str, &str)> = q.with_prefix("meta-").collect();

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
                && meta
                    .iter()
                    .all(|(k, v)| d.meta.get(*k).is_some_and(|m| m == v))
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
        actions::answer(&shared, StatusCode::OK, &render::full_deployment(&dep))
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
