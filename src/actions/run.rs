//! Taking an action through its guards to Vercel, and recording every step.
//!
//! The order matters: the role before anything is sent; the record of a request before it is
//! confirmed, of the confirmation before the claim and the request; the claim (one per action
//! and deployment a minute, across instances) before the request. A request whose answer is
//! lost is not simply sent again: first the deployment or project is read (a redeploy is found
//! by the action id in its `meta`), and only when that shows nothing happened is it repeated.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::audit::{ActionRecord, ActionTrail, Outcome};
use super::plan::{confirmation_for, Confirmation, Plan};
use super::{ActionError, ActionKind, ActionRequest, Actor, Refusal};
use crate::clock::now_ms;
use crate::retry::RetryPolicy;
use crate::store::StateStore;
use crate::vercel::actions::RedeployRequest;
use crate::vercel::client::ListQuery;
use crate::vercel::{ReadyState, VercelClient, VercelError};

/// The `meta` key a redeploy carries its action id under.
pub const ACTION_META: &str = "shiplogActionId";

/// How long a claim keeps a second press of the same action from being sent.
const CLAIM_TTL: Duration = Duration::from_secs(60);

/// The longest reason kept (it also becomes a rollback's description at Vercel).
const MAX_REASON: usize = 500;

/// What the person said to the confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consent {
    Declined,
    /// On a terminal or the dashboard: the name typed (when asked) and a reason.
    Given {
        typed: Option<String>,
        reason: Option<String>,
    },
    /// `--yes`: confirmed beforehand, off a terminal.
    Assumed {
        reason: Option<String>,
    },
}

/// An action that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub plan: Plan,
    /// `Succeeded`, or `AlreadyDone` when it had happened before it was sent.
    pub outcome: Outcome,
    /// The deployment a redeploy made.
    pub created: Option<String>,
    /// What happened, in a sentence.
    pub message: String,
}

/// Who holds the claim on an action and deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claim {
    action_id: String,
    user: String,
    at: i64,
}

/// Takes actions for one person.
pub struct Actions {
    client: VercelClient,
    store: StateStore,
    trail: ActionTrail,
    actor: Actor,
    /// This process, in the records it writes.
    instance: String,
    retry: RetryPolicy,
}

impl Actions {
    pub fn new(client: VercelClient, store: StateStore, trail: ActionTrail, actor: Actor) -> Self {
        Actions {
            client,
            store,
            trail,
            actor,
            instance: format!("{}-{}", hostname(), std::process::id()),
            retry: RetryPolicy::default(),
        }
    }

    /// Waits between tries of a request whose answer was lost (tests make it short).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    pub fn trail(&self) -> &ActionTrail {
        &self.trail
    }

    /// This process, as the records it writes name it.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Checks the role, looks the action up and checks it against the deployment's state; the
    /// request is recorded before this returns the plan to confirm.
    pub async fn plan(&self, request: &ActionRequest) -> Result<Plan, ActionError> {
        let action_id = ulid::Ulid::new().to_string();
        if !self.actor.role.may_act() {
            let refusal = Refusal::Role {
                role: self.actor.role.as_str(),
                action: request.kind.as_str(),
            };
            let shown = request.deployment.as_deref().or(request.project.as_deref());
            let record = ActionRecord {
                project: request.project.clone().unwrap_or_default(),
                deployment: shown.unwrap_or_default().to_owned(),
                ..self.record_of(&action_id, request.kind, Outcome::Refused)
            };
            return self.refused(record, refusal).await;
        }
        let plan = self
            .look_up(request, action_id)
            .await
            .map_err(|err| ActionError::from_vercel(request.kind, &err))?;
        if let Err(refusal) = plan.check() {
            return self
                .refused(self.plan_record(&plan, Outcome::Refused), refusal)
                .await;
        }
        self.write(self.plan_record(&plan, Outcome::Requested))
            .await?;
        Ok(plan)
    }

    /// Sends a confirmed plan: recorded, claimed, sent once (a lost answer is looked for before
    /// a second try), and its result recorded.
    pub async fn run(&self, plan: &Plan, consent: Consent) -> Result<Finished, ActionError> {
        let reason = match consent {
            Consent::Declined => {
                let record = self.plan_record(plan, Outcome::Declined);
                return self.refused(record, Refusal::NotConfirmed).await;
            }
            Consent::Given { typed, reason } => {
                let typed = typed.unwrap_or_default();
                if plan.confirmation == Confirmation::ProjectName && typed.trim() != plan.project {
                    let refusal = Refusal::NameMismatch {
                        project: plan.project.clone(),
                    };
                    return self
                        .refused(self.plan_record(plan, Outcome::Refused), refusal)
                        .await;
                }
                reason
            }
            Consent::Assumed { reason } => reason,
        };
        let reason = reason.map(clean_reason).filter(|r| !r.is_empty());
        let confirmed = ActionRecord {
            reason: reason.clone(),
            ..self.plan_record(plan, Outcome::Confirmed)
        };
        self.write(confirmed).await?;
        self.claim(plan, reason.as_deref()).await?;
        let sent = self.send(plan, reason.as_deref()).await;
        let (outcome, created, answer) = match sent {
            Ok(done) => done,
            Err(err) => {
                self.release(plan).await;
                let record = ActionRecord {
                    reason,
                    answer: Some(err.to_string()),
                    ..self.plan_record(plan, Outcome::Failed)
                };
                if let Err(trail) = self.trail.append(&record).await {
                    tracing::warn!(error = %trail, "could not record a failed action");
                }
                return Err(err);
            }
        };
        let record = ActionRecord {
            reason,
            created: created.clone(),
            answer: Some(answer.clone()),
            ..self.plan_record(plan, outcome)
        };
        if let Err(trail) = self.trail.append(&record).await {
            // It happened: say so, and that the trail misses its result.
            tracing::warn!(error = %trail, "could not record an action's result");
        }
        Ok(Finished {
            plan: plan.clone(),
            outcome,
            created,
            message: answer,
        })
    }

    async fn look_up(
        &self,
        request: &ActionRequest,
        action_id: String,
    ) -> Result<Plan, VercelError> {
        let (deployment, production) = match (request.kind, &request.deployment) {
            (ActionKind::Rollback, to) => {
                let project = request.project.as_deref().unwrap_or_default();
                let project = self.client.get_project(project).await?;
                let production = project.production_id().map(str::to_owned);
                let to = match to {
                    Some(to) => to.clone(),
                    None => self
                        .previous_production(&project.id, production.as_deref())
                        .await?
                        .unwrap_or_default(),
                };
                let deployment = if to.is_empty() {
                    None
                } else {
                    Some(self.client.get_deployment(&to).await?)
                };
                let Some(deployment) = deployment else {
                    return Ok(Plan {
                        action_id,
                        kind: ActionKind::Rollback,
                        deployment: String::new(),
                        state: ReadyState::Unknown,
                        target: None,
                        project_id: project.id,
                        project: project.name,
                        production,
                        confirmation: Confirmation::ProjectName,
                    });
                };
                (deployment, production)
            }
            (kind, id) => {
                let deployment = self
                    .client
                    .get_deployment(id.as_deref().unwrap_or_default())
                    .await?;
                let production = match (kind, &deployment.project_id) {
                    (ActionKind::Promote, Some(project)) => self
                        .client
                        .get_project(project)
                        .await?
                        .production_id()
                        .map(str::to_owned),
                    _ => None,
                };
                (deployment, production)
            }
        };
        Ok(Plan {
            action_id,
            kind: request.kind,
            confirmation: confirmation_for(request.kind, deployment.target.as_deref()),
            deployment: deployment.id,
            state: deployment.ready_state,
            target: deployment.target,
            project_id: deployment.project_id.unwrap_or_default(),
            project: deployment.name.unwrap_or_default(),
            production,
        })
    }

    /// The newest ready production deployment older than the one production points at.
    async fn previous_production(
        &self,
        project_id: &str,
        production: Option<&str>,
    ) -> Result<Option<String>, VercelError> {
        let list = self
            .client
            .list_deployments(&ListQuery {
                limit: Some(50),
                project_id: Some(project_id.to_owned()),
                state: Some("READY".to_owned()),
                target: Some("production".to_owned()),
                ..ListQuery::default()
            })
            .await?;
        let mut newest_first = list.deployments;
        newest_first.sort_by_key(|d| std::cmp::Reverse(d.created));
        let current = newest_first
            .iter()
            .position(|d| Some(d.uid.as_str()) == production);
        let older = current.map_or(0, |at| at + 1);
        Ok(newest_first
            .into_iter()
            .skip(older)
            .find(|d| Some(d.uid.as_str()) != production)
            .map(|d| d.uid))
    }

    /// One claim per action and deployment a minute, across every instance on the store.
    async fn claim(&self, plan: &Plan, reason: Option<&str>) -> Result<(), ActionError> {
        let ours = Claim {
            action_id: plan.action_id.clone(),
            user: self.actor.user.clone(),
            at: now_ms(),
        };
        let text = serde_json::to_string(&ours).unwrap_or_default();
        let winner = match self
            .store
            .put_if_absent(&claim_key(plan), &text, CLAIM_TTL)
            .await
        {
            Ok(winner) => winner,
            Err(err) => {
                let record = ActionRecord {
                    reason: reason.map(str::to_owned),
                    ..self.plan_record(plan, Outcome::Refused)
                };
                return self.refused(record, Refusal::Store(err.to_string())).await;
            }
        };
        let winner: Claim = serde_json::from_str(&winner).unwrap_or(ours);
        if winner.action_id == plan.action_id {
            return Ok(());
        }
        let refusal = Refusal::Claimed {
            user: winner.user,
            action: plan.kind.as_str(),
            seconds: (now_ms() - winner.at).max(0) / 1000,
            action_id: winner.action_id,
        };
        let record = ActionRecord {
            reason: reason.map(str::to_owned),
            ..self.plan_record(plan, Outcome::Refused)
        };
        self.refused(record, refusal).await
    }

    /// Gives the claim back after a failure, so the action can be tried again at once.
    async fn release(&self, plan: &Plan) {
        let key = claim_key(plan);
        let ours = self
            .store
            .get_json::<Claim>(&key)
            .await
            .ok()
            .flatten()
            .is_some_and(|claim| claim.action_id == plan.action_id);
        if ours {
            let _ = self.store.delete(&key).await;
        }
    }

    /// Sends the request; after a lost answer, looks whether it took effect before sending it
    /// again. Gives the outcome, the deployment a redeploy made, and what Vercel said.
    async fn send(
        &self,
        plan: &Plan,
        reason: Option<&str>,
    ) -> Result<(Outcome, Option<String>, String), ActionError> {
        if plan.kind != ActionKind::Redeploy {
            // Done meanwhile, by someone whose claim has lapsed.
            if let Ok(Some(created)) = self.took_effect(plan).await {
                let answer = format!("{} had already happened; nothing was sent", plan.summary());
                return Ok((Outcome::AlreadyDone, created, answer));
            }
        }
        let mut tries = 0;
        loop {
            tries += 1;
            let error = match self.request(plan, reason).await {
                Ok(created) => {
                    return Ok((
                        Outcome::Succeeded,
                        created.clone(),
                        done_sentence(plan, created),
                    ))
                }
                Err(err) if !err.is_retryable() => {
                    return Err(ActionError::from_vercel(plan.kind, &err))
                }
                Err(err) => err,
            };
            // The answer is lost, not the action: find out before sending it again.
            loop {
                if tries >= self.retry.max_attempts {
                    return Err(ActionError::from_vercel(plan.kind, &error));
                }
                tokio::time::sleep(self.retry.delay(tries - 1, error.retry_after())).await;
                match self.took_effect(plan).await {
                    Ok(Some(created)) => {
                        let answer = format!(
                            "{} (its answer was lost; Vercel shows it done)",
                            done_sentence(plan, created.clone())
                        );
                        return Ok((Outcome::Succeeded, created, answer));
                    }
                    Ok(None) => break,
                    // Not known: sending again could act twice. Look again later.
                    Err(_) => tries += 1,
                }
            }
        }
    }

    /// The request itself, once; the deployment a redeploy made.
    async fn request(
        &self,
        plan: &Plan,
        reason: Option<&str>,
    ) -> Result<Option<String>, VercelError> {
        match plan.kind {
            ActionKind::Cancel => self
                .client
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
                self.client
                    .redeploy(&request)
                    .await
                    .map(|created| Some(created.id))
            }
            ActionKind::Promote => self
                .client
                .promote(&plan.project_id, &plan.deployment)
                .await
                .map(|()| None),
            ActionKind::Rollback => self
                .client
                .rollback(&plan.project_id, &plan.deployment, reason)
                .await
                .map(|()| None),
        }
    }

    /// Whether the action has taken effect: `Some` (with the deployment a redeploy made) when
    /// it has, `None` when it has not.
    async fn took_effect(&self, plan: &Plan) -> Result<Option<Option<String>>, VercelError> {
        match plan.kind {
            ActionKind::Cancel => {
                let now = self.client.get_deployment(&plan.deployment).await?;
                Ok((now.ready_state == ReadyState::Canceled).then_some(None))
            }
            ActionKind::Promote | ActionKind::Rollback => {
                let project = self.client.get_project(&plan.project_id).await?;
                let there = project.production_id() == Some(plan.deployment.as_str())
                    || project
                        .last_alias_request
                        .as_ref()
                        .is_some_and(|r| r.points_to(&plan.deployment));
                Ok(there.then_some(None))
            }
            ActionKind::Redeploy => {
                let found = self
                    .client
                    .list_deployments(&ListQuery {
                        limit: Some(1),
                        project_id: Some(plan.project_id.clone()),
                        meta: Some((ACTION_META.to_owned(), plan.action_id.clone())),
                        ..ListQuery::default()
                    })
                    .await?;
                Ok(found.deployments.into_iter().next().map(|d| Some(d.uid)))
            }
        }
    }

    /// Records a refusal (best effort: the action is refused either way) and returns it.
    async fn refused<T>(&self, record: ActionRecord, refusal: Refusal) -> Result<T, ActionError> {
        let record = ActionRecord {
            answer: Some(refusal.to_string()),
            ..record
        };
        if let Err(err) = self.trail.append(&record).await {
            tracing::warn!(error = %err, "could not record a refused action");
        }
        Err(refusal.into())
    }

    /// Writes a record the action cannot go on without.
    async fn write(&self, record: ActionRecord) -> Result<(), ActionError> {
        self.trail
            .append(&record)
            .await
            .map_err(|err| Refusal::Audit(err.to_string()).into())
    }

    fn record_of(&self, action_id: &str, kind: ActionKind, outcome: Outcome) -> ActionRecord {
        ActionRecord {
            at: now_ms(),
            action_id: action_id.to_owned(),
            action: kind,
            outcome,
            user: self.actor.user.clone(),
            role: self.actor.role,
            project: String::new(),
            deployment: String::new(),
            from: None,
            created: None,
            reason: None,
            answer: None,
            instance: self.instance.clone(),
        }
    }

    fn plan_record(&self, plan: &Plan, outcome: Outcome) -> ActionRecord {
        ActionRecord {
            project: plan.project.clone(),
            deployment: plan.deployment.clone(),
            from: match plan.kind {
                ActionKind::Promote | ActionKind::Rollback => plan.production.clone(),
                _ => None,
            },
            ..self.record_of(&plan.action_id, plan.kind, outcome)
        }
    }
}

fn claim_key(plan: &Plan) -> String {
    format!("action_claim:{}:{}", plan.kind.as_str(), plan.deployment)
}

/// What was done, in a sentence.
fn done_sentence(plan: &Plan, created: Option<String>) -> String {
    match (plan.kind, created) {
        (ActionKind::Redeploy, Some(created)) => {
            format!("{} is building {created}", plan.project)
        }
        (ActionKind::Promote | ActionKind::Rollback, _) => format!(
            "{}'s production now points at {}",
            plan.project, plan.deployment
        ),
        (kind, _) => format!("{} {}", plan.deployment, kind.done()),
    }
}

/// A reason as it is kept and sent: redacted, on one line, at most [`MAX_REASON`] characters.
fn clean_reason(reason: String) -> String {
    let redacted = crate::log::redact::global().redact(&reason);
    crate::printable::one_line(&redacted)
        .trim()
        .chars()
        .take(MAX_REASON)
        .collect()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "shiplog".to_owned())
}
