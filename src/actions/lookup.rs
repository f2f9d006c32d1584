//! What the actions engine asks Vercel: the deployment, its project and where production
//! points (to plan an action); the request itself; and whether an action has taken effect
//! (before a request whose answer was lost is sent again).

use serde_json::{Map, Value};

use super::plan::{confirmation_for, Confirmation, Plan};
use super::{ActionKind, ActionRequest};
use crate::clock::now_ms;
use crate::vercel::actions::RedeployRequest;
use crate::vercel::client::ListQuery;
use crate::vercel::{ReadyState, VercelClient, VercelError};

/// The `meta` key a redeploy carries its action id under.
pub const ACTION_META: &str = "shiplogActionId";

/// Whether an action has taken effect, as far as Vercel shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Effect {
    /// Done; with the deployment a redeploy made.
    Done(Option<String>),
    NotDone,
}

/// The plan of `request`: the deployment, its project, where production points.
pub(super) async fn look_up(
    client: &VercelClient,
    request: &ActionRequest,
    action_id: String,
) -> Result<Plan, VercelError> {
    let wanted = request.deployment.as_deref().unwrap_or_default();
    let (deployment, production, project) = match request.kind {
        ActionKind::Rollback => {
            let project = client
                .get_project(request.project.as_deref().unwrap_or_default())
                .await?;
            let production = project.production_id().map(str::to_owned);
            let to = match wanted {
                "" => previous_production(client, &project.id, production.as_deref()).await?,
                id => Some(id.to_owned()),
            };
            let Some(to) = to else {
                // Nothing to go back to: the plan says so when it is checked.
                return Ok(Plan {
                    action_id,
                    kind: ActionKind::Rollback,
                    deployment: String::new(),
                    state: ReadyState::Unknown,
                    target: Some("production".to_owned()),
                    project_id: project.id,
                    project: project.name,
                    production,
                    confirmation: Confirmation::ProjectName,
                    planned_at: now_ms(),
                });
            };
            (client.get_deployment(&to).await?, production, Some(project))
        }
        ActionKind::Promote => {
            let deployment = client.get_deployment(wanted).await?;
            let project = match &deployment.project_id {
                Some(id) => Some(client.get_project(id).await?),
                None => None,
            };
            let production = project
                .as_ref()
                .and_then(|p| p.production_id().map(str::to_owned));
            (deployment, production, project)
        }
        ActionKind::Cancel | ActionKind::Redeploy => {
            (client.get_deployment(wanted).await?, None, None)
        }
    };
    // A rollback names the project; the deployment must be one of its own.
    let project_id = match (&project, &deployment.project_id) {
        (Some(project), Some(of)) if project.id != *of => String::new(),
        (_, of) => of.clone().unwrap_or_default(),
    };
    Ok(Plan {
        action_id,
        kind: request.kind,
        confirmation: confirmation_for(request.kind, deployment.target.as_deref()),
        deployment: deployment.id,
        state: deployment.ready_state,
        target: deployment.target,
        project_id,
        project: project
            .map(|p| p.name)
            .or(deployment.name)
            .unwrap_or_default(),
        production,
        planned_at: now_ms(),
    })
}

/// The newest ready production deployment created before the one production points at;
/// `None` when there is none, or production's own is not among the recent ones (then "before"
/// cannot be told, and a rollback must not move production forward).
async fn previous_production(
    client: &VercelClient,
    project_id: &str,
    production: Option<&str>,
) -> Result<Option<String>, VercelError> {
    let list = client
        .list_deployments(&ListQuery {
            limit: Some(100),
            project_id: Some(project_id.to_owned()),
            target: Some("production".to_owned()),
            ..ListQuery::default()
        })
        .await?;
    let Some(current) = list
        .deployments
        .iter()
        .find(|d| Some(d.uid.as_str()) == production)
        .and_then(|d| d.created)
    else {
        return Ok(None);
    };
    Ok(list
        .deployments
        .into_iter()
        .filter(|d| d.state() == ReadyState::Ready && d.created.is_some_and(|c| c < current))
        .max_by_key(|d| d.created)
        .map(|d| d.uid))
}

/// The request itself, once; the deployment a redeploy made.
pub(super) async fn request(
    client: &VercelClient,
    plan: &Plan,
    reason: Option<&str>,
) -> Result<Option<String>, VercelError> {
    match plan.kind {
        ActionKind::Cancel => client
            .cancel_deployment(&plan.deployment)
            .await
            .map(|_| None),
        ActionKind::Redeploy => {
            let mut meta = Map::new();
            meta.insert(ACTION_META.to_owned(), Value::from(plan.action_id.clone()));
            meta.insert("action".to_owned(), Value::from("redeploy"));
            let request = RedeployRequest {
                deployment_id: plan.deployment.clone(),
                name: plan.project.clone(),
                target: plan.target.clone(),
                meta,
            };
            client.redeploy(&request).await.map(|made| Some(made.id))
        }
        ActionKind::Promote => client
            .promote(&plan.project_id, &plan.deployment)
            .await
            .map(|()| None),
        ActionKind::Rollback => client
            .rollback(&plan.project_id, &plan.deployment, reason)
            .await
            .map(|()| None),
    }
}

/// Whether the action has taken effect.
pub(super) async fn effect(client: &VercelClient, plan: &Plan) -> Result<Effect, VercelError> {
    let done = match plan.kind {
        ActionKind::Cancel => {
            let now = client.get_deployment(&plan.deployment).await?;
            (now.ready_state == ReadyState::Canceled).then_some(None)
        }
        ActionKind::Promote | ActionKind::Rollback => {
            let project = client.get_project(&plan.project_id).await?;
            // Production there, or a request for it accepted since this plan (a promote can
            // wait behind a rolling release). An older request is someone else's, and
            // production may have moved on since.
            let there = project.production_id() == Some(plan.deployment.as_str())
                || project.last_alias_request.as_ref().is_some_and(|r| {
                    r.is_under_way()
                        && r.to_deployment_id == plan.deployment
                        && r.requested_at >= plan.planned_at
                });
            there.then_some(None)
        }
        ActionKind::Redeploy => {
            let found = client
                .list_deployments(&ListQuery {
                    limit: Some(20),
                    project_id: Some(plan.project_id.clone()),
                    meta: Some((ACTION_META.to_owned(), plan.action_id.clone())),
                    ..ListQuery::default()
                })
                .await?;
            // The filter is Vercel's; the id is checked here too.
            found
                .deployments
                .into_iter()
                .find(|d| d.meta.get(ACTION_META).and_then(Value::as_str) == Some(&plan.action_id))
                .map(|d| Some(d.uid))
        }
    };
    Ok(done.map_or(Effect::NotDone, Effect::Done))
}
