//! The simulator's actions, with Vercel's state changes: a redeploy builds the source again as
//! a new deployment; a promote points production at a ready production deployment; a rollback
//! points it back at an earlier one and freezes it (new production builds stay off it until a
//! promote); the projects endpoint shows where production points and the last such request.
//! An answer (to these and to a cancel) can be made to break off after the action took effect
//! ([`crate::demo::SimulatorHandle::lose_next_action_answers`]), as a timeout would lose it.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::clock::now_ms;
use crate::demo::model::{DeploymentSpec, ReadyState};
use crate::demo::query::Query;
use crate::demo::render;
use crate::demo::server::{bad_request, deployment_not_found, error_response, json_response};
use crate::demo::state::{lock, SimDeployment, Simulation};
use crate::demo::timeline;

type AppState = Arc<Simulation>;

/// The largest action body the simulator reads.
const BODY_LIMIT: usize = 64 * 1024;

/// What Vercel answers with, or a broken-off answer when one is to be lost.
pub(super) fn answer(shared: &Simulation, status: StatusCode, body: &Value) -> Response {
    let lose = shared
        .lost_answers
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if !lose {
        return json_response(status, body);
    }
    let broken = futures_util::stream::iter([
        Ok::<Bytes, io::Error>(Bytes::from_static(b"{\"id\":")),
        Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "answer lost",
        )),
    ]);
    let mut response = Response::new(Body::from_stream(broken));
    *response.status_mut() = status;
    response
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RedeployBody {
    #[serde(default)]
    deployment_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    meta: Map<String, Value>,
}

/// `POST /v13/deployments`: only the redeploy form (`deploymentId`), which is all shiplog sends.
pub(super) async fn create_deployment(State(shared): State<AppState>, req: Request) -> Response {
    let Ok(bytes) = axum::body::to_bytes(req.into_body(), BODY_LIMIT).await else {
        return bad_request("The request body is too large");
    };
    let Ok(body) = serde_json::from_slice::<RedeployBody>(&bytes) else {
        return bad_request("Invalid request body: expected a JSON object");
    };
    if body.name.as_deref().is_none_or(str::is_empty) {
        return bad_request("Invalid request: missing required property `name`");
    }
    let Some(source_id) = body.deployment_id else {
        return bad_request("The simulator only creates deployments from `deploymentId`");
    };
    let Some(source) = shared.get(&source_id) else {
        return deployment_not_found(&source_id);
    };
    let mut meta = std::collections::BTreeMap::new();
    for (key, value) in body.meta {
        let Value::String(value) = value else {
            return bad_request(&format!("Invalid meta `{key}`: values must be strings"));
        };
        meta.insert(key, value);
    }
    let spec = DeploymentSpec {
        project: source.project.clone(),
        branch: Some(source.branch.clone()),
        commit_message: Some(source.commit_message.clone()),
        target: body.target.filter(|t| !t.is_empty()),
        outcome: source.outcome,
        events: source.events.to_events(),
        queued_ms: 1500,
        meta,
        ..DeploymentSpec::default()
    };
    let created = shared.insert(&spec);
    timeline::spawn(&shared, created.clone());
    answer(&shared, StatusCode::OK, &render::full_deployment(&created))
}

/// The project and deployment an alias request names, or the answer that refuses it.
fn production_candidate(
    shared: &Simulation,
    project: &str,
    deployment: &str,
    verb: &str,
) -> Result<(String, Arc<SimDeployment>), Box<Response>> {
    let Some((_, project_id)) = shared.project(project) else {
        return Err(Box::new(project_not_found()));
    };
    let dep = shared
        .get(deployment)
        .filter(|d| d.project_id == project_id)
        .ok_or_else(|| Box::new(deployment_not_found(deployment)))?;
    if dep.progress().state != ReadyState::Ready {
        return Err(Box::new(bad_request(&format!(
            "The deployment is {} and cannot be {verb}: only a READY deployment can",
            dep.progress().state
        ))));
    }
    if dep.target.as_deref() != Some("production") {
        return Err(Box::new(error_response(
            StatusCode::BAD_REQUEST,
            "not_production",
            &format!(
                "Only production deployments can be {verb}; build this one for production instead"
            ),
            Value::Null,
        )));
    }
    Ok((project_id, dep))
}

/// Points production at `dep`; a rollback freezes it.
fn point_production(shared: &Arc<Simulation>, project_id: &str, dep: &SimDeployment, kind: &str) {
    let from = shared.production_of(project_id).map(|d| d.id.clone());
    super::hooks::production_moved(shared, dep, from.clone(), kind);
    let now = now_ms();
    let mut production = lock(&shared.production);
    let state = production.entry(project_id.to_owned()).or_default();
    state.pinned = Some((dep.id.clone(), now));
    state.frozen = kind == "rollback";
    state.last_request = Some(json!({
        "fromDeploymentId": from,
        "toDeploymentId": dep.id,
        "jobStatus": "succeeded",
        "requestedAt": now,
        "type": kind,
    }));
}

/// `POST /v10/projects/{projectId}/promote/{deploymentId}`: 201.
pub(super) async fn promote(
    State(shared): State<AppState>,
    Path((project, deployment)): Path<(String, String)>,
) -> Response {
    match production_candidate(&shared, &project, &deployment, "promoted") {
        Ok((project_id, dep)) => {
            point_production(&shared, &project_id, &dep, "promote");
            answer(&shared, StatusCode::CREATED, &json!({}))
        }
        Err(refused) => *refused,
    }
}

/// `POST /v1/projects/{projectId}/rollback/{deploymentId}?description=`: 201.
pub(super) async fn rollback(
    State(shared): State<AppState>,
    Path((project, deployment)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (project_id, dep) =
        match production_candidate(&shared, &project, &deployment, "rolled back to") {
            Ok(found) => found,
            Err(refused) => return *refused,
        };
    if shared
        .production_of(&project_id)
        .is_some_and(|current| current.id == dep.id)
    {
        return error_response(
            StatusCode::CONFLICT,
            "conflict",
            "The deployment is already serving production",
            Value::Null,
        );
    }
    point_production(&shared, &project_id, &dep, "rollback");
    let description = Query::from_request(req.uri().query())
        .get("description")
        .map(str::to_owned);
    if let Some(request) = lock(&shared.production)
        .get_mut(&project_id)
        .and_then(|state| state.last_request.as_mut())
    {
        request["description"] = json!(description);
    }
    answer(&shared, StatusCode::CREATED, &json!({}))
}

/// `GET /v9/projects/{idOrName}`.
pub(super) async fn get_project(
    State(shared): State<AppState>,
    Path(id_or_name): Path<String>,
) -> Response {
    let Some((name, id)) = shared.project(&id_or_name) else {
        return project_not_found();
    };
    let production = shared.production_of(&id);
    let last_request = lock(&shared.production)
        .get(&id)
        .and_then(|state| state.last_request.clone());
    let targets = match &production {
        Some(dep) => json!({ "production": render::target_deployment(dep) }),
        None => json!({}),
    };
    json_response(
        StatusCode::OK,
        &json!({
            "id": id,
            "name": name,
            "accountId": crate::demo::state::TEAM_ID,
            "framework": "nextjs",
            "targets": targets,
            "lastAliasRequest": last_request,
        }),
    )
}

fn project_not_found() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "not_found",
        "Project not found",
        Value::Null,
    )
}
